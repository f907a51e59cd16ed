"""Reading through the API never writes: no GET issues an INSERT, UPDATE or DELETE."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.api.test_outsider_isolation import OBJECT_ROUTES, calls, url_for
from tests.api.test_space_predictions_view import PretrainedSpace

GET_ROUTES = sorted({name for name, method in calls() if method == "get"})
LIST_URLS = ["/api/spaces/", "/api/searches/", "/api/searches/{search_id}/evaluations/?ordering=-value&state=done"]


@pytest.fixture
def scenery(make_search, monkeypatch) -> dict:
    monkeypatch.setattr("spaces.engine.load_space", lambda space: PretrainedSpace())
    monkeypatch.setattr("searches.engine.predict", lambda search, indices: PretrainedSpace().predict(indices))
    search = make_search(n_done=6, n_failed=1)
    return {"space_id": search.space_id, "search_id": search.id, "encoding_index": 3,
            "evaluation_id": search.evaluations.first().id}


def writes_while(client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
    assert response.status_code in (200, 404), (url, response.status_code)
    return [q["sql"] for q in queries.captured_queries
            if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE"))]


@pytest.mark.parametrize("name", GET_ROUTES)
def test_reading_an_object_route_writes_nothing(api, scenery, name: str) -> None:
    client = api("owner")
    client.get("/api/spaces/")  # the token row exists before we start counting
    assert writes_while(client, url_for(name, scenery)) == []


@pytest.mark.parametrize("url", LIST_URLS)
def test_reading_a_list_writes_nothing(api, scenery, url: str) -> None:
    client = api("owner")
    assert writes_while(client, url.format(**scenery)) == []


def test_every_get_route_is_checked() -> None:
    assert len(GET_ROUTES) == len([p for p in OBJECT_ROUTES if hasattr(p.callback.view_class, "get")])
