"""User code runs in a limited, isolated sandbox with no secrets in its environment (attacks: tests/security/)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.security.conftest import running_with_argument
from usercode import SandboxError, SandboxLimits, run_user_code

LIMITS = SandboxLimits(memory_mb=2048, cpu_s=60, wall_s=60)


def evaluate(tmp_path: Path, source: str, limits: SandboxLimits = LIMITS, **options) -> float:
    return run_user_code("evaluate_module", {"encoding": [1, 2], "fidelity": "hi"}, scratch=tmp_path / "scratch",
                         limits=limits, modules={"evaluator_module.py": source}, **options)


def test_result_of_user_code_comes_back(tmp_path: Path) -> None:
    source = "def evaluate(encoding, fidelity):\n    return sum(encoding) + (0.5 if fidelity == 'hi' else 0)\n"
    assert evaluate(tmp_path, source) == 3.5


def test_user_code_sees_no_secret_database_or_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "TOPSECRET" * 5)
    monkeypatch.setenv("DATABASE_URL", "postgres://TOPSECRET@db/x")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://TOPSECRET@redis/0")
    source = (
        "import os\n"
        "def evaluate(encoding, fidelity):\n"
        "    leaked = [k for k in os.environ if k in ('SECRET_KEY', 'DATABASE_URL', 'CELERY_BROKER_URL')\n"
        "              or 'TOPSECRET' in os.environ[k]]\n"
        "    if leaked:\n"
        "        raise RuntimeError(f'leaked {leaked}')\n"
        "    return float(os.getcwd() == os.environ['HOME'])\n"
    )
    assert evaluate(tmp_path, source) == 1.0


def test_an_exception_is_reported_with_its_traceback(tmp_path: Path) -> None:
    with pytest.raises(SandboxError) as caught:
        evaluate(tmp_path, "def evaluate(encoding, fidelity):\n    raise ValueError('bad architecture')\n")
    assert caught.value.kind == "error"
    assert "ValueError: bad architecture" in caught.value.message
    assert "evaluator_module.py" in caught.value.details


def test_missing_function_names_it(tmp_path: Path) -> None:
    with pytest.raises(SandboxError, match="no callable 'evaluate'"):
        evaluate(tmp_path, "def evaluat(encoding, fidelity):\n    return 1\n")


def test_wall_clock_limit_kills_the_child(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(SandboxError) as caught:
        evaluate(tmp_path, "import time\ndef evaluate(e, f):\n    time.sleep(60)\n",
                 limits=SandboxLimits(memory_mb=2048, cpu_s=60, wall_s=2))
    assert caught.value.kind == "timeout"
    assert time.monotonic() - started < 15


def test_cpu_limit_stops_a_busy_loop(tmp_path: Path) -> None:
    with pytest.raises(SandboxError) as caught:
        evaluate(tmp_path, "def evaluate(e, f):\n    while True:\n        pass\n",
                 limits=SandboxLimits(memory_mb=2048, cpu_s=1, wall_s=60))
    assert caught.value.kind == "cpu"


def test_memory_limit_stops_a_greedy_child(tmp_path: Path) -> None:
    with pytest.raises(SandboxError) as caught:
        evaluate(tmp_path, "def evaluate(e, f):\n    block = bytearray(3 * 1024**3)\n    return len(block)\n",
                 limits=SandboxLimits(memory_mb=1024, cpu_s=60, wall_s=60))
    assert caught.value.kind == "memory"
    assert "NASWEB_SANDBOX_MEMORY_MB" in caught.value.message


def test_a_crash_without_answer_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SandboxError) as caught:
        evaluate(tmp_path, "import os\ndef evaluate(e, f):\n    os._exit(3)\n")
    assert caught.value.kind == "crashed"
    assert "exit status 3" in caught.value.message


def test_an_exit_status_above_128_is_not_taken_for_a_signal(tmp_path: Path) -> None:
    with pytest.raises(SandboxError) as caught:
        evaluate(tmp_path, "import os\ndef evaluate(e, f):\n    os._exit(200)\n")
    assert caught.value.kind == "crashed"
    assert "exit status 200" in caught.value.message


def test_a_forged_answer_without_an_error_is_still_reported(tmp_path: Path) -> None:
    source = ("import json, os\ndef evaluate(e, f):\n"
              "    json.dump({'ok': False, 'traceback': 7}, open('output.json', 'w'))\n    os._exit(0)\n")
    with pytest.raises(SandboxError) as caught:
        evaluate(tmp_path, source)
    assert caught.value.kind == "error" and caught.value.message == "user code failed"


def test_an_answer_nested_a_million_deep_is_a_failed_run_not_a_crashed_worker(tmp_path: Path) -> None:
    source = ("import os\ndef evaluate(e, f):\n"
              "    open('output.json', 'w').write('[' * 1_000_000 + ']' * 1_000_000)\n    os._exit(0)\n")
    with pytest.raises(SandboxError) as caught:
        evaluate(tmp_path, source)
    assert caught.value.kind == "crashed"


def test_on_tick_can_cancel_and_sees_the_log(tmp_path: Path) -> None:
    seen: list[str] = []

    def tick(log_tail: str) -> bool:
        seen.append(log_tail)
        return "step 3" not in log_tail

    source = (
        "import time\ndef evaluate(e, f):\n"
        "    for i in range(100):\n        print('step', i)\n        time.sleep(0.2)\n"
    )
    with pytest.raises(SandboxError) as caught:
        evaluate(tmp_path, source, on_tick=tick, tick_s=0.2)
    assert caught.value.kind == "cancelled"
    assert any("step 3" in tail for tail in seen)


def test_children_of_user_code_die_with_it(tmp_path: Path) -> None:
    marker = f"{time.time_ns() % 10**6 + 1000}.5"
    source = (
        "import subprocess, time\n"
        "def evaluate(e, f):\n"
        f"    subprocess.Popen(['sleep', {marker!r}])\n"
        "    time.sleep(60)\n"
    )
    with pytest.raises(SandboxError):
        evaluate(tmp_path, source, limits=SandboxLimits(memory_mb=2048, cpu_s=60, wall_s=2))
    assert running_with_argument(marker) == []


def test_without_bubblewrap_the_worker_refuses_with_a_clear_message(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no bwrap on this PATH
    monkeypatch.delenv("NASWEB_SANDBOX", raising=False)
    with pytest.raises(SandboxError) as caught:
        evaluate(tmp_path, "def evaluate(e, f):\n    return 1.0\n")
    assert caught.value.kind == "unavailable"
    assert "apt-get install bubblewrap" in caught.value.message and "NASWEB_SANDBOX=none" in caught.value.message
    assert not (tmp_path / "scratch" / "output.json").exists()


def test_the_development_opt_out_runs_without_isolation_and_warns_every_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("NASWEB_SANDBOX", "none")
    source = "import os\ndef evaluate(e, f):\n    return float(os.path.exists('/etc/shadow'))\n"
    with caplog.at_level("WARNING", logger="usercode.sandbox"):
        assert evaluate(tmp_path, source) == float(Path("/etc/shadow").exists())
        evaluate(tmp_path, source)
    warnings = [r for r in caplog.records if "WITHOUT isolation" in r.getMessage()]
    assert len(warnings) == 2


def test_a_misspelled_isolation_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASWEB_SANDBOX", "bubblewrap")
    with pytest.raises(ValueError, match="NASWEB_SANDBOX is 'bubblewrap'; use 'bwrap'"):
        evaluate(tmp_path, "def evaluate(e, f):\n    return 1.0\n")


@pytest.mark.slow
def test_a_worker_without_bubblewrap_says_so_and_refuses_user_code(start_worker, users, tmp_path: Path) -> None:
    from tests.web.test_space_pipeline import upload, wait_for_state

    worker = start_worker(queues="profile", name="nobwrap", extra_env={"PATH": str(tmp_path), "NASWEB_SANDBOX": ""})
    assert "refuses to run user code" in worker.log()
    space = wait_for_state(upload(users["owner"]), {"ready", "failed"}, timeout=60)
    assert space.state == "failed"
    assert "refusing to run user code: bubblewrap (bwrap) is not installed" in space.failure_reason
