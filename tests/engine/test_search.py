"""SearchInstance: ask/tell, budget and fidelities, failures, reproducibility, JSON state and resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from nastune import SearchError, SearchInstance
from nastune.acquisition import ACQUISITIONS, DEFAULT_ACQUISITION

REPO = Path(__file__).resolve().parents[2]


def objective(encoding: tuple) -> float:
    """Maximised at (3, 2, 1, 0, ...); smooth per position, a little interaction between the first two."""
    target = (3, 2, 1, 0, 3, 1)
    value = -sum((v - t) ** 2 for v, t in zip(encoding, target, strict=False))
    return float(value - 0.5 * abs(encoding[0] - encoding[1]))


def make_search(space: Any, path: Path | None, **kwargs: Any) -> SearchInstance:
    options: dict[str, Any] = {"seed": 0, "progress": False, "n_initial": 4, "hi_fi_eval": objective}
    options.update(kwargs)
    return SearchInstance("test", path, search_space=space, **options)


def keys(history: list[dict[str, Any]]) -> list[tuple]:
    return [(e["index"], e["fidelity"], e["value"], e["predicted_mean"], e["predicted_std"]) for e in history]


def test_ask_proposes_distinct_candidates_and_tell_accepts_any_order(make_grid_space, tmp_path: Path) -> None:
    space = make_grid_space()
    s = make_search(space, tmp_path / "s.json", hi_fi_eval=None, eval_budget=20)
    first = s.ask(3)
    assert len({p.index for p in first}) == 3 and all(p.fidelity == "hi" for p in first)
    assert [p["index"] for p in s.pending] == [p.index for p in first]
    for p in reversed(first):
        s.tell(p.index, p.fidelity, objective(p.encoding), duration_s=0.1)
    assert [e["index"] for e in s.history] == [p.index for p in reversed(first)]
    assert s.pending == [] and s.spent == 3.0
    assert tuple(s.history[0]["encoding"]) == first[-1].encoding


def test_several_evaluations_in_flight_never_duplicate(make_grid_space) -> None:
    space = make_grid_space()
    s = make_search(space, None, hi_fi_eval=None, eval_budget=40, batch_size=3)
    rng = np.random.default_rng(0)
    in_flight: list[Any] = []
    proposed: list[int] = []
    while True:
        new = s.ask(3 - len(in_flight))
        proposed += [p.index for p in new]
        in_flight += new
        if not in_flight:
            break
        done = in_flight.pop(int(rng.integers(len(in_flight))))  # results come back in random order
        s.tell(done.index, done.fidelity, objective(done.encoding))
    assert len(proposed) == len(set(proposed)) == 40
    assert s.spent == 40.0 and len(s.history) == 40
    # proposals made while others were pending carry the surrogate's belief
    assert any(e["predicted_mean"] is not None for e in s.history)


def test_the_same_seed_gives_the_identical_history(make_grid_space) -> None:
    space = make_grid_space()
    a = make_search(space, None, seed=5)
    b = make_search(space, None, seed=5)
    a.run_search(12)
    b.run_search(12)
    assert keys(a.history) == keys(b.history)
    c = make_search(space, None, seed=6)
    c.run_search(12)
    assert [e["index"] for e in c.history] != [e["index"] for e in a.history]


def test_a_search_finds_better_candidates_than_its_initial_design(make_grid_space) -> None:
    space = make_grid_space(n_positions=4, n_values=5)
    s = make_search(space, None, n_initial=5)
    s.run_search(25)
    initial = max(e["value"] for e in s.history[:5])
    best = s.best
    assert best is not None and best[1] > initial
    optimum = max(objective(tuple(e)) for e in space.encodings)
    assert best[1] >= optimum - 1.0


def test_failed_evaluations_are_recorded_and_the_search_goes_on(make_grid_space) -> None:
    space = make_grid_space()
    calls: list[tuple] = []

    def flaky(encoding: tuple) -> float:
        calls.append(encoding)
        if encoding[0] == 0:
            raise RuntimeError(f"out of memory for {encoding}")
        if encoding[0] == 1:
            return math.nan
        return objective(encoding)

    s = make_search(space, None, hi_fi_eval=flaky, n_initial=12)  # random picks meet both kinds of failure
    s.run_search(20)
    failed = [e for e in s.history if e["value"] is None]
    assert failed, "the grid has failing candidates among the first 20 picks"
    assert all(e["error"] for e in failed)
    assert any("RuntimeError: out of memory" in e["error"] for e in failed)
    assert len(s.history) == 20 and s.spent == 20.0  # a failure spends its cost
    assert len({tuple(c) for c in calls}) == len(calls)  # a failed candidate is never proposed again
    assert s.best is not None and s.best[0][0] >= 2


def test_budget_is_counted_in_hi_fi_units_with_a_low_fidelity(make_grid_space) -> None:
    space = make_grid_space(n_positions=4, n_values=4)
    lo_calls: list[tuple] = []

    def lo(encoding: tuple) -> float:
        lo_calls.append(encoding)
        return objective(encoding) - 3.0

    s = make_search(space, None, hi_fi_cost=20.0, lo_fi_eval=lo, lo_fi_cost=1.0, n_initial=6, lo_fi_share=0.5)
    s.run_search(eval_budget=5)
    his = s.history
    assert s.spent <= 5.0 + 1e-9
    for e in his:
        assert e["budget_units"] == (1.0 if e["fidelity"] == "hi" else 0.05)
        assert e["cost"] == (20.0 if e["fidelity"] == "hi" else 1.0)
    lo_spent = sum(e["budget_units"] for e in his if e["fidelity"] == "lo")
    assert 0 < lo_spent <= 0.5 * 5 + 1e-9
    assert [e["fidelity"] for e in his[:6]] == ["lo"] * 6  # the initial design is screened at low fidelity
    hi_idx = [e["index"] for e in his if e["fidelity"] == "hi"]
    lo_idx = {e["index"] for e in his if e["fidelity"] == "lo"}
    assert hi_idx and set(hi_idx) <= lo_idx  # every hi-fi evaluation was screened first (screen, then promote)
    assert s.best is not None and s.best[1] == max(e["value"] for e in his if e["fidelity"] == "hi")
    curve = s.best_curve()
    assert curve["budget_units"][-1] == pytest.approx(s.spent)
    assert curve["cost"][-1] == pytest.approx(sum(e["cost"] for e in his))
    # not a unit more: the budget is exhausted
    assert s.ask(1) == [] or s.spent + s.pending_cost <= 5.0 + 1e-9


def test_ask_counts_evaluations_in_flight_against_the_budget(make_grid_space) -> None:
    space = make_grid_space()
    s = make_search(space, None, hi_fi_eval=None, eval_budget=3)
    assert len(s.ask(5)) == 3
    assert s.ask(1) == [] and s.remaining == 0.0


def test_run_search_on_an_existing_file_resumes_and_extends(make_grid_space, tmp_path: Path) -> None:
    space = make_grid_space()
    path = tmp_path / "run.json"
    a = make_search(space, path)
    a.run_search(8)
    again = make_search(space, path)
    assert keys(again.history) == keys(a.history)
    again.run_search(12)
    ref = make_search(space, None)
    ref.run_search(12)
    assert keys(again.history) == keys(ref.history)
    assert json.loads(path.read_text())["budget"] == 12


def test_state_round_trips_and_the_restored_search_continues_identically(make_grid_space) -> None:
    space = make_grid_space()
    a = make_search(space, None, hi_fi_eval=None, eval_budget=30)
    for _ in range(6):
        p = a.ask(1)[0]
        a.tell(p.index, p.fidelity, objective(p.encoding))
    pending = a.ask(2)
    state = json.loads(json.dumps(a.to_state()))  # plain JSON, as a database stores it
    b = SearchInstance.from_state(state, space, acquisition=DEFAULT_ACQUISITION, batch_size=1)
    assert b.pending == a.pending and keys(b.history) == keys(a.history)
    for s in (a, b):
        for p in pending:
            s.tell(p.index, p.fidelity, objective(p.encoding))
    assert [(p.index, p.fidelity, p.predicted_mean) for p in a.ask(3)] == [
        (p.index, p.fidelity, p.predicted_mean) for p in b.ask(3)
    ]


def test_tell_is_idempotent_and_refuses_conflicting_results(make_grid_space) -> None:
    space = make_grid_space()
    s = make_search(space, None, hi_fi_eval=None, eval_budget=10)
    p = s.ask(1)[0]
    s.tell(p.index, "hi", 1.5)
    s.tell(p.index, "hi", 1.5)  # a retried message
    assert len(s.history) == 1
    with pytest.raises(SearchError, match="already has a hi-fidelity result"):
        s.tell(p.index, "hi", 2.0)
    with pytest.raises(SearchError, match="outside the search space"):
        s.tell(10_000, "hi", 1.0)
    with pytest.raises(SearchError, match="lo_fi_cost"):
        s.tell(3, "lo", 1.0)
    s.tell(7, "hi", 0.5)  # a result the search did not propose is still recorded
    assert s.history[-1]["reason"] == "told"


def test_best_curve_is_plain_data_against_evaluations_and_cost(make_grid_space) -> None:
    space = make_grid_space()
    s = make_search(space, None, hi_fi_cost=3.0)
    s.run_search(6)
    curve = s.best_curve()
    json.dumps(curve)
    assert curve["evaluation"] == [1, 2, 3, 4, 5, 6]
    assert curve["cost"] == [3.0 * k for k in range(1, 7)]
    values = [e["value"] for e in s.history]
    assert curve["best_hi"] == [max(values[: k + 1]) for k in range(6)]
    assert curve["best_lo"] == [None] * 6


def test_predict_reports_fidelities_and_pretraining_metrics(make_grid_space) -> None:
    space = make_grid_space()
    s = make_search(space, None)
    before = s.predict([0, 1, 2])
    assert set(before) == {"size", "balance"}
    s.run_search(6)
    after = s.predict([0, 1, 2])
    assert {"hi", "size", "balance"} <= set(after)
    mean, std = after["hi"]
    assert mean.shape == std.shape == (3,) and (std >= 0).all()
    by_encoding = s.predict([tuple(space.encodings[1])])
    # float32 network: a batch of one and a batch of three may round the last bit differently (BLAS)
    np.testing.assert_allclose(by_encoding["hi"][0], mean[1:2], rtol=1e-5)


def test_state_file_is_complete_json_after_every_evaluation(make_grid_space, tmp_path: Path) -> None:
    space = make_grid_space()
    path = tmp_path / "atomic.json"
    seen: list[int] = []

    def watching(encoding: tuple) -> float:
        seen.append(len(json.loads(path.read_text())["history"]))
        return objective(encoding)

    make_search(space, path, hi_fi_eval=watching).run_search(7)
    assert seen == list(range(7))
    assert [p.name for p in tmp_path.iterdir()] == ["atomic.json"]  # no temp file left behind


@pytest.mark.parametrize("acquisition", sorted(ACQUISITIONS))
def test_every_acquisition_drives_a_batched_search(make_grid_space, acquisition: str) -> None:
    space = make_grid_space()
    s = make_search(space, None, acquisition=acquisition, batch_size=3)
    s.run_search(12, n_workers=3)
    indices = [e["index"] for e in s.history]
    assert len(indices) == len(set(indices)) == 12


@pytest.mark.parametrize(
    "options",
    [{"pretrained": False}, {"initial_design": "diverse"}, {"initial_design": "clusters"}, {"stall_patience": 2},
     {"surrogate_options": {"objective_transform": "zscore"}}],
)
def test_search_options_run_and_stay_duplicate_free(make_grid_space, options: dict[str, Any]) -> None:
    space = make_grid_space()
    s = make_search(space, None, **options)
    s.run_search(12)
    assert len({e["index"] for e in s.history}) == 12
    if options.get("stall_patience"):
        assert any(e["reason"] == "explore" for e in s.history) or s.best == max(
            ((tuple(e["encoding"]), e["value"]) for e in s.history), key=lambda t: t[1]
        )


def test_clustered_initial_design_takes_one_random_member_of_each_cluster(make_grid_space) -> None:
    space = make_grid_space()
    designs = []
    for _ in range(2):
        s = make_search(space, None, initial_design="clusters", n_initial=6, hi_fi_eval=None, eval_budget=20)
        picks = []
        for _ in range(3):  # the design asked for in batches continues where it stopped
            batch = s.ask(2)
            assert all(p.reason == "initial" for p in batch)
            picks += [p.index for p in batch]
        labels = s._clusters
        assert labels is not None and len(labels) == len(space) and len(set(labels.tolist())) == 6
        assert sorted(labels[picks].tolist()) == list(range(6))  # every cluster once, none twice
        designs.append(picks)
    assert designs[0] == designs[1]  # fixed by the seed
    other = make_search(space, None, initial_design="clusters", n_initial=6, hi_fi_eval=None, eval_budget=20, seed=1)
    assert [p.index for p in other.ask(6)] != designs[0]


def test_clustered_initial_design_of_a_constrained_search_clusters_the_feasible_candidates(make_grid_space) -> None:
    space = make_grid_space()
    size = np.asarray(space.profile["size"])
    bound = float(np.quantile(size, 0.25))
    feasible = size <= bound
    s = make_search(space, None, initial_design="clusters", n_initial=6, hi_fi_eval=None, eval_budget=20,
                    constraints={"size": ("<=", bound)})
    picks = [p.index for p in s.ask(6)]
    labels = s._clusters
    assert labels is not None
    assert feasible[picks].all()
    # every cluster holds feasible candidates, so the design covers six distinct regions of the feasible set
    assert all(feasible[labels == c].any() for c in range(6))
    assert sorted(labels[picks].tolist()) == list(range(6))


def test_bad_options_and_foreign_state_are_refused(make_grid_space, tmp_path: Path) -> None:
    space = make_grid_space()
    with pytest.raises(SearchError, match="unknown search option"):
        make_search(space, None, n_initail=3)
    with pytest.raises(SearchError, match="lo_fi_cost"):
        make_search(space, None, lo_fi_eval=objective)
    with pytest.raises(SearchError, match="eval_budget"):
        make_search(space, None).run_search()
    path = tmp_path / "a.json"
    make_search(space, path).run_search(3)
    other = make_grid_space(n_positions=2, n_values=4, pretrained=False)
    with pytest.raises(SearchError, match="space of 64 encodings"):
        make_search(other, path)


# -- resume after SIGKILL --------------------------------------------------------------------------------------

RUNNER = textwrap.dedent(
    """
    import json, sys, time
    import torch
    torch.set_num_threads(1)
    from nastune import SearchInstance, load_search_space

    bundle, state, calls, delay, budget = sys.argv[1:6]
    space = load_search_space(bundle)

    def hi(encoding):
        time.sleep(float(delay))
        with open(calls, "a") as fh:
            fh.write(json.dumps(list(encoding)) + "\\n")
        target = (3, 2, 1)
        return float(-sum((v - t) ** 2 for v, t in zip(encoding, target)) - 0.5 * abs(encoding[0] - encoding[1]))

    s = SearchInstance("kill", state, search_space=space, hi_fi_eval=hi, seed=3, progress=False, n_initial=4)
    s.run_search(int(budget))
    """
)


def _runner(tmp_path: Path, bundle: Path, state: Path, calls: Path, delay: float, budget: int) -> subprocess.Popen:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, str(script), str(bundle), str(state), str(calls), str(delay), str(budget)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _wait_for(predicate: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_resume_after_sigkill_loses_and_repeats_no_finished_evaluation(make_grid_space, tmp_path: Path) -> None:
    space = make_grid_space()
    bundle = space.save(tmp_path / "grid.nastune")
    budget = 14
    ref_state, kill_state = tmp_path / "ref.json", tmp_path / "kill.json"
    ref = _runner(tmp_path, bundle, ref_state, tmp_path / "ref.calls", 0.0, budget)
    assert ref.wait(timeout=300) == 0, ref.stdout.read().decode() if ref.stdout else ""

    def recorded() -> int:
        try:
            return len(json.loads(kill_state.read_text())["history"])
        except (OSError, ValueError):
            return 0

    victim = _runner(tmp_path, bundle, kill_state, tmp_path / "kill.calls", 0.3, budget)
    _wait_for(lambda: recorded() >= 6, timeout=300)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=60)
    at_kill = json.loads(kill_state.read_text())
    assert 6 <= len(at_kill["history"]) < budget

    resumed = _runner(tmp_path, bundle, kill_state, tmp_path / "kill.calls", 0.0, budget)
    assert resumed.wait(timeout=300) == 0, resumed.stdout.read().decode() if resumed.stdout else ""
    final = json.loads(kill_state.read_text())["history"]
    reference = json.loads(ref_state.read_text())["history"]
    assert final[: len(at_kill["history"])] == at_kill["history"]  # nothing finished was lost or changed
    pairs = [(e["index"], e["fidelity"]) for e in final]
    assert len(pairs) == len(set(pairs)) == budget  # nothing evaluated twice
    assert keys(final) == keys(reference)  # and the search went on exactly as if never killed
    calls = [tuple(json.loads(line)) for line in (tmp_path / "kill.calls").read_text().splitlines()]
    finished = {tuple(e["encoding"]) for e in at_kill["history"]}
    assert all(calls.count(c) == 1 for c in finished)  # no finished evaluation was run again


def test_failures_in_a_row_stop_the_search_with_the_last_error(make_grid_space, tmp_path: Path) -> None:
    space = make_grid_space()

    def broken(encoding: tuple) -> float:
        raise RuntimeError(f"CUDA out of memory for {encoding}")

    s = make_search(space, tmp_path / "s.json", hi_fi_eval=broken)
    with pytest.raises(SearchError, match="5 evaluations failed in a row; the last error: RuntimeError: CUDA out"):
        s.run_search(30)
    assert len(s.history) == 5 and s.spent == 5.0  # failures spend budget; the rest is not burnt
    assert s.ask(1) == []
    resumed = make_search(space, tmp_path / "s.json", hi_fi_eval=objective, max_failures_in_a_row=0)
    assert resumed.stop_reason is None and len(resumed.ask(1)) == 1


def test_profiling_failures_and_failed_candidates_are_never_proposed(make_grid_space) -> None:
    space = make_grid_space()
    space.failures = {i: "profiling failed" for i in range(0, len(space), 2)}
    s = make_search(space, None, hi_fi_eval=objective)
    s.run_search(20)
    assert all(e["index"] % 2 == 1 for e in s.history)


def test_the_search_learns_to_avoid_a_region_that_fails(make_grid_space) -> None:
    """Candidates with a first position of 3 (the objective's best region) always fail: learning from
    failures must pick far fewer of them than ignoring failures does, over several seeds."""
    space = make_grid_space()
    tried = {True: 0, False: 0}
    for learn in (True, False):
        for seed in range(3):
            def fails_at_three(encoding: tuple) -> float:
                if encoding[0] == 3:
                    raise RuntimeError("too big")
                return objective(encoding)

            s = make_search(space, None, hi_fi_eval=fails_at_three, seed=seed, learn_from_failures=learn,
                            max_failures_in_a_row=0)
            s.run_search(20)
            tried[learn] += sum(1 for e in s.history if e["value"] is None)
    assert tried[True] < tried[False], tried
