"""Starting a search in the web form: defaults shown, every evaluator kind, errors next to their field."""

from __future__ import annotations

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from searches.models import SearchInstance
from tests.frontend.factories import make_space


@pytest.fixture
def space(users):
    return make_space(users["owner"], n=40)


def _table(n: int = 40, lo: bool = False) -> SimpleUploadedFile:
    header = "index,hi,lo\n" if lo else "index,hi\n"
    rows = "".join(f"{i},{50 + i / 2}" + (f",{40 + i / 3}" if lo else "") + "\n" for i in range(n))
    return SimpleUploadedFile("table.csv", (header + rows).encode())


def _post(client, space, **fields):
    data = {"space": str(space.id), "name": "web search", "evaluator_kind": "tabular", "budget": "10",
            "hi_fi_cost": "1", "lo_fi_cost": "", "parallelism": "2", "seed": "3", "acquisition": "ei",
            "delay_s": "0", **fields}
    if data["evaluator_kind"] == "tabular" and "evaluator_table" not in fields:
        data["evaluator_table"] = _table(lo=bool(data["lo_fi_cost"]))
    return client.post("/searches/new/", {key: value for key, value in data.items() if value is not None})


def _error(page: str, name: str) -> str:
    match = re.search(rf'<p class="field-error" id="id_{name}_error">([^<]*)', page)
    assert match, f"no error next to {name}"
    return match.group(1)


def test_the_form_shows_sensible_defaults_for_the_chosen_space(owner_client, space) -> None:
    page = owner_client.get(f"/searches/new/?space={space.id}").content.decode()
    assert f'<option value="{space.id}" selected>' in page
    for name, value in (("budget", "50"), ("hi_fi_cost", "1"), ("parallelism", "1"), ("seed", "0"),
                        ("epochs_hi", "12"), ("batch_size", "64"), ("image_size", "8")):
        assert re.search(rf'name="{name}" value="{value}"', page), name
    assert '<option value="ucb" selected>' in page
    assert 'value="image_classification"' in page and 'value="module"' in page and 'value="tabular"' in page


def test_a_tabular_search_starts_and_opens_its_dashboard(owner_client, space, users,
                                                          django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = _post(owner_client, space, lo_fi_cost="0.25", delay_s="0.5")
    search = SearchInstance.objects.get(owner=users["owner"])
    assert response.status_code == 302 and response["Location"] == f"/searches/{search.id}/"
    assert (search.budget, search.parallelism, search.seed, search.lo_fi_cost) == (10, 2, 3, 0.25)
    assert search.evaluator_config == {"delay_s": 0.5}
    assert len(callbacks) == 1  # the first search step


def test_an_uploaded_evaluator_module_is_stored(owner_client, space, users) -> None:
    source = "def evaluate(encoding, fidelity):\n    return float(sum(encoding))\n"
    response = _post(owner_client, space, evaluator_kind="module",
                     evaluator_module=SimpleUploadedFile("ev.py", source.encode()))
    assert response.status_code == 302
    assert SearchInstance.objects.get(owner=users["owner"]).evaluator_source == source


def test_image_classification_settings_go_to_the_evaluator_config(owner_client, space, users) -> None:
    response = _post(owner_client, space, evaluator_kind="image_classification", dataset="cifar10", n_classes="10",
                     epochs_hi="12", epochs_lo="3", lo_fi_cost="3", hi_fi_cost="12", batch_size="128")
    assert response.status_code == 302
    config = SearchInstance.objects.get(owner=users["owner"]).evaluator_config
    assert (config["dataset"], config["epochs_hi"], config["epochs_lo"]) == ("cifar10", 12, 3)
    assert config["batch_size"] == 128


@pytest.mark.parametrize(("fields", "field", "reason"), [
    ({"budget": "0"}, "budget", "more than 0"),
    ({"budget": "lots"}, "budget", "must be a number"),
    ({"lo_fi_cost": "2"}, "lo_fi_cost", "must cost less"),
    ({"parallelism": "1.5"}, "parallelism", "integer"),
    ({"evaluator_table": SimpleUploadedFile("t.csv", b"index,hi\n99,1\n")}, "evaluator_table", "outside the space"),
    ({"evaluator_kind": "image_classification", "dataset": ""}, "dataset", "Hugging Face"),
    ({"evaluator_kind": "image_classification", "dataset": "cifar10", "n_classes": "1"}, "n_classes", "from 2"),
    ({"evaluator_kind": "module", "evaluator_source": "def run(e):\n    return 1\n"}, "evaluator_source",
     "evaluate"),
    ({"evaluator_kind": "module", "evaluator_module": SimpleUploadedFile("e.py", b"def evaluate(:\n")},
     "evaluator_module", "syntax error"),
])
def test_bad_input_is_shown_next_to_the_field(owner_client, space, fields, field, reason) -> None:
    response = _post(owner_client, space, **fields)
    assert response.status_code == 200  # the form again, with the error
    assert reason in _error(response.content.decode(), field)
    assert not SearchInstance.objects.exists()


def test_a_space_that_is_not_ready_cannot_be_searched(owner_client, users) -> None:
    busy = make_space(users["owner"], name="busy", state="profiling")
    page = owner_client.get(f"/searches/new/?space={busy.id}").content.decode()
    assert "is profiling" in page
    response = _post(owner_client, busy)
    assert response.status_code == 200  # the form again, with the error
    assert not SearchInstance.objects.exists()


def test_another_users_space_cannot_be_chosen(outsider_client, space) -> None:
    response = _post(outsider_client, space)
    assert response.status_code == 200  # the form again, with the error
    assert not SearchInstance.objects.exists()
