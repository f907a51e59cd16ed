"""Hardware-aware search: constraints inside the search, dict-valued evaluators, Pareto front and hypervolume."""

from __future__ import annotations

import csv
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nastune import SearchError, SearchInstance, create_search_space
from nastune.acquisition import ExpectedImprovement
from nastune.objectives import (
    FeasibilityWeighted,
    Goals,
    hypervolume,
    hypervolume_improvement_2d,
    non_domination_probability,
    pareto_mask,
)
from tests.engine.conftest import FAST_SURROGATE


def accuracy(encoding: tuple) -> float:
    """Grows with every position (so the unconstrained optimum is the largest, slowest network)."""
    return float(sum(encoding)) + 0.1 * encoding[0]


def latency(encoding: tuple) -> float:
    return float(np.exp(sum(encoding) / 2.0))


def grid_space(tmp_path: Path, *, known_share: float = 1.0, seed: int = 0) -> Any:
    """All 4**3 encodings; ``latency`` profiled for ``known_share`` of them (the rest NaN, predicted)."""
    encodings = list(itertools.product(range(4), repeat=3))
    space = create_search_space("grid", tmp_path / "grid.nastune", encodings)
    lat = np.array([latency(e) for e in encodings])
    if known_share < 1.0:
        hidden = np.random.default_rng(seed).random(len(lat)) >= known_share
        lat = np.where(hidden, np.nan, lat)
    space.profile["latency"] = lat
    space.profile["balance"] = -np.abs(np.asarray(encodings)[:, 0] - np.asarray(encodings)[:, 1]).astype(float)
    space.pretrain(seed=seed, progress=False, **FAST_SURROGATE)
    return space


# -- hypervolume and fronts ------------------------------------------------------------------------------------
def test_hypervolume_matches_a_hand_computed_2d_staircase() -> None:
    # maximised points (3, 1), (2, 2), (1, 3) over reference (0, 0): strips of heights 3, 2, 1 and width 1
    assert hypervolume(np.array([[3, 1], [2, 2], [1, 3]]), [0, 0]) == pytest.approx(6.0, abs=1e-12)
    # a dominated point and one behind the reference add nothing
    assert hypervolume(np.array([[3, 1], [2, 2], [1, 3], [1, 1], [-1, 9]]), [0, 0]) == pytest.approx(6.0)


def test_hypervolume_in_3d_by_inclusion_exclusion() -> None:
    # boxes 2x1x1 and 1x2x1 overlap in a 1x1x1 cube: 2 + 2 - 1
    assert hypervolume(np.array([[2, 1, 1], [1, 2, 1]]), [0, 0, 0]) == pytest.approx(3.0, abs=1e-12)
    assert hypervolume(np.array([[1, 2, 3]]), [0, 0, 0]) == pytest.approx(6.0, abs=1e-12)


def test_hypervolume_improvement_equals_the_difference_of_hypervolumes() -> None:
    rng = np.random.default_rng(3)
    front = rng.random((6, 2))
    candidates = rng.random((200, 2)) * 1.2
    reference = np.array([0.05, 0.1])
    base = hypervolume(front, reference)
    expected = np.array([hypervolume(np.vstack([front, c]), reference) - base for c in candidates])
    np.testing.assert_allclose(hypervolume_improvement_2d(candidates, front, reference), expected, atol=1e-12)


def test_pareto_mask_keeps_only_non_dominated_rows() -> None:
    points = np.array([[1, 1], [2, 0], [0, 2], [0.5, 0.5], [2, 0]])
    assert pareto_mask(points).tolist() == [True, True, True, False, True]


def test_non_domination_probability_by_hand_and_against_sampling() -> None:
    front = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [1.5, 1.5]])  # the last row is dominated
    known = np.array([[2.5, 1.5], [1.5, 1.5], [4.0, 0.0], [0.5, 3.5]])
    assert non_domination_probability(known, np.zeros_like(known), front).tolist() == [1.0, 0.0, 1.0, 1.0]
    # first objective N(2, 1), second known to be 2: dominated exactly when the first is <= 2
    half = non_domination_probability(np.array([[2.0, 2.0]]), np.array([[1.0, 0.0]]), front)
    assert half[0] == pytest.approx(0.5, abs=1e-12)
    rng = np.random.default_rng(0)
    mean, std = rng.normal(2.0, 1.0, (5, 2)), rng.uniform(0.2, 1.5, (5, 2))
    draws = mean[:, None, :] + std[:, None, :] * rng.standard_normal((5, 100_000, 2))
    dominated = np.any(np.all(front[None, None, :3, :] >= draws[:, :, None, :], axis=-1), axis=-1)
    np.testing.assert_allclose(non_domination_probability(mean, std, front), 1.0 - dominated.mean(1), atol=0.01)
    assert non_domination_probability(mean, std, np.empty((0, 2))).tolist() == [1.0] * 5


# -- goals ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("spec, fragment", [
    ({"latency": ("=<", 1)}, "operator"),
    ({"latency": ("<=", "fast")}, "not a finite number"),
    ({"latency": 3}, "(op, bound)"),
])
def test_malformed_constraints_are_rejected_with_the_reason(spec: Any, fragment: str) -> None:
    with pytest.raises(SearchError, match=fragment.replace("(", r"\(").replace(")", r"\)")):
        Goals(constraints=spec)


def test_an_objective_direction_must_be_max_or_min() -> None:
    with pytest.raises(SearchError, match="'max' or 'min'"):
        Goals(objectives={"accuracy": "up"})


def test_feasibility_weighting_scales_ei_by_the_probability() -> None:
    samples = np.array([[1.0, 1.0, 0.0], [1.2, 1.2, 0.1]])
    p = np.array([1.0, 0.01, 1.0])
    rng = np.random.default_rng(0)
    base = ExpectedImprovement().score(samples, 0.5, rng)
    weighted = FeasibilityWeighted(ExpectedImprovement(), p).score(samples, 0.5, rng)
    np.testing.assert_allclose(weighted, base * p, rtol=1e-12)


# -- constraints inside the search --------------------------------------------------------------------------------
def test_no_almost_surely_infeasible_candidate_is_proposed_while_feasible_ones_remain(tmp_path: Path) -> None:
    space = grid_space(tmp_path, known_share=0.3)
    bound = latency((1, 1, 1))  # sum <= 3: 20 of 64 encodings are feasible
    s = SearchInstance("c", None, search_space=space, hi_fi_eval=accuracy, seed=0, progress=False, n_initial=4,
                       constraints={"latency": ("<=", bound)})
    mean, std = space.surrogate.predict_metrics(space.features)["latency"]
    p = s.feasibility()
    known = np.isfinite(space.profile["latency"])
    far_outside = np.where(known, space.profile["latency"] > bound, mean > bound + 3 * np.maximum(std, 1e-12))
    assert far_outside.sum() > 10 and (~far_outside).sum() > 15  # the test needs both kinds
    s.run_search(15)
    proposed = [e["index"] for e in s.history]
    assert not any(far_outside[i] for i in proposed), [i for i in proposed if far_outside[i]]
    assert all(p[i] >= 0.05 for i in proposed)
    # best is the best feasible result, and it is a true feasible candidate
    enc, value = s.best
    assert latency(enc) <= bound and value == max(accuracy(space.encodings[i]) for i in proposed
                                                  if latency(space.encodings[i]) <= bound)


def test_the_constrained_search_finds_the_constrained_optimum_quickly(tmp_path: Path) -> None:
    space = grid_space(tmp_path)
    bound = latency((1, 1, 1))
    s = SearchInstance("c", None, search_space=space, hi_fi_eval=accuracy, seed=1, progress=False, n_initial=4,
                       constraints={"latency": ("<=", bound)})
    s.run_search(12)
    assert s.best[0] == (3, 0, 0)  # sum 3 with the largest first position
    assert all(latency(tuple(e["encoding"])) <= bound for e in s.history)  # the profile is exact: no waste


def test_a_constraint_on_a_value_the_evaluator_returns_decides_best(tmp_path: Path) -> None:
    space = grid_space(tmp_path)

    def evaluate(encoding: tuple) -> dict[str, float]:
        return {"accuracy": accuracy(encoding), "memory_mb": float(sum(encoding))}

    s = SearchInstance("c", None, search_space=space, hi_fi_eval=evaluate, seed=0, progress=False, n_initial=5,
                       objectives={"accuracy": "max"}, constraints={"memory_mb": ("<", 4)})
    s.run_search(12)
    feasible = [e for e in s.history if e["objectives"]["memory_mb"] < 4]
    assert feasible and s.best[1] == max(e["value"] for e in feasible)
    assert sum(s.best[0]) < 4


# -- several objectives ----------------------------------------------------------------------------------------
def two_objectives(encoding: tuple) -> dict[str, float]:
    return {"accuracy": accuracy(encoding), "latency_ms": 1000 * latency(encoding)}


def test_a_dict_valued_evaluator_keeps_every_objective_and_its_primary_value(tmp_path: Path) -> None:
    space = grid_space(tmp_path)
    s = SearchInstance("mo", tmp_path / "mo.json", search_space=space, hi_fi_eval=two_objectives, seed=0,
                       progress=False, n_initial=3, objectives={"accuracy": "max", "latency_ms": "min"})
    s.run_search(6)
    for e in s.history:
        assert e["objectives"] == two_objectives(tuple(e["encoding"]))
        assert e["value"] == e["objectives"]["accuracy"]
    resumed = SearchInstance("mo", tmp_path / "mo.json", search_space=space, progress=False)
    assert resumed.history == s.history and resumed.goals.multi


def test_a_minimised_primary_objective_is_stored_negated_as_value(tmp_path: Path) -> None:
    space = grid_space(tmp_path)
    s = SearchInstance("mo", None, search_space=space, hi_fi_eval=None, seed=0, progress=False,
                       objectives={"latency_ms": "min", "accuracy": "max"})
    s.tell(5, "hi", {"latency_ms": 4.0, "accuracy": 0.9})
    assert s.history[0]["value"] == -4.0 and s.best[1] == -4.0


@pytest.mark.parametrize("objectives, result, fragment", [
    ({}, {"accuracy": 1.0}, "declare objectives"),
    ({"accuracy": "max"}, {"latency": 1.0}, "no primary objective 'accuracy'"),
    ({"accuracy": "max"}, {"accuracy": "high"}, "accuracy='high', not a number"),
])
def test_a_bad_dict_result_is_refused_with_the_fix(tmp_path: Path, objectives: Any, result: Any,
                                                   fragment: str) -> None:
    space = grid_space(tmp_path)
    s = SearchInstance("mo", None, search_space=space, seed=0, progress=False, objectives=objectives)
    with pytest.raises(SearchError, match=fragment):
        s.tell(0, "hi", result)


def test_the_history_csv_carries_every_objective(tmp_path: Path) -> None:
    space = grid_space(tmp_path)
    s = SearchInstance("mo", None, search_space=space, hi_fi_eval=two_objectives, seed=0, progress=False,
                       n_initial=3, objectives={"accuracy": "max", "latency_ms": "min"})
    s.run_search(5)
    path = s.write_csv(tmp_path / "history.csv")
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 5
    assert {"index", "fidelity", "value", "accuracy", "latency_ms", "feasible"} <= set(rows[0])
    for row, e in zip(rows, s.history, strict=True):
        assert float(row["accuracy"]) == e["objectives"]["accuracy"]
        assert float(row["latency_ms"]) == e["objectives"]["latency_ms"]


@pytest.mark.parametrize("pareto_acquisition", ["membership", "front", "ehvi"])
def test_the_pareto_search_grows_the_hypervolume_and_reports_the_front(tmp_path: Path,
                                                                      pareto_acquisition: str) -> None:
    space = grid_space(tmp_path)
    s = SearchInstance("mo", None, search_space=space, hi_fi_eval=lambda e: {"accuracy": accuracy(e)}, seed=0,
                       progress=False, n_initial=5, objectives={"accuracy": "max", "latency": "min"},
                       pareto_acquisition=pareto_acquisition)
    s.run_search(20)
    progress = s.pareto_progress()
    curve = progress["hypervolume"]
    assert len(curve) == 20 and all(b >= a for a, b in itertools.pairwise(curve)) and curve[-1] > 0
    # the reported front is exactly the non-dominated set of the results (latency from the profile)
    pts = np.array([[accuracy(tuple(e["encoding"])), -latency(tuple(e["encoding"]))] for e in s.history])
    expected = {s.history[i]["index"] for i in np.flatnonzero(pareto_mask(pts))}
    assert {row["index"] for row in progress["front"]} == expected
    # the final figure is the hand-checkable hypervolume of those points over the reported reference
    ref = progress["reference"]
    assert curve[-1] == pytest.approx(hypervolume(pts, [ref["accuracy"], -ref["latency"]]), rel=1e-12)
    # the true front of the grid: for each latency level (sum) the best accuracy (first position largest)
    everything = np.array([[accuracy(e), -latency(e)] for e in space.encodings])
    true_front = set(np.flatnonzero(pareto_mask(everything)).tolist())
    found = expected & true_front
    assert len(found) >= 4, (sorted(expected), sorted(true_front))


def test_the_front_acquisition_takes_an_ensembles_members_as_its_draws(tmp_path: Path) -> None:
    # the fine-tuned ensemble has no function sampler: its members are the joint draws
    space = grid_space(tmp_path)
    s = SearchInstance("mo", None, search_space=space, hi_fi_eval=lambda e: {"accuracy": accuracy(e)}, seed=0,
                       progress=False, n_initial=5, objectives={"accuracy": "max", "latency": "min"},
                       pareto_acquisition="front", surrogate="ensemble")
    s.run_search(12)
    assert [e["reason"] for e in s.history].count("acquisition") >= 5
    everything = np.array([[accuracy(e), -latency(e)] for e in space.encodings])
    true_front = set(np.flatnonzero(pareto_mask(everything)).tolist())
    assert len(true_front & {e["index"] for e in s.history}) >= 3


def test_an_unknown_pareto_acquisition_is_refused_with_the_choices(tmp_path: Path) -> None:
    with pytest.raises(SearchError, match="'membership', 'front' or 'ehvi'"):
        SearchInstance("mo", None, search_space=grid_space(tmp_path), seed=0, progress=False,
                       objectives={"accuracy": "max", "latency": "min"}, pareto_acquisition="hv")


def test_the_same_seed_gives_the_same_pareto_history(tmp_path: Path) -> None:
    space = grid_space(tmp_path)
    runs = []
    for _ in range(2):
        s = SearchInstance("mo", None, search_space=space, hi_fi_eval=two_objectives, seed=4, progress=False,
                           n_initial=4, objectives={"accuracy": "max", "latency_ms": "min"})
        s.run_search(8)
        runs.append([(e["index"], e["value"]) for e in s.history])
    assert runs[0] == runs[1]


def test_a_pareto_search_explores_when_the_hypervolume_stalls_not_the_primary(tmp_path: Path) -> None:
    space = grid_space(tmp_path)
    s = SearchInstance("mo", None, search_space=space, seed=0, progress=False, n_initial=2, stall_patience=3,
                       objectives={"accuracy": "max", "latency": "min"})
    # the slowest cell is the most accurate; then ever faster, less accurate cells: the primary objective's
    # best never improves, but each result widens the front
    for encoding, acc in (((3, 3, 3), 100.0), ((2, 2, 2), 50.0), ((1, 1, 1), 20.0), ((0, 0, 0), 5.0)):
        s.tell(space.index_of(encoding), "hi", {"accuracy": acc})
    assert s.ask(1)[0].reason == "acquisition"
    # three dominated results in a row: the hypervolume stalls
    for encoding in ((3, 3, 2), (3, 2, 3)):
        s.tell(space.index_of(encoding), "hi", {"accuracy": 1.0})
    s.tell(s.pending[0]["index"], "hi", {"accuracy": 0.5})
    assert s.ask(1)[0].reason == "explore"
