"""A user starts a new search with the settings of an old one."""

from __future__ import annotations

from searches.models import SearchInstance
from tests.api.expect import assert_error


def test_clone_copies_every_setting_and_the_table(api, make_search) -> None:
    search = make_search(state=SearchInstance.State.FINISHED)
    SearchInstance.objects.filter(id=search.id).update(seed=7, acquisition="ucb", direction="minimize",
                                                       evaluator_config={"delay_s": 0.5})
    response = api("owner").post(f"/api/searches/{search.id}/clone/", {"budget": 12}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    clone = SearchInstance.objects.get(id=body["id"])
    assert clone.id != search.id and clone.state == "queued" and clone.space_id == search.space_id
    assert body["name"] == "tiny search (copy)" and clone.budget == 12
    assert (clone.seed, clone.acquisition, clone.direction, clone.hi_fi_cost, clone.lo_fi_cost) == \
        (7, "ucb", "minimize", 10, 2)
    assert clone.evaluator_config == {"delay_s": 0.5}
    search.evaluator_table.open("rb")
    assert clone.evaluator_table.read() == search.evaluator_table.read()
    assert not clone.evaluations.exists()


def test_clone_refuses_a_bad_change_on_its_field(api, make_search) -> None:
    search = make_search(state=SearchInstance.State.FINISHED)
    assert_error(api("owner").post(f"/api/searches/{search.id}/clone/", {"budget": -1}, format="json"), 400, "budget")
    assert_error(api("owner").post(f"/api/searches/{search.id}/clone/", {"name": " "}, format="json"), 400, "name")
    assert SearchInstance.objects.count() == 1


def test_outsider_cannot_clone_a_search(api, make_search) -> None:
    search = make_search()
    assert api("outsider").post(f"/api/searches/{search.id}/clone/", {}, format="json").status_code == 404
    assert SearchInstance.objects.count() == 1
