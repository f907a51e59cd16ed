"""Entry points that run user code; executed only inside the sandbox child (``usercode.sandbox``).

Each takes the JSON payload and the scratch folder (the child's working directory, which holds
the user's module files) and returns something JSON-serialisable. Nothing here imports Django.
"""

from __future__ import annotations

import importlib.util
import math
import time
from pathlib import Path
from types import ModuleType
from typing import Any

USER_MODULE = "user_module.py"
EVALUATOR_MODULE = "evaluator_module.py"


def _load(scratch: Path, file_name: str, attribute: str) -> Any:
    path = scratch / file_name
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {file_name}")
    module: ModuleType = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    function = getattr(module, attribute, None)
    if not callable(function):
        raise AttributeError(f"the module defines no callable {attribute!r}")
    return function


def _sample_input(shape: list[int], seed: int) -> Any:
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=generator)


def check_module(payload: dict, scratch: Path) -> dict:
    """Import the module, build a few networks and run the sample input through each.

    payload: ``{"encodings": [[...], ...], "sample_input_shape": [...], "indices": [...]}``.
    Raises when the module cannot be imported; a sample that fails is reported with its error.
    """
    import torch

    encoding_to_net = _load(scratch, USER_MODULE, "encoding_to_net")
    sample = _sample_input(payload["sample_input_shape"], seed=0)
    checked = []
    for index, encoding in zip(payload["indices"], payload["encodings"], strict=True):
        started = time.perf_counter()
        entry: dict[str, Any] = {"index": index}
        try:
            net = encoding_to_net(encoding)
            if not isinstance(net, torch.nn.Module):
                raise TypeError(f"it returned {type(net).__name__}, not a torch.nn.Module")
        except Exception as exc:
            entry["error"] = f"encoding_to_net(encodings[{index}]) failed: {type(exc).__name__}: {exc}"
            checked.append(entry)
            continue
        net.eval()
        try:
            with torch.no_grad():
                output = net(sample)
        except Exception as exc:
            entry["error"] = (f"the network of encodings[{index}] failed on a sample input of shape "
                              f"{list(sample.shape)}: {type(exc).__name__}: {exc}")
            checked.append(entry)
            continue
        entry.update({
            "params": int(sum(p.numel() for p in net.parameters() if p.requires_grad)),
            "output_shape": list(output.shape) if isinstance(output, torch.Tensor) else None,
            "seconds": round(time.perf_counter() - started, 3),
        })
        checked.append(entry)
    return {"checked": checked}


def profile(payload: dict, scratch: Path) -> dict:
    """Profile a chunk of encodings with the engine; never fails for one bad encoding.

    payload: ``{"encodings": [...], "sample_input_shape": [...], "timeout_s": float, "metrics": [...]}``.
    Returns ``{"metrics": {name: [value or None, ...]}, "errors": [message or None, ...]}``.
    """
    from nastune.profiling import profile_encodings

    encoding_to_net = _load(scratch, USER_MODULE, "encoding_to_net")
    sample = _sample_input(payload["sample_input_shape"], seed=0)
    import torch

    # a worker with a GPU (the gpu queue) also measures latency there, as latency_cuda_<gpu> (issue 15)
    latency_device = payload.get("latency_device") or ("cuda" if torch.cuda.is_available() else None)
    table = profile_encodings(
        encoding_to_net, payload["encodings"], sample, timeout_s=float(payload.get("timeout_s", 60.0)),
        metrics=tuple(payload["metrics"]), threads=1, progress=False, latency_device=latency_device,
    )
    metrics = {
        name: [None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)
               for value in values]
        for name, values in table.metrics.items()
    }
    return {"metrics": metrics, "errors": list(table.errors)}


def evaluate_module(payload: dict, scratch: Path) -> float | dict[str, float]:
    """Call the uploaded evaluator: ``evaluate(encoding, fidelity) -> float``, or a dict of named finite numbers
    for a search with several objectives (``{"accuracy": 0.93, "latency_ms": 4.1}``)."""
    evaluate = _load(scratch, EVALUATOR_MODULE, "evaluate")
    value = evaluate(payload["encoding"], payload["fidelity"])
    if isinstance(value, dict):
        out = {}
        for key, number in value.items():
            try:
                out[str(key)] = _finite(number)
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"{key}: {exc}") from None
        return out
    return _finite(value)


def evaluate_image_classification(payload: dict, scratch: Path) -> float:
    """Train and evaluate with the engine's image-classification evaluator (torchrun inside)."""
    from nastune.evaluators.image_classification import create_img_class_evaluator

    config = dict(payload["config"])
    run_dir = config.pop("run_dir")
    evaluator = create_img_class_evaluator(config_to_model_file=str(scratch / USER_MODULE), **config)
    # The run folder is chosen by the caller (one per candidate and fidelity), so a retried attempt
    # resumes from the checkpoint there and the caller can stream its train.log.
    return _finite(evaluator.evaluate(payload["encoding"], run_dir=run_dir).accuracy)


def _finite(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"the evaluator returned {value!r}; it must return a number") from None
    if not math.isfinite(number):
        raise ValueError(f"the evaluator returned {number}; it must return a finite number")
    return number


def summarize(payload: dict, scratch: Path) -> dict:
    """Build one network and describe it: module tree and trainable parameters (train and test time,
    the test-time form being the engine's :func:`nastune.profiling.inference_form`)."""
    import copy

    from nastune.profiling import count_parameters, has_inference_form, inference_form

    encoding_to_net = _load(scratch, USER_MODULE, "encoding_to_net")
    net = encoding_to_net(payload["encoding"])
    params = int(count_parameters(net))
    params_test = None
    if has_inference_form(net):
        params_test = int(count_parameters(inference_form(copy.deepcopy(net).eval()), trainable_only=False))
    text = str(net)
    return {"text": text[:200_000], "params": params, "params_test": params_test}
