"""Reading never writes: no GET route of the URLconf (API and pages) issues an INSERT, UPDATE or DELETE."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import URLResolver, get_resolver

from image_datasets.models import ImageDataset
from spaces.models import NetworkSummary
from tests.api.test_space_predictions_view import PretrainedSpace

# Every route that answers GET, as the URLconf spells it, with the URL the test reads it at and who reads it:
# "token" an API client with the owner's token, "session" the owner logged in, "anonymous" nobody.
GET_ROUTES: dict[str, tuple[str, str]] = {
    "healthz": ("/healthz", "anonymous"),
    "api/schema/": ("/api/schema/", "token"),
    "api/docs/": ("/api/docs/", "token"),
    "api/spaces/": ("/api/spaces/", "token"),
    "api/spaces/<int:space_id>/": ("/api/spaces/{space_id}/", "token"),
    "api/spaces/<int:space_id>/bundle/": ("/api/spaces/{space_id}/bundle/", "token"),
    "api/spaces/<int:space_id>/module/": ("/api/spaces/{space_id}/module/", "token"),
    "api/spaces/<int:space_id>/profile/": ("/api/spaces/{space_id}/profile/", "token"),
    "api/spaces/<int:space_id>/encodings/": ("/api/spaces/{space_id}/encodings/", "token"),
    "api/spaces/<int:space_id>/predictions/": ("/api/spaces/{space_id}/predictions/", "token"),
    "api/spaces/<int:space_id>/networks/<int:encoding_index>/":
        ("/api/spaces/{space_id}/networks/{encoding_index}/", "token"),
    "api/searches/": ("/api/searches/", "token"),
    "api/searches/<int:search_id>/": ("/api/searches/{search_id}/", "token"),
    "api/searches/<int:search_id>/progress/": ("/api/searches/{search_id}/progress/", "token"),
    "api/searches/<int:search_id>/curve/": ("/api/searches/{search_id}/curve/", "token"),
    "api/searches/<int:search_id>/reference-curve/": ("/api/searches/{search_id}/reference-curve/", "token"),
    "api/searches/<int:search_id>/pareto/": ("/api/searches/{search_id}/pareto/", "token"),
    "api/searches/<int:search_id>/hypervolume/": ("/api/searches/{search_id}/hypervolume/", "token"),
    "api/searches/<int:search_id>/positions/": ("/api/searches/{search_id}/positions/", "token"),
    "api/searches/<int:search_id>/predictions/": ("/api/searches/{search_id}/predictions/", "token"),
    "api/searches/<int:search_id>/evaluations/": ("/api/searches/{search_id}/evaluations/", "token"),
    "api/searches/<int:search_id>/evaluations.csv": ("/api/searches/{search_id}/evaluations.csv", "token"),
    "api/searches/<int:search_id>/evaluations/<int:evaluation_id>/":
        ("/api/searches/{search_id}/evaluations/{evaluation_id}/", "token"),
    "api/searches/<int:search_id>/evaluations/<int:evaluation_id>/log/":
        ("/api/searches/{search_id}/evaluations/{evaluation_id}/log/", "token"),
    "api/datasets/": ("/api/datasets/", "token"),
    "api/datasets/<int:dataset_id>/": ("/api/datasets/{dataset_id}/", "token"),
    "datasets/": ("/datasets/", "session"),
    "": ("/", "session"),
    "accounts/login/": ("/accounts/login/", "anonymous"),  # a logged-in user is sent on (302)
    "spaces/": ("/spaces/", "session"),
    "spaces/new/": ("/spaces/new/", "session"),
    "spaces/<int:space_id>/": ("/spaces/{space_id}/", "session"),
    "searches/new/": ("/searches/new/?space={space_id}", "session"),
    "searches/compare/": ("/searches/compare/?ids={search_id}", "session"),
    "searches/<int:search_id>/": ("/searches/{search_id}/", "session"),
    "searches/<int:search_id>/evaluations/": ("/searches/{search_id}/evaluations/", "session"),
}
# Routes that refuse GET (405): the test proves each one does, so none can hide a GET view here.
NO_GET_ROUTES: dict[str, tuple[str, str]] = {
    "api/token/": ("/api/token/", "anonymous"),
    "api/spaces/infer-positions/": ("/api/spaces/infer-positions/", "token"),
    "api/spaces/<int:space_id>/results/": ("/api/spaces/{space_id}/results/", "token"),
    "api/spaces/<int:space_id>/device-latencies/": ("/api/spaces/{space_id}/device-latencies/", "token"),
    "api/searches/<int:search_id>/pause/": ("/api/searches/{search_id}/pause/", "token"),
    "api/searches/<int:search_id>/resume/": ("/api/searches/{search_id}/resume/", "token"),
    "api/searches/<int:search_id>/cancel/": ("/api/searches/{search_id}/cancel/", "token"),
    "api/searches/<int:search_id>/extend/": ("/api/searches/{search_id}/extend/", "token"),
    "api/searches/<int:search_id>/retry-failed/": ("/api/searches/{search_id}/retry-failed/", "token"),
    "api/searches/<int:search_id>/clone/": ("/api/searches/{search_id}/clone/", "token"),
    "api/searches/<int:search_id>/evaluations/<int:evaluation_id>/retry/":
        ("/api/searches/{search_id}/evaluations/{evaluation_id}/retry/", "token"),
    "accounts/logout/": ("/accounts/logout/", "session"),
    "spaces/<int:space_id>/delete/": ("/spaces/{space_id}/delete/", "session"),
    "spaces/<int:space_id>/annotate/": ("/spaces/{space_id}/annotate/", "session"),
    "spaces/<int:space_id>/results/": ("/spaces/{space_id}/results/", "session"),
    "spaces/new/positions/": ("/spaces/new/positions/", "session"),
    "searches/<int:search_id>/evaluations/<int:evaluation_id>/retry/":
        ("/searches/{search_id}/evaluations/{evaluation_id}/retry/", "session"),
    "searches/<int:search_id>/delete/": ("/searches/{search_id}/delete/", "session"),
    "datasets/<int:dataset_id>/delete/": ("/datasets/{dataset_id}/delete/", "session"),
    "searches/<int:search_id>/<slug:action>/": ("/searches/{search_id}/pause/", "session"),
}
# The same routes read with query strings that take other code paths.
QUERY_URLS = ["/api/searches/{search_id}/evaluations/?ordering=-value&state=done",
              "/api/spaces/{space_id}/predictions/?page=2&page_size=5",
              "/searches/{search_id}/evaluations/?ordering=-value&state=done&value_min=0"]


def resolvable_routes(resolver: URLResolver | None = None, prefix: str = "") -> Iterator[tuple[str, Callable]]:
    """Every route of the URLconf with its view, including those of included URLconfs and DRF routers."""
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            if pattern.app_name == "admin":  # Django's own admin: staff only, not our code
                continue
            yield from resolvable_routes(pattern, prefix + str(pattern.pattern))
        else:
            yield prefix + str(pattern.pattern), pattern.callback


@pytest.fixture
def scenery(make_search, monkeypatch) -> dict[str, Any]:
    monkeypatch.setattr("spaces.engine.load_space", lambda space: PretrainedSpace())
    monkeypatch.setattr("searches.engine.predict", lambda search, indices: PretrainedSpace().predict(indices))
    search = make_search(n_done=6, n_failed=1)
    search.objectives = [["hi", "max"], ["params", "min"]]  # so the hypervolume view has something to read
    search.save(update_fields=["objectives"])
    NetworkSummary.objects.create(space=search.space, encoding_index=3, state="done", text="net")
    dataset = ImageDataset.objects.create(uid=uuid.uuid4(), owner=search.owner, name="pets", state="ready",
                                          class_names=["cat", "dog"], split_sizes={"train": 8, "validation": 2},
                                          image_shape=[8, 8, 3])
    return {"space_id": search.space_id, "search_id": search.id, "encoding_index": 3,
            "evaluation_id": search.evaluations.first().id, "dataset_id": dataset.id}


@pytest.fixture
def client_as(api, users) -> Callable[[str], Client]:
    """The client of one kind of reader; its login or token row exists before anything is counted."""

    def make(kind: str) -> Client:
        if kind == "token":
            client = api("owner")
            client.get("/api/spaces/")
            return client
        client = Client()
        if kind == "session":
            client.force_login(users["owner"])
        return client

    return make


def writes_while(client: Client, url: str) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
        if response.streaming:
            b"".join(response.streaming_content)
    # Anything but 200 (a 404 for a missing object, a 500, a redirect to the login page) means the view
    # never did its reading, and so proves nothing about it.
    assert response.status_code == 200, (url, response.status_code, getattr(response, "content", b"")[:300])
    return [q["sql"] for q in queries.captured_queries
            if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE"))]


@pytest.mark.parametrize("route", sorted(GET_ROUTES))
def test_reading_a_route_writes_nothing(client_as, scenery, route: str) -> None:
    url, kind = GET_ROUTES[route]
    assert writes_while(client_as(kind), url.format(**scenery)) == []


@pytest.mark.parametrize("url", QUERY_URLS)
def test_reading_with_a_query_writes_nothing(client_as, scenery, url: str) -> None:
    kind = "token" if url.startswith("/api/") else "session"
    assert writes_while(client_as(kind), url.format(**scenery)) == []


@pytest.mark.parametrize("route", sorted(NO_GET_ROUTES))
def test_a_route_left_unread_refuses_get(client_as, scenery, route: str) -> None:
    url, kind = NO_GET_ROUTES[route]
    response = client_as(kind).get(url.format(**scenery))
    assert response.status_code == 405, (route, response.status_code)


def test_every_get_route_is_checked() -> None:
    routes = [route for route, _ in resolvable_routes()]
    assert len(routes) == len(set(routes)), "a route appears twice in the URLconf"
    unchecked = set(routes) - set(GET_ROUTES) - set(NO_GET_ROUTES)
    assert not unchecked, (f"routes neither read by this test nor shown to refuse GET: {sorted(unchecked)}; "
                           "add each to GET_ROUTES (read: 200, no writes) or NO_GET_ROUTES (answers GET with 405)")
    assert set(GET_ROUTES) | set(NO_GET_ROUTES) == set(routes), "this test lists routes the URLconf no longer has"
    assert not set(GET_ROUTES) & set(NO_GET_ROUTES)


def test_a_class_based_view_is_listed_by_whether_it_answers_get() -> None:
    for route, view in resolvable_routes():
        actions = getattr(view, "actions", None)  # a DRF router's ViewSet route: {"get": "list", ...}
        view_class = getattr(view, "view_class", None)
        if actions is not None:
            answers_get = "get" in actions
        elif view_class is not None:
            answers_get = hasattr(view_class, "get") and "get" in view_class.http_method_names
        else:
            continue  # a function view: test_a_route_left_unread_refuses_get asks it directly
        assert (route in GET_ROUTES) == answers_get, route
