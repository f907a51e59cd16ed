"""A user exchanges a password for an API token and calls the API with it (or with a session)."""

from __future__ import annotations

from rest_framework.test import APIClient

from tests.api.expect import assert_error


def test_a_user_gets_a_token_for_a_correct_password_and_the_token_opens_the_api(users) -> None:
    client = APIClient()
    response = client.post("/api/token/", {"username": "owner", "password": "owner-pass-123"}, format="json")
    assert response.status_code == 200, response.content
    token = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/spaces/").status_code == 200


def test_asking_twice_gives_the_same_token(users) -> None:
    client = APIClient()
    first = client.post("/api/token/", {"username": "owner", "password": "owner-pass-123"}).json()["token"]
    second = client.post("/api/token/", {"username": "owner", "password": "owner-pass-123"}).json()["token"]
    assert first == second


def test_a_wrong_password_gets_no_token(users) -> None:
    response = APIClient().post("/api/token/", {"username": "owner", "password": "nope"}, format="json")
    assert_error(response, 400, None, "unable to log in")
    assert "token" not in response.json()


def test_a_missing_password_is_named(users) -> None:
    assert_error(APIClient().post("/api/token/", {"username": "owner"}, format="json"), 400, "password")


def test_an_anonymous_call_is_refused_with_401_and_says_how_to_authenticate(db) -> None:
    response = APIClient().get("/api/spaces/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert response.json()["errors"][0]["reason"]


def test_a_forged_token_is_refused(db) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token 0123456789abcdef0123456789abcdef01234567")
    assert client.get("/api/spaces/").status_code == 401


def test_a_logged_in_browser_session_opens_the_api(users) -> None:
    client = APIClient(enforce_csrf_checks=True)
    assert client.login(username="owner", password="owner-pass-123")
    assert client.get("/api/spaces/").status_code == 200


def test_a_session_post_without_its_csrf_token_is_refused(users) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="owner", password="owner-pass-123")
    response = client.post("/api/spaces/", {"example": "nb201"}, format="json")
    assert response.status_code == 403
    assert "csrf" in response.json()["errors"][0]["reason"].lower()


def test_guessing_passwords_fast_is_throttled(users, settings) -> None:
    client = APIClient()
    statuses = [client.post("/api/token/", {"username": "owner", "password": f"guess-{n}"}).status_code
                for n in range(25)]
    assert statuses[:20] == [400] * 20
    assert set(statuses[20:]) == {429}
    response = client.post("/api/token/", {"username": "owner", "password": "owner-pass-123"})
    assert response.status_code == 429  # even the right password waits: the address is throttled
    assert "throttled" in response.json()["errors"][0]["reason"].lower()


def test_an_unknown_api_path_answers_in_the_api_error_shape(users) -> None:
    client = APIClient()
    client.login(username="owner", password="owner-pass-123")
    for path in ("/api/searches/abc/", "/api/nothing-here/"):
        response = client.get(path)
        assert response.status_code == 404
        assert response.json() == {"errors": [{"field": None, "reason": "not found"}]}
