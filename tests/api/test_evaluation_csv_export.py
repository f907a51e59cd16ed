"""A user exports every evaluation of a search as CSV."""

from __future__ import annotations

import csv
import io
import json

from tests.api.tiny import TINY_ENCODINGS


def test_the_csv_has_a_row_per_evaluation_matching_the_api(api, make_search) -> None:
    search = make_search(n_done=10, n_failed=1, n_running=1)
    client = api("owner")
    response = client.get(f"/api/searches/{search.id}/evaluations.csv", HTTP_ACCEPT="text/csv")
    assert response.status_code == 200 and response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="tiny search-evaluations.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    listed = client.get(f"/api/searches/{search.id}/evaluations/?page_size=500").json()["results"]
    assert len(rows) == len(listed) == 12
    for row, evaluation in zip(rows, listed, strict=True):
        assert int(row["evaluation_id"]) == evaluation["id"]
        assert row["state"] == evaluation["state"] and row["fidelity"] == evaluation["fidelity"]
        assert (float(row["value"]) if row["value"] else None) == evaluation["value"]
        assert (int(row["seq"]) if row["seq"] else None) == evaluation["seq"]
        assert json.loads(row["encoding"]) == TINY_ENCODINGS[evaluation["encoding_index"]]
    assert rows[10]["error"] == "Traceback ..."  # first line only


def test_a_large_export_streams_in_several_chunks(api, make_search) -> None:
    search = make_search(n_done=1100, n_failed=0, n_running=0)
    response = api("owner").get(f"/api/searches/{search.id}/evaluations.csv")
    chunks = list(response.streaming_content)
    assert len(chunks) >= 3
    assert b"".join(chunks).decode().count("\n") == 1101


def test_the_csv_has_one_column_per_encoding_position(api, make_search) -> None:
    search = make_search(n_done=4, n_failed=0, n_running=0)
    response = api("owner").get(f"/api/searches/{search.id}/evaluations.csv")
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0][-3:] == ["pos_0", "pos_1", "pos_2"]
    index_column = rows[0].index("encoding_index")
    for row in rows[1:]:
        width, depth, activation = TINY_ENCODINGS[int(row[index_column])]
        assert row[-3:] == [str(width), str(depth), activation]  # names unquoted, numbers as numbers
