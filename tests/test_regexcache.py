"""The on-disk cache of compiled URL patterns (aspdigest.text.regexcache): a hit gives the
same patterns, a damaged or foreign file is compiled over, never trusted."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import regex

from aspdigest import cachedir
from aspdigest.text import regexcache
from aspdigest.text.extract import _url_patterns, _urls, extract_urls

SOURCES = {"word": r"\w+", "digits": r"[0-9]+"}


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASPDIGEST_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_first_call_writes_the_pickle_and_the_second_reads_it(cache: Path) -> None:
    first = regexcache.compile_cached("t", SOURCES)
    (path,) = cache.glob("t-*.pickle")
    assert {k: p.pattern for k, p in pickle.loads(path.read_bytes()).items()} == SOURCES
    second = regexcache.compile_cached("t", SOURCES)
    assert second["word"] is not first["word"]  # loaded from the file, not this process
    assert second["digits"].findall("a1 22 b333") == ["1", "22", "333"]


def test_a_damaged_file_is_compiled_over(cache: Path) -> None:
    regexcache.compile_cached("t", SOURCES)
    (path,) = cache.glob("t-*.pickle")
    path.write_bytes(b"not a pickle")
    assert regexcache.compile_cached("t", SOURCES)["word"].findall("a b") == ["a", "b"]
    assert pickle.loads(path.read_bytes())["word"].pattern == r"\w+"


def test_a_file_holding_other_patterns_is_not_trusted(cache: Path) -> None:
    regexcache.compile_cached("t", SOURCES)
    (path,) = cache.glob("t-*.pickle")
    path.write_bytes(pickle.dumps({"word": regex.compile("x"), "digits": regex.compile("y")}))
    assert regexcache.compile_cached("t", SOURCES)["digits"].findall("x 7 y") == ["7"]


def test_an_unwritable_cache_folder_only_costs_the_compile(cache: Path) -> None:
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text("a file where the folder should be")
    assert regexcache.compile_cached("t", SOURCES)["word"].findall("ok") == ["ok"]


def test_url_patterns_from_the_cache_find_the_same_urls(cache: Path) -> None:
    text = "see example.com/a and https://t.co/abc, not foo.comm or x.zzz"
    _url_patterns.cache_clear()
    _urls.cache_clear()
    compiled = extract_urls(text)  # compiles and writes the cache
    _url_patterns.cache_clear()
    _urls.cache_clear()
    loaded = extract_urls(text)  # loads it
    assert compiled == loaded
    assert [e.text for e in loaded] == ["example.com/a", "https://t.co/abc"]
    assert list(cache.glob("extract-urls-*.pickle"))


# -- each failure mode of the cache means "compile" (pinned for `make mutate`, issue 22) ---------


def test_the_file_is_named_after_the_sources_and_not_their_order(cache: Path) -> None:
    regexcache.compile_cached("t", SOURCES)
    regexcache.compile_cached("t", dict(reversed(SOURCES.items())))
    (path,) = cache.glob("t-*.pickle")
    assert regex.fullmatch(r"t-[0-9a-f]{20}\.pickle", path.name)
    regexcache.compile_cached("t", {"word": r"\w+"})
    assert len(list(cache.glob("t-*.pickle"))) == 2  # other sources, another file


@pytest.mark.parametrize("where", ["__version__", "version"])
def test_another_regex_or_python_version_gets_its_own_file(
    cache: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    regexcache.compile_cached("t", SOURCES)
    monkeypatch.setattr(regex if where == "__version__" else regexcache.sys, where, "0.0")
    regexcache.compile_cached("t", SOURCES)
    assert len(list(cache.glob("t-*.pickle"))) == 2


@pytest.mark.parametrize(
    "stored",
    [
        [regex.compile(r"\w+"), regex.compile("[0-9]+")],  # not a dict
        {"word": regex.compile(r"\w+")},  # a name missing
        {**{k: regex.compile(v) for k, v in SOURCES.items()}, "more": regex.compile("m")},
        dict(SOURCES),  # the sources as text, not compiled
    ],
)
def test_a_pickle_of_another_shape_is_compiled_over(cache: Path, stored: object) -> None:
    regexcache.compile_cached("t", SOURCES)
    (path,) = cache.glob("t-*.pickle")
    path.write_bytes(pickle.dumps(stored))
    patterns = regexcache.compile_cached("t", SOURCES)
    assert {k: p.pattern for k, p in patterns.items()} == SOURCES
    assert all(isinstance(p, regex.Pattern) for p in patterns.values())
    rewritten = pickle.loads(path.read_bytes())
    assert {k: p.pattern for k, p in rewritten.items()} == SOURCES


def test_a_cache_folder_several_levels_down_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASPDIGEST_CACHE_DIR", str(tmp_path / "a" / "b" / "c"))
    regexcache.compile_cached("t", SOURCES)
    assert len(list((tmp_path / "a" / "b" / "c").glob("t-*.pickle"))) == 1


def test_the_temporary_file_is_made_next_to_the_cache(
    cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Renaming is atomic only within one file system: the temporary file must not go to /tmp.
    monkeypatch.setattr(cachedir.tempfile, "tempdir", str(tmp_path / "no-such-folder"))
    regexcache.compile_cached("t", SOURCES)
    assert len(list(cache.glob("t-*.pickle"))) == 1


def test_a_failed_write_leaves_no_temporary_file(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full_disk(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(cachedir.os, "replace", full_disk)
    assert regexcache.compile_cached("t", SOURCES)["word"].findall("a b") == ["a", "b"]
    assert list(cache.iterdir()) == []


def test_the_cache_folder_is_the_setting_then_xdg_then_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASPDIGEST_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cachedir.cache_dir() == tmp_path / "explicit"
    monkeypatch.setenv("ASPDIGEST_CACHE_DIR", "")  # set but empty: as if unset
    assert cachedir.cache_dir() == tmp_path / "xdg" / "aspdigest"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cachedir.cache_dir() == tmp_path / "home" / ".cache" / "aspdigest"


def test_a_cache_file_is_read_as_written_and_an_absent_one_is_none(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "file.bin"
    assert cachedir.read(path) is None
    cachedir.write(path, b"\x00\xffdata")
    cachedir.write(path, b"again")  # replaced whole
    assert cachedir.read(path) == b"again"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]
