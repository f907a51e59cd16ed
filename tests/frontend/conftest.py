"""Dashboard test fixtures: logged-in clients for the owner and an outsider."""

from __future__ import annotations

import pytest
from django.test import Client


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
