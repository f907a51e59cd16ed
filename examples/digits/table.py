"""Loader of the digits benchmark table (``benchmarks/digits/digits_table.csv.xz``), aligned to :func:`build_encodings`.

The table has one row per training run: ``index`` (position in :func:`build_encodings`), the encoding's
fields, ``fidelity`` (``lo``/``hi``), ``epochs``, ``seed``, ``valid_acc`` and ``test_acc`` (percent),
``params``, ``flops`` (forward, one 1x8x8 image) and ``wall_s`` (training + evaluation seconds, one CPU
thread). :func:`load_table` turns it into arrays whose row ``i`` is ``build_encodings()[i]``.
"""

from __future__ import annotations

import csv
import gzip
import io
import lzma
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .net import CHOICES, ENCODING_FIELDS
from .space import Encoding, build_encodings

#: training epochs of each fidelity; the low fidelity is its own run with its own schedule
FIDELITY_EPOCHS: dict[str, int] = {"lo": 2, "hi": 8}
SEEDS: tuple[int, ...] = (0, 1, 2)
COLUMNS: tuple[str, ...] = (
    "index",
    *ENCODING_FIELDS,
    "fidelity",
    "epochs",
    "seed",
    "valid_acc",
    "test_acc",
    "params",
    "flops",
    "wall_s",
)


def default_table_path() -> Path:
    """``<repo>/benchmarks/digits/digits_table.csv.xz``, the committed table."""
    return Path(__file__).resolve().parents[2] / "benchmarks" / "digits" / "digits_table.csv.xz"


@dataclass(frozen=True)
class DigitsTable:
    """The digits benchmark, row ``i`` = ``build_encodings()[i]``; dicts are keyed by fidelity (``"lo"``, ``"hi"``).

    Attributes:
        encodings: the ``n`` encodings, as :func:`build_encodings` gives them.
        epochs: fidelity -> training epochs.
        seeds: the training seeds, in the order of the ``*_seeds`` columns.
        valid_acc, test_acc: fidelity -> ``(n,)`` mean accuracy in percent over the seeds.
        valid_acc_seeds, test_acc_seeds: fidelity -> ``(n, n_seeds)`` per-seed accuracy in percent.
        wall_s: fidelity -> ``(n,)`` mean wall seconds of one run (one CPU thread).
        wall_s_seeds: fidelity -> ``(n, n_seeds)`` wall seconds per seed.
        params: ``(n,)`` trainable parameters. flops: ``(n,)`` forward FLOPs of one image.
    """

    encodings: list[Encoding]
    epochs: dict[str, int]
    seeds: tuple[int, ...]
    valid_acc: dict[str, np.ndarray]
    test_acc: dict[str, np.ndarray]
    valid_acc_seeds: dict[str, np.ndarray]
    test_acc_seeds: dict[str, np.ndarray]
    wall_s: dict[str, np.ndarray]
    wall_s_seeds: dict[str, np.ndarray]
    params: np.ndarray
    flops: np.ndarray

    def __len__(self) -> int:
        return len(self.encodings)

    def best_index(self, fidelity: str = "hi", split: str = "valid") -> int:
        """Row of the highest mean ``split`` (``"valid"`` or ``"test"``) accuracy at ``fidelity`` (first on ties)."""
        if split not in ("valid", "test"):
            raise ValueError(f"split must be 'valid' or 'test', got {split!r}")
        values = (self.valid_acc if split == "valid" else self.test_acc)[fidelity]
        return int(np.argmax(values))


def _read_text(path: Path) -> str:
    if path.suffix == ".xz":
        with lzma.open(path, "rt", encoding="utf-8", newline="") as fh:
            return fh.read()
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            return fh.read()
    return path.read_text(encoding="utf-8")


def _parse_field(text: str, choices: tuple[object, ...]) -> object:
    return text if isinstance(choices[0], str) else int(text)


def load_table(path: str | Path | None = None) -> DigitsTable:
    """Read the digits table (``.csv``, ``.csv.xz`` or ``.csv.gz``; default :func:`default_table_path`).

    Every (encoding, fidelity, seed) of the file's seeds and of :data:`FIDELITY_EPOCHS` must appear exactly
    once, with the encoding fields of ``build_encodings()[index]`` and the fidelity's epochs; anything else
    raises ``ValueError`` naming the first offending row.
    """
    table_path = Path(path) if path is not None else default_table_path()
    if not table_path.exists():
        raise FileNotFoundError(
            f"digits table not found at {table_path}; build it with `python -m benchmarks.digits.build_table`"
        )
    reader = csv.reader(io.StringIO(_read_text(table_path), newline=""))
    header = next(reader, None)
    if header is None or tuple(header) != COLUMNS:
        raise ValueError(f"{table_path} header is {header}, expected {list(COLUMNS)}")
    rows = list(reader)
    encodings = build_encodings()
    n = len(encodings)
    n_fields = len(ENCODING_FIELDS)
    seeds = tuple(sorted({int(row[n_fields + 3]) for row in rows if len(row) == len(COLUMNS)}))
    if not seeds:
        raise ValueError(f"{table_path} has no runs")
    seed_pos = {seed: k for k, seed in enumerate(seeds)}
    shape = (n, len(seeds))
    valid = {f: np.full(shape, np.nan) for f in FIDELITY_EPOCHS}
    test = {f: np.full(shape, np.nan) for f in FIDELITY_EPOCHS}
    wall = {f: np.full(shape, np.nan) for f in FIDELITY_EPOCHS}
    params = np.full(n, -1, dtype=np.int64)
    flops = np.full(n, -1.0)
    for line, row in enumerate(rows, start=2):
        if len(row) != len(COLUMNS):
            raise ValueError(f"{table_path} line {line} has {len(row)} fields, expected {len(COLUMNS)}")
        index = int(row[0])
        if not 0 <= index < n:
            raise ValueError(f"{table_path} line {line}: index {index} is outside 0..{n - 1}")
        encoding = tuple(
            _parse_field(text, choices) for text, choices in zip(row[1 : 1 + n_fields], CHOICES, strict=True)
        )
        if encoding != encodings[index]:
            raise ValueError(
                f"{table_path} line {line}: encoding {encoding} is not build_encodings()[{index}] = {encodings[index]}"
            )
        fidelity, epochs, seed = row[1 + n_fields], int(row[2 + n_fields]), int(row[3 + n_fields])
        if FIDELITY_EPOCHS.get(fidelity) != epochs:
            raise ValueError(
                f"{table_path} line {line}: fidelity {fidelity!r} with {epochs} epochs; "
                f"expected one of {FIDELITY_EPOCHS}"
            )
        k = seed_pos[seed]
        if not np.isnan(valid[fidelity][index, k]):
            raise ValueError(f"{table_path} line {line}: run (index {index}, {fidelity}, seed {seed}) appears twice")
        valid[fidelity][index, k] = float(row[4 + n_fields])
        test[fidelity][index, k] = float(row[5 + n_fields])
        wall[fidelity][index, k] = float(row[8 + n_fields])
        run_params, run_flops = int(row[6 + n_fields]), float(row[7 + n_fields])
        if params[index] >= 0 and (params[index], flops[index]) != (run_params, run_flops):
            raise ValueError(f"{table_path} line {line}: params/flops differ from another run of index {index}")
        params[index], flops[index] = run_params, run_flops
    for fidelity, values in valid.items():
        missing = np.argwhere(np.isnan(values))
        if len(missing):
            i, k = missing[0]
            raise ValueError(
                f"{table_path} lacks {len(missing)} runs, the first (index {i}, {fidelity}, seed {seeds[k]}); "
                f"every encoding needs every fidelity and seed {list(seeds)}"
            )
    return DigitsTable(
        encodings=encodings,
        epochs=dict(FIDELITY_EPOCHS),
        seeds=seeds,
        valid_acc={f: v.mean(axis=1) for f, v in valid.items()},
        test_acc={f: v.mean(axis=1) for f, v in test.items()},
        valid_acc_seeds=valid,
        test_acc_seeds=test,
        wall_s={f: v.mean(axis=1) for f, v in wall.items()},
        wall_s_seeds=wall,
        params=params,
        flops=flops,
    )
