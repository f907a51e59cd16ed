"""The dashboard login is throttled per client address like POST /api/token/; the API schema lists the 429."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client


@pytest.fixture(autouse=True)
def _fresh_throttle_counts() -> None:
    cache.clear()  # the counts live in the process's cache


def _login(client: Client, password: str):
    client.get("/accounts/login/")
    return client.post("/accounts/login/", {"username": "owner", "password": password})


def test_thirty_wrong_passwords_in_a_row_are_not_all_answered(users) -> None:
    client = Client()
    statuses = [_login(client, f"guess-{n}").status_code for n in range(30)]
    assert statuses[:20] == [200] * 20  # the form again, "wrong password"
    assert set(statuses[20:]) == {429}
    response = _login(client, "owner-pass-123")
    assert response.status_code == 429  # even the right password waits: the address is throttled
    assert int(response["Retry-After"]) > 0
    assert "Too many login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_another_address_may_still_log_in(users) -> None:
    for n in range(21):
        Client(REMOTE_ADDR="10.0.0.1").post("/accounts/login/", {"username": "owner", "password": f"g{n}"})
    response = Client(REMOTE_ADDR="10.0.0.2").post("/accounts/login/",
                                                   {"username": "owner", "password": "owner-pass-123"})
    assert response.status_code == 302


def test_the_login_page_itself_is_not_counted(users) -> None:
    client = Client()
    for _ in range(30):
        assert client.get("/accounts/login/").status_code == 200
    assert _login(client, "owner-pass-123").status_code == 302


def test_the_rate_is_the_token_rate(users, settings) -> None:
    from frontend.login import LoginRateThrottle

    assert LoginRateThrottle().get_rate() == settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["anon"]


def test_the_api_schema_lists_the_token_endpoints_429(users) -> None:
    client = Client()
    client.login(username="owner", password="owner-pass-123")
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    responses = schema["paths"]["/api/token/"]["post"]["responses"]
    assert "429" in responses and "400" in responses
