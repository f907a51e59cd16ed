"""Reads of searches and evaluations: lists, the live-progress feed, curves, CSV rows.

Every read is scoped to an owner; someone else's search is "not found". These run on every
dashboard poll, so they read only indexed columns and never load the engine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import numpy as np
from django.db.models import QuerySet

from nasweb.errors import NotFoundError
from searches import scheduling
from searches.engine import best_curve, expected_random_search_curve, non_dominated
from searches.models import Evaluation, SearchInstance

FEED_LIMIT = 500  # a catch-up poll pages through with `more`; 2,000 rows cost 0.4 s
ORDERINGS = {
    "id", "-id", "value", "-value", "encoding_index", "-encoding_index", "seq", "-seq", "finished_at", "-finished_at",
    "duration_s", "-duration_s", "fidelity", "-fidelity", "state", "-state",
}


def search_list(*, owner: Any) -> QuerySet[SearchInstance]:
    return SearchInstance.objects.filter(owner=owner).select_related("space").order_by("-created_at")


def search_get(*, owner: Any, search_id: Any) -> SearchInstance:
    try:
        return SearchInstance.objects.select_related("space").get(owner=owner, id=int(search_id))
    except (SearchInstance.DoesNotExist, ValueError, TypeError):
        raise NotFoundError(None, "no such search") from None


def evaluation_get(*, search: SearchInstance, evaluation_id: Any) -> Evaluation:
    try:
        return search.evaluations.get(id=int(evaluation_id))
    except (Evaluation.DoesNotExist, ValueError, TypeError):
        raise NotFoundError(None, "no such evaluation") from None


def evaluation_list(
    *, search: SearchInstance, state: str | None = None, fidelity: str | None = None,
    value_min: float | None = None, value_max: float | None = None, ordering: str = "id",
) -> QuerySet[Evaluation]:
    """Evaluations filtered by state, fidelity and value range, in a whitelisted order."""
    queryset = search.evaluations.all()
    if state:
        queryset = queryset.filter(state=state)
    if fidelity:
        queryset = queryset.filter(fidelity=fidelity)
    if value_min is not None:
        queryset = queryset.filter(value__gte=value_min)
    if value_max is not None:
        queryset = queryset.filter(value__lte=value_max)
    if ordering not in ORDERINGS:
        ordering = "id"
    secondary = "-id" if ordering.startswith("-") else "id"
    return queryset.order_by(ordering, secondary)


_FEED_FIELDS = ("id", "seq", "encoding_index", "fidelity", "state", "value", "cost", "spent_after", "best_after",
                "finished_at", "attempt")


def encoding_text(encoding: Sequence[Any]) -> str:
    """An encoding as its user writes it: ``[3, 64, 5]``, ``[nor_conv_3x3, skip_connect]`` (names unquoted)."""
    return "[" + ", ".join(value if isinstance(value, str) else json.dumps(value) for value in encoding) + "]"


def search_encodings(search: SearchInstance) -> list[list[Any]]:
    """The encodings of the search's space (read once per process and file version; treat as read-only)."""
    from spaces.services import load_encodings

    return load_encodings(search.space)


def search_progress(*, search: SearchInstance, cursor: int = 0) -> dict[str, Any]:
    """Everything the live dashboard needs since ``cursor`` (the last ``seq`` it has seen); every row
    and the best candidate carry their ``encoding`` (the list itself, not only its index)."""
    finished = list(
        search.evaluations.filter(seq__gt=cursor).order_by("seq").values(*_FEED_FIELDS)[:FEED_LIMIT]
    )
    in_flight = list(
        search.evaluations.filter(state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING))
        .order_by("id").values("id", "encoding_index", "fidelity", "state", "attempt", "gpu", "worker",
                               "started_at", "log_tail", "predicted_mean", "predicted_std")[:200]
    )
    encodings = search_encodings(search)
    for row in (*finished, *in_flight):
        row["encoding"] = encodings[row["encoding_index"]]
    queued = [row for row in in_flight if row["state"] == Evaluation.State.QUEUED]
    if queued:
        # how many evaluations (every user's) start before it; None: held by the owner's running limit
        ahead = scheduling.positions_of(row["id"] for row in queued)
        for row in queued:
            row["ahead"] = ahead[row["id"]]
    return {
        "id": search.id,
        "state": search.state,
        "running_limit": scheduling.limit_per_user() or None,
        "failure_reason": search.failure_reason,
        "budget": search.budget,
        "spent": search.spent,
        "best_value": search.best_value,
        "best_index": search.best_index,
        "best_encoding": None if search.best_index is None else encodings[search.best_index],
        "finished_count": search.finished_count,
        "cursor": finished[-1]["seq"] if finished else cursor,
        "more": len(finished) == FEED_LIMIT,
        "finished": finished,
        "in_flight": in_flight,
    }


def search_curve(*, search: SearchInstance) -> dict[str, Any]:
    """Best-value curves as plain data, per fidelity: best value so far against the number of
    evaluations finished and against the budget spent (hi-fi evaluation units), from the engine's
    :func:`nastune.analysis.best_curve` over the search's history."""
    from searches.storage import EvaluationRowStorage

    records = EvaluationRowStorage(search).history()
    curve = best_curve(records)
    curves: dict[str, dict[str, list]] = {
        fidelity: {"evaluations": [], "spent": [], "best": [], "value": [], "index": [], "elapsed_s": []}
        for fidelity in ("hi", "lo")
    }
    sign = -1.0 if search.minimizes else 1.0  # the history holds the engine's (maximised) values
    start = search.started_at or search.created_at
    for k, record in enumerate(records):
        fidelity, value = curve["fidelity"][k], curve["value"][k]
        if value is None or fidelity not in curves:
            continue
        line = curves[fidelity]
        line["evaluations"].append(record["seq"])
        line["spent"].append(curve["budget_units"][k])
        line["best"].append(sign * curve[f"best_{fidelity}"][k])
        line["value"].append(sign * value)
        line["index"].append(curve["index"][k])
        finished = record.get("finished_at")
        line["elapsed_s"].append(
            (datetime.fromisoformat(finished) - start).total_seconds() if finished and start else None)
    return {"search": search.id, "name": search.name, "budget": search.budget, "direction": search.direction,
            "started_at": start.isoformat() if start else None, "curves": curves}


CSV_COLUMNS = ("evaluation_id", "seq", "encoding_index", "encoding", "fidelity", "attempt", "state", "value", "cost",
               "spent_after", "best_after", "predicted_mean", "predicted_std", "worker", "gpu", "started_at",
               "finished_at", "duration_s", "error")


def _csv_cell(value: Any) -> Any:
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else json.dumps(value)


def evaluation_csv_rows(*, search: SearchInstance, encodings: list[Any]) -> Iterator[list[Any]]:
    """Every evaluation of the search, in creation order, as CSV cells (header first). After the
    fixed columns, one column per encoding position (``pos_0``, ``pos_1``, ...) for spreadsheets, then, for
    a search with several objectives, one column per objective (and any other number the evaluator returned,
    ``objective_<name>`` where a name is taken)."""
    length = len(encodings[0]) if encodings else 0
    names = [str(name) for name, _ in search.objectives or []]
    if names:
        returned = search.evaluations.exclude(objectives__isnull=True).values_list("objectives", flat=True)
        names += sorted({str(k) for row in returned.iterator(chunk_size=2000) for k in (row or {})} - set(names))
    taken = {*CSV_COLUMNS, *(f"pos_{position}" for position in range(length))}
    yield [*CSV_COLUMNS, *(f"pos_{position}" for position in range(length)),
           *(f"objective_{name}" if name in taken else name for name in names)]
    fields = ("id", "seq", "encoding_index", "fidelity", "attempt", "state", "value", "cost", "spent_after",
              "best_after", "predicted_mean", "predicted_std", "worker", "gpu", "started_at", "finished_at",
              "duration_s", "error", "objectives")
    for row in search.evaluations.order_by("id").values_list(*fields).iterator(chunk_size=2000):
        (eid, seq, index, fidelity, attempt, state, value, cost, spent, best, mean, std, worker, gpu, started,
         finished, duration, error, objectives) = row
        yield [eid, seq, index, json.dumps(encodings[index]), fidelity, attempt, state, value, cost, spent, best,
               mean, std, worker, gpu, started.isoformat() if started else "",
               finished.isoformat() if finished else "", duration, error.splitlines()[0] if error else "",
               *(_csv_cell(value) for value in encodings[index]),
               *((objectives or {}).get(name, "") for name in names)]


def search_sparkline(*, search: SearchInstance, max_points: int = 60) -> dict[str, list]:
    """A few points of the best hi-fi value so far, for the home page's sparklines.

    Reads at most ``max_points`` rows through the (search, seq) index, whatever the search's size.
    """
    total = search.finished_count
    if total <= 0:
        return {"evaluations": [], "best": []}
    step = max(1, math.ceil(total / max_points))
    wanted = sorted({*range(step, total + 1, step), total})
    rows = search.evaluations.filter(seq__in=wanted, best_after__isnull=False).order_by("seq").values_list(
        "seq", "best_after")
    return {"evaluations": [seq for seq, _ in rows], "best": [best for _, best in rows]}


# --- API reads (W1) ---------------------------------------------------------------------------------

REFERENCE_CURVE_MAX = 1000


def search_pareto(*, search: SearchInstance, metric: str) -> dict[str, Any]:
    """Evaluated hi-fi values against a profiled metric of the same candidates, one point per
    encoding (its best value), with the non-dominated ones flagged
    (:func:`nastune.analysis.non_dominated`): a better value (higher, or lower for a minimising search) and a
    lower metric (params, FLOPs, latency, memory) are both better. Unprofiled candidates are counted only."""
    from nasweb.errors import DomainError
    from spaces.services import load_profile

    if metric not in search.space.metrics:
        known = ", ".join(search.space.metrics) or "none: the space has no profile"
        raise DomainError("metric", f"the space has no profiled metric {metric!r}; choose one of {known}")
    column = load_profile(search.space)[0].get(metric)
    best: dict[int, float] = {}
    rows = search.evaluations.filter(
        fidelity=Evaluation.Fidelity.HI, state=Evaluation.State.DONE, value__isnull=False,
    ).values_list("encoding_index", "value")
    sign = -1.0 if search.minimizes else 1.0  # compare as "higher is better"
    for index, value in rows:
        best[index] = value if index not in best else sign * max(sign * value, sign * best[index])
    points = [
        {"index": index, "value": value, "metric_value": float(column[index]), "non_dominated": False}
        for index, value in best.items() if column is not None and np.isfinite(column[index])
    ]
    # Sweep by metric ascending (value descending on ties): a point is dominated unless it beats
    # every value seen at a lower-or-equal metric, or exactly equals the point that set that value.
    points.sort(key=lambda point: (point["metric_value"], -sign * point["value"], point["index"]))
    flags = non_dominated([sign * point["value"] for point in points], [point["metric_value"] for point in points])
    for point, flag in zip(points, flags, strict=True):
        point["non_dominated"] = bool(flag)
    return {"search": search.id, "metric": metric, "points": points, "unprofiled": len(best) - len(points)}


def search_hypervolume(*, search: SearchInstance) -> dict[str, Any]:
    """A search with objectives: the dominated hypervolume after every finished evaluation and the feasible
    front so far (:meth:`nastune.objectives.Goals.progress`); objectives that are space metrics (profiled or
    uploaded) are read from the profile, the others from what the evaluator returned."""
    from nasweb.errors import ConflictError
    from searches.engine import Goals, SearchError
    from searches.storage import EvaluationRowStorage
    from spaces.services import load_profile

    if not search.objectives:
        raise ConflictError("objectives", "this search has a single objective; start one with objectives to "
                            "follow a hypervolume")
    try:
        goals = Goals(search.objectives, search.constraints, search.reference_point)
    except SearchError as exc:  # pragma: no cover - checked when the search was created
        raise ConflictError("objectives", str(exc)) from None
    profile = load_profile(search.space)[0]

    def lookup(name: str) -> tuple[np.ndarray | None, None, None]:
        column = profile.get(name)
        return (None if column is None else np.asarray(column, dtype=float)), None, None

    progress = goals.progress(EvaluationRowStorage(search).history(), lookup)
    return {"search": search.id, **progress,
            "constraints": [{"name": c.name, "op": c.op, "bound": c.bound} for c in goals.constraints]}


def search_reference_curve(*, search: SearchInstance) -> dict[str, Any]:
    """The exact expected best hi-fi value of uniform random search (without replacement) over the
    tabular evaluator's candidates, after 1..n evaluations, n = the budget in hi-fi evaluations
    (at most ``REFERENCE_CURVE_MAX``). Only a tabular evaluator knows every candidate's value."""
    from nasweb.errors import ConflictError
    from searches import evaluators

    if search.evaluator_kind != SearchInstance.EvaluatorKind.TABULAR:
        raise ConflictError(None, "the exact random-search reference needs a tabular evaluator, which knows "
                            "every candidate's value; this search evaluates by training")
    values = np.fromiter(evaluators.load_table(search)["hi"].values(), dtype=float)
    n = min(int(search.budget), len(values), REFERENCE_CURVE_MAX)
    sign = -1.0 if search.minimizes else 1.0  # the expected best is the expected maximum of the signed values
    best = [sign * value for value in expected_random_search_curve(sign * values, n)]
    return {"search": search.id, "n_candidates": len(values), "evaluations": list(range(1, len(best) + 1)),
            "best": best}


def search_predictions(*, search: SearchInstance, indices: Any) -> list[dict[str, Any]]:
    """The search's surrogate (fitted to its evaluations so far) for these candidates:
    ``[{index, encoding, predictions: {name: {mean, std}}}]``."""
    from nasweb.errors import ConflictError
    from searches import engine
    from searches.engine import NastuneError
    from spaces.engine import load_space, prediction_rows

    if not search.space.bundle_file:
        raise ConflictError(None, "the search space has no pretrained surrogate")
    indices = [int(index) for index in indices]
    try:
        predicted = engine.predict(search, indices) if indices else {}
        encodings = load_space(search.space).encodings
    except NastuneError as exc:  # e.g. a bundle that fails its checksum: say so, do not crash
        raise ConflictError(None, str(exc)) from None
    return prediction_rows(indices, encodings, predicted, "predictions")
