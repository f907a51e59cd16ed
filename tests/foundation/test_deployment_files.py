"""docker/compose.yaml, the Dockerfile, .ci/run and the README agree with how NASWeb runs.

No Docker engine runs here, so the compose file is checked as data (PyYAML), the way
`docker compose config` would read it: services, their commands, health checks, volumes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())


def test_compose_has_the_five_services_with_health_checks() -> None:
    services = compose()["services"]
    assert set(services) == {"web", "worker-cpu", "worker-gpu", "postgres", "redis"}
    for name, service in services.items():
        assert "healthcheck" in service, f"{name} has no health check"
        assert service["healthcheck"]["test"], name


def test_web_migrates_then_runs_gunicorn_and_checks_healthz() -> None:
    web = compose()["services"]["web"]
    command = " ".join(web["command"])
    assert "manage.py migrate" in command and "gunicorn nasweb.wsgi:application" in command
    assert "/healthz" in " ".join(web["healthcheck"]["test"])
    assert web["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert web["depends_on"]["redis"]["condition"] == "service_healthy"


def test_cpu_worker_serves_cpu_queues_and_gpu_worker_the_gpu_queue() -> None:
    services = compose()["services"]
    cpu = services["worker-cpu"]["command"]
    gpu = services["worker-gpu"]["command"]
    assert cpu[cpu.index("--queues") + 1] == "profile,pretrain,search"
    assert gpu[gpu.index("--queues") + 1] == "gpu"
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]


def test_app_services_share_settings_and_named_volumes() -> None:
    document = compose()
    for name in ("web", "worker-cpu", "worker-gpu"):
        env = document["services"][name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
        assert "media:/var/lib/nasweb/media" in document["services"][name]["volumes"]
    assert set(document["volumes"]) == {"pgdata", "redisdata", "media"}
    assert "pgdata:/var/lib/postgresql/data" in document["services"]["postgres"]["volumes"]


def test_dockerfile_installs_pinned_requirements_and_runs_as_non_root() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "FROM python:3.11" in dockerfile
    assert "pip install --extra-index-url \"$TORCH_INDEX\" -r requirements.txt" in dockerfile
    assert "USER nasweb" in dockerfile


def test_ci_runs_the_readme_test_command_against_postgres_and_redis() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make run" in readme and "make test" in readme
    assert ci.strip().splitlines()[-1] == "make test"
    assert "DATABASE_URL=postgres://postgres@127.0.0.1:5432/test" in ci
    assert "CELERY_BROKER_URL=redis://127.0.0.1:6379/0" in ci
    assert os.access(ROOT / ".ci" / "run", os.X_OK)


def test_service_check_fails_loudly_when_redis_is_down() -> None:
    env = {**os.environ, "DATABASE_URL": "postgres://postgres@127.0.0.1:1/test",
           "CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run([sys.executable, ".ci/check_services.py"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert "CI ERROR: Redis at redis://127.0.0.1:1/0 does not answer" in result.stderr
    assert "CI ERROR: PostgreSQL at postgres://postgres@127.0.0.1:1/test does not answer" in result.stderr


def test_readme_lists_every_environment_variable_the_settings_read() -> None:
    import re

    readme = (ROOT / "README.md").read_text()
    read = set(re.findall(r'env_\w+\(\s*"([A-Z_]+)"', (ROOT / "nasweb" / "settings.py").read_text()))
    read |= set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', (ROOT / "nasweb" / "serve.py").read_text()))
    missing = sorted(name for name in read if f"`{name}`" not in readme)
    assert not missing, f"README's configuration table lacks {missing}"
