"""Loader of the NAS-Bench-201 tabular results (``nb201_merged.csv[.xz]``), aligned to :func:`build_encodings`.

The CSV ships xz-compressed in ``examples/nb201/data/`` (provenance and licences in ``PROVENANCE.md``
there). It has one row per architecture with per-dataset mean and per-seed validation accuracy, test
accuracy, parameters, latency and training time. Rows are reordered so that row ``i`` describes
``build_encodings()[i]``.

Known defect of the benchmark: for 204 architectures the ``*_params_mb`` (and possibly the other cost
columns) of the 200-epoch records are wrong — NATS-Bench issue #36, "get_cost_info(hp='200') returns weird
value for some models": the value is an average over seeds of records that belong to other cells. Those
values are not the parameter count of *any* NB201 cell; :attr:`NB201Table.params_corrupted` flags them.
"""

from __future__ import annotations

import csv
import io
import lzma
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import numpy as np

from .space import N_EDGES, N_OPS, count_params_matrix

DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16")
N_CLASSES: dict[str, int] = {"cifar10": 10, "cifar100": 100, "imagenet16": 120}
INPUT_SIZE: dict[str, int] = {"cifar10": 32, "cifar100": 32, "imagenet16": 16}
N_ARCHS = N_OPS**N_EDGES


#: the table shipped with the project (xz-compressed, 0.96 MB)
BUNDLED_CSV = Path(__file__).resolve().parent / "data" / "nb201_merged.csv.xz"


def default_csv_path() -> Path:
    """``$NASWEB_NB201_CSV`` or the table shipped in ``examples/nb201/data/nb201_merged.csv.xz``."""
    env = os.environ.get("NASWEB_NB201_CSV")
    if env:
        return Path(env)
    return BUNDLED_CSV


def _open_text(path: Path) -> TextIO:
    # xz by file name, so that a plain CSV elsewhere (NASWEB_NB201_CSV) still reads as before
    if path.suffix == ".xz":
        return io.TextIOWrapper(lzma.open(path, "rb"), encoding="utf-8", newline="")
    return path.open(newline="", encoding="utf-8")


@dataclass(frozen=True)
class NB201Table:
    """NAS-Bench-201 results, row ``i`` = ``build_encodings()[i]``.

    Attributes:
        encodings: ``(15625, 6)`` int64 operation codes.
        arch_index: ``(15625,)`` the benchmark's architecture index.
        arch_str, iso_str: the benchmark's architecture and isomorphism-class strings.
        valid_acc, test_acc: dataset -> ``(15625,)`` mean accuracy in percent over seeds.
        valid_acc_seeds: dataset -> ``(15625, 3)`` per-seed validation accuracy, NaN-padded (2 or 3 seeds).
        params: dataset -> ``(15625,)`` parameter count from the benchmark (``params_mb * 1e6``).
        latency_s, train_time_s: dataset -> ``(15625,)`` as given by the benchmark.
        params_corrupted: ``(15625,)`` bool, True where some dataset's benchmark parameter count is not the
            count of any NB201 cell (NATS-Bench issue #36).
    """

    encodings: np.ndarray
    arch_index: np.ndarray
    arch_str: list[str]
    iso_str: list[str]
    valid_acc: dict[str, np.ndarray]
    test_acc: dict[str, np.ndarray]
    valid_acc_seeds: dict[str, np.ndarray]
    params: dict[str, np.ndarray]
    latency_s: dict[str, np.ndarray]
    train_time_s: dict[str, np.ndarray]
    params_corrupted: np.ndarray

    def __len__(self) -> int:
        return len(self.arch_index)

    def best_index(self, dataset: str = "cifar10", split: str = "valid") -> int:
        """Row of the highest mean ``split`` (``"valid"`` or ``"test"``) accuracy on ``dataset``."""
        values = self.valid_acc[dataset] if split == "valid" else self.test_acc[dataset]
        return int(np.argmax(values))


def _benchmark_params_corrupted(encodings: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
    """True where a dataset's parameter count is not (to the CSV's 6 significant digits) any cell's count."""
    corrupted = np.zeros(len(encodings), dtype=bool)
    for dataset, values in params.items():
        achievable = np.unique(count_params_matrix(encodings, N_CLASSES[dataset]).astype(np.float64))
        pos = np.clip(np.searchsorted(achievable, values), 1, len(achievable) - 1)
        nearest = np.minimum(np.abs(achievable[pos] - values), np.abs(achievable[pos - 1] - values))
        corrupted |= nearest > 1e-5 * values
    return corrupted


def load_table(path: str | Path | None = None) -> NB201Table:
    """Read ``nb201_merged.csv`` or ``.csv.xz`` (default :func:`default_csv_path`) into an :class:`NB201Table`."""
    csv_path = Path(path) if path is not None else default_csv_path()
    if not csv_path.exists():
        raise FileNotFoundError(
            f"NAS-Bench-201 table not found at {csv_path}; set NASWEB_NB201_CSV to the path of "
            f"nb201_merged.csv or nb201_merged.csv.xz, or unset it to use the table shipped in {BUNDLED_CSV.parent}"
        )
    with _open_text(csv_path) as fh:
        reader = csv.reader(fh)
        header = next(reader)
        rows = list(reader)
    if len(rows) != N_ARCHS:
        raise ValueError(f"{csv_path} has {len(rows)} rows, expected {N_ARCHS}")
    col = {name: k for k, name in enumerate(header)}
    codes = np.array([[int(ch) for ch in row[col["ops_code"]]] for row in rows], dtype=np.int64)
    order_key = codes @ (N_OPS ** np.arange(N_EDGES - 1, -1, -1))
    order = np.argsort(order_key)
    if not np.array_equal(order_key[order], np.arange(N_ARCHS)):
        raise ValueError(f"{csv_path} does not hold each of the {N_ARCHS} ops codes exactly once")
    rows = [rows[k] for k in order.tolist()]

    def column(name: str) -> np.ndarray:
        k = col[name]
        return np.array([float(row[k]) for row in rows], dtype=np.float64)

    def seeds(name: str) -> np.ndarray:
        k = col[name]
        out = np.full((N_ARCHS, 3), np.nan)
        for i, row in enumerate(rows):
            values = [float(v) for v in row[k].split(";") if v]
            out[i, : len(values)] = values[:3]
        return out

    encodings = codes[order]
    params = {ds: np.round(column(f"{ds}_params_mb") * 1e6) for ds in DATASETS}
    return NB201Table(
        encodings=encodings,
        arch_index=np.array([int(row[col["arch_index"]]) for row in rows], dtype=np.int64),
        arch_str=[row[col["arch_str"]] for row in rows],
        iso_str=[row[col["iso_str"]] for row in rows],
        valid_acc={ds: column(f"{ds}_valid_acc") for ds in DATASETS},
        test_acc={ds: column(f"{ds}_test_acc") for ds in DATASETS},
        valid_acc_seeds={ds: seeds(f"{ds}_valid_acc_seeds") for ds in DATASETS},
        params=params,
        latency_s={ds: column(f"{ds}_latency_s") for ds in DATASETS},
        train_time_s={ds: column(f"{ds}_train_time_s") for ds in DATASETS},
        params_corrupted=_benchmark_params_corrupted(encodings, params),
    )
