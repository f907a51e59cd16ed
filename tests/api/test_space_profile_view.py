"""A user plots the profiled metrics of a space's candidates."""

from __future__ import annotations

import pytest

from tests.api.expect import assert_error
from tests.api.tiny import tiny_params


def test_every_profiled_candidate_comes_with_every_metric(api, make_space) -> None:
    space = make_space()
    body = api("owner").get(f"/api/spaces/{space.id}/profile/").json()
    assert body["indices"] == [i for i in range(24) if i != 2]
    assert body["metrics"]["params"] == [tiny_params(i) for i in body["indices"]]
    assert body["failures"] == 1


def test_max_points_takes_a_seeded_sample(api, make_space) -> None:
    space = make_space()
    client = api("owner")
    first = client.get(f"/api/spaces/{space.id}/profile/?max_points=5").json()
    assert len(first["indices"]) == 5
    assert client.get(f"/api/spaces/{space.id}/profile/?max_points=5").json() == first


@pytest.mark.parametrize("value", ["0", "-3", "many", "50001"])
def test_a_bad_max_points_is_refused(api, make_space, value: str) -> None:
    space = make_space()
    assert_error(api("owner").get(f"/api/spaces/{space.id}/profile/?max_points={value}"), 400, "max_points")
