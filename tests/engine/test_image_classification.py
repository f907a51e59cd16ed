"""create_img_class_evaluator: torchrun training on CPU (gloo), reparameterisation, dataset errors, resume."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from nastune.evaluators import _train_image_classifier as trainer
from nastune.evaluators.image_classification import (
    DatasetError,
    TrainingError,
    create_img_class_evaluator,
)

REPO = Path(__file__).resolve().parents[2]

TINY_MODEL = '''
"""A three-block MobileOne network small enough to train in a test."""
from torch import nn

from examples.mobileone.net import MobileOneBlock


def encoding_to_net(encoding, n_classes):
    width, branches = encoding
    return nn.Sequential(
        MobileOneBlock(3, width, 3, stride=2, n_branches=branches),
        MobileOneBlock(width, width, 3, groups=width, n_branches=branches),
        MobileOneBlock(width, width, 1, n_branches=branches),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, n_classes),
    )
'''


def _images(n: int, n_classes: int, size: int, rng: np.random.Generator) -> tuple[list, list[int]]:
    """Colour-coded noisy images: class c is bright in channel c % 3."""
    from PIL import Image

    labels = [i % n_classes for i in range(n)]
    images = []
    for label in labels:
        pixels = np.zeros((size, size + 2, 3))
        pixels[..., label % 3] = 200
        pixels += rng.normal(0, 30, pixels.shape)
        images.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))
    return images, labels


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-class ``save_to_disk`` dataset: 32 train and 16 validation 12x14 images."""
    import datasets

    rng = np.random.default_rng(0)
    features = datasets.Features(image=datasets.Image(), label=datasets.ClassLabel(names=["red", "green"]))
    splits = {}
    for name, n in (("train", 32), ("validation", 16)):
        images, labels = _images(n, 2, 12, rng)
        splits[name] = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
    path = tmp_path_factory.mktemp("data") / "tiny"
    datasets.DatasetDict(splits).save_to_disk(str(path))
    return path


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny_model.py"
    path.write_text(TINY_MODEL)
    return path


def _evaluator(dataset: Path, model: Path, work_dir: Path, **options: object):
    defaults: dict[str, object] = {
        "epochs": 1,
        "batch_size": 8,
        "image_size": 16,
        "work_dir": work_dir,
        "threads_per_process": 1,
    }
    defaults.update(options)
    return create_img_class_evaluator(dataset, 2, 0, model, **defaults)  # type: ignore[arg-type]


@pytest.mark.slow
def test_one_epoch_with_two_gloo_processes_returns_accuracy(
    tiny_dataset: Path, tiny_model: Path, tmp_path: Path
) -> None:
    evaluator = _evaluator(tiny_dataset, tiny_model, tmp_path, n_cpu_processes=2)

    result = evaluator.evaluate([8, 2])

    assert 0.0 <= result.accuracy <= 100.0
    details = json.loads(result.result_path.read_text())
    assert details["status"] == "ok"
    assert details["world_size"] == 2
    assert details["n_eval_images"] == 16
    assert details["reparameterized"] is True
    assert details["params_eval"] < details["params_train"]
    assert result.run_dir == evaluator.run_dir_for([8, 2])
    log = result.log_path.read_text()
    assert "torch.distributed.run" in log
    assert "epoch 1/1" in log
    assert "accuracy" in log
    assert (result.run_dir / "checkpoint.pt").is_file()
    assert evaluator.log_tail([8, 2], n_chars=200) == log[-200:]
    # A finished run is reused, not retrained.
    assert evaluator([8, 2]) == result.accuracy


@pytest.mark.slow
def test_reparam_false_evaluates_the_train_time_network(tiny_dataset: Path, tiny_model: Path, tmp_path: Path) -> None:
    evaluator = _evaluator(tiny_dataset, tiny_model, tmp_path, reparam=False)

    details = evaluator.evaluate([4, 1]).details

    assert details["reparameterized"] is False
    assert details["params_eval"] == details["params_train"]


@pytest.mark.slow
def test_missing_split_is_a_dataset_error(tiny_dataset: Path, tiny_model: Path, tmp_path: Path) -> None:
    evaluator = _evaluator(tiny_dataset, tiny_model, tmp_path, eval_split="test")

    with pytest.raises(DatasetError, match=r"no evaluation split 'test'.*\['train', 'validation'\]"):
        evaluator([4, 1])


def test_wrong_n_classes_is_a_dataset_error(tiny_dataset: Path, tiny_model: Path, tmp_path: Path) -> None:
    # The trainer's entry point run in this process (one worker, no torchrun) to keep the test fast.
    config = trainer.TrainingConfig(
        encoding=[4, 1], n_classes=10, dataset=str(tiny_dataset), model_file=str(tiny_model), image_size=16
    )
    (tmp_path / "config.json").write_text(config.to_json())

    assert trainer.main([str(tmp_path / "config.json")]) == trainer.DATASET_EXIT_CODE

    result = json.loads((tmp_path / "result.json").read_text())
    assert result["status"] == "error"
    assert result["error_type"] == "dataset"
    assert "has 2 classes in column 'label' but n_classes=10; pass n_classes=2" in result["error"]


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint(tiny_dataset: Path, tiny_model: Path, tmp_path: Path) -> None:
    import os

    stopping = _evaluator(
        tiny_dataset, tiny_model, tmp_path, epochs=2, env={**os.environ, "NASTUNE_TRAIN_STOP_AFTER_EPOCH": "1"}
    )
    with pytest.raises(TrainingError, match="stopped before its last epoch"):
        stopping([4, 1])
    run_dir = stopping.run_dir_for([4, 1])
    assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["epoch"] == 1

    resumed = _evaluator(tiny_dataset, tiny_model, tmp_path, epochs=2)
    result = resumed.evaluate([4, 1])

    assert result.run_dir == run_dir
    assert result.details["resumed_from_epoch"] == 1
    assert len(result.details["train_losses"]) == 2
    assert "resuming from the checkpoint after epoch 1 of 2" in result.log_path.read_text()


@pytest.mark.slow
def test_failing_model_reports_the_error_and_the_log_tail(tiny_dataset: Path, tmp_path: Path) -> None:
    model = tmp_path / "broken.py"
    model.write_text("def encoding_to_net(encoding, n_classes):\n    raise ValueError('no such width')\n")
    evaluator = _evaluator(tiny_dataset, model, tmp_path / "runs")

    with pytest.raises(TrainingError, match="no such width") as caught:
        evaluator([4, 1])
    assert "Log " in str(caught.value)


def test_child_environment_is_offline_for_local_data_and_sets_devices(
    tiny_dataset: Path, tiny_model: Path, tmp_path: Path
) -> None:
    cpu = _evaluator(tiny_dataset, tiny_model, tmp_path, env={"PATH": "/usr/bin"})
    env = cpu.child_env()
    assert env["HF_DATASETS_OFFLINE"] == "1"
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["PYTHONPATH"].split(":")[0] == str(REPO)
    gpu = create_img_class_evaluator(
        "some-org/some-dataset",
        10,
        2,
        tiny_model,
        work_dir=tmp_path,
        cuda_visible_devices="2,3",
        env={"PATH": "/usr/bin"},
    )
    assert gpu.child_env()["CUDA_VISIBLE_DEVICES"] == "2,3"
    assert "HF_HUB_OFFLINE" not in gpu.child_env()
    assert "--nproc-per-node=2" in gpu.command(tmp_path / "config.json")
    assert gpu.config.use_gpu and gpu.config.amp


def test_run_directory_depends_on_encoding_and_epochs(tiny_dataset: Path, tiny_model: Path, tmp_path: Path) -> None:
    hi = _evaluator(tiny_dataset, tiny_model, tmp_path, epochs=240)
    lo = _evaluator(tiny_dataset, tiny_model, tmp_path, epochs=12)

    assert hi.run_dir_for([4, 1]) == hi.run_dir_for((4, 1))
    assert hi.run_dir_for([4, 1]) != hi.run_dir_for([4, 4])
    assert hi.run_dir_for([4, 1]) != lo.run_dir_for([4, 1])


def test_image_folder_is_loaded_with_its_class_names(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for split in ("train", "validation"):
        for name in ("cat", "dog", "fox"):
            folder = tmp_path / "folder" / split / name
            folder.mkdir(parents=True)
            images, _ = _images(2, 3, 10, rng)
            for i, image in enumerate(images):
                image.save(folder / f"{i}.png")
    config = trainer.TrainingConfig(
        encoding=[], n_classes=3, dataset=str(tmp_path / "folder"), model_file="x", cache_dir=str(tmp_path / "c")
    )

    splits = trainer.load_splits(config)

    assert set(splits) == {"train", "validation"}
    assert trainer.find_columns(splits["train"], config) == ("image", "label", 3)


def test_model_file_inside_a_package_keeps_its_relative_imports() -> None:
    build = trainer.load_model_function(str(REPO / "examples" / "mobileone" / "space.py"), "encoding_to_net")

    net = build((1, 0.25, 1, 0.25, 1, 0.25, 1, 0.25, 0, 1), 3).eval()

    assert net(torch.rand(1, 3, 32, 32)).shape == (1, 3)


def test_train_augmentation_is_deterministic_per_epoch_and_row() -> None:
    image = torch.randint(0, 256, (3, 20, 30), dtype=torch.uint8)

    def crop(epoch: int) -> torch.Tensor:
        return trainer.random_resized_crop(image, 16, 0.08, torch.Generator().manual_seed(epoch))

    assert crop(0).shape == (3, 16, 16)
    assert crop(0).dtype == torch.uint8
    torch.testing.assert_close(crop(0), crop(0))
    assert trainer.resize_center_crop(image, 16, 0.875).shape == (3, 16, 16)


def test_cosine_schedule_warms_up_then_decays_to_zero() -> None:
    lrs = [trainer.cosine_lr(0.1, step, 100, 10) for step in range(100)]

    assert lrs[0] == pytest.approx(0.01)
    assert lrs[9] == pytest.approx(0.1)
    assert all(a >= b for a, b in itertools.pairwise(lrs[10:]))
    assert lrs[-1] < 1e-3


def test_bad_arguments_are_rejected_with_a_fix(tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least 2 classes"):
        create_img_class_evaluator("x", 1, 0, tiny_model, work_dir=tmp_path)
    with pytest.raises(ValueError, match="use 0 for CPU"):
        create_img_class_evaluator("x", 10, -1, tiny_model, work_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_img_class_evaluator("x", 10, 0, tmp_path / "missing.py", work_dir=tmp_path)
