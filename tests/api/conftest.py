"""The API tests' cast and scenery: token clients for the owner, a teammate and an outsider, and
spaces, searches and evaluations created as rows (no worker runs in these tests)."""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from searches.models import Evaluation, SearchInstance
from spaces.models import SearchSpace
from spaces.services import _store_profile
from tests.api.tiny import MODULE, TINY_ENCODINGS, tiny_params, tiny_value


@pytest.fixture(scope="session")
def pretrained_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real bundle of the tiny space written by nastune, with its module and a pretrained surrogate
    (built once per session: pretraining takes a few seconds)."""
    from nastune import create_search_space

    space = create_search_space("tiny bundle", tmp_path_factory.mktemp("bundle") / "tiny.nastune", TINY_ENCODINGS)
    space.module_source = MODULE
    params = np.array([tiny_params(i) for i in range(len(TINY_ENCODINGS))])
    space.preprocess(pretraining_data={"params": params, "flops": params * 64}, seed=0, progress=False, n_members=2)
    return Path(space.save_filename)


@pytest.fixture
def api(users: dict) -> Callable[[str], APIClient]:
    """``api("owner")``: a client sending that user's API token."""

    def client_for(role: str) -> APIClient:
        client = APIClient()
        token, _ = Token.objects.get_or_create(user=users[role])
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return client_for


@pytest.fixture
def make_space(users: dict) -> Callable[..., SearchSpace]:
    """A tiny search space row of the owner's (24 encodings, profiled params and flops), ready by default."""

    def make(*, owner: Any = None, state: str = SearchSpace.State.READY, name: str = "tiny",
             with_bundle: bool = True) -> SearchSpace:
        space = SearchSpace(
            uid=uuid.uuid4(), owner=owner or users["owner"], name=name, n_encodings=len(TINY_ENCODINGS),
            encoding_length=3, feature_summary=[], module_source=MODULE, module_sha256="0" * 64,
            sample_input_shape=[1, 3, 8, 8], state=state, progress_done=len(TINY_ENCODINGS),
            progress_total=len(TINY_ENCODINGS),
        )
        space.encodings_file.save("encodings.json", ContentFile(json.dumps(TINY_ENCODINGS)), save=False)
        params = np.array([tiny_params(i) for i in range(len(TINY_ENCODINGS))])
        params[2] = np.nan  # one candidate whose profiling failed
        _store_profile(space, {"params": params, "flops": params * 64}, failures={2: "width 13 is not supported"})
        if with_bundle:
            space.bundle_file.save("space.nastune", ContentFile(b"PK-not-really-a-bundle"), save=False)
        space.save()
        return space

    return make


@pytest.fixture
def make_search(users: dict, make_space: Callable[..., SearchSpace]) -> Callable[..., SearchInstance]:
    """A tabular search row with ``n_done`` finished evaluations (alternating hi/lo), one failed one
    and ``n_running`` in flight; values follow :func:`tiny_value`."""

    def make(*, owner: Any = None, space: SearchSpace | None = None, state: str = SearchInstance.State.RUNNING,
             n_done: int = 10, n_failed: int = 1, n_running: int = 1, name: str = "tiny search",
             evaluator_kind: str = SearchInstance.EvaluatorKind.TABULAR) -> SearchInstance:
        owner = owner or users["owner"]
        space = space or make_space(owner=owner)
        search = SearchInstance(uid=uuid.uuid4(), owner=owner, space=space, name=name, evaluator_kind=evaluator_kind,
                                budget=8, hi_fi_cost=10, lo_fi_cost=2, parallelism=2, state=state)
        if evaluator_kind == SearchInstance.EvaluatorKind.TABULAR:
            table = io.StringIO()
            writer = csv.writer(table)
            writer.writerow(["index", "hi", "lo"])
            for index in range(len(TINY_ENCODINGS)):
                writer.writerow([index, tiny_value(index), tiny_value(index, "lo")])
            search.evaluator_table.save("table.csv", ContentFile(table.getvalue().encode()), save=False)
        search.save()
        start = timezone.now() - timedelta(hours=1)
        rows, spent, best = [], 0.0, None
        order = [i for i in range(len(TINY_ENCODINGS)) if i != 2]
        for seq in range(1, n_done + n_failed + 1):
            index = order[(seq - 1) % len(order)]
            fidelity = "hi" if seq % 2 else "lo"
            failed = seq > n_done
            value = None if failed else tiny_value(index, fidelity)
            cost = 0.0 if failed else (1.0 if fidelity == "hi" else 0.2)
            spent += cost
            if fidelity == "hi" and value is not None:
                best = value if best is None else max(best, value)
            rows.append(Evaluation(
                # (index, fidelity) repeats every 46 rows: later rounds count as further attempts
                search=search, encoding_index=index, fidelity=fidelity, attempt=1 + (seq - 1) // (2 * len(order)),
                state="failed" if failed else "done",
                value=value, cost=cost, seq=seq, spent_after=spent, best_after=best,
                started_at=start + timedelta(seconds=seq), finished_at=start + timedelta(seconds=seq + 1),
                duration_s=1.0 + seq / 100, worker="test:1", log_tail=f"log of evaluation {seq}\n",
                error="Traceback ...\nValueError: broken" if failed else "", predicted_mean=0.5, predicted_std=0.1,
            ))
        for k in range(n_running):
            rows.append(Evaluation(search=search, encoding_index=order[-1 - k], fidelity="hi", state="running",
                                   started_at=timezone.now(), worker="test:2", log_tail="epoch 1\n"))
        Evaluation.objects.bulk_create(rows)
        search.finished_count = n_done + n_failed
        search.spent = spent
        search.best_value = best
        search.best_index = max((r for r in rows if r.fidelity == "hi" and r.value is not None),
                                key=lambda r: r.value).encoding_index if best is not None else None
        search.save()
        return search

    return make


@pytest.fixture(autouse=True)
def _fresh_throttle_counts() -> None:
    """The token endpoint's throttle counts in the process's cache; each test starts from zero."""
    from django.core.cache import cache

    cache.clear()
