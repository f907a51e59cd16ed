"""The space page offers transfer: pretrain the space again on one of its searches' results."""

from __future__ import annotations

import numpy as np

from spaces.models import SearchSpace
from spaces.services import load_profile
from tests.frontend.factories import make_search, make_space


def test_the_space_page_offers_its_searches_and_pretrains_again_on_one(owner_client, users) -> None:
    space = make_space(users["owner"])
    search = make_search(users["owner"], space, n_evaluations=12, state="finished")
    page = owner_client.get(f"/spaces/{space.id}/").content.decode()
    assert 'id="transfer-form"' in page and f'<option value="{search.id}">' in page
    response = owner_client.post(f"/spaces/{space.id}/results/", {"search": search.id, "name": "c10"})
    assert response.status_code == 302
    space.refresh_from_db()
    assert space.state == SearchSpace.State.PRETRAINING
    assert np.isfinite(load_profile(space)[0]["c10"]).sum() >= 1


def test_an_outsider_s_search_is_not_found_and_nothing_changes(owner_client, users) -> None:
    space = make_space(users["owner"])
    theirs = make_search(users["outsider"], make_space(users["outsider"], name="theirs"), state="finished")
    response = owner_client.post(f"/spaces/{space.id}/results/", {"search": theirs.id}, follow=True)
    assert "no such search" in response.content.decode()
    space.refresh_from_db()
    assert space.state == SearchSpace.State.READY and "search_" not in "".join(space.metrics)
