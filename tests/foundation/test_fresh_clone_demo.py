"""A fresh clone with nothing beside it (no ``../shared``, no NB201 table path set) runs ``make run``'s demo:
the NB201 searches from the table shipped in the repository and the digits search that trains for real."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
DONE_PER_SEARCH = """SELECT s.name, COUNT(e.id) FROM searches_searchinstance s
                     LEFT JOIN searches_evaluation e ON e.search_id = s.id AND e.state = 'done' GROUP BY s.id"""


def _done_per_search(database: Path) -> dict[str, int]:
    if not database.exists():
        return {}
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
        try:
            return dict(connection.execute(DONE_PER_SEARCH).fetchall())
        except sqlite3.OperationalError:  # not migrated yet, or the database is busy: ask again
            return {}


@pytest.mark.slow
def test_fresh_clone_without_shared_folder_serves_the_demo_and_trains(tmp_path: Path, free_port: int) -> None:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True, timeout=120)
    assert not (clone.parent / "shared").exists()
    assert (clone / "examples" / "nb201" / "data" / "nb201_merged.csv.xz").is_file()
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "CELERY_BROKER_URL", "SECRET_KEY", "NASWEB_NB201_CSV", "PYTHONPATH",
                          "NASWEB_DATASET_DIRS", "NASWEB_MEDIA_ROOT")}
    var = tmp_path / "var"
    env.update({"NASWEB_VAR_DIR": str(var), "NASWEB_PORT": str(free_port), "PYTHONUNBUFFERED": "1",
                "WEB_CONCURRENCY": "1", "WORKER_CONCURRENCY": "2"})
    log_path = tmp_path / "serve.log"
    with log_path.open("w") as log:
        serve = subprocess.Popen([sys.executable, "-m", "nasweb.serve"], cwd=clone, env=env, stdout=log,
                                 stderr=subprocess.STDOUT)
    try:
        def serving() -> bool:
            assert serve.poll() is None, f"serve exited early:\n{log_path.read_text()}"
            return "running at http://" in log_path.read_text()

        wait_until(serving, 420, interval=1.0, message=lambda: log_path.read_text())
        text = log_path.read_text()
        assert "skipped" not in text and "not found" not in text, text
        assert "Digits demo search created" in text and "Demo searches created" in text, text

        database = var / "nasweb.sqlite3"

        def trained() -> bool:
            done = _done_per_search(database)
            digits = [count for name, count in done.items() if name.startswith("Digits")]
            live = [count for name, count in done.items() if "(live)" in name and not name.startswith("Digits")]
            return bool(digits and digits[0] >= 1 and live and live[0] >= 1)

        wait_until(trained, 300, interval=2.0,
                   message=lambda: f"{_done_per_search(database)}\n{log_path.read_text()[-4000:]}")
        done = _done_per_search(database)
        assert any(name.startswith("CIFAR-10, 20 evaluations") and count == 20 for name, count in done.items()), done
    finally:
        serve.send_signal(signal.SIGINT)
        try:
            serve.wait(timeout=60)
        except subprocess.TimeoutExpired:
            serve.kill()
