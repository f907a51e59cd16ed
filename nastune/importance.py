"""Position importance: how much of the spread of evaluated values each encoding position explains alone.

A first-order variance decomposition over the evaluated points (no model): for position ``p`` the
importance is the correlation ratio ``eta^2 = Var_groups(mean value per level of p) / Var(value)``, the
share of the variance explained by the position's main effect. A numeric position with many levels is
cut into ``max_levels`` equally filled bins first so that a level is not one point. Plain data out;
the dashboard draws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nastune.errors import NastuneError

__all__ = ["position_importance"]


def _levels(column: Sequence[Any], max_levels: int) -> np.ndarray:
    """Group labels ``(n_points,)`` of one position: its distinct values, numbers binned by quantile."""
    numeric = all(isinstance(value, int | float) and not isinstance(value, bool) for value in column)
    if numeric:
        values = np.asarray(column, dtype=float)
        distinct = np.unique(values)
        if len(distinct) <= max_levels:
            return np.searchsorted(distinct, values)
        edges = np.unique(np.quantile(values, np.linspace(0, 1, max_levels + 1)[1:-1]))
        return np.searchsorted(edges, values, side="right")
    labels = [repr(value) for value in column]  # "3" and 3 are different levels
    _, groups = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
    return groups


def position_importance(encodings: Sequence[Sequence[Any]], values: Sequence[float], *,
                        max_levels: int = 8) -> list[dict[str, Any]]:
    """Per position, the share of the variance of ``values`` explained by that position alone.

    ``encodings``: ``(n_points, n_positions)`` evaluated encodings; ``values``: ``(n_points,)`` their
    values (one point per encoding evaluation). Returns one ``{"position", "importance", "levels"}`` per
    position, ``importance`` in [0, 1] (0 when the values do not vary), ``levels`` the number of groups
    used. The shares need not sum to 1: interactions and noise take the rest, and correlated positions
    can share explained variance.
    """
    if max_levels < 2:
        raise NastuneError(f"max_levels is {max_levels}; it must be at least 2 to split a position")
    y = np.asarray(values, dtype=float)
    if y.ndim != 1 or len(y) != len(encodings):
        raise NastuneError(f"{len(encodings)} encodings but {y.size} values; give one value per encoding")
    if not np.all(np.isfinite(y)):
        raise NastuneError("values must be finite numbers; leave failed evaluations out")
    if len(y) == 0:
        return []
    length = len(encodings[0])
    for row, encoding in enumerate(encodings):
        if len(encoding) != length:
            raise NastuneError(f"encoding {row} has length {len(encoding)}, expected {length}; "
                               "every encoding must have the same length")
    total = float(np.var(y))
    result = []
    for position in range(length):
        groups = _levels([encoding[position] for encoding in encodings], max_levels)
        n_groups = int(groups.max()) + 1
        counts = np.bincount(groups, minlength=n_groups).astype(float)
        sums = np.bincount(groups, weights=y, minlength=n_groups)
        present = counts > 0
        means = sums[present] / counts[present]
        between = float(np.sum(counts[present] * (means - y.mean()) ** 2) / len(y))
        share = between / total if total > 0 else 0.0
        result.append({"position": position, "importance": min(1.0, max(0.0, share)), "levels": int(present.sum())})
    return result
