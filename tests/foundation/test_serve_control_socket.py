"""Each ``make run`` gunicorn has its own control socket (gunicorn's default is one per user account)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nasweb.serve import control_socket_args


def test_the_control_socket_is_per_port_in_the_var_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASWEB_VAR_DIR", str(tmp_path))
    first, second = control_socket_args(8000), control_socket_args(8001)
    assert first == ["--control-socket", str(tmp_path.resolve() / "run" / "gunicorn-8000.ctl")]
    assert second[1] != first[1] and (tmp_path / "run").is_dir()


def test_a_path_too_long_for_a_unix_socket_turns_it_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASWEB_VAR_DIR", str(tmp_path / ("x" * 120)))
    assert control_socket_args(8000) == ["--no-control-socket"]
