"""Uploading an image dataset through the API: a good archive becomes ready with its classes, sizes and
shape; a bad one is refused (400, nothing stored) or fails its check in the worker with a clear reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from image_datasets import services
from image_datasets.models import ImageDataset
from tests.datasets.archives import (
    class_folder_files,
    parquet_bytes,
    png,
    saved_dataset_zip,
    tar_bytes,
    upload,
    zip_bytes,
    zip_with_symlink,
)


@pytest.fixture(autouse=True)
def _own_folders(settings, tmp_path: Path) -> None:
    """Media and dataset folders of this test only, so "nothing stored" looks at this test's files."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.NASWEB_DATASET_DIRS = [tmp_path / "datasets"]


def _post(client, data: bytes, *, name: str = "pets", filename: str = "pets.zip"):
    return client.post("/api/datasets/", {"name": name, "archive": upload(data, filename)}, format="multipart")


def _checked(client, response) -> dict:
    """Run the worker's check of the uploaded dataset (the task's service; no worker in these tests)."""
    assert response.status_code == 201, response.json()
    services.image_dataset_check(dataset_id=response.json()["id"])
    return client.get(f"/api/datasets/{response.json()['id']}/").json()


def _stored_files() -> list[Path]:
    roots = [Path(settings.MEDIA_ROOT) / "datasets", Path(settings.NASWEB_DATASET_DIRS[0]) / "uploads"]
    return [path for root in roots if root.exists() for path in root.rglob("*") if path.is_file()]


def test_class_folder_zip_becomes_ready_with_classes_sizes_and_shape(api) -> None:
    import datasets

    owner = api("owner")
    dataset = _checked(owner, _post(owner, zip_bytes(class_folder_files(per_class=5))))
    assert dataset["state"] == "ready", dataset["failure_reason"]
    assert dataset["format"] == "class_folders"
    assert dataset["class_names"] == ["cat", "dog", "frog"] and dataset["n_classes"] == 3
    assert dataset["split_sizes"] == {"train": 12, "validation": 3} and dataset["n_images"] == 15
    assert dataset["image_shape"] == [8, 8, 3]
    stored = ImageDataset.objects.get(id=dataset["id"])
    assert not stored.archive  # the archive is gone once checked
    loaded = datasets.load_from_disk(stored.folder)  # what the evaluator will read
    assert loaded["train"].features["label"].names == ["cat", "dog", "frog"]
    assert len(loaded["validation"]) == 3 and loaded["train"][0]["image"].size == (8, 8)
    assert Path(stored.folder).is_relative_to(settings.NASWEB_DATASET_DIRS[0])


def test_train_and_validation_folders_in_a_tar_gz_keep_their_split(api) -> None:
    owner = api("owner")
    files = {**class_folder_files(("a", "b"), per_class=4, prefix="data/train/"),
             **class_folder_files(("a", "b"), per_class=2, prefix="data/validation/")}
    dataset = _checked(owner, _post(owner, tar_bytes(files), filename="data.tar.gz"))
    assert dataset["state"] == "ready", dataset["failure_reason"]
    assert dataset["split_sizes"] == {"train": 8, "validation": 4}


def test_saved_dataset_folder_zip_becomes_ready(api, tmp_path: Path) -> None:
    owner = api("owner")
    dataset = _checked(owner, _post(owner, saved_dataset_zip(tmp_path)))
    assert dataset["state"] == "ready", dataset["failure_reason"]
    assert dataset["format"] == "saved_dataset"
    assert dataset["class_names"] == ["c0", "c1", "c2"]
    assert dataset["split_sizes"] == {"train": 12, "validation": 6}


def test_one_parquet_file_is_split_per_class(api) -> None:
    owner = api("owner")
    dataset = _checked(owner, _post(owner, parquet_bytes(n=12, n_classes=2), filename="digits.parquet"))
    assert dataset["state"] == "ready", dataset["failure_reason"]
    assert dataset["format"] == "parquet" and dataset["n_classes"] == 2
    assert dataset["split_sizes"] == {"train": 10, "validation": 2}


@pytest.mark.parametrize(("data", "reason"), [
    (b"hello, this is not an archive", "not an archive"),
    (tar_bytes(class_folder_files(), links={"cat/x.png": "/etc/passwd"}), "is a link"),
    (zip_with_symlink(), "is a link"),
    (zip_bytes({**class_folder_files(), "../../escape.png": png()}), "leaves the archive's folder"),
    (zip_bytes({**class_folder_files(), "/etc/cron.d/evil": b"x"}), "absolute path"),
], ids=["not-an-archive", "tar-symlink", "zip-symlink", "path-traversal", "absolute-path"])
def test_bad_archive_is_refused_at_once_and_nothing_is_stored(api, data: bytes, reason: str) -> None:
    response = _post(api("owner"), data)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["field"] == "archive" and reason in error["reason"], error
    assert not ImageDataset.objects.exists()
    assert _stored_files() == []


def test_archive_over_the_file_limit_is_refused(api, settings) -> None:
    settings.NASWEB_DATASET_MAX_FILES = 10
    response = _post(api("owner"), zip_bytes(class_folder_files(per_class=5)))
    assert response.status_code == 400
    assert "more than 10 files" in response.json()["errors"][0]["reason"]


@pytest.mark.parametrize(("files", "reason"), [
    (class_folder_files(("cat",)), "has 1 class ('cat'); image classification needs at least 2"),
    ({**class_folder_files(("cat", "dog")), "dog/big.png": png((16, 16))}, "2 different shapes"),
    ({**class_folder_files(("cat", "dog")), "cat/notes.txt": b"hello"}, "is not an image file"),
    ({**class_folder_files(("cat", "dog")), "stray.png": png()}, "is not inside a class folder"),
    ({**class_folder_files(("cat", "dog")), "cat/broken.png": b"\x89PNG not really"}, "not a readable image"),
    ({**class_folder_files(("cat", "dog")), "bird/0.png": png()}, "class 'bird' has 1 image(s)"),
], ids=["one-class", "mixed-shapes", "not-an-image", "stray-file", "broken-image", "class-of-one"])
def test_bad_dataset_fails_its_check_with_a_clear_reason_and_keeps_no_files(api, files, reason: str) -> None:
    owner = api("owner")
    dataset = _checked(owner, _post(owner, zip_bytes(files)))
    assert dataset["state"] == "failed"
    assert reason in dataset["failure_reason"], dataset["failure_reason"]
    assert _stored_files() == []
    assert dataset["class_names"] == [] and dataset["split_sizes"] == {}


def test_mixed_shapes_reason_names_an_example_of_each_shape(api) -> None:
    owner = api("owner")
    files = {**class_folder_files(("cat", "dog")), "dog/big.png": png((16, 16))}
    reason = _checked(owner, _post(owner, zip_bytes(files)))["failure_reason"]
    assert "8x8x3 (10 images" in reason and "16x16x3 (1 images, e.g. dog/big.png)" in reason


def test_a_second_dataset_of_the_same_name_is_refused(api) -> None:
    owner = api("owner")
    assert _post(owner, zip_bytes(class_folder_files())).status_code == 201
    response = _post(owner, zip_bytes(class_folder_files()))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "name"


def test_missing_archive_is_refused_on_its_field(api) -> None:
    response = api("owner").post("/api/datasets/", {"name": "x"}, format="multipart")
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "archive"


def test_list_shows_only_your_datasets(api) -> None:
    _post(api("owner"), zip_bytes(class_folder_files()), name="mine")
    _post(api("outsider"), zip_bytes(class_folder_files()), name="theirs")
    names = [row["name"] for row in api("owner").get("/api/datasets/").json()["results"]]
    assert names == ["mine"]


def test_outsider_gets_404_for_someone_elses_dataset(api) -> None:
    dataset_id = _post(api("owner"), zip_bytes(class_folder_files())).json()["id"]
    outsider = api("outsider")
    assert outsider.get(f"/api/datasets/{dataset_id}/").status_code == 404
    assert outsider.delete(f"/api/datasets/{dataset_id}/").status_code == 404
    assert ImageDataset.objects.filter(id=dataset_id).exists()


def test_delete_removes_the_dataset_and_its_folder(api) -> None:
    owner = api("owner")
    dataset = _checked(owner, _post(owner, zip_bytes(class_folder_files())))
    folder = Path(ImageDataset.objects.get(id=dataset["id"]).folder)
    assert folder.is_dir()
    assert owner.delete(f"/api/datasets/{dataset['id']}/").status_code == 204
    assert not ImageDataset.objects.exists()


def test_a_dataset_an_active_search_trains_on_cannot_be_deleted(api, make_search) -> None:
    owner = api("owner")
    dataset = _checked(owner, _post(owner, zip_bytes(class_folder_files())))
    search = make_search(state="running")
    search.evaluator_config = {"dataset": ImageDataset.objects.get(id=dataset["id"]).folder}
    search.save()
    response = owner.delete(f"/api/datasets/{dataset['id']}/")
    assert response.status_code == 409
    assert "tiny search" in response.json()["errors"][0]["reason"]
    assert ImageDataset.objects.filter(id=dataset["id"]).exists()


def test_a_small_archive_that_unpacks_past_the_size_limit_is_refused(api, settings) -> None:
    settings.NASWEB_DATASET_MAX_MB = 1
    bomb = zip_bytes({**class_folder_files(), "cat/huge.png": bytes(3 * 2**20)})  # compresses to a few kB
    assert len(bomb) < 100_000
    response = _post(api("owner"), bomb)
    assert response.status_code == 400
    assert "unpacks to more than 1 MB" in response.json()["errors"][0]["reason"]
    assert not ImageDataset.objects.exists() and _stored_files() == []
