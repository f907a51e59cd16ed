"""scikit-learn's bundled digits data (8x8 images) and the fixed, seeded, stratified train/valid/test split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SPLIT_SEED = 0
#: fractions of the 1,797 images in train / valid / test
SPLIT_FRACTIONS: tuple[float, float, float] = (0.6, 0.2, 0.2)
N_CLASSES = 10


@dataclass(frozen=True)
class DigitsSplit:
    """The digits images scaled to [0, 1] and split.

    Attributes:
        x_train, x_valid, x_test: ``(n, 1, 8, 8)`` float32 images (pixel value / 16).
        y_train, y_valid, y_test: ``(n,)`` int64 labels 0..9.
        idx_train, idx_valid, idx_test: ``(n,)`` row indices into ``sklearn.datasets.load_digits()``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    idx_train: np.ndarray
    idx_valid: np.ndarray
    idx_test: np.ndarray


def split_indices(labels: np.ndarray, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train/valid/test row indices of ``labels: (n,)`` in :data:`SPLIT_FRACTIONS`, each sorted.

    Per class, the rows are permuted with ``numpy.random.default_rng(seed)`` and cut by the fractions, so
    every split holds each class in the data set's proportion (to one image) and the same seed gives the
    same split on every machine (no dependence on scikit-learn's splitting code).
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    rng = np.random.default_rng(seed)
    parts: tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]] = ([], [], [])
    for label in np.unique(labels):
        rows = rng.permutation(np.flatnonzero(labels == label))
        n_train = round(SPLIT_FRACTIONS[0] * len(rows))
        n_valid = round(SPLIT_FRACTIONS[1] * len(rows))
        parts[0].append(rows[:n_train])
        parts[1].append(rows[n_train : n_train + n_valid])
        parts[2].append(rows[n_train + n_valid :])
    train, valid, test = (np.sort(np.concatenate(p)) for p in parts)
    return train, valid, test


def load_split(seed: int = SPLIT_SEED) -> DigitsSplit:
    """``sklearn.datasets.load_digits()`` (bundled with scikit-learn, no download) split by :func:`split_indices`."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = digits.target.astype(np.int64)
    train, valid, test = split_indices(y, seed)
    return DigitsSplit(
        x_train=x[train],
        y_train=y[train],
        x_valid=x[valid],
        y_valid=y[valid],
        x_test=x[test],
        y_test=y[test],
        idx_train=train,
        idx_valid=valid,
        idx_test=test,
    )


def to_hf_dataset(seed: int = SPLIT_SEED) -> Any:
    """The split as a Hugging Face ``DatasetDict`` (``train``/``validation``/``test``; ``image``, ``label``).

    Images are 8x8 grayscale PIL images (pixel value * 255 / 16, rounded) and labels a ``ClassLabel`` of
    the ten digits, the form the image-classification evaluator reads (``save_to_disk`` it and pass the
    folder as its dataset).
    """
    import datasets
    from PIL import Image

    split = load_split(seed)
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(d) for d in range(N_CLASSES)])}
    )

    def part(x: np.ndarray, y: np.ndarray) -> Any:
        pixels = np.rint(x[:, 0] * 255.0).astype(np.uint8)
        images = [Image.fromarray(img, mode="L") for img in pixels]
        return datasets.Dataset.from_dict({"image": images, "label": y.tolist()}, features=features)

    return datasets.DatasetDict(
        train=part(split.x_train, split.y_train),
        validation=part(split.x_valid, split.y_valid),
        test=part(split.x_test, split.y_test),
    )


def save_hf_dataset(path: str | Path, seed: int = SPLIT_SEED) -> Path:
    """Write :func:`to_hf_dataset` with ``save_to_disk`` to ``path`` and return it."""
    target = Path(path)
    to_hf_dataset(seed).save_to_disk(str(target))
    return target
