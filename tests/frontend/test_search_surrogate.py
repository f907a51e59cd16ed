"""The web form's surrogate choice, its clone prefill, and the dashboard naming a surrogate that is not the default."""

from __future__ import annotations

import pytest

from searches.models import SearchInstance
from tests.frontend.factories import make_search, make_space, post_linear_search_form


@pytest.fixture
def space(users):
    return make_space(users["owner"], n=40)


def test_the_form_offers_the_surrogate_with_the_gaussian_process_chosen(owner_client, space) -> None:
    page = owner_client.get(f"/searches/new/?space={space.id}").content.decode()
    assert '<select name="surrogate"' in page and '<option value="gp" selected>' in page
    assert '<option value="ensemble">' in page and "faster at choosing" in page


def test_a_search_on_the_ensemble_starts_from_the_form_and_the_dashboard_says_so(owner_client, space,
                                                                                users) -> None:
    response = post_linear_search_form(owner_client, space, surrogate="ensemble")
    assert response.status_code == 302, response.content.decode()[:2000]
    search = SearchInstance.objects.get(owner=users["owner"])
    assert search.surrogate == "ensemble"
    page = owner_client.get(f"/searches/{search.id}/").content.decode()
    assert "expected improvement on a fine-tuned deep ensemble" in page


def test_a_form_without_the_surrogate_gets_the_default_and_the_dashboard_does_not_mention_it(
        owner_client, space, users) -> None:
    assert post_linear_search_form(owner_client, space).status_code == 302
    search = SearchInstance.objects.get(owner=users["owner"])
    assert search.surrogate == "gp"
    page = owner_client.get(f"/searches/{search.id}/").content.decode()
    assert "Gaussian process" not in page and "deep ensemble" not in page


def test_an_unknown_surrogate_is_shown_next_to_its_field(owner_client, space, users) -> None:
    page = post_linear_search_form(owner_client, space, surrogate="forest").content.decode()
    assert 'id="id_surrogate_error"' in page
    assert not SearchInstance.objects.filter(owner=users["owner"]).exists()


def test_clone_prefills_the_surrogate(owner_client, space, users) -> None:
    search = make_search(users["owner"], space, n_evaluations=4, state="finished")
    SearchInstance.objects.filter(id=search.id).update(surrogate="ensemble")
    form = owner_client.get(f"/searches/new/?clone={search.id}").content.decode()
    assert '<option value="ensemble" selected>' in form
