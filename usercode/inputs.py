"""What a sandbox run reads and writes outside its scratch folder, prepared by the worker around the run."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def dataset_for_sandbox(config: dict[str, Any], *, cache_root: Path, allowed_roots: Sequence[Path]) -> list[Path]:
    """Make an image-classification payload's dataset readable in the sandbox, which has no network.

    A server-side folder must lie in one of ``allowed_roots`` (``NASWEB_DATASET_DIRS``), since the
    sandbox is shown it read-only: a user naming ``/`` or the service's own folder must not get
    them. A Hugging Face Hub id is downloaded here, by the worker, once, into ``cache_root``
    (shared by the workers) and saved as a folder; the payload's ``dataset`` is rewritten to name
    that folder. Returns the paths to mount read-only.
    """
    name = str(config["dataset"])
    local = Path(name).expanduser()
    if local.is_absolute() or name.startswith((".", "~")) or local.exists():
        resolved = local.resolve()
        roots = [Path(root).resolve() for root in allowed_roots]
        if not any(resolved == root or root in resolved.parents for root in roots):
            raise ValueError(f"dataset folder {name!r} is not inside a dataset folder of this server "
                             f"(NASWEB_DATASET_DIRS: {', '.join(map(str, roots)) or 'none'})")
        if not resolved.is_dir():
            raise FileNotFoundError(f"dataset folder {name!r} does not exist on this worker")
        config["dataset"] = str(resolved)
        return [resolved]
    folder = hub_dataset_folder(name, config.get("dataset_config"), cache_root=cache_root)
    config["dataset"] = str(folder)
    config.pop("dataset_config", None)
    return [folder]


def hub_dataset_folder(name: str, config_name: str | None = None, *, cache_root: Path) -> Path:
    """The Hub dataset ``name`` saved (``save_to_disk``) under ``cache_root``, downloaded on first use."""
    key = hashlib.sha256(f"{name}\0{config_name or ''}".encode()).hexdigest()[:16]
    folder = cache_root / f"{name.replace('/', '--')}-{key}"
    if (folder / "dataset_dict.json").is_file():
        return folder
    cache_root.mkdir(parents=True, exist_ok=True)
    with (cache_root / f"{folder.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one worker downloads, the others wait and reuse its folder
        if not (folder / "dataset_dict.json").is_file():
            import datasets

            loaded = datasets.load_dataset(name, config_name, cache_dir=str(cache_root / "hf-cache"))
            partial = cache_root / f"{folder.name}.partial-{os.getpid()}"
            shutil.rmtree(partial, ignore_errors=True)
            loaded.save_to_disk(str(partial))
            os.replace(partial, folder)
    return folder


@contextlib.contextmanager
def working_copy(folder: Path, scratch: Path, name: str = "run") -> Iterator[Path]:
    """A copy of ``folder`` inside ``scratch`` for the sandbox to work in, copied back when the block ends.

    The sandbox may write only its scratch folder; a training run keeps its checkpoint and log in a
    folder of its own that outlives one attempt, so the worker copies it in and the results out.
    """
    copy = scratch / name
    if folder.is_dir():
        shutil.copytree(folder, copy, ignore=_not_plain, dirs_exist_ok=True)
    else:
        copy.mkdir(parents=True, exist_ok=True)
    try:
        yield copy
    finally:
        # By now the sandbox is dead. Only plain files and folders come back: a symlink the user
        # code planted (to the secret key, say) or a FIFO (which would block the copy) stays behind.
        if copy.is_dir() and not copy.is_symlink():
            shutil.copytree(copy, folder, ignore=_not_plain, dirs_exist_ok=True)


def _not_plain(folder: str, names: list[str]) -> set[str]:
    skipped = set()
    for name in names:
        mode = os.lstat(os.path.join(folder, name)).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            skipped.add(name)
    return skipped
