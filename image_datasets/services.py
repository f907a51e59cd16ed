"""Adding, checking and deleting users' image datasets (the web form and the API call these)."""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.uploadedfile import UploadedFile
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from image_datasets.archive import DatasetArchiveError, list_members, unpack
from image_datasets.checks import check_dataset, save_checked
from image_datasets.models import ImageDataset
from nasweb.errors import ConflictError, DomainError
from nasweb.uploads import check_upload_size

logger = logging.getLogger(__name__)

NAME_MAX_CHARS = 120


class ImageDatasetValidationError(DomainError):
    """Bad input for a dataset; ``field`` names the form/API field at fault."""


def _bounds() -> dict[str, int]:
    return {"max_files": settings.NASWEB_DATASET_MAX_FILES, "max_bytes": settings.NASWEB_DATASET_MAX_MB * 2**20}


def _scratch() -> Path:
    root = settings.VAR_DIR / "scratch"
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix="dataset-", dir=root))


def dataset_folder(dataset: ImageDataset) -> Path:
    """Where the checked dataset lives: in the first ``NASWEB_DATASET_DIRS`` folder, so the sandbox may read it."""
    return Path(settings.NASWEB_DATASET_DIRS[0]) / "uploads" / str(dataset.owner_id) / str(dataset.uid)


def image_dataset_create(*, owner: Any, name: str, archive_upload: UploadedFile) -> ImageDataset:
    """Store an uploaded archive as a dataset being checked; a worker unpacks and checks it.

    Here only the archive's listing is read (names, sizes, link flags; bounded), so an archive that is no
    archive, holds a link or a path leaving its folder, or unpacks past the limits is refused at once (400)
    and nothing is stored.
    """
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX_CHARS:
        raise ImageDatasetValidationError("name", f"give the dataset a name of at most {NAME_MAX_CHARS} characters")
    if ImageDataset.objects.filter(owner=owner, name=name).exists():
        raise ImageDatasetValidationError("name", f"you have a dataset called {name!r} already; choose another name")
    check_upload_size(archive_upload, field="archive")
    scratch = _scratch()
    try:
        local = scratch / "upload"
        with local.open("wb") as handle:
            for chunk in archive_upload.chunks():
                handle.write(chunk)
        list_members(local, field="archive", **_bounds())
        with transaction.atomic():
            dataset = ImageDataset(uid=uuid.uuid4(), owner=owner, name=name,
                                   archive_name=Path(archive_upload.name or "upload").name[:255],
                                   archive_bytes=local.stat().st_size)
            with local.open("rb") as handle:
                dataset.archive.save("archive", File(handle), save=False)
            dataset.save()
            transaction.on_commit(lambda: _enqueue_check(dataset.id))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dataset


def _enqueue_check(dataset_id: int) -> None:
    from image_datasets.tasks import check_image_dataset

    check_image_dataset.delay(dataset_id)


def _finish(dataset_id: int, **fields: Any) -> bool:
    """Record the check's outcome unless the dataset was deleted or finished meanwhile."""
    return bool(ImageDataset.objects.filter(id=dataset_id, state=ImageDataset.State.VALIDATING).update(**fields))


def _claim(dataset_id: int) -> bool:
    """Take the check of a validating dataset nobody is checking (never started, or its worker fell silent)."""
    now = timezone.now()
    stale = now - timedelta(seconds=settings.NASWEB_HEARTBEAT_STALE_S)
    return bool(ImageDataset.objects.filter(id=dataset_id, state=ImageDataset.State.VALIDATING).filter(
        Q(heartbeat_at__isnull=True) | Q(heartbeat_at__lt=stale)).update(heartbeat_at=now))


@contextmanager
def _beating(dataset_id: int) -> Iterator[None]:
    """Record every ``HEARTBEAT_S`` that this worker is still checking the dataset (the recovery rule's clue)."""
    from nasweb.recovery import HEARTBEAT_S

    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(HEARTBEAT_S):
                ImageDataset.objects.filter(id=dataset_id).update(heartbeat_at=timezone.now())
        finally:
            connection.close()  # this thread's own connection

    beater = threading.Thread(target=beat, name=f"dataset-{dataset_id}-heartbeat", daemon=True)
    beater.start()
    try:
        yield
    finally:
        stop.set()
        beater.join(timeout=10)


def image_dataset_check(*, dataset_id: int) -> None:
    """Unpack (bounded) and check a dataset, write it as a checked folder, and mark it ready or failed.

    Idempotent: a dataset no longer validating, or being checked by a live worker, is left alone, and a
    folder left by a killed run is replaced. The archive is deleted either way, so a failed dataset keeps
    only its reason.
    """
    if not _claim(dataset_id):
        return
    dataset = ImageDataset.objects.get(id=dataset_id)
    with _beating(dataset_id):
        _check(dataset)


def _check(dataset: ImageDataset) -> None:
    dataset_id = dataset.id
    target = dataset_folder(dataset)
    scratch = _scratch()
    try:
        if not dataset.archive:
            raise DatasetArchiveError("archive", "the uploaded archive is gone; upload it again")
        local = Path(dataset.archive.path)
        unpacked = scratch / "unpacked"
        unpack(local, unpacked, **_bounds())
        checked = check_dataset(unpacked)
        partial = scratch / "checked"
        save_checked(checked, partial)
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(partial), str(target))
        ready = _finish(dataset_id, state=ImageDataset.State.READY, format=checked.format, folder=str(target),
                        class_names=checked.class_names, split_sizes=checked.split_sizes,
                        image_shape=checked.image_shape, failure_reason="")
        if not ready:
            shutil.rmtree(target, ignore_errors=True)
    except DatasetArchiveError as exc:
        shutil.rmtree(target, ignore_errors=True)
        _finish(dataset_id, state=ImageDataset.State.FAILED, failure_reason=exc.reason)
    except Exception as exc:  # our reading code failed: the dataset must say why, not hang in "validating"
        logger.exception("checking dataset %s failed", dataset_id)
        shutil.rmtree(target, ignore_errors=True)
        _finish(dataset_id, state=ImageDataset.State.FAILED,
                failure_reason=f"the dataset could not be checked: {type(exc).__name__}: {exc}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        if dataset.archive:
            dataset.archive.delete(save=False)
            ImageDataset.objects.filter(id=dataset_id).update(archive="")


def image_dataset_delete(*, dataset: ImageDataset) -> None:
    """Delete a dataset and its files; refused while an active search trains on it."""
    from searches.models import SearchInstance

    if dataset.folder:
        active = SearchInstance.objects.filter(owner=dataset.owner, state__in=SearchInstance.ACTIVE_STATES,
                                               evaluator_config__dataset=dataset.folder)
        if active.exists():
            names = ", ".join(active.values_list("name", flat=True)[:5])
            raise ConflictError(None, f"active searches train on this dataset ({names}); cancel them first")
    folder = dataset_folder(dataset)
    archive = dataset.archive
    with transaction.atomic():
        dataset.delete()
        transaction.on_commit(lambda: (shutil.rmtree(folder, ignore_errors=True),
                                       archive.delete(save=False) if archive else None))
