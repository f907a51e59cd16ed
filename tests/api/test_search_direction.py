"""A search minimises or maximises its objective: the engine always maximises, the user sees their values."""

from __future__ import annotations

import pytest

from searches.models import SearchInstance
from searches.storage import EvaluationRowStorage
from tests.api.expect import assert_error

EVALUATOR = "def evaluate(encoding, fidelity):\n    return float(encoding[0])\n"


def test_a_search_is_created_minimising(api, make_space) -> None:
    space = make_space()
    response = api("owner").post("/api/searches/", {
        "space": space.id, "name": "loss", "evaluator_kind": "module", "budget": 5, "evaluator_source": EVALUATOR,
        "direction": "minimize"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["direction"] == "minimize"
    assert SearchInstance.objects.get(id=response.json()["id"]).direction == "minimize"


def test_the_default_direction_is_maximise_and_others_are_refused(api, make_space) -> None:
    space = make_space()
    body = {"space": space.id, "name": "acc", "evaluator_kind": "module", "budget": 5, "evaluator_source": EVALUATOR}
    assert api("owner").post("/api/searches/", body, format="json").json()["direction"] == "maximize"
    assert_error(api("owner").post("/api/searches/", {**body, "direction": "sideways"}, format="json"),
                 400, "direction")


def test_the_engine_sees_negated_values_and_the_best_is_the_lowest(make_search) -> None:
    search = make_search(n_done=6, n_failed=0, n_running=1)
    SearchInstance.objects.filter(id=search.id).update(direction="minimize", best_value=None, best_index=None)
    search.refresh_from_db()
    storage = EvaluationRowStorage(search)
    history = storage.history()
    rows = {row.id: row for row in search.evaluations.filter(state="done")}
    assert [record["value"] for record in history] == [-rows[record["id"]].value for record in history]
    running = search.evaluations.get(state="running")
    assert storage.finish({"id": running.id, "value": 0.25, "budget_units": 1.0})
    search.refresh_from_db()
    assert (search.best_value, search.best_index) == (0.25, running.encoding_index)
    assert storage.incumbent()["value"] == -0.25  # the engine's (maximised) view of the best
    assert EvaluationRowStorage(search).history()[-1]["value"] == -0.25


def test_the_pareto_front_of_a_minimising_search_prefers_lower_values(api, make_search) -> None:
    search = make_search(n_done=16, n_failed=1)
    SearchInstance.objects.filter(id=search.id).update(direction="minimize")
    points = api("owner").get(f"/api/searches/{search.id}/pareto/").json()["points"]

    def dominated(point: dict) -> bool:
        return any(other["metric_value"] <= point["metric_value"] and other["value"] <= point["value"]
                   and (other["metric_value"], other["value"]) != (point["metric_value"], point["value"])
                   for other in points)

    assert all(point["non_dominated"] == (not dominated(point)) for point in points)
    cheapest = min(points, key=lambda point: (point["metric_value"], point["value"]))
    lowest = min(points, key=lambda point: (point["value"], point["metric_value"]))
    assert cheapest["non_dominated"] and lowest["non_dominated"]


def test_the_random_search_reference_of_a_minimising_search_falls(api, make_search) -> None:
    search = make_search(n_done=4)
    high = api("owner").get(f"/api/searches/{search.id}/reference-curve/").json()["best"]
    SearchInstance.objects.filter(id=search.id).update(direction="minimize")
    low = api("owner").get(f"/api/searches/{search.id}/reference-curve/").json()["best"]
    assert high == sorted(high) and low == sorted(low, reverse=True)
    assert low[0] == pytest.approx(high[0], rel=1e-12)  # one draw: the mean of the table either way
    assert low[-1] < low[0] < high[-1]
