"""A search evaluates some candidates first: the ones the user names (``initial_candidates``), or else the best
results of the searches its space was pretrained on (transfer), so what an earlier search found is tried at once."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from searches import services
from searches.models import Evaluation, SearchInstance
from searches.storage import N_INITIAL, EvaluationRowStorage
from spaces import services as space_services
from spaces.models import SearchSpace
from tests.api.expect import assert_error

EVALUATOR = "def evaluate(encoding, fidelity):\n    return float(encoding[0])\n"


def body(space, **extra) -> dict:
    return {"space": space.id, "name": "first", "evaluator_kind": "module", "budget": 5, "evaluator_source": EVALUATOR,
            **extra}


@pytest.fixture
def real_space(make_space, pretrained_bundle) -> SearchSpace:
    space = make_space()
    space.bundle_file.save("space.nastune", ContentFile(pretrained_bundle.read_bytes()), save=True)
    return space


@pytest.mark.django_db(transaction=True)
def test_the_named_candidates_are_stored_shown_and_evaluated_first(api, real_space) -> None:
    response = api("owner").post("/api/searches/", body(real_space, initial_candidates=[5, 1, 5, 7], parallelism=2),
                                 format="json")
    assert response.status_code == 201, response.content
    assert response.json()["initial_candidates"] == [5, 1, 7]  # in the order given, each once
    search = SearchInstance.objects.get(id=response.json()["id"])
    assert EvaluationRowStorage(search).load_config()["options"]["initial_candidates"] == [5, 1, 7]
    services.search_step(search_id=search.id)  # what the search worker does
    first = list(search.evaluations.order_by("id").values_list("encoding_index", flat=True))
    assert first == [5, 1]


@pytest.mark.parametrize("given", ["5, 1", "[5, 1]", " 5 ;1 "])
def test_the_form_s_text_and_json_text_give_the_same_list(api, make_space, given: str) -> None:
    response = api("owner").post("/api/searches/", body(make_space(), initial_candidates=given), format="multipart")
    assert response.status_code == 201, response.content
    assert SearchInstance.objects.get(id=response.json()["id"]).initial_candidates == [5, 1]


@pytest.mark.parametrize(("given", "reason"), [
    ([-1], "entry 1 (-1) is not an encoding index"),
    ([3, "x"], "entry 2 ('x') is not an encoding index"),
    ([1.5], "is not an encoding index"),
    ([True], "is not an encoding index"),
    ("1, two", "entry 2 ('two')"),
    ("[1, ", "not valid JSON"),
    ([0, 10**6], "entry 2 (1000000) is not an encoding index of the space (0.."),
    ([0, 2], "entry 2 (2) could not be profiled (width 13 is not supported), so it is never evaluated"),
    ({"a": 1}, "list of encoding indices"),
])
def test_bad_candidates_are_refused_naming_the_field_and_nothing_is_stored(api, make_space, given: object,
                                                                           reason: str) -> None:
    response = api("owner").post("/api/searches/", body(make_space(), initial_candidates=given), format="json")
    assert_error(response, 400, "initial_candidates", reason)
    assert not SearchInstance.objects.exists()


def _best_first(search: SearchInstance) -> list[int]:
    done = dict(search.evaluations.filter(fidelity="hi", state=Evaluation.State.DONE).values_list(
        "encoding_index", "value"))
    return sorted(done, key=lambda i: done[i], reverse=not search.minimizes)


def test_a_search_after_a_transfer_first_tries_the_earlier_searches_best_results(api, make_search) -> None:
    source = make_search(state=SearchInstance.State.FINISHED)
    space = source.space
    loss = make_search(space=space, state=SearchInstance.State.FINISHED, name="a loss")
    SearchInstance.objects.filter(id=loss.id).update(direction=SearchInstance.Direction.MINIMIZE)
    loss.refresh_from_db()
    client = api("owner")
    for search, name in ((source, "c10"), (loss, "c10_loss")):
        assert client.post(f"/api/spaces/{space.id}/results/", {"search": search.id, "name": name},
                           format="json").status_code == 202
        SearchSpace.objects.filter(id=space.id).update(state=SearchSpace.State.READY)  # pretraining is not the point
    space.refresh_from_db()
    highest, lowest = _best_first(source), _best_first(loss)
    assert lowest == highest[::-1]  # same values, other direction: the loss search's best are the lowest
    assert [(t["name"], t["search"], t["best"]) for t in space.transfers] == [
        ("c10", source.id, highest), ("c10_loss", loss.id, lowest)]
    assert client.get(f"/api/spaces/{space.id}/").json()["transfers"] == space.transfers

    created = client.post("/api/searches/", body(space), format="json")
    assert created.status_code == 201, created.content
    expected = []  # the two rankings interleaved, each candidate once
    for pair in zip(highest, lowest, strict=True):
        for index in pair:
            if index not in expected:
                expected.append(index)
    assert created.json()["initial_candidates"] == expected[:N_INITIAL]
    mine = client.post("/api/searches/", body(space, initial_candidates=[4]), format="json")
    assert mine.json()["initial_candidates"] == [4]  # the user's own list wins over the transfer

    clone = client.post(f"/api/searches/{created.json()['id']}/clone/", {}, format="json")
    assert clone.json()["initial_candidates"] == expected[:N_INITIAL]
    changed = client.post(f"/api/searches/{created.json()['id']}/clone/", {"initial_candidates": [3, 0]},
                          format="json")
    assert changed.json()["initial_candidates"] == [3, 0]


def test_transferring_a_search_again_under_the_same_name_replaces_its_ranking(make_search) -> None:
    source = make_search(state=SearchInstance.State.FINISHED)
    space = source.space
    space_services.space_add_search_results(space=space, search=source, name="c10")
    SearchSpace.objects.filter(id=space.id).update(state=SearchSpace.State.READY)
    space.refresh_from_db()
    space_services.space_add_search_results(space=space, search=source, name="c10")
    space.refresh_from_db()
    assert [t["name"] for t in space.transfers] == ["c10"]
