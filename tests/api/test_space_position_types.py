"""A user chooses each encoding position's type (categorical / ordinal / numeric / log) or lets the engine
infer it; the engine's inference is offered before the space is created."""

from __future__ import annotations

import json

from django.core.files.uploadedfile import SimpleUploadedFile

from nastune import create_search_space
from spaces.models import SearchSpace
from spaces.services import engine_feature_spec
from tests.api.expect import assert_error
from tests.api.test_space_create import refused, upload
from tests.api.tiny import TINY_ENCODINGS


def test_the_engine_inference_is_offered_before_creating(api) -> None:
    encodings = SimpleUploadedFile("e.json", json.dumps(TINY_ENCODINGS).encode())
    response = api("owner").post("/api/spaces/infer-positions/", {"encodings": encodings}, format="multipart")
    assert response.status_code == 200, response.content
    width, depth, activation = response.json()
    # four widths and three depths are few distinct numbers: the engine one-hot encodes them
    assert [width["type"], depth["type"], activation["type"]] == ["categorical", "categorical", "categorical"]
    assert activation["values"] == ["relu", "tanh"] and "requested" not in width
    assert not SearchSpace.objects.exists()


def test_chosen_types_are_stored_and_reach_the_engine(api) -> None:
    response = upload(api("owner"), position_types="numeric, ordinal, infer")
    assert response.status_code == 201, response.content
    summary = response.json()["feature_summary"]
    assert [(entry["type"], entry["kind"], entry.get("requested")) for entry in summary] == [
        ("numeric", "numeric", "numeric"), ("ordinal", "numeric", "ordinal"), ("categorical", "onehot", None)]
    space = SearchSpace.objects.get(id=response.json()["id"])
    # the engine builds its features from the stored choices
    built = create_search_space("t", None, TINY_ENCODINGS, feature_spec=engine_feature_spec(space.feature_summary))
    assert [item["kind"] for item in built.feature_spec] == ["numeric", "numeric", "onehot"]


def test_a_log_scale_position_and_a_categorical_number(api) -> None:
    response = api("owner").post("/api/spaces/", {
        "name": "t", "encodings": SimpleUploadedFile("e.json", json.dumps(TINY_ENCODINGS).encode()),
        "module_source": "def encoding_to_net(encoding):\n    return None\n", "sample_input_shape": "1,3,8,8",
        "position_types": "log,infer,categorical"}, format="multipart")
    assert response.status_code == 201, response.content
    assert [entry["type"] for entry in response.json()["feature_summary"]] == ["log", "categorical", "categorical"]


def test_bad_position_types_are_refused_with_the_reason(api) -> None:
    refused(upload(api("owner"), position_types="numeric,ordinal"), "position_types", "give one per position")
    refused(upload(api("owner"), position_types="numeric,ordinal,spicy"), "position_types", "unknown position type")
    refused(upload(api("owner"), position_types="infer,infer,numeric"), "position_types", "cannot be used as numbers")


def test_inference_of_a_bad_file_is_a_400_on_encodings(api) -> None:
    response = api("owner").post("/api/spaces/infer-positions/",
                                 {"encodings": SimpleUploadedFile("e.json", b"[[1, 2], [3]]")}, format="multipart")
    assert_error(response, 400, "encodings")
