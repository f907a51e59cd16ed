"""What crosses the sandbox's border besides user code: datasets (read-only, from allowed folders) and run folders."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from usercode import SandboxLimits, run_user_code, tail
from usercode.inputs import dataset_for_sandbox, hub_dataset_folder, working_copy


@pytest.mark.parametrize("name", ["/", "/etc", "{var}", "{var}/datasets/../media", "../../.."])
def test_a_server_side_dataset_outside_the_dataset_folders_is_refused(name: str, tmp_path: Path) -> None:
    config = {"dataset": name.format(var=settings.VAR_DIR)}
    with pytest.raises(ValueError, match="not inside a dataset folder of this server"):
        dataset_for_sandbox(config, cache_root=tmp_path, allowed_roots=[Path(settings.VAR_DIR) / "datasets"])


def test_a_dataset_folder_is_shown_read_only_and_nothing_beside_it(run_attack, tmp_path: Path) -> None:
    root = Path(settings.VAR_DIR) / "datasets"
    dataset = root / f"set-{uuid.uuid4().hex}"
    dataset.mkdir(parents=True)
    (dataset / "data.csv").write_text("x,y\n1,2\n")
    neighbour = root / f"other-{uuid.uuid4().hex}"
    neighbour.mkdir()
    (neighbour / "private.csv").write_text("secret\n")
    config = {"dataset": str(dataset)}
    inputs = dataset_for_sandbox(config, cache_root=tmp_path, allowed_roots=[root])
    assert inputs == [dataset.resolve()]
    outcome = run_attack(
        "def attack(report):\n"
        f"    attempt(report, 'read', lambda: open({str(dataset / 'data.csv')!r}).read())\n"
        f"    attempt(report, 'write', lambda: open({str(dataset / 'data.csv')!r}, 'a').write('pwned'))\n"
        f"    attempt(report, 'neighbour', lambda: open({str(neighbour / 'private.csv')!r}).read())\n",
        read_only=tuple(inputs))
    assert outcome.error is None, outcome.error
    assert outcome.report["read"] == {"ok": True, "value": "x,y\n1,2\n"}
    assert not outcome.succeeded("write") and not outcome.succeeded("neighbour"), outcome.report
    assert (dataset / "data.csv").read_text() == "x,y\n1,2\n"


def test_a_hub_dataset_is_fetched_by_the_worker_once_into_the_shared_cache(tmp_path: Path) -> None:
    # A local folder of CSV files stands for a Hub id: the same datasets.load_dataset call, no network.
    source = tmp_path / "hub-stand-in"
    source.mkdir()
    (source / "train.csv").write_text("text,label\na,0\nb,1\n")
    cache = tmp_path / "hub-datasets"
    folder = hub_dataset_folder(str(source), cache_root=cache)
    assert (folder / "dataset_dict.json").is_file() and folder.parent == cache
    modified = folder.stat().st_mtime_ns
    assert hub_dataset_folder(str(source), cache_root=cache) == folder
    assert folder.stat().st_mtime_ns == modified  # reused, not fetched again


def test_links_and_fifos_planted_in_a_run_folder_do_not_leak_host_files(tmp_path: Path) -> None:
    secret = Path(settings.VAR_DIR) / "secret_key"
    if not secret.exists():
        secret.write_text(f"SENTINEL-KEY-{uuid.uuid4().hex}")
    run_dir = Path(settings.MEDIA_ROOT) / "searches" / f"run-{uuid.uuid4().hex}"
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pt").write_bytes(b"epoch 1")
    scratch = Path(settings.VAR_DIR) / "scratch" / f"evaluate-{uuid.uuid4().hex}"
    scratch.mkdir(parents=True)
    source = (
        "import os\n"
        "def evaluate(encoding, fidelity):\n"
        f"    run = {str(scratch / 'run')!r}\n"
        "    assert open(os.path.join(run, 'checkpoint.pt')).read() == 'epoch 1'\n"
        f"    os.symlink({str(secret)!r}, os.path.join(run, 'train.log'))\n"
        f"    os.symlink({str(secret.parent)!r}, os.path.join(run, 'var'))\n"
        "    os.mkfifo(os.path.join(run, 'pipe'))\n"
        "    open(os.path.join(run, 'result.json'), 'w').write('{\"accuracy\": 1}')\n"
        "    os.remove('child.log')\n"
        f"    os.symlink({str(secret)!r}, 'child.log')\n"
        "    return 1.0\n"
    )
    with working_copy(run_dir, scratch) as sandbox_run:
        value = run_user_code("evaluate_module", {"encoding": [1], "fidelity": "hi"}, scratch=scratch,
                              limits=SandboxLimits(memory_mb=2048, cpu_s=60, wall_s=60),
                              modules={"evaluator_module.py": source})
        assert value == 1.0
        assert tail(sandbox_run / "train.log", within=scratch) == ""
        assert tail(scratch / "child.log", within=scratch) == ""
        assert tail(sandbox_run / "var" / "secret_key", within=scratch) == ""
    copied = sorted(path.name for path in run_dir.iterdir())
    assert copied == ["checkpoint.pt", "result.json"]  # plain files only: no link, no FIFO
    assert json.loads((run_dir / "result.json").read_text()) == {"accuracy": 1}
    assert not any(os.path.islink(path) for path in run_dir.rglob("*"))
