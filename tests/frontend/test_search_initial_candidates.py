"""The web form's "Evaluate first" field, its clone prefill, and the space page naming the transferred searches
whose best results new searches try first."""

from __future__ import annotations

import pytest

from searches.models import SearchInstance
from spaces.models import SearchSpace
from tests.frontend.factories import make_search, make_space, post_linear_search_form


@pytest.fixture
def space(users):
    return make_space(users["owner"], n=40)


def test_the_form_s_list_is_stored_in_order_and_a_clone_prefills_it(owner_client, space, users) -> None:
    assert 'name="initial_candidates"' in owner_client.get(f"/searches/new/?space={space.id}").content.decode()
    response = post_linear_search_form(owner_client, space, initial_candidates="12, 5, 12, 39")
    assert response.status_code == 302, response.content.decode()[:2000]
    search = SearchInstance.objects.get(owner=users["owner"])
    assert search.initial_candidates == [12, 5, 39]
    page = owner_client.get(f"/searches/{search.id}/").content.decode()
    assert 'title="encoding indices 12, 5, 39">3 candidates evaluated first</span>' in page
    form = owner_client.get(f"/searches/new/?clone={search.id}").content.decode()
    assert 'name="initial_candidates" value="12, 5, 39"' in form


@pytest.mark.parametrize(("given", "reason"), [("3, x", "entry 2 (&#x27;x&#x27;)"),
                                               ("40", "entry 1 (40) is not an encoding index of the space (0..39)"),
                                               ("5, 3", "entry 2 (3) could not be profiled")])
def test_a_bad_entry_is_shown_next_to_the_field(owner_client, space, users, given: str, reason: str) -> None:
    page = post_linear_search_form(owner_client, space, initial_candidates=given).content.decode()
    assert 'id="id_initial_candidates_error"' in page and reason in page
    assert not SearchInstance.objects.filter(owner=users["owner"]).exists()


def test_the_space_page_names_the_searches_new_searches_start_from(owner_client, space, users) -> None:
    source = make_search(users["owner"], space, n_evaluations=12, state="finished")
    assert owner_client.post(f"/spaces/{space.id}/results/", {"search": source.id, "name": "c10"}).status_code == 302
    SearchSpace.objects.filter(id=space.id).update(state=SearchSpace.State.READY)  # as after the pretraining
    page = owner_client.get(f"/spaces/{space.id}/").content.decode()
    assert 'id="transfers"' in page and "<code>c10</code>" in page
    assert post_linear_search_form(owner_client, space).status_code == 302
    started = SearchInstance.objects.filter(owner=users["owner"]).latest("id")
    best = SearchSpace.objects.get(id=space.id).transfers[0]["best"]
    assert 3 in best[:10]  # the factory's search evaluated the one candidate whose profiling failed ...
    assert started.initial_candidates == [i for i in best if i != 3][:10]  # ... which is never proposed
