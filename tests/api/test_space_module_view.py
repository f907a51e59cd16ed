"""A user reads a space's encoding_to_net module before building networks from it."""

from __future__ import annotations

from tests.api.tiny import MODULE


def test_the_module_source_comes_with_its_sha256(api, make_space) -> None:
    space = make_space()
    assert api("owner").get(f"/api/spaces/{space.id}/module/").json() == {"source": MODULE, "sha256": "0" * 64}
