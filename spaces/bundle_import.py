"""Importing a shared bundle: bounded checks in the web process (members, total size, checksums streamed,
nothing unpacked), the import itself (load, validate, store) in a worker like other heavy work."""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
import zlib
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from nasweb import safe_json
from nasweb.errors import DomainError
from spaces.models import SearchSpace

logger = logging.getLogger(__name__)

MANIFEST = "manifest.json"
#: a bundle has about six members; more is not a bundle
MAX_MEMBERS = 32
MAX_MANIFEST_BYTES = 1 << 20
CHUNK_BYTES = 1 << 20


class BundleRefused(DomainError):
    """The uploaded bundle is refused; the reason never names a server path."""

    def __init__(self, reason: str) -> None:
        super().__init__("bundle", reason)


def max_bytes() -> int:
    return int(settings.NASWEB_MAX_BUNDLE_MB) * 2**20


def verify_archive(path: Path, *, max_bytes: int) -> dict[str, Any]:
    """Check the zip at ``path`` without unpacking more than one chunk at a time.

    The declared (uncompressed) sizes of all members together must stay within ``max_bytes`` before
    anything is read; :mod:`zipfile` never inflates a member past its declared size (it stops there
    and fails the member's CRC), so reading is bounded by what was checked. Every member the manifest
    lists is then streamed through sha256 and compared with the manifest. Returns the manifest.

    Raises:
        BundleRefused: not a zip, too many members, too large once unpacked, no or malformed manifest,
            a listed member missing or unlisted, corrupt, or failing its checksum.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise BundleRefused("the file is not a NASWeb bundle (not a zip file)") from None
    with archive:
        infos = {info.filename: info for info in archive.infolist()}
        if len(infos) > MAX_MEMBERS:
            raise BundleRefused(f"the bundle has {len(infos)} members; a NASWeb bundle has at most {MAX_MEMBERS}")
        total = sum(info.file_size for info in infos.values())
        if total > max_bytes:
            raise BundleRefused(
                f"the bundle unpacks to {total / 2**20:,.0f} MB, more than the limit of {max_bytes / 2**20:,.0f} MB "
                "(NASWEB_MAX_BUNDLE_MB)")
        manifest_info = infos.get(MANIFEST)
        if manifest_info is None:
            raise BundleRefused(f"the file is not a NASWeb bundle: it has no {MANIFEST}")
        if manifest_info.file_size > MAX_MANIFEST_BYTES:
            raise BundleRefused(f"{MANIFEST} is larger than {MAX_MANIFEST_BYTES // 1024} KB")
        try:
            manifest = safe_json.loads(_read(archive, manifest_info))
        except (json.JSONDecodeError, safe_json.JSONInputError, UnicodeDecodeError) as exc:
            raise BundleRefused(f"{MANIFEST} is not valid JSON: {exc}") from None
        listed = manifest.get("members") if isinstance(manifest, dict) else None
        if not isinstance(listed, dict):
            raise BundleRefused(f"{MANIFEST} is malformed (no members table)")
        for name in infos:
            if name != MANIFEST and name not in listed:
                raise BundleRefused(f"the bundle has member {name!r}, which its manifest does not list")
        for name, entry in listed.items():
            info = infos.get(name)
            if info is None:
                raise BundleRefused(f"the bundle lacks member {name!r} listed in its manifest")
            if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
                raise BundleRefused(f"the manifest entry of member {name!r} has no sha256")
            if _sha256(archive, info) != entry["sha256"]:
                raise BundleRefused(
                    f"bundle member {name!r} fails its sha256 checksum: it was modified after the bundle was "
                    "written (tampered or corrupt); get the bundle again from its source")
    return manifest


def _read(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError):
        raise BundleRefused(f"bundle member {info.filename!r} is corrupt") from None


def _sha256(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    digest = hashlib.sha256()
    try:
        with archive.open(info) as member:
            while chunk := member.read(CHUNK_BYTES):
                digest.update(chunk)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error, NotImplementedError):
        # a member longer than it declares ends at its declared size and fails its CRC here
        raise BundleRefused(f"bundle member {info.filename!r} is corrupt") from None
    return digest.hexdigest()


def without_paths(message: str, path: Path, shown_name: str) -> str:
    """``message`` with the server's temporary ``path`` (and its folder) replaced by the user's file name."""
    return message.replace(str(path), shown_name).replace(str(path.parent), "the upload")


def space_import_bundle_file(*, space_id: int) -> None:
    """Worker side of a bundle import: load the space's stored bundle and make the space ready (or failed,
    with the reason). Idempotent: only an ``uploaded`` space is claimed."""
    from spaces import engine, services

    claimed = SearchSpace.objects.filter(id=space_id, state=SearchSpace.State.UPLOADED).update(
        state=SearchSpace.State.VALIDATING, updated_at=timezone.now())
    space = SearchSpace.objects.filter(id=space_id).first()
    if space is None or (not claimed and space.state != SearchSpace.State.VALIDATING):
        return  # deleted, or a redelivered message for a space already imported
    path = Path(space.bundle_file.path)
    try:
        verify_archive(path, max_bytes=max_bytes())  # the stored file is the one loaded below
        engine_space = engine.load_bundle_space(path)
        if engine_space.surrogate is None:
            raise BundleRefused("the bundle has no pretrained surrogate; preprocess it first")
        encodings = [list(encoding) for encoding in engine_space.encodings]
        info = services.validate_encodings(encodings)
        details = services._bundle_details(path)
    except DomainError as exc:
        services._fail(space_id, f"import failed: {without_paths(exc.reason, path, 'the bundle')}")
        return
    except (engine.BundleError, engine.NastuneError, ValueError, KeyError, OSError) as exc:
        reason = without_paths(str(exc), path, "the bundle")
        services._fail(space_id, f"import failed: not a readable NASWeb bundle: {reason}")
        return
    source = engine_space.module_source or ""
    with transaction.atomic():
        space = SearchSpace.objects.select_for_update().get(id=space_id)
        if space.state != SearchSpace.State.VALIDATING:
            return
        space.n_encodings, space.encoding_length = info["n"], info["length"]
        space.feature_summary = info["feature_summary"]
        space.module_source = source
        space.module_sha256 = hashlib.sha256(source.encode()).hexdigest() if source else ""
        space.progress_done = space.progress_total = info["n"]
        if details.get("description") and space.description == IMPORTED_DESCRIPTION:
            space.description = details["description"]
        space.sample_input_shape = details.get("sample_input_shape") or []
        space.tags = details.get("tags") or []
        # the rankings of earlier searches' results: the web details', else those the library recorded
        # (SearchSpace.add_results); only for results the bundle's profile holds
        ranked = {t["name"]: t["best"] for t in details.get("transfers") or []} or dict(engine_space.transfers)
        space.transfers = [{"name": name, "best": [i for i in best if i < info["n"]]}
                           for name, best in ranked.items() if name in engine_space.profile]
        space.encodings_file.save("encodings.json", ContentFile(json.dumps(encodings, separators=(",", ":"))),
                                  save=False)
        services._store_profile(space, dict(engine_space.profile.items()), failures=engine_space.failures)
        space.state = SearchSpace.State.READY
        space.save()
    logger.info("search space %s imported from its bundle (%s encodings)", space_id, info["n"])


#: the description of an imported space until its bundle's own description is read
IMPORTED_DESCRIPTION = "Imported bundle"
