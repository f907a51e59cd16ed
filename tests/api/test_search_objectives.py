"""A search with several objectives and constraints (issue 15): created from JSON or form text, dict results
kept per evaluation, the hypervolume curve and front, the CSV's objective columns."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from searches.models import Evaluation, SearchInstance
from searches.services.evaluation import split_objectives
from searches.storage import EvaluationRowStorage
from tests.api.expect import assert_error
from tests.api.tiny import TINY_ENCODINGS, tiny_params, tiny_value

EVALUATOR = "def evaluate(encoding, fidelity):\n    return {'accuracy': float(encoding[0]), 'latency_ms': 1.0}\n"

pytestmark = pytest.mark.django_db


def body(space, **extra) -> dict:
    return {"space": space.id, "name": "hw", "evaluator_kind": "module", "budget": 5, "evaluator_source": EVALUATOR,
            **extra}


def test_a_search_is_created_with_objectives_constraints_and_a_reference_point(api, make_space) -> None:
    response = api("owner").post("/api/searches/", body(
        make_space(), objectives={"accuracy": "max", "latency_ms": "min"}, constraints={"params": ["<=", 2000]},
        reference_point={"accuracy": 0.1}), format="json")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["objectives"] == [["accuracy", "max"], ["latency_ms", "min"]]
    assert data["constraints"] == [{"name": "params", "op": "<=", "bound": 2000.0}]
    assert data["reference_point"] == {"accuracy": 0.1} and data["direction"] == "maximize"
    stored = SearchInstance.objects.get(id=data["id"])
    assert stored.objectives == data["objectives"] and stored.constraints == data["constraints"]
    # the engine reads them as its options
    options = EvaluationRowStorage(stored).load_config()["options"]
    assert options["objectives"] == {"accuracy": "max", "latency_ms": "min"}


def test_a_minimised_primary_objective_makes_the_search_minimise(api, make_space) -> None:
    response = api("owner").post("/api/searches/", body(make_space(), objectives=[["latency_ms", "min"],
                                                                                  ["accuracy", "max"]]), format="json")
    assert response.status_code == 201, response.content
    assert response.json()["direction"] == "minimize"


def test_the_form_text_of_objectives_and_constraints_is_understood(api, make_space) -> None:
    response = api("owner").post("/api/searches/", body(
        make_space(), objectives="accuracy:max, params:min", constraints="params <= 2e3; flops < 1e6",
        reference_point="accuracy=0.5"), format="multipart")
    assert response.status_code == 201, response.content
    data = response.json()
    assert data["objectives"] == [["accuracy", "max"], ["params", "min"]]
    assert data["constraints"] == [{"name": "params", "op": "<=", "bound": 2000.0},
                                   {"name": "flops", "op": "<", "bound": 1e6}]
    assert data["reference_point"] == {"accuracy": 0.5}


@pytest.mark.parametrize("extra, field, reason", [
    ({"objectives": {"accuracy": "up"}}, "objectives", "'max' or 'min'"),
    ({"objectives": "accuracy:max, accuracy:min"}, "objectives", "declared twice"),
    ({"constraints": "params = 3"}, "constraints", "metric <= bound"),
    ({"constraints": {"params": ["<=", "small"]}}, "constraints", "not a finite number"),
    ({"objectives": {"accuracy": "max"}, "reference_point": {"latency": 1}}, "reference_point", "not objectives"),
    ({"reference_point": "accuracy:1"}, "reference_point", "objective=value"),
])
def test_bad_goals_are_refused_naming_the_field(api, make_space, extra: dict, field: str, reason: str) -> None:
    assert_error(api("owner").post("/api/searches/", body(make_space(), **extra), format="json"), 400, field, reason)


def test_a_tabular_search_needs_a_column_or_a_metric_for_each_other_objective(api, make_space) -> None:
    table = "index,hi,energy\n" + "".join(f"{i},{i / 10},{i}\n" for i in range(len(TINY_ENCODINGS)))
    base = {"space": make_space().id, "name": "tab", "evaluator_kind": "tabular", "budget": 3}

    def post(objectives: str) -> object:
        return api("owner").post("/api/searches/", {**base, "objectives": objectives, "evaluator_table": io.BytesIO(
            table.encode())}, format="multipart")

    assert post("hi:max, energy:min").status_code == 201  # a column of the table
    assert post("hi:max, params:min").status_code == 201  # a metric of the space
    assert_error(post("hi:max, watts:min"), 400, "evaluator_table", "neither a column")


def test_a_dict_result_gives_the_primary_value_and_keeps_every_number(make_search) -> None:
    search = make_search(n_done=0, n_failed=0, n_running=1)
    SearchInstance.objects.filter(id=search.id).update(objectives=[["accuracy", "max"], ["latency_ms", "min"]])
    search.refresh_from_db()
    value, objectives, error = split_objectives(search, {"accuracy": 0.9, "latency_ms": 4.0, "energy": 2})
    assert (value, error) == (0.9, None) and objectives == {"accuracy": 0.9, "latency_ms": 4.0, "energy": 2.0}
    running = search.evaluations.get(state="running")
    assert EvaluationRowStorage(search).finish({"id": running.id, "value": value, "objectives": objectives,
                                                "budget_units": 1.0})
    assert Evaluation.objects.get(id=running.id).objectives == objectives
    assert EvaluationRowStorage(search).history()[-1]["objectives"] == objectives


@pytest.mark.parametrize("objectives, result, reason", [
    ([], {"accuracy": 0.9}, "start the search with objectives"),
    ([["accuracy", "max"]], {"latency_ms": 1.0}, "no primary objective 'accuracy'"),
    ([["accuracy", "max"]], {"accuracy": float("nan")}, "must be finite"),
    ([["accuracy", "max"]], {"accuracy": "high"}, "not a number"),
])
def test_a_dict_the_search_cannot_use_fails_the_evaluation_with_the_reason(make_search, objectives, result,
                                                                          reason) -> None:
    search = make_search(n_done=0, n_failed=0, n_running=0)
    search.objectives = objectives
    value, kept, error = split_objectives(search, result)
    assert value is None and kept is None and reason in error


def test_the_hypervolume_curve_and_front_of_a_search(api, make_search) -> None:
    search = make_search(n_done=10, n_failed=1, n_running=0)
    SearchInstance.objects.filter(id=search.id).update(objectives=[["hi", "max"], ["params", "min"]])
    response = api("owner").get(f"/api/searches/{search.id}/hypervolume/")
    assert response.status_code == 200, response.content
    data = response.json()
    assert len(data["hypervolume"]) == 11 and data["hypervolume"][-1] > 0
    assert all(b >= a for a, b in zip(data["hypervolume"], data["hypervolume"][1:], strict=False))
    # the front: hi-fi results that no other beats in value and params (params from the space's profile)
    points = [(p["index"], p["hi"], p["params"]) for p in data["points"]]
    assert all(params == tiny_params(index) for index, _, params in points)
    expected = {i for i, v, c in points if not any(v2 >= v and c2 <= c and (v2, c2) != (v, c) for _, v2, c2 in points)}
    assert {p["index"] for p in data["front"]} == expected
    assert set(data["reference"]) == {"hi", "params"}


def test_a_single_objective_search_has_no_hypervolume(api, make_search) -> None:
    assert_error(api("owner").get(f"/api/searches/{make_search().id}/hypervolume/"), 409, "objectives")


def test_the_csv_has_a_column_per_objective(api, make_search) -> None:
    search = make_search(n_done=2, n_failed=0, n_running=1)
    SearchInstance.objects.filter(id=search.id).update(objectives=[["accuracy", "max"], ["latency_ms", "min"]])
    search.refresh_from_db()
    running = search.evaluations.get(state="running")
    EvaluationRowStorage(search).finish({"id": running.id, "value": 0.8, "budget_units": 1.0,
                                         "objectives": {"accuracy": 0.8, "latency_ms": 3.5, "value": 7.0}})
    response = api("owner").get(f"/api/searches/{search.id}/evaluations.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {"accuracy", "latency_ms", "objective_value"} <= set(rows[0])
    row = next(r for r in rows if r["evaluation_id"] == str(running.id))
    assert (row["accuracy"], row["latency_ms"], row["objective_value"]) == ("0.8", "3.5", "7.0")
    assert all(r["accuracy"] == "" for r in rows if r["evaluation_id"] != str(running.id))



def test_the_engine_targets_the_front_through_the_evaluation_rows(make_space, users, pretrained_bundle) -> None:
    """A web search's step, as the engine sees it: goals read from the row, dict results from the rows, the
    constraint on a profiled metric keeps infeasible candidates out, the best is the best feasible one."""
    import uuid

    from nastune import SearchInstance as EngineSearch
    from nastune import load_search_space

    space = load_search_space(pretrained_bundle)
    bound = float(np.percentile(space.profile["params"], 60))
    row = SearchInstance.objects.create(
        uid=uuid.uuid4(), owner=users["owner"], space=make_space(), name="hw", evaluator_kind="module", budget=10,
        parallelism=1, seed=2, objectives=[["accuracy", "max"], ["latency_ms", "min"]],
        constraints=[{"name": "params", "op": "<=", "bound": bound}])
    for _step in range(10):
        storage = EvaluationRowStorage(SearchInstance.objects.get(id=row.id))
        engine = EngineSearch("hw", None, search_space=space, progress=False, storage=storage, n_initial=3)
        proposals = engine.ask(1)
        if not proposals:
            break
        assert storage.commit() is not None
        p = proposals[0]
        Evaluation.objects.filter(search_id=row.id, encoding_index=p.index).update(state=Evaluation.State.RUNNING)
        result = {"accuracy": tiny_value(p.index), "latency_ms": float(TINY_ENCODINGS[p.index][0])}
        value, objectives, error = split_objectives(SearchInstance.objects.get(id=row.id), result)
        assert error is None
        assert EvaluationRowStorage(SearchInstance.objects.get(id=row.id)).finish(
            {"index": p.index, "fidelity": "hi", "value": value, "objectives": objectives, "budget_units": 1.0})
    final = EngineSearch("hw", None, search_space=space, progress=False,
                         storage=EvaluationRowStorage(SearchInstance.objects.get(id=row.id)))
    assert final.goals.multi and final.goals.constraints[0].bound == bound
    evaluated = [r["index"] for r in final.history]
    assert len(evaluated) == 10 and all(space.profile["params"][i] <= bound for i in evaluated)
    assert all(r["objectives"]["latency_ms"] == TINY_ENCODINGS[r["index"]][0] for r in final.history)
    assert final.best[1] == max(tiny_value(i) for i in evaluated)
    progress = final.pareto_progress()
    assert progress["hypervolume"][-1] > 0 and progress["front"]


def test_only_a_feasible_result_becomes_the_searchs_best(make_search) -> None:
    search = make_search(n_done=0, n_failed=0, n_running=2)
    big, small = search.evaluations.filter(state="running").order_by("id")
    Evaluation.objects.filter(id=big.id).update(encoding_index=23)  # width 16, depth 3: the most parameters
    Evaluation.objects.filter(id=small.id).update(encoding_index=0)  # width 4, depth 1: the fewest
    big.refresh_from_db()
    small.refresh_from_db()
    bound = (tiny_params(big.encoding_index) + tiny_params(small.encoding_index)) / 2
    SearchInstance.objects.filter(id=search.id).update(
        constraints=[{"name": "params", "op": "<=", "bound": bound}], best_value=None, best_index=None)
    search.refresh_from_db()
    assert EvaluationRowStorage(search).finish({"id": big.id, "value": 100.0, "budget_units": 1.0})
    search.refresh_from_db()
    assert search.best_value is None  # over the params bound: not the best, however good
    assert EvaluationRowStorage(search).finish({"id": small.id, "value": 1.0, "budget_units": 1.0})
    search.refresh_from_db()
    assert (search.best_value, search.best_index) == (1.0, small.encoding_index)


def test_a_tabular_evaluator_returns_the_objectives_of_its_columns(make_search, tmp_path) -> None:
    from django.core.files.base import ContentFile

    from searches import evaluator_kinds
    from searches.evaluators import EvaluationRequest
    from usercode import SandboxLimits

    search = make_search(n_done=0, n_failed=0, n_running=0)
    table = "index,hi,lo,Energy\n" + "".join(f"{i},{i / 10},{i / 20},{100 - i}\n" for i in range(len(TINY_ENCODINGS)))
    search.evaluator_table.save("table2.csv", ContentFile(table.encode()), save=False)
    search.objectives = [["accuracy", "max"], ["energy", "min"]]
    search.constraints = [{"name": "params", "op": "<=", "bound": 1e9}]
    search.save()

    def request(fidelity: str) -> EvaluationRequest:
        return EvaluationRequest(search=search, encoding=TINY_ENCODINGS[7], encoding_index=7, fidelity=fidelity,
                                 log_path=tmp_path / f"{fidelity}.log", scratch=tmp_path, runs_folder=tmp_path, gpu="",
                                 limits=SandboxLimits(), on_tick=lambda tail: True, tick_s=0.1, log_tail_chars=100)

    kind = evaluator_kinds.get("tabular")
    assert kind.run(request("hi")) == {"accuracy": 0.7, "energy": 93.0}  # params comes from the profile
    assert kind.run(request("lo")) == 0.35  # the low fidelity screens the primary objective only
