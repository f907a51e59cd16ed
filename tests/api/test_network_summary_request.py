"""A user asks a worker to build one candidate's network, then reads its description."""

from __future__ import annotations

from spaces.models import NetworkSummary
from tests.api.expect import assert_error


def test_a_request_is_accepted_and_then_readable_as_pending(api, make_space, django_capture_on_commit_callbacks) \
        -> None:
    space = make_space()
    client = api("owner")
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(f"/api/spaces/{space.id}/networks/5/")
    assert response.status_code == 202, response.content
    assert response.json()["state"] == "pending" and len(callbacks) == 1
    assert client.get(f"/api/spaces/{space.id}/networks/5/").json()["state"] == "pending"


def test_a_finished_summary_is_read_back(api, make_space) -> None:
    space = make_space()
    NetworkSummary.objects.create(space=space, encoding_index=3, state="done", text="Sequential(...)", params=162)
    body = api("owner").get(f"/api/spaces/{space.id}/networks/3/").json()
    assert (body["state"], body["text"], body["params"]) == ("done", "Sequential(...)", 162)


def test_a_summary_never_requested_is_not_found(api, make_space) -> None:
    space = make_space()
    assert_error(api("owner").get(f"/api/spaces/{space.id}/networks/3/"), 404, None, "requested")


def test_an_index_outside_the_space_is_refused(api, make_space) -> None:
    space = make_space()
    assert_error(api("owner").post(f"/api/spaces/{space.id}/networks/24/"), 400, "encoding_index")
    assert not NetworkSummary.objects.exists()
