"""Replaying attacks by uploaded code: run an attacking evaluator module the way the workers run user code."""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from usercode import SandboxError, SandboxLimits, run_user_code

# Appended to every attack: ``evaluate`` runs ``attack(report)`` and always leaves the report in
# its working directory (the scratch folder, which the worker can read); ``attempt`` records
# whether one step of an attack worked, and what it got.
HARNESS = '''

def attempt(report, key, action):
    try:
        report[key] = {"ok": True, "value": action()}
    except BaseException as exc:
        report[key] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def evaluate(encoding, fidelity):
    import json
    report = {}
    try:
        attack(report)
    finally:
        with open("report.json", "w") as handle:
            json.dump(report, handle, default=str)
    return 0.0
'''


@dataclass
class Outcome:
    """What an attack left: its own report, the value or the sandbox's error, and the run's log."""

    report: dict[str, Any]
    value: float | None
    error: SandboxError | None
    log: str

    def text(self) -> str:
        """Everything the attacker could get back to its owner (report, error, log) as one string."""
        error = f"{self.error.message}\n{self.error.details}" if self.error else ""
        return json.dumps(self.report, default=str) + error + self.log

    def succeeded(self, key: str) -> bool:
        return bool(self.report.get(key, {}).get("ok"))


def running_with_argument(marker: str) -> list[int]:
    """Host pids of live (not zombie) processes whose command line contains ``marker``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if marker in (proc / "cmdline").read_bytes().decode(errors="replace") and \
                    "State:\tZ" not in (proc / "status").read_text():
                found.append(int(proc.name))
        except (OSError, ValueError):
            continue
    return found


def service_limits(**changes: Any) -> SandboxLimits:
    """The limits the services use (settings), with ``changes``."""
    values = {"memory_mb": settings.NASWEB_SANDBOX_MEMORY_MB, "cpu_s": settings.NASWEB_SANDBOX_CPU_S,
              "wall_s": settings.NASWEB_SANDBOX_WALL_S, "processes": settings.NASWEB_SANDBOX_PROCESSES}
    return SandboxLimits(**{**values, **changes})


@pytest.fixture
def run_attack() -> Iterator[Callable[..., Outcome]]:
    """Run an attack (source defining ``attack(report)``) as a worker runs an uploaded evaluator."""
    created: list[Path] = []

    def run(source: str, *, limits: SandboxLimits | None = None, gpu: str | None = None,
            cgroup: bool = True, read_only: tuple[Path, ...] = ()) -> Outcome:
        root = Path(settings.VAR_DIR) / "scratch"
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix="evaluate-", dir=root))
        log_path = Path(settings.MEDIA_ROOT) / "security-logs" / f"{uuid.uuid4().hex}.log"
        created.extend([scratch, log_path])
        value: float | None = None
        error: SandboxError | None = None
        try:
            value = run_user_code("evaluate_module", {"encoding": [1], "fidelity": "hi"}, scratch=scratch,
                                  limits=limits or service_limits(), modules={"evaluator_module.py": source + HARNESS},
                                  log_path=log_path, gpu=gpu, cgroup=cgroup, read_only=read_only)
        except SandboxError as exc:
            error = exc
        report_file = scratch / "report.json"
        report = json.loads(report_file.read_text()) if report_file.is_file() and not report_file.is_symlink() else {}
        return Outcome(report, value, error, log_path.read_text(errors="replace") if log_path.exists() else "")

    yield run
    for path in created:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
