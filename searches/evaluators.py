"""The data and rules of the built-in evaluators: tabular CSVs, image-classification arguments, what a
worker hands an evaluator. The kinds themselves are registered in :mod:`searches.evaluator_kinds`.
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
from usercode import SandboxLimits


class EvaluatorValidationError(DomainError):
    """Bad evaluator input (settings, table, kind); ``field`` names the input at fault."""


def parse_table(data: bytes, *, n_encodings: int, needs_low: bool,
                extra: tuple[str, ...] = ()) -> dict[str, dict[int, float]]:
    """A tabular evaluator's CSV: header ``index,hi`` (and ``lo``); one row per encoding index. Columns named in
    ``extra`` (a search's other objectives and constrained values, matched case-insensitively) are read too,
    under those names."""
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
    columns.update({name: header.index(name.lower()) for name in extra
                    if name.lower() in header and name not in columns})
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
    extra = table_value_names(search.objectives, search.constraints)
    return _tables.get(search.evaluator_table.path,
                       lambda path: parse_table(path.read_bytes(), n_encodings=n, needs_low=False, extra=extra))


def table_value_names(objectives: Any, constraints: Any) -> tuple[str, ...]:
    """The names a tabular search may read from extra columns: its objectives after the primary one (which is
    the ``hi`` column) and its constrained values."""
    names = [str(n) for n, _ in (objectives or [])[1:]] + [str(c["name"]) for c in constraints or []]
    return tuple(dict.fromkeys(names))


@dataclass(frozen=True)
class EvaluationRequest:
    """What the gpu-queue task asks an evaluator to do."""

    search: SearchInstance
    encoding: list[Any]
    encoding_index: int
    fidelity: str
    log_path: Path
    scratch: Path  # the child process's own folder, removed afterwards
    runs_folder: Path  # the search's folder of logs and training runs
    gpu: str
    limits: SandboxLimits
    on_tick: Callable[[str], bool]  # heartbeat with the log tail; False once the search is cancelled
    tick_s: float
    log_tail_chars: int


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
    for name in ("min_crop_scale", "crop_pct"):  # only searches that changed the trainer's augmentation have them
        if name in config:
            payload[name] = config[name]
    return payload
