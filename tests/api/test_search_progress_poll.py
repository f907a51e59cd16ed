"""The live dashboard polls a search's progress with a cursor."""

from __future__ import annotations

import pytest

from tests.api.expect import assert_error


def test_a_poll_returns_what_finished_after_the_cursor_and_what_is_in_flight(api, make_search) -> None:
    search = make_search(n_done=10, n_failed=1, n_running=2)
    client = api("owner")
    first = client.get(f"/api/searches/{search.id}/progress/").json()
    assert [row["seq"] for row in first["finished"]] == list(range(1, 12))
    assert first["cursor"] == 11 and first["more"] is False and len(first["in_flight"]) == 2
    later = client.get(f"/api/searches/{search.id}/progress/?cursor=8").json()
    assert [row["seq"] for row in later["finished"]] == [9, 10, 11]
    assert later["best_value"] == search.best_value and later["spent"] == search.spent


def test_a_poll_with_nothing_new_keeps_the_cursor(api, make_search) -> None:
    search = make_search(n_done=3, n_failed=0)
    body = api("owner").get(f"/api/searches/{search.id}/progress/?cursor=3").json()
    assert body["finished"] == [] and body["cursor"] == 3


@pytest.mark.parametrize("cursor", ["-1", "abc", "1.5", str(2**40)])
def test_a_bad_cursor_is_refused(api, make_search, cursor: str) -> None:
    search = make_search()
    assert_error(api("owner").get(f"/api/searches/{search.id}/progress/?cursor={cursor}"), 400, "cursor")


def test_every_row_and_the_best_carry_their_encoding_not_only_its_index(api, make_search) -> None:
    from tests.api.tiny import TINY_ENCODINGS

    search = make_search(n_done=6, n_failed=1, n_running=2)
    body = api("owner").get(f"/api/searches/{search.id}/progress/").json()
    assert len(body["finished"]) == 7 and len(body["in_flight"]) == 2
    for row in (*body["finished"], *body["in_flight"]):
        assert row["encoding"] == TINY_ENCODINGS[row["encoding_index"]]
    assert body["best_encoding"] == TINY_ENCODINGS[search.best_index]


def test_a_search_without_a_best_value_has_no_best_encoding(api, make_search) -> None:
    search = make_search(n_done=0, n_failed=1, n_running=0)
    body = api("owner").get(f"/api/searches/{search.id}/progress/").json()
    assert body["best_index"] is None and body["best_encoding"] is None
