"""Per-position reads of a search's evaluations: the data of the parallel-coordinates plot, the slice
plots and position importance (the numbers come from :mod:`nastune.importance`)."""

from __future__ import annotations

import json
from typing import Any

from searches.engine import position_importance
from searches.models import Evaluation, SearchInstance

POINTS_MAX = 5000


def _level_key(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def search_positions(*, search: SearchInstance, fidelity: str = "hi") -> dict[str, Any]:
    """Every finished evaluation at ``fidelity`` with its encoding and value (the latest ``POINTS_MAX``),
    and per position: its kind (``numeric`` when every value is a number, else ``categorical``), its
    levels in order, the best and mean value per level (slice plot) and its importance."""
    from searches.selectors import search_encodings

    rows = list(search.evaluations.filter(
        fidelity=fidelity, state=Evaluation.State.DONE, value__isnull=False,
    ).order_by("-seq").values_list("encoding_index", "value", "seq")[:POINTS_MAX])
    rows.reverse()
    encodings = search_encodings(search)
    length = search.space.encoding_length or (len(encodings[0]) if encodings else 0)
    points = [{"index": index, "encoding": encodings[index], "value": value, "seq": seq} for index, value, seq in rows]
    importance = position_importance([point["encoding"] for point in points], [point["value"] for point in points]) \
        if points else [{"position": p, "importance": None, "levels": 0} for p in range(length)]
    better = min if search.minimizes else max
    positions = []
    for position in range(length):
        column = [encoding[position] for encoding in encodings] if len(encodings) <= 200_000 else \
            [point["encoding"][position] for point in points]
        numeric = all(isinstance(value, int | float) and not isinstance(value, bool) for value in column)
        levels = sorted(set(column)) if numeric else sorted({_level_key(value) for value in column})
        by_level: dict[str, list[float]] = {}
        for point in points:
            by_level.setdefault(_level_key(point["encoding"][position]), []).append(point["value"])
        slices = [{"level": level, "count": len(by_level.get(_level_key(level), [])),
                   "best": better(by_level[_level_key(level)]) if _level_key(level) in by_level else None,
                   "mean": sum(by_level[_level_key(level)]) / len(by_level[_level_key(level)])
                   if _level_key(level) in by_level else None} for level in levels]
        positions.append({"position": position, "kind": "numeric" if numeric else "categorical",
                          "levels": levels, "slices": slices, "importance": importance[position]["importance"]})
    return {"search": search.id, "fidelity": fidelity, "direction": search.direction, "points": points,
            "positions": positions}
