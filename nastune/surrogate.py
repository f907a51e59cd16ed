"""The deep-ensemble surrogate: a shared trunk, one head per pretraining metric, one head per fidelity.

Every member of the ensemble is the same small MLP with its own weights::

    x (d,) -> trunk (``n_layers`` x [Linear, ReLU], width ``hidden``) -> z (hidden,)
    z -> metric heads   (one linear output per pretraining metric: params, FLOPs, latency, proxies, ...)
    z -> fidelity heads (one linear output per fidelity: ``hidden + 1`` weights each)

The members are not a Python list of modules: each weight is one tensor with a leading member axis
(``(n_members, fan_in, fan_out)``) and the forward pass is a batched matrix product, which is several
times faster than looping over small networks (``benchmarks/nb201/speed.py`` measures both).

Pretraining (:meth:`DeepEnsemble.pretrain`) fits trunk + metric heads to the profiled metrics of
every candidate, all metrics in one loss (the paper's *simultaneous* pretraining, NaN-masked), or one
metric after the other (``simultaneous=False``, the ablation). Fine-tuning (:meth:`DeepEnsemble.fit`)
starts again from the pretrained weights at every call and fits trunk (at a lower learning rate) and
fidelity heads to the objective observations; high-fidelity observations weigh more than low-fidelity
ones. Each fit first sets the fidelity heads to the ridge-regression combination of the pretrained metric
heads that best explains the observations (``head_init="metrics"``), so a search starts where the
profile points (bigger networks, better proxies, ...) and gradient steps only learn the rest.
Members differ by initialisation, bootstrap weights of the observations, optional input dropout
and an optional fixed random *prior function* (Osband et al. 2018), which keeps their spread from
collapsing where there is no data.

Targets are standardised: metrics with a heavy right tail (strictly positive and spanning more than
``log_ratio`` between their 1st and 99th percentile) are log-transformed first; the choice is
automatic unless ``log_metrics`` names the metrics. Objective values are standardised per fidelity,
by a Gaussian copula of their ranks (``objective_transform="rank"``, the default), which keeps a heavy
lower tail (networks that diverge or barely train) from dominating the fit and the spread, or by z-score.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from nastune.errors import NastuneError

__all__ = ["DEFAULT_HYPER", "DeepEnsemble"]

logger = logging.getLogger("nastune")

FORMAT_VERSION = 1

#: Default hyper-parameters; every one can be overridden by a keyword of :class:`DeepEnsemble`.
DEFAULT_HYPER: dict[str, Any] = {
    "hidden": 64,  # trunk width
    "n_layers": 2,  # trunk depth (Linear + ReLU blocks)
    "pretrain_epochs": 30,  # passes over the candidates (per metric when sequential)
    "pretrain_max_steps": 3000,  # cap on optimiser steps per pretraining phase (huge spaces)
    "pretrain_batch_size": 256,
    "pretrain_lr": 1e-3,
    "finetune_steps": 200,  # full-batch Adam steps per fit
    "finetune_lr": 1e-2,  # fidelity heads
    "trunk_lr_factor": 0.1,  # trunk learning rate = finetune_lr * trunk_lr_factor
    "frozen_layers": 0,  # first trunk layers kept exactly as pretrained while fine-tuning (faster fits)
    "weight_decay": 0.0,
    "bootstrap": True,  # Poisson(1) weights per member and observation
    "input_dropout": 0.0,  # probability of dropping an input feature while fine-tuning
    "prior_scale": 0.0,  # scale of the fixed random prior function added to the fidelity outputs
    "fidelity_weights": {"hi": 3.0, "lo": 1.0},  # loss weight per fidelity
    "head_skip": False,  # fidelity heads also see the raw features (a linear model on them besides the trunk)
    "head_init": "metrics",  # "metrics": start each fit's fidelity heads as a ridge fit on the pretrained metric heads
    "head_init_ridge": 1.0,  # ridge penalty of that fit (standardised units; the intercept is not penalised)
    "objective_transform": "rank",  # "rank" (Gaussian copula of the observed values) or "zscore"
    "log_metrics": "auto",  # "auto", or a list of metric names to log-transform
    "log_ratio": 20.0,  # auto: log a positive metric whose p99/p1 exceeds this
    "predict_chunk": 65536,  # candidates per forward pass in predict
    "train_threads": 1,  # torch threads while pretraining / fitting (small batches: 1 is fastest); None = as is
}


def _standardise_stats(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return 0.0, 1.0
    mean = float(finite.mean())
    std = float(finite.std())
    return mean, std if std > 1e-12 else 1.0


def _adam(groups: Any, **kwargs: Any) -> torch.optim.Optimizer:
    """Adam, fused on CPU when this torch supports it (about 15% faster steps on small tensors)."""
    try:
        return torch.optim.Adam(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(groups, **kwargs)


@contextlib.contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run a block with ``n`` torch threads (restored after). Training steps on small batches are
    dominated by thread synchronisation, which on a busy machine costs more than the arithmetic."""
    if n is None or int(n) == torch.get_num_threads():
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _in_train_threads(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run an ensemble method with the ensemble's ``train_threads`` torch threads (see :func:`_torch_threads`)."""

    @functools.wraps(method)
    def wrapper(self: DeepEnsemble, *args: Any, **kwargs: Any) -> Any:
        with _torch_threads(self.hyper["train_threads"]):
            return method(self, *args, **kwargs)

    return wrapper


def _fit_objective_transform(values: np.ndarray, kind: str) -> dict[str, Any]:
    """Transform of one fidelity's observations to standardised units.

    ``"zscore"``: ``(y - mean) / std``. ``"rank"``: the Gaussian copula ``Phi^-1((rank - 0.5) / m)``
    (ties share their mean rank), piecewise-linear between observed values and linear beyond them with
    the z-score slope; it keeps a heavy lower tail (diverged or degenerate networks) from dominating
    the fit and the ensemble's spread.
    """
    mean, std = _standardise_stats(values)
    if kind == "zscore" or len(values) < 3:
        return {"kind": "zscore", "mean": mean, "std": std}
    if kind != "rank":
        raise NastuneError(f"objective_transform must be 'zscore' or 'rank', got {kind!r}")
    from scipy.special import ndtri
    from scipy.stats import rankdata

    m = len(values)
    z = ndtri((rankdata(values) - 0.5) / m)
    ys, inverse = np.unique(values, return_inverse=True)
    zs = np.zeros(len(ys))
    np.add.at(zs, inverse, z)
    zs /= np.bincount(inverse)
    if len(ys) < 2:
        return {"kind": "zscore", "mean": mean, "std": std}
    return {"kind": "rank", "mean": mean, "std": std, "y": ys.tolist(), "z": zs.tolist()}


def _forward(tr: Mapping[str, Any], y: np.ndarray) -> np.ndarray:
    """Original units -> standardised units (see :func:`_fit_objective_transform`)."""
    y = np.asarray(y, dtype=np.float64)
    if tr.get("kind", "zscore") != "rank":
        return (y - tr["mean"]) / tr["std"]
    ys, zs = np.asarray(tr["y"]), np.asarray(tr["z"])
    out = np.interp(y, ys, zs)
    slope = 1.0 / tr["std"]
    out = np.where(y < ys[0], zs[0] + (y - ys[0]) * slope, out)
    return np.where(y > ys[-1], zs[-1] + (y - ys[-1]) * slope, out)


def _inverse(tr: Mapping[str, Any], z: np.ndarray) -> np.ndarray:
    """Standardised units -> original units."""
    z = np.asarray(z, dtype=np.float64)
    if tr.get("kind", "zscore") != "rank":
        return z * tr["std"] + tr["mean"]
    ys, zs = np.asarray(tr["y"]), np.asarray(tr["z"])
    out = np.interp(z, zs, ys)
    out = np.where(z < zs[0], ys[0] + (z - zs[0]) * tr["std"], out)
    return np.where(z > zs[-1], ys[-1] + (z - zs[-1]) * tr["std"], out)


def _fit_objective_transforms(y: np.ndarray, fidelity_index: np.ndarray, fidelities: Sequence[str],
                              kind: str) -> dict[str, dict[str, Any]]:
    """One transform per fidelity that has observations (``y: (m,)``, ``fidelity_index: (m,)`` into
    ``fidelities``)."""
    transforms = {}
    for k, name in enumerate(fidelities):
        sel = y[fidelity_index == k]
        if len(sel):
            transforms[name] = _fit_objective_transform(sel, kind)
    return transforms


def _standardise_objective(transforms: Mapping[str, Mapping[str, Any]], y: np.ndarray, fidelity_index: np.ndarray,
                           fidelities: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """``y: (m,)`` in original units -> ``(m,)`` standardised by its fidelity's transform, and ``(m,)`` bool:
    whether that fidelity has a transform (observations without one stay 0)."""
    yz = np.zeros(len(y))
    known = np.zeros(len(y), dtype=bool)
    for k, name in enumerate(fidelities):
        sel = fidelity_index == k
        tr = transforms.get(name)
        if tr is not None:
            yz[sel] = _forward(tr, y[sel])
            known[sel] = True
    return yz, known


def _wants_log(values: np.ndarray, ratio: float) -> bool:
    finite = values[np.isfinite(values)]
    if len(finite) < 2 or finite.min() <= 0:
        return False
    lo, hi = np.percentile(finite, [1.0, 99.0])
    return bool(hi / max(lo, 1e-300) > ratio)


class DeepEnsemble:
    """Deep-ensemble surrogate over candidate feature vectors.

    Args:
        n_features: ``d``, the width of the feature matrices passed to every method.
        metric_names: names of the pretraining targets (may be empty: no pretraining).
        fidelities: names of the objective fidelities; ``"hi"`` first by convention.
        n_members: ensemble size ``M``.
        seed: seed of the initialisation and of every random choice in pretraining.
        **hyper: overrides of :data:`DEFAULT_HYPER`.

    Shapes: ``X`` is always ``(n, d)`` float32 (numpy or torch); per-candidate outputs are ``(n,)``.
    """

    def __init__(
        self,
        n_features: int,
        metric_names: Sequence[str] = (),
        fidelities: Sequence[str] = ("hi", "lo"),
        n_members: int = 5,
        seed: int = 0,
        **hyper: Any,
    ) -> None:
        unknown = set(hyper) - set(DEFAULT_HYPER)
        if unknown:
            raise NastuneError(
                f"unknown DeepEnsemble option(s) {sorted(unknown)}; known: {sorted(DEFAULT_HYPER)}"
            )
        if int(n_features) < 1:
            raise NastuneError(f"n_features must be >= 1, got {n_features}")
        if int(n_members) < 1:
            raise NastuneError(f"n_members must be >= 1, got {n_members}")
        if not fidelities or len(set(fidelities)) != len(fidelities):
            raise NastuneError(f"fidelities must be distinct names, got {list(fidelities)}")
        if len(set(metric_names)) != len(metric_names):
            raise NastuneError(f"metric names must be distinct, got {list(metric_names)}")
        self.n_features = int(n_features)
        self.metric_names = [str(m) for m in metric_names]
        self.fidelities = [str(f) for f in fidelities]
        self.n_members = int(n_members)
        self.seed = int(seed)
        self.hyper: dict[str, Any] = {**DEFAULT_HYPER, **hyper}
        self.hyper["fidelity_weights"] = {
            **{f: 1.0 for f in self.fidelities},
            **dict(self.hyper["fidelity_weights"]),
        }
        #: metric -> {"log": bool, "mean": float, "std": float} (set by pretrain)
        self.metric_transforms: dict[str, dict[str, Any]] = {}
        #: fidelity -> {"mean": float, "std": float} of the last fit's observations
        self.objective_transforms: dict[str, dict[str, Any]] = {}
        self.pretrained = False
        self.pretrain_stats: dict[str, Any] = {}
        generator = torch.Generator().manual_seed(self.seed)
        self._base = self._init_weights(generator)
        self._prior = self._init_prior(generator)
        self._fitted: dict[str, torch.Tensor] | None = None

    # -- weights -----------------------------------------------------------------------------------
    def _linear(self, fan_in: int, fan_out: int, generator: torch.Generator, gain: float = 2.0) -> tuple[
        torch.Tensor, torch.Tensor
    ]:
        M = self.n_members
        weight = torch.randn(M, fan_in, fan_out, generator=generator) * math.sqrt(gain / fan_in)
        bias = torch.zeros(M, 1, fan_out)
        return weight, bias

    def _init_weights(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        h = int(self.hyper["hidden"])
        weights: dict[str, torch.Tensor] = {}
        fan_in = self.n_features
        for k in range(int(self.hyper["n_layers"])):
            weights[f"trunk.{k}.weight"], weights[f"trunk.{k}.bias"] = self._linear(fan_in, h, generator)
            fan_in = h
        K = max(len(self.metric_names), 1)
        weights["metric_head.weight"], weights["metric_head.bias"] = self._linear(h, K, generator, gain=1.0)
        F = len(self.fidelities)
        head_in = h + (self.n_features if self.hyper["head_skip"] else 0)
        weights["fidelity_head.weight"], weights["fidelity_head.bias"] = self._linear(head_in, F, generator, gain=1.0)
        return weights

    def _init_prior(self, generator: torch.Generator) -> dict[str, torch.Tensor]:
        # A fixed random function per member (never trained): its output, scaled by prior_scale, is
        # added to the fidelity outputs so members disagree away from the data (randomised priors).
        h = int(self.hyper["hidden"])
        w0, b0 = self._linear(self.n_features, h, generator)
        b0 = torch.randn(b0.shape, generator=generator) * 0.1
        w1, b1 = self._linear(h, len(self.fidelities), generator, gain=1.0)
        return {"prior.0.weight": w0, "prior.0.bias": b0, "prior.1.weight": w1, "prior.1.bias": b1}

    @property
    def _n_layers(self) -> int:
        return int(self.hyper["n_layers"])

    def _trunk(self, w: Mapping[str, torch.Tensor], X: torch.Tensor, *, start: int = 0, stop: int | None = None) -> (
        torch.Tensor
    ):
        """``X: (n, d)`` or ``(M, n, d)`` -> ``(M, n, hidden)`` (layers ``start`` to ``stop`` only, if given)."""
        z = X
        for k in range(start, self._n_layers if stop is None else stop):
            weight, bias = w[f"trunk.{k}.weight"], w[f"trunk.{k}.bias"]
            z = torch.relu(torch.matmul(z, weight) + bias)
        return z

    def _ensure_heads(self) -> None:
        """Re-initialise the fidelity heads when ``head_skip`` was changed after construction (the heads are
        never pretrained, so nothing learnt is lost)."""
        expected = int(self.hyper["hidden"]) + (self.n_features if self.hyper["head_skip"] else 0)
        if self._base["fidelity_head.weight"].shape[1] != expected:
            generator = torch.Generator().manual_seed(self.seed + 2)
            w, b = self._linear(expected, len(self.fidelities), generator, gain=1.0)
            self._base = {**self._base, "fidelity_head.weight": w, "fidelity_head.bias": b}
            self._fitted = None

    def _head_input(self, z: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
        """``z: (M, n, h)``, ``X: (n, d)`` or ``(M, n, d)`` -> ``(M, n, h [+ d])`` input of the fidelity heads."""
        if not self.hyper["head_skip"]:
            return z
        if X.dim() == 2:
            X = X.unsqueeze(0).expand(z.shape[0], -1, -1)
        return torch.cat([z, X], dim=-1)

    def _prior_out(self, X: torch.Tensor) -> torch.Tensor:
        """``X: (n, d)`` -> ``(M, n, F)`` scaled prior outputs."""
        p = self._prior
        z = torch.relu(torch.matmul(X, p["prior.0.weight"]) + p["prior.0.bias"])
        return (torch.baddbmm(p["prior.1.bias"], z, p["prior.1.weight"])) * float(self.hyper["prior_scale"])

    def _fidelity_out(self, w: Mapping[str, torch.Tensor], X: torch.Tensor, z: torch.Tensor | None = None) -> (
        torch.Tensor
    ):
        """``X: (n, d)`` -> ``(M, n, F)`` standardised objective predictions."""
        if z is None:
            z = self._trunk(w, X)
        out = torch.baddbmm(w["fidelity_head.bias"], self._head_input(z, X), w["fidelity_head.weight"])
        if float(self.hyper["prior_scale"]) > 0:
            out = out + self._prior_out(X if X.dim() == 2 else X[0])
        return out

    @staticmethod
    def _as_tensor(X: Any) -> torch.Tensor:
        if isinstance(X, torch.Tensor):
            return X.detach().to(torch.float32)
        return torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))

    def _check_X(self, X: Any) -> torch.Tensor:
        t = self._as_tensor(X)
        if t.dim() != 2 or t.shape[1] != self.n_features:
            raise NastuneError(
                f"feature matrix has shape {tuple(t.shape)}, expected (n, {self.n_features}); pass the space's"
                " features"
            )
        return t

    def _fidelity_index(self, fidelity: str) -> int:
        try:
            return self.fidelities.index(fidelity)
        except ValueError:
            raise NastuneError(f"unknown fidelity {fidelity!r}; this surrogate knows {self.fidelities}") from None

    # -- pretraining ----------------------------------------------------------------------------------
    def _metric_matrix(self, targets: Mapping[str, Any], n: int) -> np.ndarray:
        missing = [m for m in self.metric_names if m not in targets]
        if missing:
            raise NastuneError(f"pretraining targets lack metric(s) {missing}; give one (n,) array per metric")
        log_setting = self.hyper["log_metrics"]
        columns = []
        self.metric_transforms = {}
        for name in self.metric_names:
            values = np.asarray(targets[name], dtype=np.float64).reshape(-1)
            if len(values) != n:
                raise NastuneError(f"metric {name!r} has {len(values)} values, expected {n} (one per candidate)")
            values = np.where(np.isfinite(values), values, np.nan)
            if log_setting == "auto":
                use_log = _wants_log(values, float(self.hyper["log_ratio"]))
            elif isinstance(log_setting, bool):
                use_log = log_setting and bool(np.nanmin(values) > 0)
            else:
                use_log = name in set(log_setting)
            if use_log:
                with np.errstate(invalid="ignore", divide="ignore"):
                    values = np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)
            mean, std = _standardise_stats(values)
            self.metric_transforms[name] = {"log": use_log, "mean": mean, "std": std}
            columns.append((values - mean) / std)
        return np.stack(columns, axis=1) if columns else np.zeros((n, 0))

    @_in_train_threads
    def pretrain(
        self,
        X: Any,
        targets: Mapping[str, Any],
        *,
        simultaneous: bool = True,
        progress: bool = True,
    ) -> dict[str, Any]:
        """Fit trunk and metric heads to the pretraining metrics.

        Args:
            X: ``(n, d)`` features of the candidates.
            targets: metric -> ``(n,)`` values in original units, NaN where unknown.
            simultaneous: one loss over all metric heads (default); ``False`` trains on one metric at a
                time, in ``metric_names`` order, each for ``pretrain_epochs`` (the paper's ablation).
            progress: show a tqdm bar.

        Returns:
            Fit statistics: ``{"loss": {metric: final MSE in standardised units}, "steps": int,
            "transforms": ..., "simultaneous": bool}``.
        """
        Xt = self._check_X(X)
        n = Xt.shape[0]
        if not self.metric_names:
            raise NastuneError("this ensemble has no metric to pretrain on; pass metric_names")
        T = torch.as_tensor(self._metric_matrix(targets, n), dtype=torch.float32)
        known = torch.isfinite(T)
        if not bool(known.any()):
            raise NastuneError("every pretraining target is NaN; nothing to pretrain on")
        T = torch.nan_to_num(T, nan=0.0)
        generator = torch.Generator().manual_seed(self.seed + 1)
        weights = {k: v.clone() for k, v in self._base.items()}
        phases: list[list[int]] = (
            [list(range(len(self.metric_names)))] if simultaneous else [[k] for k in range(len(self.metric_names))]
        )
        bs = int(self.hyper["pretrain_batch_size"])
        epochs = int(self.hyper["pretrain_epochs"])
        steps_per_epoch = max(1, math.ceil(n / bs))
        steps = min(epochs * steps_per_epoch, int(self.hyper["pretrain_max_steps"]))
        total = steps * len(phases)
        bar = tqdm(total=total, desc="pretraining surrogate", disable=not progress, leave=False)
        step_count = 0
        for phase in phases:
            cols = torch.tensor(phase)
            trained = [k for k in weights if k.startswith("trunk.") or k.startswith("metric_head.")]
            for k in trained:
                weights[k].requires_grad_(True)
            optimiser = _adam([weights[k] for k in trained], lr=float(self.hyper["pretrain_lr"]))
            perm = torch.randperm(n, generator=generator)
            cursor = 0
            for _ in range(steps):
                if cursor + bs > n and cursor > 0:
                    perm = torch.randperm(n, generator=generator)
                    cursor = 0
                idx = perm[cursor : cursor + bs]
                cursor += bs
                z = self._trunk(weights, Xt[idx])
                out = torch.baddbmm(weights["metric_head.bias"], z, weights["metric_head.weight"])[..., cols]
                mask = known[idx][:, cols].to(torch.float32)
                err = (out - T[idx][:, cols]) ** 2 * mask
                loss = err.sum() / mask.sum().clamp_min(1.0)
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                step_count += 1
                bar.update(1)
            for k in trained:
                weights[k].requires_grad_(False)
        bar.close()
        self._base = {k: v.detach() for k, v in weights.items()}
        self._fitted = None
        self.pretrained = True
        final = self._metric_losses(Xt, T, known)
        self.pretrain_stats = {
            "loss": final,
            "steps": step_count,
            "simultaneous": bool(simultaneous),
            "transforms": {k: dict(v) for k, v in self.metric_transforms.items()},
        }
        logger.info(
            "pretrained %d-member ensemble on %s (%s): standardised MSE %s",
            self.n_members, ", ".join(self.metric_names), "simultaneous" if simultaneous else "sequential",
            ", ".join(f"{k}={v:.3f}" for k, v in final.items()),
        )
        return dict(self.pretrain_stats)

    def _metric_losses(self, X: torch.Tensor, T: torch.Tensor, known: torch.Tensor) -> dict[str, float]:
        """Mean over members of the standardised MSE per metric on all candidates."""
        sums = torch.zeros(len(self.metric_names))
        counts = torch.zeros(len(self.metric_names))
        chunk = int(self.hyper["predict_chunk"])
        with torch.no_grad():
            for start in range(0, X.shape[0], chunk):
                z = self._trunk(self._base, X[start : start + chunk])
                out = torch.baddbmm(self._base["metric_head.bias"], z, self._base["metric_head.weight"])
                m = known[start : start + chunk].to(torch.float32)
                sums += (((out - T[start : start + chunk]) ** 2) * m).mean(0).sum(0)
                counts += m.sum(0)
        return {
            name: float(sums[k] / max(float(counts[k]), 1.0)) for k, name in enumerate(self.metric_names)
        }

    def metric_loss(self, X: Any, targets: Mapping[str, Any]) -> dict[str, float]:
        """Standardised MSE per metric of the current (pretrained) weights on ``targets``.

        Args:
            X: ``(n, d)`` features. targets: metric -> ``(n,)`` in original units (NaN = unknown).
        """
        Xt = self._check_X(X)
        cols = []
        for name in self.metric_names:
            tr = self.metric_transforms.get(name, {"log": False, "mean": 0.0, "std": 1.0})
            values = np.asarray(targets[name], dtype=np.float64)
            if tr["log"]:
                with np.errstate(invalid="ignore", divide="ignore"):
                    values = np.where(values > 0, np.log(np.where(values > 0, values, 1.0)), np.nan)
            cols.append((values - tr["mean"]) / tr["std"])
        T = torch.as_tensor(np.stack(cols, axis=1), dtype=torch.float32)
        known = torch.isfinite(T)
        return self._metric_losses(Xt, torch.nan_to_num(T), known)

    # -- fine-tuning ----------------------------------------------------------------------------------
    @_in_train_threads
    def fit(
        self,
        X: Any,
        y: Any,
        fidelity: Sequence[str] | np.ndarray | str = "hi",
        *,
        seed: int | None = None,
        steps: int | None = None,
        warm_start: bool = False,
        progress: bool = False,
    ) -> dict[str, float]:
        """Fine-tune on objective observations, starting from the pretrained weights.

        Args:
            X: ``(m, d)`` features of the observed candidates.
            y: ``(m,)`` observed objective values (maximised; original units).
            fidelity: ``(m,)`` fidelity name of each observation, or one name for all.
            seed: seed of the bootstrap weights and dropout masks (default: the ensemble's seed).
            steps: optimiser steps (default ``finetune_steps``).
            warm_start: continue from the last fit instead of the pretrained weights (used for cheap
                Kriging-believer refits inside one batch proposal); keeps the last objective transforms.
            progress: show a tqdm bar.

        Returns:
            ``{"loss": final weighted MSE (standardised units), "n": m}``.
        """
        Xt = self._check_X(X)
        self._ensure_heads()
        yv = np.asarray(y, dtype=np.float64).reshape(-1)
        m = Xt.shape[0]
        if len(yv) != m:
            raise NastuneError(f"{len(yv)} observations for {m} feature rows")
        if m == 0:
            raise NastuneError("fit needs at least one observation")
        fids = [fidelity] * m if isinstance(fidelity, str) else [str(f) for f in fidelity]
        if len(fids) != m:
            raise NastuneError(f"{len(fids)} fidelity labels for {m} observations")
        if not np.isfinite(yv).all():
            raise NastuneError("observations must be finite; leave failed evaluations out of fit()")
        fid_idx = np.array([self._fidelity_index(f) for f in fids], dtype=np.int64)
        fresh = not (warm_start and self._fitted is not None)  # start again from the pretrained weights
        if fresh:
            self.objective_transforms = _fit_objective_transforms(
                yv, fid_idx, self.fidelities, str(self.hyper["objective_transform"]))
        yz, known_fid = _standardise_objective(self.objective_transforms, yv, fid_idx, self.fidelities)
        generator = torch.Generator().manual_seed(self.seed if seed is None else int(seed))
        M = self.n_members
        base = self._base if fresh or self._fitted is None else self._fitted
        weights = {k: v.clone() for k, v in base.items()}
        fw = self.hyper["fidelity_weights"]
        obs_w = torch.tensor([float(fw.get(f, 1.0)) for f in fids], dtype=torch.float32) * torch.as_tensor(
            known_fid, dtype=torch.float32
        )
        if self.hyper["bootstrap"] and M > 1:
            boot = torch.poisson(torch.ones(M, m), generator=generator)
            # every member must see at least something; an all-zero draw falls back to uniform weights
            empty = boot.sum(1) == 0
            boot[empty] = 1.0
        else:
            boot = torch.ones(M, m)
        W = boot * obs_w  # (M, m)
        Y = torch.as_tensor(yz, dtype=torch.float32).expand(M, m)
        onehot = torch.zeros(m, len(self.fidelities))
        onehot[torch.arange(m), torch.as_tensor(fid_idx)] = 1.0
        drop = float(self.hyper["input_dropout"])
        mask_in = None
        if drop > 0:
            mask_in = (torch.rand(M, 1, self.n_features, generator=generator) >= drop).to(torch.float32) / (1 - drop)
        if fresh and self.hyper["head_init"] == "metrics":
            self._init_heads_from_metrics(weights, Xt, yz, fid_idx, known_fid, W)
        frozen = min(int(self.hyper["frozen_layers"]), self._n_layers)
        trunk_keys = [f"trunk.{k}.{p}" for k in range(frozen, self._n_layers) for p in ("weight", "bias")]
        head_keys = ["fidelity_head.weight", "fidelity_head.bias"]
        for name in trunk_keys + head_keys:
            weights[name].requires_grad_(True)
        lr = float(self.hyper["finetune_lr"])
        groups = [{"params": [weights[name] for name in head_keys], "lr": lr}]
        if trunk_keys:
            groups.append({"params": [weights[name] for name in trunk_keys],
                           "lr": lr * float(self.hyper["trunk_lr_factor"])})
        optimiser = _adam(groups, weight_decay=float(self.hyper["weight_decay"]))
        n_steps = int(self.hyper["finetune_steps"] if steps is None else steps)
        total_w = W.sum().clamp_min(1e-12)
        Xin = Xt if mask_in is None else Xt.unsqueeze(0) * mask_in
        prior = self._prior_out(Xt) if float(self.hyper["prior_scale"]) > 0 else None
        loss_value = float("nan")
        z_frozen = None
        if frozen:  # the frozen layers' output is the same at every step: compute it once
            with torch.no_grad():
                z_frozen = self._trunk(weights, Xin, stop=frozen)
        for _ in tqdm(range(n_steps), desc="fitting surrogate", disable=not progress, leave=False):
            z = self._trunk(weights, Xin) if z_frozen is None else self._trunk(weights, z_frozen, start=frozen)
            out = torch.baddbmm(
                weights["fidelity_head.bias"], self._head_input(z, Xin), weights["fidelity_head.weight"]
            )
            if prior is not None:
                out = out + prior
            pred = (out * onehot).sum(-1)  # (M, m)
            loss = ((pred - Y) ** 2 * W).sum() / total_w
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
            loss_value = float(loss.detach())
        self._fitted = {k: v.detach() for k, v in weights.items()}
        return {"loss": loss_value, "n": m}

    def _init_heads_from_metrics(
        self,
        weights: dict[str, torch.Tensor],
        Xt: torch.Tensor,
        yz: np.ndarray,
        fid_idx: np.ndarray,
        known: np.ndarray,
        W: torch.Tensor,
    ) -> None:
        """Start the fidelity heads where the pretrained metrics point (transfer of the profile).

        The pretrained metric heads are linear in the trunk output ``z``, so any linear combination of the
        predicted metrics is itself a fidelity head: ``head = sum_j a_j * metric_head_j`` (+ intercept). Each
        member fits its coefficients ``a`` by weighted ridge regression of the standardised objective on its
        own metric predictions (with its bootstrap weights, so members differ), per fidelity; a fidelity
        without observations takes the coefficients of the first one that has some. Gradient fine-tuning
        then only has to learn what the metrics do not explain. With ``head_skip`` the heads' weights on the
        raw features start at zero (the linear model on them is learnt from the observations alone). Without
        pretraining (or metrics) nothing changes.
        """
        if not self.pretrained or not self.metric_names:
            return
        with torch.no_grad():
            z = self._trunk(weights, Xt)  # (M, m, h)
            mw, mb = weights["metric_head.weight"], weights["metric_head.bias"]  # (M, h, J), (M, 1, J)
            P = torch.baddbmm(mb, z, mw).to(torch.float64)  # (M, m, J)
            M, m, J = P.shape
            A = torch.cat([P, torch.ones(M, m, 1, dtype=torch.float64)], dim=-1)  # (M, m, J + 1)
            penalty = torch.eye(J + 1, dtype=torch.float64) * float(self.hyper["head_init_ridge"])
            penalty[J, J] = 1e-6
            y = torch.as_tensor(yz, dtype=torch.float64)
            coefs: dict[int, torch.Tensor] = {}
            for k in range(len(self.fidelities)):
                sel = torch.as_tensor((fid_idx == k) & known)
                if int(sel.sum()) < 2:
                    continue
                As, ws = A[:, sel], W[:, sel].to(torch.float64)  # (M, s, J + 1), (M, s)
                gram = As.transpose(1, 2) @ (As * ws.unsqueeze(-1)) + penalty
                rhs = As.transpose(1, 2) @ (ws * y[sel]).unsqueeze(-1)
                coefs[k] = torch.linalg.solve(gram, rhs)[..., 0]  # (M, J + 1)
            if not coefs:
                return
            fallback = next(iter(coefs.values()))
            head_w = weights["fidelity_head.weight"].clone()
            head_b = weights["fidelity_head.bias"].clone()
            h = mw.shape[1]
            for k in range(len(self.fidelities)):
                a = coefs.get(k, fallback).to(torch.float32)  # (M, J + 1)
                head_w[:, :h, k] = (mw @ a[:, :J].unsqueeze(-1))[..., 0]
                head_w[:, h:, k] = 0.0  # head_skip: the linear part on the raw features starts at nothing
                head_b[:, 0, k] = (mb[:, 0, :] * a[:, :J]).sum(-1) + a[:, J]
            weights["fidelity_head.weight"] = head_w
            weights["fidelity_head.bias"] = head_b

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` has run (else predictions use the pretrained weights)."""
        return self._fitted is not None

    def _current(self) -> dict[str, torch.Tensor]:
        return self._fitted if self._fitted is not None else self._base

    # -- prediction -----------------------------------------------------------------------------------
    def predict_members(self, X: Any, fidelity: str = "hi", *, standardised: bool = False) -> np.ndarray:
        """Every member's prediction of the objective.

        Args:
            X: ``(n, d)`` features.
            fidelity: which fidelity head.
            standardised: return the z-scored values the acquisition works on (else original units).

        Returns:
            ``(M, n)`` float32 array.
        """
        Xt = self._check_X(X)
        k = self._fidelity_index(fidelity)
        self._ensure_heads()
        w = self._current()
        chunk = int(self.hyper["predict_chunk"])
        out = np.empty((self.n_members, Xt.shape[0]), dtype=np.float32)
        with torch.no_grad():
            for start in range(0, Xt.shape[0], chunk):
                part = Xt[start : start + chunk]
                out[:, start : start + len(part)] = self._score_members(w, part, k)
        if not standardised:
            tr = self.objective_transforms.get(fidelity, {"kind": "zscore", "mean": 0.0, "std": 1.0})
            out = _inverse(tr, out).astype(np.float32)
        return out

    def _score_members(self, w: Mapping[str, torch.Tensor], X: torch.Tensor, k: int) -> np.ndarray:
        """``X: (n, d)`` -> ``(M, n)`` standardised predictions of fidelity ``k``, one member at a time.

        For many candidates a plain matrix product per member (``addmm``) is faster than the batched
        product that fine-tuning uses (measured in ``benchmarks/nb201/speed.py``), and no ``(M, n, d)`` copy
        of the candidates is made.
        """
        out = np.empty((self.n_members, X.shape[0]), dtype=np.float32)
        prior = self._prior_out(X)[..., k] if float(self.hyper["prior_scale"]) > 0 else None
        skip = bool(self.hyper["head_skip"])
        for m in range(self.n_members):
            z = X
            for layer in range(self._n_layers):
                z = torch.relu(torch.addmm(w[f"trunk.{layer}.bias"][m], z, w[f"trunk.{layer}.weight"][m]))
            head_w = w["fidelity_head.weight"][m, :, k]
            pred = z @ head_w[: z.shape[1]] + w["fidelity_head.bias"][m, 0, k]
            if skip:
                pred = pred + X @ head_w[z.shape[1] :]
            if prior is not None:
                pred = pred + prior[m]
            out[m] = pred.numpy()
        return out

    def standardise(self, y: Any, fidelity: str = "hi") -> np.ndarray:
        """Objective values in original units -> the standardised units of the last fit.

        Args:
            y: ``(m,)`` values. fidelity: whose transform.

        Returns:
            ``(m,)`` float64 (unchanged before any fit at that fidelity).
        """
        tr = self.objective_transforms.get(fidelity, {"kind": "zscore", "mean": 0.0, "std": 1.0})
        return _forward(tr, np.asarray(y, dtype=np.float64))

    def predict(self, X: Any, fidelity: str = "hi") -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and standard deviation of the objective at one fidelity.

        Args:
            X: ``(n, d)`` features.
            fidelity: which fidelity head.

        Returns:
            ``mean, std``: ``(n,)`` each, in the units of the observations given to :meth:`fit`
            (standardised units before any fit).
        """
        members = self.predict_members(X, fidelity)
        return members.mean(0).astype(np.float64), members.std(0).astype(np.float64)

    def predict_metrics(self, X: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Mean and std over members of every pretraining metric, in original units.

        For log-transformed metrics the members are back-transformed before averaging.

        Args:
            X: ``(n, d)`` features.

        Returns:
            metric -> ``(mean, std)``, each ``(n,)``.
        """
        Xt = self._check_X(X)
        chunk = int(self.hyper["predict_chunk"])
        K = len(self.metric_names)
        outs = np.empty((self.n_members, Xt.shape[0], max(K, 1)), dtype=np.float64)
        with torch.no_grad():
            for start in range(0, Xt.shape[0], chunk):
                part = Xt[start : start + chunk]
                z = self._trunk(self._base, part)
                outs[:, start : start + len(part)] = torch.baddbmm(
                    self._base["metric_head.bias"], z, self._base["metric_head.weight"]
                ).numpy()
        result: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for k, name in enumerate(self.metric_names):
            tr = self.metric_transforms.get(name, {"log": False, "mean": 0.0, "std": 1.0})
            values = outs[..., k] * tr["std"] + tr["mean"]
            if tr["log"]:
                values = np.exp(values)
            result[name] = (values.mean(0), values.std(0))
        return result

    def standardise_metric(self, name: str, values: Any) -> np.ndarray:
        """Values of pretraining metric ``name`` in original units -> the standardised units its head was
        pretrained in (logged first where the metric was logged; unchanged for an unknown metric).

        Args:
            name: a metric of :attr:`metric_names`. values: ``(n,)``.

        Returns:
            ``(n,)`` float64.
        """
        tr = self.metric_transforms.get(name, {"log": False, "mean": 0.0, "std": 1.0})
        v = np.asarray(values, dtype=np.float64)
        v = np.log(np.maximum(v, 1e-300)) if tr["log"] else v
        return (v - tr["mean"]) / tr["std"]

    def embed(self, X: Any, *, pretrained: bool = True) -> np.ndarray:
        """The trunk's representation of candidates.

        Args:
            X: ``(n, d)`` features.
            pretrained: use the pretrained weights (else the last fit's).

        Returns:
            ``(M, n, hidden)`` float32.
        """
        Xt = self._check_X(X)
        w = self._base if pretrained or self._fitted is None else self._fitted
        with torch.no_grad():
            return self._trunk(w, Xt).numpy()

    # -- persistence ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Flat name -> tensor, safetensors-compatible (contiguous float32, no shared storage).

        ``base.*`` are the pretrained weights, ``prior.*`` the fixed prior functions and ``fitted.*`` the
        last fine-tuned weights (only after :meth:`fit`).
        """
        out: dict[str, torch.Tensor] = {}
        for k, v in self._base.items():
            out[f"base.{k}"] = v.detach().clone().contiguous()
        for k, v in self._prior.items():
            out[k] = v.detach().clone().contiguous()
        if self._fitted is not None:
            for k, v in self._fitted.items():
                out[f"fitted.{k}"] = v.detach().clone().contiguous()
        return out

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description; with :meth:`state_dict` enough to rebuild the ensemble."""
        return {
            "format": "nastune.DeepEnsemble",
            "version": FORMAT_VERSION,
            "n_features": self.n_features,
            "metric_names": list(self.metric_names),
            "fidelities": list(self.fidelities),
            "n_members": self.n_members,
            "seed": self.seed,
            "hyper": {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, tuple) else v)
                      for k, v in self.hyper.items()},
            "pretrained": self.pretrained,
            "metric_transforms": {k: dict(v) for k, v in self.metric_transforms.items()},
            "objective_transforms": {k: dict(v) for k, v in self.objective_transforms.items()},
            "pretrain_stats": _plain(self.pretrain_stats),
        }

    @classmethod
    def from_state(cls, config: Mapping[str, Any], tensors: Mapping[str, torch.Tensor]) -> DeepEnsemble:
        """Rebuild an ensemble from :meth:`config` and :meth:`state_dict`.

        Raises:
            NastuneError: the config is of another format/version or a tensor is missing or misshapen.
        """
        if config.get("format") != "nastune.DeepEnsemble" or int(config.get("version", -1)) != FORMAT_VERSION:
            raise NastuneError(
                f"surrogate config has format {config.get('format')!r} version {config.get('version')!r};"
                f" this nastune reads nastune.DeepEnsemble version {FORMAT_VERSION}"
            )
        hyper = dict(config.get("hyper", {}))
        hyper = {k: v for k, v in hyper.items() if k in DEFAULT_HYPER}
        ens = cls(
            int(config["n_features"]),
            list(config["metric_names"]),
            list(config["fidelities"]),
            n_members=int(config["n_members"]),
            seed=int(config["seed"]),
            **hyper,
        )
        ens.pretrained = bool(config.get("pretrained", False))
        ens.metric_transforms = {k: dict(v) for k, v in dict(config.get("metric_transforms", {})).items()}
        ens.objective_transforms = {k: dict(v) for k, v in dict(config.get("objective_transforms", {})).items()}
        ens.pretrain_stats = dict(config.get("pretrain_stats", {}))

        def take(prefix: str, template: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
            out = {}
            for k, v in template.items():
                key = f"{prefix}{k}"
                if key not in tensors:
                    raise NastuneError(f"surrogate weights lack tensor {key!r}")
                t = tensors[key].to(torch.float32)
                if tuple(t.shape) != tuple(v.shape):
                    raise NastuneError(
                        f"surrogate tensor {key!r} has shape {tuple(t.shape)}, expected {tuple(v.shape)}"
                    )
                out[k] = t.clone()
            return out

        ens._base = take("base.", ens._base)
        ens._prior = take("", ens._prior)
        if any(k.startswith("fitted.") for k in tensors):
            ens._fitted = take("fitted.", ens._base)
        return ens

    def copy(self) -> DeepEnsemble:
        """An independent copy (same weights, transforms and hyper-parameters)."""
        return DeepEnsemble.from_state(self.config(), self.state_dict())

    def __repr__(self) -> str:
        return (
            f"DeepEnsemble(n_features={self.n_features}, metrics={self.metric_names}, fidelities={self.fidelities},"
            f" n_members={self.n_members}, pretrained={self.pretrained}, fitted={self.is_fitted})"
        )


def _plain(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Iterable) and not isinstance(obj, str | bytes):
        return [_plain(v) for v in obj]
    return obj
