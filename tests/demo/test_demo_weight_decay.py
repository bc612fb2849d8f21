"""The weight-decay section: its edge rule (hand-checked grids) and its claims on 3 seeds."""

from __future__ import annotations

import math

import pytest

from gradwise.demo._weight_decay import EDGE_TOLERANCE, decay_edges, edge_slope


def test_edge_is_the_largest_decay_within_the_tolerance_of_the_rows_best():
    decays = [0.1, 1.0, 3.0, 10.0]
    grid = [
        [0.20, 0.18, 0.25, 0.90],  # best 0.18: 0.25 is within 0.1, 0.90 is not
        [0.30, 0.10, 0.21, 0.90],  # 0.21 is 0.11 above the best: the edge is 1.0
        [math.nan, 0.50, math.inf, 0.55],  # NaN/inf cells never count; 0.55 is the last decay
        [math.nan] * 4,  # nothing finite
    ]
    assert EDGE_TOLERANCE == 0.1
    edges = decay_edges(grid, decays)
    assert edges[:2] == [3.0, 1.0]
    # an edge at the grid's largest decay is not resolved (the band may go on): NaN
    assert math.isnan(edges[2]) and math.isnan(edges[3])
    assert decay_edges([[0.20, 0.18, 0.25, 0.90]], decays, tolerance=0.05) == [1.0]
    with pytest.raises(ValueError, match="ascending"):
        decay_edges([[0.1, 0.2]], [1.0, 0.1])


def test_edge_slope_in_decades_per_decade_of_lr():
    lrs = [1e-3, 3e-3, 1e-2]
    assert edge_slope(lrs, [3.0, 3.0, 3.0]) == pytest.approx(0.0, abs=1e-12)
    # lr * decay fixed: a decade down per decade of lr
    assert edge_slope(lrs, [3.0, 1.0, 0.3]) == pytest.approx(-1.0, abs=0.03)
    assert edge_slope([1e-3, 1e-2], [1e-2, 1e-1]) == pytest.approx(1.0)
    assert math.isnan(edge_slope(lrs, [3.0, math.nan, 3.0]))  # an unresolved edge fails
    assert math.isnan(edge_slope([1e-3], [3.0]))


def test_claim_margins_read_the_edges():
    from gradwise.demo._claims import sections_with_claims

    (wd,) = sections_with_claims(["weight-decay"])
    margin = {c.name: c.margin for c in wd.claims}
    edge, scale = margin["weight-decay.adamw_edge"], margin["weight-decay.l2_scale"]
    assert edge({"adamw_edge_slope": 0.0}) == pytest.approx(0.5)
    assert edge({"adamw_edge_slope": -1.0}) == pytest.approx(-0.5)  # lr * wd fixed: fails
    assert edge({"adamw_edge_slope": 0.3}) == pytest.approx(0.2)
    assert math.isnan(edge({"adamw_edge_slope": math.nan}))  # NaN fails the check
    assert scale({"edge_ratio_decades": 2.0}) == pytest.approx(1.0)
    assert scale({"edge_ratio_decades": 0.5}) == pytest.approx(-0.5)


@pytest.mark.claim
@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_weight_decay_claims_hold_on_the_quick_grids(seed, tmp_path):
    import torch

    from gradwise.demo._claims import measure, sections_with_claims

    (sec,) = sections_with_claims(["weight-decay"])
    run = measure(sec, seed, tmp_path, torch.get_num_threads())
    assert run.error is None, run.error
    assert all(m >= 0 for m in run.margins.values()), (run.margins, run.values)
