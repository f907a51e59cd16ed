"""Creating a search space in the web form: upload, example, bundle; errors appear next to their field."""

from __future__ import annotations

import json
import re

from django.core.files.uploadedfile import SimpleUploadedFile

from spaces.models import SearchSpace

TINY_MODULE = (
    "import torch\n\n\ndef encoding_to_net(encoding):\n"
    "    width, depth = encoding\n    return torch.nn.Sequential(*[torch.nn.Linear(4, 4) for _ in range(depth)])\n"
)


def _field_error(page: str, field_id: str) -> str:
    """The error shown next to one field (its ``_error`` element, which the field points at)."""
    assert re.search(rf'id="{field_id}"[^>]*aria-invalid="true"|aria-invalid="true"[^>]*id="{field_id}"', page), \
        f"#{field_id} is not marked invalid"
    match = re.search(rf'<p class="field-error" id="{field_id}_error">([^<]*)', page)
    assert match, f"no error next to #{field_id}"
    return match.group(1)


def _upload(client, *, encodings: bytes = b"[[4, 1], [8, 2], [16, 3]]", filename: str = "encodings.json",
            module: str | None = TINY_MODULE, module_file: bytes | None = None, shape: str = "1,4", **extra):
    data = {"form": "upload", "upload-name": "tiny", "upload-sample_input_shape": shape,
            "upload-encodings": SimpleUploadedFile(filename, encodings), **extra}
    if module is not None:
        data["upload-module_source"] = module
    if module_file is not None:
        data["upload-module"] = SimpleUploadedFile("net.py", module_file)
    return client.post("/spaces/new/", data)


def test_upload_creates_the_space_and_opens_its_page(owner_client, users, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        response = _upload(owner_client, module=None, module_file=TINY_MODULE.encode())
    space = SearchSpace.objects.get(owner=users["owner"])
    assert response.status_code == 302 and response["Location"] == f"/spaces/{space.id}/"
    assert (space.name, space.n_encodings, space.sample_input_shape) == ("tiny", 3, [1, 4])
    assert space.module_source == TINY_MODULE
    assert len(callbacks) == 1  # validation is enqueued once the row is committed


def test_csv_encodings_with_a_header_are_accepted(owner_client, users) -> None:
    response = _upload(owner_client, encodings=b"width,depth\n4,1\n8,2\n", filename="enc.csv")
    assert response.status_code == 302
    assert SearchSpace.objects.get(owner=users["owner"]).n_encodings == 2


def test_ragged_encodings_show_the_reason_next_to_the_file_field(owner_client) -> None:
    response = _upload(owner_client, encodings=json.dumps([[4, 1], [8, 2, 5], [16, 3]]).encode())
    assert response.status_code == 200  # the form again, with the error
    reason = _field_error(response.content.decode(), "id_upload-encodings")
    assert "encoding 1 has length 3" in reason
    assert not SearchSpace.objects.exists()


def test_module_without_encoding_to_net_is_refused_next_to_the_pasted_source(owner_client) -> None:
    response = _upload(owner_client, module="def build(encoding):\n    return None\n")
    assert "encoding_to_net" in _field_error(response.content.decode(), "id_upload-module_source")
    assert not SearchSpace.objects.exists()


def test_syntax_error_in_an_uploaded_module_is_shown_next_to_the_file_field(owner_client) -> None:
    response = _upload(owner_client, module=None, module_file=b"def encoding_to_net(e:\n    pass\n")
    assert "syntax error at line 1" in _field_error(response.content.decode(), "id_upload-module")


def test_bad_sample_shape_and_missing_file_are_field_errors(owner_client) -> None:
    response = _upload(owner_client, shape="1,three")
    assert "integers" in _field_error(response.content.decode(), "id_upload-sample_input_shape")
    response = owner_client.post("/spaces/new/", {"form": "upload", "upload-name": "x",
                                                  "upload-sample_input_shape": "1,4"})
    assert "choose an encodings file" in _field_error(response.content.decode(), "id_upload-encodings")


def test_the_form_keeps_what_was_typed_after_an_error(owner_client) -> None:
    page = _upload(owner_client, shape="0,4").content.decode()
    assert 'value="tiny"' in page and 'value="0,4"' in page
    assert 'aria-selected="true">Upload your network' in page


def test_a_broken_bundle_is_refused_next_to_the_bundle_field(owner_client) -> None:
    response = owner_client.post("/spaces/new/", {
        "form": "bundle", "bundle-bundle": SimpleUploadedFile("space.nastune", b"PK\x03\x04 not really a zip"),
    })
    assert response.status_code == 200  # the form again, with the error
    assert _field_error(response.content.decode(), "id_bundle-bundle")
    assert 'aria-selected="true">Import a bundle' in response.content.decode()
    assert not SearchSpace.objects.exists()


def test_unknown_example_is_a_field_error(owner_client) -> None:
    response = owner_client.post("/spaces/new/", {"form": "example", "example-example": "alexnet"})
    assert response.status_code == 200  # the form again, with the error
    page = response.content.decode()
    assert re.search(r'<p class="field-error" id="id_example-example_error">Select a valid choice', page)
    assert '<fieldset aria-describedby="id_example-example_error">' in page  # the radio group points at it


def test_the_example_choices_are_the_shipped_examples(owner_client) -> None:
    from spaces.examples import EXAMPLES

    page = owner_client.get("/spaces/new/").content.decode()
    for spec in EXAMPLES.values():
        assert f'value="{spec.name}"' in page
        assert spec.title in page
