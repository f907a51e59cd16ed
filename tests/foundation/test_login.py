"""Logging in and out, and the dashboard being for logged-in users only."""

from __future__ import annotations


def test_anonymous_visitor_is_sent_to_the_login_page(client, db) -> None:
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_login_page_has_labelled_fields(client, db) -> None:
    page = client.get("/accounts/login/").content.decode()
    assert '<label for="id_username">' in page
    assert '<label for="id_password">' in page


def test_user_logs_in_and_sees_an_empty_dashboard(client, users) -> None:
    response = client.post("/accounts/login/", {"username": "owner", "password": "owner-pass-123"})
    assert response.status_code == 302
    page = client.get("/").content.decode()
    assert "Your searches" in page
    assert "No searches yet" in page


def test_wrong_password_shows_an_error(client, users) -> None:
    response = client.post("/accounts/login/", {"username": "owner", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct" in response.content.decode()


def test_logout_ends_the_session(client, users) -> None:
    client.login(username="owner", password="owner-pass-123")
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/").status_code == 302
