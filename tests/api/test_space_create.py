"""A user creates a search space through the API: an upload, an example or a bundle; bad input is
refused with HTTP 400 naming the field, and nothing is stored."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from spaces.models import SearchSpace
from tests.api.expect import assert_error
from tests.api.tiny import MODULE, TINY_ENCODINGS


def encodings_file(encodings: object = TINY_ENCODINGS, name: str = "encodings.json") -> SimpleUploadedFile:
    data = encodings if isinstance(encodings, bytes) else json.dumps(encodings).encode()
    return SimpleUploadedFile(name, data, content_type="application/json")


def module_file(source: str | bytes = MODULE) -> SimpleUploadedFile:
    return SimpleUploadedFile("space.py", source if isinstance(source, bytes) else source.encode(),
                              content_type="text/x-python")


def upload(client, **fields):
    data = {"name": "tiny", "encodings": encodings_file(), "module": module_file(),
            "sample_input_shape": "1,3,8,8", **fields}
    return client.post("/api/spaces/", {k: v for k, v in data.items() if v is not None}, format="multipart")


def refused(response, field: str, reason_part: str = "") -> None:
    assert_error(response, 400, field, reason_part)
    assert not SearchSpace.objects.exists()


def bundle_of_tiny_space(folder: Path) -> Path:
    """A real bundle written by nastune (encodings, module, profile; no surrogate)."""
    from nastune import create_search_space

    space = create_search_space("tiny bundle", folder / "tiny.nastune", TINY_ENCODINGS)
    space.module_source = MODULE
    return space.save()


def test_an_upload_is_stored_and_queued_for_validation(api) -> None:
    response = upload(api("owner"), description="three knobs", max_profiled=10)
    assert response.status_code == 201, response.content
    body = response.json()
    space = SearchSpace.objects.get(id=body["id"])
    assert body["state"] == "uploaded" and space.owner.username == "owner"
    assert body["n_encodings"] == 24 and body["encoding_length"] == 3
    assert body["sample_input_shape"] == [1, 3, 8, 8] and body["max_profiled"] == 10
    assert space.module_source == MODULE


def test_the_module_may_be_sent_as_text_and_the_shape_as_a_json_list(api) -> None:
    response = upload(api("owner"), module=None, module_source=MODULE, sample_input_shape="[1, 3, 8, 8]")
    assert response.status_code == 201, response.content
    assert response.json()["sample_input_shape"] == [1, 3, 8, 8]


def test_encodings_may_be_a_csv_file_with_a_header(api) -> None:
    rows = "width,depth,activation\n" + "\n".join(",".join(map(str, e)) for e in TINY_ENCODINGS)
    response = upload(api("owner"), encodings=SimpleUploadedFile("e.csv", rows.encode(), content_type="text/csv"))
    assert response.status_code == 201, response.content
    assert response.json()["n_encodings"] == 24


@pytest.mark.parametrize(("example", "n_encodings"), [("nb201", 15625), ("digits", 1152)])
def test_an_example_space_is_created_from_its_name(api, example: str, n_encodings: int) -> None:
    response = api("owner").post("/api/spaces/", {"example": example, "name": f"my {example}"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == f"my {example}" and body["source"] == "example" and body["n_encodings"] == n_encodings


def test_an_example_whose_data_the_server_lacks_is_refused(api, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NASWEB_NB201_CSV", str(tmp_path / "missing.csv"))
    response = api("owner").post("/api/spaces/", {"example": "nb201", "name": "my nb201"}, format="json")
    refused(response, "example", "lacks the data")


def test_ragged_encodings_are_refused(api) -> None:
    refused(upload(api("owner"), encodings=encodings_file([[1, 2, 3], [4, 5]])), "encodings", "encoding 1 has length 2")


def test_encodings_that_are_not_json_or_csv_text_are_refused(api) -> None:
    refused(upload(api("owner"), encodings=encodings_file(b"\xff\xfe\x00garbage")), "encodings", "not UTF-8")


def test_malformed_json_encodings_are_refused(api) -> None:
    refused(upload(api("owner"), encodings=encodings_file(b"[[1, 2], [3,")), "encodings", "malformed")


def test_duplicate_encodings_are_refused(api) -> None:
    refused(upload(api("owner"), encodings=encodings_file([[1, 2], [1, 2]])), "encodings")


def test_a_module_without_encoding_to_net_is_refused(api) -> None:
    refused(upload(api("owner"), module=module_file("def build(encoding):\n    return None\n")), "module",
            "no top-level encoding_to_net")


def test_a_module_with_a_syntax_error_is_refused_with_its_line(api) -> None:
    refused(upload(api("owner"), module=module_file("def encoding_to_net(encoding)\n    return 1\n")), "module",
            "syntax error at line 1")


def test_a_module_that_is_not_utf8_is_refused(api) -> None:
    refused(upload(api("owner"), module=module_file(b"\xff\xfe def encoding_to_net(e): pass")), "module", "UTF-8")


def test_a_missing_module_is_refused(api) -> None:
    refused(upload(api("owner"), module=None), "module")


def test_a_module_file_and_module_text_together_are_refused(api) -> None:
    refused(upload(api("owner"), module_source=MODULE), "module", "either")


@pytest.mark.parametrize("shape", ["1,3,a", "[1, 3, 0]", "[[1]]", "1,2,3,4,5,6,7", "[1, 3, 8"])
def test_a_bad_sample_input_shape_is_refused(api, shape: str) -> None:
    refused(upload(api("owner"), sample_input_shape=shape), "sample_input_shape")


def test_a_missing_sample_input_shape_is_refused(api) -> None:
    refused(upload(api("owner"), sample_input_shape=None), "sample_input_shape")


def test_a_missing_name_is_refused(api) -> None:
    refused(upload(api("owner"), name=""), "name")


def test_max_profiled_below_one_is_refused(api) -> None:
    refused(upload(api("owner"), max_profiled=0), "max_profiled")


def test_an_unknown_example_is_refused(api) -> None:
    refused(api("owner").post("/api/spaces/", {"example": "resnet9000"}, format="json"), "example")


def test_two_ways_at_once_are_refused(api, tmp_path: Path) -> None:
    refused(upload(api("owner"), example="nb201"), "encodings", "exactly one")


def test_nothing_to_create_from_is_refused(api) -> None:
    refused(api("owner").post("/api/spaces/", {"name": "empty"}, format="json"), "encodings", "exactly one")


def test_encodings_over_the_count_limit_are_refused(api, settings) -> None:
    settings.NASWEB_MAX_ENCODINGS = 10
    refused(upload(api("owner")), "encodings", "NASWEB_MAX_ENCODINGS")


def test_a_file_over_the_upload_limit_is_refused(api, settings) -> None:
    settings.NASWEB_MAX_UPLOAD_MB = 1
    big = [[i, "x" * 100] for i in range(12_000)]
    refused(upload(api("owner"), encodings=encodings_file(big)), "encodings", "NASWEB_MAX_UPLOAD_MB")


def test_a_module_over_the_length_limit_is_refused(api, settings) -> None:
    settings.NASWEB_MAX_MODULE_CHARS = 100
    refused(upload(api("owner"), module=module_file(MODULE + "#" * 200)), "module", "limit")


def imported(client, response) -> dict:
    """The space once a worker has imported its bundle (the task's service, run here)."""
    from spaces.services import space_validate

    assert response.status_code == 201, response.content
    assert response.json()["state"] == "uploaded"  # the web process only checked it
    space_validate(space_id=response.json()["id"])
    return client.get(f"/api/spaces/{response.json()['id']}/").json()


def test_a_bundle_is_imported_as_a_ready_space_without_running_its_code(api, pretrained_bundle: Path) -> None:
    bundle = SimpleUploadedFile("b.nastune", pretrained_bundle.read_bytes())
    body = imported(api("owner"), api("owner").post("/api/spaces/", {"bundle": bundle}, format="multipart"))
    assert (body["state"], body["source"], body["name"]) == ("ready", "bundle", "tiny bundle")
    assert body["n_encodings"] == 24 and body["metrics"] == ["flops", "params"] and body["has_bundle"]
    assert api("owner").get(f"/api/spaces/{body['id']}/module/").json()["source"] == MODULE


def test_a_downloaded_bundle_imports_again_as_the_same_space(api, pretrained_bundle: Path) -> None:
    client = api("owner")
    first = imported(client, client.post("/api/spaces/", {
        "bundle": SimpleUploadedFile("b.nastune", pretrained_bundle.read_bytes()), "name": "original"},
        format="multipart"))
    download = client.get(f"/api/spaces/{first['id']}/bundle/")
    data = b"".join(download.streaming_content)
    again = imported(client, client.post("/api/spaces/", {
        "bundle": SimpleUploadedFile("original.nastune", data), "name": "copy"}, format="multipart"))
    encodings = [client.get(f"/api/spaces/{space_id}/encodings/?page_size=50").json()["results"]
                 for space_id in (first["id"], again["id"])]
    assert encodings[0] == encodings[1] and len(encodings[0]) == 24


def test_a_bundle_with_a_tampered_member_is_refused_by_its_checksum(api, tmp_path: Path) -> None:
    bundle = bundle_of_tiny_space(tmp_path)
    tampered = tmp_path / "tampered.nastune"
    with zipfile.ZipFile(bundle) as original, zipfile.ZipFile(tampered, "w") as copy:
        for info in original.infolist():
            data = original.read(info)
            if info.filename == "encodings.json":
                data = data[:10] + bytes([data[10] ^ 0x01]) + data[11:]  # flip one bit of one byte
            copy.writestr(info, data)
    response = api("owner").post("/api/spaces/", {"bundle": SimpleUploadedFile("t.nastune", tampered.read_bytes())},
                                 format="multipart")
    refused(response, "bundle", "'encodings.json'")
    assert "checksum" in response.json()["errors"][0]["reason"]


def test_a_bundle_without_a_pretrained_surrogate_is_refused(api, tmp_path: Path) -> None:
    bundle = bundle_of_tiny_space(tmp_path)
    response = api("owner").post("/api/spaces/", {"bundle": SimpleUploadedFile("t.nastune", bundle.read_bytes())},
                                 format="multipart")
    refused(response, "bundle", "no pretrained surrogate")


def test_a_file_that_is_not_a_bundle_is_refused(api) -> None:
    response = api("owner").post("/api/spaces/", {"bundle": SimpleUploadedFile("t.nastune", b"hello")},
                                 format="multipart")
    refused(response, "bundle", "not a zip")


def test_a_json_body_cannot_carry_files(api) -> None:
    response = api("owner").post("/api/spaces/", {"encodings": "[[1]]", "module_source": MODULE,
                                                  "sample_input_shape": [1]}, format="json")
    refused(response, "encodings")
