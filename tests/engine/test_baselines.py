"""Baselines: one contract suite over every strategy (seeded, duplicate-free, exhaustive), plus specifics."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest

from nastune import SearchError
from nastune.baselines import (
    BASELINES,
    DescendingMetric,
    LocalSearch,
    RandomSearch,
    encoding_codes,
    make_baseline,
    run_strategy,
)

CODES = np.array(list(itertools.product(range(3), repeat=4)), dtype=np.int64)  # 81 candidates
TARGET = np.array([2, 0, 1, 2])
VALUES = -np.abs(CODES - TARGET).sum(1).astype(float)  # unimodal, optimum at TARGET


def make(name: str, seed: int = 0, **kw: Any):
    if name == "descending_params":
        kw.setdefault("metric", CODES.sum(1).astype(float))
    return make_baseline(name, CODES, seed, **kw)


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_is_duplicate_free_and_exhaustive(name: str) -> None:
    history = run_strategy(make(name), lambda i: VALUES[i], budget=200)
    indices = [i for i, _ in history]
    assert len(indices) == len(set(indices)) == len(CODES)
    with pytest.raises(SearchError, match="every candidate"):
        _exhausted(name)


def _exhausted(name: str) -> None:
    strategy = make(name)
    run_strategy(strategy, lambda i: VALUES[i], budget=len(CODES))
    strategy.ask()


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_is_reproducible_for_a_seed(name: str) -> None:
    a = run_strategy(make(name, seed=4), lambda i: VALUES[i], budget=30)
    b = run_strategy(make(name, seed=4), lambda i: VALUES[i], budget=30)
    assert a == b


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_every_baseline_survives_failing_evaluations(name: str) -> None:
    def flaky(i: int) -> float:
        if i % 5 == 0:
            raise RuntimeError("boom")
        return float(VALUES[i])

    history = run_strategy(make(name), flaky, budget=40)
    assert len(history) == 40 and any(v is None for _, v in history)


@pytest.mark.parametrize("name", ["evolution", "local_search", "tpe"])
def test_model_based_and_local_baselines_beat_random_search_on_a_unimodal_landscape(name: str) -> None:
    def steps(strategy_name: str, seed: int) -> int:
        optimum = int(np.argmax(VALUES))
        history = run_strategy(make(strategy_name, seed), lambda i: VALUES[i], 81, stop=lambda i, v: i == optimum)
        return len(history)

    assert np.mean([steps(name, s) for s in range(6)]) < np.mean([steps("random", s) for s in range(6)])


def test_run_strategy_stops_when_asked() -> None:
    history = run_strategy(RandomSearch(CODES, 0), lambda i: VALUES[i], 81, stop=lambda i, v: v == 0.0)
    assert history[-1][1] == 0.0 and all(v != 0.0 for _, v in history[:-1])


def test_descending_metric_orders_by_metric_and_breaks_ties_at_random() -> None:
    metric = CODES.sum(1).astype(float)
    orders = []
    for seed in (0, 1):
        history = run_strategy(DescendingMetric(CODES, seed, metric=metric), lambda i: VALUES[i], 81)
        got = metric[[i for i, _ in history]]
        assert np.all(np.diff(got) <= 0)
        orders.append([i for i, _ in history])
    assert orders[0] != orders[1]
    with pytest.raises(SearchError, match="metric"):
        DescendingMetric(CODES, 0)


def test_local_search_neighbours_differ_in_exactly_one_position() -> None:
    ls = LocalSearch(CODES, 0)
    neigh = ls.neighbours(0)
    assert len(neigh) == 4 * 2
    assert all((CODES[k] != CODES[0]).sum() == 1 for k in neigh)


def test_local_search_climbs_to_the_optimum_of_a_unimodal_landscape() -> None:
    optimum = int(np.argmax(VALUES))
    history = run_strategy(LocalSearch(CODES, 3), lambda i: VALUES[i], 81, stop=lambda i, v: i == optimum)
    assert history[-1][0] == optimum and len(history) < 60


def test_encoding_codes_from_a_space_or_an_array(make_grid_space) -> None:
    space = make_grid_space(pretrained=False)
    codes = encoding_codes(space)
    assert codes.shape == (64, 3) and codes.min() == 0 and codes.max() == 3
    np.testing.assert_array_equal(encoding_codes(np.array([[5, "a"], [7, "b"]], dtype=object)), [[0, 0], [1, 1]])
    with pytest.raises(SearchError, match="unknown baseline"):
        make_baseline("hill", CODES)
