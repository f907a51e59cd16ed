"""A lookup evaluator: objective values read from a table indexed by encoding index, per fidelity.

Used by benchmarks (NAS-Bench-201) and by the web demo, where a CSV ``index,hi,lo`` stands in for
training. An optional artificial delay makes a lookup look like a (short) training run.
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nastune.errors import NastuneError

__all__ = ["TabularEvaluator", "load_value_table"]


class TabularEvaluator:
    """``evaluator(encoding) -> table[index_of(encoding)]`` at one fidelity.

    Args:
        values: ``(n,)`` objective per encoding index (NaN = no value: the evaluation fails).
        index_of: maps an encoding to its index (e.g. ``space.index_of``).
        delay_s: seconds to sleep per call (demo realism); 0 for none.
        noise: optional ``noise(index, rng) -> float`` added to the value (e.g. a simulated low fidelity).
        seed: seed of the noise generator (``default_rng([seed, index])``: the same noise for an index).
        name: shown in error messages.
    """

    def __init__(
        self,
        values: Sequence[float] | np.ndarray,
        index_of: Callable[[Any], int],
        *,
        delay_s: float = 0.0,
        noise: Callable[[int, np.random.Generator], float] | None = None,
        seed: int = 0,
        name: str = "table",
    ) -> None:
        self.values = np.asarray(values, dtype=np.float64)
        if self.values.ndim != 1:
            raise NastuneError(f"a value table must be (n,), got shape {self.values.shape}")
        if delay_s < 0:
            raise NastuneError("delay_s must be >= 0")
        self.index_of = index_of
        self.delay_s = float(delay_s)
        self.noise = noise
        self.seed = int(seed)
        self.name = name
        self.calls = 0

    def __call__(self, encoding: tuple) -> float:
        index = int(self.index_of(encoding))
        if not 0 <= index < len(self.values):
            raise NastuneError(
                f"{self.name}: encoding {encoding!r} has index {index}, outside 0..{len(self.values) - 1}"
            )
        self.calls += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        value = float(self.values[index])
        if not math.isfinite(value):
            raise NastuneError(f"{self.name} has no value for encoding {encoding!r} (index {index})")
        if self.noise is not None:
            value += float(self.noise(index, np.random.default_rng([self.seed, index])))
        return value

    @classmethod
    def from_mapping(
        cls, mapping: Mapping[int, float], n: int, index_of: Callable[[Any], int], **options: Any
    ) -> TabularEvaluator:
        """From ``{index: value}`` (missing indices fail when evaluated)."""
        values = np.full(int(n), np.nan)
        for k, v in mapping.items():
            values[int(k)] = float(v)
        return cls(values, index_of, **options)


def load_value_table(path: str | Path, n: int | None = None) -> dict[str, np.ndarray]:
    """Read a CSV with a column ``index`` and one column per fidelity (``hi``, ``lo``, ...).

    Args:
        path: the CSV file. Empty cells mean "no value".
        n: number of encodings (default: max index + 1).

    Returns:
        fidelity -> ``(n,)`` float64 with NaN where the table has no value.

    Raises:
        NastuneError: no ``index`` column, a non-integer index, or a non-numeric value.
    """
    with Path(path).open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if reader.fieldnames is None or "index" not in reader.fieldnames:
            raise NastuneError(f"{path}: the first row must name the columns, one of them 'index'")
        fidelities = [f for f in reader.fieldnames if f != "index"]
        rows: list[tuple[int, dict[str, float]]] = []
        for line, row in enumerate(reader, start=2):
            try:
                index = int(row["index"])
                values = {f: float(row[f]) if row[f] not in (None, "") else math.nan for f in fidelities}
            except ValueError as exc:
                raise NastuneError(f"{path}, line {line}: {exc}; indices are integers, values numbers") from exc
            if index < 0:
                raise NastuneError(f"{path}, line {line}: negative index {index}")
            rows.append((index, values))
    size = int(n) if n is not None else (max((i for i, _ in rows), default=-1) + 1)
    out = {f: np.full(size, np.nan) for f in fidelities}
    for index, values in rows:
        if index >= size:
            raise NastuneError(f"{path}: index {index} is outside the space of {size} encodings")
        for f, v in values.items():
            out[f][index] = v
    return out
