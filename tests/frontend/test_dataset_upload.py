"""Uploading an image dataset from the dashboard: the same service and the same messages as the API."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from image_datasets import services
from image_datasets.models import ImageDataset
from tests.datasets.archives import class_folder_files, png, upload, zip_bytes


@pytest.fixture(autouse=True)
def _own_folders(settings, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NASWEB_DATASET_DIRS = [tmp_path / "datasets"]


def test_good_archive_is_listed_checking_then_ready_with_its_summary(owner_client) -> None:
    response = owner_client.post("/datasets/", {"name": "pets", "archive": upload(zip_bytes(class_folder_files()))})
    assert response.status_code == 302
    page = owner_client.get("/datasets/").content.decode()
    assert "pets" in page and 'data-state="validating"' in page
    services.image_dataset_check(dataset_id=ImageDataset.objects.get().id)  # what the worker does
    page = owner_client.get("/datasets/").content.decode()
    assert 'data-state="ready"' in page
    assert "3 classes (cat, dog, frog) · train 12, validation 3 images · 8×8×3" in page


def test_bad_archive_shows_the_reason_on_the_archive_field_and_stores_nothing(owner_client) -> None:
    bad = zip_bytes({**class_folder_files(), "../escape.png": png()})
    response = owner_client.post("/datasets/", {"name": "pets", "archive": upload(bad)})
    assert response.status_code == 200  # the page again, as every dashboard form answers, with the error
    page = response.content.decode()
    error = re.search(r'<p class="field-error" id="id_archive_error">([^<]*)', page)
    assert error and "leaves the archive&#x27;s folder" in error.group(1)
    assert 'value="pets"' in page  # the name the user typed is kept
    assert not ImageDataset.objects.exists()


def test_failed_check_shows_its_reason_in_the_list(owner_client) -> None:
    owner_client.post("/datasets/", {"name": "one", "archive": upload(zip_bytes(class_folder_files(("cat",))))})
    services.image_dataset_check(dataset_id=ImageDataset.objects.get().id)
    page = owner_client.get("/datasets/").content.decode()
    assert 'data-state="failed"' in page and "image classification needs at least 2 classes" in page


def test_outsider_cannot_delete_someone_elses_dataset(owner_client, outsider_client) -> None:
    owner_client.post("/datasets/", {"name": "pets", "archive": upload(zip_bytes(class_folder_files()))})
    dataset = ImageDataset.objects.get()
    assert outsider_client.post(f"/datasets/{dataset.id}/delete/").status_code == 404
    assert "pets" not in outsider_client.get("/datasets/").content.decode()
    assert owner_client.post(f"/datasets/{dataset.id}/delete/").status_code == 302
    assert not ImageDataset.objects.exists()
