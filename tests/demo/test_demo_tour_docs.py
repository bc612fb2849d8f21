"""docs/demo.md, the tour's page: its table of full-section times names every section."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "demo.md"
# sections whose full versions are timed on their own pages (docs/instruct.md, docs/sweep.md)
TIMED_ELSEWHERE = {"instruct", "weight-decay"}


def _rows() -> dict[str, list[str]]:
    rows = {}
    for line in DOC.read_text().splitlines():
        m = re.match(r"^\| `([a-z-]+)` \|(.*)\|$", line)
        if m:
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


def test_tour_page_has_a_row_for_every_section():
    from gradwise.demo._registry import sections

    rows = _rows()
    names = {s.name for s in sections()}
    assert names <= set(rows), names - set(rows)
    assert set(rows) <= names, set(rows) - names  # no row for a section that is gone


def test_every_timed_full_section_is_estimated_within_five_minutes_idle():
    # the bar: each full section <= 5 minutes on an idle 2-core machine; the
    # table's third column is the idle estimate in seconds, the fourth the CPU seconds
    # with one thread it was estimated from (an estimate is never above its CPU time)
    for name, cells in _rows().items():
        if name in TIMED_ELSEWHERE:
            continue
        idle, cpu = float(cells[2]), float(cells[3])
        assert 0 < idle <= 300 and idle <= cpu, (name, cells)
