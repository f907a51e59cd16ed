"""A user downloads the bundle of a ready space as ``<name>.nastune``."""

from __future__ import annotations

from spaces.models import SearchSpace
from tests.api.expect import assert_error


def test_the_bundle_comes_as_an_attachment_named_after_the_space(api, make_space) -> None:
    space = make_space(name="mobile one")
    response = api("owner").get(f"/api/spaces/{space.id}/bundle/", HTTP_ACCEPT="application/octet-stream")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="mobile one.nastune"'
    assert b"".join(response.streaming_content) == b"PK-not-really-a-bundle"


def test_a_space_that_is_not_ready_has_no_bundle_yet(api, make_space) -> None:
    space = make_space(state=SearchSpace.State.PRETRAINING, with_bundle=False)
    assert_error(api("owner").get(f"/api/spaces/{space.id}/bundle/"), 409, None, "pretraining")
