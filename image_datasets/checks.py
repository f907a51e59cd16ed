"""Check an unpacked image dataset (classes, split sizes, image shapes) and write it as one checked folder.

Three layouts are read: class folders (``class_name/*.png``, optionally under ``train/`` and
``validation/``), a ``datasets`` ``save_to_disk`` folder, and parquet files (one per split, or one in all).
The result is always a ``DatasetDict`` saved with ``save_to_disk``: splits ``train`` and ``validation``,
columns ``image`` (encoded image bytes) and ``label`` (a ``ClassLabel``), which the image-classification
evaluator reads as it is. A dataset with one split is split 80/20 per class with a seeded generator.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from image_datasets.archive import DatasetArchiveError

SPLIT_SEED = 0
VALIDATION_FRACTION = 0.2
EVAL_SPLIT_NAMES = ("validation", "valid", "val", "test")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
MAX_IMAGE_PIXELS = 64_000_000  # per image: past this PIL's decoder is a memory bomb
CHANNELS = {"1": 1, "L": 1, "P": 3, "RGB": 3, "RGBA": 4, "LA": 2, "CMYK": 4, "I": 1, "I;16": 1, "F": 1}


@dataclass
class CheckedDataset:
    """What the checks found: the layout, class names, images per split and the one image shape."""

    format: str
    class_names: list[str]
    split_sizes: dict[str, int]
    image_shape: list[int]  # height, width, channels
    splits: dict[str, tuple[list[bytes], list[int]]] = field(repr=False, default_factory=dict)


def _fail(reason: str) -> DatasetArchiveError:
    return DatasetArchiveError("archive", reason)


def _image_shape(data: bytes, where: str) -> tuple[int, int, int]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:  # reads the header only
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                raise _fail(f"{where} is {width}x{height} pixels, over the limit of {MAX_IMAGE_PIXELS:,}")
            image.verify()
            return height, width, CHANNELS.get(image.mode, 3)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise _fail(f"{where} is not a readable image ({exc})") from None


def _root(folder: Path) -> Path:
    """Below any single wrapping folder (``my-data/cats/1.png`` reads as ``cats/1.png``); a single folder of
    files only is kept (it is a class, and one class is refused with that reason)."""
    while True:
        entries = list(folder.iterdir())
        if len(entries) == 1 and entries[0].is_dir() and any(path.is_dir() for path in entries[0].iterdir()):
            folder = entries[0]
        else:
            return folder


def _split_name(name: str) -> str | None:
    lowered = name.lower()
    if lowered == "train" or lowered.startswith("train-") or lowered.startswith("train_"):
        return "train"
    for alias in EVAL_SPLIT_NAMES:
        if lowered == alias or lowered.startswith(f"{alias}-") or lowered.startswith(f"{alias}_"):
            return "validation"
    return None


def _class_folders(folder: Path, where: str) -> tuple[list[str], list[Path], list[str]]:
    """(class names, image files, their class names) of ``folder/<class>/<image>``."""
    stray = sorted(path.name for path in folder.iterdir() if path.is_file())
    if stray:
        raise _fail(f"{where}{stray[0]!r} is not inside a class folder; put every image in a folder named after "
                    "its class (class_name/image.png)")
    classes = sorted(path.name for path in folder.iterdir() if path.is_dir())
    files: list[Path] = []
    labels: list[str] = []
    for name in classes:
        for path in sorted((folder / name).rglob("*")):
            if path.is_dir():
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise _fail(f"{where}{name}/{path.relative_to(folder / name)} is not an image file (PNG, JPEG, BMP, "
                            "GIF, WebP or TIFF)")
            files.append(path)
            labels.append(name)
    return classes, files, labels


def _read_class_folders(root: Path) -> tuple[list[str], dict[str, tuple[list[bytes], list[int]]], dict[str, str]]:
    subfolders = {path.name: path for path in root.iterdir() if path.is_dir()}
    split_folders = {_split_name(name): path for name, path in subfolders.items() if _split_name(name)}
    if "train" in split_folders and "validation" in split_folders and len(split_folders) == len(subfolders) == 2:
        parts = {split: _class_folders(path, f"{path.name}/") for split, path in split_folders.items()}
        classes = parts["train"][0]
        unknown = sorted(set(parts["validation"][0]) - set(classes))
        if unknown:
            raise _fail(f"class {unknown[0]!r} is in the validation folder but not in train; every class of "
                        "validation must be trained on")
        named = {split: (files, labels) for split, (_, files, labels) in parts.items()}
    else:
        classes, files, labels = _class_folders(root, "")
        named = {"single": (files, labels)}
    index = {name: position for position, name in enumerate(classes)}
    splits: dict[str, tuple[list[bytes], list[int]]] = {}
    where: dict[str, str] = {}
    for split, (files, labels) in named.items():
        images = []
        for path in files:
            images.append(path.read_bytes())
            where[f"{split}:{len(images) - 1}"] = str(path.relative_to(root))
        splits[split] = (images, [index[label] for label in labels])
    return classes, splits, where


def _image_and_label_columns(features: Any) -> tuple[str, str]:
    import datasets

    images = [name for name, feature in features.items() if isinstance(feature, datasets.Image)]
    if not images:  # parquet written by pyarrow, not datasets: an image struct {bytes, path} or raw bytes
        images = [name for name, feature in features.items()
                  if (isinstance(feature, dict) and "bytes" in feature)
                  or (isinstance(feature, datasets.Value) and feature.dtype in ("binary", "large_binary"))]
    if not images:
        raise _fail(f"no image column (a datasets.Image feature); the columns are {', '.join(features)}")
    labels = [name for name, feature in features.items() if isinstance(feature, datasets.ClassLabel)]
    if not labels:
        labels = [name for name in ("label", "labels") if name in features]
    if not labels:
        raise _fail(f"no label column (a ClassLabel, or an integer column named 'label'); the columns are "
                    f"{', '.join(features)}")
    return images[0], labels[0]


def _read_table_splits(parts: dict[str, Any]) -> tuple[list[str], dict[str, tuple[list[bytes], list[int]]],
                                                      dict[str, str]]:
    """Splits of a ``datasets`` save_to_disk folder or parquet files, as encoded images and integer labels."""
    import datasets

    first = next(iter(parts.values()))
    image_column, label_column = _image_and_label_columns(first.features)
    label_feature = first.features[label_column]
    classes = list(label_feature.names) if isinstance(label_feature, datasets.ClassLabel) else None
    splits: dict[str, tuple[list[bytes], list[int]]] = {}
    where: dict[str, str] = {}
    raw_labels: dict[str, list[Any]] = {}
    for split, part in parts.items():
        if image_column not in part.features or label_column not in part.features:
            raise _fail(f"split {split!r} lacks the column {image_column!r} or {label_column!r}")
        if isinstance(part.features[image_column], datasets.Image):
            part = part.cast_column(image_column, datasets.Image(decode=False))
        images = []
        for position, cell in enumerate(part[image_column]):
            data = cell.get("bytes") if isinstance(cell, dict) else cell if isinstance(cell, bytes) else None
            if not data:
                raise _fail(f"split {split!r} row {position}: the image is not stored in the dataset (a path to a "
                            "file outside it cannot be read); save the dataset with its images embedded")
            images.append(data)
            where[f"{split}:{position}"] = f"split {split!r} row {position}"
        raw_labels[split] = list(part[label_column])
        splits[split] = (images, [])
    if classes is None:
        values = sorted({value for labels in raw_labels.values() for value in labels}, key=str)
        if any(isinstance(value, bool) or not isinstance(value, int) for value in values):
            raise _fail(f"the label column {label_column!r} must hold integers (or be a ClassLabel)")
        classes = [str(value) for value in values]
        index = {value: position for position, value in enumerate(values)}
        splits = {split: (images, [index[value] for value in raw_labels[split]])
                  for split, (images, _) in splits.items()}
    else:
        for split, (images, _) in splits.items():
            labels = raw_labels[split]
            if any(not isinstance(value, int) or not 0 <= value < len(classes) for value in labels):
                raise _fail(f"split {split!r} has a label outside its {len(classes)} classes")
            splits[split] = (images, labels)
    return classes, splits, where


def _read_saved_dataset(root: Path) -> tuple[list[str], dict[str, tuple[list[bytes], list[int]]], dict[str, str]]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(root))
    except Exception as exc:  # the library raises many types for a damaged folder; all mean the same to the user
        raise _fail(f"the datasets save_to_disk folder cannot be read: {type(exc).__name__}: {exc}") from None
    if isinstance(loaded, datasets.Dataset):
        return _read_table_splits({"single": loaded})
    parts = {}
    for name, part in loaded.items():
        split = _split_name(name)
        if split and split not in parts:
            parts[split] = part
    if "train" not in parts:
        raise _fail(f"the dataset has no 'train' split; its splits are {', '.join(loaded)}")
    return _read_table_splits(parts if "validation" in parts else {"single": parts["train"]})


def _read_parquet(root: Path) -> tuple[list[str], dict[str, tuple[list[bytes], list[int]]], dict[str, str]]:
    import datasets

    files = sorted(root.rglob("*.parquet"))
    grouped: dict[str, list[str]] = {}
    for path in files:
        split = _split_name(path.stem) or _split_name(path.parent.name) or "single"
        grouped.setdefault(split, []).append(str(path))
    if "single" in grouped and len(grouped) > 1:
        raise _fail(f"parquet file {Path(grouped['single'][0]).name!r} names no split; name files train*.parquet "
                    "and validation*.parquet, or upload one file to be split")
    if len(grouped) > 1 and set(grouped) != {"train", "validation"}:
        raise _fail("parquet files need both a train and a validation file (or one file to be split)")
    try:
        parts = {split: datasets.Dataset.from_parquet(paths) for split, paths in grouped.items()}
    except Exception as exc:  # a damaged file raises pyarrow's own errors
        raise _fail(f"the parquet files cannot be read: {type(exc).__name__}: {exc}") from None
    return _read_table_splits(parts)


def _split_single(labels: list[int], n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class 80/20 train/validation row indices (every class in both parts)."""
    rng = np.random.default_rng(SPLIT_SEED)
    labels_array = np.asarray(labels)
    train, valid = [], []
    for label in range(n_classes):
        rows = rng.permutation(np.flatnonzero(labels_array == label))
        n_valid = max(1, round(len(rows) * VALIDATION_FRACTION))
        valid.append(rows[:n_valid])
        train.append(rows[n_valid:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(valid))


def check_dataset(unpacked: Path) -> CheckedDataset:
    """Read the unpacked upload in any supported layout and check it; raises ``DatasetArchiveError`` naming
    the first problem (one class, a class without images, mixed image shapes, a file that is no image)."""
    root = _root(unpacked)
    if (root / "dataset_dict.json").is_file() or (root / "state.json").is_file():
        layout = "saved_dataset"
        classes, splits, where = _read_saved_dataset(root)
    elif any(root.rglob("*.parquet")):
        layout = "parquet"
        classes, splits, where = _read_parquet(root)
    else:
        layout = "class_folders"
        classes, splits, where = _read_class_folders(root)
    if len(classes) < 2:
        shown = f" ({classes[0]!r})" if classes else ""
        raise _fail(f"the dataset has {len(classes)} class{shown}; image classification needs at least 2 classes")
    if "single" in splits:
        images, labels = splits.pop("single")
        counts = Counter(labels)
        for label, name in enumerate(classes):
            if counts.get(label, 0) < 2:
                raise _fail(f"class {name!r} has {counts.get(label, 0)} image(s); each class needs at least 2 "
                            "(one to train on, one to validate)")
        train_rows, valid_rows = _split_single(labels, len(classes))
        where = {f"{split}:{new}": where[f"single:{old}"]
                 for split, rows in (("train", train_rows), ("validation", valid_rows))
                 for new, old in enumerate(rows.tolist())}
        splits = {split: ([images[row] for row in rows], [labels[row] for row in rows])
                  for split, rows in (("train", train_rows), ("validation", valid_rows))}
    for split in ("train", "validation"):
        if not splits[split][0]:
            raise _fail(f"the {split} split has no images")
    missing = sorted(set(range(len(classes))) - set(splits["train"][1]))
    if missing:
        raise _fail(f"class {classes[missing[0]]!r} has no training image")
    shapes: Counter[tuple[int, int, int]] = Counter()
    example: dict[tuple[int, int, int], str] = {}
    for split, (images, _) in splits.items():
        for position, data in enumerate(images):
            shape = _image_shape(data, where[f"{split}:{position}"])
            shapes[shape] += 1
            example.setdefault(shape, where[f"{split}:{position}"])
    if len(shapes) > 1:
        described = ", ".join(f"{h}x{w}x{c} ({n} images, e.g. {example[(h, w, c)]})"
                              for (h, w, c), n in shapes.most_common(3))
        raise _fail(f"the images have {len(shapes)} different shapes (height x width x channels): {described}; "
                    "every image must have the same size and channels")
    (shape,) = shapes
    return CheckedDataset(format=layout, class_names=classes,
                          split_sizes={split: len(images) for split, (images, _) in splits.items()},
                          image_shape=list(shape), splits=splits)


def save_checked(dataset: CheckedDataset, target: Path) -> None:
    """Write the checked dataset to ``target`` with ``save_to_disk`` (the evaluator's input)."""
    import datasets

    features = datasets.Features(image=datasets.Image(), label=datasets.ClassLabel(names=dataset.class_names))
    parts = {
        split: datasets.Dataset.from_dict(
            {"image": [{"bytes": data, "path": None} for data in images], "label": labels}, features=features)
        for split, (images, labels) in dataset.splits.items()
    }
    datasets.DatasetDict(parts).save_to_disk(str(target))
