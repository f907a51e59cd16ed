"""Schemathesis drives every operation of the OpenAPI schema with generated input, valid and
invalid: no request, however odd, makes the API answer with a server error (5xx).

Seeded (``derandomize``) and bounded (a few examples per operation and mode), in-process
through the WSGI application. Path ids are pinned to real objects of the caller's, so generated
requests reach the views instead of stopping at 404.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, given, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from image_datasets.models import ImageDataset
from searches.models import SearchInstance

EXAMPLES = 6


def operation_labels() -> list[str]:
    document = SchemaGenerator().get_schema(request=None, public=True)
    return [f"{method.upper()} {path}" for path, operations in document["paths"].items() for method in operations]


@pytest.fixture
def keep_test_connection() -> Iterator[None]:
    """The WSGI handler closes the database connection after each request, which would end the
    test's transaction; Django's test client unhooks that signal the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


@pytest.fixture
def api_schema(users, make_search, keep_test_connection, monkeypatch) -> tuple[Any, dict, dict]:
    from tests.api.test_space_predictions_view import PretrainedSpace

    monkeypatch.setattr("spaces.engine.load_space", lambda space: PretrainedSpace())
    monkeypatch.setattr("searches.engine.predict", lambda search, indices: PretrainedSpace().predict(indices))
    search = make_search(n_done=6, n_failed=1, state=SearchInstance.State.PAUSED)
    token, _ = Token.objects.get_or_create(user=users["owner"])
    dataset = ImageDataset.objects.create(uid=uuid.uuid4(), owner=users["owner"], name="pets", state="ready",
                                          class_names=["cat", "dog"], split_sizes={"train": 8, "validation": 2})
    pinned = {"space_id": search.space_id, "search_id": search.id, "encoding_index": 3,
              "evaluation_id": search.evaluations.get(state="failed").id, "dataset_id": dataset.id}
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", get_wsgi_application())
    return schema, pinned, {"Authorization": f"Token {token.key}"}


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
@pytest.mark.parametrize("label", operation_labels())
def test_no_generated_request_gets_a_server_error(api_schema, label: str, mode: GenerationMode) -> None:
    schema, pinned, auth = api_schema
    operation = schema.find_operation_by_label(label)
    assert operation is not None, label
    fixed = {name: value for name, value in pinned.items() if f"{{{name}}}" in operation.path}
    if mode == GenerationMode.NEGATIVE and not (operation.query or operation.body):
        fixed = {}  # the path is all there is to get wrong (and a malformed id must not crash either)

    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=fixed or None))
    def run(case: Any) -> None:
        case.call_and_validate(headers=auth, checks=[not_a_server_error])

    run()
