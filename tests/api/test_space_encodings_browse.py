"""A user pages through a space's encodings."""

from __future__ import annotations

from tests.api.expect import assert_error
from tests.api.tiny import TINY_ENCODINGS


def test_encodings_come_in_index_order_a_page_at_a_time(api, make_space) -> None:
    space = make_space()
    body = api("owner").get(f"/api/spaces/{space.id}/encodings/?page=2&page_size=10").json()
    assert body["count"] == 24
    assert body["results"] == [{"index": i, "encoding": TINY_ENCODINGS[i]} for i in range(10, 20)]


def test_a_page_past_the_end_is_refused(api, make_space) -> None:
    space = make_space()
    assert_error(api("owner").get(f"/api/spaces/{space.id}/encodings/?page=4&page_size=10"), 400, "page")
