"""Reads of searches and evaluations: lists, the live-progress feed, curves, CSV rows.

Every read is scoped to an owner; someone else's search is "not found". These run on every
dashboard poll, so they read only indexed columns and never load the engine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from django.db.models import QuerySet

from nasweb.errors import NotFoundError
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
    return {
        "id": search.id,
        "state": search.state,
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
    evaluations finished and against the budget spent (hi-fi evaluation units)."""
    rows = search.evaluations.filter(seq__isnull=False).order_by("seq").values_list(
        "seq", "fidelity", "state", "value", "spent_after")
    curves: dict[str, dict[str, list]] = {
        fidelity: {"evaluations": [], "spent": [], "best": [], "value": [], "index": []}
        for fidelity in ("hi", "lo")
    }
    best = {"hi": -math.inf, "lo": -math.inf}
    for seq, fidelity, state, value, spent in rows:
        if state != Evaluation.State.DONE or value is None:
            continue
        best[fidelity] = max(best[fidelity], value)
        curve = curves[fidelity]
        curve["evaluations"].append(seq)
        curve["spent"].append(spent)
        curve["best"].append(best[fidelity])
        curve["value"].append(value)
    return {"search": search.id, "name": search.name, "budget": search.budget, "curves": curves}


def expected_random_search_curve(values: np.ndarray, n_evaluations: int) -> list[float]:
    """Exact expected best value after k uniform draws without replacement, k = 1..n.

    With the N values sorted ascending, P(best <= v_j) = C(j, k) / C(N, k), so
    E[best] = sum_j v_j (C(j, k) - C(j - 1, k)) / C(N, k); computed in log space.
    """
    from scipy.special import gammaln

    v = np.sort(np.asarray(values, dtype=float))
    n = len(v)
    j = np.arange(1, n + 1, dtype=float)
    out = []
    for k in range(1, min(n_evaluations, n) + 1):
        log_total = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
        with np.errstate(invalid="ignore"):
            log_upto = np.where(j >= k, gammaln(j + 1) - gammaln(k + 1) - gammaln(np.maximum(j - k, 0) + 1), -np.inf)
            log_before = np.where(j - 1 >= k, gammaln(j) - gammaln(k + 1) - gammaln(np.maximum(j - 1 - k, 0) + 1),
                                  -np.inf)
        weights = np.exp(log_upto - log_total) - np.exp(log_before - log_total)
        out.append(float(np.dot(weights, v)))
    return out


CSV_COLUMNS = ("evaluation_id", "seq", "encoding_index", "encoding", "fidelity", "attempt", "state", "value", "cost",
               "spent_after", "best_after", "predicted_mean", "predicted_std", "worker", "gpu", "started_at",
               "finished_at", "duration_s", "error")


def _csv_cell(value: Any) -> Any:
    return value if isinstance(value, str | int | float) and not isinstance(value, bool) else json.dumps(value)


def evaluation_csv_rows(*, search: SearchInstance, encodings: list[Any]) -> Iterator[list[Any]]:
    """Every evaluation of the search, in creation order, as CSV cells (header first). After the
    fixed columns, one column per encoding position (``pos_0``, ``pos_1``, ...) for spreadsheets."""
    length = len(encodings[0]) if encodings else 0
    yield [*CSV_COLUMNS, *(f"pos_{position}" for position in range(length))]
    fields = ("id", "seq", "encoding_index", "fidelity", "attempt", "state", "value", "cost", "spent_after",
              "best_after", "predicted_mean", "predicted_std", "worker", "gpu", "started_at", "finished_at",
              "duration_s", "error")
    for row in search.evaluations.order_by("id").values_list(*fields).iterator(chunk_size=2000):
        (eid, seq, index, fidelity, attempt, state, value, cost, spent, best, mean, std, worker, gpu, started,
         finished, duration, error) = row
        yield [eid, seq, index, json.dumps(encodings[index]), fidelity, attempt, state, value, cost, spent, best,
               mean, std, worker, gpu, started.isoformat() if started else "",
               finished.isoformat() if finished else "", duration, error.splitlines()[0] if error else "",
               *(_csv_cell(value) for value in encodings[index])]


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
    encoding (its best value), with the non-dominated ones flagged: a higher value and a lower
    metric (params, FLOPs, latency, memory) are both better. Unprofiled candidates are counted only."""
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
    for index, value in rows:
        best[index] = max(value, best.get(index, -math.inf))
    points = [
        {"index": index, "value": value, "metric_value": float(column[index]), "non_dominated": False}
        for index, value in best.items() if column is not None and np.isfinite(column[index])
    ]
    # Sweep by metric ascending (value descending on ties): a point is dominated unless it beats
    # every value seen at a lower-or-equal metric, or exactly equals the point that set that value.
    points.sort(key=lambda point: (point["metric_value"], -point["value"], point["index"]))
    top_value, top_metric = -math.inf, math.nan
    for point in points:
        if point["value"] > top_value:
            point["non_dominated"] = True
            top_value, top_metric = point["value"], point["metric_value"]
        elif point["value"] == top_value and point["metric_value"] == top_metric:
            point["non_dominated"] = True
    return {"search": search.id, "metric": metric, "points": points, "unprofiled": len(best) - len(points)}


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
    best = expected_random_search_curve(values, n)
    return {"search": search.id, "n_candidates": len(values), "evaluations": list(range(1, len(best) + 1)),
            "best": best}


def search_predictions(*, search: SearchInstance, indices: Any) -> list[dict[str, Any]]:
    """The search's surrogate (fine-tuned on its evaluations so far) for these candidates:
    ``[{index, encoding, predictions: {name: {mean, std}}}]``."""
    from nastune import NastuneError
    from nasweb.errors import ConflictError
    from searches import engine
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
