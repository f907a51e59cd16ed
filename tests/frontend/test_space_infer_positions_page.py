"""The New space form previews each position's type through a dashboard endpoint that answers 200 with the
positions, or with the errors of a file the engine refuses (no console error for an explained mistake)."""

from __future__ import annotations

from django.core.files.uploadedfile import SimpleUploadedFile


def test_a_good_file_gets_one_entry_per_position(owner_client) -> None:
    upload = SimpleUploadedFile("e.csv", b"4,1,relu\n8,2,tanh\n16,3,relu\n")
    body = owner_client.post("/spaces/new/positions/", {"encodings": upload}).json()
    assert [p["position"] for p in body["positions"]] == [0, 1, 2]


def test_a_ragged_file_is_answered_200_with_the_reason(owner_client) -> None:
    upload = SimpleUploadedFile("ragged.csv", b"4,1,relu\n8,2\n16,3,tanh\n")
    response = owner_client.post("/spaces/new/positions/", {"encodings": upload})
    assert response.status_code == 200
    assert "encoding 1 has length 2" in response.json()["errors"][0]["reason"]


def test_anonymous_visitors_are_sent_to_log_in(client) -> None:
    response = client.post("/spaces/new/positions/", {})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
