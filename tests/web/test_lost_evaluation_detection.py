"""A killed worker's evaluation is found lost and run again within 20 s, with the default settings."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from searches.models import Evaluation
from tests.support.waiting import wait_until
from tests.web.test_search_flow import create_search, running_evaluation_saying

DETECTION_LIMIT_S = 20.0


@pytest.mark.slow
def test_a_killed_workers_evaluation_is_retried_within_twenty_seconds(ready_space, start_worker, users) -> None:
    doomed = start_worker(name="doomed")  # default NASWEB_HEARTBEAT_STALE_S and NASWEB_RECOVERY_INTERVAL_S
    search = create_search(ready_space, users["owner"], delay=30.0, budget=1, parallelism=1)
    lost = running_evaluation_saying(search, "evaluating", message=doomed.log)
    doomed.kill()
    killed_at = timezone.now()
    rescuer = start_worker(name="rescuer")

    def taken_over() -> bool:
        lost.refresh_from_db()
        return lost.state == Evaluation.State.FAILED

    wait_until(taken_over, 60, interval=0.2, message=rescuer.log)
    detected_after = (lost.finished_at - killed_at).total_seconds()
    print(f"lost evaluation taken over {detected_after:.1f} s after its worker was killed")
    assert lost.retried and "worker running this evaluation stopped" in lost.error
    assert detected_after < DETECTION_LIMIT_S, rescuer.log()[-3000:]
    retry = search.evaluations.get(encoding_index=lost.encoding_index, fidelity=lost.fidelity, retried=False)
    assert retry.attempt == lost.attempt + 1 and retry.state in (Evaluation.State.RUNNING, Evaluation.State.DONE)
    # the retry beats every 2 s: once it has run longer than the stale rule, it must still not be taken for lost
    stale_s = settings.NASWEB_HEARTBEAT_STALE_S

    def outlived_the_stale_rule() -> bool:
        retry.refresh_from_db()
        return retry.state != Evaluation.State.RUNNING or (
            retry.started_at is not None and timezone.now() - retry.started_at > timedelta(seconds=stale_s + 2))

    wait_until(outlived_the_stale_rule, stale_s + 60, interval=0.5)
    assert retry.state in (Evaluation.State.RUNNING, Evaluation.State.DONE), retry.error
    if retry.state == Evaluation.State.RUNNING:
        assert timezone.now() - retry.heartbeat_at < timedelta(seconds=5)
