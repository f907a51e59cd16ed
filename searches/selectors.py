"""Reads of searches and evaluations: lists, the live-progress feed, curves, CSV rows.

Every read is scoped to an owner; someone else's search is "not found". These run on every
dashboard poll, so they read only indexed columns and never load the engine.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
from django.db.models import QuerySet

from nasweb.api_errors import NotFoundError
from searches.models import Evaluation, SearchInstance

FEED_LIMIT = 2000
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


def search_progress(*, search: SearchInstance, cursor: int = 0) -> dict[str, Any]:
    """Everything the live dashboard needs since ``cursor`` (the last ``seq`` it has seen)."""
    finished = list(
        search.evaluations.filter(seq__gt=cursor).order_by("seq").values(*_FEED_FIELDS)[:FEED_LIMIT]
    )
    in_flight = list(
        search.evaluations.filter(state__in=(Evaluation.State.QUEUED, Evaluation.State.RUNNING))
        .order_by("id").values("id", "encoding_index", "fidelity", "state", "attempt", "gpu", "worker",
                               "started_at", "log_tail", "predicted_mean", "predicted_std")[:200]
    )
    return {
        "id": search.id,
        "state": search.state,
        "failure_reason": search.failure_reason,
        "budget": search.budget,
        "spent": search.spent,
        "best_value": search.best_value,
        "best_index": search.best_index,
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


def evaluation_csv_rows(*, search: SearchInstance, encodings: list[Any]) -> Iterator[list[Any]]:
    """Every evaluation of the search, in creation order, as CSV cells (header first)."""
    import json

    yield list(CSV_COLUMNS)
    fields = ("id", "seq", "encoding_index", "fidelity", "attempt", "state", "value", "cost", "spent_after",
              "best_after", "predicted_mean", "predicted_std", "worker", "gpu", "started_at", "finished_at",
              "duration_s", "error")
    for row in search.evaluations.order_by("id").values_list(*fields).iterator(chunk_size=2000):
        (eid, seq, index, fidelity, attempt, state, value, cost, spent, best, mean, std, worker, gpu, started,
         finished, duration, error) = row
        yield [eid, seq, index, json.dumps(encodings[index]), fidelity, attempt, state, value, cost, spent, best,
               mean, std, worker, gpu, started.isoformat() if started else "",
               finished.isoformat() if finished else "", duration, error.splitlines()[0] if error else ""]
