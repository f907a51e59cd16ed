"""A search whose evaluator trains networks with the built-in image-classification evaluator
(torchrun on CPU here) runs through a real worker and reports an accuracy and the training log."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings

from searches import services
from searches.models import Evaluation, SearchInstance
from searches.spec import SearchSpec
from tests.support.waiting import wait_until


def tiny_image_dataset(folder: Path, n_classes: int = 10) -> Path:
    """A local ``save_to_disk`` dataset of 8x8 colour-coded noisy images (no network needed)."""
    import datasets
    from PIL import Image

    rng = np.random.default_rng(0)
    features = datasets.Features(image=datasets.Image(),
                                 label=datasets.ClassLabel(names=[f"c{k}" for k in range(n_classes)]))
    splits = {}
    for split, n in (("train", 40), ("validation", 20)):
        labels = [i % n_classes for i in range(n)]
        images = []
        for label in labels:
            pixels = rng.normal(0, 30, (8, 8, 3))
            pixels[..., label % 3] += 200
            images.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))
        splits[split] = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
    path = folder / "tiny-images"
    datasets.DatasetDict(splits).save_to_disk(str(path))
    return path


@pytest.mark.slow
def test_built_in_image_classification_evaluator_trains_and_reports_accuracy(
        ready_space, start_worker, users, tmp_path: Path) -> None:
    # Server-side datasets must lie in NASWEB_DATASET_DIRS: the sandbox is shown them read-only.
    dataset = tiny_image_dataset(Path(settings.NASWEB_DATASET_DIRS[0]) / f"test-{time.monotonic_ns()}")
    search = services.search_create(
        owner=users["owner"], space=ready_space, spec=SearchSpec(
            name="train tiny nets", evaluator_kind="image_classification",
            evaluator_config={"dataset": str(dataset), "n_classes": 10, "epochs_hi": 1, "batch_size": 8,
                              "gpus_per_eval": 0, "image_size": 8},
            budget=1, parallelism=1, seed=0),
    )
    start_worker(name="trainer")

    def ended() -> bool:
        search.refresh_from_db()
        return search.state not in SearchInstance.ACTIVE_STATES

    wait_until(ended, 600, interval=1.0, message="the training evaluation did not finish")
    assert search.state == "finished", search.failure_reason
    evaluation = search.evaluations.get()
    assert evaluation.state == Evaluation.State.DONE, evaluation.error
    assert 0.0 <= evaluation.value <= 100.0
    assert evaluation.gpu == "cpu"
    assert "training" in evaluation.log_tail or "epoch" in evaluation.log_tail.lower()
