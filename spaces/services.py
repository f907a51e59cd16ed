"""Business actions on search spaces: create (upload, example, bundle), delete, and the
validation -> profiling -> pretraining pipeline run by the tasks in ``spaces/tasks.py``.

Numerical work is delegated to ``nastune``; user code runs only through ``usercode``.
"""

from __future__ import annotations

import ast
import csv
import hashlib
import io
import json
import logging
import math
import re
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from nasweb import safe_json
from nasweb.errors import ConflictError, DomainError
from nasweb.filecache import FileCache
from nasweb.recovery import keep_beating
from nasweb.uploads import check_upload_size, read_upload
from spaces import bundle_import, engine, examples
from spaces.models import ProfileChunk, SearchSpace
from usercode import SandboxError, SandboxLimits, run_user_code

logger = logging.getLogger(__name__)



class SpaceValidationError(DomainError):
    """Bad input for a search space; ``field`` names the form/API field at fault."""


# --------------------------------------------------------------------------------------------------
# Input parsing and validation (no user code runs here)
# --------------------------------------------------------------------------------------------------


def _parse_scalar(text: str) -> Any:
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return int(stripped)
    except ValueError as exc:
        if "digits" in str(exc):  # Python refuses to convert integers this long (sys.int_info)
            raise SpaceValidationError(
                "encodings", f"a number in the CSV has more than {sys.get_int_max_str_digits()} digits") from None
    try:
        number = float(stripped)
    except ValueError:
        return stripped
    return number if math.isfinite(number) else stripped


def parse_encodings(data: bytes, filename: str) -> list[list[Any]]:
    """Encodings from an uploaded JSON (list of lists, or ``{"encodings": [...]}``) or CSV file."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpaceValidationError("encodings", "the file is not UTF-8 text; upload JSON or CSV") from None
    # A .json file is JSON whatever it starts with ("hello" is an error, not a one-cell CSV).
    is_json = filename.lower().endswith(".json")
    if not is_json and (filename.lower().endswith(".csv") or text.lstrip()[:1] not in ("[", "{")):
        try:
            rows = [row for row in csv.reader(io.StringIO(text)) if row and any(cell.strip() for cell in row)]
        except csv.Error as exc:
            raise SpaceValidationError("encodings", f"the CSV file cannot be read: {exc}") from None
        if rows and all(not isinstance(_parse_scalar(cell), int | float) for cell in rows[0]) and len(rows) > 1 \
                and any(isinstance(_parse_scalar(cell), int | float) for cell in rows[1]):
            rows = rows[1:]  # a header row of names above numeric rows
        return [[_parse_scalar(cell) for cell in row] for row in rows]
    try:
        document = safe_json.loads(text)
    except json.JSONDecodeError as exc:
        raise SpaceValidationError("encodings", f"the JSON is malformed at line {exc.lineno}: {exc.msg}") from None
    except safe_json.JSONInputError as exc:
        raise SpaceValidationError("encodings", str(exc)) from None
    if isinstance(document, dict):
        document = document.get("encodings")
    if not isinstance(document, list):
        raise SpaceValidationError("encodings", 'expected a JSON list of encodings (or {"encodings": [...]})')
    return document


#: Position types a user may choose, and the engine's feature kind each one becomes (``None``: the engine infers).
POSITION_TYPES: dict[str, str | None] = {
    "infer": None, "categorical": "onehot", "ordinal": "numeric", "numeric": "numeric", "log": "log",
}
#: The position type that names each engine feature kind (what "infer" turned out to be).
TYPE_OF_KIND = {"onehot": "categorical", "binary": "categorical", "numeric": "numeric", "log": "log"}


def clean_position_types(types: Any, length: int) -> list[str] | None:
    """Position types as one lower-case name per position (``None`` when none is given), or the reason."""
    if types is None or types == "" or types == []:
        return None
    if isinstance(types, str):
        types = types.split(",")
    if not isinstance(types, list | tuple) or not all(isinstance(kind, str) for kind in types):
        raise SpaceValidationError("position_types", "give one type per position, e.g. categorical,ordinal,numeric")
    cleaned = [kind.strip().lower() or "infer" for kind in types]
    unknown = [kind for kind in cleaned if kind not in POSITION_TYPES]
    if unknown:
        raise SpaceValidationError("position_types", f"unknown position type {unknown[0]!r}; choose one of "
                                   f"{', '.join(POSITION_TYPES)}")
    if len(cleaned) != length:
        raise SpaceValidationError("position_types", f"{len(cleaned)} position types for encodings of length "
                                   f"{length}; give one per position (infer: let the engine decide)")
    return None if all(kind == "infer" for kind in cleaned) else cleaned


def engine_feature_spec(feature_summary: list[dict[str, Any]]) -> list[str | None] | None:
    """The engine's per-position feature kinds a user chose (``None`` where the engine infers; ``None``
    altogether when nothing was chosen), from a space's stored feature summary."""
    requested = [POSITION_TYPES.get(entry.get("requested") or "infer") for entry in feature_summary]
    return requested if any(kind is not None for kind in requested) else None


def validate_encodings(encodings: list[Any], position_types: Any = None) -> dict[str, Any]:
    """Validate with the engine; returns the count, length and a per-position feature summary (each entry's
    ``type`` is its position type, ``requested`` the one the user chose, if any)."""
    if len(encodings) > settings.NASWEB_MAX_ENCODINGS:
        raise SpaceValidationError(
            "encodings", f"{len(encodings)} encodings exceed the limit of {settings.NASWEB_MAX_ENCODINGS} "
            "(NASWEB_MAX_ENCODINGS)")
    try:
        table = engine.encoding_table(encodings)
    except engine.EncodingError as exc:
        raise SpaceValidationError("encodings", str(exc)) from None
    chosen = clean_position_types(position_types, table.length)
    try:
        spec = engine.feature_spec(table, [POSITION_TYPES[kind] for kind in chosen] if chosen else None)
    except engine.EncodingError as exc:
        raise SpaceValidationError("position_types" if chosen else "encodings", str(exc)) from None
    summary = []
    for position, item in enumerate(spec):
        entry: dict[str, Any] = {"position": position, "kind": item["kind"], "type": TYPE_OF_KIND.get(item["kind"])}
        if chosen and chosen[position] != "infer":
            entry["requested"] = entry["type"] = chosen[position]
        if item["kind"] == "onehot":
            entry["values"] = item["values"][:50]
            entry["n_values"] = len(item["values"])
        else:
            column = table.columns[position].astype(float) if item["kind"] != "binary" else None
            if column is not None:
                entry["min"], entry["max"] = float(column.min()), float(column.max())
        summary.append(entry)
    return {"n": len(table), "length": table.length, "feature_summary": summary}


def validate_module_source(source: str, *, field: str, function: str) -> str:
    """Static checks only (the web process never runs user code): size, syntax, a top-level ``function``."""
    if not source.strip():
        raise SpaceValidationError(field, f"the module is empty; it must define {function}(...)")
    if len(source) > settings.NASWEB_MAX_MODULE_CHARS:
        raise SpaceValidationError(
            field, f"the module has {len(source)} characters, over the limit of {settings.NASWEB_MAX_MODULE_CHARS} "
            "(NASWEB_MAX_MODULE_CHARS)")
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise SpaceValidationError(field, f"syntax error at line {exc.lineno}: {exc.msg}") from None
    defined = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    } | {
        target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets
        if isinstance(target, ast.Name)
    } | {
        alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom) for alias in node.names
    }
    if function not in defined:
        raise SpaceValidationError(field, f"the module defines no top-level {function}(...) function")
    return source


def validate_sample_input_shape(shape: Any) -> list[int]:
    if isinstance(shape, str):
        parts = [part.strip() for part in re.split(r"[,x×]", shape.strip().strip("[]()"))]
        if not all(part.isdigit() for part in parts):
            raise SpaceValidationError("sample_input_shape", "write the shape as integers, e.g. 1,3,32,32")
        shape = [int(part) for part in parts]
    if not isinstance(shape, list | tuple) or not 1 <= len(shape) <= 6:
        raise SpaceValidationError("sample_input_shape", "give 1 to 6 dimensions, e.g. [1, 3, 32, 32]")
    if not all(isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= 4096 for size in shape):
        raise SpaceValidationError("sample_input_shape", "every dimension must be an integer from 1 to 4096")
    if math.prod(shape) > 50_000_000:
        raise SpaceValidationError("sample_input_shape", "the sample input would hold over 50 million values")
    return list(shape)


def _validate_name(name: str) -> str:
    name = (name or "").strip()
    if not name:
        raise SpaceValidationError("name", "give the search space a name")
    if len(name) > 120:
        raise SpaceValidationError("name", "the name is longer than 120 characters")
    return name


# --------------------------------------------------------------------------------------------------
# Creating and deleting spaces
# --------------------------------------------------------------------------------------------------


def _new_space(*, owner: Any, name: str, description: str, encodings: list[Any], info: dict[str, Any],
               **fields: Any) -> SearchSpace:
    space = SearchSpace(
        uid=uuid.uuid4(), owner=owner, name=name, description=description or "",
        n_encodings=info["n"], encoding_length=info["length"], feature_summary=info["feature_summary"], **fields,
    )
    space.encodings_file.save("encodings.json", ContentFile(json.dumps(encodings, separators=(",", ":"))), save=False)
    space.save()
    return space


def space_create(*, owner: Any, name: str, encodings_upload: UploadedFile, module_source: str,
                 sample_input_shape: Any, description: str = "", max_profiled: int | None = None,
                 position_types: Any = None) -> SearchSpace:
    """A space from an uploaded encodings file and ``encoding_to_net`` module; validation is enqueued.
    ``position_types`` (one of :data:`POSITION_TYPES` per position) overrides what the engine infers."""
    name = _validate_name(name)
    encodings = parse_encodings(read_upload(encodings_upload, field="encodings", text=False),
                                encodings_upload.name or "")
    info = validate_encodings(encodings, position_types)
    module_source = validate_module_source(module_source, field="module", function="encoding_to_net")
    shape = validate_sample_input_shape(sample_input_shape)
    if max_profiled is not None and max_profiled < 1:
        raise SpaceValidationError("max_profiled", "profile at least one encoding, or leave it empty for all")
    with transaction.atomic():
        space = _new_space(
            owner=owner, name=name, description=description, encodings=encodings, info=info,
            source=SearchSpace.Source.UPLOAD, module_source=module_source,
            module_sha256=hashlib.sha256(module_source.encode()).hexdigest(), sample_input_shape=shape,
            max_profiled=max_profiled,
        )
        _enqueue_validation(space)
    return space


def space_create_from_example(*, owner: Any, example: str, name: str = "", description: str = "",
                              max_profiled: int | None = None) -> SearchSpace:
    """A space from one of NASWeb's examples (MobileOne, hybrid, NB201)."""
    spec = examples.get(example)
    if spec is None:
        raise SpaceValidationError("example", f"unknown example {example!r}; choose one of {', '.join(examples.NAMES)}")
    encodings = [list(encoding) for encoding in spec.build_encodings()]
    info = validate_encodings(encodings)
    source = spec.module_source()
    try:  # read before anything is written: a server without the example's data refuses, it does not crash
        profile = spec.profile_table() if spec.profile_table is not None else None
    except FileNotFoundError as exc:
        logger.warning("example %s cannot be created: %s", example, exc)  # the path is for the admin only
        raise SpaceValidationError("example", f"this server lacks the data of example {example!r}; "
                                   "its administrator can find the reason in the server log") from None
    with transaction.atomic():
        space = _new_space(
            owner=owner, name=_validate_name(name or spec.title), description=description or spec.description,
            encodings=encodings, info=info, source=SearchSpace.Source.EXAMPLE, example=example,
            module_source=source, module_sha256=hashlib.sha256(source.encode()).hexdigest(),
            sample_input_shape=list(spec.sample_input_shape),
            max_profiled=max_profiled if max_profiled is not None else spec.max_profiled,
            profile_metrics=list(spec.profile_metrics or ()),
        )
        if profile is not None:
            _store_profile(space, profile, failures={})
            space.state = SearchSpace.State.PRETRAINING
            space.progress_total = space.progress_done = space.n_encodings
            space.save()
            _enqueue_pretraining(space)
        else:
            _enqueue_validation(space)
    return space


def space_import_bundle(*, owner: Any, bundle_upload: UploadedFile, name: str = "") -> SearchSpace:
    """A space from a shared bundle file: checked here within bounds (members, unpacked size, checksums
    streamed; nothing unpacked, no code runs), imported by a worker (spaces.bundle_import) like other heavy
    work; the space is ``uploaded`` until then."""
    check_upload_size(bundle_upload, field="bundle")
    with tempfile.TemporaryDirectory(prefix="nasweb-bundle-") as folder:
        path = Path(folder) / "upload.nastune"
        with path.open("wb") as handle:
            for chunk in bundle_upload.chunks():
                handle.write(chunk)
        manifest = bundle_import.verify_archive(path, max_bytes=bundle_import.max_bytes())
        if "surrogate.safetensors" not in manifest["members"]:
            raise SpaceValidationError("bundle", "the bundle has no pretrained surrogate; preprocess it first")
        own_name = manifest.get("name") if isinstance(manifest.get("name"), str) else ""
        with transaction.atomic():
            space = SearchSpace(
                uid=uuid.uuid4(), owner=owner, name=_validate_name(name or own_name or "imported bundle"),
                description=bundle_import.IMPORTED_DESCRIPTION, n_encodings=0, encoding_length=0,
                feature_summary=[], source=SearchSpace.Source.BUNDLE, state=SearchSpace.State.UPLOADED,
            )
            with path.open("rb") as handle:
                space.bundle_file.save("space.nastune", File(handle), save=False)
            # no encodings until the worker has read them; pages and the API show an empty space meanwhile
            space.encodings_file.save("encodings.json", ContentFile(b"[]"), save=False)
            space.save()
            _enqueue_validation(space)  # the worker's validation of a bundle space is its import
    return space


def space_infer_positions(*, encodings_upload: UploadedFile) -> list[dict[str, Any]]:
    """What the engine infers for each position of an encodings file (nothing is stored): its position type,
    feature kind and values (the first 50) or range; the New space form shows these as defaults."""
    encodings = parse_encodings(read_upload(encodings_upload, field="encodings", text=False),
                                encodings_upload.name or "")
    return validate_encodings(encodings)["feature_summary"]


def space_annotate(*, space: SearchSpace, name: str | None = None, description: str | None = None,
                   tags: Any = None) -> SearchSpace:
    """Rename the space, or change its description (its notes) or tags (only what is given)."""
    from searches.services.steering import NOTES_MAX_CHARS, clean_tags

    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = _validate_name(name)
    if description is not None:
        if len(description) > NOTES_MAX_CHARS:
            raise SpaceValidationError("description", f"the description has at most {NOTES_MAX_CHARS} characters")
        fields["description"] = description
    if tags is not None:
        try:
            fields["tags"] = clean_tags(tags)
        except DomainError as exc:
            raise SpaceValidationError("tags", exc.reason) from None
    if fields:
        SearchSpace.objects.filter(id=space.id).update(**fields)
        space.refresh_from_db()
    return space


BUNDLE_DETAILS = "nasweb.json"
"""Bundle member with what the web app knows beyond the engine: description, sample input shape, tags."""


def _bundle_details(path: Path) -> dict[str, Any]:
    """The web details of a bundle (checked like any member; a bundle written by nastune has none)."""
    data = engine.read_bundle(path)[1].get(BUNDLE_DETAILS)
    if data is None:
        return {}
    try:
        details = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SpaceValidationError("bundle", f"bundle member {BUNDLE_DETAILS} is not valid JSON") from None
    if not isinstance(details, dict):
        raise SpaceValidationError("bundle", f"bundle member {BUNDLE_DETAILS} must be a JSON object")
    cleaned: dict[str, Any] = {}
    if isinstance(details.get("description"), str):
        cleaned["description"] = details["description"][:20_000]
    if details.get("sample_input_shape"):
        cleaned["sample_input_shape"] = validate_sample_input_shape(details["sample_input_shape"])
    tags = details.get("tags")
    if isinstance(tags, list) and all(isinstance(tag, str) for tag in tags):
        cleaned["tags"] = [tag.strip()[:40] for tag in tags if tag.strip()][:20]
    transfers = details.get("transfers")
    if isinstance(transfers, list):  # names and rankings only; whoever imports checks them against the profile
        cleaned["transfers"] = [
            {"name": t["name"], "best": [i for i in t["best"] if isinstance(i, int) and not isinstance(i, bool)
                                         and i >= 0][:engine.TRANSFER_BEST]}
            for t in transfers[:100]
            if isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("best"), list)]
    return cleaned


def space_bundle_file(*, space: SearchSpace) -> Any:
    """An open binary file of the space's bundle with its web details added as ``nasweb.json`` (the stored
    bundle is the engine's; a re-import of the download keeps the description, sample input shape, tags and
    the transferred searches' best results)."""
    try:
        manifest, members = engine.read_bundle(space.bundle_file.path)
    except engine.BundleError:  # served as stored: whoever imports it gets the checksum error, with its member named
        logger.warning("bundle of space %s cannot be read; served without its web details", space.id)
        return space.bundle_file.open("rb")
    details = {"description": space.description, "sample_input_shape": space.sample_input_shape,
               "tags": space.tags,
               # which profile columns are earlier searches' results, and their best (search ids stay here)
               "transfers": [{"name": t["name"], "best": t["best"]} for t in space.transfers or []]}
    members = {**members, BUNDLE_DETAILS: json.dumps(details).encode()}
    folder = Path(tempfile.mkdtemp(prefix="nasweb-download-"))
    try:
        written = engine.write_bundle(folder / "space.nastune", members, name=manifest.get("name") or space.name,
                               created=manifest.get("created"))
        return written.open("rb")  # still readable after its folder is removed (POSIX)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def space_add_search_results(*, space: SearchSpace, search: Any, name: str = "") -> SearchSpace:
    """Transfer: pretrain the space again with a finished search's high-fidelity results as a sparse target
    (NaN where the search did not evaluate), next to the profiled metrics. Searches started afterwards
    begin from what that search saw (another dataset, another fidelity): the surrogate learned it, and their
    initial design first tries its best results (``transfers``). The bundle carries the results.

    Raises:
        DomainError: the search ran on another space, has no successful high-fidelity result, or the name
            is not a usable metric name.
        ConflictError: the space is not ready (profiling or pretraining already).
    """
    from searches.models import Evaluation

    if search.space_id != space.id:
        raise DomainError("search", "that search ran on another search space; choose one of this space's searches")
    name = (name or f"search_{search.id}").strip()
    if not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", name) or name in ("index", "error"):
        raise DomainError("name", "use 1-64 letters, digits, '_', '-' or '.' (not 'index' or 'error')")
    results = dict(search.evaluations.filter(
        fidelity=Evaluation.Fidelity.HI, state=Evaluation.State.DONE, retried=False, value__isnull=False,
    ).values_list("encoding_index", "value"))
    if not results:
        raise DomainError("search", "that search has no successful high-fidelity result yet")
    best = engine.best_first(results, maximize=not search.minimizes)
    with transaction.atomic():
        locked = SearchSpace.objects.select_for_update().get(id=space.id)
        if locked.state != SearchSpace.State.READY:
            raise ConflictError("state", f"the search space is {locked.state}; wait until it is ready")
        profile, failures = load_profile(locked)
        column = np.full(locked.n_encodings, np.nan)
        for index, value in results.items():
            column[int(index)] = float(value)
        profile[name] = column
        _store_profile(locked, profile, failures)
        locked.transfers = [t for t in locked.transfers or [] if t.get("name") != name] + [
            {"name": name, "search": search.id, "best": [int(i) for i in best]}]
        locked.state = SearchSpace.State.PRETRAINING
        locked.failure_reason = ""
        locked.save(update_fields=["profile_file", "metrics", "profile_failures", "state", "failure_reason",
                                   "transfers", "updated_at"])
        _enqueue_pretraining(locked)
    logger.info("space %s: pretraining again with %d results of search %s as %r", space.id, len(results),
                search.id, name)
    return locked


class _EncodingLookup:
    """The space's encodings as :func:`nastune.device_latency.parse_latency_csv` looks them up."""

    def __init__(self, encodings: list[Any]) -> None:
        self._index = {json.dumps(list(e)): i for i, e in enumerate(encodings)}
        self._n = len(encodings)

    def __len__(self) -> int:
        return self._n

    def index_of(self, encoding: Any) -> int:

        index = self._index.get(json.dumps(list(encoding)))
        if index is None:
            raise engine.EncodingError("no such encoding in the space")
        return index


def space_add_device_latencies(*, space: SearchSpace, device: str, data: bytes) -> SearchSpace:
    """Latencies the user measured on their own device for some encodings (CSV: ``index`` or ``encoding``, and
    ``latency`` in seconds): stored as the sparse metric ``latency_<device>`` and the space pretrained again, so
    the surrogate predicts the rest; the space's quality then shows the held-out Kendall tau on the uploaded
    values. Searches can constrain or minimise that metric by name.

    Raises:
        SpaceValidationError: ``device`` unnamed, or ``file`` unreadable or with a bad row (the reason names it).
        ConflictError: the space is not ready.
    """

    try:
        name = engine.device_metric_name(device)
    except engine.DeviceLatencyError as exc:
        raise SpaceValidationError("device", exc.reason) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SpaceValidationError("file", "not a UTF-8 CSV file") from None
    try:
        latencies = engine.parse_latency_csv(text, _EncodingLookup(load_encodings(space)))
    except engine.DeviceLatencyError as exc:
        raise SpaceValidationError("file", str(exc)) from None
    if len(latencies) < MIN_DEVICE_LATENCIES:
        raise SpaceValidationError("file", f"{len(latencies)} latencies are too few to learn from; upload at least "
                                   f"{MIN_DEVICE_LATENCIES}")
    with transaction.atomic():
        locked = SearchSpace.objects.select_for_update().get(id=space.id)
        if locked.state != SearchSpace.State.READY:
            raise ConflictError("state", f"the search space is {locked.state}; wait until it is ready")
        profile, failures = load_profile(locked)
        column = np.full(locked.n_encodings, np.nan)
        column[list(latencies)] = list(latencies.values())
        profile[name] = column  # a second upload for the same device replaces the first
        _store_profile(locked, profile, failures)
        locked.state = SearchSpace.State.PRETRAINING
        locked.failure_reason = ""
        locked.save(update_fields=["profile_file", "metrics", "profile_failures", "state", "failure_reason",
                                   "updated_at"])
        _enqueue_pretraining(locked)
    logger.info("space %s: pretraining again with %d latencies measured on %r", space.id, len(latencies), name)
    return locked


#: fewest uploaded latencies accepted (the held-out Kendall tau on the space page needs 30)
MIN_DEVICE_LATENCIES = 10


def space_delete(*, space: SearchSpace) -> None:
    """Delete a space, its files and its finished searches; refused while a search on it is active."""
    from searches.models import SearchInstance

    active = space.searches.filter(state__in=SearchInstance.ACTIVE_STATES)
    if active.exists():
        names = ", ".join(active.values_list("name", flat=True)[:5])
        raise ConflictError(None, f"searches on this space are still active ({names}); cancel them first")
    folder = Path(settings.MEDIA_ROOT) / "spaces" / str(space.owner_id) / str(space.uid)
    with transaction.atomic():
        for search in space.searches.all():
            search.delete()
        space.delete()
        transaction.on_commit(lambda: shutil.rmtree(folder, ignore_errors=True))


# --------------------------------------------------------------------------------------------------
# The pipeline: validation -> profiling (chunks) -> pretraining -> ready
# --------------------------------------------------------------------------------------------------


def _enqueue_validation(space: SearchSpace) -> None:
    from spaces.tasks import validate_space

    transaction.on_commit(lambda: validate_space.delay(space.id))


def _enqueue_pretraining(space: SearchSpace) -> None:
    from spaces.tasks import pretrain_space

    transaction.on_commit(lambda: pretrain_space.delay(space.id))


def _enqueue_chunks(chunk_ids: Sequence[int]) -> None:
    from spaces.tasks import profile_chunk

    def send() -> None:
        for chunk_id in chunk_ids:
            profile_chunk.delay(chunk_id)

    transaction.on_commit(send)


def _fail(space_id: int, reason: str) -> None:
    # A space that has a bundle already (pretraining again on a search's results) stays usable with it.
    SearchSpace.objects.filter(id=space_id, state=SearchSpace.State.PRETRAINING).exclude(bundle_file="").update(
        state=SearchSpace.State.READY, failure_reason=reason[:10_000], updated_at=timezone.now())
    SearchSpace.objects.filter(id=space_id).exclude(state=SearchSpace.State.READY).update(
        state=SearchSpace.State.FAILED, failure_reason=reason[:10_000], updated_at=timezone.now())
    logger.warning("search space %s failed: %s", space_id, reason.splitlines()[0] if reason else "")


_encodings_cache: FileCache[list[list[Any]]] = FileCache(size=4)


def _profile_metrics() -> tuple[str, ...]:
    """The engine's profiled metrics (imported on use: the web process does not load torch)."""
    return engine.profile_metrics()


def load_encodings(space: SearchSpace) -> list[list[Any]]:
    """The space's encodings (parsed once per process and file version; treat as read-only)."""
    return _encodings_cache.get(space.encodings_file.path, lambda path: json.loads(path.read_bytes()))


def _limits(wall_s: float | None = None) -> SandboxLimits:
    return SandboxLimits(memory_mb=settings.NASWEB_SANDBOX_MEMORY_MB, cpu_s=settings.NASWEB_SANDBOX_CPU_S,
                         wall_s=wall_s or settings.NASWEB_SANDBOX_WALL_S, processes=settings.NASWEB_SANDBOX_PROCESSES)


def _scratch(kind: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"{kind}-", dir=_scratch_root()))


def _scratch_root() -> Path:
    root = settings.VAR_DIR / "scratch"
    root.mkdir(parents=True, exist_ok=True)
    return root


def chunk_size_for(n: int) -> int:
    """About 200 chunks per space, each of 16 to 256 encodings (progress saved per chunk)."""
    return int(min(256, max(16, math.ceil(n / 200))))


def space_validate(*, space_id: int) -> None:
    """Import the module in the sandbox, build 3 sample networks and run the sample input; then
    split the (possibly subsampled) encodings into profiling chunks."""
    if SearchSpace.objects.filter(id=space_id, source=SearchSpace.Source.BUNDLE).exists():
        return bundle_import.space_import_bundle_file(space_id=space_id)  # no user code: load the bundle
    claimed = SearchSpace.objects.filter(id=space_id, state=SearchSpace.State.UPLOADED).update(
        state=SearchSpace.State.VALIDATING, updated_at=timezone.now())
    space = SearchSpace.objects.filter(id=space_id).first()
    if space is None or (not claimed and space.state != SearchSpace.State.VALIDATING):
        return  # deleted, or a redelivered message for a space already past validation
    encodings = load_encodings(space)
    n = len(encodings)
    sample = sorted({0, n // 2, n - 1})
    scratch = _scratch("validate")
    try:
        report = run_user_code(
            "check_module",
            {"encodings": [encodings[i] for i in sample], "indices": sample,
             "sample_input_shape": space.sample_input_shape},
            scratch=scratch, limits=_limits(min(600.0, settings.NASWEB_SANDBOX_WALL_S)),
            modules={"user_module.py": space.module_source},
        )
    except SandboxError as exc:
        _fail(space_id, f"validation failed: {exc.message}\n\n{exc.details}".strip())
        return
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    errors = [entry["error"] for entry in report["checked"] if entry.get("error")]
    if len(errors) == len(report["checked"]):
        # One bad candidate is the profiler's business; no working candidate means a broken module.
        _fail(space_id, "validation failed: no sample network could be built and run:\n" + "\n".join(errors))
        return

    if space.max_profiled and space.max_profiled < n:
        chosen = np.sort(np.random.default_rng(0).choice(n, size=space.max_profiled, replace=False)).tolist()
    else:
        chosen = list(range(n))
    size = chunk_size_for(len(chosen))
    with transaction.atomic():
        updated = SearchSpace.objects.filter(id=space_id, state=SearchSpace.State.VALIDATING).update(
            state=SearchSpace.State.PROFILING, progress_done=0, progress_total=len(chosen),
            metrics=list(space.profile_metrics or _profile_metrics()), updated_at=timezone.now())
        if not updated:
            return
        chunks = ProfileChunk.objects.bulk_create(
            ProfileChunk(space_id=space_id, position=k, indices=chosen[start:start + size])
            for k, start in enumerate(range(0, len(chosen), size))
        )
        _enqueue_chunks([chunk.id for chunk in chunks])


def _claim_chunk(chunk_id: int, worker: str) -> ProfileChunk | None:
    now = timezone.now()
    claimed = ProfileChunk.objects.filter(id=chunk_id, state=ProfileChunk.State.QUEUED).update(
        state=ProfileChunk.State.RUNNING, heartbeat_at=now, worker=worker, attempts=F("attempts") + 1)
    if not claimed:
        # A redelivered message: take the chunk over only if whoever ran it stopped beating.
        claimed = ProfileChunk.objects.filter(
            id=chunk_id, state=ProfileChunk.State.RUNNING,
            heartbeat_at__lt=now - timedelta(seconds=settings.NASWEB_HEARTBEAT_STALE_S),
        ).update(heartbeat_at=now, worker=worker, attempts=F("attempts") + 1)
    return ProfileChunk.objects.select_related("space").get(id=chunk_id) if claimed else None


def space_profile_chunk(*, chunk_id: int) -> None:
    """Profile one chunk in the sandbox. A chunk that crashes as a whole (segfault, memory, time)
    is split in two so one bad encoding cannot sink its neighbours; a single encoding that still
    crashes is recorded as failed with the reason."""
    worker = f"{socket.gethostname()}"
    chunk = _claim_chunk(chunk_id, worker)
    if chunk is None:
        return
    space = chunk.space
    if space.state != SearchSpace.State.PROFILING:
        ProfileChunk.objects.filter(id=chunk_id).update(state=ProfileChunk.State.FAILED, error="space not profiling")
        return
    # reading a large space for the first time takes seconds; the sandbox's own beats start after it
    with keep_beating(lambda: ProfileChunk.objects.filter(id=chunk_id).update(heartbeat_at=timezone.now())):
        encodings = load_encodings(space)
    scratch = _scratch("profile")

    def heartbeat(_log: str) -> bool:
        ProfileChunk.objects.filter(id=chunk_id).update(heartbeat_at=timezone.now())
        return SearchSpace.objects.filter(id=space.id, state=SearchSpace.State.PROFILING).exists()

    try:
        result = run_user_code(
            "profile",
            {"encodings": [encodings[i] for i in chunk.indices], "sample_input_shape": space.sample_input_shape,
             "timeout_s": 60.0, "metrics": space.profile_metrics or list(_profile_metrics())},
            scratch=scratch, limits=_limits(), modules={"user_module.py": space.module_source},
            on_tick=heartbeat, tick_s=2.0,  # nasweb.recovery.HEARTBEAT_S: beats well inside the stale rule
        )
    except SandboxError as exc:
        if exc.kind == "cancelled":
            return
        if exc.kind == "error" and len(chunk.indices) > 1:
            # The module itself is broken (it raised outside one encoding): no point splitting.
            _finish_chunk(chunk, {"metrics": {}, "errors": [exc.message] * len(chunk.indices)})
            return
        if len(chunk.indices) > 1:
            _split_chunk(chunk, exc.message)
            return
        _finish_chunk(chunk, {"metrics": {}, "errors": [exc.message]})
        return
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    _finish_chunk(chunk, result)


def _split_chunk(chunk: ProfileChunk, reason: str) -> None:
    half = len(chunk.indices) // 2
    with transaction.atomic():
        updated = ProfileChunk.objects.filter(id=chunk.id, state=ProfileChunk.State.RUNNING).update(
            state=ProfileChunk.State.FAILED, error=f"split after: {reason}"[:5000])
        if not updated:
            return
        top = ProfileChunk.objects.filter(space_id=chunk.space_id).order_by("-position").first()
        start = (top.position if top else 0) + 1
        parts = ProfileChunk.objects.bulk_create([
            ProfileChunk(space_id=chunk.space_id, position=start, indices=chunk.indices[:half]),
            ProfileChunk(space_id=chunk.space_id, position=start + 1, indices=chunk.indices[half:]),
        ])
        _enqueue_chunks([part.id for part in parts])


def _finish_chunk(chunk: ProfileChunk, result: dict[str, Any]) -> None:
    with transaction.atomic():
        updated = ProfileChunk.objects.filter(id=chunk.id, state=ProfileChunk.State.RUNNING).update(
            state=ProfileChunk.State.DONE, result=result, heartbeat_at=timezone.now())
        if not updated:
            return
        SearchSpace.objects.filter(id=chunk.space_id).update(
            progress_done=F("progress_done") + len(chunk.indices), updated_at=timezone.now())
        open_chunks = ProfileChunk.objects.filter(
            space_id=chunk.space_id, state__in=(ProfileChunk.State.QUEUED, ProfileChunk.State.RUNNING))
        if open_chunks.exists():
            return
        if SearchSpace.objects.filter(id=chunk.space_id, state=SearchSpace.State.PROFILING).update(
                state=SearchSpace.State.PRETRAINING, updated_at=timezone.now()):
            space = SearchSpace.objects.get(id=chunk.space_id)
            profile, failures = _collect_chunks(space)
            _store_profile(space, profile, failures)
            space.save(update_fields=["profile_file", "profile_failures", "metrics"])
            _enqueue_pretraining(space)


def _collect_chunks(space: SearchSpace) -> tuple[dict[str, np.ndarray], dict[int, str]]:
    n = space.n_encodings
    profile: dict[str, np.ndarray] = {}
    failures: dict[int, str] = {}
    for chunk in space.profile_chunks.filter(state=ProfileChunk.State.DONE).iterator():
        result = chunk.result or {}
        for metric, values in (result.get("metrics") or {}).items():
            column = profile.setdefault(metric, np.full(n, np.nan))
            column[chunk.indices] = [np.nan if value is None else value for value in values]
        for index, error in zip(chunk.indices, result.get("errors") or [], strict=False):
            if error:
                failures[index] = error
    return profile, failures


def _store_profile(space: SearchSpace, profile: dict[str, np.ndarray], failures: dict[int, str]) -> None:
    """Write the profile table (:mod:`nastune.profile_csv`, the bundle's format) to the space's files."""
    data = engine.write_profile_csv(profile, space.n_encodings, failures)
    space.profile_file.save("profile.csv", ContentFile(data), save=False)
    space.metrics = sorted(profile)
    space.profile_failures = len(failures)


def load_profile(space: SearchSpace) -> tuple[dict[str, np.ndarray], dict[int, str]]:
    """The stored profile table: metric -> (n,) float array with NaN, and index -> error."""
    if not space.profile_file:
        return {}, {}
    with space.profile_file.open("rb") as handle:
        return engine.read_profile_csv(handle.read(), space.n_encodings)


def space_pretrain(*, space_id: int) -> None:
    """Pretrain the space's surrogate on its profile, measure its quality on held-out candidates,
    and write the bundle. Runs our code only (the profile is data)."""
    space = SearchSpace.objects.filter(id=space_id, state=SearchSpace.State.PRETRAINING).first()
    if space is None:
        return
    try:
        profile, failures = load_profile(space)
        usable = {metric: values for metric, values in profile.items() if np.isfinite(values).any()}
        if not usable:
            _fail(space_id, "no encoding could be profiled, so there is nothing to pretrain on; "
                  "see the profile table for each encoding's error")
            return
        quality = engine.surrogate_quality(space, load_encodings(space), usable)
        profiled = int(np.any([np.isfinite(v) for v in usable.values()], axis=0).sum())
        for metric, values in usable.items():
            # latencies uploaded for a subset: the overall hold-out hardly meets them, so they get their own
            if metric.startswith("latency_") and np.isfinite(values).sum() < 0.9 * profiled:
                quality.update(engine.sparse_metric_quality(space, load_encodings(space), usable, metric))
        bundle_path = engine.pretrain_and_bundle(space, load_encodings(space), usable, failures)
    except Exception as exc:  # our numerical code failed: the space must say why, not hang in "pretraining"
        logger.exception("pretraining search space %s failed", space_id)
        _fail(space_id, f"pretraining failed: {type(exc).__name__}: {exc}")
        return
    with transaction.atomic():
        space = SearchSpace.objects.select_for_update().get(id=space_id)
        if space.state != SearchSpace.State.PRETRAINING:
            bundle_path.unlink(missing_ok=True)
            return
        with bundle_path.open("rb") as handle:
            space.bundle_file.save("space.nastune", File(handle), save=False)
        bundle_path.unlink(missing_ok=True)
        space.surrogate_quality = quality
        space.state = SearchSpace.State.READY
        space.progress_done = space.progress_total
        space.save()


# --------------------------------------------------------------------------------------------------
# Network summaries (built by a worker on request)
# --------------------------------------------------------------------------------------------------


def network_summary_request(*, space: SearchSpace, encoding_index: int) -> Any:
    """Ask a worker to build and describe one network; returns the (possibly cached) summary row."""
    from spaces.models import NetworkSummary
    from spaces.tasks import summarize_network

    if not 0 <= encoding_index < space.n_encodings:
        raise SpaceValidationError("encoding_index", f"must be from 0 to {space.n_encodings - 1}")
    if not space.module_source:
        raise SpaceValidationError("encoding_index", "this space carries no encoding_to_net module")
    with transaction.atomic():
        summary, created = NetworkSummary.objects.get_or_create(space=space, encoding_index=encoding_index)
        if created or summary.state == NetworkSummary.State.FAILED:
            NetworkSummary.objects.filter(id=summary.id).update(state=NetworkSummary.State.PENDING, error="")
            transaction.on_commit(lambda: summarize_network.delay(summary.id))
            summary.refresh_from_db()
    return summary


def network_summary_compute(*, summary_id: int) -> None:
    from spaces.models import NetworkSummary

    summary = NetworkSummary.objects.select_related("space").filter(
        id=summary_id, state=NetworkSummary.State.PENDING).first()
    if summary is None:
        return
    encoding = load_encodings(summary.space)[summary.encoding_index]
    scratch = _scratch("summary")
    try:
        result = run_user_code("summarize", {"encoding": encoding}, scratch=scratch, limits=_limits(300.0),
                               modules={"user_module.py": summary.space.module_source})
    except SandboxError as exc:
        NetworkSummary.objects.filter(id=summary_id).update(
            state=NetworkSummary.State.FAILED, error=exc.message[:5000], finished_at=timezone.now())
        return
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    NetworkSummary.objects.filter(id=summary_id).update(
        state=NetworkSummary.State.DONE, text=result["text"], params=result["params"],
        params_test=result["params_test"], finished_at=timezone.now())
