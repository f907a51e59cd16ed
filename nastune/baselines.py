"""Baseline search strategies to compare the BO search with, all seeded and duplicate-free.

Every strategy works on the candidates' category codes ``codes: (n, L)`` int (one column per
encoding position; :func:`encoding_codes` builds it from a search space) and follows one contract,
:class:`Strategy`: ``ask() -> index`` of a candidate never proposed before, ``tell(index, value)``
(maximised). :func:`run_strategy` drives one against an evaluation function.

* :class:`RandomSearch`: uniform order without replacement.
* :class:`RegularizedEvolution` (Real et al. 2019): tournament selection, one-position mutation, the
  oldest member dies.
* :class:`LocalSearch` (White et al. 2021): best-improvement hill climbing over one-position neighbours
  with random restarts.
* :class:`TPESearch`: Optuna's TPE sampler over one categorical parameter per position.
* :class:`DescendingMetric`: a zero-cost heuristic: candidates in descending order of a metric (e.g.
  parameter count), ties in random order.
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from nastune.errors import SearchError

__all__ = [
    "BASELINES",
    "DescendingMetric",
    "LocalSearch",
    "RandomSearch",
    "RegularizedEvolution",
    "Strategy",
    "TPESearch",
    "encoding_codes",
    "make_baseline",
    "run_strategy",
]

logger = logging.getLogger("nastune")


def encoding_codes(space: Any) -> np.ndarray:
    """``(n, L)`` int64 category code of every position of every encoding of ``space``.

    Works with a :class:`~nastune.space.SearchSpace` (column codes of its encodings) or an ``(n, L)``
    array of encodings.
    """
    encodings = getattr(space, "encodings", space)
    column_codes = getattr(encodings, "column_codes", None)
    if callable(column_codes):
        return np.stack([np.asarray(column_codes(j), dtype=np.int64) for j in range(encodings.length)], axis=1)
    matrix = np.asarray(encodings)
    if matrix.ndim != 2:
        raise SearchError(f"encodings must be (n, L), got shape {matrix.shape}")
    return np.stack([np.unique(matrix[:, j], return_inverse=True)[1].reshape(-1) for j in range(matrix.shape[1])],
                    axis=1).astype(np.int64)


class Strategy(ABC):
    """Contract of a baseline: ask for one new candidate at a time, tell its value.

    Args:
        codes: ``(n, L)`` int category codes of the candidates.
        seed: seed of every random choice.

    ``ask`` never returns a candidate it returned before; it raises :class:`SearchError` when every
    candidate has been asked.
    """

    name = "strategy"

    def __init__(self, codes: np.ndarray, seed: int = 0) -> None:
        self.codes = np.asarray(codes, dtype=np.int64)
        if self.codes.ndim != 2 or len(self.codes) == 0:
            raise SearchError(f"codes must be a non-empty (n, L) int array, got shape {self.codes.shape}")
        self.n = len(self.codes)
        self.rng = np.random.default_rng(seed)
        self.asked = np.zeros(self.n, dtype=bool)
        self.values: dict[int, float] = {}

    @abstractmethod
    def _next(self) -> int:
        """The next candidate (not asked before)."""

    def ask(self) -> int:
        """Index of the next candidate to evaluate."""
        if self.asked.all():
            raise SearchError(f"{self.name}: every candidate has been evaluated")
        index = int(self._next())
        if self.asked[index]:  # pragma: no cover - guarded by each implementation
            raise SearchError(f"{self.name} proposed candidate {index} twice")
        self.asked[index] = True
        return index

    def tell(self, index: int, value: float | None) -> None:
        """Record the value of an asked candidate (``None``/NaN: failed, treated as very bad)."""
        v = -math.inf if value is None or not math.isfinite(float(value)) else float(value)
        self.values[int(index)] = v

    def _random_unasked(self) -> int:
        free = np.flatnonzero(~self.asked)
        return int(free[self.rng.integers(len(free))])

    # -- neighbourhoods on codes -------------------------------------------------------------------------
    def _lookup(self) -> dict[tuple[int, ...], int]:
        table = getattr(self, "_table", None)
        if table is None:
            table = {tuple(row): i for i, row in enumerate(self.codes.tolist())}
            self._table: dict[tuple[int, ...], int] = table
        return table

    def neighbours(self, index: int) -> list[int]:
        """Candidates differing from ``index`` in exactly one position (those that exist in the space)."""
        table = self._lookup()
        row = self.codes[index].tolist()
        out = []
        for j in range(self.codes.shape[1]):
            for v in range(int(self.codes[:, j].max()) + 1):
                if v == row[j]:
                    continue
                cand = list(row)
                cand[j] = v
                k = table.get(tuple(cand))
                if k is not None:
                    out.append(k)
        return out

    def _mutate(self, index: int, tries: int = 50) -> int:
        """A random unasked one-position neighbour of ``index``; a random unasked candidate if none."""
        for _ in range(tries):
            neigh = self.neighbours(index)
            free = [k for k in neigh if not self.asked[k]]
            if free:
                return int(free[self.rng.integers(len(free))])
            if not neigh:
                break
            index = int(neigh[self.rng.integers(len(neigh))])  # walk on and mutate again
        return self._random_unasked()


class RandomSearch(Strategy):
    """Uniformly random order without replacement."""

    name = "random"

    def _next(self) -> int:
        return self._random_unasked()


class RegularizedEvolution(Strategy):
    """Aging evolution: tournament of ``sample_size`` from a population of ``population_size``.

    Args:
        population_size: members kept (the first ones are random).
        sample_size: tournament size.
    """

    name = "evolution"

    def __init__(self, codes: np.ndarray, seed: int = 0, population_size: int = 20, sample_size: int = 5) -> None:
        super().__init__(codes, seed)
        self.population_size = int(population_size)
        self.sample_size = int(sample_size)
        self.population: list[int] = []

    def _next(self) -> int:
        if len(self.values) < self.population_size:
            return self._random_unasked()
        pop = self.population[-self.population_size:]
        picks = self.rng.choice(len(pop), size=min(self.sample_size, len(pop)), replace=False)
        parent = max((pop[int(k)] for k in picks), key=lambda i: self.values[i])
        return self._mutate(parent)

    def tell(self, index: int, value: float | None) -> None:
        super().tell(index, value)
        self.population.append(int(index))


class LocalSearch(Strategy):
    """Best-improvement hill climbing over one-position neighbours, restarting at random at a local optimum.

    The unevaluated neighbours of the current centre are evaluated in random order; when none is left,
    the search moves to the best neighbour if it beats the centre, else restarts from a random candidate.
    """

    name = "local_search"

    def __init__(self, codes: np.ndarray, seed: int = 0) -> None:
        super().__init__(codes, seed)
        self.center: int | None = None
        self.queue: list[int] = []
        self._starting: int | None = None

    def _next(self) -> int:
        while True:
            if self.center is None:
                self._starting = self._random_unasked()
                return self._starting
            self.queue = [k for k in self.queue if not self.asked[k]]
            if self.queue:
                return self.queue.pop(0)
            neigh = [k for k in self.neighbours(self.center) if k in self.values]
            best = max(neigh, key=lambda i: self.values[i], default=None)
            if best is not None and self.values[best] > self.values[self.center]:
                self.center = best
                self.queue = self._fresh_neighbours(best)
            else:
                self.center = None

    def _fresh_neighbours(self, index: int) -> list[int]:
        neigh = [k for k in self.neighbours(index) if not self.asked[k]]
        return [neigh[int(k)] for k in self.rng.permutation(len(neigh))]

    def tell(self, index: int, value: float | None) -> None:
        super().tell(index, value)
        if self._starting == int(index):
            self._starting = None
            self.center = int(index)
            self.queue = self._fresh_neighbours(int(index))


class TPESearch(Strategy):
    """Optuna's TPE sampler with one categorical parameter per encoding position.

    A proposal that exists but was evaluated already is answered from memory (no evaluation spent);
    after ``max_repeats`` such answers in a row, or for a combination outside the space, a random
    unevaluated candidate is taken instead.

    Args:
        n_startup_trials: random trials before TPE takes over.
        multivariate: Optuna's multivariate TPE.
        max_repeats: see above.
    """

    name = "tpe"

    def __init__(self, codes: np.ndarray, seed: int = 0, n_startup_trials: int = 10, multivariate: bool = True,
                 max_repeats: int = 20) -> None:
        super().__init__(codes, seed)
        import warnings

        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup_trials,
                                                 multivariate=multivariate)
        self.study = optuna.create_study(direction="maximize", sampler=sampler)
        self.distributions: dict[str, optuna.distributions.BaseDistribution] = {
            f"p{j}": optuna.distributions.CategoricalDistribution(list(range(int(self.codes[:, j].max()) + 1)))
            for j in range(self.codes.shape[1])
        }
        self.max_repeats = int(max_repeats)
        self._trial: Any = None

    def _next(self) -> int:
        import warnings

        import optuna

        table = self._lookup()
        for _ in range(self.max_repeats):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                trial = self.study.ask(self.distributions)
            key = tuple(int(trial.params[f"p{j}"]) for j in range(self.codes.shape[1]))
            index = table.get(key)
            if index is None:  # a combination the (filtered) space does not hold
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
                continue
            if not self.asked[index]:
                self._trial = trial
                return index
            self.study.tell(trial, self._told_value(index))  # known already: answered from memory
        index = self._random_unasked()
        self.study.enqueue_trial({f"p{j}": int(self.codes[index, j]) for j in range(self.codes.shape[1])})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._trial = self.study.ask(self.distributions)
        return index

    def _told_value(self, index: int) -> float:
        v = self.values.get(index, -1e12)
        return v if math.isfinite(v) else -1e12

    def tell(self, index: int, value: float | None) -> None:
        super().tell(index, value)
        v = self._told_value(int(index))
        if self._trial is not None:
            self.study.tell(self._trial, v)
            self._trial = None
        else:
            import optuna

            self.study.add_trial(optuna.trial.create_trial(
                params={f"p{j}": int(self.codes[index, j]) for j in range(self.codes.shape[1])},
                distributions=self.distributions, value=v,
            ))


class DescendingMetric(Strategy):
    """Candidates in descending order of ``metric`` (e.g. parameter count), ties in random order.

    Args:
        metric: ``(n,)`` values (NaN last).
    """

    name = "descending_params"

    def __init__(self, codes: np.ndarray, seed: int = 0, metric: Sequence[float] | np.ndarray | None = None) -> None:
        super().__init__(codes, seed)
        if metric is None:
            raise SearchError("DescendingMetric needs metric=(n,) values, e.g. the parameter counts")
        m = np.asarray(metric, dtype=np.float64)
        if m.shape != (self.n,):
            raise SearchError(f"metric has shape {m.shape}, expected ({self.n},)")
        key = np.where(np.isfinite(m), -m, np.inf)
        tiebreak = self.rng.permutation(self.n)
        self.order = np.lexsort((tiebreak, key))
        self.cursor = 0

    def _next(self) -> int:
        while self.asked[self.order[self.cursor]]:
            self.cursor += 1
        return int(self.order[self.cursor])


BASELINES: dict[str, type[Strategy]] = {
    "random": RandomSearch,
    "evolution": RegularizedEvolution,
    "local_search": LocalSearch,
    "tpe": TPESearch,
    "descending_params": DescendingMetric,
}


def make_baseline(name: str, codes: np.ndarray, seed: int = 0, **options: Any) -> Strategy:
    """A baseline by name (see :data:`BASELINES`)."""
    if name not in BASELINES:
        raise SearchError(f"unknown baseline {name!r}; choose one of {sorted(BASELINES)}")
    return BASELINES[name](codes, seed, **options)


def run_strategy(
    strategy: Strategy,
    evaluate: Callable[[int], float | None],
    budget: int,
    *,
    stop: Callable[[int, float | None], bool] | None = None,
) -> list[tuple[int, float | None]]:
    """Run a strategy for ``budget`` evaluations (or until ``stop(index, value)`` is true).

    Args:
        strategy: the baseline.
        evaluate: ``evaluate(index) -> value`` (an exception counts as a failed evaluation).
        budget: number of evaluations.
        stop: optional early stop after an evaluation.

    Returns:
        ``[(index, value), ...]`` in evaluation order.
    """
    history: list[tuple[int, float | None]] = []
    for _ in range(int(budget)):
        if strategy.asked.all():
            break
        index = strategy.ask()
        try:
            value: float | None = float(evaluate(index))  # type: ignore[arg-type]
        except Exception as exc:  # a failed evaluation, as in SearchInstance
            logger.warning("%s: evaluation of %d failed: %s", strategy.name, index, exc)
            value = None
        strategy.tell(index, value)
        history.append((index, value))
        if stop is not None and stop(index, value):
            break
    return history
