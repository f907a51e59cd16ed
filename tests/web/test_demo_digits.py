"""`make run`'s digits demo: a ready digits space and a search that trains CNNs for real on the CPU."""

from __future__ import annotations

import pytest

from nasweb.demo import DIGITS_SEARCH_NAME, DIGITS_SPACE_NAME, digits_dataset_folder, ensure_digits_demo
from searches.models import Evaluation, SearchInstance
from spaces.models import SearchSpace
from tests.support.waiting import wait_until


def test_digits_dataset_folder_is_a_saved_dataset_in_an_allowed_dataset_dir(settings) -> None:
    import datasets

    folder = digits_dataset_folder()
    assert folder.parent == settings.NASWEB_DATASET_DIRS[0]
    loaded = datasets.load_from_disk(str(folder))
    assert {name: len(part) for name, part in loaded.items()} == {"train": 1078, "validation": 359, "test": 360}
    assert loaded["train"].features["label"].num_classes == 10
    assert digits_dataset_folder() == folder  # written once, then reused


@pytest.mark.slow
def test_digits_demo_trains_networks_for_real_and_the_curve_gets_points(start_worker, users) -> None:
    messages: list[str] = []
    search = ensure_digits_demo(users["owner"], write=messages.append)
    assert search is not None and search.name == DIGITS_SEARCH_NAME
    space = SearchSpace.objects.get(owner=users["owner"], name=DIGITS_SPACE_NAME)
    assert space.state == "ready" and space.n_encodings == 1152
    assert {"params", "flops"} <= set(space.metrics)
    assert search.evaluator_kind == "image_classification" and search.lo_fi_cost is not None
    assert search.evaluator_config["gpus_per_eval"] == 0
    assert ensure_digits_demo(users["owner"], write=messages.append) == search  # a second make run adds nothing
    assert SearchInstance.objects.filter(owner=users["owner"]).count() == 1

    start_worker(name="digits-demo", queues="search,gpu")
    # The first real training run (torchrun on the CPU, in the sandbox) must end within ~2 minutes.
    wait_until(lambda: search.evaluations.filter(state__in=(Evaluation.State.DONE, Evaluation.State.FAILED)).exists(),
               180, interval=1.0, message="the digits demo search trained no network within 3 minutes")
    evaluation = search.evaluations.filter(state__in=(Evaluation.State.DONE, Evaluation.State.FAILED)).first()
    assert evaluation.state == Evaluation.State.DONE, evaluation.error
    assert 0.0 < evaluation.value <= 100.0
    assert "epoch" in evaluation.log_tail.lower()
