"""Numbers about searches and surrogates, as plain data: the random-search reference curve, Pareto fronts and
their hypervolume, and how well a pretrained surrogate ranks held-out candidates."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "TRANSFER_BEST",
    "best_curve",
    "best_first",
    "expected_random_search_curve",
    "held_out_kendall_tau",
    "hypervolume_2d",
    "interleave_rankings",
    "non_dominated",
]


#: how many of an earlier search's best results a space keeps to start later searches from
TRANSFER_BEST = 100


def best_first(values: Mapping[int, float], *, maximize: bool, limit: int | None = TRANSFER_BEST) -> list[int]:
    """The indices of ``values`` (index -> result) best first in the search's direction, ties by index; the
    first ``limit`` of them (all when ``None``). The ranking a space keeps of an earlier search's results."""
    order = sorted(values, key=lambda i: (-values[i] if maximize else values[i], i))
    return [int(i) for i in (order if limit is None else order[:limit])]


def interleave_rankings(rankings: Sequence[Sequence[int]], limit: int | None = None) -> list[int]:
    """Several rankings (each best first) merged round-robin: every ranking's first, then every second, ...,
    each index once; the first ``limit`` of them (all when ``None``). How a search starts from several earlier
    searches' best results without letting one of them fill the whole initial design."""
    order: list[int] = []
    seen: set[int] = set()
    if limit is not None and limit <= 0:
        return order
    for rank in range(max((len(r) for r in rankings), default=0)):
        for ranking in rankings:
            if rank < len(ranking) and int(ranking[rank]) not in seen:
                order.append(int(ranking[rank]))
                seen.add(order[-1])
                if limit is not None and len(order) >= limit:
                    return order
    return order


def best_curve(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The best value found so far after every finished evaluation, as plain lists (one entry per record).

    Args:
        records: finished evaluations in finishing order (a storage's ``history()``): ``index``,
            ``fidelity``, ``value`` (``None`` when failed), ``budget_units``, ``cost``.

    Returns:
        ``{"evaluation": [1, 2, ...], "index": [...], "fidelity": [...], "value": [...],
        "budget_units": [cumulative hi-fi-evaluation units], "cost": [cumulative user cost],
        "best_hi": [best hi-fi value so far or None], "best_lo": [likewise for lo-fi]}``
    """
    curve: dict[str, list[Any]] = {
        k: [] for k in ("evaluation", "index", "fidelity", "value", "budget_units", "cost", "best_hi", "best_lo")
    }
    units = cost = 0.0
    best: dict[str, float | None] = {"hi": None, "lo": None}
    for k, record in enumerate(records, start=1):
        units += float(record["budget_units"])
        cost += float(record["cost"])
        value = record["value"]
        fidelity = record["fidelity"]
        old = best.get(fidelity)
        if value is not None and fidelity in best and (old is None or value > old):
            best[fidelity] = float(value)
        curve["evaluation"].append(k)
        curve["index"].append(int(record["index"]))
        curve["fidelity"].append(fidelity)
        curve["value"].append(value)
        curve["budget_units"].append(units)
        curve["cost"].append(cost)
        curve["best_hi"].append(best["hi"])
        curve["best_lo"].append(best["lo"])
    return curve


def expected_random_search_curve(values: Sequence[float] | np.ndarray, n_evaluations: int) -> list[float]:
    """Exact expected best value after k uniform draws without replacement, k = 1..n.

    With the N values sorted ascending, P(best <= v_j) = C(j, k) / C(N, k), so
    E[best] = sum_j v_j (C(j, k) - C(j - 1, k)) / C(N, k); computed in log space.

    Args:
        values: ``(N,)`` the value of every candidate.
        n_evaluations: how many draws (capped at N).

    Returns:
        ``min(n_evaluations, N)`` expected best values.
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


def non_dominated(value: Sequence[float] | np.ndarray, cost: Sequence[float] | np.ndarray) -> np.ndarray:
    """``(n,)`` bool: the points no other point beats, where a higher ``value`` and a lower ``cost`` are
    better (e.g. accuracy against latency). Exact duplicates of a non-dominated point are non-dominated too.

    Args:
        value: ``(n,)`` maximised.
        cost: ``(n,)`` minimised.
    """
    v = np.asarray(value, dtype=float)
    c = np.asarray(cost, dtype=float)
    flags = np.zeros(len(v), dtype=bool)
    # Sweep by cost ascending (value descending on ties): a point is dominated unless it beats every
    # value seen at a lower-or-equal cost, or exactly equals the point that set that value.
    order = np.lexsort((-v, c))
    top_value, top_cost = -np.inf, np.nan
    for i in order:
        if v[i] > top_value:
            flags[i] = True
            top_value, top_cost = v[i], c[i]
        elif v[i] == top_value and c[i] == top_cost:
            flags[i] = True
    return flags


def hypervolume_2d(value: Sequence[float] | np.ndarray, cost: Sequence[float] | np.ndarray,
                   reference: tuple[float, float]) -> float:
    """Area dominated by the points and bounded by ``reference = (value_ref, cost_ref)``: the region of
    (value, cost) with value_ref <= value' <= value and cost <= cost' <= cost_ref for some point.
    Points that do not beat the reference in both coordinates add nothing.

    Args:
        value: ``(n,)`` maximised.
        cost: ``(n,)`` minimised.
        reference: the worst value and the worst cost that still count.
    """
    v = np.asarray(value, dtype=float)
    c = np.asarray(cost, dtype=float)
    v_ref, c_ref = float(reference[0]), float(reference[1])
    keep = np.isfinite(v) & np.isfinite(c) & (v > v_ref) & (c < c_ref)
    v, c = v[keep], c[keep]
    if len(v) == 0:
        return 0.0
    order = np.argsort(c, kind="stable")
    area, best = 0.0, v_ref
    edges = np.append(c[order], c_ref)
    for k, i in enumerate(order):
        best = max(best, v[i])
        area += (best - v_ref) * (edges[k + 1] - edges[k])
    return float(area)


def held_out_kendall_tau(
    profile: Mapping[str, np.ndarray],
    pretrain_and_predict: Callable[[dict[str, np.ndarray], np.ndarray], Mapping[str, tuple[np.ndarray, np.ndarray]]],
    *,
    held_out_share: float = 0.1,
    max_held_out: int = 2000,
    sample: int = 300,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    """How well a surrogate pretrained without some candidates ranks them: Kendall tau per metric.

    Args:
        profile: metric -> ``(n,)`` measured values (NaN where not profiled).
        pretrain_and_predict: ``(training profile with the held-out values set to NaN, held-out indices)
            -> {metric: (mean, std)}`` of the held-out candidates.
        held_out_share: share of the profiled candidates held out (at least 10, at most ``max_held_out``).
        sample: points of each metric returned for a predicted-vs-measured plot.
        seed: which candidates are held out and which points are returned.

    Returns:
        ``{metric: {"tau", "n", "predicted", "measured"}}``; empty when fewer than 30 candidates were profiled.
    """
    from scipy.stats import kendalltau

    profiled = np.flatnonzero(np.any([np.isfinite(values) for values in profile.values()], axis=0))
    if len(profiled) < 30:
        return {}
    rng = np.random.default_rng(seed)
    size = min(max_held_out, max(10, int(round(len(profiled) * held_out_share, 9))))
    held_out = np.sort(rng.choice(profiled, size=size, replace=False))
    training = {metric: np.asarray(values, dtype=float).copy() for metric, values in profile.items()}
    for values in training.values():
        values[held_out] = np.nan
    training = {metric: values for metric, values in training.items() if np.isfinite(values).any()}
    predictions = pretrain_and_predict(training, held_out)
    quality: dict[str, dict[str, Any]] = {}
    for metric, (mean, _std) in predictions.items():
        if metric not in profile:
            continue
        measured = np.asarray(profile[metric], dtype=float)[held_out]
        finite = np.isfinite(measured) & np.isfinite(mean)
        if finite.sum() < 5:
            continue
        tau = kendalltau(mean[finite], measured[finite]).statistic
        shown = rng.permutation(np.flatnonzero(finite))[:sample]
        quality[metric] = {
            "tau": None if not np.isfinite(tau) else round(float(tau), 4),
            "n": int(finite.sum()),
            "predicted": [float(x) for x in mean[shown]],
            "measured": [float(x) for x in measured[shown]],
        }
    return quality
