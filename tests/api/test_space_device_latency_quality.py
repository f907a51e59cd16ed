"""The space page's Kendall tau on uploaded device latencies: a surrogate pretrained without 20% of them ranks
the hidden ones (issue 15)."""

from __future__ import annotations

import numpy as np
import pytest

from spaces import engine
from spaces.services import load_encodings
from tests.frontend.factories import make_space

pytestmark = pytest.mark.django_db


def test_uploaded_latencies_get_their_own_held_out_kendall_tau(users) -> None:
    space = make_space(users["owner"], n=80)
    encodings = load_encodings(space)
    params = np.array([100.0 * w * d for w, d in encodings])
    device = np.full(len(encodings), np.nan)
    known = np.arange(0, 80, 2)  # half the encodings, 40 values
    device[known] = [1e-4 * w * d * d for w, d in (encodings[i] for i in known)]
    quality = engine.sparse_metric_quality(space, encodings, {"params": params, "latency_phone": device},
                                           "latency_phone")
    assert set(quality) == {"latency_phone"}
    entry = quality["latency_phone"]
    assert entry["n"] == 10 and entry["tau"] is not None and entry["tau"] > 0.3
    assert all(m in device[known] for m in entry["measured"])  # only uploaded values are judged
