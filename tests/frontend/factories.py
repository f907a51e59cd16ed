"""Model rows for dashboard tests, written directly (no workers): ready spaces and searches."""

from __future__ import annotations

import json
import uuid
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from searches.models import Evaluation, SearchInstance
from spaces.models import SearchSpace
from spaces.services import _store_profile

MODULE = "import torch\n\n\ndef encoding_to_net(encoding):\n    return torch.nn.Linear(encoding[0], 2)\n"


def make_space(owner: Any, *, name: str = "tiny space", n: int = 40, state: str = "ready",
               module_source: str = MODULE, quality: bool = True) -> SearchSpace:
    encodings = [[width, depth] for width in range(1, n // 4 + 1) for depth in range(1, 5)][:n]
    space = SearchSpace(
        uid=uuid.uuid4(), owner=owner, name=name, n_encodings=len(encodings), encoding_length=2,
        feature_summary=[{"position": 0, "kind": "ordinal", "min": 1, "max": n // 4},
                         {"position": 1, "kind": "onehot", "values": [1, 2, 3, 4], "n_values": 4}],
        module_source=module_source, module_sha256="0" * 64, sample_input_shape=[1, 3, 8, 8], state=state,
        progress_total=len(encodings), progress_done=len(encodings) if state == "ready" else len(encodings) // 2,
    )
    space.encodings_file.save("encodings.json", ContentFile(json.dumps(encodings)), save=False)
    if state in ("ready", "pretraining"):
        rng = np.random.default_rng(0)
        profile = {
            "params": np.array([100.0 * w * d for w, d in encodings]),
            "flops": np.array([1000.0 * w * d * d for w, d in encodings]),
            "latency": rng.random(len(encodings)) / 1000,
        }
        profile["latency"][3] = np.nan
        _store_profile(space, profile, failures={3: "ValueError: width 1 depth 4 is not supported"})
        if quality:
            space.surrogate_quality = {
                "params": {"tau": 0.91, "n": 10, "predicted": [1.0, 2.0, 3.1], "measured": [1.0, 2.2, 2.9]},
            }
    space.save()
    return space


def make_search(owner: Any, space: SearchSpace, *, n_evaluations: int = 30, state: str = "running",
                name: str = "search one", failed_every: int = 0, lo_every: int = 0, in_flight: int = 0,
                budget: float | None = None) -> SearchInstance:
    search = SearchInstance.objects.create(
        uid=uuid.uuid4(), owner=owner, space=space, name=name, evaluator_kind="tabular", budget=budget or
        max(n_evaluations, 1) * 2, hi_fi_cost=1.0, lo_fi_cost=0.25 if lo_every else None, state=state,
        evaluator_config={"delay_s": 0},
    )
    rows = (f"{i},{50 + (i * 37) % 41},{45 + (i * 37) % 41}\n" for i in range(space.n_encodings))
    table = "index,hi,lo\n" + "".join(rows)
    search.evaluator_table.save("table.csv", ContentFile(table.encode()), save=True)
    rows, best, spent = [], None, 0.0
    now = timezone.now()
    for seq in range(1, n_evaluations + 1):
        fidelity = "lo" if lo_every and seq % lo_every == 0 else "hi"
        failed = bool(failed_every) and seq % failed_every == 0
        value = None if failed else round(50 + 40 * (1 - 1 / seq) + (seq % 7) * 0.3, 4)
        cost = 0.0 if failed else (0.25 if fidelity == "lo" else 1.0)
        spent += cost
        if fidelity == "hi" and value is not None and (best is None or value > best):
            best = value
        rows.append(Evaluation(
            search=search, encoding_index=seq % space.n_encodings, fidelity=fidelity,
            attempt=1 + seq // space.n_encodings, state="failed" if failed else "done", value=value, cost=cost,
            seq=seq, spent_after=spent, best_after=best, finished_at=now, duration_s=0.01,
            predicted_mean=value, predicted_std=0.5, error="RuntimeError: out of memory" if failed else "",
            log_tail=f"log of evaluation {seq}\n",
        ))
    for position in range(in_flight):
        rows.append(Evaluation(search=search, encoding_index=position, fidelity="hi", attempt=100_000, state="running",
                               gpu=str(position), log_tail=f"epoch 1/12 of encoding {position}\n"))
    Evaluation.objects.bulk_create(rows, batch_size=2000)
    search.finished_count = n_evaluations
    search.spent = spent
    search.best_value = best
    search.best_index = 1 if best is not None else None
    search.save()
    return search


def make_long_space(owner: Any, *, length: int, n: int = 8) -> SearchSpace:
    """A ready space of ``n`` encodings of ``length`` positions (no profile)."""
    encodings = [[k + position for position in range(length)] for k in range(n)]
    space = SearchSpace(
        uid=uuid.uuid4(), owner=owner, name="long space", n_encodings=n, encoding_length=length, feature_summary=[],
        module_source=MODULE, module_sha256="0" * 64, sample_input_shape=[1, 3, 8, 8], state="ready",
        progress_total=n, progress_done=n,
    )
    space.encodings_file.save("encodings.json", ContentFile(json.dumps(encodings)), save=False)
    space.save()
    return space


def post_search_form(client: Any, space: SearchSpace, table: str, **fields: Any) -> Any:
    """POST the new-search web form: a tabular search on ``space`` whose CSV table is ``table``; ``fields``
    override the form's other values."""
    data = {"space": str(space.id), "name": "web search", "evaluator_kind": "tabular", "budget": "10",
            "hi_fi_cost": "1", "lo_fi_cost": "", "parallelism": "1", "seed": "0", "acquisition": "ei",
            "delay_s": "0", "evaluator_table": SimpleUploadedFile("t.csv", table.encode()), **fields}
    return client.post("/searches/new/", data)


def post_linear_search_form(client: Any, space: SearchSpace, **fields: Any) -> Any:
    """:func:`post_search_form` with the table ``value = 50 + index / 2`` over all of the space's encodings."""
    table = "index,hi\n" + "".join(f"{i},{50 + i / 2}\n" for i in range(space.n_encodings))
    return post_search_form(client, space, table, **fields)
