"""A synthetic conference for the scale benchmarks: N days, M records, K quotes, mixed scripts.

Writes a valid aspdigest project (the sample's aspdigest.toml and subscribers.csv, an
`event.toml` and one Markdown record per item) under a folder, deterministically from a
seed, so `aspdigest check` / `build` can run on a conference far larger than ASP23.
Records and quotes mix English, French, Ukrainian and Arabic; quotes carry their own
`lang` when it differs from the event's. About one quote in four gets `card: true`.
`language` sets the event's own language; `rich=True` adds what the composition rules of the
social threads act on (tests/test_composition.py): handles on every platform for speakers and
organisers, organisers, links shared between records, a hook per day and some `highlight`s.

Run: .venv/bin/python benchmarks/generate.py OUT [--days N] [--records M] [--quotes K]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EVENT = "synth"

# Short, plain sentences in each script: the renderers' line breaking, fonts and
# bidirectional text get exercised without any claim to be real reporting.
SENTENCES = {
    "en": [
        "The panel discussed accountability for crimes against women and girls.",
        "Speakers called for survivor-centred investigations and lasting reparations.",
        "States were urged to fund the Court and protect its independence.",
        "The session closed with a commitment to follow up next year.",
    ],
    "fr": [
        "Le panel a examiné la responsabilité pour les crimes contre les femmes.",
        "Les intervenantes ont demandé des enquêtes centrées sur les survivantes.",
        "Les États ont été appelés à financer la Cour et à protéger son indépendance.",
        "La séance s'est terminée par un engagement à poursuivre le travail.",
    ],
    "uk": [
        "Учасники обговорили відповідальність за злочини проти жінок.",
        "Доповідачі закликали до розслідувань, зосереджених на постраждалих.",
        "Держави закликали фінансувати Суд і захищати його незалежність.",
        "Сесія завершилася зобов'язанням продовжити роботу наступного року.",
    ],
    "ar": [
        "ناقشت الجلسة المساءلة عن الجرائم المرتكبة ضد النساء والفتيات.",
        "دعا المتحدثون إلى تحقيقات تتمحور حول الناجيات وإلى جبر الضرر.",
        "حثت الدول على تمويل المحكمة وحماية استقلالها.",
        "اختتمت الجلسة بالتزام بمتابعة العمل في العام المقبل.",
    ],
}
NAMES = {
    "en": ["Ada Mensah", "Grace Liu", "Mary Okafor"],
    "fr": ["Claire Dubois", "Amélie Laurent", "Sophie Martin"],
    "uk": ["Олена Коваленко", "Ірина Шевченко", "Марія Бондаренко"],
    "ar": ["ليلى حسن", "مريم خليل", "نور السيد"],
}
KINDS = ["session", "side-event", "statement", "launch", "report"]


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)  # a JSON string is a valid YAML scalar


ORGANISERS = ["Women's Initiatives for Gender Justice", "Coalition for the ICC", "Amnesty"]


def _handles(names: list[str]) -> list[str]:
    """event.toml tables giving each name an account on every platform."""
    lines = []
    for n, name in enumerate(names, 1):
        lines += [
            f"[handles.{_q(name)}]",
            f'x = "person{n}"',
            f'bluesky = "person{n}.bsky.social"',
            f'mastodon = "@person{n}@example.social"',
            f'threads = "person{n}"',
            f'linkedin = "Person {n}"',
            "",
        ]
    return lines


def generate(
    out: Path,
    days: int = 5,
    records: int = 1000,
    quotes: int = 400,
    seed: int = 1,
    *,
    language: str = "en",
    rich: bool = False,
) -> Path:
    """Write the project under `out` (replacing it) and return its root."""
    rng = random.Random(seed)
    if out.exists():
        shutil.rmtree(out)
    folder = out / "content" / EVENT
    folder.mkdir(parents=True)
    shutil.copy(REPO / "aspdigest.toml", out / "aspdigest.toml")
    shutil.copy(REPO / "subscribers.csv", out / "subscribers.csv")
    start = dt.date(2025, 3, 3)
    dates = [start + dt.timedelta(days=i) for i in range(days)]
    lines = [
        f'id = "{EVENT}"',
        'name = "Synthetic Assembly on Gender Justice"',
        'short_name = "SAGJ"',
        'publisher = "Benchmark Coalition"',
        'venue = "Palais des Nations, Geneva"',
        'timezone = "Europe/Zurich"',
        f"language = {_q(language)}",
        f"start = {dates[0]}",
        f"end = {dates[-1]}",
        'hashtags = ["SAGJ"]',
        # Events longer than a month must say so (a guard against a typo in start or end).
        *([f"max_days = {days}"] if days > 31 else []),
        "",
    ]
    for n, date in enumerate(dates, 1):
        lines += [f'[days."{date}"]', f'title = "Day {n} of the Synthetic Assembly"']
        if rich:
            lines.append(f"hook = {_q(SENTENCES[language][n % 4])}")
        lines.append("")
    if rich:
        lines += _handles([*ORGANISERS, *(name for names in NAMES.values() for name in names)])
    (folder / "event.toml").write_text("\n".join(lines), encoding="utf-8")
    languages = list(SENTENCES)
    quote_slots = set(rng.sample(range(records), min(quotes, records)))
    for i in range(records):
        date = dates[i * days // records]
        lang = languages[i % len(languages)]
        speaker = rng.choice(NAMES[lang])
        sentences = SENTENCES[lang]
        meta = [
            f"title: {_q(f'{sentences[0][:40].rstrip()} ({i + 1})')}",
            f"kind: {KINDS[i % len(KINDS)]}",
            f"order: {i + 1}",
            f"summary: {_q(sentences[1])}",
            "speakers:",
            f"  - name: {_q(speaker)}",
            f"    role: {_q('Panellist')}",
        ]
        if rich:
            meta += [
                f"organisers: [{_q(ORGANISERS[i % len(ORGANISERS)])}]",
                "links:",
                f"  - title: {_q('Read more')}",
                f"    url: https://example.org/{lang}/{i % 7}",
            ]
            if i % 5 == 0:
                meta.append("highlight: true")
        if i in quote_slots:
            said = " ".join(rng.sample(sentences, 2))
            meta += [
                "quotes:",
                f"  - text: {_q(said)}",
                f"    by: {_q(speaker)}",
                f"    card: {'true' if rng.random() < 0.25 else 'false'}",
            ]
            if lang != language:
                meta.append(f"    lang: {lang}")
        meta.append(f"tags: [{_q(lang)}, synthetic]")
        body = " ".join(rng.choice(sentences) for _ in range(4))
        day_folder = folder / date.isoformat()
        day_folder.mkdir(exist_ok=True)
        text = "---\n" + "\n".join(meta) + "\n---\n" + body + "\n"
        (day_folder / f"record-{i + 1:05d}.md").write_text(text, encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the project to (replaced)")
    parser.add_argument("--days", type=int, default=5)
    parser.add_argument("--records", type=int, default=1000)
    parser.add_argument("--quotes", type=int, default=400)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    root = generate(args.out, args.days, args.records, args.quotes, args.seed)
    print(f"{root}: {args.records} records over {args.days} days, event id {EVENT}")


if __name__ == "__main__":
    main()
