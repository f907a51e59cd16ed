"""Typed, strict reading of NASWeb's environment variables.

django-environ parses URLs and lists; the wrappers here add what it leaves out:
a malformed value stops start-up with a message naming the variable and the fix,
instead of silently turning ``DEBUG=maybe`` into ``False``.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}

_env = environ.Env()


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None else value.strip()


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use one of true/false, 1/0, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is too small; it must be at least {minimum}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    value = _raw(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a number") from None
    if minimum is not None and number < minimum:
        raise ImproperlyConfigured(f"{name}={number} is too small; it must be at least {minimum}")
    return number


def env_str(name: str, default: str) -> str:
    value = _raw(name)
    return default if value is None or value == "" else value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env_str(name, default)
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={value!r} is not one of {', '.join(choices)}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_path(name: str, default: Path) -> Path:
    value = _raw(name)
    return default if not value else Path(value).expanduser().resolve()


_DB_SCHEMES = {"postgres", "postgresql", "pgsql", "sqlite"}


def env_database(name: str, default_sqlite: Path) -> dict:
    """Parse ``DATABASE_URL``: ``postgres://user:pass@host:port/db`` or ``sqlite:////abs/path``."""
    value = _raw(name)
    if not value:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(default_sqlite),
            # WAL + IMMEDIATE let the web server and a worker write without "database is locked".
            "OPTIONS": {
                "timeout": 30,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": str(default_sqlite.with_name("test-" + default_sqlite.name))},
        }
    scheme = urlsplit(value).scheme
    if scheme not in _DB_SCHEMES:
        raise ImproperlyConfigured(
            f"{name}={_redact(value)!r} has scheme {scheme!r}; use postgres://user@host:5432/dbname "
            "or sqlite:////absolute/path.sqlite3"
        )
    config = _env.db_url_config(value)
    if scheme != "sqlite" and not config.get("NAME"):
        raise ImproperlyConfigured(f"{name}={_redact(value)!r} names no database; add /dbname to the URL")
    if scheme != "sqlite":
        config["CONN_MAX_AGE"] = 60
        config["CONN_HEALTH_CHECKS"] = True
    return config


_BROKER_SCHEMES = {"filesystem", "redis", "rediss", "memory"}


def env_broker(name: str) -> str:
    value = _raw(name)
    if not value:
        return "filesystem://"
    scheme = urlsplit(value).scheme
    if scheme not in _BROKER_SCHEMES:
        raise ImproperlyConfigured(
            f"{name}={_redact(value)!r} has scheme {scheme!r}; use redis://host:6379/0, or leave it unset "
            "for the embedded filesystem broker"
        )
    return value


def secret_key(name: str, key_file: Path) -> str:
    """The secret key from the environment, else one generated once into ``key_file``."""
    value = _raw(name)
    if value:
        if len(value) < 32:
            raise ImproperlyConfigured(f"{name} is only {len(value)} characters long; use at least 32 random ones")
        return value
    if key_file.exists():
        return key_file.read_text().strip()
    key_file.parent.mkdir(parents=True, exist_ok=True)
    generated = secrets.token_urlsafe(50)
    # O_EXCL: two processes starting at once must not each write a different key.
    try:
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_file.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(generated)
    return generated


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url
