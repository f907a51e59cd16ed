"""Fixtures of the web integration tests."""

from __future__ import annotations

import pytest

from spaces.models import SearchSpace
from tests.web.test_space_pipeline import upload, wait_for_state


@pytest.fixture
def ready_space(start_worker, users) -> SearchSpace:
    worker = start_worker(queues="profile,pretrain", name="space")
    space = wait_for_state(upload(users["owner"]), {"ready", "failed"})
    assert space.state == "ready", space.failure_reason
    worker.stop()
    return space
