"""Latencies measured on the user's own device for some encodings (issue 15): stored as latency_<device>,
the space pretrained again; a bad row is a 400 that names it."""

from __future__ import annotations

import io

import numpy as np
import pytest

from spaces.models import SearchSpace
from spaces.services import load_profile
from tests.api.expect import assert_error

pytestmark = pytest.mark.django_db


def upload(api, space, text: str, device: str = "Pixel 7") -> object:
    return api("owner").post(f"/api/spaces/{space.id}/device-latencies/",
                             {"device": device, "file": io.BytesIO(text.encode())}, format="multipart")


def rows(indices, start: float = 1e-3) -> str:
    return "index,latency\n" + "".join(f"{i},{start * (1 + i)}\n" for i in indices)


def test_uploaded_latencies_become_a_sparse_metric_and_the_space_pretrains_again(api, make_space) -> None:
    space = make_space()
    response = upload(api, space, rows(range(0, 24, 2)))
    assert response.status_code == 202, response.content
    space.refresh_from_db()
    assert space.state == SearchSpace.State.PRETRAINING and "latency_pixel_7" in space.metrics
    column = load_profile(space)[0]["latency_pixel_7"]
    assert np.isfinite(column).sum() == 12 and column[4] == pytest.approx(5e-3) and np.isnan(column[1])
    assert "params" in load_profile(space)[0]  # the profiled metrics stay


def test_encodings_can_name_the_rows(api, make_space) -> None:
    space = make_space()
    text = "encoding,latency\n" + "".join(f"\"[{w}, {d}, \"\"relu\"\"]\",{w * d * 1e-4}\n"
                                          for w in (4, 8, 13, 16) for d in (1, 2, 3))
    assert upload(api, space, text).status_code == 202


@pytest.mark.parametrize("text, reason", [
    (rows(range(10)) + "99,0.002\n", "row 12: index 99 is outside the space (0..23)"),
    ("index,latency\n0,0.001\n1,fast\n", "row 3: latency 'fast' is not a number"),
    ("index,latency\nfirst,0.001\n", "row 2: index 'first' is not an integer"),
    ("index,latency\n0,0.001\n0,0.002\n", "row 3: encoding 0 was given twice"),
    ("encoding,latency\n\"[5, 1, \"\"relu\"\"]\",0.1\n", "row 2: encoding"),
    ("idx,ms\n0,1\n", "row 1: the header"),
])
def test_a_bad_row_is_a_400_naming_the_row(api, make_space, text: str, reason: str) -> None:
    space = make_space()
    assert_error(upload(api, space, text), 400, "file", reason)
    space.refresh_from_db()
    assert space.state == SearchSpace.State.READY and "latency_pixel_7" not in space.metrics


def test_too_few_latencies_or_no_device_name_are_refused(api, make_space) -> None:
    space = make_space()
    assert_error(upload(api, space, rows(range(3))), 400, "file", "too few")
    assert_error(upload(api, space, rows(range(12)), device="  "), 400, "device")


def test_a_space_that_is_not_ready_refuses_uploads(api, make_space) -> None:
    space = make_space(state=SearchSpace.State.PRETRAINING)
    assert_error(upload(api, space, rows(range(12))), 409, "state")


def test_an_outsider_cannot_upload_latencies(api, make_space) -> None:
    space = make_space()
    response = api("outsider").post(f"/api/spaces/{space.id}/device-latencies/",
                                    {"device": "x", "file": io.BytesIO(rows(range(12)).encode())}, format="multipart")
    assert response.status_code == 404
