"""A space goes uploaded -> validating -> profiling -> pretraining -> ready through real workers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from spaces import services
from spaces.models import ProfileChunk, SearchSpace
from tests.support.waiting import wait_until

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TINY_SOURCE = (FIXTURES / "tiny_space.py").read_text()


def tiny_encodings() -> list[list]:
    return [[w, d, a] for w in (4, 8, 13, 16) for d in (1, 2, 3) for a in ("relu", "tanh")]


def upload(owner, *, source: str = TINY_SOURCE, encodings: list | None = None, name: str = "tiny") -> SearchSpace:
    data = json.dumps(encodings if encodings is not None else tiny_encodings()).encode()
    return services.space_create(
        owner=owner, name=name, encodings_upload=SimpleUploadedFile("encodings.json", data),
        module_source=source, sample_input_shape="1,3,8,8",
    )


def wait_for_state(space: SearchSpace, states: set[str], timeout: float = 240.0) -> SearchSpace:
    def reached() -> bool:
        space.refresh_from_db()
        return space.state in states

    wait_until(reached, timeout, interval=0.3, message=lambda: f"space stuck in {space.state}")
    return space


@pytest.mark.slow
def test_uploaded_space_is_profiled_pretrained_and_bundled(start_worker, users) -> None:
    start_worker(queues="profile,pretrain")
    space = upload(users["owner"])
    space = wait_for_state(space, {"ready", "failed"})
    assert space.state == "ready", space.failure_reason
    assert space.progress_done == space.progress_total == 24
    profile, failures = services.load_profile(space)
    broken = [i for i, e in enumerate(tiny_encodings()) if e[0] == 13]
    assert sorted(failures) == broken
    assert all("width 13 is not supported" in failures[i] for i in broken)
    # width 4, depth 1: conv 3*4*9 + 4, linear 4*10 + 10 = 162 trainable parameters
    assert profile["params"][0] == 3 * 4 * 9 + 4 + 4 * 10 + 10
    assert all(profile["params"][i] != profile["params"][i] for i in broken)  # NaN for failed ones
    from nastune import load_search_space

    engine_space = load_search_space(space.bundle_file.path)
    assert len(engine_space) == 24 and engine_space.surrogate is not None
    assert engine_space.module_source == TINY_SOURCE


@pytest.mark.slow
def test_a_module_that_cannot_build_networks_fails_validation_with_the_reason(start_worker, users) -> None:
    start_worker(queues="profile,pretrain")
    source = "def encoding_to_net(encoding):\n    raise RuntimeError('no torch here')\n"
    space = wait_for_state(upload(users["owner"], source=source), {"ready", "failed"})
    assert space.state == "failed"
    assert "no torch here" in space.failure_reason
    assert not ProfileChunk.objects.filter(space=space).exists()


def test_ragged_encodings_are_refused_before_anything_is_stored(users) -> None:
    from nasweb.errors import DomainError

    with pytest.raises(DomainError) as caught:
        upload(users["owner"], encodings=[[1, 2], [3]])
    assert caught.value.field == "encodings"
    assert "encoding 1 has length 1" in caught.value.reason
    assert not SearchSpace.objects.exists()


def test_module_without_encoding_to_net_is_refused(users) -> None:
    from nasweb.errors import DomainError

    with pytest.raises(DomainError) as caught:
        upload(users["owner"], source="def build(e):\n    return None\n")
    assert caught.value.field == "module"
    assert "encoding_to_net" in caught.value.reason
    assert not SearchSpace.objects.exists()
