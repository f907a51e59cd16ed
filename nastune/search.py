"""Bayesian-optimisation search over a search space: an ask/tell core, ``run_search``, JSON state, resume.

:class:`SearchInstance` keeps every decision in plain data (``to_state()``) and writes it to
``save_filename`` atomically after every evaluation, so a killed process loses at most the evaluations
in flight and ``run_search`` on the same file continues where it stopped. The web backend drives the
same core asynchronously: ``ask(n)`` proposes up to ``n`` evaluations (never one already evaluated or
in flight), workers evaluate them, ``tell(...)`` records each result in any order.

Budget. Counted in high-fidelity evaluations: a hi-fi evaluation spends 1 unit, a lo-fi evaluation
``lo_fi_cost / hi_fi_cost`` units (``eval_budget=60`` with costs 240/12: 60 hi-fi runs, or 1200 lo-fi
runs, or a mix). Evaluations in flight count against the budget when proposing; a failed evaluation
spends its full cost (it used the machine).

Each step (``ask``):

1. *Initial design*, until ``n_initial`` candidates have been evaluated or are in flight: candidates
   chosen by ``initial_design``: ``"clusters"`` (the default: the pretrained surrogate's representation of
   every candidate is split into ``n_initial`` k-means clusters and one random member of each is picked, so
   the first picks cover what the profile tells apart, in proportion to how common it is), ``"diverse"``
   (farthest-point sampling in that representation), ``"random"`` (uniform) or ``"prior"``. A search
   warm-started from earlier searches (option ``warm_start``) first tries their best results (the first
   ``warm_start_picks``, by default the whole initial design while they last), then the design's own picks.
2. *BO*: the surrogate is fitted on all observations (and, for pending evaluations, on their predicted
   means: the Kriging believer), every candidate is scored by the acquisition (UCB by default) at high
   fidelity (low fidelity while no hi-fi result exists), and the best ``n`` distinct candidates are
   proposed. After ``stall_patience`` high-fidelity results without improvement, one pick is made by
   Thompson sampling instead (exploration fallback). The surrogate (option ``surrogate``) is by default
   a Gaussian process on the candidates' features whose kernel also has a linear term on the pretrained
   ensemble's metric predictions (:mod:`nastune.gp`); ``surrogate="ensemble"`` fine-tunes the pretrained
   deep ensemble from its pretrained weights instead. ``benchmarks/results/nb201.md`` compares them.

Fidelity policy (when a low fidelity exists): *screen, then promote*. The initial design is evaluated at
low fidelity. Afterwards a candidate chosen by the acquisition that has no low-fidelity result yet is
first evaluated at low fidelity (cheap screening: its result reshapes the shared model); a chosen
candidate that already has one is evaluated at high fidelity (promotion). Low-fidelity spending is
capped at ``lo_fi_share`` of the budget; past the cap every evaluation is high fidelity. Only
high-fidelity results count for :attr:`SearchInstance.best`.

Reproducibility: every random choice of ask number ``k`` comes from ``default_rng([seed, k])`` and
the surrogate is refitted from its pretrained weights on observations sorted by candidate, so the same
seed, space and evaluator give the same history, also across a kill and resume.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm.auto import tqdm

from nastune.acquisition import (
    DEFAULT_ACQUISITION,
    Acquisition,
    ThompsonSampling,
    make_acquisition,
    select_batch,
)
from nastune.errors import EncodingError, SearchError
from nastune.objectives import FeasibilityWeighted, Goals, chebyshev_scores, ehvi_2d, non_domination_probability
from nastune.storage import (
    STATE_FORMAT,
    STATE_VERSION,
    InMemoryStorage,
    JSONFileStorage,
    SearchStorage,
    atomic_write_json,
)

if TYPE_CHECKING:
    from nastune.gp import EmbeddingGP
    from nastune.space import SearchSpace
    from nastune.surrogate import DeepEnsemble

    #: what fits the objective: the GP (default) or the fine-tuned ensemble (option ``surrogate``)
    Surrogate = DeepEnsemble | EmbeddingGP

__all__ = ["FIDELITIES", "Proposal", "SearchInstance", "atomic_write_json"]

logger = logging.getLogger("nastune")

FIDELITIES = ("hi", "lo")

#: Search options (keyword arguments of :class:`SearchInstance` beyond the named ones) and defaults.
DEFAULT_OPTIONS: dict[str, Any] = {
    "pretrained": True,  # fine-tune the space's pretrained surrogate; False = a fresh, unpretrained one
    "n_members": 5,  # ensemble size when no pretrained surrogate is used
    # "gp": a Gaussian process on the candidates' features plus a linear term on the pretrained metric
    # predictions (nastune.gp; surrogate_options choose its input); "ensemble": fine-tune the pretrained
    # deep ensemble. GP by default: fewer evaluations to the optimum with user-level inputs on every NB201
    # dataset (benchmarks/nb201/README.md)
    "surrogate": "gp",
    "surrogate_options": {},  # overrides of DeepEnsemble (fine-tuning, e.g. finetune_steps) or of DEFAULT_GP
    # "clusters": one random member of each of n_initial k-means clusters of the pretrained representation
    # (uniform random without a pretrained surrogate); "diverse": farthest points in that representation;
    # "random"; or "prior". Clusters by default: it uses what pretraining learned about the candidates without
    # assuming a direction or starting from the representation's extremes (NB201 tuning seeds 1000-1019,
    # medians C10/C100/IN16: clusters 39/45.5/120.5, diverse 59/49.5/129; nb201_initial_design.md)
    "initial_design": "clusters",
    "prior": {},  # metric -> weight: a user's belief that the objective grows with these pretraining metrics
    "acquisition_options": {},  # e.g. {"beta": 3.0} for UCB
    "stall_patience": 10,  # hi-fi results without improvement before a Thompson pick; 0 = never
    "lo_fi_share": 0.3,  # cap on the share of the budget spent at low fidelity
    "believer_steps": None,  # steps of each Kriging-believer refit (warm start); None = finetune_steps // 4
    "max_failures_in_a_row": 5,  # this many failed evaluations in a row stop the search (stop_reason); 0 = never
    "learn_from_failures": True,  # fit failed evaluations as the worst result seen, so similar candidates lose favour
    # candidates (indices or encodings) evaluated first, in this order, before the initial design's own picks:
    # the architectures a user already runs, or an earlier search's best results. They count towards n_initial;
    # all are evaluated before the BO starts even when there are more of them than n_initial. None: the first
    # n_initial of the space's transfers (SearchSpace.add_results), several interleaved; [] for none
    "initial_candidates": None,
    "warm_start": [],  # saved searches on the same encodings whose hi-fi results become pretraining targets
    # how many of the initial design are those searches' best results (None: all of it, while they last;
    # NB201 CIFAR-10 -> ImageNet16-120 tuning seeds 1000-1029: median 41 evaluations, 50 with half of it)
    "warm_start_picks": None,
    # hardware-aware goals (see nastune.objectives): {name: "max"|"min"}, first = primary; {name: (op, bound)}
    "objectives": {},
    "constraints": {},
    "reference_point": {},  # {objective: value} for the hypervolume; missing ones are computed
    "min_feasibility": 0.05,  # candidates less likely to be feasible are not proposed while others remain
    # two objectives: "membership" (probability of not being dominated by the results' front: favours
    # candidates likely on the front, however thin), "front" (share of joint posterior draws in whose
    # whole-space front the candidate lies) or "ehvi" (expected hypervolume improvement over the members)
    "pareto_acquisition": "membership",
}


def _fill_uniformly(picks: list[int], k: int, pool: np.ndarray, rng: np.random.Generator) -> list[int]:
    """``picks`` topped up to ``k`` with uniformly random, distinct members of ``pool`` not picked yet."""
    rest = np.setdiff1d(pool, picks)
    if k > len(picks) and len(rest):
        picks += [int(i) for i in rng.choice(rest, size=min(k - len(picks), len(rest)), replace=False)]
    return picks


@dataclass(frozen=True)
class Proposal:
    """One evaluation to run.

    Attributes:
        index: candidate index in the search space.
        encoding: the candidate's encoding.
        fidelity: ``"hi"`` or ``"lo"``.
        predicted_mean: the surrogate's mean for it at that fidelity (original units), ``None`` for
            initial-design picks.
        predicted_std: the surrogate's std, likewise.
        reason: ``"initial"``, ``"acquisition"``, ``"explore"`` or ``"resume"``.
    """

    index: int
    encoding: tuple
    fidelity: str
    predicted_mean: float | None = None
    predicted_std: float | None = None
    reason: str = "acquisition"


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds")


def _finite_or_none(value: Any) -> float | None:
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def _json_scalar(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


class SearchInstance:
    """A search over one search space with one objective (maximised).

    Args:
        name: a name for people.
        save_filename: JSON state file, written atomically after every evaluation; when it exists the
            search resumes from it. ``None`` keeps the state in memory only.
        search_space_filename: bundle to load the space from (alternative to ``search_space``).
        search_space: the :class:`~nastune.space.SearchSpace` (or any object with ``encodings``,
            ``features``, ``surrogate``, ``index_of`` and ``len``).
        hi_fi_eval: ``evaluator(encoding) -> float`` at high fidelity (see :mod:`nastune.evaluators`);
            ``None`` when results come through :meth:`tell` only.
        hi_fi_cost: cost of one high-fidelity evaluation (any unit, e.g. epochs).
        lo_fi_eval: optional low-fidelity evaluator.
        lo_fi_cost: cost of one low-fidelity evaluation (same unit); a low fidelity is used when
            ``lo_fi_eval`` or ``lo_fi_cost`` is given.
        seed: seed of every random choice.
        acquisition: ``"ucb"`` (default, see :data:`~nastune.acquisition.DEFAULT_ACQUISITION`), ``"ei"``,
            ``"thompson"`` or an :class:`~nastune.acquisition.Acquisition`.
        batch_size: proposals per step in :meth:`run_search` (parallel evaluations).
        n_initial: size of the initial design.
        progress: tqdm bars.
        eval_budget: budget in high-fidelity evaluations (also set by :meth:`run_search`); ``None`` = no limit.
        storage: where the configuration and evaluations live (a :class:`~nastune.storage.SearchStorage`);
            default: a :class:`~nastune.storage.JSONFileStorage` at ``save_filename``, or memory.
        **options: see :data:`DEFAULT_OPTIONS`.

    Raises:
        SearchError: bad options, or a state file that belongs to another space.
    """

    def __init__(
        self,
        name: str,
        save_filename: str | Path | None,
        search_space_filename: str | Path | None = None,
        *,
        search_space: SearchSpace | Any | None = None,
        hi_fi_eval: Callable[[tuple], float] | None = None,
        hi_fi_cost: float = 1.0,
        lo_fi_eval: Callable[[tuple], float] | None = None,
        lo_fi_cost: float | None = None,
        seed: int = 0,
        acquisition: str | Acquisition = DEFAULT_ACQUISITION,
        batch_size: int = 1,
        n_initial: int = 10,
        progress: bool = True,
        eval_budget: float | None = None,
        storage: SearchStorage | None = None,
        **options: Any,
    ) -> None:
        if search_space is None and search_space_filename is None:
            raise SearchError("give search_space_filename=... or search_space=...")
        if search_space is None:
            from nastune.space import load_search_space

            search_space = load_search_space(search_space_filename)  # type: ignore[arg-type]
        self.space = search_space
        self.search_space_filename = str(search_space_filename) if search_space_filename is not None else None
        self.save_filename = Path(save_filename) if save_filename is not None else None
        self.hi_fi_eval = hi_fi_eval
        self.lo_fi_eval = lo_fi_eval
        self.progress = bool(progress)
        if storage is not None and save_filename is not None:
            raise SearchError("give save_filename=... (a JSON file) or storage=..., not both")
        self._storage = storage if storage is not None else (
            JSONFileStorage(self.save_filename) if self.save_filename is not None else InMemoryStorage())
        existing = self._storage.load_config()
        if existing is not None:
            self._load_state(existing)
            self._apply_overrides(
                hi_fi_cost=hi_fi_cost, lo_fi_cost=lo_fi_cost, acquisition=acquisition, batch_size=batch_size,
                eval_budget=eval_budget, explicit=False,
            )
            resumable = {"max_failures_in_a_row", "learn_from_failures", "stall_patience", "believer_steps"}
            if set(options) - resumable:
                raise SearchError(f"a resumed search keeps its options; only {sorted(resumable)} may change,"
                                  f" got {sorted(set(options) - resumable)}")
            self.options.update(options)
            logger.info(
                "resuming search %r from %s: %d evaluations done, %d in flight",
                self.name, self.save_filename or type(self._storage).__name__, len(self._history), len(self._pending),
            )
        else:
            self._init_config(
                name=name, hi_fi_cost=hi_fi_cost, lo_fi_cost=lo_fi_cost, seed=seed, acquisition=acquisition,
                batch_size=batch_size, n_initial=n_initial, eval_budget=eval_budget, options=options,
            )
            self._n_asks = 0
            self._created = _now()
            self._save()
        self._setup_runtime()

    # -- configuration ----------------------------------------------------------------------------------
    def _init_config(
        self, *, name: str, hi_fi_cost: float, lo_fi_cost: float | None, seed: int,
        acquisition: str | Acquisition, batch_size: int, n_initial: int, eval_budget: float | None,
        options: Mapping[str, Any],
    ) -> None:
        if not isinstance(name, str) or not name.strip():
            raise SearchError("a search needs a non-empty name")
        unknown = set(options) - set(DEFAULT_OPTIONS)
        if unknown:
            raise SearchError(f"unknown search option(s) {sorted(unknown)}; known: {sorted(DEFAULT_OPTIONS)}")
        self.name = name
        self.seed = int(seed)
        self.n_initial = int(n_initial)
        if self.n_initial < 1:
            raise SearchError(f"n_initial must be >= 1, got {n_initial}")
        self.options: dict[str, Any] = {**DEFAULT_OPTIONS, **dict(options)}
        warm = self.options["warm_start"]
        self.options["warm_start"] = [str(warm)] if isinstance(warm, str | Path) else [str(f) for f in warm]
        self._check_options()
        self._apply_overrides(
            hi_fi_cost=hi_fi_cost, lo_fi_cost=lo_fi_cost, acquisition=acquisition, batch_size=batch_size,
            eval_budget=eval_budget, explicit=True,
        )

    def _check_options(self) -> None:
        """Refuse option values the search cannot run with (at creation and when a stored search is loaded: a
        service may store the options itself)."""
        if self.options["initial_design"] not in ("random", "diverse", "clusters", "prior"):
            raise SearchError("initial_design must be 'clusters', 'diverse', 'random' or 'prior',"
                              f" got {self.options['initial_design']!r}")
        if self.options["pareto_acquisition"] not in ("membership", "front", "ehvi"):
            raise SearchError("pareto_acquisition must be 'membership', 'front' or 'ehvi',"
                              f" got {self.options['pareto_acquisition']!r}")
        if self.options["surrogate"] not in ("ensemble", "gp"):
            raise SearchError(f"surrogate must be 'ensemble' or 'gp', got {self.options['surrogate']!r}")
        if self.options["initial_design"] == "prior" and not self.options["prior"]:
            raise SearchError("initial_design='prior' needs prior={metric: weight, ...}, e.g. {'params': 1.0}")
        if not 0.0 <= float(self.options["lo_fi_share"]) <= 1.0:
            raise SearchError("lo_fi_share must lie in [0, 1]")
        self.options["initial_candidates"] = self._candidate_indices(self.options.get("initial_candidates"))
        picks = self.options.get("warm_start_picks")
        if picks is not None and (isinstance(picks, bool) or not isinstance(picks, int) or picks < 0):
            raise SearchError("warm_start_picks must be None (the whole initial design) or an integer >= 0,"
                              f" got {picks!r}")

    def _candidate_indices(self, given: Any) -> list[int]:
        """The option ``initial_candidates`` as distinct indices of this space, in the order given (``None``: the
        first ``n_initial`` of the space's transfers)."""
        if given is None:
            from nastune.analysis import interleave_rankings

            transfers = getattr(self.space, "transfers", None) or {}
            return interleave_rankings(list(transfers.values()), limit=self.n_initial)
        if isinstance(given, str | bytes | Mapping) or not isinstance(given, Sequence | np.ndarray):
            raise SearchError("initial_candidates must be a list of encoding indices or encodings,"
                              f" got {type(given).__name__}")
        n = len(self.space)
        out: list[int] = []
        for k, item in enumerate(given):
            if isinstance(item, int | np.integer) and not isinstance(item, bool):
                index = int(item)
                if not 0 <= index < n:
                    raise SearchError(f"initial_candidates[{k}] = {index} is not an encoding index of the space"
                                      f" (0..{n - 1})")
            else:
                try:
                    index = int(self.space.index_of(item))
                except (EncodingError, TypeError, ValueError) as exc:
                    raise SearchError(f"initial_candidates[{k}]: {exc}") from exc
            if index not in out:
                out.append(index)
        return out

    def _apply_overrides(
        self, *, hi_fi_cost: float | None, lo_fi_cost: float | None, acquisition: str | Acquisition | None,
        batch_size: int | None, eval_budget: float | None, explicit: bool,
    ) -> None:
        """Set costs, acquisition, batch size and budget (on resume only the ones given differ from defaults)."""
        if explicit or hi_fi_cost not in (None, 1.0):
            hc = float(hi_fi_cost if hi_fi_cost is not None else 1.0)
            if not (math.isfinite(hc) and hc > 0):
                raise SearchError(f"hi_fi_cost must be a positive number, got {hi_fi_cost!r}")
            self.hi_fi_cost = hc
        if explicit or lo_fi_cost is not None or self.lo_fi_eval is not None:
            if lo_fi_cost is None and self.lo_fi_eval is not None and getattr(self, "lo_fi_cost", None) is None:
                raise SearchError("lo_fi_eval needs lo_fi_cost (the cost of one low-fidelity evaluation)")
            if lo_fi_cost is not None:
                lc = float(lo_fi_cost)
                if not (math.isfinite(lc) and lc > 0):
                    raise SearchError(f"lo_fi_cost must be a positive number, got {lo_fi_cost!r}")
                self.lo_fi_cost: float | None = lc
            elif explicit:
                self.lo_fi_cost = None
        if explicit or acquisition not in (None, DEFAULT_ACQUISITION):
            acq = acquisition if acquisition is not None else DEFAULT_ACQUISITION
            self._acquisition_spec = acq.name if isinstance(acq, Acquisition) else str(acq).lower()
            self._acquisition_obj = acq if isinstance(acq, Acquisition) else None
        if explicit or batch_size not in (None, 1):
            bs = int(batch_size if batch_size is not None else 1)
            if bs < 1:
                raise SearchError(f"batch_size must be >= 1, got {batch_size}")
            self.batch_size = bs
        if explicit or eval_budget is not None:
            self.budget = self._check_budget(eval_budget)

    @staticmethod
    def _check_budget(budget: float | None) -> float | None:
        if budget is None:
            return None
        b = float(budget)
        if not (math.isfinite(b) and b > 0):
            raise SearchError(f"eval_budget must be a positive number of hi-fi evaluations, got {budget!r}")
        return b

    def _setup_runtime(self) -> None:
        n = len(self.space)
        if n < 1:
            raise SearchError("the search space is empty")
        if self.options.get("warm_start"):  # transfer: pretrain again with earlier searches as sparse targets
            from nastune.space import warm_started_space

            self.space = warm_started_space(self.space, [str(f) for f in self.options["warm_start"]], seed=self.seed)
        self._features = np.asarray(self.space.features, dtype=np.float32)
        if self._features.shape[0] != n:
            raise SearchError(f"the space has {n} encodings but {self._features.shape[0]} feature rows")
        self.acquisition = (
            self._acquisition_obj
            if self._acquisition_obj is not None
            else make_acquisition(self._acquisition_spec, **dict(self.options.get("acquisition_options") or {}))
        )
        self._model: Surrogate | None = None
        self._model_key: Any = None
        self._embedding: np.ndarray | None = None
        self._clusters: np.ndarray | None = None  # k-means label of every candidate (the "clusters" design)
        self._warm_order: list[int] | None = None  # the warm-start searches' results, best first
        self._returned_models: dict[str, Surrogate] = {}  # a surrogate per evaluator-returned quantity

    @property
    def lo_fi_enabled(self) -> bool:
        """Whether this search uses a low fidelity (``lo_fi_eval`` or ``lo_fi_cost`` was given)."""
        return self.lo_fi_cost is not None

    def cost_units(self, fidelity: str) -> float:
        """Budget units (hi-fi evaluations) one evaluation at ``fidelity`` spends."""
        if fidelity == "hi":
            return 1.0
        if fidelity == "lo" and self.lo_fi_cost is not None:
            return self.lo_fi_cost / self.hi_fi_cost
        raise SearchError(f"fidelity {fidelity!r} is not used by this search; use 'hi'" + (
            " or 'lo'" if self.lo_fi_enabled else " (give lo_fi_cost to use 'lo')"))

    def _fidelity_cost(self, fidelity: str) -> float:
        return self.hi_fi_cost if fidelity == "hi" else float(self.lo_fi_cost or 0.0)

    # -- state -----------------------------------------------------------------------------------------------
    def _space_fingerprint(self) -> str | None:
        cached = getattr(self, "_fingerprint", None)
        if cached is None:
            fingerprint = getattr(getattr(self.space, "encodings", None), "fingerprint", None)
            cached = fingerprint() if callable(fingerprint) else ""
            self._fingerprint = cached
        return cached or None

    def _space_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"name": getattr(self.space, "name", None), "n": len(self.space)}
        fingerprint = self._space_fingerprint()
        if fingerprint:
            info["fingerprint"] = fingerprint
        return info

    @property
    def storage(self) -> SearchStorage:
        """Where this search's configuration and evaluations live."""
        return self._storage

    @property
    def _history(self) -> list[dict[str, Any]]:
        return self._storage.history()

    @property
    def _pending(self) -> list[dict[str, Any]]:
        return self._storage.pending()

    def to_state(self) -> dict[str, Any]:
        """The whole search as JSON-serialisable plain data (what :meth:`from_state` restores)."""
        return {
            **self._config(),
            "history": [dict(e) for e in self._history],
            "pending": [dict(p) for p in self._pending],
        }

    def _config(self) -> dict[str, Any]:
        """Everything but the evaluations (what :meth:`SearchStorage.save_config` stores)."""
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "name": self.name,
            "created": self._created,
            "updated": _now(),
            "space": self._space_info(),
            "search_space_filename": self.search_space_filename,
            "seed": self.seed,
            "acquisition": self._acquisition_spec,
            "batch_size": self.batch_size,
            "n_initial": self.n_initial,
            "hi_fi_cost": self.hi_fi_cost,
            "lo_fi_cost": self.lo_fi_cost,
            "budget": self.budget,
            "options": json.loads(json.dumps(self.options)),
            "n_asks": self._n_asks,
        }

    def _load_state(self, state: Mapping[str, Any]) -> None:
        """Restore the configuration (the evaluations stay in the storage)."""
        if state.get("format", STATE_FORMAT) != STATE_FORMAT:
            raise SearchError(f"not a nastune search state (format {state.get('format')!r})")
        if int(state.get("version", STATE_VERSION)) != STATE_VERSION:
            raise SearchError(
                f"search state version {state.get('version')!r}; this nastune reads version {STATE_VERSION}"
            )
        space = dict(state.get("space") or {})
        if int(space.get("n", len(self.space))) != len(self.space):
            raise SearchError(
                f"the saved search ran on a space of {space.get('n')} encodings, this one has {len(self.space)};"
                " open it with the same search space"
            )
        fingerprint = self._space_fingerprint()
        if space.get("fingerprint") and fingerprint and fingerprint != space["fingerprint"]:
            raise SearchError("the saved search belongs to another search space (encodings differ)")
        try:
            self.name = str(state["name"])
            self._created = str(state.get("created") or _now())
            self.search_space_filename = state.get("search_space_filename") or self.search_space_filename
            self.seed = int(state["seed"])
            self._acquisition_spec = str(state["acquisition"])
            self._acquisition_obj = None
            self.batch_size = int(state["batch_size"])
            self.n_initial = int(state["n_initial"])
            self.hi_fi_cost = float(state["hi_fi_cost"])
            self.lo_fi_cost = None if state.get("lo_fi_cost") is None else float(state["lo_fi_cost"])
            self.budget = self._check_budget(state.get("budget"))
            self.options = {**DEFAULT_OPTIONS, **dict(state.get("options") or {})}
            self._n_asks = int(state.get("n_asks", 0))
        except (KeyError, TypeError, ValueError) as exc:
            raise SearchError(f"malformed search state: {exc!r}") from exc
        self._check_options()

    def _save(self) -> None:
        self._storage.save_config(self._config())

    @classmethod
    def from_state(
        cls,
        state: Mapping[str, Any],
        search_space: SearchSpace | Any,
        *,
        save_filename: str | Path | None = None,
        hi_fi_eval: Callable[[tuple], float] | None = None,
        lo_fi_eval: Callable[[tuple], float] | None = None,
        progress: bool = False,
        **overrides: Any,
    ) -> SearchInstance:
        """Restore a search from :meth:`to_state` data.

        Args:
            state: what :meth:`to_state` returned (e.g. stored in a database).
            search_space: the same space the search ran on (checked by size and fingerprint).
            save_filename: where to keep writing the state (``None``: memory only).
            hi_fi_eval, lo_fi_eval: evaluators, when this process runs evaluations itself.
            progress: tqdm bars.
            **overrides: ``hi_fi_cost``, ``lo_fi_cost``, ``acquisition``, ``batch_size``, ``eval_budget``,
                ``seed`` (ignored: the stored seed is kept so the history stays reproducible).

        Raises:
            SearchError: the state is malformed, of another version or of another space.
        """
        unknown = set(overrides) - {"hi_fi_cost", "lo_fi_cost", "acquisition", "batch_size", "eval_budget", "seed"}
        if unknown:
            raise SearchError(f"from_state does not take {sorted(unknown)}")
        self = cls.__new__(cls)
        self.space = search_space
        self.search_space_filename = None
        self.save_filename = Path(save_filename) if save_filename is not None else None
        self._storage = InMemoryStorage(state)
        if self.save_filename is not None:
            file_storage = JSONFileStorage(self.save_filename)
            file_storage._restore(self._storage.to_state())
            self._storage = file_storage
        self.hi_fi_eval = hi_fi_eval
        self.lo_fi_eval = lo_fi_eval
        self.progress = bool(progress)
        self._load_state(state)
        if "seed" in overrides and int(overrides["seed"]) != self.seed:
            logger.warning("from_state: keeping the stored seed %d (given %s)", self.seed, overrides["seed"])
        if overrides.get("lo_fi_cost") is None and self.lo_fi_cost is not None and "lo_fi_cost" in overrides:
            overrides = {k: v for k, v in overrides.items() if k != "lo_fi_cost"}
        self._apply_overrides(
            hi_fi_cost=overrides.get("hi_fi_cost"),
            lo_fi_cost=overrides.get("lo_fi_cost"),
            acquisition=overrides.get("acquisition"),
            batch_size=overrides.get("batch_size"),
            eval_budget=overrides.get("eval_budget"),
            explicit=False,
        )
        self._setup_runtime()
        self._save()
        return self

    # -- read-only views -------------------------------------------------------------------------------------
    @property
    def history(self) -> list[dict[str, Any]]:
        """Every finished evaluation in order: ``index``, ``encoding``, ``fidelity``, ``value`` (``None`` if
        failed), ``error``, ``cost`` (user units), ``budget_units``, ``duration_s``, ``finished_at``, ``ask``
        (the ask number that proposed it), ``predicted_mean``, ``predicted_std``, ``reason``."""
        return [dict(e) for e in self._history]

    @property
    def pending(self) -> list[dict[str, Any]]:
        """Evaluations proposed by :meth:`ask` and not yet told: ``index``, ``encoding``, ``fidelity``, ..."""
        return [dict(p) for p in self._pending]

    @property
    def spent(self) -> float:
        """Budget units (hi-fi evaluations) spent by finished evaluations, failed ones included."""
        return self._storage.spent()

    @property
    def pending_cost(self) -> float:
        """Budget units of the evaluations in flight."""
        return float(sum(self.cost_units(p["fidelity"]) for p in self._pending))

    @property
    def remaining(self) -> float:
        """Budget units left for new proposals (``inf`` without a budget)."""
        if self.budget is None:
            return math.inf
        return self.budget - self.spent - self.pending_cost

    @property
    def best(self) -> tuple[tuple, float] | None:
        """``(encoding, value)`` of the best successful high-fidelity evaluation, ``None`` before one; with
        ``constraints``, the best feasible one."""
        best = self._incumbent()
        if best is None:
            return None
        return self._encoding(int(best["index"])), float(best["value"])

    @property
    def best_index(self) -> int | None:
        """Space index of :attr:`best`, ``None`` before the first high-fidelity result."""
        best = self._incumbent()
        return None if best is None else int(best["index"])

    def best_curve(self) -> dict[str, list[Any]]:
        """The best value found so far after every evaluation (:func:`nastune.analysis.best_curve`)."""
        from nastune.analysis import best_curve

        return best_curve(self._history)

    # -- hardware-aware goals (nastune.objectives) -------------------------------------------------------------
    @property
    def goals(self) -> Goals:
        """The objectives and constraints of this search (options ``objectives``, ``constraints``, ...)."""
        key = json.dumps([self.options.get(k) for k in ("objectives", "constraints", "reference_point",
                                                         "min_feasibility")], default=str)
        if getattr(self, "_goals_key", None) != key:
            self._goals = Goals(self.options.get("objectives"), self.options.get("constraints"),
                                self.options.get("reference_point"), self.options.get("min_feasibility", 0.05))
            self._goals_key = key
        return self._goals

    def metric_lookup(self, name: str) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
        """What the space knows about metric ``name`` for every candidate: ``(exact, mean, std)``, each ``(n,)``
        or ``None``: the profiled / uploaded values (NaN where not measured) and the pretrained ensemble's
        prediction."""
        cache: dict[str, Any] | None = getattr(self, "_metric_cache", None)
        if cache is None:
            cache = {}
            self._metric_cache: dict[str, Any] = cache
        if name not in cache:
            profile = getattr(self.space, "profile", None) or {}
            exact = np.asarray(profile[name], dtype=float) if name in profile else None
            mean = std = None
            base = getattr(self.space, "surrogate", None)
            if base is not None and name in getattr(base, "metric_names", ()):
                mean, std = base.predict_metrics(self._features)[name]
            cache[name] = (exact, mean, std)
        return cache[name]

    def _incumbent(self) -> dict[str, Any] | None:
        if not self.goals.constraints:
            return self._storage.incumbent("hi")
        best: dict[str, Any] | None = None
        for record in self._history:
            value = record.get("value")
            if record.get("fidelity") == "hi" and value is not None and (best is None or value > best["value"]) \
                    and self.goals.feasible(record, self.metric_lookup):
                best = record
        return None if best is None else dict(best)

    def feasibility(self) -> np.ndarray:
        """``(n,)`` probability that each candidate meets every constraint, from measured metrics and the
        ensemble's prediction (1 without constraints)."""
        return self.goals.feasibility(len(self.space), self.metric_lookup)

    def write_csv(self, path: str | Path) -> Path:
        """Write the history as CSV, one row per evaluation, with a column per objective and constraint
        (see :func:`nastune.objectives.history_rows`); returns the path."""
        import csv

        from nastune.objectives import history_rows

        header, rows = history_rows(self._history, self.goals, self.metric_lookup)
        target = Path(path)
        with target.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        return target

    def pareto_progress(self, reference: Sequence[float] | None = None) -> dict[str, Any]:
        """Dominated hypervolume after every evaluation and the feasible front so far (plain data, see
        :meth:`nastune.objectives.Goals.progress`); ``reference`` in the objectives' original units."""
        goals = self.goals
        if not goals.objectives:
            raise SearchError("pareto_progress needs objectives={name: 'max'|'min', ...}")
        ref = None
        if reference is not None:
            ref = np.array([float(v) * goals.sign(n) for v, (n, _) in zip(reference, goals.objectives, strict=True)])
        return goals.progress(self._history, self.metric_lookup, ref)

    # -- evaluated / pending bookkeeping -----------------------------------------------------------------------
    def _done_mask(self, fidelity: str) -> np.ndarray:
        """``(n,)`` bool: finished (successful or failed) at ``fidelity``."""
        mask = np.zeros(len(self.space), dtype=bool)
        idx = [int(e["index"]) for e in self._history if e["fidelity"] == fidelity]
        if idx:
            mask[idx] = True
        return mask

    def _pending_mask(self) -> np.ndarray:
        mask = np.zeros(len(self.space), dtype=bool)
        idx = [int(p["index"]) for p in self._pending]
        if idx:
            mask[idx] = True
        return mask

    def _observations(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Results sorted by (index, fidelity), so fitting does not depend on finishing order.

        With ``learn_from_failures`` a failed evaluation counts as the worst successful result at its
        fidelity (once one exists): the surrogate then expects little of candidates like it, which steers
        the search away from a region that fails (too big for memory, an op the evaluator rejects, ...).
        """
        rows = [(int(e["index"]), e["fidelity"], float(e["value"])) for e in self._history if e["value"] is not None]
        if self.options.get("learn_from_failures", True):
            worst: dict[str, float] = {}
            for _, fidelity, value in rows:
                worst[fidelity] = min(value, worst.get(fidelity, math.inf))
            succeeded = {(index, fidelity) for index, fidelity, _ in rows}
            failed = {(int(e["index"]), e["fidelity"]) for e in self._history if e["value"] is None}
            rows += [(index, fidelity, worst[fidelity]) for index, fidelity in sorted(failed - succeeded)
                     if fidelity in worst]
        rows.sort(key=lambda r: (r[0], r[1]))
        idx = np.array([r[0] for r in rows], dtype=np.int64)
        y = np.array([r[2] for r in rows], dtype=np.float64)
        return idx, y, [r[1] for r in rows]

    # -- the surrogate -----------------------------------------------------------------------------------------
    def _fresh_model(self) -> Surrogate:
        """The objective's surrogate before any fit: the option ``surrogate`` says which kind."""
        if self.options.get("surrogate", DEFAULT_OPTIONS["surrogate"]) == "gp":
            from nastune.gp import EmbeddingGP

            base = getattr(self.space, "surrogate", None) if self.options.get("pretrained", True) else None
            # under constraints the kernel's coordinates are those of the candidates it may propose (NB201
            # constrained tuning, seeds 1000-1029, medians C10/C100/IN16: 21/52/29 against 34/66/35)
            rows = self.feasibility() >= float(self.options["min_feasibility"]) if self.goals.constraints else None
            return EmbeddingGP(base, self._features, FIDELITIES, seed=self.seed, projection_rows=rows,
                               **dict(self.options.get("surrogate_options") or {}))
        return self._fresh_ensemble()

    def _fresh_ensemble(self) -> DeepEnsemble:
        from nastune.surrogate import DeepEnsemble

        base = getattr(self.space, "surrogate", None)
        fidelities = list(FIDELITIES)
        hyper = dict(self.options.get("surrogate_options") or {})
        if self.options.get("pretrained", True) and base is not None:
            model = base.copy()
            if list(model.fidelities) != fidelities and not set(fidelities) <= set(model.fidelities):
                raise SearchError(f"the space's surrogate has fidelities {model.fidelities}; expected hi and lo")
            model.hyper.update(hyper)
            return model
        if self.options.get("pretrained", True) and base is None:
            logger.warning("search %r: the space has no pretrained surrogate; starting from an unpretrained one",
                           getattr(self, "name", "?"))
        return DeepEnsemble(
            self._features.shape[1], [], fidelities, n_members=int(self.options["n_members"]), seed=self.seed,
            **hyper,
        )

    def _fit(self, rng: np.random.Generator, extra: Sequence[tuple[int, str, float]] = ()) -> Surrogate | None:
        """Fine-tune on all observations plus ``extra`` believed ones; ``None`` without observations."""
        idx, y, fids = self._observations()
        if extra:
            idx = np.concatenate([idx, np.array([e[0] for e in extra], dtype=np.int64)])
            y = np.concatenate([y, np.array([e[2] for e in extra])])
            fids = fids + [e[1] for e in extra]
        if len(idx) == 0:
            return None
        if self._model is None:
            self._model = self._fresh_model()
        self._model.fit(self._features[idx], y, fids, seed=int(rng.integers(2**31)))
        return self._model

    def _target_fidelity(self) -> str:
        has_hi = any(e["fidelity"] == "hi" and e["value"] is not None for e in self._history)
        return "hi" if has_hi or not self.lo_fi_enabled else "lo"

    @property
    def stop_reason(self) -> str | None:
        """Why the search stopped early, ``None`` while it may go on: the last ``max_failures_in_a_row``
        finished evaluations all failed (a broken evaluator must not burn the whole budget)."""
        limit = int(self.options.get("max_failures_in_a_row") or 0)
        history = self._history
        if limit <= 0 or len(history) < limit or any(e["value"] is not None for e in history[-limit:]):
            return None
        last = str(history[-1].get("error") or "evaluation failed").strip()
        return f"{limit} evaluations failed in a row; the last error: {last}"

    # -- ask / tell ----------------------------------------------------------------------------------------------
    def ask(self, n: int = 1) -> list[Proposal]:
        """Propose up to ``n`` evaluations and record them as pending.

        Never proposes a (candidate, fidelity) already evaluated or in flight, nor one that would
        overspend the budget (evaluations in flight included). Returns fewer (possibly none) when the
        budget or the space is exhausted, and none once :attr:`stop_reason` is set.

        Args:
            n: how many evaluations may start now.

        Returns:
            The proposals, in order.
        """
        n = int(n)
        if n < 1 or self.stop_reason is not None:
            return []
        rng = np.random.default_rng([self.seed, self._n_asks])
        ask_number = self._n_asks
        proposals = self._propose(n, rng, ask_number)
        if not proposals:  # nothing changes: a later ask (e.g. after a budget increase) draws the same numbers
            return []
        with self._storage.batch():  # proposals and the ask counter are written together
            self._n_asks += 1
            self._storage.create_pending([
                    {
                        "index": p.index,
                        "encoding": list(p.encoding),
                        "fidelity": p.fidelity,
                        "ask": ask_number,
                        "asked_at": _now(),
                        "predicted_mean": p.predicted_mean,
                        "predicted_std": p.predicted_std,
                        "reason": p.reason,
                    }
                for p in proposals
            ])
            self._save()
        return proposals

    def _affordable(self, fidelity: str, planned: float) -> bool:
        return self.remaining - planned - self.cost_units(fidelity) >= -1e-9

    def _lo_share_left(self, planned_lo: float) -> bool:
        if self.budget is None:
            return True
        lo_spent = sum(float(e["budget_units"]) for e in self._history if e["fidelity"] == "lo")
        lo_pending = sum(self.cost_units("lo") for p in self._pending if p["fidelity"] == "lo")
        cap = float(self.options["lo_fi_share"]) * self.budget
        return lo_spent + lo_pending + planned_lo + self.cost_units("lo") <= cap + 1e-9

    def _encoding(self, index: int) -> tuple:
        return tuple(_json_scalar(v) for v in self.space.encodings[int(index)])

    def _propose(self, n: int, rng: np.random.Generator, ask_number: int) -> list[Proposal]:
        N = len(self.space)
        hi_done = self._done_mask("hi")
        lo_done = self._done_mask("lo") if self.lo_fi_enabled else np.zeros(N, dtype=bool)
        failed = np.zeros(N, dtype=bool)
        failed_idx = [int(e["index"]) for e in self._history if e["value"] is None]
        failed_idx += [int(i) for i in (getattr(self.space, "failures", None) or {})]
        if failed_idx:
            failed[failed_idx] = True  # failed once (evaluation or profiling): never proposed again
        available = ~(hi_done | self._pending_mask() | failed)
        p_feasible = self._feasibility_now(rng) if self.goals.constraints else None
        if p_feasible is not None:  # nothing almost surely infeasible is proposed while others remain
            available = self.goals.proposable(p_feasible, available)
        proposals: list[Proposal] = []
        spend = {"all": 0.0, "lo": 0.0}

        def fidelity_for(index: int) -> str | None:
            # screen, then promote (see the module docstring)
            if self.lo_fi_enabled and not lo_done[index] and self._lo_share_left(spend["lo"]) \
                    and self._affordable("lo", spend["all"]):
                return "lo"
            if self._affordable("hi", spend["all"]):
                return "hi"
            return None

        def add(index: int, reason: str, mean: float | None = None, std: float | None = None,
                target: str | None = None) -> bool:
            fid = fidelity_for(index)
            if fid is None:
                return False
            if target is not None and fid != target:
                mean = std = None  # predicted at the other fidelity; filled below when the model knows it
            proposals.append(Proposal(index, self._encoding(index), fid, _finite_or_none(mean),
                                      _finite_or_none(std), reason=reason))
            available[index] = False
            spend["all"] += self.cost_units(fid)
            if fid == "lo":
                spend["lo"] += self.cost_units(fid)
            return True

        # 1. initial design
        started = set(self._started())
        # named candidates lengthen the design only while they can still be proposed (or have been)
        named = sum(1 for i in self.options["initial_candidates"] if available[i] or i in started)
        n_init_left = max(0, max(self.n_initial, named) - len(started))
        if n_init_left > 0:
            for index in self._initial_picks(min(n, n_init_left), available & ~lo_done, rng):
                if not add(index, "initial"):
                    return proposals
            if len(proposals) >= n:
                return proposals

        # 2. BO on the fine-tuned surrogate
        if not available.any():
            return proposals
        model = self._fit(rng)
        if model is None:  # nothing observed yet (all in flight or failed): keep filling the initial design
            for index in self._initial_picks(n - len(proposals), available & ~lo_done, rng):
                if not add(index, "initial"):
                    break
            return proposals
        target = self._target_fidelity()
        X = self._features
        obs_idx, obs_y, obs_f = self._observations()
        in_flight = [(int(p["index"]), str(p["fidelity"])) for p in self._pending]
        in_flight += [(p.index, p.fidelity) for p in proposals]
        believed = self._believe(model, in_flight)

        def refit(extra: list[tuple[int, str, float]]) -> None:
            model.fit(
                X[np.concatenate([obs_idx, np.array([e[0] for e in extra], dtype=np.int64)])],
                np.concatenate([obs_y, np.array([e[2] for e in extra], dtype=np.float64)]),
                obs_f + [e[1] for e in extra],
                seed=int(rng.integers(2**31)), steps=self._believer_steps(model), warm_start=True,
            )

        if believed:
            refit(believed)
        samples = model.predict_members(X, target, standardised=True)
        best = self._best_standardised(model, target)
        acquisition = self.acquisition
        reason = "acquisition"
        if self._stalled():
            acquisition, reason = ThompsonSampling(), "explore"

        def believer(picked: list[int]) -> np.ndarray:
            refit(believed + self._believe(model, [(i, target) for i in picked]))
            return model.predict_members(X, target, standardised=True)

        if self.goals.multi:
            # stalling is judged on the hypervolume: the primary objective's best alone stalls early by design
            reason = "explore" if self._pareto_stalled() else "acquisition"
            picks = self._pareto_picks(model, target, n - len(proposals), available, rng, p_feasible,
                                       explore=reason == "explore")
        else:
            if p_feasible is not None:
                best = self._best_standardised(model, target, feasible_only=True)
                acquisition = FeasibilityWeighted(acquisition, p_feasible)
            picks = select_batch(acquisition, samples, best, n - len(proposals), available, rng, refit=believer)
        if not picks:
            return proposals
        mean, std = model.predict(X[picks], target)
        first = len(proposals)
        for k, index in enumerate(picks):
            if not add(index, reason, float(mean[k]), float(std[k]), target):
                break
        for k in range(first, len(proposals)):
            p = proposals[k]
            if p.predicted_mean is None and p.fidelity in model.objective_transforms:
                mu, sd = model.predict(X[[p.index]], p.fidelity)
                proposals[k] = Proposal(p.index, p.encoding, p.fidelity, _finite_or_none(mu[0]),
                                        _finite_or_none(sd[0]), reason=p.reason)
        return proposals

    def _believer_steps(self, model: Surrogate) -> int:
        steps = self.options.get("believer_steps")
        if steps is None:
            return max(10, int(model.hyper.get("finetune_steps", 0)) // 4)  # a GP has no steps to take
        return int(steps)

    def _believe(self, model: Surrogate, items: Sequence[tuple[int, str]]) -> list[tuple[int, str, float]]:
        """Kriging believer: each (index, fidelity) with the model's current mean as its value."""
        out: list[tuple[int, str, float]] = []
        for index, fid in items:
            f = fid if fid in model.objective_transforms else self._target_fidelity()
            if f not in model.objective_transforms:
                continue
            mean, _ = model.predict(self._features[[index]], f)
            out.append((int(index), f, float(mean[0])))
        return out

    def _best_standardised(self, model: Surrogate, fidelity: str, *, feasible_only: bool = False) -> float:
        values = [float(e["value"]) for e in self._history if e["fidelity"] == fidelity and e["value"] is not None
                  and (not feasible_only or self.goals.feasible(e, self.metric_lookup))]
        if not values or fidelity not in model.objective_transforms:
            return -math.inf
        return float(model.standardise([max(values)], fidelity)[0])

    def _quantity_members(self, name: str, rng: np.random.Generator, n_members: int) -> np.ndarray | None:
        """``(M, n)`` plausible values of ``name`` for every candidate, original units: for a space metric its
        measured value where known, else ``mean + std * eps_m`` of the pretrained ensemble (one draw per member);
        for a value only the evaluator returns, the members of a surrogate of the objective's kind (option
        ``surrogate``) fitted on the results so far (``None`` before two results)."""
        exact, mean, std = self.metric_lookup(name)
        if exact is not None or mean is not None:
            if mean is None or std is None:
                mean, std = np.full(len(self.space), np.nan), np.zeros(len(self.space))
            members = mean[None, :] + std[None, :] * rng.standard_normal(n_members)[:, None]
            if exact is not None:
                members = np.where(np.isfinite(exact)[None, :], exact[None, :], members)
            return members
        key = (name, len(self._history))
        cache = getattr(self, "_returned_cache", {})
        if key not in cache:
            rows = sorted((int(e["index"]), float(e["objectives"][name])) for e in self._history
                          if e["fidelity"] == "hi" and e["value"] is not None and (e.get("objectives") or {}).get(name)
                          is not None and math.isfinite(float(e["objectives"][name])))
            if len(rows) < 2:
                return None
            # the primary's kind of surrogate, so their members line up; made once per quantity and refitted
            # from scratch at each step, as the objective's own model is (a GP's projection of the whole space
            # is then computed once, not at every step)
            if name not in self._returned_models:
                self._returned_models[name] = self._fresh_model()
            model = self._returned_models[name]
            idx = np.array([r[0] for r in rows], dtype=np.int64)
            model.fit(self._features[idx], np.array([r[1] for r in rows]), ["hi"] * len(rows),
                      seed=int(rng.integers(2**31)))
            self._returned_cache = {key: model.predict_members(self._features, "hi").astype(np.float64)}
            cache = self._returned_cache
        return cache[key]

    def _feasibility_now(self, rng: np.random.Generator) -> np.ndarray:
        """:meth:`feasibility`, with constraints on values only the evaluator returns predicted by an ensemble
        fine-tuned on the results so far."""
        n_members = int(getattr(getattr(self.space, "surrogate", None), "n_members", 0) or self.options["n_members"])

        def lookup(name: str) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
            found = self.metric_lookup(name)
            if found[0] is not None or found[1] is not None:
                return found
            members = self._quantity_members(name, rng, n_members)
            return (None, None, None) if members is None else (None, members.mean(0), members.std(0))

        return self.goals.feasibility(len(self.space), lookup)

    def _pareto_picks(self, model: Surrogate, target: str, q: int, available: np.ndarray,
                      rng: np.random.Generator, p_feasible: np.ndarray | None, *, explore: bool) -> list[int]:
        """Several objectives: with two, the probability of not being dominated by the results' front (default),
        the share of joint posterior draws whose whole-space front holds the candidate, or EHVI over the
        members (option ``pareto_acquisition``); else, or when none of these scores a candidate, a random Chebyshev
        scalarisation of one member (more, an exploration step, or when no member improves the front), times
        the feasibility probability; a batch believes each pick's mean joined the front."""
        goals = self.goals
        primary = model.predict_members(self._features, target).astype(np.float64)  # (M, n), maximised
        M, n = primary.shape
        columns = [primary]
        for name, _direction in goals.objectives[1:]:
            members = self._quantity_members(name, rng, M)
            if members is None:  # nothing known yet: this objective cannot rank candidates
                members = np.zeros((M, n))
            columns.append(members * goals.sign(name))
        S = np.stack(columns, axis=-1)  # (M, n, k)
        records = [e for e in self._history if e["fidelity"] == "hi" and e["value"] is not None
                   and goals.feasible(e, self.metric_lookup)]
        front = goals.points(records, self.metric_lookup)
        front = front[np.all(np.isfinite(front), axis=1)]
        names = [name for name, _ in goals.objectives]

        def over_the_space(name: str) -> tuple[np.ndarray | None, np.ndarray | None, None]:
            # the default reference spans what the ensemble expects over the whole space, not only the results
            # so far: the front's extremes (a very fast, inaccurate cell) lie below the results' worst value
            exact, _, _ = self.metric_lookup(name)
            return exact, S[:, :, names.index(name)].mean(0) * goals.sign(name), None

        reference = goals.reference(front, over_the_space)
        S = np.where(np.isfinite(S), S, reference)
        weight = np.ones(n) if p_feasible is None else p_feasible
        avail = available.copy()
        picks: list[int] = []
        for _ in range(q):
            if not avail.any():
                break
            scores = np.zeros(n)
            if len(goals.objectives) == 2 and not explore:
                if self.options["pareto_acquisition"] == "membership":
                    scores = non_domination_probability(S.mean(0), S.std(0), front) * weight
                elif self.options["pareto_acquisition"] == "front":
                    scores = self._front_frequency(model, target, S, avail, weight, rng) * weight
                    if not np.any(scores[avail] > 0):  # no draw puts an available candidate on the front
                        scores = non_domination_probability(S.mean(0), S.std(0), front) * weight
                else:
                    scores = ehvi_2d(S, front, reference) * weight
            if not np.any(scores[avail] > 0):
                scores = chebyshev_scores(S, front, reference, rng)
                scores = np.where(weight > 0, scores, -np.inf)
            scores = np.where(avail, scores, -np.inf)
            top = np.flatnonzero(scores == scores.max())
            choice = int(top[0] if len(top) == 1 else top[rng.integers(len(top))])
            picks.append(choice)
            avail[choice] = False
            front = np.vstack([front.reshape(-1, S.shape[2]), S[:, choice, :].mean(0)])
        return picks

    def _front_frequency(self, model: Surrogate, target: str, S: np.ndarray, avail: np.ndarray,
                         weight: np.ndarray, rng: np.random.Generator, n_samples: int = 32) -> np.ndarray:
        """Share of joint posterior draws of the primary objective in whose Pareto front over the whole space
        (against the second objective: a random member's values, exact where measured) each available
        candidate lies; the results keep their observed values in every draw. The GP draws whole functions
        (:meth:`~nastune.gp.EmbeddingGP.sample_functions`); an ensemble's members already are such draws. Where
        the GP draws none (low-fidelity results, a linear representation kernel) its pseudo-members stand in:
        the posterior mean shifted by one multiple of the std per member, not independent draws."""
        sampler = getattr(model, "sample_functions", None)
        draws = sampler(self._features, n_samples, rng) if sampler is not None else None
        if draws is None:
            draws = model.predict_members(self._features, target, standardised=True).astype(np.float64)
        his = [e for e in self._history if e["fidelity"] == "hi" and e["value"] is not None]
        if his and target in model.objective_transforms:
            idx = np.array([int(e["index"]) for e in his])
            draws[:, idx] = model.standardise(np.array([float(e["value"]) for e in his]), target)[None, :]
        counts = np.zeros(S.shape[1])
        allowed = np.flatnonzero(weight > 0)
        for draw in draws:
            second = S[int(rng.integers(S.shape[0])), allowed, 1]
            # best second objective first, ties by the primary: a candidate is on the front when its primary beats
            # every candidate before it
            order = allowed[np.lexsort((-draw[allowed], -second))]
            primary = draw[order]
            best_before = np.maximum.accumulate(np.concatenate([[-np.inf], primary[:-1]]))
            counts[order[primary > best_before]] += 1
        return np.where(avail, counts / len(draws), 0.0)

    def _pareto_stalled(self) -> bool:
        """Several objectives: the last ``stall_patience`` high-fidelity results added no hypervolume."""
        patience = int(self.options.get("stall_patience") or 0)
        his = [e for e in self._history if e["fidelity"] == "hi" and e["value"] is not None]
        if patience <= 0 or len(his) <= patience:
            return False
        curve = self.goals.progress(his, self.metric_lookup)["hypervolume"]
        return curve[-1] <= curve[-patience - 1] * (1 + 1e-9)  # equal up to rounding: no progress

    def _stalled(self) -> bool:
        patience = int(self.options.get("stall_patience") or 0)
        if patience <= 0:
            return False
        his = [e for e in self._history if e["fidelity"] == "hi" and e["value"] is not None]
        if len(his) <= patience:
            return False
        best_before = max(float(e["value"]) for e in his[:-patience])
        return all(float(e["value"]) <= best_before for e in his[-patience:])

    def _started(self) -> list[int]:
        """The candidates already evaluated (at any fidelity) or in flight, each once, in index order."""
        return sorted({int(e["index"]) for e in self._history} | {int(p["index"]) for p in self._pending})

    def _initial_picks(self, k: int, candidates: np.ndarray, rng: np.random.Generator) -> list[int]:
        pool = np.flatnonzero(candidates)
        if k <= 0 or len(pool) == 0:
            return []
        k = min(k, len(pool))
        # the user's initial candidates come first; a warm-started search then tries the earlier searches' best
        # results (the first warm_start_picks of the design), then the design's own picks
        top = [i for i in self.options["initial_candidates"] if candidates[i]][:k]
        n_warm = self.options.get("warm_start_picks")
        n_warm = self.n_initial if n_warm is None else int(n_warm)
        n_warm = min(k - len(top), max(0, n_warm - len(self._started())))
        top += [i for i in self._warm_start_order() if candidates[i] and i not in top][:n_warm]
        if len(top) == k:
            return top
        if top:
            pool = np.setdiff1d(pool, top)
        return top + self._design_picks(k - len(top), pool, rng)

    def _design_picks(self, k: int, pool: np.ndarray, rng: np.random.Generator) -> list[int]:
        """``k`` picks of the option ``initial_design`` among the candidate indices ``pool``."""
        design = self.options["initial_design"]
        if design == "random" or getattr(self.space, "surrogate", None) is None:
            return [int(i) for i in rng.choice(pool, size=k, replace=False)]
        if design == "prior":
            return self._prior_picks(k, pool, rng)
        if design == "clusters":
            return self._cluster_picks(k, pool, rng)
        return self._diverse_picks(k, pool, rng)

    def _warm_start_order(self) -> list[int]:
        """The warm-start searches' successful high-fidelity results in this space, best first (the files'
        rankings interleaved, each candidate once); empty without ``warm_start``."""
        if self._warm_order is None:
            from nastune.analysis import interleave_rankings
            from nastune.space import read_search_results

            rankings = []
            for path in self.options.get("warm_start") or []:
                results = read_search_results(path)
                idx = self.space.indices_of([enc for enc, _ in results]) if results else np.zeros(0, np.int64)
                values = np.array([v for _, v in results], dtype=np.float64)
                keep = idx >= 0
                rankings.append(idx[keep][np.argsort(-values[keep], kind="stable")].tolist())
            self._warm_order = interleave_rankings(rankings)
        return self._warm_order

    def prior_score(self) -> np.ndarray:
        """``(n,)`` the user's prior belief (option ``prior``): the weighted sum of the pretrained surrogate's
        standardised predictions of the named metrics (0 without a prior)."""
        if getattr(self, "_prior_score", None) is None:
            base = getattr(self.space, "surrogate", None)
            score = np.zeros(len(self.space))
            weights = dict(self.options.get("prior") or {})
            if base is not None and weights:
                unknown = set(weights) - set(base.metric_names)
                if unknown:
                    raise SearchError(f"prior names metric(s) {sorted(unknown)} the surrogate was not pretrained on;"
                                      f" known: {base.metric_names}")
                predicted = base.predict_metrics(self._features)
                for metric, w in weights.items():
                    score += float(w) * base.standardise_metric(metric, predicted[metric][0])
            self._prior_score = score
        return self._prior_score

    def _prior_picks(self, k: int, pool: np.ndarray, rng: np.random.Generator) -> list[int]:
        """Initial design from the prior: the first half of ``n_initial`` are the candidates the prior ranks
        highest (ties in random order), the rest uniformly random, so the model also sees contrast."""
        n_top = max(0, (self.n_initial + 1) // 2 - len(self._started()))
        score = self.prior_score()[pool]
        order = pool[np.lexsort((rng.random(len(pool)), -score))]
        return _fill_uniformly([int(i) for i in order[: min(k, n_top)]], k, pool, rng)

    def _pretrained_embedding(self) -> np.ndarray:
        """``(n, h)`` the pretrained members' mean representation of every candidate (computed once)."""
        if self._embedding is None:
            base = self.space.surrogate
            if base is None:
                raise SearchError(f"the {self.options['initial_design']} initial design needs a pretrained surrogate")
            emb = base.embed(self._features, pretrained=True)  # (M, n, h)
            self._embedding = emb.mean(0).astype(np.float32)
        return self._embedding

    def _cluster_picks(self, k: int, pool: np.ndarray, rng: np.random.Generator) -> list[int]:
        """Stratified random picks: the pretrained representation of the candidates is split into
        ``n_initial`` k-means clusters (fixed for the search's seed, fitted on the candidates proposable at
        the first call, so a constrained search spreads its design over the feasible ones); each pick is a
        uniformly random member of a cluster that holds no chosen candidate yet, largest clusters first."""
        from sklearn.cluster import KMeans

        emb = self._pretrained_embedding()
        if self._clusters is None:  # fitted on the first pool: under constraints, the feasible candidates
            fit_rng = np.random.default_rng([self.seed, 0x6B6D])
            sample = pool
            if len(sample) > 20000:  # k-means on a random sub-sample keeps this fast on huge spaces
                sample = np.sort(fit_rng.choice(sample, size=20000, replace=False))
            km = KMeans(n_clusters=min(self.n_initial, len(sample)), n_init=3,
                        random_state=int(fit_rng.integers(2**31 - 1))).fit(emb[sample])
            self._clusters = km.predict(emb).astype(np.int64)
        labels = self._clusters
        chosen = self._started()
        covered = set(labels[chosen].tolist())
        pool_labels = labels[pool]
        sizes = np.bincount(pool_labels, minlength=int(labels.max()) + 1)
        picks: list[int] = []
        for c in np.argsort(-sizes, kind="stable"):
            if len(picks) == k:
                break
            members = pool[pool_labels == c]
            if c in covered or not len(members):
                continue
            picks.append(int(rng.choice(members)))
        # every cluster covered (a resumed or batched design): uniform picks fill up
        return _fill_uniformly(picks, k, pool, rng)

    def _diverse_picks(self, k: int, pool: np.ndarray, rng: np.random.Generator) -> list[int]:
        """Farthest-point sampling in the pretrained representation, continuing from what was chosen."""
        emb = self._pretrained_embedding()
        chosen = self._started()
        if len(pool) > 20000:  # a random sub-pool keeps this O(k * 20000) on huge spaces
            pool = np.sort(rng.choice(pool, size=20000, replace=False))
        sub = emb[pool]
        if chosen:
            dist = np.min(((sub[:, None, :] - emb[chosen][None, :, :]) ** 2).sum(-1), axis=1)
        else:
            first = int(rng.integers(len(pool)))
            dist = ((sub - sub[first]) ** 2).sum(-1)
            picks = [int(pool[first])]
            k -= 1
            if k == 0:
                return picks
        picks = [] if chosen else picks
        for _ in range(k):
            j = int(np.argmax(dist))
            picks.append(int(pool[j]))
            dist = np.minimum(dist, ((sub - sub[j]) ** 2).sum(-1))
            dist[j] = -1.0
        return picks

    def tell(
        self,
        index: int,
        fidelity: str,
        value: float | Mapping[str, float] | None,
        *,
        error: str | None = None,
        cost: float | None = None,
        duration_s: float | None = None,
    ) -> None:
        """Record the result of one evaluation (in any order; also for ones not proposed by :meth:`ask`).

        Args:
            index: candidate index in the space.
            fidelity: ``"hi"`` or ``"lo"``.
            value: the objective (maximised); ``None`` (or non-finite) when the evaluation failed; or, with
                ``objectives`` declared, a dict of named results (``{"accuracy": 0.93, "latency_ms": 4.1}``):
                the record keeps it as ``objectives`` and its ``value`` is the primary objective, negated
                when that is minimised.
            error: why it failed (marks it failed even with a value).
            cost: cost actually spent, in the units of ``hi_fi_cost`` (default: the fidelity's cost).
            duration_s: wall time, for the record.

        Telling the same successful result twice is ignored (idempotent for retried messages); telling
        a different value for an already successful (candidate, fidelity) raises.

        Raises:
            SearchError: unknown index or fidelity, or a conflicting second result.
        """
        index = int(index)
        if not 0 <= index < len(self.space):
            raise SearchError(f"index {index} is outside the search space (0..{len(self.space) - 1})")
        units = self.cost_units(fidelity)
        value, objectives = self.goals.split_result(value)
        failed = error is not None or value is None or not math.isfinite(float(value))
        val = None if failed else float(value)  # type: ignore[arg-type]
        if val is not None:
            for e in self._history:
                if e["index"] == index and e["fidelity"] == fidelity and e["value"] is not None:
                    if e["value"] == val:
                        logger.info("search %r: result %d/%s told twice; ignored", self.name, index, fidelity)
                        return
                    raise SearchError(
                        f"candidate {index} already has a {fidelity}-fidelity result {e['value']}; got {val}"
                    )
        pend = next((p for p in self._pending if p["index"] == index and p["fidelity"] == fidelity), None)
        if failed and error is None:
            error = "the evaluator returned no finite value" if value is not None else "evaluation failed"
        spent_cost = self._fidelity_cost(fidelity) if cost is None else float(cost)
        record = {
            "index": index,
            "encoding": list(self._encoding(index)),
            "fidelity": fidelity,
            "value": val,
            "error": None if not failed else str(error),
            "cost": spent_cost,
            "budget_units": spent_cost / self.hi_fi_cost if cost is not None else units,
            "duration_s": _finite_or_none(duration_s),
            "finished_at": _now(),
            "ask": None if pend is None else pend.get("ask"),
            "predicted_mean": None if pend is None else pend.get("predicted_mean"),
            "predicted_std": None if pend is None else pend.get("predicted_std"),
            "reason": "told" if pend is None else pend.get("reason"),
        }
        if objectives is not None:
            record["objectives"] = objectives
        self._storage.finish(record)
        self._model_key = None
        if failed:
            logger.warning("search %r: evaluation %d (%s fidelity) failed: %s", self.name, index, fidelity, error)
        else:
            b = self.best
            logger.info(
                "search %r: evaluation %d: candidate %d (%s fidelity) = %.6g; best hi-fi %s; spent %.3g%s",
                self.name, len(self._history), index, fidelity, val, "none" if b is None else f"{b[1]:.6g}",
                self.spent, "" if self.budget is None else f" of {self.budget:g}",
            )

    def cancel(self, index: int, fidelity: str) -> bool:
        """Forget a pending evaluation that will never report (returns whether one was pending)."""
        return self._storage.withdraw(int(index), fidelity)

    # -- synchronous driver ----------------------------------------------------------------------------------------
    def _evaluate(self, proposal_index: int, fidelity: str) -> tuple[Any, str | None, float, float | None]:
        evaluator = self.hi_fi_eval if fidelity == "hi" else self.lo_fi_eval
        if evaluator is None:
            raise SearchError(
                f"no {fidelity}-fidelity evaluator: pass {'hi' if fidelity == 'hi' else 'lo'}_fi_eval to run the search"
            )
        encoding = self._encoding(proposal_index)
        start = time.perf_counter()
        value: Any
        try:
            result = evaluator(encoding)
            if isinstance(result, Mapping):  # several objectives: tell() splits it (see nastune.objectives)
                value, error = result, None
            else:
                number = float(result)
                value, error = number, (None if math.isfinite(number) else f"the evaluator returned {number}")
        except Exception as exc:  # any evaluator error is a failed evaluation, the search goes on
            value, error = math.nan, f"{type(exc).__name__}: {exc}"
        duration = time.perf_counter() - start
        cost_of = getattr(evaluator, "cost_of", None)
        cost = None
        if callable(cost_of):
            try:
                cost = float(cost_of(encoding))
            except Exception:  # a broken cost hook must not stop the search
                logger.exception("cost_of failed; counting the fidelity's cost")
                cost = None
        return (None if error else value), error, duration, cost

    def run_search(self, eval_budget: float | None = None, *, n_workers: int = 1) -> tuple[tuple, float] | None:
        """Run (or resume) the search until the budget or the space is exhausted.

        Evaluations left pending by a killed run are evaluated first. With ``n_workers > 1`` the batch
        of each step (``max(batch_size, n_workers)`` proposals) is evaluated in threads and told as
        results arrive; the next step starts when the whole batch is in.

        Args:
            eval_budget: total budget in high-fidelity evaluations (``None``: keep the stored one).
            n_workers: parallel evaluations.

        Returns:
            :attr:`best`.

        Raises:
            SearchError: no budget, or no evaluator for a fidelity the search needs; or the last
                ``max_failures_in_a_row`` evaluations failed (:attr:`stop_reason`; everything is saved).
        """
        if eval_budget is not None:
            self.budget = self._check_budget(eval_budget)
            self._save()
        if self.budget is None:
            raise SearchError("run_search needs eval_budget (in hi-fi evaluations)")
        if self.hi_fi_eval is None:
            raise SearchError("run_search needs hi_fi_eval")
        if self.lo_fi_enabled and self.lo_fi_eval is None:
            raise SearchError("this search has a low fidelity (lo_fi_cost); pass lo_fi_eval too")
        workers = max(1, int(n_workers))
        bar = tqdm(total=float(self.budget), initial=self.spent, desc=f"search {self.name}",
                   disable=not self.progress, unit="eval")
        try:
            # evaluations in flight when the last process died: run them first, in their order
            orphans = [(int(p["index"]), str(p["fidelity"])) for p in self._pending]
            self._run_batch(orphans, workers, bar)
            while True:
                proposals = self.ask(max(self.batch_size, workers) if workers > 1 else self.batch_size)
                if not proposals:
                    break
                self._run_batch([(p.index, p.fidelity) for p in proposals], workers, bar)
        finally:
            bar.close()
        if self.stop_reason is not None:
            raise SearchError(f"search {self.name!r} stopped: {self.stop_reason}; fix the evaluator, then resume it"
                              " with a higher max_failures_in_a_row=... (or 0: never stop)")
        return self.best

    def _run_batch(self, items: list[tuple[int, str]], workers: int, bar: Any) -> None:
        if not items:
            return
        if workers == 1 or len(items) == 1:
            for index, fid in items:
                value, error, duration, cost = self._evaluate(index, fid)
                self.tell(index, fid, value, error=error, cost=cost, duration_s=duration)
                bar.update(self._history[-1]["budget_units"])
            return
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(self._evaluate, index, fid): (index, fid) for index, fid in items}
            from concurrent.futures import as_completed

            for fut in as_completed(futures):
                index, fid = futures[fut]
                value, error, duration, cost = fut.result()
                self.tell(index, fid, value, error=error, cost=cost, duration_s=duration)
                bar.update(self._history[-1]["budget_units"])

    # -- what the surrogate believes ---------------------------------------------------------------------------
    @property
    def fitted_surrogate(self) -> DeepEnsemble | None:
        """The surrogate as fine-tuned for the last proposals (with evaluations in flight it also holds the
        Kriging believer's stand-in values for them), ``None`` before the first fit. Store it with
        :func:`nastune.checkpoint.surrogate_bytes` and pass it back to :meth:`predict` to skip a refit."""
        from nastune.surrogate import DeepEnsemble

        model = self._model  # a GP is not stored: refitting one costs less than reading a file
        return model if isinstance(model, DeepEnsemble) and model.is_fitted else None

    def predict(
        self, encodings_or_indices: Any, *, surrogate: Surrogate | None = None,
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """The fine-tuned surrogate's belief about some candidates.

        Args:
            encodings_or_indices: ``(m,)`` int indices or a list of encodings.
            surrogate: a surrogate this search fine-tuned earlier (:attr:`fitted_surrogate`, e.g. stored
                and loaded again); default: fine-tune one on the current history.

        Returns:
            ``{"hi": (mean, std), "lo": (mean, std) (when lo-fi results exist), metric: (mean, std), ...}``,
            each ``(m,)``, in original units. Before any result only the pretraining metrics are there.
        """
        idx = self._as_indices(encodings_or_indices)
        model = surrogate
        if model is None:
            obs_key = (len(self._history), self._n_asks)
            if self._model_key != obs_key:
                fitted = self._fit(np.random.default_rng([self.seed, self._n_asks, 1]))
                self._model_key = obs_key if fitted is not None else None
            model = self._model if self._model_key is not None else None
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        X = self._features[idx]
        if model is not None:
            for f in FIDELITIES:
                if f in model.objective_transforms:
                    out[f] = model.predict(X, f)
        base = getattr(self.space, "surrogate", None)
        if base is not None and base.metric_names:
            out.update(base.predict_metrics(X))
        return out

    def _as_indices(self, encodings_or_indices: Any) -> np.ndarray:
        as_indices = getattr(self.space, "_as_indices", None)
        if callable(as_indices):
            return np.asarray(as_indices(encodings_or_indices), dtype=np.int64)
        arr = np.asarray(encodings_or_indices)
        if arr.ndim == 1 and arr.dtype.kind in "iu":
            return arr.astype(np.int64)
        return np.array([self.space.index_of(tuple(e)) for e in encodings_or_indices], dtype=np.int64)

    def __repr__(self) -> str:
        b = self.best
        return (
            f"SearchInstance(name={self.name!r}, evaluations={len(self._history)}, pending={len(self._pending)},"
            f" spent={self.spent:.3g}, budget={self.budget}, best={None if b is None else b[1]})"
        )


def proposal_dict(p: Proposal) -> dict[str, Any]:
    """A :class:`Proposal` as plain data."""
    return asdict(p)
