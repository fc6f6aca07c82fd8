"""Conclusions rest on evidence that could have come out the other way (issue 22's rule).

Wherever a lesson's prose draws a comparison as a conclusion ("no clear difference", "clearly better",
"beats ... on every seed"), a code cell shortly before it must compute that comparison over several
seeds or resamples and **assert** its outcome: a verdict of :mod:`course_utils.comparison`, an interval
test, or an every-seed check. A summary (the last cell) restates conclusions already backed above and
is not scanned; neither is prose that cites another lesson, nor a page that runs no code (the wrap-up).
The scanner is tested on snippets, so it is known to be able to fail.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSONS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CONCLUSION = re.compile(r"no clear difference|clearly (?:better|worse|ahead|behind|beats?)|on every seed|in every seed",
                        re.IGNORECASE)
#: An assertion that could fail if the comparison came out the other way.
EVIDENCE = re.compile(r"assert[^\n]*(?:verdict|no clear difference|\.all\(\)|\ball\(|min\(|max\(|overlap|interval|low|high"
                      r"|excludes|\bci\b|_ci|\bboot)", re.IGNORECASE)
LOOKBACK = 4  # code cells before the prose that may hold its evidence


def unbacked_conclusions(cells: list[dict]) -> list[str]:
    """Markdown cells (index: first words) that state a comparison no code cell before them asserts."""
    flagged = []
    for i, cell in enumerate(cells[:-1]):  # the last cell is the summary
        text = "".join(cell["source"])
        if cell["cell_type"] != "markdown" or not CONCLUSION.search(text):
            continue
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", text) if CONCLUSION.search(s)]
        if all(re.search(r"lesson \d\d|lessons? \d", s, re.IGNORECASE) for s in sentences):
            continue  # it cites a result measured (and asserted) in another lesson
        nearby = [c for c in cells[:i] if c["cell_type"] == "code"][-LOOKBACK:]
        if re.search(r"the cells? below", text, re.IGNORECASE):  # "the cell below asserts each statement"
            nearby += [c for c in cells[i + 1:] if c["cell_type"] == "code"][:1]
        if not any(EVIDENCE.search("".join(c["source"])) for c in nearby):
            flagged.append(f"cell {i}: {text.strip()[:90]}")
    return flagged


def _cells(*pairs: tuple[str, str]) -> list[dict]:
    return [{"cell_type": kind, "source": [text]} for kind, text in pairs] + [{"cell_type": "markdown", "source": ["## Summary"]}]


def test_the_scanner_flags_a_conclusion_without_an_asserted_comparison():
    unbacked = _cells(("code", "print(a.mean(), b.mean())"), ("markdown", "The two give no clear difference."))
    assert unbacked_conclusions(unbacked)
    printed_only = _cells(("code", "diff = paired_difference(a, b)\nprint(diff)"), ("markdown", "So: no clear difference."))
    assert unbacked_conclusions(printed_only)


def test_the_scanner_accepts_an_asserted_verdict_a_citation_and_an_assertion_announced_below():
    below = [{"cell_type": "markdown", "source": ["Read it (the cell below asserts each statement): no clear difference."]},
             {"cell_type": "code", "source": ["assert diff.verdict == 'no clear difference'"]},
             {"cell_type": "markdown", "source": ["## Summary"]}]
    assert not unbacked_conclusions(below)
    backed = _cells(("code", "diff = paired_difference(a, b)\nassert diff.verdict == 'no clear difference'"),
                    ("markdown", "So: no clear difference."))
    assert not unbacked_conclusions(backed)
    cited = _cells(("markdown", "In lesson 02, dropping low-agreement tweets made no clear difference."))
    assert not unbacked_conclusions(cited)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_every_comparison_the_prose_concludes_is_asserted_in_code(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    if not any(c["cell_type"] == "code" for c in cells):
        pytest.skip(f"{path.name} runs no code: a recap page, whose every result is asserted in the lesson it names")
    flagged = unbacked_conclusions(cells)
    assert not flagged, (f"{path.name} states a comparison that no code cell before it asserts "
                         "(compute it over seeds with course_utils.comparison and assert the verdict):\n" + "\n".join(flagged))
