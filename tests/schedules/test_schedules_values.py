"""Schedule values against hand-computed formulas; validation; pickling; properties."""

from __future__ import annotations

import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradwise.errors import ConfigError
from gradwise.schedules import (
    Schedule,
    constant,
    cosine,
    exponential,
    inverse_sqrt,
    linear_warmup,
    one_cycle,
    schedule,
    sequence,
    slanted_triangular,
    step_decay,
    warmup_cosine,
)

ALL = [
    constant(0.5),
    step_decay(10, 0.5),
    exponential(0.97),
    cosine(100, min_factor=0.1),
    cosine(50, cycle_steps=10, cycle_mult=2.0),
    linear_warmup(8, 0.2),
    warmup_cosine(100, 10, min_factor=0.05),
    one_cycle(100, pct_start=0.25, anneal="linear", three_phase=True),
    slanted_triangular(200, cut_frac=0.2, ratio=16),
    inverse_sqrt(16),
    sequence([linear_warmup(5), cosine(95)], [5]),
]


def test_slanted_triangular_matches_ulmfit_equation_3():
    # Howard & Ruder (2018) eq. 3, written out independently for T=1000, cut_frac=0.1, ratio=32.
    T, cut_frac, ratio = 1000, 0.1, 32
    cut = 100
    s = slanted_triangular(T, cut_frac=cut_frac, ratio=ratio)
    for t in [0, 1, 50, 99, 100, 101, 500, 999, 1000]:
        p = t / cut if t < cut else 1 - (t - cut) / (cut * (1 / cut_frac - 1))
        assert s(t) == pytest.approx((1 + p * (ratio - 1)) / ratio, rel=1e-15, abs=1e-15)
    assert s(0) == 1 / 32 and s(100) == 1.0 and s(1000) == pytest.approx(1 / 32)
    assert s(5000) == pytest.approx(1 / 32)  # held after the horizon
    assert s(550) == pytest.approx((1 + 0.5 * 31) / 32)  # halfway down


def test_inverse_sqrt_hand_values():
    s = inverse_sqrt(100)
    assert [s(t) for t in (0, 25, 50, 100)] == [0.0, 0.25, 0.5, 1.0]
    assert s(400) == 0.5 and s(10_000) == pytest.approx(0.1)
    # Vaswani et al.: d^-0.5 * min(n^-0.5, n * W^-1.5) for n >= 1, normalised by its peak W^-0.5.
    for t in range(100, 2000, 37):
        assert s(t) == pytest.approx(min(t**-0.5, t * 100**-1.5) / 100**-0.5, rel=1e-14)


def test_cosine_restarts_hand_values():
    s = cosine(cycle_steps=4, cycle_mult=2)
    half = lambda pct: (1 + math.cos(math.pi * pct)) / 2  # noqa: E731
    # cycles of 4, 8, 16 steps start at 0, 4, 12, 28
    expected = [half(t / 4) for t in range(4)] + [half(t / 8) for t in range(8)]
    expected += [half(t / 16) for t in range(16)] + [1.0]
    assert [s(t) for t in range(29)] == pytest.approx(expected, abs=1e-15)


def test_cosine_restarts_with_fractional_mult_land_on_boundaries():
    s = cosine(cycle_steps=8, cycle_mult=1.5)  # cycles 8, 12, 18, 27 start at 0, 8, 20, 38, 65
    for start in (0, 8, 20, 38, 65):
        assert s(start) == 1.0
    assert s(19) == pytest.approx((1 + math.cos(math.pi * 11 / 12)) / 2)


def test_warmup_cosine_hand_values_and_hold():
    s = warmup_cosine(110, warmup=10, min_factor=0.1)
    assert s(0) == 0.0 and s(5) == 0.5 and s(10) == 1.0
    assert s(60) == pytest.approx(0.55) and s(110) == pytest.approx(0.1) and s(10**6) == s(110)


def test_sequence_offsets_each_schedule_to_its_start():
    s = sequence([constant(0.1), step_decay(2, 0.5), exponential(0.9)], [3, 7])
    assert [s(t) for t in range(3)] == [0.1] * 3
    assert [s(t) for t in range(3, 7)] == [1.0, 1.0, 0.5, 0.5]
    assert s(7) == 1.0 and s(9) == pytest.approx(0.81)
    assert s.total_steps is None
    assert sequence([linear_warmup(5), cosine(95)], [5]).total_steps == 100


@pytest.mark.parametrize("s", ALL, ids=lambda s: type(s).__name__)
def test_schedules_pickle_print_and_round_trip_through_config(s):
    assert isinstance(s, Schedule)
    again = pickle.loads(pickle.dumps(s))
    assert again == s and [again(t) for t in range(60)] == [s(t) for t in range(60)]
    assert repr(s).startswith(type(s).__name__ + "(")
    config = s.to_config()
    assert schedule(**config) == s
    hash(s)  # frozen dataclasses are hashable; a schedule can key a dict
    with pytest.raises(AttributeError):
        s.total_steps = 3  # frozen


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: step_decay(0), "step_size"),
        (lambda: step_decay(5, gamma=0), "gamma"),
        (lambda: exponential(-1), "gamma"),
        (lambda: cosine(), "total_steps"),
        (lambda: cosine(10, min_factor=2), "min_factor"),
        (lambda: cosine(cycle_steps=5, cycle_mult=0.5), "cycle_mult"),
        (lambda: linear_warmup(-1), "warmup_steps"),
        (lambda: linear_warmup(4, start_factor=1.5), "start_factor"),
        (lambda: warmup_cosine(10, warmup=10), "warmup"),
        (lambda: one_cycle(100, pct_start=1.0), "pct_start"),
        (lambda: one_cycle(100, anneal="cosine"), "anneal"),
        (lambda: one_cycle(10, pct_start=0.1), "pct_start"),
        (lambda: one_cycle(100, pct_start=0.6, three_phase=True), "pct_start"),
        (lambda: slanted_triangular(5, cut_frac=0.1), "cut_frac"),
        (lambda: slanted_triangular(100, ratio=0.5), "ratio"),
        (lambda: inverse_sqrt(0), "warmup_steps"),
        (lambda: sequence([constant()], [3]), "boundaries"),
        (lambda: sequence([constant(), constant(), constant()], [5, 5]), "boundaries"),
        (lambda: step_decay(2.5), "step_size"),
        (lambda: step_decay(True), "step_size"),
    ],
)
def test_bad_arguments_raise_config_errors_naming_the_field(build, field):
    with pytest.raises(ConfigError, match=field):
        build()


def test_one_cycle_bad_anneal_suggests_the_closest():
    with pytest.raises(ConfigError, match="did you mean 'cos'"):
        one_cycle(100, anneal="coss")


def test_negative_or_fractional_step_is_rejected():
    with pytest.raises(ValueError, match=">= 0"):
        cosine(10)(-1)
    with pytest.raises(TypeError, match="integer step"):
        cosine(10)(1.5)


# ---- properties -----------------------------------------------------------------------------

steps = st.integers(min_value=0, max_value=5000)
horizons = st.integers(min_value=20, max_value=3000)
fractions = st.floats(min_value=0.0, max_value=1.0)


@settings(max_examples=60, deadline=None)
@given(total=horizons, min_factor=fractions, step=steps)
def test_cosine_stays_between_min_factor_and_one(total, min_factor, step):
    value = cosine(total, min_factor=min_factor)(step)
    assert min_factor - 1e-15 <= value <= 1.0 + 1e-15


@settings(max_examples=60, deadline=None)
@given(first=st.integers(1, 50), mult=st.floats(1.0, 3.0), min_factor=fractions, step=steps)
def test_restarts_stay_in_bounds_and_restart_at_one(first, mult, min_factor, step):
    s = cosine(cycle_steps=first, cycle_mult=mult, min_factor=min_factor)
    assert min_factor - 1e-12 <= s(step) <= 1.0 + 1e-15
    assert s(0) == 1.0


@settings(max_examples=60, deadline=None)
@given(warmup=st.integers(1, 400), start=fractions, data=st.data())
def test_linear_warmup_is_monotone_and_reaches_one(warmup, start, data):
    s = linear_warmup(warmup, start_factor=start)
    t = data.draw(st.integers(0, warmup + 5))
    assert s(t) <= s(t + 1) + 1e-15
    assert s(0) == pytest.approx(start) and s(warmup) == 1.0


@settings(max_examples=60, deadline=None)
@given(
    total=horizons,
    pct=st.floats(0.05, 0.95),
    div=st.floats(1.0, 100.0),
    final=st.floats(1.0, 1e4),
    data=st.data(),
)
def test_one_cycle_rises_then_falls_between_its_bounds(total, pct, div, final, data):
    if pct * total <= 1:
        return
    s = one_cycle(total, pct_start=pct, div_factor=div, final_div_factor=final)
    peak = math.ceil(pct * total - 1)
    t = data.draw(st.integers(0, total + 10))
    assert 1 / div / final - 1e-15 <= s(t) <= 1.0 + 1e-15
    if t + 1 <= peak:
        assert s(t) <= s(t + 1) + 1e-15
    elif t >= peak:
        assert s(t) >= s(t + 1) - 1e-15


@settings(max_examples=60, deadline=None)
@given(total=horizons, warmup_frac=st.floats(0.0, 0.5), min_factor=fractions, data=st.data())
def test_warmup_cosine_rises_then_falls(total, warmup_frac, min_factor, data):
    warmup = int(warmup_frac * total)
    s = warmup_cosine(total, warmup, min_factor=min_factor)
    t = data.draw(st.integers(0, total + 10))
    assert 0.0 <= s(t) <= 1.0
    if t + 1 <= warmup:
        assert s(t) <= s(t + 1)
    else:
        assert s(t) >= s(t + 1) - 1e-15


@settings(max_examples=60, deadline=None)
@given(
    total=st.integers(20, 3000),
    cut_frac=st.floats(0.05, 0.5),
    ratio=st.floats(1.0, 100.0),
    step=steps,
)
def test_slanted_triangular_between_one_over_ratio_and_one(total, cut_frac, ratio, step):
    s = slanted_triangular(total, cut_frac=cut_frac, ratio=ratio)
    assert 1 / ratio - 1e-15 <= s(step) <= 1.0 + 1e-15


@settings(max_examples=60, deadline=None)
@given(gamma=st.floats(0.01, 1.0), size=st.integers(1, 100), step=steps)
def test_decays_are_non_increasing(gamma, size, step):
    assert step_decay(size, gamma)(step + 1) <= step_decay(size, gamma)(step) <= 1.0
    assert exponential(gamma)(step + 1) <= exponential(gamma)(step) <= 1.0
