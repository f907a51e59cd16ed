"""Shared pieces of the NAS-Bench-201 benchmark: data, spaces, pretraining cache, one run of one method.

A *run* is one (method, dataset, seed): the method proposes architectures one at a time, each
evaluation looks up the architecture's mean 200-epoch validation accuracy (the objective), and the
run stops when the best-validation architecture has been evaluated (from then on the incumbent, and so
every later figure, cannot change) or after the budget.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from examples.nb201 import INPUT_SIZE, N_CLASSES, count_flops_matrix, count_params_matrix, features, load_table
from nastune import DeepEnsemble, SearchInstance, create_search_space
from nastune.baselines import encoding_codes, make_baseline, run_strategy

ROOT = Path(__file__).resolve().parents[2]
VAR = Path(os.environ.get("NASWEB_BENCH_VAR", ROOT / "var" / "nb201"))
DATASETS = ("cifar10", "cifar100", "imagenet16")
DATASET_LABEL = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet16": "ImageNet16-120"}
BUDGET = 300
CHECKPOINTS = (25, 50, 100, 150)
LOFI_COST = 1.0 / 20.0
LOFI_SPEARMAN = 0.8
BASE_METRICS = ("params", "flops", "latency")
PROXY_METRICS = ("naswot", "log_synflow")


@dataclass(frozen=True)
class Method:
    """One row of the benchmark table."""

    name: str
    kind: str  # "bo" or a baseline name
    label: str
    metrics: tuple[str, ...] = BASE_METRICS
    simultaneous: bool = True
    pretrained: bool = True
    lofi: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    #: user-level rows: the space's feature groups ("auto" = automatic features, "encoding" = without the
    #: architecture features read from the networks)
    features: str = "auto"
    #: transfer rows: warm start from the first 100 evaluations of a CIFAR-10 user-level search
    warm_start: bool = False


#: search options shared by every nastune row (tuned on seeds >= 1000 only)
NASTUNE_OPTIONS: dict[str, Any] = {}

#: pretraining data of the user-level rows: what a user has without any benchmark knowledge
USER_METRICS = ("params", "latency")
#: evaluations of the CIFAR-10 search the transfer rows start from (issue 13: its first 100 only)
TRANSFER_EVALUATIONS = 100
#: the CIFAR-10 search of seed s that a transfer run of seed s starts from has seed s + this (another run)
TRANSFER_SEED_OFFSET = 500

METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("user", "user", "nastune, public API, user-level inputs (automatic features)", metrics=USER_METRICS),
        Method("user-nopretrain", "user", "nastune, user-level inputs, no pretraining", metrics=USER_METRICS,
               pretrained=False),
        Method("user-encoding", "user", "nastune, user-level inputs, encoding features only", metrics=USER_METRICS,
               features="encoding"),
        Method("user-ensemble", "user", "nastune, user-level inputs, fine-tuned deep ensemble (option surrogate)",
               metrics=USER_METRICS, options={"surrogate": "ensemble"}),
        Method("user-ei", "user", "nastune, user-level inputs, `acquisition=\"ei\"` (the default until 2026-11-30)",
               metrics=USER_METRICS, options={"acquisition": "ei"}),
        Method("user-gp-embedding", "user", "nastune, user-level inputs, GP on the pretrained representation",
               metrics=USER_METRICS, options={"surrogate_options": {"representation": "pretrained"}}),
        Method("user-random-init", "user", "nastune, user-level inputs, random initial design",
               metrics=USER_METRICS, options={"initial_design": "random"}),
        Method("user-diverse-init", "user", "nastune, user-level inputs, diverse (farthest-point) initial design",
               metrics=USER_METRICS, options={"initial_design": "diverse"}),
        Method("user-transfer", "user", "nastune, user-level inputs, warm start from 100 CIFAR-10 evaluations",
               metrics=USER_METRICS, warm_start=True),
        Method("nastune", "bo", "nastune (simultaneous pretraining)"),
        Method("nastune-ensemble", "bo", "nastune, fine-tuned deep ensemble (option surrogate)",
               options={"surrogate": "ensemble"}),
        Method("nastune-ei", "bo", "nastune, `acquisition=\"ei\"` (the default until 2026-11-30)",
               options={"acquisition": "ei"}),
        Method("nastune-sequential", "bo", "nastune (sequential pretraining)", simultaneous=False),
        Method("nastune-nopretrain", "bo", "nastune (no pretraining)", pretrained=False),
        Method("nastune-proxies", "bo", "nastune (+ NASWOT, synflow proxies)", metrics=BASE_METRICS + PROXY_METRICS),
        Method("nastune-multifidelity", "bo", "nastune multi-fidelity (simulated lo-fi)", lofi=True),
        Method("random", "random", "random search"),
        Method("evolution", "evolution", "regularized evolution"),
        Method("local_search", "local_search", "local search"),
        Method("tpe", "tpe", "Optuna TPE"),
        Method("descending_params", "descending_params", "descending parameter count"),
    )
}


@cache
def user_space_bundle(dataset: str, features: str = "auto", threads: int = 1) -> Path:
    """The user-level space of ``dataset``, made through the public API and saved once (no surrogate yet).

    Op-name encodings, the dataset's ``encoding_to_net`` (``benchmarks.nb201.user_space``) and
    :data:`USER_METRICS` as ``pretraining_data``; ``preprocess`` reads the architecture features from the
    networks itself (about 7 minutes on an idle core, resumable). ``features="encoding"`` skips that
    (ablation row). CIFAR-100 and ImageNet16-120 take the architecture features of the CIFAR-10 space, as
    a user who was shared that bundle would (the cells are the same; only the classifier's width differs),
    to save two passes over 15,625 networks on a busy 2-core machine.
    """
    from benchmarks.nb201.user_space import ENCODING_TO_NET, op_name_encodings
    from nastune import load_search_space

    folder = VAR / "user"
    path = folder / f"v1-{dataset}-{features}.nastune"
    if path.exists():
        return path
    folder.mkdir(parents=True, exist_ok=True)
    b = bench(dataset)
    tmp = folder / f"v1-{dataset}-{features}.partial.nastune"  # fixed name: a killed pass resumes
    space = create_search_space(f"nb201-user-{dataset}", tmp, op_name_encodings(_table().encodings),
                                ENCODING_TO_NET[dataset])
    if features == "auto" and dataset != "cifar10":
        shared = load_search_space(user_space_bundle("cifar10", "auto", threads))
        if shared.architecture_raw is None:
            raise RuntimeError("the CIFAR-10 user-level space has no architecture features")
        space.set_architecture_features(shared.architecture_raw)
    space.preprocess(pretraining_data={m: b.metrics[m] for m in USER_METRICS}, pretrain=False, progress=False,
                     architecture_features=features == "auto", threads=threads)
    os.replace(tmp, path)
    return path


def user_space(dataset: str, features: str, seed: int, pretrained: bool) -> Any:
    """The user-level space, pretrained with ``seed`` (``SearchSpace.pretrain`` defaults, cached)."""
    from safetensors.torch import load_file, save_file

    from nastune import load_search_space

    space = load_search_space(user_space_bundle(dataset, features))
    if not pretrained:
        return space
    key = f"user-v1-{dataset}-{features}-{seed}"
    folder = VAR / "pretrained"
    weights, config, info = folder / f"{key}.safetensors", folder / f"{key}.json", folder / f"{key}.info.json"
    if weights.exists() and config.exists() and info.exists():
        space.surrogate = DeepEnsemble.from_state(json.loads(config.read_text()), load_file(str(weights)))
        space.pretrain_info = json.loads(info.read_text())
        return space
    space.pretrain(seed=seed, progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    tag = f".{os.getpid()}.tmp"
    save_file(space.surrogate.state_dict(), str(weights) + tag)
    Path(str(config) + tag).write_text(json.dumps(space.surrogate.config()))
    Path(str(info) + tag).write_text(json.dumps(space.pretrain_info))
    for f in (weights, config, info):
        os.replace(str(f) + tag, f)
    return space


def transfer_source(seed: int) -> Path:
    """A finished CIFAR-10 user-level search (its first :data:`TRANSFER_EVALUATIONS` evaluations), as a file."""
    path = VAR / "transfer" / f"cifar10-{seed + TRANSFER_SEED_OFFSET}.json"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    b = bench("cifar10")
    space = user_space("cifar10", "auto", seed + TRANSFER_SEED_OFFSET, True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp.json")
    s = SearchInstance("c10-source", tmp, search_space=space, seed=seed + TRANSFER_SEED_OFFSET, progress=False,
                       hi_fi_eval=None, eval_budget=TRANSFER_EVALUATIONS)
    while True:
        proposals = s.ask(1)
        if not proposals:
            break
        for p in proposals:
            s.tell(p.index, p.fidelity, float(b.valid[p.index]))
    os.replace(tmp, path)
    return path


@dataclass
class Bench:
    """Everything a run needs about one dataset."""

    dataset: str
    valid: np.ndarray  # (n,) objective
    test: np.ndarray  # (n,)
    lofi: np.ndarray  # (n,) simulated low fidelity
    metrics: dict[str, np.ndarray]
    optimum: int
    best_test: float


@cache
def _table() -> Any:
    return load_table()


@cache
def nb201_features() -> np.ndarray:
    """``(15625, 121)`` float32: :func:`examples.nb201.features` (one-hot, path encoding, op counts)."""
    return features(_table().encodings)


def simulated_lofi(dataset: str, target: float = LOFI_SPEARMAN) -> tuple[np.ndarray, float, float]:
    """The simulated low fidelity: one training seed's validation accuracy (drawn per architecture) plus
    Gaussian noise whose std is calibrated (bisection) so Spearman(lo-fi, mean valid) ~= ``target``.

    Returns:
        ``(values (n,), noise_std, spearman)``. Deterministic (fixed seed 20240501).
    """
    t = _table()
    seeds = t.valid_acc_seeds[dataset]
    rng = np.random.default_rng(20240501)
    counts = np.isfinite(seeds).sum(1)
    pick = (rng.random(len(seeds)) * counts).astype(int)
    one_seed = seeds[np.arange(len(seeds)), pick]
    z = rng.standard_normal(len(seeds))
    mean = t.valid_acc[dataset]
    lo, hi = 0.0, 50.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        rho = spearmanr(one_seed + mid * z, mean)[0]
        lo, hi = (mid, hi) if rho > target else (lo, mid)
    std = 0.5 * (lo + hi)
    values = one_seed + std * z
    return values, std, float(spearmanr(values, mean)[0])


@cache
def bench(dataset: str) -> Bench:
    t = _table()
    valid = t.valid_acc[dataset]
    test = t.test_acc[dataset]
    metrics = {
        # analytic count of the real network (the table's column is wrong for 204 cells, NATS-Bench issue #36)
        "params": count_params_matrix(t.encodings, N_CLASSES[dataset]).astype(np.float64),
        "flops": count_flops_matrix(t.encodings, INPUT_SIZE[dataset], N_CLASSES[dataset]).astype(np.float64),
        "latency": t.latency_s[dataset].astype(np.float64),
    }
    if any(m in PROXY_METRICS for name in METHODS for m in METHODS[name].metrics):
        proxies_file = VAR / "proxies.npz"
        if proxies_file.exists():
            data = np.load(proxies_file)
            for m in PROXY_METRICS:
                metrics[m] = np.where(data["done"], data[m], np.nan)
    lofi, _, _ = simulated_lofi(dataset)
    opt = int(np.argmax(valid))
    return Bench(dataset, valid, test, lofi, metrics, opt, float(test.max()))


@cache
def base_space(dataset: str) -> Any:
    """The NB201 search space with the benchmark's feature map (no surrogate yet)."""
    space = create_search_space(
        f"nb201-{dataset}", VAR / "unused.nastune", _table().encodings, features=nb201_features()
    )
    for name, values in bench(dataset).metrics.items():
        space.profile[name] = values
    return space


def pretrained_surrogate(dataset: str, metrics: tuple[str, ...], simultaneous: bool, seed: int) -> DeepEnsemble:
    """The pretrained ensemble for (dataset, metrics, scheme, seed), cached under ``var/nb201/pretrained``."""
    from safetensors.torch import load_file, save_file

    key = f"v3-{dataset}-{'+'.join(metrics)}-{'sim' if simultaneous else 'seq'}-{seed}"
    folder = VAR / "pretrained"
    weights, config = folder / f"{key}.safetensors", folder / f"{key}.json"
    if weights.exists() and config.exists():
        return DeepEnsemble.from_state(json.loads(config.read_text()), load_file(str(weights)))
    b = bench(dataset)
    missing = [m for m in metrics if m not in b.metrics]
    if missing:
        raise RuntimeError(f"metrics {missing} are not available; run python -m benchmarks.nb201.proxies first")
    X = nb201_features()
    ens = DeepEnsemble(X.shape[1], list(metrics), n_members=5, seed=seed)
    ens.pretrain(X, {m: b.metrics[m] for m in metrics}, simultaneous=simultaneous, progress=False)
    folder.mkdir(parents=True, exist_ok=True)
    tag = f".{os.getpid()}.tmp"  # two workers may pretrain the same key: write aside, then rename
    save_file(ens.state_dict(), str(weights) + tag)
    Path(str(config) + tag).write_text(json.dumps(ens.config()))
    os.replace(str(weights) + tag, weights)
    os.replace(str(config) + tag, config)
    return ens


def incumbent_test_regret(
    b: Bench, hi_indices: list[int], positions: list[float], checkpoints: tuple[int, ...]
) -> dict[int, float]:
    """Test regret of the incumbent (best validation so far) at each checkpoint.

    Args:
        hi_indices: high-fidelity evaluations in order; positions: the x value of each (evaluations or
            budget units); checkpoints: x values to report (a run that stopped earlier keeps its last incumbent).
    """
    out: dict[int, float] = {}
    for c in checkpoints:
        seen = [i for i, x in zip(hi_indices, positions, strict=True) if x <= c + 1e-9]
        if not seen:
            out[c] = math.nan
            continue
        inc = max(seen, key=lambda i: b.valid[i])
        out[c] = float(b.best_test - b.test[inc])
    return out


def ask_tell_until(search: SearchInstance, b: Bench, is_optimum: Callable[[int], bool]) -> list[float]:
    """Ask ``search`` for one proposal at a time and tell it its value from ``b`` until a high-fidelity
    evaluation is an optimum (``is_optimum(index)``) or the search proposes nothing more (budget spent).

    A high-fidelity proposal is told ``b.valid``, a low-fidelity one ``b.lofi``. Returns the wall seconds of
    each ``ask`` after the initial design (the BO steps; asks whose proposals are ``"initial"`` are not timed).
    """
    bo_seconds: list[float] = []
    found = False
    while not found:
        t0 = time.perf_counter()
        proposals = search.ask(1)
        dt = time.perf_counter() - t0
        if not proposals:
            break
        if proposals[0].reason != "initial":
            bo_seconds.append(dt)
        for p in proposals:
            value = b.valid[p.index] if p.fidelity == "hi" else b.lofi[p.index]
            search.tell(p.index, p.fidelity, float(value))
            if p.fidelity == "hi" and is_optimum(p.index):
                found = True
    return bo_seconds


def run_one(method_name: str, dataset: str, seed: int, budget: int = BUDGET,
            options: dict[str, Any] | None = None) -> dict[str, Any]:
    """One run; returns plain data (see :mod:`benchmarks.nb201.run` for the fields)."""
    torch.set_num_threads(1)
    method = METHODS[method_name]
    b = bench(dataset)
    start = time.perf_counter()
    bo_seconds: list[float] = []
    if method.kind in ("bo", "user"):
        if method.kind == "bo":
            space = base_space(dataset)
            space.surrogate = (
                pretrained_surrogate(dataset, method.metrics, method.simultaneous, seed) if method.pretrained else None
            )
            opts = {**NASTUNE_OPTIONS, **method.options, **(options or {})}
        else:  # user level: the public API with its defaults, nothing from the benchmark but the objective
            space = user_space(dataset, method.features, seed, method.pretrained)
            opts = {**method.options, **(options or {})}
            if not method.pretrained:
                opts["pretrained"] = False
            if method.warm_start:
                opts["warm_start"] = [str(transfer_source(seed))]
        pretrained_opt = {"pretrained": method.pretrained} if method.kind == "bo" else {}
        s = SearchInstance(
            f"{method_name}-{dataset}-{seed}", None, search_space=space, seed=seed, progress=False,
            hi_fi_cost=1.0, lo_fi_cost=LOFI_COST if method.lofi else None, eval_budget=budget,
            **pretrained_opt, **opts,
        )
        bo_seconds = ask_tell_until(s, b, lambda i: i == b.optimum)
        hist = s.history
        hi = [(h["index"], u) for h, u in zip(hist, np.cumsum([h["budget_units"] for h in hist]), strict=True)
              if h["fidelity"] == "hi"]
        n_lo = sum(1 for h in hist if h["fidelity"] == "lo")
    else:
        codes = encoding_codes(_table().encodings)
        kw: dict[str, Any] = {"metric": b.metrics["params"]} if method.kind == "descending_params" else {}
        strategy = make_baseline(method.kind, codes, seed, **kw)
        hist_b = run_strategy(strategy, lambda i: float(b.valid[i]), budget, stop=lambda i, v: i == b.optimum)
        hi = [(i, float(k + 1)) for k, (i, _) in enumerate(hist_b)]
        n_lo = 0
    return run_record(method_name, dataset, seed, budget, b, hi, n_lo, lambda i: i == b.optimum, bo_seconds, start)


def run_record(method_name: str, dataset: str, seed: int, budget: int, b: Bench, hi: list[tuple[int, float]],
               n_lo: int, is_optimum: Callable[[int], bool], bo_seconds: list[float], start: float) -> dict[str, Any]:
    """The plain data of one finished run (the fields :mod:`benchmarks.nb201.run` reads).

    Args:
        hi: ``(index, x)`` of each high-fidelity evaluation in order, x in evaluations or budget units;
            n_lo: how many low-fidelity evaluations; is_optimum: whether an index is an optimum;
            bo_seconds: :func:`ask_tell_until`'s timings (empty for a baseline); start: the run's
            ``time.perf_counter()`` at its start.
    """
    hi_idx = [i for i, _ in hi]
    positions = [float(u) for _, u in hi]
    found_at = next((u for i, u in hi if is_optimum(i)), None)
    return {
        "method": method_name,
        "dataset": dataset,
        "seed": seed,
        "budget": budget,
        "found": found_at is not None,
        "to_optimum": None if found_at is None else float(found_at),
        "hi_evaluations": len(hi),
        "lo_evaluations": n_lo,
        "regret": {str(k): v for k, v in incumbent_test_regret(b, hi_idx, positions, CHECKPOINTS).items()},
        "best_curve": _valid_curve(b, hi_idx, positions, budget),
        "bo_seconds": float(np.mean(bo_seconds)) if bo_seconds else None,
        "bo_iterations": len(bo_seconds),
        "wall_s": time.perf_counter() - start,
    }


def _valid_curve(b: Bench, hi_idx: list[int], positions: list[float], budget: int) -> list[float]:
    """Validation regret of the incumbent after 1..budget units (extended flat after an early stop)."""
    out = []
    k = 0
    best = -math.inf
    for x in range(1, budget + 1):
        while k < len(hi_idx) and positions[k] <= x + 1e-9:
            best = max(best, float(b.valid[hi_idx[k]]))
            k += 1
        out.append(float(b.valid[b.optimum] - best) if math.isfinite(best) else math.nan)
    return out
