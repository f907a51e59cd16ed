"""The one profile-table format: written and read back by the bundle and by the web service."""

from __future__ import annotations

import numpy as np
import pytest

from nastune.errors import BundleError
from nastune.profile_csv import read_profile_csv, write_profile_csv


def test_round_trip_keeps_values_nans_and_failures() -> None:
    profile = {"params": np.array([1.5, np.nan, 3.0]), "flops": np.array([10.0, np.nan, 1e12 / 3])}
    data = write_profile_csv(profile, 3, {1: 'no "net", sorry'})
    back, failures = read_profile_csv(data, 3)
    assert failures == {1: 'no "net", sorry'}
    for metric, values in profile.items():
        np.testing.assert_array_equal(back[metric], values)


def test_without_failures_the_fast_path_reads_the_same_table() -> None:
    profile = {"latency": np.array([0.25, np.nan, 1 / 3, 7.0])}
    back, failures = read_profile_csv(write_profile_csv(profile, 4), 4)
    assert failures == {}
    np.testing.assert_array_equal(back["latency"], profile["latency"])


def test_empty_cells_of_older_web_tables_read_as_nan() -> None:
    back, failures = read_profile_csv(b"index,params,error\n0,1.0,\n1,,boom\n", 2)
    assert np.isnan(back["params"][1]) and failures == {1: "boom"}


@pytest.mark.parametrize("data, reason", [
    (b"idx,params\n0,1\n", "'index' column"),
    (b"index,par ams\n0,1\n", "bad column name"),
    (b"index,params\n0,1\n", "expected (2, 2)"),
    (b"index,params\n0,x\n1,2\n", "malformed"),
])
def test_a_malformed_table_names_the_problem(data: bytes, reason: str) -> None:
    with pytest.raises(BundleError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        read_profile_csv(data, 2)
