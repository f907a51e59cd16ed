"""Importing a bundle is bounded: a small upload that would unpack to gigabytes is refused before anything is
unpacked, members are checked by streaming, and no error shows a server path."""

from __future__ import annotations

import json
import resource
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from spaces.models import SearchSpace
from tests.api.expect import assert_error

MiB = 1 << 20


def post_bundle(client, data: bytes, name: str = "shared.nastune"):
    return client.post("/api/spaces/", {"bundle": SimpleUploadedFile(name, data)}, format="multipart")


def zeros_bundle(path: Path, member_mib: int) -> Path:
    """A few MB of zip whose one member inflates to ``member_mib`` MiB of zeros (a zip bomb)."""
    chunk = bytes(MiB)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("manifest.json", json.dumps({"members": {"encodings.json": {"sha256": "0" * 64}}}))
        with archive.open("encodings.json", "w", force_zip64=True) as member:
            for _ in range(member_mib):
                member.write(chunk)
    return path


@pytest.fixture(scope="module")
def two_gib_bomb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    return zeros_bundle(tmp_path_factory.mktemp("bomb") / "bomb.nastune", 2048).read_bytes()


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_a_small_upload_with_a_two_gib_member_is_refused_without_unpacking_it(api, two_gib_bomb: bytes) -> None:
    assert len(two_gib_bomb) < 20 * MiB
    before = peak_rss_mib()
    response = post_bundle(api("owner"), two_gib_bomb)
    assert_error(response, 400, "bundle", "unpacks to 2,048 MB, more than the limit of 1,024 MB")
    assert peak_rss_mib() - before < 200, "the web process inflated the member"
    assert not SearchSpace.objects.exists()


def test_the_unpacked_limit_is_a_setting(api, settings, tmp_path: Path) -> None:
    settings.NASWEB_MAX_BUNDLE_MB = 2
    assert_error(post_bundle(api("owner"), zeros_bundle(tmp_path / "b.nastune", 3).read_bytes()), 400, "bundle",
                 "NASWEB_MAX_BUNDLE_MB")


def test_a_member_that_fails_its_checksum_is_found_by_streaming_and_named(api, tmp_path: Path) -> None:
    response = post_bundle(api("owner"), zeros_bundle(tmp_path / "b.nastune", 3).read_bytes())
    assert_error(response, 400, "bundle", "'encodings.json' fails its sha256 checksum")


def test_a_bundle_with_hundreds_of_members_is_refused(api, tmp_path: Path) -> None:
    path = tmp_path / "many.nastune"
    with zipfile.ZipFile(path, "w") as archive:
        for k in range(500):
            archive.writestr(f"m{k}", b"")
    assert_error(post_bundle(api("owner"), path.read_bytes()), 400, "bundle", "500 members")


def test_a_deeply_nested_manifest_is_refused(api, tmp_path: Path) -> None:
    path = tmp_path / "deep.nastune"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", "[" * 100_000 + "]" * 100_000)
    assert_error(post_bundle(api("owner"), path.read_bytes()), 400, "bundle", "deeper than")


@pytest.mark.parametrize("data", [b"hello", b"PK\x03\x04 not really a zip"])
def test_errors_about_a_bundle_never_show_a_server_path(api, tmp_path: Path, data: bytes) -> None:
    response = post_bundle(api("owner"), data)
    assert response.status_code == 400
    reasons = " ".join(error["reason"] for error in response.json()["errors"])
    assert "/tmp" not in reasons and "nasweb-bundle" not in reasons and "upload.nastune" not in reasons, reasons


def test_a_tampered_real_bundle_names_the_member_and_not_the_server_path(api, pretrained_bundle: Path,
                                                                          tmp_path: Path) -> None:
    tampered = tmp_path / "t.nastune"
    with zipfile.ZipFile(pretrained_bundle) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            target.writestr(info, data + b" " if info.filename == "encodings.json" else data)
    response = post_bundle(api("owner"), tampered.read_bytes(), name="from-a-colleague.nastune")
    assert_error(response, 400, "bundle", "'encodings.json'")
    assert "/tmp" not in response.content.decode()


def test_an_example_whose_data_is_missing_does_not_show_where_the_server_looked(api, monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("NASWEB_NB201_CSV", str(tmp_path / "secret-folder" / "missing.csv"))
    response = api("owner").post("/api/spaces/", {"example": "nb201", "name": "n"}, format="json")
    assert_error(response, 400, "example", "lacks the data")
    assert "secret-folder" not in response.content.decode()


def rewritten(bundle: Path, target: Path, member: str, data: bytes) -> Path:
    """``bundle`` with ``member`` replaced and the manifest's checksum updated: passes the web's checks."""
    import hashlib

    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(target, "w") as copy:
        manifest = json.loads(source.read("manifest.json"))
        manifest["members"][member].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
        for info in source.infolist():
            if info.filename == "manifest.json":
                copy.writestr("manifest.json", json.dumps(manifest))
            else:
                copy.writestr(info, data if info.filename == member else source.read(info))
    return target


def test_the_web_stores_the_bundle_and_shows_an_empty_space_until_a_worker_imports_it(api, pretrained_bundle) -> None:
    from spaces.services import space_validate

    client = api("owner")
    body = post_bundle(client, pretrained_bundle.read_bytes()).json()
    assert (body["state"], body["n_encodings"]) == ("uploaded", 0)
    assert client.get(f"/api/spaces/{body['id']}/encodings/").json()["results"] == []
    space_validate(space_id=body["id"])  # what the worker does with the spaces.validate message
    body = client.get(f"/api/spaces/{body['id']}/").json()
    assert (body["state"], body["n_encodings"]) == ("ready", 24)
    space_validate(space_id=body["id"])  # a redelivered message changes nothing
    assert client.get(f"/api/spaces/{body['id']}/").json()["state"] == "ready"


def test_a_bundle_the_worker_cannot_read_fails_with_a_reason_and_no_server_path(api, pretrained_bundle,
                                                                               tmp_path: Path) -> None:
    from spaces.services import space_validate

    broken = rewritten(pretrained_bundle, tmp_path / "b.nastune", "encodings.json", b'[[1, 2], [3]]')
    response = post_bundle(api("owner"), broken.read_bytes())
    assert response.status_code == 201, response.content  # checksums fine: the web cannot tell
    space_validate(space_id=response.json()["id"])
    space = SearchSpace.objects.get(id=response.json()["id"])
    assert space.state == "failed" and space.failure_reason.startswith("import failed:")
    assert "/tmp" not in space.failure_reason and "media" not in space.failure_reason, space.failure_reason


@pytest.mark.slow
def test_a_worker_imports_an_uploaded_bundle(api, pretrained_bundle, start_worker) -> None:
    from tests.support.waiting import wait_until

    start_worker(queues="profile", name="importer")
    space_id = post_bundle(api("owner"), pretrained_bundle.read_bytes()).json()["id"]
    space = SearchSpace.objects.get(id=space_id)

    def imported() -> bool:
        space.refresh_from_db()
        return space.state in ("ready", "failed")

    wait_until(imported, 120, interval=0.3)
    assert space.state == "ready" and space.n_encodings == 24, space.failure_reason
