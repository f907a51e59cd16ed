"""Choosing one of your checked datasets for the image-classification evaluator: in the API as
``evaluator_config.user_dataset``, in the New search form as a choice among your ready datasets."""

from __future__ import annotations

import re
import uuid

import pytest
from django.test import Client

from image_datasets.models import ImageDataset
from searches.models import SearchInstance
from tests.api.expect import assert_error


@pytest.fixture
def dataset_of(users):
    def make(role: str = "owner", *, state: str = "ready", name: str = "pets") -> ImageDataset:
        return ImageDataset.objects.create(
            uid=uuid.uuid4(), owner=users[role], name=name, state=state, folder=f"/data/uploads/{name}",
            class_names=["cat", "dog", "frog"] if state == "ready" else [],
            split_sizes={"train": 12, "validation": 3} if state == "ready" else {},
            image_shape=[8, 8, 3] if state == "ready" else [],
            failure_reason="the dataset has 1 class ('cat')" if state == "failed" else "")
    return make


def _search(space, **config) -> dict:
    return {"space": space.id, "name": "pets run", "evaluator_kind": "image_classification", "budget": 5,
            "evaluator_config": {"epochs_hi": 2, "gpus_per_eval": 0, "image_size": 8, **config}}


def test_your_ready_dataset_sets_folder_classes_and_splits(api, make_space, dataset_of) -> None:
    dataset = dataset_of()
    response = api("owner").post("/api/searches/", _search(make_space(), user_dataset=dataset.id), format="json")
    assert response.status_code == 201, response.content
    config = SearchInstance.objects.get().evaluator_config
    assert config["user_dataset"] == dataset.id and config["dataset"] == dataset.folder
    assert (config["n_classes"], config["train_split"], config["eval_split"]) == (3, "train", "validation")


def test_someone_elses_dataset_cannot_be_chosen(api, make_space, dataset_of) -> None:
    theirs = dataset_of("outsider")
    response = api("owner").post("/api/searches/", _search(make_space(), user_dataset=theirs.id), format="json")
    assert_error(response, 400, "evaluator_config.user_dataset", "no dataset with this id")
    assert not SearchInstance.objects.exists()


def test_a_failed_dataset_cannot_be_chosen_and_says_why(api, make_space, dataset_of) -> None:
    failed = dataset_of(state="failed")
    response = api("owner").post("/api/searches/", _search(make_space(), user_dataset=failed.id), format="json")
    assert_error(response, 400, "evaluator_config.user_dataset", "is failed, not ready: the dataset has 1 class")


def test_a_dataset_and_a_named_dataset_together_are_refused(api, make_space, dataset_of) -> None:
    response = api("owner").post("/api/searches/", _search(make_space(), user_dataset=dataset_of().id,
                                                           dataset="cifar10"), format="json")
    assert_error(response, 400, "evaluator_config.dataset", "not both")


def test_neither_dataset_nor_named_dataset_is_refused(api, make_space) -> None:
    response = api("owner").post("/api/searches/", _search(make_space(), n_classes=10), format="json")
    assert_error(response, 400, "evaluator_config.dataset", "choose one of your datasets")


def test_the_new_search_form_offers_only_your_ready_datasets(users, make_space, dataset_of) -> None:
    mine = dataset_of()
    dataset_of(state="failed", name="broken")
    dataset_of("outsider", name="theirs")
    client = Client()
    client.force_login(users["owner"])
    space = make_space()
    page = client.get(f"/searches/new/?space={space.id}").content.decode()
    options = re.findall(r'<option value="(\d*)"[^>]*>([^<]*)</option>',
                         re.search(r'<select name="user_dataset".*?</select>', page, re.S).group(0))
    assert options == [("", "none"), (str(mine.id), "pets (3 classes, 15 images)")]
    response = client.post("/searches/new/", {
        "space": str(space.id), "name": "form run", "evaluator_kind": "image_classification", "budget": "5",
        "hi_fi_cost": "1", "acquisition": "ei", "direction": "maximize", "user_dataset": str(mine.id),
        "epochs_hi": "2", "gpus_per_eval": "0", "image_size": "8"})
    assert response.status_code == 302, response.content.decode()[:2000]
    assert SearchInstance.objects.get().evaluator_config["dataset"] == mine.folder
