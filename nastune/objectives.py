"""Hardware-aware search goals: constraints, several objectives, feasibility, Pareto fronts and hypervolume.

A search may declare ``objectives={"accuracy": "max", "latency": "min"}`` (the first one is the *primary*
objective: a record's ``value`` is it, negated when it is minimised, so everything that reads ``value``
as "higher is better" keeps working) and ``constraints={"latency": ("<=", 0.005)}``. A name is either a
*metric of the space* (profiled, supplied or uploaded: known exactly where measured, predicted by the
pretrained ensemble elsewhere) or a *value the evaluator returns* (an evaluator returning a dict).

Feasibility. A candidate's probability of meeting every constraint is the product over constraints of
``P(metric op bound)`` under a Gaussian with the ensemble's mean and member spread (1 or 0 where the metric
is measured). Candidates below ``min_feasibility`` are not proposed while others remain, and the acquisition
(UCB by default) is weighted by the probability (with EI: constrained EI, Gardner et al. 2014), so no evaluation
goes to a candidate that is almost surely infeasible. Only feasible results count for ``best``, the front and
the hypervolume.

Pareto acquisition. Two objectives, by default (``pareto_acquisition="membership"``): the closed-form
probability that a candidate is not dominated by the front of the results (the objectives as independent
Gaussians with the surrogate's mean and spread), times the feasibility probability. It values every likely
front member alike, however little hypervolume it adds, and found more of the true front than EHVI on the
NB201 tuning seeds of its time (``benchmarks/nb201/README.md``). Its blind spot: every candidate faster than
all results is undominated, so it spends much of its budget on the fast, inaccurate end. Option ``"front"``:
the share of joint posterior draws of the primary objective (whole functions over the space,
:meth:`nastune.gp.EmbeddingGP.sample_functions`; an ensemble's members) in whose Pareto front over the *whole
space* the candidate lies, the results keeping their observed values in every draw, times the feasibility
probability. A candidate likely beaten by an unevaluated, no slower one scores low. On NB201 it found more of
the true front on the tuning seeds and as much as the default on the reported ones, at about four times the time per
step, so the default stayed.
Option ``"ehvi"``: Monte-Carlo expected hypervolume improvement whose samples are the ensemble's members (each
member is one plausible function; HVI is computed exactly per member in 2-D and averaged), times the
feasibility probability. EHVI was chosen over random scalarisations because it rewards exactly what the
progress measure (dominated hypervolume) counts, needs no weight distribution, and in 2-D is exact and
vectorised over all candidates in ``O(n * |front|)``; its weakness, a zero score wherever no
member improves the front, is covered by falling back to a random Chebyshev scalarisation of one member
(ParEGO-style Thompson step). More than two objectives use that scalarisation throughout, because exact
n-D HVI over every candidate is too costly; the n-D hypervolume itself (progress) is computed exactly by
slicing (fine for fronts of tens of points).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import ndtr

from nastune.acquisition import Acquisition
from nastune.errors import SearchError

__all__ = [
    "Constraint",
    "FeasibilityWeighted",
    "Goals",
    "ehvi_2d",
    "history_rows",
    "hypervolume",
    "hypervolume_improvement_2d",
    "pareto_mask",
]

_OPS = ("<=", "<", ">=", ">")
DIRECTIONS = ("max", "min")


@dataclass(frozen=True)
class Constraint:
    """``name op bound``, e.g. ``latency <= 0.005``."""

    name: str
    op: str
    bound: float

    def satisfied(self, value: np.ndarray | float) -> np.ndarray:
        """Bool array (or scalar): whether ``value`` meets the constraint (NaN never does)."""
        v = np.asarray(value, dtype=float)
        with np.errstate(invalid="ignore"):
            if self.op == "<=":
                return v <= self.bound
            if self.op == "<":
                return v < self.bound
            if self.op == ">=":
                return v >= self.bound
            return v > self.bound

    def probability(self, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
        """``(n,)`` probability of meeting the constraint under ``N(mean, std^2)`` (std floored so a
        collapsed ensemble gives 0/1 by its mean)."""
        m = np.asarray(mean, dtype=float)
        s = np.maximum(np.asarray(std, dtype=float), 1e-9 * np.maximum(np.abs(m), 1e-12))
        z = (self.bound - m) / s
        p = ndtr(z) if self.op in ("<=", "<") else ndtr(-z)
        return np.where(np.isfinite(p), p, 0.0)

    def to_json(self) -> list[Any]:
        return [self.op, self.bound]

    def __str__(self) -> str:
        return f"{self.name} {self.op} {self.bound:g}"


def _parse_constraints(spec: Any) -> list[Constraint]:
    """``{name: (op, bound)}`` or ``[{"name"|"metric": ..., "op": ..., "bound"|"value": ...}]``."""
    if not spec:
        return []
    items: list[tuple[Any, Any, Any]] = []
    if isinstance(spec, Mapping):
        for name, rule in spec.items():
            if isinstance(rule, Mapping):
                items.append((name, rule.get("op"), rule.get("bound", rule.get("value"))))
            elif isinstance(rule, Sequence) and not isinstance(rule, str) and len(rule) == 2:
                items.append((name, rule[0], rule[1]))
            else:
                raise SearchError(f"constraint on {name!r} must be (op, bound), e.g. ('<=', 0.005); got {rule!r}")
    elif isinstance(spec, Sequence) and not isinstance(spec, str):
        for rule in spec:
            if not isinstance(rule, Mapping):
                raise SearchError(f"a constraint must be {{'name', 'op', 'bound'}}; got {rule!r}")
            items.append((rule.get("name", rule.get("metric")), rule.get("op"), rule.get("bound", rule.get("value"))))
    else:
        raise SearchError(f"constraints must be {{name: (op, bound)}}; got {spec!r}")
    out = []
    for name, op, bound in items:
        if not isinstance(name, str) or not name:
            raise SearchError(f"a constraint needs a metric name; got {name!r}")
        if op not in _OPS:
            raise SearchError(f"constraint on {name!r}: operator {op!r} is not one of {list(_OPS)}")
        try:
            b = float(bound)
        except (TypeError, ValueError):
            b = math.nan
        if not math.isfinite(b):
            raise SearchError(f"constraint on {name!r}: bound {bound!r} is not a finite number")
        out.append(Constraint(name, op, b))
    return out


def _parse_objectives(spec: Any) -> list[tuple[str, str]]:
    """``{name: "max"|"min"}`` (ordered; the first is primary) or ``[(name, direction)]``."""
    if not spec:
        return []
    pairs = list(spec.items()) if isinstance(spec, Mapping) else [tuple(p) for p in spec]
    out: list[tuple[str, str]] = []
    for pair in pairs:
        if len(pair) != 2:
            raise SearchError(f"an objective is (name, 'max'|'min'); got {pair!r}")
        name, direction = pair
        if not isinstance(name, str) or not name:
            raise SearchError(f"an objective needs a name; got {name!r}")
        d = str(direction).lower()
        if d in ("maximize", "maximise"):
            d = "max"
        if d in ("minimize", "minimise"):
            d = "min"
        if d not in DIRECTIONS:
            raise SearchError(f"objective {name!r}: direction {direction!r} must be 'max' or 'min'")
        if name in [n for n, _ in out]:
            raise SearchError(f"objective {name!r} is declared twice")
        out.append((name, d))
    return out


# -- Pareto fronts and hypervolume (every objective oriented to be maximised) ---------------------------
def pareto_mask(points: np.ndarray) -> np.ndarray:
    """``(n,)`` bool: rows of ``points: (n, k)`` (maximised) that no other row dominates (duplicates of a
    non-dominated row are non-dominated too)."""
    P = np.asarray(points, dtype=float)
    n = len(P)
    keep = np.ones(n, dtype=bool)
    for i in range(n):
        if not keep[i]:
            continue
        dominated = np.all(P[i] <= P, axis=1) & np.any(P[i] < P, axis=1)
        if dominated.any():
            keep[i] = False
    return keep


def hypervolume(points: np.ndarray, reference: Sequence[float] | np.ndarray) -> float:
    """Volume dominated by ``points: (n, k)`` (maximised) and bounded below by ``reference: (k,)``.

    Exact, by slicing along the last objective (HSO); points not better than the reference in every
    objective add nothing. 2-D goes through :func:`nastune.analysis.hypervolume_2d`.
    """
    P = np.asarray(points, dtype=float).reshape(-1, len(reference))
    r = np.asarray(reference, dtype=float)
    P = P[np.all(np.isfinite(P), axis=1) & np.all(r < P, axis=1)]
    if len(P) == 0:
        return 0.0
    k = P.shape[1]
    if k == 1:
        return float(P[:, 0].max() - r[0])
    if k == 2:
        from nastune.analysis import hypervolume_2d

        return hypervolume_2d(P[:, 0], -P[:, 1], (r[0], -r[1]))
    P = P[pareto_mask(P)]
    order = np.argsort(-P[:, -1])
    P = P[order]
    volume = 0.0
    for j in range(len(P)):
        low = P[j + 1, -1] if j + 1 < len(P) else r[-1]
        depth = P[j, -1] - low
        if depth > 0:
            volume += depth * hypervolume(P[: j + 1, :-1], r[:-1])
    return float(volume)


def hypervolume_improvement_2d(
    candidates: np.ndarray, front: np.ndarray, reference: Sequence[float] | np.ndarray,
) -> np.ndarray:
    """``(n,)`` exact hypervolume each of ``candidates: (n, 2)`` would add to ``front: (p, 2)`` (maximised).

    The improvement is the candidate's box above the reference minus the part of it the front already
    dominates; that part is the hypervolume of the front clipped to the box, a staircase summed in one
    vectorised pass.
    """
    C = np.asarray(candidates, dtype=float)
    r0, r1 = float(reference[0]), float(reference[1])
    box = np.clip(C[:, 0] - r0, 0, None) * np.clip(C[:, 1] - r1, 0, None)
    F = np.asarray(front, dtype=float).reshape(-1, 2)
    F = F[np.all([r0, r1] < F, axis=1)]
    if len(F) == 0:
        return box
    F = F[pareto_mask(F)]
    F = F[np.lexsort((F[:, 1], -F[:, 0]))]  # x descending, so y ascending on a front
    x = np.clip(np.minimum(F[None, :, 0], C[:, None, 0]) - r0, 0, None)  # (n, p), non-increasing in p
    y = np.clip(np.minimum(F[None, :, 1], C[:, None, 1]), r1, None)  # (n, p), non-decreasing in p
    steps = np.diff(np.concatenate([np.full((len(C), 1), r1), y], axis=1), axis=1)
    covered = (x * np.clip(steps, 0, None)).sum(1)
    return np.clip(box - covered, 0, None)


def ehvi_2d(samples: np.ndarray, front: np.ndarray, reference: Sequence[float] | np.ndarray) -> np.ndarray:
    """Monte-Carlo EHVI with the ensemble's members as samples.

    Args:
        samples: ``(M, n, 2)`` each member's prediction of both (maximised) objectives.
        front: ``(p, 2)`` the feasible results so far.
        reference: ``(2,)``.

    Returns:
        ``(n,)`` the mean over members of the exact hypervolume improvement.
    """
    S = np.asarray(samples, dtype=float)
    return np.mean([hypervolume_improvement_2d(S[m], front, reference) for m in range(S.shape[0])], axis=0)


def non_domination_probability(mean: np.ndarray, std: np.ndarray, front: np.ndarray) -> np.ndarray:
    """``(n,)`` probability that each candidate is not dominated by ``front: (p, 2)`` (maximised), its two
    objectives independent Gaussians ``mean, std: (n, 2)`` (std 0: a known value).

    With the front sorted by the first objective ascending (so the second descends), a candidate whose first
    objective falls in ``(x[i-1], x[i]]`` is dominated exactly when its second is at most ``y[i]``; summing
    over those slices gives the probability of being dominated in closed form.
    """
    mu = np.asarray(mean, dtype=float)
    sd = np.asarray(std, dtype=float)
    F = np.asarray(front, dtype=float).reshape(-1, 2)
    F = F[np.all(np.isfinite(F), axis=1)]
    if len(F) == 0:
        return np.ones(len(mu))
    F = F[pareto_mask(F)]
    F = F[np.argsort(F[:, 0], kind="stable")]

    def cdf(bound: np.ndarray, j: int) -> np.ndarray:  # (n, p) P(objective j <= bound); a tie is dominated
        m, s = mu[:, j:j + 1], sd[:, j:j + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(s > 0, ndtr((bound[None, :] - m) / np.where(s > 0, s, 1.0)),
                            (bound[None, :] >= m).astype(float))

    cdf_x = cdf(F[:, 0], 0)  # non-decreasing along the front
    slices = np.diff(np.concatenate([np.zeros((len(mu), 1)), cdf_x], axis=1), axis=1)
    return np.clip(1.0 - (slices * cdf(F[:, 1], 1)).sum(1), 0.0, 1.0)


# -- a search's goals ----------------------------------------------------------------------------------------
#: ``lookup(name) -> (exact, mean, std)``: each ``(n,)`` or ``None``; exact NaN where not measured.
MetricLookup = Callable[[str], tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]]


class Goals:
    """What a search optimises and under which constraints (parsed from its options).

    Args:
        objectives: ``{name: "max"|"min"}``; empty = the evaluator's single value, maximised.
        constraints: ``{name: (op, bound)}``.
        reference_point: ``{name: value}`` for the hypervolume (original units); missing ones are computed.
        min_feasibility: candidates with a lower probability of being feasible are not proposed while
            others remain.

    Raises:
        SearchError: malformed objectives or constraints.
    """

    def __init__(self, objectives: Any = None, constraints: Any = None, reference_point: Any = None,
                 min_feasibility: float = 0.05) -> None:
        self.objectives = _parse_objectives(objectives)
        self.constraints = _parse_constraints(constraints)
        self.reference_point = {str(k): float(v) for k, v in dict(reference_point or {}).items()}
        unknown = set(self.reference_point) - {n for n, _ in self.objectives}
        if unknown:
            raise SearchError(f"reference_point names {sorted(unknown)}, which are not objectives")
        self.min_feasibility = float(min_feasibility)
        if not 0.0 <= self.min_feasibility < 1.0:
            raise SearchError(f"min_feasibility must lie in [0, 1), got {min_feasibility!r}")

    @property
    def active(self) -> bool:
        return bool(self.objectives or self.constraints)

    @property
    def multi(self) -> bool:
        """Several objectives: the search targets the Pareto front."""
        return len(self.objectives) >= 2

    @property
    def primary(self) -> tuple[str, str] | None:
        return self.objectives[0] if self.objectives else None

    def names(self) -> list[str]:
        """Every quantity the goals read (objectives, then constraint names)."""
        out = [n for n, _ in self.objectives]
        out += [c.name for c in self.constraints if c.name not in out]
        return out

    def sign(self, name: str) -> float:
        """+1 for a maximised objective, -1 for a minimised one."""
        return -1.0 if dict(self.objectives).get(name) == "min" else 1.0

    # -- results --------------------------------------------------------------------------------------
    def split_result(self, result: Any) -> tuple[float | None, dict[str, float] | None]:
        """An evaluator's result as ``(value, objectives)``: ``value`` is the primary objective oriented to be
        maximised, ``objectives`` the dict of every returned number (``None`` for a plain number).

        Raises:
            SearchError: a dict without the primary objective, with a non-number, or a dict with no objectives
                declared.
        """
        if not isinstance(result, Mapping):
            if result is None:
                return None, None
            return float(result), None
        if not self.objectives:
            raise SearchError(
                f"the evaluator returned a dict {sorted(result)}; declare objectives={{name: 'max'|'min', ...}} "
                "(the first is the primary objective)"
            )
        values: dict[str, float] = {}
        for key, v in result.items():
            try:
                values[str(key)] = float(v)
            except (TypeError, ValueError) as exc:
                raise SearchError(f"the evaluator returned {key}={v!r}, not a number") from exc
        name, _ = self.objectives[0]
        if name not in values:
            raise SearchError(f"the evaluator's dict has no primary objective {name!r}; it has {sorted(values)}")
        primary = values[name] * self.sign(name)
        return (primary if math.isfinite(primary) else None), values

    def record_value(self, record: Mapping[str, Any], name: str, lookup: MetricLookup | None) -> float:
        """The value of ``name`` for a finished record (original units, NaN when unknown): what the evaluator
        returned, else the metric measured for the candidate, else (for the primary) the record's value."""
        objectives = record.get("objectives") or {}
        if name in objectives and objectives[name] is not None:
            return float(objectives[name])
        if lookup is not None:
            exact, _, _ = lookup(name)
            if exact is not None:
                v = float(exact[int(record["index"])])
                if math.isfinite(v):
                    return v
        if self.primary is not None and name == self.primary[0] and record.get("value") is not None:
            return float(record["value"]) * self.sign(name)
        return math.nan

    def feasible(self, record: Mapping[str, Any], lookup: MetricLookup | None) -> bool:
        """Whether a successful record meets every constraint (an unknown value does not)."""
        return all(bool(c.satisfied(self.record_value(record, c.name, lookup))) for c in self.constraints)

    def points(self, records: Sequence[Mapping[str, Any]], lookup: MetricLookup | None) -> np.ndarray:
        """``(len(records), k)`` objective values oriented to be maximised."""
        names = [n for n, _ in self.objectives]
        return np.array([[self.record_value(r, n, lookup) * self.sign(n) for n in names] for r in records],
                        dtype=float).reshape(len(records), len(names))

    def reference(self, points: np.ndarray, lookup: MetricLookup | None = None) -> np.ndarray:
        """``(k,)`` the reference point, maximised orientation: the given one, else for a space metric its
        worst value over the whole space, else the worst result minus 10% of the results' range."""
        out = []
        for j, (name, _direction) in enumerate(self.objectives):
            s = self.sign(name)
            if name in self.reference_point:
                out.append(self.reference_point[name] * s)
                continue
            column = None
            if lookup is not None:
                exact, mean, _ = lookup(name)
                column = exact if exact is not None and np.isfinite(exact).any() else mean
            values = column * s if column is not None else points[:, j] if len(points) else np.array([])
            values = np.asarray(values, dtype=float)
            values = values[np.isfinite(values)]
            if len(values) == 0:
                out.append(-1.0)
                continue
            low, high = float(values.min()), float(values.max())
            pad = 0.1 * (high - low) if high > low else 0.1 * max(abs(low), 1.0)
            out.append(low - pad)
        return np.asarray(out, dtype=float)

    def progress(self, records: Sequence[Mapping[str, Any]], lookup: MetricLookup | None,
                 reference: np.ndarray | None = None) -> dict[str, Any]:
        """Hypervolume after every finished record, and the front at the end (plain data).

        Returns:
            ``{"objectives": [[name, direction]], "reference": {name: value}, "evaluation": [1, ...],
            "hypervolume": [...], "feasible": [bool per record], "front": [{"index", "evaluation",
            name: value, ...}], "points": [{"index", "evaluation", "feasible", name: value}]}`` (hi fidelity
            only; failed and lo-fi records keep the curve flat).
        """
        names = [n for n, _ in self.objectives]
        usable = [(k, r) for k, r in enumerate(records, start=1)
                  if r.get("fidelity", "hi") == "hi" and r.get("value") is not None]
        feasible = {k: self.feasible(r, lookup) for k, r in usable}
        pts = self.points([r for _, r in usable], lookup)
        ref = self.reference(pts[[feasible[k] for k, _ in usable]] if usable else pts, lookup) \
            if reference is None else np.asarray(reference, dtype=float)
        curve: list[float] = []
        current: list[np.ndarray] = []
        by_eval = {k: (r, pts[i]) for i, (k, r) in enumerate(usable)}
        last = 0.0
        for k in range(1, len(records) + 1):
            if k in by_eval and feasible[k] and np.all(np.isfinite(by_eval[k][1])):
                current.append(by_eval[k][1])
                volume = hypervolume(np.array(current), ref) if len(names) > 1 else float(
                    max(p[0] for p in current) - ref[0]) if names else 0.0
                last = max(last, volume)  # a dominated point may change the sum by rounding only
            curve.append(last)
        point_rows = [{"index": int(r["index"]), "evaluation": k, "feasible": feasible[k],
                       **{n: float(pts[i, j] * self.sign(n)) for j, n in enumerate(names)}}
                      for i, (k, r) in enumerate(usable)]
        ok = np.array([row["feasible"] and np.all(np.isfinite(pts[i])) for i, row in enumerate(point_rows)], bool)
        front_rows = []
        if ok.any():
            mask = np.zeros(len(point_rows), dtype=bool)
            mask[np.flatnonzero(ok)] = pareto_mask(pts[ok])
            front_rows = [point_rows[i] for i in np.flatnonzero(mask)]
        return {
            "objectives": [[n, d] for n, d in self.objectives],
            "reference": {n: float(ref[j] * self.sign(n)) for j, n in enumerate(names)},
            "evaluation": list(range(1, len(records) + 1)),
            "hypervolume": curve,
            "front": front_rows,
            "points": point_rows,
        }

    # -- acquisition inputs -----------------------------------------------------------------------------------
    def feasibility(self, n: int, lookup: MetricLookup) -> np.ndarray:
        """``(n,)`` probability that each candidate meets every constraint (1 for a constraint on a value
        nothing predicts before evaluation)."""
        p = np.ones(n)
        for c in self.constraints:
            exact, mean, std = lookup(c.name)
            pc = np.ones(n)
            if mean is not None and std is not None:
                pc = c.probability(mean, std)
            if exact is not None:
                known = np.isfinite(exact)
                pc = np.where(known, c.satisfied(np.where(known, exact, 0.0)).astype(float), pc)
            p *= pc
        return p

    def proposable(self, p_feasible: np.ndarray, available: np.ndarray) -> np.ndarray:
        """``available`` without the candidates almost surely infeasible, unless that leaves none (then the
        most probably feasible available ones stay)."""
        keep = available & (p_feasible >= self.min_feasibility)
        if keep.any() or not available.any():
            return keep
        best = p_feasible[available].max()
        return available & (p_feasible >= best)


def chebyshev_scores(samples: np.ndarray, front: np.ndarray, reference: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """ParEGO-style step: one member drawn at random, objectives scaled to [0, 1] between the reference and
    the best of front and predictions, a random simplex weight, the augmented Chebyshev scalarisation.

    Args:
        samples: ``(M, n, k)`` maximised member predictions.
        front: ``(p, k)`` results so far.
        reference: ``(k,)``.

    Returns:
        ``(n,)`` scores (higher is better).
    """
    S = np.asarray(samples, dtype=float)
    member = S[int(rng.integers(S.shape[0]))]
    top = np.nanmax(np.concatenate([member, np.asarray(front, dtype=float).reshape(-1, S.shape[2])]), axis=0)
    scale = np.where(top > reference, top - reference, 1.0)
    z = (member - reference) / scale
    w = rng.dirichlet(np.ones(S.shape[2]))
    return np.min(w * z, axis=1) + 0.05 * np.sum(w * z, axis=1)


class FeasibilityWeighted(Acquisition):
    """An acquisition times the probability of feasibility (constrained EI for ``"ei"``).

    Scores that can be negative (UCB, Thompson) are first shifted to be positive, so the weighting keeps
    their order among equally feasible candidates.

    Args:
        base: the acquisition to weight.
        p_feasible: ``(n,)`` probability that each candidate meets every constraint.
    """

    def __init__(self, base: Acquisition, p_feasible: np.ndarray) -> None:
        self.base = base
        self.p_feasible = np.asarray(p_feasible, dtype=float)
        self.name = f"{base.name}*feasible"
        self.believer = base.believer

    def score(self, samples: np.ndarray, best: float, rng: np.random.Generator) -> np.ndarray:
        s = np.asarray(self.base.score(samples, best, rng), dtype=float)
        if s.shape != self.p_feasible.shape:
            raise SearchError(f"scores have shape {s.shape}, feasibility {self.p_feasible.shape}")
        finite = np.isfinite(s)
        low = s[finite].min() if finite.any() else 0.0
        if low < 0:
            s = s - low + 1e-12
        return s * self.p_feasible


def history_rows(records: Sequence[Mapping[str, Any]], goals: Goals,
                 lookup: MetricLookup | None = None) -> tuple[list[str], list[list[Any]]]:
    """A history as a table: the record's columns, then one column per objective and constraint name
    (what the evaluator returned, else the measured metric) and whether the result is feasible.

    Returns:
        ``(header, rows)``.
    """
    names = goals.names()
    extra = sorted({k for r in records for k in (r.get("objectives") or {})} - set(names))
    base = ["index", "encoding", "fidelity", "value", "error", "cost", "budget_units", "duration_s", "finished_at",
            "reason"]
    header = base + names + extra + ["feasible"]
    rows = []
    for r in records:
        row: list[Any] = [r.get(k) if k != "encoding" else " ".join(str(v) for v in r.get("encoding") or [])
                          for k in base]
        for name in names + extra:
            v = goals.record_value(r, name, lookup) if r.get("value") is not None or name in (
                r.get("objectives") or {}) else math.nan
            row.append("" if not math.isfinite(v) else v)
        row.append("" if r.get("value") is None else goals.feasible(r, lookup))
        rows.append(row)
    return header, rows
