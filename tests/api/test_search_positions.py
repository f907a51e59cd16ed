"""Per-position views of a search: the points of the parallel-coordinates plot, slices and importance."""

from __future__ import annotations

import pytest

from tests.api.expect import assert_error
from tests.api.tiny import TINY_ENCODINGS, tiny_value


def test_positions_have_the_evaluated_points_slices_and_importance(api, make_search) -> None:
    search = make_search(n_done=30, n_failed=1, n_running=0)
    response = api("owner").get(f"/api/searches/{search.id}/positions/")
    assert response.status_code == 200, response.content
    body = response.json()
    done_hi = search.evaluations.filter(fidelity="hi", state="done")
    assert len(body["points"]) == done_hi.count() == 15
    for point in body["points"]:
        assert point["encoding"] == TINY_ENCODINGS[point["index"]]
        assert point["value"] == tiny_value(point["index"])
    width, depth, activation = body["positions"]
    assert (width["kind"], depth["kind"], activation["kind"]) == ("numeric", "numeric", "categorical")
    assert width["levels"] == [4, 8, 13, 16] and activation["levels"] == ["relu", "tanh"]
    relu = next(s for s in activation["slices"] if s["level"] == "relu")
    relu_values = [p["value"] for p in body["points"] if p["encoding"][2] == "relu"]
    assert relu["count"] == len(relu_values) and relu["best"] == max(relu_values)
    assert relu["mean"] == pytest.approx(sum(relu_values) / len(relu_values))
    # tiny_value: depth adds 1 per step, relu 1, width 0.1 per unit: depth explains most of the spread
    assert depth["importance"] > width["importance"]
    assert all(0 <= p["importance"] <= 1 for p in body["positions"])


def test_positions_of_a_minimising_search_take_the_lowest_as_best(api, make_search) -> None:
    search = make_search(n_done=30, n_running=0)
    search.direction = "minimize"
    search.save(update_fields=["direction"])
    body = api("owner").get(f"/api/searches/{search.id}/positions/").json()
    relu = next(s for s in body["positions"][2]["slices"] if s["level"] == "relu")
    assert body["direction"] == "minimize"
    assert relu["best"] == min(p["value"] for p in body["points"] if p["encoding"][2] == "relu")


def test_positions_without_evaluations_are_empty_not_an_error(api, make_search) -> None:
    search = make_search(n_done=0, n_failed=0, n_running=0)
    body = api("owner").get(f"/api/searches/{search.id}/positions/?fidelity=lo").json()
    assert body["points"] == [] and [p["importance"] for p in body["positions"]] == [None, None, None]


def test_positions_refuse_an_unknown_fidelity_and_outsiders(api, make_search) -> None:
    search = make_search()
    assert_error(api("owner").get(f"/api/searches/{search.id}/positions/?fidelity=medium"), 400, "fidelity")
    assert api("outsider").get(f"/api/searches/{search.id}/positions/").status_code == 404
