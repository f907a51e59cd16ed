"""Per-encoding profiling: parameters, FLOPs, CPU latency, peak activation memory, optional proxies.

Metrics (one float per encoding, NaN when not measured):

``params``
    Trainable parameters of the network as built (train-time form).
``params_test``
    Parameters of the inference form: after ``net.reparameterize()`` / ``net.fuse()`` (in place or
    returning the new module), or after calling ``reparameterize()`` on every submodule that has it
    (MobileOne style). Equal to ``params`` when the network has no such method.
``flops``
    Floating-point operations of one forward pass of the inference form on ``sample_input`` (the whole
    batch), as counted by :class:`torch.utils.flop_counter.FlopCounterMode` (2 x multiply-adds of
    convolutions and matrix products; element-wise ops, pooling and normalisation count 0). Counted on the
    meta device (no weights allocated) when the network can be built and run there, else on CPU.
    ``flops_device="auto"`` (default) counts on meta when no CPU network is needed anyway (metrics
    ``params``/``flops`` only: huge models, huge spaces) and on the CPU network otherwise, because meta
    dispatch is slower than a small CPU forward (NB201: 0.23 s on meta vs 0.075 s on CPU per network);
    ``"meta"`` forces meta first, ``"cpu"`` forces CPU.
``latency``
    Median wall-clock seconds of ``latency_repeats`` forward passes of the inference form on CPU
    (``torch.no_grad``, eval mode) after ``latency_warmup`` warm-up passes, with a fixed torch thread count.
``latency_<device>`` (with ``latency_device=...``)
    The same latency measured on a named device, the metric named after it (:func:`device_latency_metric`):
    ``latency_cuda_h200`` (CUDA events around each forward, after warm-up, the fixed ``sample_input`` batch,
    synchronised) or ``latency_cpu_<model>``; one space can hold several, and constraints and objectives can
    name any of them.
``memory``
    Peak activation memory in bytes: the highest running total of CPU allocator allocations minus frees
    recorded by the torch profiler (``profile_memory=True``) during one inference forward pass; weights and
    the input, allocated before, are not included; the output and temporary workspaces are.
``naswot``, ``log_synflow`` (with ``proxies=True``)
    Training-free accuracy proxies, see :mod:`nastune.proxies`.
``arch:0`` ... (with ``architecture=True``)
    The architecture features of :mod:`nastune.features`, read from the network as built (on the meta
    device when it can be built there); ``SearchSpace.preprocess`` moves them out of the profile into
    ``SearchSpace.architecture_raw``.

Profiling runs in this process (``isolate=False``; a timeout can then only interrupt Python code) or in
spawned worker processes (``isolate=True``, default when ``threads > 1``) that are killed on timeout or
crash; either way one bad encoding is recorded as failed and the rest go on.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import multiprocessing as mp
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from tqdm.auto import tqdm

from nastune.errors import ProfilingError
from nastune.proxies import log_synflow_score, naswot_score

__all__ = [
    "PROFILE_METRICS",
    "PROXY_METRICS",
    "ProfileSettings",
    "ProfileTable",
    "count_flops",
    "count_parameters",
    "device_latency_metric",
    "inference_form",
    "latency_metric_name",
    "measure_device_latency",
    "measure_latency",
    "measure_peak_memory",
    "profile_encodings",
    "profile_network",
    "profile_space",
]

logger = logging.getLogger("nastune")

PROFILE_METRICS: tuple[str, ...] = ("params", "params_test", "flops", "latency", "memory")
PROXY_METRICS: tuple[str, ...] = ("naswot", "log_synflow")
_ERROR_CHARS = 2000
_CHECKPOINT_VERSION = 1

SampleInput = torch.Tensor | tuple[torch.Tensor, ...]
EncodingToNet = Callable[[Any], torch.nn.Module]
ResultCallback = Callable[[int, dict[str, float], "str | None", float], None]


@dataclass(frozen=True)
class ProfileSettings:
    """What to measure and how; sent to worker processes, so it stays plain data."""

    metrics: tuple[str, ...] = PROFILE_METRICS
    proxies: bool = False
    seed: int = 0
    latency_repeats: int = 10
    latency_warmup: int = 2
    torch_threads: int = 1
    flops_device: str = "auto"
    #: also read the network's structure (meta device) into ``arch:<k>`` values, see :mod:`nastune.features`
    architecture: bool = False
    #: also measure latency on this device (``"cuda"``, ``"cuda:1"``, ``"cpu"``) as ``latency_<device>``
    latency_device: str | None = None

    def __post_init__(self) -> None:
        if self.latency_device is not None and torch.device(self.latency_device).type not in ("cpu", "cuda"):
            raise ProfilingError(f"latency_device must be 'cpu' or 'cuda[:k]', got {self.latency_device!r}")
        if self.flops_device not in ("auto", "meta", "cpu"):
            raise ProfilingError(f"flops_device must be 'auto', 'meta' or 'cpu', got {self.flops_device!r}")
        unknown = [m for m in self.metrics if m not in PROFILE_METRICS]
        if unknown:
            raise ProfilingError(f"unknown metric(s) {unknown}; choose from {list(PROFILE_METRICS)}")
        if self.latency_repeats < 1 or self.latency_warmup < 0 or self.torch_threads < 1:
            raise ProfilingError("latency_repeats and torch_threads must be >= 1 and latency_warmup >= 0")

    @property
    def all_metrics(self) -> tuple[str, ...]:
        """The measured metrics plus the proxies when switched on."""
        return self.metrics + (PROXY_METRICS if self.proxies else ())


@dataclass
class ProfileTable:
    """Profiling results of ``n`` encodings.

    Attributes:
        metrics: metric name -> ``(n,)`` float64, NaN where not measured or failed.
        errors: one entry per encoding: ``None`` (ok or not profiled) or the error message.
        seconds: ``(n,)`` float64 wall time spent on each encoding (NaN if not profiled).
        profiled: ``(n,)`` bool, True for encodings that were profiled (successfully or not).
    """

    metrics: dict[str, np.ndarray]
    errors: list[str | None]
    seconds: np.ndarray
    profiled: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @classmethod
    def empty(cls, n: int, metrics: Sequence[str]) -> ProfileTable:
        """A table of ``n`` unprofiled encodings."""
        return cls(
            metrics={m: np.full(n, np.nan) for m in metrics},
            errors=[None] * n,
            seconds=np.full(n, np.nan),
            profiled=np.zeros(n, dtype=bool),
        )

    def __len__(self) -> int:
        return len(self.errors)

    def record(self, i: int, values: Mapping[str, float], error: str | None, seconds: float) -> None:
        """Store the result of encoding ``i``."""
        for metric, value in values.items():
            column = self.metrics.get(metric)
            if column is None:
                column = self.metrics[metric] = np.full(len(self), np.nan)
            column[i] = np.nan if value is None else value
        self.errors[i] = error
        self.seconds[i] = seconds
        self.profiled[i] = True

    def failures(self) -> dict[int, str]:
        """Index -> error message of the encodings that failed."""
        return {i: e for i, e in enumerate(self.errors) if e is not None}

    def to_json_obj(self) -> dict[str, Any]:
        """JSON-safe form (NaN -> null), e.g. for a Celery task result."""

        def clean(arr: np.ndarray) -> list[float | None]:
            return [None if math.isnan(v) else v for v in arr.tolist()]

        return {
            "metrics": {m: clean(v) for m, v in self.metrics.items()},
            "errors": list(self.errors),
            "seconds": clean(self.seconds),
            "profiled": self.profiled.tolist(),
        }

    @classmethod
    def from_json_obj(cls, obj: Mapping[str, Any]) -> ProfileTable:
        """Inverse of :meth:`to_json_obj`."""

        def arr(values: Sequence[float | None]) -> np.ndarray:
            return np.array([np.nan if v is None else v for v in values], dtype=np.float64)

        return cls(
            metrics={m: arr(v) for m, v in obj["metrics"].items()},
            errors=list(obj["errors"]),
            seconds=arr(obj["seconds"]),
            profiled=np.asarray(obj["profiled"], dtype=bool),
        )


# --------------------------------------------------------------------------------------------------
# Measurements on one network
# --------------------------------------------------------------------------------------------------


def _as_inputs(sample_input: SampleInput) -> tuple[torch.Tensor, ...]:
    if isinstance(sample_input, torch.Tensor):
        return (sample_input,)
    if isinstance(sample_input, tuple | list) and sample_input and all(
        isinstance(x, torch.Tensor) for x in sample_input
    ):
        return tuple(sample_input)
    raise ProfilingError("sample_input must be a tensor or a tuple of tensors (the arguments of net(...))")


def count_parameters(module: torch.nn.Module, *, trainable_only: bool = True) -> int:
    """Number of parameter elements (only those with ``requires_grad`` when ``trainable_only``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def inference_form(net: torch.nn.Module) -> torch.nn.Module:
    """The inference (re-parameterised / fused) form of ``net``; may modify ``net`` in place.

    Tries, in order: ``net.reparameterize()``, ``net.fuse()`` (using the returned module if one is
    returned, else ``net`` changed in place), then ``reparameterize()`` on every submodule that has it.
    Returns ``net`` unchanged when there is nothing to do.
    """
    for method in ("reparameterize", "fuse"):
        fn: Any = getattr(net, method, None)
        if callable(fn):
            result = fn()
            return result if isinstance(result, torch.nn.Module) else net
    subs = [m for m in net.modules() if m is not net and callable(getattr(m, "reparameterize", None))]
    for module in subs:
        cast(Any, module).reparameterize()
    return net


def has_inference_form(net: torch.nn.Module) -> bool:
    """Whether :func:`inference_form` would change ``net``."""
    return any(callable(getattr(m, name, None)) for m in net.modules() for name in ("reparameterize", "fuse"))


def count_flops(net: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> float:
    """FLOPs of one forward pass of ``net`` on ``inputs`` (the whole batch) per ``FlopCounterMode``."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        net(*inputs)
    return float(counter.get_total_flops())


def measure_latency(
    net: torch.nn.Module, inputs: Sequence[torch.Tensor], *, repeats: int = 10, warmup: int = 2
) -> float:
    """Median seconds of ``repeats`` timed forward passes after ``warmup`` untimed ones (no_grad)."""
    times = []
    with torch.no_grad():
        for _ in range(warmup):
            net(*inputs)
        for _ in range(repeats):
            start = time.perf_counter()
            net(*inputs)
            times.append(time.perf_counter() - start)
    return float(np.median(times))


def _slug(text: str) -> str:
    return "_".join(t for t in "".join(c if c.isalnum() else " " for c in text.lower()).split() if t)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1]
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown"


#: words that name no particular device: vendor and trademark noise in device names
_NOISE = {"nvidia", "intel", "r", "tm", "amd", "cpu", "processor", "core", "geforce", "corporation", "with", "radeon",
          "graphics", "apple"}


def device_latency_metric(device: str | torch.device) -> str:
    """The metric name of latency on ``device``: ``latency_cuda_<gpu>`` or ``latency_cpu_<model>``, from the device's
    own name (``"NVIDIA H200"`` -> ``latency_cuda_h200``; ``"Intel(R) Xeon(R) Platinum 8480C"`` ->
    ``latency_cpu_xeon_platinum_8480c``); frequencies and vendor words are left out.

    Raises:
        ProfilingError: a CUDA device on a machine without one, or another device type.
    """
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ProfilingError(f"no CUDA device here to measure latency on ({device!r}); profile on a gpu worker")
        name = torch.cuda.get_device_name(dev)
    elif dev.type == "cpu":
        name = _cpu_model()
    else:
        raise ProfilingError(f"latency can be measured on 'cpu' or 'cuda', not {device!r}")
    return latency_metric_name(dev.type, name)


def latency_metric_name(device_type: str, device_name: str) -> str:
    """``("cuda", "NVIDIA H200")`` -> ``latency_cuda_h200``: the device type, then the words of its name without
    vendor and trademark words and without a clock frequency (``@ 2.00GHz``)."""
    words = [w for w in _slug(device_name.split("@")[0]).split("_") if w not in _NOISE]
    return f"latency_{_slug(device_type)}_{'_'.join(words) or 'unknown'}"


def measure_device_latency(
    net: torch.nn.Module, inputs: Sequence[torch.Tensor], device: str | torch.device, *, repeats: int = 10,
    warmup: int = 2,
) -> float:
    """Median seconds of ``repeats`` forwards of ``net`` on ``device`` after ``warmup`` untimed ones (no_grad).

    On CUDA each forward is timed by a pair of CUDA events (the GPU's own clock, no host overhead) after the
    warm-up (kernel selection, allocator) and a synchronise; the network and a copy of the inputs are moved to
    the device and the network is moved back afterwards. On CPU it is :func:`measure_latency`.
    """
    dev = torch.device(device)
    if dev.type != "cuda":
        return measure_latency(net, inputs, repeats=repeats, warmup=warmup)
    net.to(dev)
    moved = [x.to(dev) for x in inputs]
    try:
        times = []
        with torch.no_grad():
            for _ in range(warmup):
                net(*moved)
            torch.cuda.synchronize(dev)
            for _ in range(repeats):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                net(*moved)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end) / 1000.0)
        return float(np.median(times))
    finally:
        net.to("cpu")


def measure_peak_memory(net: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> float:
    """Peak bytes allocated (net of frees) by one forward pass, from the torch profiler's memory events."""
    from torch.profiler import ProfilerActivity, profile

    # Kineto prints a few status lines per profiling session unless its log level is raised.
    os.environ.setdefault("KINETO_LOG_LEVEL", "6")
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        net(*inputs)
    try:
        events = prof.profiler.kineto_results.events()
        records = sorted((e.start_ns(), e.nbytes()) for e in events if e.name() == "[memory]")
    except AttributeError as exc:  # pragma: no cover - depends on the torch build
        raise ProfilingError(f"this torch build exposes no profiler memory events ({exc})") from exc
    running = peak = 0
    for _, nbytes in records:
        running += nbytes
        peak = max(peak, running)
    return float(peak)


def _build(encoding_to_net: EncodingToNet, encoding: Any) -> torch.nn.Module:
    net = encoding_to_net(encoding)
    if not isinstance(net, torch.nn.Module):
        raise ProfilingError(f"encoding_to_net returned {type(net).__name__}, expected a torch.nn.Module")
    return net


def _try_meta(encoding_to_net: EncodingToNet, encoding: Any) -> torch.nn.Module | None:
    try:
        with torch.device("meta"):
            net = _build(encoding_to_net, encoding)
    except Exception as exc:  # the module cannot be built without real tensors: use CPU
        logger.debug("building on the meta device failed (%s); using CPU", exc)
        return None
    if any(p.device.type != "meta" for p in net.parameters()):
        return None
    return net


def _meta_flops(meta_net: torch.nn.Module, inputs: Sequence[torch.Tensor]) -> float | None:
    try:
        with torch.device("meta"):
            net = inference_form(meta_net).eval()
        return count_flops(net, [x.to("meta") for x in inputs])
    except Exception as exc:  # data-dependent code (e.g. .item()) cannot run on meta: use CPU
        logger.debug("counting FLOPs on the meta device failed (%s); using CPU", exc)
        return None


def _format_error(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = "".join(traceback.format_list(frames))
    message = f"{type(exc).__name__}: {exc}"
    text = f"{message}\n{where}" if where else message
    return text[:_ERROR_CHARS]


def profile_network(
    encoding_to_net: EncodingToNet,
    encoding: Any,
    sample_input: SampleInput,
    settings: ProfileSettings | None = None,
) -> tuple[dict[str, float], str | None]:
    """Measure one encoding.

    Returns:
        ``(values, error)``: metric -> value for what was measured, and ``None`` or the error message of the
        exception that stopped the measurement (values measured before it are kept).
    """
    settings = settings or ProfileSettings()
    values: dict[str, float] = {}
    try:
        _measure(values, encoding_to_net, encoding, _as_inputs(sample_input), settings)
    except Exception as exc:  # one bad encoding is a result, not a crash
        return values, _format_error(exc)
    return values, None


def _measure(
    values: dict[str, float],
    encoding_to_net: EncodingToNet,
    encoding: Any,
    inputs: tuple[torch.Tensor, ...],
    settings: ProfileSettings,
) -> None:
    metrics = settings.metrics
    needs_cpu = any(m in metrics for m in ("params_test", "latency", "memory")) or settings.latency_device is not None
    meta_flops = "flops" in metrics and (
        settings.flops_device == "meta" or (settings.flops_device == "auto" and not needs_cpu)
    )
    meta_net = None
    if meta_flops or ("params" in metrics and not needs_cpu) or settings.architecture:
        meta_net = _try_meta(encoding_to_net, encoding)
    cpu_net: torch.nn.Module | None = None
    if needs_cpu or (meta_net is None and (metrics or settings.architecture or settings.proxies)):
        torch.manual_seed(settings.seed)
        cpu_net = _build(encoding_to_net, encoding)
    if settings.architecture:
        from nastune.features import ARCH_PREFIX, architecture_features

        # read before inference_form(): the structure as built (train-time form) is what the user wrote
        structure = meta_net if meta_net is not None else cpu_net
        if structure is not None:
            for k, v in enumerate(architecture_features(structure).tolist()):
                values[f"{ARCH_PREFIX}{k}"] = v
    if "params" in metrics:
        source = cpu_net if cpu_net is not None else meta_net
        if source is not None:
            values["params"] = float(count_parameters(source))
    infer: torch.nn.Module | None = None
    if cpu_net is not None:
        cpu_net.eval()
        infer = inference_form(cpu_net).eval()
    if "params_test" in metrics and infer is not None:
        values["params_test"] = float(count_parameters(infer, trainable_only=False))
    if "flops" in metrics:
        flops = _meta_flops(meta_net, inputs) if meta_flops and meta_net is not None else None
        if flops is None:
            if infer is None:  # meta was tried and failed: build on CPU after all
                torch.manual_seed(settings.seed)
                infer = inference_form(_build(encoding_to_net, encoding).eval()).eval()
            flops = count_flops(infer, inputs)
        values["flops"] = flops
    if infer is not None and "latency" in metrics:
        values["latency"] = measure_latency(
            infer, inputs, repeats=settings.latency_repeats, warmup=settings.latency_warmup
        )
    if infer is not None and settings.latency_device is not None:
        values[device_latency_metric(settings.latency_device)] = measure_device_latency(
            infer, inputs, settings.latency_device, repeats=settings.latency_repeats, warmup=settings.latency_warmup
        )
    if infer is not None and "memory" in metrics:
        try:
            values["memory"] = measure_peak_memory(infer, inputs)
        except ProfilingError as exc:  # pragma: no cover - depends on the torch build
            logger.debug("memory not measured: %s", exc)
    if settings.proxies:
        torch.manual_seed(settings.seed)
        proxy_net = _build(encoding_to_net, encoding)
        for name, score in (("naswot", naswot_score), ("log_synflow", log_synflow_score)):
            try:
                values[name] = score(proxy_net if name == "naswot" else copy.deepcopy(proxy_net), inputs)
            except Exception as exc:  # a proxy undefined for this network is NaN, not a failure
                logger.debug("proxy %s not computed: %s", name, exc)


# --------------------------------------------------------------------------------------------------
# Running many encodings: in this process or in worker processes
# --------------------------------------------------------------------------------------------------


def _warm_up_net(encoding: Any) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(32, 2))


def _warm_up(settings: ProfileSettings) -> None:
    """Pay the one-off costs (FLOP counter import, first meta dispatch, profiler start) outside any time limit."""
    warm = ProfileSettings(metrics=settings.metrics, proxies=settings.proxies, latency_repeats=1, latency_warmup=0)
    profile_network(_warm_up_net, None, torch.zeros(2, 1, 4, 4), warm)


class _ProfilingTimeout(BaseException):
    """Raised by SIGALRM inside an in-process measurement (BaseException so user code cannot swallow it)."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[bool]:
    """Interrupt the block with :class:`_ProfilingTimeout` after ``seconds`` (main thread on POSIX only)."""
    usable = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and math.isfinite(seconds)
        and seconds > 0
    )
    if not usable:
        yield False
        return

    def on_alarm(signum: int, frame: Any) -> None:
        raise _ProfilingTimeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run_in_process(
    encoding_to_net: EncodingToNet,
    items: Iterable[tuple[int, Any]],
    inputs: tuple[torch.Tensor, ...],
    settings: ProfileSettings,
    timeout_s: float,
    on_result: ResultCallback,
) -> None:
    with _torch_threads(settings.torch_threads):
        _warm_up(settings)
        for key, encoding in items:
            start = time.perf_counter()
            values: dict[str, float] = {}
            error: str | None = None
            try:
                with _time_limit(timeout_s):
                    values, error = profile_network(encoding_to_net, encoding, inputs, settings)
            except _ProfilingTimeout:
                values, error = {}, f"timed out after {timeout_s:g} s"
            on_result(key, values, error, time.perf_counter() - start)


def _worker_main(conn: Connection, payload: bytes) -> None:
    """Entry point of a spawned profiling worker: load the payload, then profile what the parent sends."""
    try:
        encoding_to_net, inputs, settings = pickle.loads(payload)
        torch.set_num_threads(settings.torch_threads)
        os.environ.setdefault("KINETO_LOG_LEVEL", "6")
        _warm_up(settings)
    except BaseException as exc:
        conn.send(("init-error", _format_error(exc)))
        return
    conn.send(("ready", os.getpid()))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        key, encoding = message
        start = time.perf_counter()
        values, error = profile_network(encoding_to_net, encoding, inputs, settings)
        conn.send(("done", key, values, error, time.perf_counter() - start))


def _check_picklable(encoding_to_net: EncodingToNet) -> None:
    name = getattr(encoding_to_net, "__qualname__", repr(encoding_to_net))
    module = getattr(encoding_to_net, "__module__", None)
    fix = (
        "define encoding_to_net with `def` at module level in a .py file and import it from there"
        " (lambdas, nested functions and notebook cells cannot reach worker processes), or profile in this"
        " process with threads=1, isolate=False"
    )
    if module == "__main__" and getattr(sys.modules.get("__main__"), "__file__", None) is None:
        raise ProfilingError(f"encoding_to_net {name!r} is defined interactively in __main__; {fix}")
    try:
        pickle.dumps(encoding_to_net)
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise ProfilingError(f"encoding_to_net {name!r} cannot be sent to worker processes ({exc}); {fix}") from exc


@dataclass(eq=False)
class _Worker:
    process: Any
    conn: Connection
    ready: bool = False
    task: tuple[int, float] | None = None  # (key, start time)


def _run_in_workers(
    encoding_to_net: EncodingToNet,
    items: Iterable[tuple[int, Any]],
    inputs: tuple[torch.Tensor, ...],
    settings: ProfileSettings,
    timeout_s: float,
    n_workers: int,
    on_result: ResultCallback,
    startup_timeout_s: float = 300.0,
) -> None:
    _check_picklable(encoding_to_net)
    try:
        payload = pickle.dumps((encoding_to_net, inputs, settings))
    except (pickle.PicklingError, AttributeError, TypeError) as exc:
        raise ProfilingError(f"sample_input or settings cannot be sent to worker processes: {exc}") from exc
    ctx = mp.get_context("spawn")
    queue = iter(items)
    workers: list[_Worker] = []

    def start_worker() -> _Worker:
        parent_conn, child_conn = ctx.Pipe()
        process = ctx.Process(target=_worker_main, args=(child_conn, payload), daemon=True, name="nastune-profiler")
        process.start()
        child_conn.close()
        worker = _Worker(process, parent_conn)
        worker_started[id(worker)] = time.monotonic()
        return worker

    def retire(worker: _Worker, *, kill: bool) -> None:
        if kill and worker.process.is_alive():
            worker.process.kill()
        worker.process.join(timeout=10)
        worker.conn.close()

    worker_started: dict[int, float] = {}
    exhausted = False
    try:
        workers = [start_worker() for _ in range(max(1, n_workers))]
        while True:
            for w in workers:
                if w.ready and w.task is None and not exhausted:
                    nxt = next(queue, None)
                    if nxt is None:
                        exhausted = True
                        break
                    key, encoding = nxt
                    w.conn.send((key, encoding))
                    w.task = (key, time.monotonic())
            active = [w for w in workers if w.task is not None or (not w.ready and not exhausted)]
            if not active:
                break
            now = time.monotonic()
            deadlines = [w.task[1] + timeout_s for w in active if w.task is not None]
            deadlines += [worker_started[id(w)] + startup_timeout_s for w in active if not w.ready]
            wait_s = max(0.0, min(deadlines) - now) if deadlines else None
            ready = wait([w.conn for w in active] + [w.process.sentinel for w in active], timeout=wait_s)
            for idx, w in enumerate(list(workers)):
                if w not in active:
                    continue
                message = None
                died = False
                if w.conn in ready:
                    try:
                        message = w.conn.recv()
                    except (EOFError, OSError):
                        died = True
                elif w.process.sentinel in ready:
                    died = True
                if message is not None:
                    kind = message[0]
                    if kind == "ready":
                        w.ready = True
                    elif kind == "init-error":
                        raise ProfilingError(
                            "a profiling worker process could not load encoding_to_net / sample_input:\n"
                            f"{message[1]}\nMake encoding_to_net importable (module level in a .py file on"
                            " sys.path) or profile in this process with threads=1, isolate=False"
                        )
                    elif kind == "done":
                        _, key, values, error, seconds = message
                        w.task = None
                        on_result(key, values, error, seconds)
                    continue
                now = time.monotonic()
                timed_out = w.task is not None and now - w.task[1] > timeout_s
                slow_start = not w.ready and now - worker_started[id(w)] > startup_timeout_s
                if slow_start and not died:
                    raise ProfilingError(f"a profiling worker process did not start within {startup_timeout_s:g} s")
                if died or timed_out:
                    retire(w, kill=True)
                    if w.task is not None:
                        key, started = w.task
                        if timed_out and not died:
                            error = f"timed out after {timeout_s:g} s (worker process killed)"
                        else:
                            error = (
                                f"worker process died (exit code {w.process.exitcode}) while profiling this"
                                " encoding (crash or out of memory)"
                            )
                        on_result(key, {}, error, now - started)
                    elif not w.ready:
                        raise ProfilingError(
                            f"a profiling worker process exited while starting (exit code {w.process.exitcode});"
                            " its traceback is on stderr. Worker processes are spawned: the main script must be"
                            " a file (not stdin) and encoding_to_net's module importable from sys.path"
                        )
                    workers[idx] = start_worker()
    finally:
        for w in workers:
            if not w.ready or w.task is not None:  # still starting, or abandoned mid-encoding
                w.process.kill()
            with contextlib.suppress(OSError, ValueError, BrokenPipeError):
                w.conn.send(None)
        for w in workers:
            w.process.join(timeout=5)
            if w.process.is_alive():
                w.process.kill()
                w.process.join(timeout=5)
            w.conn.close()


def _run(
    encoding_to_net: EncodingToNet,
    items: Iterable[tuple[int, Any]],
    total: int,
    sample_input: SampleInput,
    settings: ProfileSettings,
    *,
    timeout_s: float,
    threads: int,
    isolate: bool | None,
    progress: bool,
    on_result: ResultCallback,
) -> None:
    inputs = _as_inputs(sample_input)
    if threads < 1:
        raise ProfilingError(f"threads must be at least 1, got {threads}")
    isolate = threads > 1 if isolate is None else isolate
    if threads > 1 and not isolate:
        raise ProfilingError("threads > 1 profiles in worker processes; do not combine it with isolate=False")
    bar = tqdm(total=total, desc="profiling", unit="enc", disable=not progress)

    def record(key: int, values: dict[str, float], error: str | None, seconds: float) -> None:
        bar.update(1)
        if error is not None:
            logger.warning("profiling encoding %d failed: %s", key, error.splitlines()[0])
        else:
            logger.debug("profiled encoding %d in %.3f s", key, seconds)
        on_result(key, values, error, seconds)

    try:
        if isolate:
            _run_in_workers(encoding_to_net, items, inputs, settings, timeout_s, threads, record)
        else:
            _run_in_process(encoding_to_net, items, inputs, settings, timeout_s, record)
    finally:
        bar.close()


def profile_encodings(
    encoding_to_net: EncodingToNet,
    encodings: Sequence[Any],
    sample_input: SampleInput,
    *,
    metrics: Sequence[str] = PROFILE_METRICS,
    timeout_s: float = 60.0,
    latency_repeats: int = 10,
    latency_warmup: int = 2,
    threads: int = 1,
    torch_threads: int = 1,
    proxies: bool = False,
    seed: int = 0,
    isolate: bool | None = None,
    progress: bool = False,
    flops_device: str = "auto",
    architecture: bool = False,
    latency_device: str | None = None,
) -> ProfileTable:
    """Profile a list of encodings (a chunk of a space); never raises for one bad encoding.

    Args:
        encoding_to_net: ``encoding -> torch.nn.Module``.
        encodings: the ``m`` encodings to profile.
        sample_input: forward input, e.g. ``(B, C, H, W)``, or a tuple of tensors.
        metrics: subset of :data:`PROFILE_METRICS`.
        timeout_s: per-encoding time limit.
        latency_repeats, latency_warmup: timed and untimed forwards for ``latency``.
        threads: worker processes (``> 1`` implies isolated workers).
        torch_threads: torch intra-op threads used for every measurement (fixed, for comparable latency).
        proxies: also compute :data:`PROXY_METRICS`.
        seed: seeds each network's initialisation (proxies depend on it).
        isolate: run in spawned worker processes with hard timeouts; default ``threads > 1``.
        progress: show a tqdm bar.
        flops_device: ``"auto"``, ``"meta"`` or ``"cpu"`` (see the module docstring).
        architecture: also return the architecture features (:mod:`nastune.features`) as ``arch:<k>`` columns.
        latency_device: also measure latency on this device, as :func:`device_latency_metric` names it.

    Returns:
        A :class:`ProfileTable` with ``m`` rows in the order of ``encodings``.
    """
    settings = ProfileSettings(
        metrics=tuple(metrics), proxies=proxies, seed=seed, latency_repeats=latency_repeats,
        latency_warmup=latency_warmup, torch_threads=torch_threads, flops_device=flops_device,
        architecture=architecture, latency_device=latency_device,
    )
    table = ProfileTable.empty(len(encodings), settings.all_metrics)
    _run(
        encoding_to_net, enumerate(encodings), len(encodings), sample_input, settings,
        timeout_s=timeout_s, threads=threads, isolate=isolate, progress=progress, on_result=table.record,
    )
    return table


# --------------------------------------------------------------------------------------------------
# Checkpointed profiling of a whole space (SearchSpace.preprocess)
# --------------------------------------------------------------------------------------------------


def _input_signature(inputs: tuple[torch.Tensor, ...]) -> list[dict[str, Any]]:
    import hashlib

    return [
        {
            "shape": list(x.shape),
            "dtype": str(x.dtype),
            "sha256": hashlib.sha256(x.detach().cpu().contiguous().numpy().tobytes()).hexdigest(),
        }
        for x in inputs
    ]


def _read_checkpoint(path: Path, header: dict[str, Any]) -> list[dict[str, Any]]:
    """Finished entries of a checkpoint written for the same space and settings ([] otherwise)."""
    if not path.exists():
        return []
    entries: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        first = fh.readline()
        try:
            found = json.loads(first)
        except ValueError:
            found = None
        if found != header:
            logger.warning("profiling checkpoint %s is for another space or settings; starting over", path)
            return []
        for line in fh:
            try:
                entry = json.loads(line)
                int(entry["i"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill
            entries.append(entry)
    return entries


def profile_space(
    encoding_to_net: EncodingToNet,
    encodings: Sequence[Any],
    indices: np.ndarray,
    sample_input: SampleInput,
    *,
    checkpoint: Path | None,
    fingerprint: str,
    metrics: Sequence[str] = PROFILE_METRICS,
    proxies: bool = False,
    seed: int = 0,
    timeout_s: float = 60.0,
    latency_repeats: int = 10,
    threads: int = 1,
    isolate: bool | None = None,
    progress: bool = True,
    flops_device: str = "auto",
    architecture: bool = False,
) -> ProfileTable:
    """Profile ``encodings[indices]``, resuming from and appending to the ``checkpoint`` sidecar file.

    Every finished encoding is appended to ``checkpoint`` (JSON lines) at once, so a killed run loses at most
    the encodings in flight; a rerun with the same space (``fingerprint``), sample input and settings skips
    what is already there.

    Returns:
        A table over all ``len(encodings)`` encodings (NaN / unprofiled outside ``indices``).
    """
    settings = ProfileSettings(
        metrics=tuple(metrics), proxies=proxies, seed=seed, latency_repeats=latency_repeats, flops_device=flops_device,
        architecture=architecture,
    )
    inputs = _as_inputs(sample_input)
    n = len(encodings)
    table = ProfileTable.empty(n, settings.all_metrics)
    header = {
        "nastune_profile_checkpoint": _CHECKPOINT_VERSION,
        "space": fingerprint,
        "settings": asdict(settings) | {"metrics": list(settings.metrics)},
        "inputs": _input_signature(inputs),
    }
    header = json.loads(json.dumps(header))
    done: set[int] = set()
    if checkpoint is not None:
        for entry in _read_checkpoint(checkpoint, header):
            i = int(entry["i"])
            if 0 <= i < n:
                values = {k: (np.nan if v is None else float(v)) for k, v in entry.get("v", {}).items()}
                table.record(i, values, entry.get("e"), float(entry.get("s") or np.nan))
                done.add(i)
        if done:
            logger.info("resuming profiling: %d encodings already profiled in %s", len(done), checkpoint)
    todo = [int(i) for i in indices.tolist() if int(i) not in done]
    sink = None
    if checkpoint is not None:
        if not done:
            checkpoint.write_text(json.dumps(header) + "\n", encoding="utf-8")
        sink = checkpoint.open("a", encoding="utf-8")

    def on_result(key: int, values: dict[str, float], error: str | None, seconds: float) -> None:
        table.record(key, values, error, seconds)
        if sink is not None:
            clean = {k: (None if v is None or not math.isfinite(v) else v) for k, v in values.items()}
            sink.write(json.dumps({"i": key, "v": clean, "e": error, "s": seconds}) + "\n")
            sink.flush()

    try:
        _run(
            encoding_to_net, ((i, encodings[i]) for i in todo), len(todo), sample_input, settings,
            timeout_s=timeout_s, threads=threads, isolate=isolate, progress=progress, on_result=on_result,
        )
    finally:
        if sink is not None:
            sink.close()
    return table
