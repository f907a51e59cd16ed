"""The New space form keeps already-valid uploads after an error and takes a type per encoding position."""

from __future__ import annotations

import html
import re

from django.core.files.uploadedfile import SimpleUploadedFile

from spaces.models import SearchSpace
from tests.frontend.test_space_create import TINY_MODULE, _field_error, _upload

ENCODINGS = b"[[4, 1], [8, 2], [16, 3]]"


def _hidden(page: str, name: str) -> str:
    match = re.search(rf'name="upload-{name}" value="([^"]*)"', page)
    return html.unescape(match.group(1)) if match else ""


def test_a_valid_encodings_file_and_module_are_kept_after_another_error(owner_client) -> None:
    response = _upload(owner_client, module=None, module_file=TINY_MODULE.encode(), shape="1,three")
    page = response.content.decode()
    assert "integers" in _field_error(page, "id_upload-sample_input_shape")
    assert _hidden(page, "encodings_kept") == ENCODINGS.decode()
    assert 'id="encodings-kept"' in page and "<code>encodings.json</code>" in page
    assert html.escape("def encoding_to_net(encoding):") in page  # the module file became the pasted source
    # the second try sends neither file again
    again = owner_client.post("/spaces/new/", {
        "form": "upload", "upload-name": "tiny", "upload-sample_input_shape": "1,4",
        "upload-encodings_kept": _hidden(page, "encodings_kept"), "upload-encodings_kept_name": "encodings.json",
        "upload-module_source": TINY_MODULE})
    assert again.status_code == 302, again.content.decode()[:2000]
    space = SearchSpace.objects.get(name="tiny")
    assert space.n_encodings == 3 and space.module_source.strip() == TINY_MODULE.strip()


def test_an_invalid_encodings_file_is_not_kept(owner_client) -> None:
    page = _upload(owner_client, encodings=b"[[1, 2], [3]]").content.decode()
    assert _field_error(page, "id_upload-encodings")
    assert _hidden(page, "encodings_kept") == "" and 'id="encodings-kept"' not in page


def test_without_a_file_or_a_kept_one_the_encodings_are_required(owner_client) -> None:
    page = owner_client.post("/spaces/new/", {"form": "upload", "upload-name": "x", "upload-module_source": TINY_MODULE,
                                              "upload-sample_input_shape": "1,4"}).content.decode()
    assert "choose an encodings file" in _field_error(page, "id_upload-encodings")


def test_position_types_from_the_form_reach_the_space(owner_client) -> None:
    response = _upload(owner_client, **{"upload-position_types": "numeric,categorical"})
    assert response.status_code == 302
    summary = SearchSpace.objects.get(name="tiny").feature_summary
    assert [(entry["type"], entry.get("requested")) for entry in summary] == [
        ("numeric", "numeric"), ("categorical", "categorical")]
    page = owner_client.get("/spaces/new/").content.decode()
    assert 'id="position-types" data-infer-url="/spaces/new/positions/"' in page


def test_a_bad_position_type_is_shown_next_to_its_field(owner_client) -> None:
    page = _upload(owner_client, **{"upload-position_types": "numeric"}).content.decode()
    assert "give one per position" in _field_error(page, "id_upload-position_types")
    assert not SearchSpace.objects.exists()


def test_the_session_infers_positions_for_the_form(owner_client) -> None:
    response = owner_client.post("/api/spaces/infer-positions/",
                                 {"encodings": SimpleUploadedFile("e.json", b'[[1, "a"], [2, "b"], [3, "a"]]')})
    assert response.status_code == 200
    assert [entry["type"] for entry in response.json()] == ["categorical", "categorical"]
