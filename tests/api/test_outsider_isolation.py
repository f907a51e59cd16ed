"""Every object is its owner's alone: on every endpoint, anyone else gets the same 404 as for an
object that does not exist (never 403), and nothing changes."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.urls import URLPattern

from image_datasets.models import ImageDataset
from nasweb import api_urls
from searches.models import Evaluation, SearchInstance
from spaces.models import NetworkSummary, SearchSpace

PUBLIC = {"api-token", "api-docs"}
OBJECT_ROUTES = [pattern for pattern in api_urls.urlpatterns
                 if isinstance(pattern, URLPattern) and pattern.name not in PUBLIC and pattern.pattern.converters]


def calls() -> list[tuple[str, str]]:
    out = []
    for pattern in OBJECT_ROUTES:
        view = pattern.callback.view_class
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                out.append((pattern.name, method))
    return out


def test_every_route_with_an_object_id_is_covered() -> None:
    names = {name for name, _ in calls()}
    assert names == {pattern.name for pattern in OBJECT_ROUTES} and len(calls()) >= 22


@pytest.fixture
def scenery(make_search) -> dict[str, Any]:
    search = make_search(n_done=4, n_failed=1, state=SearchInstance.State.FINISHED)
    search.objectives = [["hi", "max"], ["params", "min"]]  # so its hypervolume route answers too
    search.save(update_fields=["objectives"])
    NetworkSummary.objects.create(space=search.space, encoding_index=3, state="done", text="net")
    dataset = ImageDataset.objects.create(uid=uuid.uuid4(), owner=search.owner, name="pets", state="failed",
                                          failure_reason="one class")
    return {"space_id": search.space_id, "search_id": search.id, "encoding_index": 3,
            "evaluation_id": search.evaluations.get(state="failed").id, "dataset_id": dataset.id}


def url_for(name: str, scenery: dict[str, Any], shift: int = 0) -> str:
    pattern = next(pattern for pattern in OBJECT_ROUTES if pattern.name == name)
    route = "/api/" + str(pattern.pattern)
    for key, value in scenery.items():
        route = route.replace(f"<int:{key}>", str(value + shift if key != "encoding_index" else value))
    return route


def snapshot() -> tuple:
    return (list(SearchSpace.objects.values_list("id", "state", "name")),
            list(SearchInstance.objects.values_list("id", "state", "finished_count")),
            list(Evaluation.objects.order_by("id").values_list("id", "state", "retried")),
            list(NetworkSummary.objects.values_list("id", "state")),
            list(ImageDataset.objects.values_list("id", "state")))


@pytest.mark.parametrize("role", ["outsider", "teammate"])
@pytest.mark.parametrize(("name", "method"), calls())
def test_someone_else_gets_the_same_404_as_for_a_missing_object(api, scenery, role: str, name: str,
                                                                method: str) -> None:
    client = api(role)
    before = snapshot()
    theirs = getattr(client, method)(url_for(name, scenery))
    missing = getattr(client, method)(url_for(name, scenery, shift=10_000))
    assert theirs.status_code == 404, (name, method, theirs.status_code)
    assert theirs.json() == missing.json() and theirs.json()["errors"][0]["reason"].startswith("no such")
    assert snapshot() == before


@pytest.mark.parametrize("name", sorted({name for name, method in calls() if method == "get"}))
def test_the_owner_reaches_every_object_route(api, scenery, monkeypatch, name: str) -> None:
    from tests.api.test_space_predictions_view import PretrainedSpace

    monkeypatch.setattr("spaces.engine.load_space", lambda space: PretrainedSpace())
    monkeypatch.setattr("searches.engine.predict", lambda search, indices: PretrainedSpace().predict(indices))
    response = api("owner").get(url_for(name, scenery))
    assert response.status_code == 200, (name, response.status_code, getattr(response, "content", b"")[:300])
