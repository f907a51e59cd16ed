"""The three evaluators a web user can choose, validated at creation and run by the gpu queue.

* ``image_classification``: the engine's ``create_img_class_evaluator`` (torchrun inside),
  run in the sandbox since it builds networks from the space's user module;
* ``module``: an uploaded module defining ``evaluate(encoding, fidelity) -> float``, run in
  the sandbox;
* ``tabular``: a CSV mapping encoding index to a value per fidelity, looked up here (data,
  not code), with an optional artificial delay for demos.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasweb.errors import DomainError
from nasweb.filecache import FileCache
from searches.models import SearchInstance

IMAGE_FIELDS = {
    "dataset": str, "n_classes": int, "train_split": str, "eval_split": str, "dataset_config": str,
    "epochs_hi": int, "epochs_lo": int, "batch_size": int, "gpus_per_eval": int, "image_size": int,
}


class EvaluatorValidationError(DomainError):
    pass


def _int(config: dict, key: str, low: int, high: int, default: int | None = None) -> int:
    value = config.get(key, default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise EvaluatorValidationError(f"evaluator_config.{key}", f"must be an integer from {low} to {high}")
    return value


def validate_image_config(config: Any, *, has_low_fidelity: bool) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise EvaluatorValidationError("evaluator_config", "must be an object of image-classification settings")
    unknown = sorted(set(config) - set(IMAGE_FIELDS))
    if unknown:
        raise EvaluatorValidationError(f"evaluator_config.{unknown[0]}",
                                       f"unknown setting; known ones are {', '.join(sorted(IMAGE_FIELDS))}")
    dataset = config.get("dataset")
    if not isinstance(dataset, str) or not dataset.strip():
        raise EvaluatorValidationError("evaluator_config.dataset",
                                       "name a Hugging Face dataset or a server-side folder")
    clean: dict[str, Any] = {
        "dataset": dataset.strip(),
        "n_classes": _int(config, "n_classes", 2, 100_000),
        "train_split": str(config.get("train_split") or "train"),
        "eval_split": str(config.get("eval_split") or "validation"),
        "epochs_hi": _int(config, "epochs_hi", 1, 10_000),
        "batch_size": _int(config, "batch_size", 1, 4096, 64),
        "gpus_per_eval": _int(config, "gpus_per_eval", 0, 16, 1),
        "image_size": _int(config, "image_size", 8, 1024, 224),
    }
    if config.get("dataset_config"):
        clean["dataset_config"] = str(config["dataset_config"])
    if has_low_fidelity:
        clean["epochs_lo"] = _int(config, "epochs_lo", 1, 10_000)
        if clean["epochs_lo"] >= clean["epochs_hi"]:
            raise EvaluatorValidationError("evaluator_config.epochs_lo", "must be fewer than epochs_hi")
    return clean


def parse_table(data: bytes, *, n_encodings: int, needs_low: bool) -> dict[str, dict[int, float]]:
    """A tabular evaluator's CSV: header ``index,hi`` (and ``lo``); one row per encoding index."""
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise EvaluatorValidationError("evaluator_table", f"not a readable UTF-8 CSV file: {exc}") from None
    if not rows:
        raise EvaluatorValidationError("evaluator_table", "the table is empty")
    header = [cell.strip().lower() for cell in rows[0]]
    if "index" not in header or "hi" not in header:
        raise EvaluatorValidationError("evaluator_table", "the header must name the columns index and hi (and lo)")
    if needs_low and "lo" not in header:
        raise EvaluatorValidationError("evaluator_table", "a search with a low fidelity needs a lo column")
    columns: dict[str, int] = {name: header.index(name) for name in ("index", "hi", "lo") if name in header}
    table: dict[str, dict[int, float]] = {name: {} for name in columns if name != "index"}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            index = int(row[columns["index"]])
        except (ValueError, IndexError):
            raise EvaluatorValidationError("evaluator_table", f"line {line}: the index is not an integer") from None
        if not 0 <= index < n_encodings:
            raise EvaluatorValidationError("evaluator_table",
                                           f"line {line}: index {index} is outside the space (0..{n_encodings - 1})")
        for name in table:
            cell = row[columns[name]].strip() if columns[name] < len(row) else ""
            if not cell:
                continue
            try:
                value = float(cell)
            except ValueError:
                raise EvaluatorValidationError("evaluator_table", f"line {line}: {name}={cell!r} is not a number") \
                    from None
            if not math.isfinite(value):
                raise EvaluatorValidationError("evaluator_table", f"line {line}: {name} must be finite")
            table[name][index] = value
    if not table["hi"]:
        raise EvaluatorValidationError("evaluator_table", "the table has no hi values")
    return table


_tables: FileCache[dict[str, dict[int, float]]] = FileCache(size=8)


def load_table(search: SearchInstance) -> dict[str, dict[int, float]]:
    """The search's table, parsed once per worker process (keyed by file and mtime)."""
    n = search.space.n_encodings
    return _tables.get(search.evaluator_table.path,
                       lambda path: parse_table(path.read_bytes(), n_encodings=n, needs_low=False))


@dataclass(frozen=True)
class EvaluationRequest:
    """What the gpu-queue task asks an evaluator to do."""

    search: SearchInstance
    encoding: list[Any]
    encoding_index: int
    fidelity: str
    log_path: Path
    scratch: Path
    gpu: str
    on_tick: Callable[[str], bool]


def gpus_needed(search: SearchInstance) -> int:
    if search.evaluator_kind == SearchInstance.EvaluatorKind.IMAGE_CLASSIFICATION:
        return int(search.evaluator_config.get("gpus_per_eval", 1))
    return 0


def image_classification_payload(search: SearchInstance, fidelity: str, gpu: str, log_path: Path) -> dict:
    """Arguments of ``create_img_class_evaluator`` for one fidelity (hi/lo differ by epochs only)."""
    config = search.evaluator_config
    payload: dict[str, Any] = {
        "dataset": config["dataset"],
        "n_classes": config["n_classes"],
        "n_gpus": 0 if gpu == "cpu" else len(gpu.split(",")),
        "eval_split": config["eval_split"],
        "train_split": config["train_split"],
        "epochs": config["epochs_lo"] if fidelity == "lo" else config["epochs_hi"],
        "batch_size": config["batch_size"],
        "image_size": config["image_size"],
        "reparam": True,
        "seed": search.seed,
        "log_path": str(log_path),
    }
    if config.get("dataset_config"):
        payload["dataset_config"] = config["dataset_config"]
    return payload
