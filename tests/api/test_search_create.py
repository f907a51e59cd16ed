"""A user starts a search on a ready space; bad input is refused with HTTP 400 naming the field,
and no search is stored."""

from __future__ import annotations

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from searches.models import SearchInstance
from spaces.models import SearchSpace
from tests.api.expect import assert_error

EVALUATOR = "def evaluate(encoding, fidelity):\n    return float(encoding[0])\n"


def table_file(text: str = "index,hi,lo\n0,0.5,0.4\n1,0.7,0.6\n") -> SimpleUploadedFile:
    return SimpleUploadedFile("table.csv", text.encode(), content_type="text/csv")


def module_search(space: SearchSpace, **fields: object) -> dict:
    return {"space": space.id, "name": "run 1", "evaluator_kind": "module", "budget": 10,
            "evaluator_source": EVALUATOR, **fields}


def refused(response, field: str, reason_part: str = "") -> None:
    assert_error(response, 400, field, reason_part)
    assert not SearchInstance.objects.exists()


def test_a_search_with_an_evaluator_module_given_as_json_text_is_queued(api, make_space,
                                                                        django_capture_on_commit_callbacks) -> None:
    space = make_space()
    with django_capture_on_commit_callbacks() as callbacks:
        response = api("owner").post("/api/searches/", module_search(space, parallelism=3, seed=7, acquisition="ucb",
                                                                     hi_fi_cost=240, lo_fi_cost=12), format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["state"], body["space"], body["space_name"], body["budget"]) == ("queued", space.id, "tiny", 10.0)
    assert (body["parallelism"], body["seed"], body["acquisition"], body["lo_fi_cost"]) == (3, 7, "ucb", 12.0)
    assert SearchInstance.objects.get().evaluator_source == EVALUATOR
    assert len(callbacks) == 1  # its first search step is sent once the row is committed


def test_an_evaluator_module_may_be_uploaded_as_a_file(api, make_space) -> None:
    space = make_space()
    data = module_search(space, evaluator_source=None,
                         evaluator_module=SimpleUploadedFile("ev.py", EVALUATOR.encode(), content_type="text/x-python"))
    response = api("owner").post("/api/searches/", {k: v for k, v in data.items() if v is not None},
                                 format="multipart")
    assert response.status_code == 201, response.content
    assert SearchInstance.objects.get().evaluator_source == EVALUATOR


def test_a_tabular_search_takes_its_table_and_config_as_multipart(api, make_space) -> None:
    space = make_space()
    response = api("owner").post("/api/searches/", {
        "space": space.id, "name": "lookup", "evaluator_kind": "tabular", "budget": "5", "lo_fi_cost": "",
        "evaluator_table": table_file(), "evaluator_config": json.dumps({"delay_s": 0.5}),
    }, format="multipart")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["evaluator_config"] == {"delay_s": 0.5} and body["lo_fi_cost"] is None


def test_an_image_classification_search_takes_its_config_as_an_object(api, make_space) -> None:
    space = make_space()
    config = {"dataset": "cifar10", "n_classes": 10, "epochs_hi": 20, "epochs_lo": 2}
    response = api("owner").post("/api/searches/", {
        "space": space.id, "name": "train", "evaluator_kind": "image_classification", "budget": 3,
        "hi_fi_cost": 20, "lo_fi_cost": 2, "evaluator_config": config}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["evaluator_config"]["epochs_lo"] == 2


@pytest.mark.parametrize("budget", [0, -1, "nan", "inf"])
def test_a_budget_that_is_not_positive_and_finite_is_refused(api, make_space, budget: object) -> None:
    refused(api("owner").post("/api/searches/", module_search(make_space(), budget=budget), format="json"), "budget")


def test_a_budget_that_is_not_a_number_is_refused(api, make_space) -> None:
    refused(api("owner").post("/api/searches/", module_search(make_space(), budget="ten"), format="json"), "budget")


def test_a_space_that_is_not_ready_is_refused(api, make_space) -> None:
    space = make_space(state=SearchSpace.State.PROFILING)
    refused(api("owner").post("/api/searches/", module_search(space), format="json"), "space", "not ready")


def test_someone_elses_space_is_refused_exactly_like_a_missing_one(api, make_space, users) -> None:
    theirs = make_space(owner=users["outsider"])
    client = api("owner")
    other = client.post("/api/searches/", module_search(theirs), format="json")
    missing = client.post("/api/searches/", {**module_search(theirs), "space": theirs.id + 1000}, format="json")
    refused(other, "space", "no such search space")
    assert other.json() == missing.json()


def test_an_evaluator_module_without_evaluate_is_refused(api, make_space) -> None:
    source = "def evaluat(encoding, fidelity):\n    return 1.0\n"
    refused(api("owner").post("/api/searches/", module_search(make_space(), evaluator_source=source),
                              format="json"), "evaluator_source", "evaluate")


def test_an_evaluator_module_with_a_syntax_error_is_refused(api, make_space) -> None:
    source = "def evaluate(encoding, fidelity):\nreturn 1.0\n"
    refused(api("owner").post("/api/searches/", module_search(make_space(), evaluator_source=source),
                              format="json"), "evaluator_source", "syntax error at line 2")


def test_an_evaluator_file_that_is_not_utf8_is_refused(api, make_space) -> None:
    data = module_search(make_space(), evaluator_source=None,
                         evaluator_module=SimpleUploadedFile("ev.py", b"\xff\xfe\x00"))
    refused(api("owner").post("/api/searches/", {k: v for k, v in data.items() if v is not None},
                              format="multipart"), "evaluator_module", "UTF-8")


def test_a_tabular_search_without_its_table_is_refused(api, make_space) -> None:
    refused(api("owner").post("/api/searches/", module_search(make_space(), evaluator_kind="tabular"),
                              format="json"), "evaluator_table")


@pytest.mark.parametrize(("table", "reason"), [
    ("index,value\n0,1\n", "index and hi"), ("index,hi\n99,0.5\n", "outside the space"),
    ("index,hi\n0,abc\n", "not a number"), ("index,hi\nzero,0.5\n", "not an integer"),
])
def test_a_bad_table_is_refused_with_its_line(api, make_space, table: str, reason: str) -> None:
    refused(api("owner").post("/api/searches/", {
        "space": make_space().id, "name": "lookup", "evaluator_kind": "tabular", "budget": 5,
        "evaluator_table": table_file(table)}, format="multipart"), "evaluator_table", reason)


@pytest.mark.parametrize("config", ["{not json", "[1, 2]", "3"])
def test_an_evaluator_config_that_is_not_a_json_object_is_refused(api, make_space, config: str) -> None:
    refused(api("owner").post("/api/searches/", {
        "space": make_space().id, "name": "lookup", "evaluator_kind": "tabular", "budget": 5,
        "evaluator_table": table_file(), "evaluator_config": config}, format="multipart"), "evaluator_config")


def test_an_image_config_missing_its_dataset_is_refused(api, make_space) -> None:
    refused(api("owner").post("/api/searches/", {
        "space": make_space().id, "name": "train", "evaluator_kind": "image_classification", "budget": 3,
        "evaluator_config": {"n_classes": 10, "epochs_hi": 20}}, format="json"), "evaluator_config.dataset")


@pytest.mark.parametrize(("fields", "field"), [
    ({"evaluator_kind": "magic"}, "evaluator_kind"), ({"acquisition": "greedy"}, "acquisition"),
    ({"parallelism": 0}, "parallelism"), ({"parallelism": 65}, "parallelism"), ({"seed": -1}, "seed"),
    ({"hi_fi_cost": 0}, "hi_fi_cost"), ({"lo_fi_cost": 20, "hi_fi_cost": 10}, "lo_fi_cost"), ({"name": ""}, "name"),
    ({"name": "x" * 121}, "name"), ({"space": "abc"}, "space"),
])
def test_each_bad_setting_is_refused_and_named(api, make_space, fields: dict, field: str) -> None:
    refused(api("owner").post("/api/searches/", {**module_search(make_space()), **fields}, format="json"), field)


def test_a_missing_budget_is_named(api, make_space) -> None:
    data = module_search(make_space())
    del data["budget"]
    refused(api("owner").post("/api/searches/", data, format="json"), "budget", "required")
