"""Latencies a user measured on their own target device for a subset of encodings: parse, check, add to a space.

The values become a sparse profile column named after the device (``latency_<device>``, as
:func:`nastune.profiling.device_latency_metric` names measured ones); the next ``pretrain`` fits a head to them
together with the other metrics, so the surrogate predicts the rest, and its held-out Kendall tau on the
uploaded values comes from :func:`held_out_tau` (the space's own pretraining hold-out leaves sparse targets
alone). Constraints and objectives can then name it.

CSV format: a header with ``index`` or ``encoding``, and ``latency`` (or ``value``); ``encoding`` cells are a
JSON list (``"[0, 1, 3]"``) or values separated by spaces or ``|``. Every problem names the row (the header is
row 1), so a user can fix the file.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping
from typing import Any

from nastune.errors import EncodingError, ProfilingError

__all__ = ["DeviceLatencyError", "add_device_latencies", "device_metric_name", "held_out_tau", "parse_latency_csv"]


class DeviceLatencyError(ProfilingError):
    """A row of uploaded latencies is unusable; ``row`` is its 1-based line in the file (header = 1)."""

    def __init__(self, row: int | None, reason: str) -> None:
        self.row = row
        self.reason = reason
        super().__init__(reason if row is None else f"row {row}: {reason}")


def device_metric_name(device: str) -> str:
    """``"Pixel 7"`` -> ``latency_pixel_7``; a name already starting with ``latency_`` is kept.

    Raises:
        DeviceLatencyError: an empty name.
    """
    text = str(device).strip()
    words = text[len("latency_"):] if text.startswith("latency_") else text
    slug = "_".join("".join(c if c.isalnum() else " " for c in words.lower()).split())
    if not slug:
        raise DeviceLatencyError(None, f"name the device the latencies were measured on (got {device!r})")
    return f"latency_{slug}"


def _parse_encoding(cell: str) -> tuple:
    text = cell.strip()
    if text.startswith("["):
        return tuple(json.loads(text))
    parts = text.replace("|", " ").split()
    out: list[Any] = []
    for p in parts:
        try:
            out.append(int(p))
        except ValueError:
            try:
                out.append(float(p))
            except ValueError:
                out.append(p)
    return tuple(out)


def parse_latency_csv(text: str, space: Any) -> dict[int, float]:
    """``{encoding index: seconds}`` from a CSV (see the module docstring).

    Args:
        text: the file's content.
        space: the search space (``len``, ``index_of``).

    Raises:
        DeviceLatencyError: no usable header, an index outside the space, an encoding not in it, a value that is
            not a finite positive number, or the same encoding twice; the message names the row.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise DeviceLatencyError(None, "the file is empty; expected a header such as 'index,latency'") from None
    key = "index" if "index" in header else "encoding" if "encoding" in header else None
    value_col = next((c for c in ("latency", "value", "latency_s") if c in header), None)
    if key is None or value_col is None:
        raise DeviceLatencyError(1, f"the header {header} needs 'index' or 'encoding', and 'latency' (or 'value')")
    k, v = header.index(key), header.index(value_col)
    out: dict[int, float] = {}
    n = len(space)
    for row_number, row in enumerate(reader, start=2):
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) <= max(k, v):
            raise DeviceLatencyError(row_number, f"has {len(row)} cells, expected {len(header)}")
        if key == "index":
            try:
                index = int(row[k].strip())
            except ValueError:
                raise DeviceLatencyError(row_number, f"index {row[k]!r} is not an integer") from None
            if not 0 <= index < n:
                raise DeviceLatencyError(row_number, f"index {index} is outside the space (0..{n - 1})")
        else:
            try:
                index = int(space.index_of(_parse_encoding(row[k])))
            except (EncodingError, ValueError, json.JSONDecodeError) as exc:
                raise DeviceLatencyError(row_number, f"encoding {row[k]!r} is not in the space ({exc})") from None
        try:
            value = float(row[v])
        except ValueError:
            raise DeviceLatencyError(row_number, f"latency {row[v]!r} is not a number") from None
        if not (math.isfinite(value) and value > 0):
            raise DeviceLatencyError(row_number, f"latency {row[v]!r} must be a finite positive number of seconds")
        if index in out:
            raise DeviceLatencyError(row_number, f"encoding {index} was given twice")
        out[index] = value
    if not out:
        raise DeviceLatencyError(None, "the file has a header but no latencies")
    return out


def add_device_latencies(space: Any, device: str, latencies: Mapping[Any, float]) -> str:
    """Add latencies measured on ``device`` for some encodings to ``space``'s profile as ``latency_<device>``;
    call ``space.pretrain(...)`` afterwards so the surrogate learns the rest. Returns the metric name.

    Args:
        space: a :class:`~nastune.space.SearchSpace`.
        device: the device's name (``"pixel-7"``) or the metric name (``latency_pixel_7``).
        latencies: ``{encoding index or encoding: seconds}``.

    Raises:
        ProfilingError: an encoding not in the space or a non-finite value.
    """
    name = device_metric_name(device)
    if len(latencies) < 10:
        raise DeviceLatencyError(None, f"{len(latencies)} latencies are too few to learn from; upload at least 10")
    space.add_results(name, latencies, maximize=None)  # a metric, not a search's results: nothing to start from
    return name


def held_out_tau(space: Any, name: str, *, held_out_share: float = 0.2, seed: int = 0,
                 **surrogate_options: Any) -> dict[str, Any]:
    """How well the surrogate predicts uploaded latencies it has not seen: ``held_out_share`` of the known values
    of ``name`` are hidden, an ensemble is pretrained on every other pretraining target of the space (in full)
    and the rest of ``name``, and ranks the hidden ones (:func:`nastune.analysis.held_out_kendall_tau`). The
    space is not changed.

    Returns:
        ``{"tau", "n", "predicted", "measured"}``, or ``{}`` with fewer than 30 known values.
    """
    from nastune.analysis import held_out_kendall_tau
    from nastune.surrogate import DeepEnsemble

    targets = dict(space.pretraining_targets())
    if name not in targets:
        raise DeviceLatencyError(None, f"the space has no metric {name!r}; add the latencies first")
    X = space.features

    def pretrain_and_predict(training: dict[str, Any], held_out: Any) -> dict[str, Any]:
        options = {"n_members": 5, **surrogate_options}
        n_members = int(options.pop("n_members"))
        ensemble = DeepEnsemble(X.shape[1], list(targets), n_members=n_members, seed=seed, **options)
        ensemble.pretrain(X, {**targets, name: training[name]}, progress=False)
        return {name: ensemble.predict_metrics(X[held_out])[name]}

    return held_out_kendall_tau({name: targets[name]}, pretrain_and_predict, held_out_share=held_out_share,
                                seed=seed).get(name, {})
