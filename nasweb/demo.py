"""Demo data for ``make run``: NAS-Bench-201 table searches and a digits search that trains for real.

The NB201 searches use the tabular evaluator over the real NAS-Bench-201 CIFAR-10 validation
accuracies (hi fidelity) and a simulated low fidelity (one training seed's accuracy plus
Gaussian noise; NAS-Bench-201 has no short-training results), so no GPU is needed. The digits
search trains small CNNs on scikit-learn's bundled 8x8 digits with the image-classification
evaluator on the CPU (:func:`ensure_digits_demo`).
"""

from __future__ import annotations

import io
import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from searches import services as search_services
from searches.models import Evaluation, SearchInstance
from searches.spec import SearchSpec
from spaces import services as space_services
from spaces.models import SearchSpace

logger = logging.getLogger(__name__)

DEMO_SPACE_NAME = "NAS-Bench-201 (demo)"
DIGITS_SPACE_NAME = "Digits CNN (demo)"
DIGITS_SEARCH_NAME = "Digits, real CPU training, budget 10 (live)"
DIGITS_DATASET_FOLDER = "digits-demo"
# Few epochs keep one evaluation (torchrun start-up included) at 10-20 s on one busy core.
DIGITS_EVALUATOR_CONFIG: dict[str, Any] = {
    "n_classes": 10, "train_split": "train", "eval_split": "validation", "epochs_hi": 6, "epochs_lo": 2,
    "batch_size": 64, "gpus_per_eval": 0, "image_size": 8,
    # 8x8 digits lose their strokes to ImageNet-style random crops: train and evaluate on whole images.
    "min_crop_scale": 1.0, "crop_pct": 1.0,
}
LOW_FIDELITY_NOISE = 2.0  # accuracy points of noise on top of one seed's value


def nb201_table_csv(seed: int = 0) -> bytes:
    """``index,hi,lo`` for every NB201 cell: mean CIFAR-10 validation accuracy, and a simulated
    low fidelity (one random seed's accuracy + N(0, 2^2) noise)."""
    from examples.nb201 import load_table

    table = load_table()
    rng = np.random.default_rng(seed)
    hi = table.valid_acc["cifar10"]
    per_seed = table.valid_acc_seeds["cifar10"]
    counts = np.isfinite(per_seed).sum(axis=1)
    pick = np.floor(rng.random(len(hi)) * counts).astype(int)
    lo = per_seed[np.arange(len(hi)), pick] + rng.normal(0.0, LOW_FIDELITY_NOISE, len(hi))
    out = io.StringIO()
    out.write("index,hi,lo\n")
    for index, (h, low) in enumerate(zip(hi, lo, strict=True)):
        out.write(f"{index},{h:.4f},{low:.4f}\n")
    return out.getvalue().encode()


def run_search_inline(search: SearchInstance, *, max_steps: int = 10_000) -> SearchInstance:
    """Drive a search to its end in this process (for demo data; workers do this in production)."""
    for _ in range(max_steps):
        search_services.search_step(search_id=search.id)
        search.refresh_from_db()
        if search.state not in SearchInstance.ACTIVE_STATES:
            return search
        queued = list(search.evaluations.filter(state=Evaluation.State.QUEUED).values_list("id", flat=True))
        for evaluation_id in queued:
            search_services.evaluation_run(evaluation_id=evaluation_id)
    return search


def ensure_demo(owner: Any, *, write: Any = print) -> None:
    """Create the demo space and searches for ``owner`` unless it has them already."""
    space = SearchSpace.objects.filter(owner=owner, name=DEMO_SPACE_NAME).first()
    if space is None:
        try:
            from examples.nb201 import load_table

            load_table()
        except FileNotFoundError as exc:
            write(f"Demo space skipped: {exc}")
            return
        write("Creating the demo NAS-Bench-201 space (pretraining its surrogate, about a minute)...")
        space = space_services.space_create_from_example(owner=owner, example="nb201", name=DEMO_SPACE_NAME)
        space_services.space_pretrain(space_id=space.id)
        space.refresh_from_db()
    if space.state != SearchSpace.State.READY:
        write(f"Demo space is {space.state}; the worker will finish it.")
        return
    if SearchInstance.objects.filter(owner=owner, space=space).exists():
        return
    table = nb201_table_csv()
    write("Running the finished demo search...")
    finished = search_services.search_create(
        owner=owner, space=space, spec=SearchSpec(
            name="CIFAR-10, 20 evaluations (finished example)", evaluator_kind="tabular", evaluator_table=table,
            evaluator_config={"delay_s": 0}, hi_fi_cost=200, budget=20, parallelism=1, seed=0),
    )
    run_search_inline(finished)
    search_services.search_create(
        owner=owner, space=space, spec=SearchSpec(
            name="CIFAR-10 with a low fidelity, budget 60 (live)", evaluator_kind="tabular", evaluator_table=table,
            evaluator_config={"delay_s": 1.5}, hi_fi_cost=200, lo_fi_cost=10, budget=60, parallelism=2, seed=1),
    )
    write("Demo searches created: one finished, one running (watch it live on the dashboard).")


def digits_dataset_folder() -> Path:
    """The digits split as a Hugging Face ``save_to_disk`` folder in the first ``NASWEB_DATASET_DIRS`` folder
    (where the sandbox may read it), written once."""
    from django.conf import settings

    from examples.digits import save_hf_dataset

    folder = Path(settings.NASWEB_DATASET_DIRS[0]) / DIGITS_DATASET_FOLDER
    if (folder / "dataset_dict.json").is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    # Written beside its final place and renamed: a killed setup never leaves a half dataset to train on.
    partial = Path(tempfile.mkdtemp(prefix=f".{DIGITS_DATASET_FOLDER}-", dir=folder.parent))
    try:
        save_hf_dataset(partial / "data")
        shutil.rmtree(folder, ignore_errors=True)
        (partial / "data").rename(folder)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return folder


def ensure_digits_demo(owner: Any, *, write: Any = print) -> SearchInstance | None:
    """Create the digits space and a search that trains its CNNs for real (CPU), unless ``owner`` has them.

    The search is queued; the worker started by ``make run`` trains the networks, so the dashboard shows
    training runs, their logs and a moving curve within minutes.
    """
    space = SearchSpace.objects.filter(owner=owner, name=DIGITS_SPACE_NAME).first()
    if space is None:
        write("Creating the digits demo space (1,152 CNNs, closed-form profile)...")
        space = space_services.space_create_from_example(owner=owner, example="digits", name=DIGITS_SPACE_NAME)
        space_services.space_pretrain(space_id=space.id)
        space.refresh_from_db()
    if space.state != SearchSpace.State.READY:
        write(f"Digits demo space is {space.state}; the worker will finish it.")
        return None
    existing = SearchInstance.objects.filter(owner=owner, space=space).order_by("id").first()
    if existing is not None:
        return existing
    dataset = digits_dataset_folder()
    search = search_services.search_create(
        owner=owner, space=space, spec=SearchSpec(
            name=DIGITS_SEARCH_NAME, evaluator_kind="image_classification",
            evaluator_config={**DIGITS_EVALUATOR_CONFIG, "dataset": str(dataset)},
            hi_fi_cost=DIGITS_EVALUATOR_CONFIG["epochs_hi"], lo_fi_cost=DIGITS_EVALUATOR_CONFIG["epochs_lo"],
            budget=10, parallelism=1, seed=0),
    )
    write("Digits demo search created: the worker trains its networks on the CPU (watch the runs and logs live).")
    return search
