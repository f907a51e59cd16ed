"""The one profile-table format, used by bundles and by the web service: CSV with an ``index`` column,
one column per metric (``nan`` where a candidate was not profiled) and, when some candidates failed,
a last ``error`` column with the reason."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping

import numpy as np

from nastune.errors import BundleError

__all__ = ["read_profile_csv", "write_profile_csv"]

_METRIC_NAME = re.compile(r"^[A-Za-z0-9_.\-]+$")  # as nastune.space accepts


def write_profile_csv(profile: Mapping[str, np.ndarray], n: int, failures: Mapping[int, str] | None = None) -> bytes:
    """The table as CSV bytes.

    Args:
        profile: metric -> ``(n,)`` values, NaN where not profiled.
        n: number of candidates.
        failures: candidate index -> why it could not be profiled (adds the ``error`` column).
    """
    names = sorted(profile)
    columns = [np.asarray(profile[m], dtype=np.float64) for m in names]
    buffer = io.StringIO()
    if failures:
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(["index", *names, "error"])
        for index in range(n):
            cells = ["nan" if math.isnan(c[index]) else repr(float(c[index])) for c in columns]
            writer.writerow([index, *cells, failures.get(index, "")])
        return buffer.getvalue().encode()
    buffer.write(",".join(["index", *names]) + "\n")
    if names:
        table = np.column_stack([np.arange(n, dtype=np.float64), *columns])
        np.savetxt(buffer, table, fmt=["%d"] + ["%.17g"] * len(names), delimiter=",")
    else:
        buffer.write("".join(f"{i}\n" for i in range(n)))
    return buffer.getvalue().encode()


def read_profile_csv(data: bytes, n: int) -> tuple[dict[str, np.ndarray], dict[int, str]]:
    """What :func:`write_profile_csv` wrote (empty cells are read as NaN too).

    Returns:
        ``(profile, failures)``: metric -> ``(n,)`` float array, and index -> error.

    Raises:
        BundleError: malformed table (names the problem).
    """
    try:
        text = data.decode()
    except UnicodeDecodeError as exc:
        raise BundleError(f"profile table is not UTF-8: {exc}") from exc
    header, _, body = text.partition("\n")
    names = next(csv.reader([header])) if header else []
    if not names or names[0] != "index":
        raise BundleError("profile table must start with an 'index' column")
    has_error = names[-1] == "error"
    metrics = names[1:-1] if has_error else names[1:]
    for m in metrics:
        if not _METRIC_NAME.match(m) or m == "index":
            raise BundleError(f"profile table has a bad column name {m!r}")
    failures: dict[int, str] = {}
    if not has_error and "\"" not in body and ",," not in body and not body.startswith(","):
        if not metrics:
            return {}, {}
        try:
            table = np.loadtxt(io.StringIO(body), delimiter=",", dtype=np.float64, ndmin=2)
        except ValueError as exc:
            raise BundleError(f"profile table is malformed: {exc}") from exc
    else:
        rows = list(csv.reader(io.StringIO(body)))
        table = np.full((len(rows), len(metrics) + 1), np.nan)
        try:
            for r, row in enumerate(rows):
                table[r, 0] = int(row[0])
                for k, cell in enumerate(row[1:len(metrics) + 1], start=1):
                    table[r, k] = float(cell) if cell else np.nan
                if has_error and len(row) == len(names) and row[-1]:
                    failures[int(row[0])] = row[-1]
        except (ValueError, IndexError) as exc:
            raise BundleError(f"profile table is malformed at row {r + 2}: {exc}") from exc
        if not metrics:
            table = table[:, :1]
    if table.shape != (n, len(metrics) + 1) or not np.array_equal(table[:, 0], np.arange(n)):
        raise BundleError(
            f"profile table has shape {table.shape}, expected ({n}, {len(metrics) + 1}) with index 0..{n - 1}"
        )
    return {m: np.ascontiguousarray(table[:, k + 1]) for k, m in enumerate(metrics)}, failures
