"""NAS-Bench-201 hardware-aware benchmark of issue 15: constrained search, Pareto search, latency from a subset.

Objectives: mean 200-epoch validation accuracy (max) and the table's latency (min), per dataset.

* *constrained*: the best validation accuracy among cells with latency <= the 25th percentile of the space's
  latencies; evaluations until that cell is evaluated (budget 150) for nastune with the constraint inside the
  search, nastune without it, random search and regularized evolution with the constraint as a filter (both
  sample/mutate only feasible cells).
* *pareto*: share of the true Pareto-optimal cells (valid accuracy vs latency) evaluated within 150
  evaluations, and the hypervolume after every evaluation, for nastune with two objectives (default acquisition,
  and EHVI over the ensemble), random search and a multi-objective aging evolution (tournament by
  non-domination rank).
* *subset*: the surrogate pretrained on params, FLOPs and the latency of a random 5% of cells; Kendall tau of its
  predicted latency on the other 95%.

The nastune headline rows search the user-level space of ``nb201.md``'s headline (``common.user_space``: op-name
encodings, architecture features read by ``preprocess``, params + latency as pretraining data, default options);
rows whose method ends in ``-hand`` use issue 5's hand-made NB201 feature map instead, for comparison.

Run (each run cached as ``var/nb201/hardware/<experiment>/<method>-<dataset>-<seed>.json``)::

    nice -n 19 python -m benchmarks.nb201.hardware --seeds 0-4 --datasets cifar10
    python -m benchmarks.nb201.hardware --only-report       # writes benchmarks/results/nb201_hardware.md
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.nb201 import common
from benchmarks.nb201.common import BASE_METRICS, DATASET_LABEL, DATASETS, VAR
from benchmarks.nb201.run import paired_difference_ci
from nastune import SearchInstance
from nastune.analysis import non_dominated
from nastune.baselines import RandomSearch, RegularizedEvolution, encoding_codes
from nastune.objectives import hypervolume, pareto_mask

OUT = VAR / "hardware"
REPORT = common.ROOT / "benchmarks" / "results" / "nb201_hardware.md"
BUDGET = 150
LATENCY_QUANTILE = 25.0
SUBSET_SHARE = 0.05
#: issue 15's targets
TARGET_CONSTRAINED_MEDIAN = 30
TARGET_PARETO_SHARE = 0.8
TARGET_SUBSET_TAU = 0.8

#: nastune rows use the user-level space (``common.user_space``: op-name encodings, the plain
#: ``encoding_to_net``, architecture features read by ``preprocess``, params + latency as the only pretraining
#: data, default options) unless their name ends in ``-hand`` (issue 5's 121-column NB201 feature map, pretrained
#: on params + FLOPs + latency), kept beside the headline for comparison.
CONSTRAINED_METHODS = {
    "nastune-constrained": "**nastune, public API, user-level inputs, constraint inside the search**",
    "nastune-constrained-ei": "nastune, user-level inputs, constraint inside the search, `acquisition=\"ei\"`",
    "nastune-constrained-hand": "nastune, hand features (issue 5), constraint inside the search",
    "nastune-constrained-ensemble": "nastune, user-level inputs, constraint inside the search, "
                                    "`surrogate=\"ensemble\"` (the fine-tuned ensemble)",
    "nastune-unconstrained": "nastune, user-level inputs, no constraint (single objective)",
    "random-filter": "random search, constraint as a filter",
    "evolution-filter": "regularized evolution, constraint as a filter",
}
PARETO_METHODS = {
    "nastune-pareto": "**nastune, public API, user-level inputs, two objectives** (default: probability of not "
                      "being dominated)",
    "nastune-pareto-front": "nastune, user-level inputs, `pareto_acquisition=\"front\"` (share of joint posterior "
                            "draws whose front holds the cell)",
    "nastune-pareto-ehvi": "nastune, user-level inputs, `pareto_acquisition=\"ehvi\"` (EHVI over the ensemble)",
    "nastune-pareto-hand": "nastune, hand features (issue 5), two objectives (default acquisition)",
    "random": "random search",
    "evolution-mo": "multi-objective aging evolution (non-domination rank)",
}
SUBSET_METHODS = {
    "nastune": "**public API, user-level inputs**: `add_device_latencies` + `pretrain` (params, FLOPs, "
               "architecture features)",
    "nastune-hand": "hand features (issue 5): an ensemble on the NB201 feature map (params, FLOPs)",
}


def latency_bound(dataset: str) -> float:
    return float(np.percentile(common.bench(dataset).metrics["latency"], LATENCY_QUANTILE))


def constrained_optimum(dataset: str) -> int:
    b = common.bench(dataset)
    feasible = b.metrics["latency"] <= latency_bound(dataset)
    return int(np.flatnonzero(feasible)[np.argmax(b.valid[feasible])])


def true_front(dataset: str) -> np.ndarray:
    b = common.bench(dataset)
    return np.flatnonzero(non_dominated(b.valid, b.metrics["latency"]))


def _space(dataset: str, seed: int, hand: bool) -> Any:
    """The space a nastune row searches: the user-level one (default) or issue 5's hand-feature one."""
    if not hand:
        return common.user_space(dataset, "auto", seed, True)
    space = common.base_space(dataset)
    space.surrogate = common.pretrained_surrogate(dataset, BASE_METRICS, True, seed)
    return space


def _nastune(dataset: str, seed: int, stop: Any, *, hand: bool = False, **options: Any) -> list[int]:
    b = common.bench(dataset)
    s = SearchInstance(f"hw-{dataset}-{seed}", None, search_space=_space(dataset, seed, hand), seed=seed,
                       progress=False, eval_budget=BUDGET, **options)
    order: list[int] = []
    multi = bool(options.get("objectives"))
    while len(order) < BUDGET:
        proposals = s.ask(1)
        if not proposals:
            break
        p = proposals[0]
        value = float(b.valid[p.index])
        s.tell(p.index, p.fidelity, {"valid": value} if multi else value)
        order.append(p.index)
        if stop(order):
            break
    return order


def _filtered(strategy_cls: type, dataset: str, seed: int, stop: Any) -> list[int]:
    b = common.bench(dataset)
    feasible = np.flatnonzero(b.metrics["latency"] <= latency_bound(dataset))
    codes = encoding_codes(common._table().encodings)[feasible]
    strategy = strategy_cls(codes, seed)
    order: list[int] = []
    while len(order) < BUDGET:
        k = strategy.ask()
        strategy.tell(k, float(b.valid[feasible[k]]))
        order.append(int(feasible[k]))
        if stop(order):
            break
    return order


class ParetoEvolution(RegularizedEvolution):
    """Aging evolution whose tournament winner is the sampled member with the best non-domination rank in the
    population (ties broken by a random draw): the multi-objective baseline."""

    name = "evolution-mo"

    def __init__(self, codes: np.ndarray, seed: int, latency: np.ndarray) -> None:
        super().__init__(codes, seed)
        self.latency = latency

    def _next(self) -> int:
        if len(self.values) < self.population_size:
            return self._random_unasked()
        pop = self.population[-self.population_size:]
        pts = np.array([[self.values[i], -self.latency[i]] for i in pop])
        rank = np.zeros(len(pop))
        left = np.ones(len(pop), dtype=bool)
        level = 0
        while left.any():
            idx = np.flatnonzero(left)
            front = idx[pareto_mask(pts[idx])]
            rank[front] = level
            left[front] = False
            level += 1
        picks = self.rng.choice(len(pop), size=min(self.sample_size, len(pop)), replace=False)
        tie = self.rng.random(len(picks))
        parent = pop[int(picks[np.lexsort((tie, rank[picks]))[0]])]
        return self._mutate(parent)


def run(experiment: str, method: str, dataset: str, seed: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    b = common.bench(dataset)
    start = time.perf_counter()
    out: dict[str, Any] = {"experiment": experiment, "method": method, "dataset": dataset, "seed": seed}
    if experiment == "constrained":
        target = constrained_optimum(dataset)
        bound = latency_bound(dataset)

        def stop(order: list[int]) -> bool:
            return order[-1] == target

        if method.startswith("nastune-constrained"):
            options = {"acquisition": "ei"} if method.endswith("-ei") else \
                {"surrogate": "ensemble"} if method.endswith("-ensemble") else {}
            order = _nastune(dataset, seed, stop, hand=method.endswith("-hand"),
                             constraints={"latency": ("<=", bound)}, **options)
        elif method == "nastune-unconstrained":
            order = _nastune(dataset, seed, stop)
        elif method == "random-filter":
            order = _filtered(RandomSearch, dataset, seed, stop)
        else:
            order = _filtered(RegularizedEvolution, dataset, seed, stop)
        found = target in order
        out.update(found=found, to_optimum=order.index(target) + 1 if found else None,
                   infeasible=int(sum(b.metrics["latency"][i] > bound for i in order)), evaluations=len(order))
    else:
        front = set(true_front(dataset).tolist())
        latency = b.metrics["latency"]
        if method.startswith("nastune-pareto"):
            acquisition = {"nastune-pareto-ehvi": {"pareto_acquisition": "ehvi"},
                           "nastune-pareto-front": {"pareto_acquisition": "front"}}.get(method, {})
            order = _nastune(dataset, seed, lambda o: False, hand=method.endswith("-hand"),
                             objectives={"valid": "max", "latency": "min"}, **acquisition)
        else:
            codes = encoding_codes(common._table().encodings)
            strategy = RandomSearch(codes, seed) if method == "random" else ParetoEvolution(codes, seed, latency)
            order = []
            for _ in range(BUDGET):
                k = strategy.ask()
                strategy.tell(k, float(b.valid[k]))
                order.append(k)
        reference = [float(b.valid.min()), -float(latency.max())]
        pts = np.stack([b.valid, -latency], axis=1)
        curve = [hypervolume(pts[order[:k]], reference) for k in range(1, len(order) + 1)]
        out.update(front_size=len(front), found_front=len(front & set(order)),
                   share=len(front & set(order)) / len(front), hypervolume=curve,
                   hypervolume_max=hypervolume(pts[sorted(front)], reference), evaluations=len(order))
    out["wall_s"] = time.perf_counter() - start
    return out


def subset_tau(method: str, dataset: str, seed: int) -> dict[str, Any]:
    """The table's latency known for a random 5% of cells, as a user uploads device latencies; Kendall tau of the
    predicted latency on the other 95%.

    ``nastune`` (the headline) goes through the public API: the user-level space without its latency column,
    the table's params and FLOPs as its profile (what the worker's profiling measures), the subset added with
    :func:`~nastune.device_latency.add_device_latencies`, ``pretrain`` with its defaults, ``predict``.
    ``nastune-hand`` pretrains an ensemble on issue 5's NB201 feature map instead.
    """
    from scipy.stats import kendalltau

    from nastune import DeepEnsemble, load_search_space
    from nastune.device_latency import add_device_latencies

    torch.set_num_threads(1)
    b = common.bench(dataset)
    rng = np.random.default_rng(seed)
    n = len(b.valid)
    known = np.zeros(n, dtype=bool)
    known[rng.choice(n, size=round(SUBSET_SHARE * n), replace=False)] = True
    truth = b.metrics["latency"]
    start = time.perf_counter()
    if method == "nastune":
        space = load_search_space(common.user_space_bundle(dataset, "auto"))
        del space.profile["latency"]  # what is predicted: only the uploaded subset is known
        space.profile["flops"] = b.metrics["flops"]
        name = add_device_latencies(space, "nb201 table", {int(i): float(truth[i]) for i in np.flatnonzero(known)})
        space.pretrain(seed=seed, progress=False)
        mean = space.predict(np.flatnonzero(~known))[name][0]
    else:
        X = common.nb201_features()
        ens = DeepEnsemble(X.shape[1], ["params", "flops", "latency_device"], n_members=5, seed=seed)
        ens.pretrain(X, {"params": b.metrics["params"], "flops": b.metrics["flops"],
                         "latency_device": np.where(known, truth, np.nan)}, progress=False)
        mean, _ = ens.predict_metrics(X[~known])["latency_device"]
    tau = float(kendalltau(mean, truth[~known]).statistic)
    return {"experiment": "subset", "method": method, "dataset": dataset, "seed": seed, "tau": tau,
            "known": int(known.sum()), "wall_s": time.perf_counter() - start}


def _path(experiment: str, method: str, dataset: str, seed: int) -> Path:
    return OUT / experiment / f"{method}-{dataset}-{seed}.json"


def _save(result: dict[str, Any]) -> None:
    path = _path(result["experiment"], result["method"], result["dataset"], result["seed"])
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result))
    os.replace(tmp, path)


def _load(experiment: str) -> list[dict[str, Any]]:
    folder = OUT / experiment
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.exists() else []


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        out += list(range(int(a), int(b or a) + 1))
    return out


def _seed_text(seeds: Any) -> str:
    ordered = sorted(set(seeds))
    if ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{ordered[0]}-{ordered[-1]}" if len(ordered) > 1 else str(ordered[0])
    return ",".join(map(str, ordered))


def _paired_share(par: list[dict[str, Any]], ds: str, first: str, second: str) -> tuple[float, float, float, int,
                                                                                        int, int] | None:
    """Median over seeds of ``first``'s share of the front minus ``second``'s, its 95% bootstrap CI, the seeds
    compared and on how many ``first`` found more and fewer."""
    a = {r["seed"]: r["share"] for r in par if r["dataset"] == ds and r["method"] == first}
    b = {r["seed"]: r["share"] for r in par if r["dataset"] == ds and r["method"] == second}
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    first_shares, second_shares = np.array([a[k] for k in seeds]), np.array([b[k] for k in seeds])
    # the benchmark's paired bootstrap of b - a (shares are finite, so its budget for missed runs never applies)
    med, lo, hi, _share = paired_difference_ci(second_shares, first_shares, BUDGET)
    d = first_shares - second_shares
    return med, lo, hi, len(seeds), int((d > 0).sum()), int((d < 0).sum())


def report(with_notes: bool = True, seeds: list[int] | None = None) -> str:
    lines = ["# NAS-Bench-201: hardware-aware search (issue 15)", "",
             "Produced by `python -m benchmarks.nb201.hardware` (see its docstring). Objectives: mean 200-epoch "
             "validation accuracy (max) and the table's latency (min). Budget 150 evaluations. Seeds as listed per "
             "row (the issue asks for 0-29; on the shared 2-core machine fewer were run, see *runs*).", ""]

    def load(experiment: str) -> list[dict[str, Any]]:
        return [r for r in _load(experiment) if seeds is None or r["seed"] in seeds]

    cons = load("constrained")
    if cons:  # a report of some experiments only (--experiments) leaves the others out
        lines += ["## Constrained: best accuracy with latency <= the 25th percentile", "",
                  "Evaluations until the constrained optimum is evaluated (runs that miss it within 150 count as "
                  f"> 150); target: median <= {TARGET_CONSTRAINED_MEDIAN} on CIFAR-10. *infeasible*: mean "
                  "evaluations spent on cells over the bound.", "",
                  "| dataset | method | runs | found | median | 90th pct | infeasible evals (mean) |",
                  "|---|---|---|---|---|---|---|"]
    for ds in DATASETS:
        for m, label in CONSTRAINED_METHODS.items():
            rows = [r for r in cons if r["dataset"] == ds and r["method"] == m]
            if not rows:
                continue
            steps = sorted(r["to_optimum"] if r["found"] else math.inf for r in rows)

            def q(p: float, steps: list[float] = steps) -> str:
                v = float(np.percentile(steps, p, method="higher"))
                return "> 150" if not math.isfinite(v) else f"{v:g}"

            seed_text = _seed_text(r["seed"] for r in rows)
            lines.append(f"| {DATASET_LABEL[ds]} | {label} | {len(rows)} (seeds {seed_text}) | "
                         f"{sum(r['found'] for r in rows)}/{len(rows)} | {q(50)} | "
                         f"{q(90)} | {np.mean([r['infeasible'] for r in rows]):.1f} |")
    par = load("pareto")
    if par:  # a report of some experiments only (--experiments) leaves the others out
        lines += ["", "## Pareto: share of the true Pareto-optimal cells evaluated within 150", "",
                  f"Target: median share >= {TARGET_PARETO_SHARE:.0%}. Hypervolume over the reference (worst accuracy, "
                  "worst latency of the space), as a share of the true front's hypervolume, mean over runs.", "",
                  "| dataset | front size | method | runs | share: median | min | HV @25 | @50 | @100 | @150 |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for ds in DATASETS:
            for m, label in PARETO_METHODS.items():
                rows = [r for r in par if r["dataset"] == ds and r["method"] == m]
                if not rows:
                    continue
                shares = [r["share"] for r in rows]
                hv = [np.mean([r["hypervolume"][min(k, len(r["hypervolume"])) - 1] / r["hypervolume_max"]
                               for r in rows]) for k in (25, 50, 100, 150)]
                lines.append(f"| {DATASET_LABEL[ds]} | {rows[0]['front_size']} | {label} | "
                             f"{len(rows)} (seeds {_seed_text(r['seed'] for r in rows)}) | "
                             f"{np.median(shares):.0%} | {min(shares):.0%} | "
                             + " | ".join(f"{h:.3f}" for h in hv) + " |")
        paired = [(ds, m, _paired_share(par, ds, "nastune-pareto", m)) for ds in DATASETS
                  for m in PARETO_METHODS if m != "nastune-pareto"]
        paired = [(ds, m, p) for ds, m, p in paired if p is not None]
        if paired:
            lines += ["", "Paired by seed: median of the default's share minus the other method's, 95% bootstrap CI "
                      "(10,000 resamples of the seeds), and on how many seeds the default found more / fewer front "
                      "cells.", "",
                      "| dataset | compared with | seeds | median difference | 95% CI | more / fewer |",
                      "|---|---|---|---|---|---|"]
            for ds, m, (med, lo, hi, n, more, fewer) in paired:
                lines.append(f"| {DATASET_LABEL[ds]} | {PARETO_METHODS[m]} | {n} | {med:+.2f} | [{lo:+.2f}, "
                             f"{hi:+.2f}] | {more} / {fewer} |")
    sub = load("subset")
    if sub:
        lines += ["", "## Device latency from a 5% subset", "",
                  f"Kendall tau of the predicted latency on the 95% not given (target >= {TARGET_SUBSET_TAU}).", "",
                  "| dataset | method | runs | tau: median | min |", "|---|---|---|---|---|"]
        for ds in DATASETS:
            for m, label in SUBSET_METHODS.items():
                rows = [r for r in sub if r["dataset"] == ds and r["method"] == m]
                if rows:
                    taus = [r["tau"] for r in rows]
                    lines.append(f"| {DATASET_LABEL[ds]} | {label} | {len(rows)} (seeds "
                                 f"{_seed_text(r['seed'] for r in rows)}) | {np.median(taus):.3f} | {min(taus):.3f} |")
    lines += ["", "## Targets", ""]

    def median_steps(ds: str) -> tuple[float, int]:
        rows = [r for r in cons if r["dataset"] == ds and r["method"] == "nastune-constrained"]
        steps = [r["to_optimum"] if r["found"] else math.inf for r in rows]
        return (float(np.percentile(steps, 50, method="higher")) if steps else math.nan), len(rows)

    med, n = median_steps("cifar10")
    if n:
        verdict = "met" if med <= TARGET_CONSTRAINED_MEDIAN else "missed"
        lines.append(f"* Constrained, CIFAR-10: median {med:g} evaluations over {n} runs, target <= "
                     f"{TARGET_CONSTRAINED_MEDIAN}: **{verdict}**.")
    for ds in DATASETS:
        rows = [r for r in par if r["dataset"] == ds and r["method"] == "nastune-pareto"]
        if rows:
            share = float(np.median([r["share"] for r in rows]))
            verdict = "met" if share >= TARGET_PARETO_SHARE else "missed"
            lines.append(f"* Pareto, {DATASET_LABEL[ds]}: median share {share:.0%} over {len(rows)} runs, target "
                         f">= {TARGET_PARETO_SHARE:.0%}: **{verdict}**.")
        rows = [r for r in sub if r["dataset"] == ds and r["method"] == "nastune"]
        if rows:
            tau = float(np.median([r["tau"] for r in rows]))
            verdict = "met" if tau >= TARGET_SUBSET_TAU else "missed"
            lines.append(f"* Latency from a 5% subset, {DATASET_LABEL[ds]}: median tau {tau:.3f} over {len(rows)} "
                         f"runs, target >= {TARGET_SUBSET_TAU}: **{verdict}**.")
    notes = REPORT.with_name("nb201_hardware_notes.md")
    if with_notes and notes.exists():  # hand-written reading of the figures, kept across regenerations
        lines += ["", notes.read_text().rstrip()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0-4")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--experiments", default="subset,constrained,pareto")
    parser.add_argument("--methods", default="")
    parser.add_argument("--only-report", action="store_true")
    parser.add_argument("--report-seeds", default="", help="report only these seeds (default: every cached run)")
    parser.add_argument("--report", default=REPORT.stem,
                        help="write benchmarks/results/REPORT.md (another name: some rows, no notes)")
    args = parser.parse_args()
    if not args.only_report:
        wanted = set(filter(None, args.methods.split(",")))
        for seed in _seeds(args.seeds):
            for ds in args.datasets.split(","):
                for exp in args.experiments.split(","):
                    methods = {"subset": list(SUBSET_METHODS), "constrained": list(CONSTRAINED_METHODS),
                               "pareto": list(PARETO_METHODS)}[exp]
                    for m in methods:
                        if (wanted and m not in wanted) or _path(exp, m, ds, seed).exists():
                            continue
                        result = subset_tau(m, ds, seed) if exp == "subset" else run(exp, m, ds, seed)
                        _save(result)
                        print(exp, m, ds, seed, {k: v for k, v in result.items()
                                                 if k not in ("hypervolume",)}, flush=True)
    text = report(with_notes=args.report == REPORT.stem,
                  seeds=_seeds(args.report_seeds) if args.report_seeds else None)
    REPORT.with_name(f"{args.report}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
