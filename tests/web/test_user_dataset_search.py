"""A dataset uploaded through the API is checked by a real worker and then trained on: the image-classification
search that chose it (``evaluator_config.user_dataset``) finishes with an accuracy."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from image_datasets.models import ImageDataset
from searches.models import Evaluation, SearchInstance
from tests.datasets.archives import class_folder_files, upload, zip_bytes
from tests.support.waiting import wait_until


@pytest.mark.slow
def test_uploaded_dataset_is_checked_by_a_worker_and_a_search_trains_on_it(ready_space, start_worker, users) -> None:
    client = APIClient()
    client.force_authenticate(users["owner"])
    start_worker(queues="profile,search,gpu", name="datasets")
    created = client.post("/api/datasets/", {"name": "pets", "archive": upload(zip_bytes(class_folder_files()))},
                          format="multipart")
    assert created.status_code == 201, created.json()
    assert created.json()["state"] == "validating"
    dataset = ImageDataset.objects.get(id=created.json()["id"])

    def checked() -> bool:
        dataset.refresh_from_db()
        return dataset.state != ImageDataset.State.VALIDATING

    wait_until(checked, 60, interval=0.3, message="the worker did not check the dataset")
    assert dataset.state == "ready", dataset.failure_reason
    assert client.get(f"/api/datasets/{dataset.id}/").json()["split_sizes"] == {"train": 12, "validation": 3}

    response = client.post("/api/searches/", {
        "space": ready_space.id, "name": "pets run", "evaluator_kind": "image_classification", "budget": 1,
        "evaluator_config": {"user_dataset": dataset.id, "epochs_hi": 1, "batch_size": 4, "gpus_per_eval": 0,
                             "image_size": 8}}, format="json")
    assert response.status_code == 201, response.json()
    search = SearchInstance.objects.get(id=response.json()["id"])

    def ended() -> bool:
        search.refresh_from_db()
        return search.state not in SearchInstance.ACTIVE_STATES

    wait_until(ended, 300, interval=1.0, message="the training evaluation did not finish")
    evaluation = search.evaluations.get()
    assert evaluation.state == Evaluation.State.DONE, evaluation.error
    assert 0.0 <= evaluation.value <= 100.0
    assert client.delete(f"/api/datasets/{dataset.id}/").status_code == 204  # the search has ended
