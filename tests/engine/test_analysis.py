"""nastune.analysis: curves, fronts and hypervolume against hand-computed figures."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from nastune.analysis import (
    best_curve,
    expected_random_search_curve,
    held_out_kendall_tau,
    hypervolume_2d,
    non_dominated,
)


def test_hypervolume_of_a_hand_computed_two_point_front() -> None:
    # value maximised, cost minimised, reference (0, 10): point A (4, 2) and B (6, 5)
    # A dominates [0,4] x [2,10] = 32; B adds (6-4) x [5,10] = 10; C (3, 6) is dominated.
    assert hypervolume_2d([4, 6, 3], [2, 5, 6], reference=(0, 10)) == pytest.approx(42.0)


def test_points_that_do_not_beat_the_reference_add_nothing() -> None:
    assert hypervolume_2d([1, 5], [11, 12], reference=(0, 10)) == 0.0
    assert hypervolume_2d([], [], reference=(0, 10)) == 0.0


def test_non_dominated_flags_the_front_and_its_exact_duplicates() -> None:
    flags = non_dominated([4, 6, 3, 4, 6], [2, 5, 6, 2, 7])
    assert flags.tolist() == [True, True, False, True, False]


def test_expected_random_search_curve_matches_enumeration() -> None:
    values = np.array([0.3, 0.9, 0.1, 0.5, 0.7])
    curve = expected_random_search_curve(values, 5)
    for k in range(1, 6):
        bests = [max(c) for c in itertools.combinations(values, k)]
        assert curve[k - 1] == pytest.approx(np.mean(bests), rel=1e-12)


def test_best_curve_keeps_the_best_per_fidelity_and_ignores_failures() -> None:
    records = [
        {"index": 1, "fidelity": "lo", "value": 0.5, "budget_units": 0.2, "cost": 2},
        {"index": 2, "fidelity": "hi", "value": 0.4, "budget_units": 1, "cost": 10},
        {"index": 3, "fidelity": "hi", "value": None, "budget_units": 1, "cost": 10},
        {"index": 4, "fidelity": "hi", "value": 0.3, "budget_units": 1, "cost": 10},
    ]
    curve = best_curve(records)
    assert curve["best_hi"] == [None, 0.4, 0.4, 0.4]
    assert curve["best_lo"] == [0.5, 0.5, 0.5, 0.5]
    assert curve["budget_units"] == pytest.approx([0.2, 1.2, 2.2, 3.2])


def test_held_out_kendall_tau_is_one_for_a_perfect_predictor_and_low_for_noise() -> None:
    rng = np.random.default_rng(0)
    profile = {"params": rng.random(200)}

    def perfect(training, held_out):
        assert np.isnan(training["params"][held_out]).all()
        return {"params": (profile["params"][held_out], np.zeros(len(held_out)))}

    def noise(training, held_out):
        return {"params": (rng.random(len(held_out)), np.zeros(len(held_out)))}

    assert held_out_kendall_tau(profile, perfect)["params"]["tau"] == pytest.approx(1.0)
    assert abs(held_out_kendall_tau(profile, noise)["params"]["tau"]) < 0.6
    assert held_out_kendall_tau({"params": np.full(200, np.nan)}, perfect) == {}
