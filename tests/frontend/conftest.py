"""Dashboard test fixtures: logged-in clients for the owner and an outsider."""

from __future__ import annotations

import pytest
from django.test import Client


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings) -> None:
    # PBKDF2's deliberate slowness is for real passwords; three test users per test need none of it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def owner_client(users: dict) -> Client:
    client = Client()
    client.force_login(users["owner"])
    return client


@pytest.fixture
def outsider_client(users: dict) -> Client:
    client = Client()
    client.force_login(users["outsider"])
    return client
