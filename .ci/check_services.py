"""Fail loudly unless PostgreSQL (DATABASE_URL) and Redis (CELERY_BROKER_URL) answer.

Run by .ci/run before the test suite, with the project's virtualenv.
"""

from __future__ import annotations

import os
import sys

import psycopg
import redis


def check_postgres(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1").fetchone()
    except psycopg.Error as exc:
        return f"PostgreSQL at {url} does not answer: {exc}".strip()
    return None


def check_redis(url: str) -> str | None:
    try:
        redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5).ping()
    except redis.RedisError as exc:
        return f"Redis at {url} does not answer: {exc}"
    return None


def main() -> int:
    problems = [
        problem
        for problem in (
            check_postgres(os.environ["DATABASE_URL"]),
            check_redis(os.environ["CELERY_BROKER_URL"]),
        )
        if problem
    ]
    for problem in problems:
        sys.stderr.write(f"CI ERROR: {problem}\n")
    if problems:
        sys.stderr.write(
            "CI needs the machine's PostgreSQL and Redis. Start them with:\n"
            "  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n"
            '  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no '
            "--dir /var/lib/redis --logfile /var/log/redis/ci.log\n"
        )
        return 1
    print("CI: PostgreSQL and Redis answer.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
