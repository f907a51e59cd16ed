"""Compute the training-free proxies (NASWOT, log-synflow) of all 15,625 NAS-Bench-201 networks.

Uses :mod:`nastune.proxies` on ``examples.nb201.encoding_to_net`` (CIFAR-10 head, 10 classes), with a
fixed random input batch (32 x 3 x 32 x 32, seed 0) and the weight initialisation seeded per network.
Isomorphic cells (same NATS ``iso_str``: the same computation) share the values computed on one member of
their class, so only about 6,500 networks are built. The result is cached in ``var/nb201/proxies.npz``
(resumable: partial results are kept every 250 networks). Takes one to two hours on one CPU core.
Run: ``python -m benchmarks.nb201.proxies``.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch

from examples.nb201 import build_encodings, encoding_to_net, load_table
from nastune.proxies import log_synflow_score, naswot_score

CACHE = Path(__file__).resolve().parents[2] / "var" / "nb201" / "proxies.npz"


def compute(
    indices: np.ndarray, encodings: list[tuple[int, ...]], batch: torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    naswot = np.full(len(indices), np.nan)
    synflow = np.full(len(indices), np.nan)
    for k, i in enumerate(indices.tolist()):
        for out, fn in ((naswot, naswot_score), (synflow, log_synflow_score)):
            torch.manual_seed(i)
            net = encoding_to_net(encodings[i])
            try:
                value = fn(net, [batch])
                out[k] = value if math.isfinite(value) else np.nan
            except Exception:  # degenerate cells (no path to the output): no proxy value
                out[k] = np.nan
    return naswot, synflow


def load_or_compute(progress: bool = True) -> dict[str, np.ndarray]:
    """The cached proxies, computing the missing ones first."""
    torch.set_num_threads(1)
    encodings = build_encodings()
    n = len(encodings)
    if CACHE.exists():
        data = dict(np.load(CACHE))
    else:
        data = {"naswot": np.full(n, np.nan), "log_synflow": np.full(n, np.nan), "done": np.zeros(n, dtype=bool)}
    batch = torch.rand(32, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    iso = np.array(load_table().iso_str)
    _, klass = np.unique(iso, return_inverse=True)
    klass = klass.reshape(-1)
    start = time.time()

    def share() -> None:
        # every cell of a class takes the values of its first computed member
        for c in np.unique(klass[~data["done"]]):
            members = np.flatnonzero(klass == c)
            known = members[data["done"][members]]
            if len(known):
                for m in ("naswot", "log_synflow"):
                    data[m][members[~data["done"][members]]] = data[m][known[0]]
                data["done"][members] = True

    share()
    todo = np.array([np.flatnonzero((klass == c) & ~data["done"])[0] for c in np.unique(klass[~data["done"]])],
                    dtype=np.int64)
    for c in range(0, len(todo), 250):
        chunk = todo[c : c + 250]
        nw, sf = compute(chunk, encodings, batch)
        data["naswot"][chunk] = nw
        data["log_synflow"][chunk] = sf
        data["done"][chunk] = True
        share()
        CACHE.parent.mkdir(parents=True, exist_ok=True)
        tmp = CACHE.with_suffix(".tmp.npz")
        np.savez(tmp, **data)
        tmp.replace(CACHE)
        if progress:
            print(f"proxies: {int(data['done'].sum())}/{n} done, {time.time() - start:.0f} s", flush=True)
    return {"naswot": data["naswot"], "log_synflow": data["log_synflow"]}


if __name__ == "__main__":
    argparse.ArgumentParser(description=__doc__).parse_args()
    load_or_compute()
