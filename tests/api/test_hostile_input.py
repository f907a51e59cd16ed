"""Hostile JSON (100,000 levels deep, a 5,000-digit number) is a 400 naming the field, never a 500; in the
API (encodings upload, request bodies, ``evaluator_config`` in multipart, the anonymous token endpoint)
and in the dashboard's New space form (tests/frontend/test_hostile_form_input.py)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from searches.models import SearchInstance
from spaces.models import SearchSpace
from tests.api.expect import assert_error
from tests.api.test_search_create import module_search, table_file
from tests.api.test_space_create import encodings_file, upload

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000
LONG_NUMBER = "9" * 5_000
JSON_BODY = "application/json"


@pytest.mark.parametrize("text", [DEEP, f'{{"encodings": {DEEP}}}', "[" * 70 + "[1, 2]" + "]" * 70])
def test_deeply_nested_encodings_are_refused_on_the_encodings_field(api, text: str) -> None:
    assert_error(upload(api("owner"), encodings=encodings_file(text.encode())), 400, "encodings", "deeper than")
    assert not SearchSpace.objects.exists()


@pytest.mark.parametrize("text", [f"[[{LONG_NUMBER}, 1]]", f"[[1, -{LONG_NUMBER}]]",
                                  f'{{"encodings": [[1, 2], [{LONG_NUMBER}, 3]]}}'])
def test_an_encoding_with_a_five_thousand_digit_integer_is_refused_on_the_encodings_field(api, text: str) -> None:
    assert_error(upload(api("owner"), encodings=encodings_file(text.encode())), 400, "encodings", "4300 digits")
    assert not SearchSpace.objects.exists()


def test_a_csv_encodings_file_with_a_five_thousand_digit_number_is_refused_on_its_field(api) -> None:
    csv = f"width,depth\n{LONG_NUMBER},1\n2,3\n".encode()
    response = upload(api("owner"), encodings=SimpleUploadedFile("e.csv", csv, content_type="text/csv"))
    assert_error(response, 400, "encodings", "4300 digits")


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, f'{{"name": "x", "example": "nb201", "d": {DEEP}}}'])
def test_a_deeply_nested_json_request_body_is_a_400_on_the_body(api, body: str) -> None:
    response = api("owner").post("/api/spaces/", body, content_type=JSON_BODY)
    assert_error(response, 400, "body", "deeper than")


def test_a_json_request_body_with_a_five_thousand_digit_number_is_a_400_on_the_body(api) -> None:
    response = api("owner").post("/api/spaces/", f'{{"name": "x", "max_profiled": {LONG_NUMBER}}}',
                                 content_type=JSON_BODY)
    assert_error(response, 400, "body", "digits")


def test_a_deep_search_request_body_is_a_400_on_the_body(api, make_space) -> None:
    response = api("owner").post("/api/searches/", f'{{"space": {make_space().id}, "evaluator_config": {DEEP}}}',
                                 content_type=JSON_BODY)
    assert_error(response, 400, "body", "deeper than")
    assert not SearchInstance.objects.exists()


@pytest.mark.parametrize(("config", "reason"), [
    (DEEP_OBJECT, "deeper than"), ('{"a":' * 70 + "1" + "}" * 70, "deeper than"),
    (f'{{"delay_s": {LONG_NUMBER}}}', "digits"),
])
def test_a_hostile_evaluator_config_in_multipart_is_refused_on_its_field(api, make_space, config, reason) -> None:
    response = api("owner").post("/api/searches/", {
        **module_search(make_space(), evaluator_kind="tabular", evaluator_source=""),
        "evaluator_table": table_file(), "evaluator_config": config}, format="multipart")
    assert_error(response, 400, "evaluator_config", reason)
    assert not SearchInstance.objects.exists()


def test_a_deep_sample_shape_in_multipart_is_refused_on_its_field(api) -> None:
    response = upload(api("owner"), sample_input_shape=DEEP)
    assert_error(response, 400, "sample_input_shape")


@pytest.mark.parametrize("body", [DEEP, f'{{"username": "owner", "password": {DEEP}}}',
                                  f'{{"username": {LONG_NUMBER}, "password": "x"}}'])
def test_the_anonymous_token_endpoint_answers_hostile_json_with_a_400_on_the_body(users, body: str) -> None:
    response = APIClient().post("/api/token/", body, content_type=JSON_BODY)
    assert response.status_code == 400, response.content[:300]
    assert response.json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize("field", ["objectives", "constraints", "reference_point"])
def test_hostile_goals_in_multipart_are_refused_on_their_field(api, make_space, field: str) -> None:
    response = api("owner").post("/api/searches/", {**module_search(make_space()), field: DEEP_OBJECT},
                                 format="multipart")
    assert_error(response, 400, field, "deeper than")
    assert not SearchInstance.objects.exists()
