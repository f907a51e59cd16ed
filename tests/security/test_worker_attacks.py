"""An uploaded ``encoding_to_net`` module that attacks when a real Celery worker validates it gets nothing."""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from spaces import services
from spaces.models import SearchSpace
from tests.security.conftest import running_with_argument
from tests.support import workers

ATTACK = '''
import json, os, socket

report = {{}}


def attempt(key, action):
    try:
        report[key] = {{"ok": True, "value": action()}}
    except BaseException as exc:
        report[key] = {{"ok": False, "error": f"{{type(exc).__name__}}: {{exc}}"}}


def environments():
    found = []
    for pid in ["1", str(os.getppid())] + [p for p in os.listdir("/proc") if p.isdigit()]:
        try:
            found.append(open(f"/proc/{{pid}}/environ", "rb").read().decode(errors="replace"))
        except OSError:
            pass
    return found


attempt("secret", lambda: open({secret!r}).read())
attempt("environ", environments)
report["own environ"] = dict(os.environ)
for host, port in {targets!r}:
    attempt(f"{{host}}:{{port}}", lambda: socket.create_connection((host, port), timeout=2).getpeername())
attempt("write media", lambda: open({planted!r}, "w").write("pwned"))
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", {marker!r}])
    os._exit(0)
os.wait()
raise RuntimeError("ATTACK REPORT " + json.dumps(report, default=str) + " END")


def encoding_to_net(encoding):
    raise RuntimeError("never reached")
'''


def _service_targets(port: int) -> list[tuple[str, int]]:
    targets = [("127.0.0.1", 5432), ("127.0.0.1", 6379), ("127.0.0.1", port)]
    database = settings.DATABASES["default"]
    if database.get("HOST"):
        targets.append((database["HOST"], int(database.get("PORT") or 5432)))
    return targets


@pytest.mark.slow
def test_an_attacking_module_gets_nothing_through_a_real_worker(start_worker, users) -> None:
    secret_file = Path(settings.VAR_DIR) / "secret_key"
    if not secret_file.exists():
        secret_file.write_text(f"SENTINEL-KEY-{uuid.uuid4().hex}")
    environment_marker = f"WORKERSECRET{uuid.uuid4().hex}"
    planted = Path(settings.MEDIA_ROOT) / f"planted-{uuid.uuid4().hex}.py"
    marker = f"{time.time_ns() % 10**6 + 5000}.75"
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        targets = _service_targets(listener.getsockname()[1])
        start_worker(queues="profile", name="attacked", extra_env={"NASWEB_ATTACK_MARKER": environment_marker})
        source = ATTACK.format(secret=str(secret_file), targets=targets, planted=str(planted), marker=marker)
        space = services.space_create(
            owner=users["owner"], name="attack", module_source=source, sample_input_shape="1,3,8,8",
            encodings_upload=SimpleUploadedFile("encodings.json", json.dumps([[1], [2]]).encode()))
        deadline = time.monotonic() + 180
        while space.state not in (SearchSpace.State.FAILED, SearchSpace.State.READY):
            assert time.monotonic() < deadline, f"space stuck in {space.state}"
            time.sleep(0.5)
            space.refresh_from_db()
    reason = space.failure_reason
    assert space.state == SearchSpace.State.FAILED and "ATTACK REPORT " in reason, reason
    report = json.loads(reason.split("ATTACK REPORT ", 1)[1].split(" END", 1)[0])
    assert not report["secret"]["ok"], report["secret"]
    assert secret_file.read_text().strip() not in reason
    assert environment_marker not in reason and workers.test_database_url() not in reason
    for host, port in targets:
        assert not report[f"{host}:{port}"]["ok"], report
    assert not report["write media"]["ok"] and not planted.exists()
    assert running_with_argument(marker) == []
