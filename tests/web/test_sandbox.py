"""User code runs in a limited child process with no secrets in its environment."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

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
    pid_file = tmp_path / "grandchild.pid"
    source = (
        "import subprocess, time\n"
        "def evaluate(e, f):\n"
        f"    child = subprocess.Popen(['sleep', '120'])\n"
        f"    open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "    time.sleep(60)\n"
    )
    with pytest.raises(SandboxError):
        evaluate(tmp_path, source, limits=SandboxLimits(memory_mb=2048, cpu_s=60, wall_s=2))
    grandchild = int(pid_file.read_text())
    time.sleep(0.3)
    status = Path(f"/proc/{grandchild}/status")
    # Gone, or a zombie waiting for init to reap it: either way it no longer runs.
    assert not status.exists() or "State:\tZ" in status.read_text()
