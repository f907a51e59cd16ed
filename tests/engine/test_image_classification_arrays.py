"""create_img_class_evaluator with in-memory arrays: (X_train, y_train, X_valid, y_valid) written once as a
save_to_disk folder, checked with errors that say what to pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nastune.evaluators.image_classification import DatasetError, arrays_to_dataset, create_img_class_evaluator

MODEL = '''
from torch import nn


def encoding_to_net(encoding, n_classes):
    (width,) = encoding
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(width, n_classes))
'''


def _arrays(n_train: int = 24, n_valid: int = 8, shape: tuple[int, ...] = (8, 8), seed: int = 0) -> tuple:
    """Class k is bright in its own quarter of the image, on noise (floats in [0, 1])."""
    rng = np.random.default_rng(seed)

    def part(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % 2
        images = rng.uniform(0, 0.3, (n, *shape))
        for image, label in zip(images, labels, strict=True):
            image[: shape[0] // 2 if label else None, : shape[1] // 2] += 0.6
        return np.clip(images, 0, 1), labels

    return (*part(n_train), *part(n_valid))


def test_arrays_become_a_saved_dataset_with_train_and_validation(tmp_path: Path) -> None:
    import datasets

    x_train, y_train, x_valid, y_valid = _arrays()
    folder = arrays_to_dataset((x_train, y_train, x_valid, y_valid), 2, tmp_path)
    loaded = datasets.load_from_disk(str(folder))
    assert {name: len(part) for name, part in loaded.items()} == {"train": 24, "validation": 8}
    assert loaded["train"]["label"] == y_train.tolist()
    first = np.asarray(loaded["train"][0]["image"])
    np.testing.assert_array_equal(first, np.rint(x_train[0] * 255).astype(np.uint8))
    # The same arrays give the same folder (written once); other arrays another.
    assert arrays_to_dataset((x_train, y_train, x_valid, y_valid), 2, tmp_path) == folder
    assert arrays_to_dataset(_arrays(seed=1), 2, tmp_path) != folder


@pytest.mark.parametrize("layout", ["hwc", "chw"])
def test_colour_images_channels_last_or_first_are_accepted(tmp_path: Path, layout: str) -> None:
    import datasets

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (6, 8, 10, 3), dtype=np.uint8)
    given = images if layout == "hwc" else np.moveaxis(images, -1, 1)
    folder = arrays_to_dataset((given, np.array([0, 1] * 3), given[:2], np.array([0, 1])), 2, tmp_path)
    np.testing.assert_array_equal(np.asarray(datasets.load_from_disk(str(folder))["train"][0]["image"]), images[0])


@pytest.mark.parametrize(("arrays", "message"), [
    ((np.zeros((4, 8, 8)), np.zeros(4, int), np.zeros((2, 8, 8))), "(X_train, y_train, X_valid, y_valid)"),
    ((np.zeros((4, 8)), np.zeros(4, int), np.zeros((2, 8, 8)), np.zeros(2, int)), "X_train has shape (4, 8)"),
    ((np.full((4, 8, 8), 2.0), np.zeros(4, int), np.zeros((2, 8, 8)), np.zeros(2, int)), "floats outside [0, 1]"),
    ((np.zeros((4, 8, 8)), np.zeros(3, int), np.zeros((2, 8, 8)), np.zeros(2, int)), "one label per image"),
    ((np.zeros((4, 8, 8)), np.array([0, 1, 2, 0]), np.zeros((2, 8, 8)), np.zeros(2, int)), "labels from 0 to 1"),
    ((np.zeros((4, 8, 8)), np.zeros(4, int), np.zeros((2, 9, 9)), np.zeros(2, int)), "the same (H, W, C)"),
], ids=["three-items", "2d-images", "float-range", "label-count", "label-range", "shape-mismatch"])
def test_bad_arrays_are_refused_with_what_to_pass(tmp_path: Path, arrays: tuple, message: str) -> None:
    with pytest.raises(DatasetError) as raised:
        arrays_to_dataset(arrays, 2, tmp_path)
    assert message in str(raised.value)
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
def test_evaluator_trains_on_in_memory_arrays(tmp_path: Path) -> None:
    model = tmp_path / "model.py"
    model.write_text(MODEL)
    evaluator = create_img_class_evaluator(_arrays(), 2, 0, model, eval_split="test", epochs=1, batch_size=8,
                                           image_size=8, work_dir=tmp_path / "runs", threads_per_process=1)
    assert evaluator.config.eval_split == "validation"  # the arrays' own split names win
    assert Path(evaluator.config.dataset).parent == tmp_path / "runs" / "in-memory-datasets"
    result = evaluator.evaluate([4])
    assert 0.0 <= result.accuracy <= 100.0
    assert result.details["n_eval_images"] == 8
