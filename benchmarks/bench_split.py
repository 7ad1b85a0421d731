"""Splitting a 3,000-sentence summary into posts: linear, not quadratic (issue 18).

Run: .venv/bin/python benchmarks/bench_split.py [--quick]  (or `make bench`)

Times `text.split.pack` (protected spans, sentence gaps, packing into 500-character posts) on
a 3,000-sentence text with abbreviations ("Dr.", "U.N.", "e.g.") and on a 300-sentence one in
the same run: with linear splitting the ratio is about 10.
"""

from __future__ import annotations

from common import measure, rounds, row, timed_row

from aspdigest.text.split import pack, sentence_gaps

SENTENCES = [
    "The panel discussed accountability for crimes against women and girls.",
    "Dr. Amara Mensah said the U.N. must act now, e.g. by funding the Court.",
    "Speakers called for survivor-centred investigations and lasting reparations!",
    "Was the veto used again?",
]


def summary(count: int) -> str:
    return " ".join(SENTENCES[i % len(SENTENCES)] for i in range(count))


def main() -> None:
    runs = rounds(3, 1)
    big, small = summary(3000), summary(300)

    def split(text: str) -> None:
        sentence_gaps(text, 0, len(text))
        pack(text, lambda start, end: end - start <= 500)

    large = measure(lambda: split(big), runs)
    timed_row("a 3,000-sentence summary split into posts", large, 2.0, unit="s")
    tenth = measure(lambda: split(small), runs)
    row(
        "  3,000 vs 300 sentences (linear: ~10)",
        large.wall / tenth.wall,
        "",
        runs,
        "≈ 10",
        None,
        f"CPU ratio {large.cpu / max(tenth.cpu, 1e-9):.1f}",
    )


if __name__ == "__main__":
    main()
