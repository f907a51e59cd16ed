"""Speed of one BO iteration (fit the surrogate + score every candidate) at 15,625 and 1,000,000 candidates.

Run: ``python -m benchmarks.nb201.speed`` (prints the table, writes ``benchmarks/results/nb201_speed.md``).

Every measurement runs in a fresh subprocess (so its peak RSS is its own) with ``torch`` limited to
``--threads`` threads (default 2, the target machine). Measured, median of ``--repeats``:

* ``gp``: the default surrogate (:class:`nastune.gp.EmbeddingGP` on the features, with the pretrained ensemble's
  metric predictions as its linear term): ``fit`` on ``--observations`` results + ``predict_members`` on all
  candidates + expected improvement.
* ``nastune``: :meth:`DeepEnsemble.fit` on ``--observations`` results (from the pretrained weights,
  ``finetune_steps`` full-batch steps, members batched in one tensor) + ``predict_members`` on all
  candidates + expected improvement; and, at 15,625 candidates, a whole :meth:`SearchInstance.ask`.
* ``loop baseline`` (same run, same work): the same five members as five separate ``torch.nn`` MLPs
  trained one after the other in a Python loop, then each predicting every candidate.

The 15,625 candidates are NAS-Bench-201 (features of :func:`examples.nb201.features`, or, for the
user-level rows, the automatic features of the user-level space of ``benchmarks.nb201.common``); the
1,000,000 are synthetic (random one-hot features of 8 positions x 8 values, 64 columns, plus for the
"+ architecture" rows 100 dense Gaussian columns standing in for automatic architecture features).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "benchmarks" / "results" / "nb201_speed.md"

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
cfg = json.loads(sys.argv[1])
torch.set_num_threads(cfg["threads"])
from nastune import DeepEnsemble
from nastune.acquisition import ExpectedImprovement

rng = np.random.default_rng(0)
if cfg["candidates"] in ("nb201", "user"):
    from examples.nb201 import features, load_table
    table = load_table()
    if cfg["candidates"] == "user":
        from nastune import load_search_space
        from benchmarks.nb201.common import user_space_bundle
        X = load_search_space(user_space_bundle("cifar10")).features
    else:
        X = features(table.encodings)
    y_all = table.valid_acc["cifar10"]
    metrics = {"params": table.params["cifar10"].astype(float)}
else:
    n = int(cfg["candidates"].rstrip("a"))
    extra = 100 if cfg["candidates"].endswith("a") else 0
    codes = rng.integers(0, 8, size=(n, 8))
    X = np.zeros((n, 64 + extra), dtype=np.float32)
    X[np.repeat(np.arange(n), 8), (np.arange(8) * 8 + codes).ravel()] = 1.0
    if extra:
        X[:, 64:] = rng.standard_normal((n, extra), dtype=np.float32)
    del codes
    y_all = None
    metrics = {"params": np.exp(X[:, ::3].sum(1)).astype(float)}
n, d = X.shape
obs = rng.choice(n, cfg["observations"], replace=False)
y = y_all[obs] if y_all is not None else X[obs].sum(1) + rng.normal(size=len(obs))
ens = DeepEnsemble(d, list(metrics), n_members=5, seed=0, pretrain_max_steps=50)
ens.pretrain(X, metrics, progress=False)
ei = ExpectedImprovement()

def nastune_iteration():
    t0 = time.perf_counter()
    ens.fit(X[obs], y, "hi", seed=1)
    t1 = time.perf_counter()
    samples = ens.predict_members(X, "hi", standardised=True)
    scores = ei.score(samples, float(ens.standardise([y.max()])[0]), rng)
    int(np.argmax(scores))
    return t1 - t0, time.perf_counter() - t1

gp = None
def gp_iteration():
    # the default surrogate: the GP on the features with the linear term on the pretrained predictions (made
    # once per search, as the search does; each iteration refits its hyper-parameters and scores everything)
    global gp
    if gp is None:
        from nastune.gp import EmbeddingGP
        gp = EmbeddingGP(ens, X, ("hi", "lo"), seed=0)
    t0 = time.perf_counter()
    gp.fit(X[obs], y, "hi")
    t1 = time.perf_counter()
    samples = gp.predict_members(X, "hi", standardised=True)
    scores = ei.score(samples, float(gp.standardise([y.max()])[0]), rng)
    int(np.argmax(scores))
    return t1 - t0, time.perf_counter() - t1

def loop_iteration():
    # the same members as separate nn.Modules in a Python loop (what the batched tensors replace)
    h, steps, lr = ens.hyper["hidden"], ens.hyper["finetune_steps"], ens.hyper["finetune_lr"]
    Xo = torch.as_tensor(X[obs]); yt = torch.as_tensor((y - y.mean()) / y.std(), dtype=torch.float32)
    t0 = time.perf_counter()
    nets = []
    with torch.no_grad():
        pass
    torch.set_num_threads(1)
    for m in range(5):
        torch.manual_seed(m)
        net = torch.nn.Sequential(torch.nn.Linear(d, h), torch.nn.ReLU(), torch.nn.Linear(h, h), torch.nn.ReLU(),
                                  torch.nn.Linear(h, 1))
        opt = torch.optim.Adam([{"params": list(net[:4].parameters()), "lr": lr * 0.1},
                                {"params": net[4].parameters(), "lr": lr}])
        for _ in range(steps):
            loss = ((net(Xo)[:, 0] - yt) ** 2).mean()
            opt.zero_grad(); loss.backward(); opt.step()
        nets.append(net)
    torch.set_num_threads(cfg["threads"])
    t1 = time.perf_counter()
    Xt = torch.as_tensor(X)
    with torch.no_grad():
        preds = []
        for net in nets:
            preds.append(torch.cat([net(Xt[i:i + 65536])[:, 0] for i in range(0, n, 65536)]).numpy())
    samples = np.stack(preds)
    int(np.argmax(ei.score(samples, float(yt.max()), rng)))
    return t1 - t0, time.perf_counter() - t1

def ask_iteration():
    from nastune import SearchInstance, create_search_space
    from examples.nb201 import build_encodings
    space = create_search_space("speed", "/tmp/unused.nastune", build_encodings(), features=X)
    space.surrogate = ens
    s = SearchInstance("speed", None, search_space=space, seed=0, progress=False, n_initial=1)
    for i in obs.tolist():
        s.tell(int(i), "hi", float(y_all[i]))
    t0 = time.perf_counter()
    s.ask(1)
    return time.perf_counter() - t0, 0.0

fn = {"nastune": nastune_iteration, "gp": gp_iteration, "loop": loop_iteration, "ask": ask_iteration}[cfg["what"]]
fn()  # warm-up
times = [fn() for _ in range(cfg["repeats"])]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print(json.dumps({"fit": [t[0] for t in times], "score": [t[1] for t in times], "rss_mb": rss}))
"""


def measure(what: str, candidates: str, observations: int, threads: int, repeats: int) -> dict[str, Any]:
    cfg = {"what": what, "candidates": candidates, "observations": observations, "threads": threads,
           "repeats": repeats}
    out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{what} at {candidates}: {out.stderr[-2000:]}")
    data = json.loads(out.stdout.strip().splitlines()[-1])
    total = [f + s for f, s in zip(data["fit"], data["score"], strict=True)]
    return {"fit": statistics.median(data["fit"]), "score": statistics.median(data["score"]),
            "total": statistics.median(total), "rss_mb": data["rss_mb"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--observations", type=int, nargs="+", default=[100, 300])
    args = parser.parse_args()
    rows = []
    sizes = (("15,625 (NAS-Bench-201)", "nb201", 0.5), ("15,625 (NAS-Bench-201, user-level automatic features)", "user",
                                                          0.5),
             ("1,000,000 (synthetic)", "1000000", 30.0), ("1,000,000 (synthetic + architecture)", "1000000a", 30.0))
    for label, candidates, target in sizes:
        for n_obs in args.observations:
            reps = args.repeats if not candidates.startswith("1000000") else max(1, args.repeats // 2)
            gp = measure("gp", candidates, n_obs, args.threads, reps)
            ours = measure("nastune", candidates, n_obs, args.threads, reps)
            loop = measure("loop", candidates, n_obs, args.threads, reps)
            rows.append((label, n_obs, target, "GP (default)", gp, "fine-tuned ensemble", ours))
            rows.append((label, n_obs, target, "fine-tuned ensemble", ours, "loop", loop))
    asks = {n_obs: measure("ask", "nb201", n_obs, args.threads, args.repeats) for n_obs in args.observations}
    lines = [
        "# One BO iteration: fit the surrogate + score every candidate",
        "",
        f"{args.threads} torch threads (ensemble fine-tuning itself runs on 1, see `train_threads`), median of"
        f" {args.repeats} repetitions after a warm-up (1M: {max(1, args.repeats // 2)}), each configuration in its"
        " own process. *GP (default)*: the search's default surrogate (`nastune.gp`, made once per search as the"
        " search does; an iteration refits its hyper-parameters, conditions on the results and scores every"
        " candidate); its baseline is the *fine-tuned ensemble* (5 members, the earlier default) of the same run,"
        " whose own baseline is the *loop*: the same five members as separate `torch.nn` MLPs trained and"
        " evaluated one after the other.",
        "",
        "| candidates | observations | surrogate | fit | score all | iteration | target | peak RSS |"
        " baseline | baseline iteration | baseline / this |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, n_obs, target, name, ours, base_name, base in rows:
        verdict = "met" if ours["total"] <= target else "MISSED"
        rss_note = "" if "1,000,000" not in label else (" (< 4 GB: met)" if ours["rss_mb"] < 4096 else " (MISSED)")
        lines.append(
            f"| {label} | {n_obs} | {name} | {ours['fit']:.3f} s | {ours['score']:.3f} s |"
            f" **{ours['total']:.3f} s** | <= {target:g} s: {verdict} | {ours['rss_mb']:.0f} MB{rss_note} |"
            f" {base_name} | {base['total']:.3f} s | {base['total'] / ours['total']:.2f}x |"
        )
    lines += [
        "",
        "A whole `SearchInstance.ask(1)` at 15,625 candidates (fit, score, bookkeeping): "
        + ", ".join(f"{a['total']:.3f} s with {n} observations" for n, a in asks.items())
        + f" (peak RSS {max(a['rss_mb'] for a in asks.values()):.0f} MB).",
        "",
        f"Machine: {platform.platform()}, Python {platform.python_version()}."
        " Rerun: `python -m benchmarks.nb201.speed`.",
        "",
    ]
    text = "\n".join(lines)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
