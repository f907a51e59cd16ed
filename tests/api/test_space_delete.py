"""A user deletes a search space; not while a search on it is active."""

from __future__ import annotations

from searches.models import SearchInstance
from spaces.models import SearchSpace
from tests.api.expect import assert_error


def test_the_owner_deletes_a_space_and_its_ended_searches(api, make_space, make_search) -> None:
    space = make_space()
    make_search(space=space, state=SearchInstance.State.FINISHED)
    response = api("owner").delete(f"/api/spaces/{space.id}/")
    assert response.status_code == 204
    assert not SearchSpace.objects.exists() and not SearchInstance.objects.exists()


def test_a_space_with_an_active_search_is_kept_with_409(api, make_search) -> None:
    search = make_search(state=SearchInstance.State.RUNNING)
    assert_error(api("owner").delete(f"/api/spaces/{search.space_id}/"), 409, None, "still active")
    assert SearchSpace.objects.filter(id=search.space_id).exists()


def test_deleting_a_space_twice_gives_404(api, make_space) -> None:
    space = make_space()
    client = api("owner")
    client.delete(f"/api/spaces/{space.id}/")
    assert_error(client.delete(f"/api/spaces/{space.id}/"), 404, None)
