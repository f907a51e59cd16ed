"""Automatic features: ordinal and interaction columns from encodings, structure and wiring from networks.

Two families, both computed without any work from the user:

* **Encoding extras** (:func:`infer_encoding_extras`, :func:`encoding_extra_features`): every numeric
  position that the feature spec one-hot encodes also gets an ordinal column (its value z-scored), so a
  search sees that ``width=64`` lies between 32 and 128; and products of every pair of ordinal/numeric
  columns when there are few enough of them, so the surrogate sees interactions such as depth x width.
* **Architecture features** (:func:`architecture_features`): read from the network that
  ``encoding_to_net`` builds on the meta device (no weights allocated, no forward pass): op-type counts,
  each op type's share of parameters and (estimated) FLOPs, depth and width statistics, per-stage
  channels and kernels, input->output path statistics of the computation graph (torch.fx): the
  depth distribution of its live paths and the mean count of each op type along them, and
  Weisfeiler-Lehman subtree counts of that graph hashed into a fixed number of buckets. The vector has
  the same length (:data:`ARCH_FEATURE_NAMES`) for every network of every space.
"""

from __future__ import annotations

import itertools
import logging
import math
import operator
import zlib
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch

    from nastune.space import Encodings

__all__ = [
    "ARCH_FEATURE_NAMES",
    "ARCH_PREFIX",
    "architecture_features",
    "encoding_extra_features",
    "encoding_extra_names",
    "infer_encoding_extras",
    "standardise_architecture",
]

logger = logging.getLogger("nastune")

#: Op categories of the architecture features (every leaf module / graph op falls in exactly one).
CATEGORIES: tuple[str, ...] = (
    "conv1x1", "conv3x3", "conv5x5", "conv7x7+", "conv_depthwise", "linear", "norm", "activation",
    "pool_avg", "pool_max", "identity", "zero", "attention", "other",
)
#: Resolution stages described one by one (deeper stages are folded into the last).
N_STAGES = 4
#: Weisfeiler-Lehman iterations and hash buckets per iteration.
WL_ITERATIONS = 2
WL_BUCKETS = 32
#: Metric-name prefix under which the profiling pass returns architecture features.
ARCH_PREFIX = "arch:"
#: Pairwise products are added while the ordinal/numeric columns number at most this.
INTERACTION_MAX_COLUMNS = 12
#: Nominal input resolution (pixels) of the FLOP estimate; only shares and ratios are used.
_NOMINAL_PIXELS = 32 * 32

_GLOBAL_NAMES = (
    "log_params", "log_flops", "log_leaf_modules", "depth_weighted_longest", "depth_weighted_shortest",
    "log_paths", "log_live_paths", "mean_log2_kernel", "max_kernel", "mean_log2_width", "max_log2_width",
    "min_log2_width", "n_stages", "log_adds", "log_concats", "log_muls", "graph_traced",
)
#: Lower edges of the path-depth histogram (weighted ops on a path; the last bin is open).
PATH_DEPTH_EDGES = (0, 2, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192)
#: Depths tracked exactly by the path recursion; deeper paths are counted at this depth.
_PATH_DEPTH_CAP = 256
_PATH_NAMES = (
    "path depth mean", "path depth std", "path depth q10", "path depth q50", "path depth q90",
    *(f"path depth share {lo}+" for lo in PATH_DEPTH_EDGES),
    *(f"path mean count {c}" for c in CATEGORIES),
)
ARCH_FEATURE_NAMES: tuple[str, ...] = (
    tuple(f"count {c}" for c in CATEGORIES)
    + tuple(f"params share {c}" for c in CATEGORIES)
    + tuple(f"flops share {c}" for c in CATEGORIES)
    + _GLOBAL_NAMES
    + tuple(f"stage {s} {what}" for s in range(N_STAGES) for what in ("log2 width", "log convs", "mean kernel",
                                                                      "flops share"))
    + tuple(f"wl{h} bucket {b}" for h in range(WL_ITERATIONS) for b in range(WL_BUCKETS))
    + _PATH_NAMES
)
#: Widths of earlier releases' feature vectors (each a prefix of today's); their bundles still load, with the
#: columns added since then unknown (NaN).
EARLIER_ARCH_WIDTHS: tuple[int, ...] = (len(ARCH_FEATURE_NAMES) - len(_PATH_NAMES),)


# --------------------------------------------------------------------------------------------------
# Encoding extras: ordinal columns and pairwise interactions
# --------------------------------------------------------------------------------------------------


def infer_encoding_extras(
    encodings: Encodings, spec: Sequence[Mapping[str, Any]], *, interactions: bool | str = False,
    fixed: Collection[int] = (),
) -> dict[str, Any]:
    """Decide the extra encoding columns (JSON-safe, stored with the space).

    Args:
        encodings: the validated table.
        spec: its per-position feature spec (:func:`nastune.space.infer_feature_spec`).
        fixed: positions whose kind the user chose (``feature_spec=``): they get no ordinal column.
        interactions: add pairwise products of the ordinal/numeric columns (``True``), never (``False``,
            default), or ``"auto"``: decide when pretraining (:func:`interactions_help`), if there are between
            2 and :data:`INTERACTION_MAX_COLUMNS` such columns. Off by default because the products did not
            help the search where measured (``benchmarks/nb201/README.md``, issue 13 log): the surrogate's
            MLP trunk learns interactions itself, and extra inputs cost it observations.

    Returns:
        ``{"ordinal": [{"position", "center", "scale"}, ...], "interactions": [[a, b], ...], "candidates":
        [[a, b], ...], "mode": "auto" | "on" | "off"}`` where the pairs index the list of ordinal/numeric
        columns (ordinal ones first); ``interactions`` are the pairs in use.
    """
    ordinal: list[dict[str, Any]] = []
    for j, s in enumerate(spec):
        if s["kind"] != "onehot" or encodings.kinds[j] not in ("int", "float") or len(s["values"]) < 3 \
                or j in fixed:
            continue
        x = encodings.columns[j].astype(np.float64)
        std = float(x.std())
        ordinal.append({"position": j, "center": float(x.mean()), "scale": std if std > 0 else 1.0})
    n_numeric = len(ordinal) + sum(1 for s in spec if s["kind"] in ("numeric", "log"))
    pairs = [[a, b] for a in range(n_numeric) for b in range(a + 1, n_numeric)]
    if interactions == "auto":
        mode = "auto" if 2 <= n_numeric <= INTERACTION_MAX_COLUMNS else "off"
    elif isinstance(interactions, bool):
        mode = "on" if interactions else "off"
    else:
        raise ValueError(f"interactions must be True, False or 'auto', got {interactions!r}")
    return {
        "ordinal": ordinal, "interactions": pairs if mode == "on" else [], "candidates": pairs if mode != "off" else [],
        "mode": mode,
    }


def _ridge_cv_r2(X: np.ndarray, y: np.ndarray, rng: np.random.Generator, folds: int = 5, ridge: float = 1.0) -> float:
    """Mean held-out R^2 of a ridge regression ``y ~ X`` over ``folds`` random folds."""
    n = len(y)
    order = rng.permutation(n)
    X1 = np.concatenate([X, np.ones((n, 1))], axis=1)
    scores = []
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        A = X1[train]
        reg = ridge * np.eye(A.shape[1])
        reg[-1, -1] = 0.0  # the intercept is not penalised
        w = np.linalg.solve(A.T @ A + reg, A.T @ y[train])
        resid = y[test] - X1[test] @ w
        var = float(np.var(y[test]))
        scores.append(1.0 - float(np.mean(resid**2)) / var if var > 0 else 0.0)
    return float(np.mean(scores))


def interactions_help(
    without: np.ndarray, products: np.ndarray, targets: Mapping[str, np.ndarray], seed: int = 0,
    min_gain: float = 0.02, max_rows: int = 5000,
) -> dict[str, Any]:
    """Whether pairwise products explain the pretraining metrics better (cross-validated ridge R^2).

    A linear model with the products must beat the one without by ``min_gain`` R^2 on average over the
    metrics: metrics such as parameters (~ depth x width^2) or latency carry the structure of the space,
    so products that explain them are likely to matter for the objective too; products that explain
    nothing only add input dimensions the surrogate has to learn to ignore from a few observations.

    Args:
        without: ``(n, d)`` features without the products; products: ``(n, p)`` the products.
        targets: metric -> ``(n,)`` values (NaN = unknown); positive heavy-tailed metrics are logged.

    Returns:
        ``{"use": bool, "r2_without": float, "r2_with": float}`` (R^2 averaged over the metrics).
    """
    rng = np.random.default_rng([seed, 13])
    r2_without: list[float] = []
    r2_with: list[float] = []
    for values in targets.values():
        rows = np.flatnonzero(np.isfinite(values))
        if len(rows) < 20:
            continue
        if len(rows) > max_rows:
            rows = np.sort(rng.choice(rows, size=max_rows, replace=False))
        y = values[rows].astype(np.float64)
        if (y > 0).all() and np.percentile(y, 99) > 20 * np.percentile(y, 1):
            y = np.log(y)
        if np.std(y) == 0:
            continue
        y = (y - y.mean()) / y.std()
        base = without[rows].astype(np.float64)
        r2_without.append(_ridge_cv_r2(base, y, rng))
        r2_with.append(_ridge_cv_r2(np.concatenate([base, products[rows].astype(np.float64)], axis=1), y, rng))
    if not r2_without:
        return {"use": False, "r2_without": None, "r2_with": None}
    a, b = float(np.mean(r2_without)), float(np.mean(r2_with))
    return {"use": b - a >= min_gain, "r2_without": round(a, 4), "r2_with": round(b, 4)}


def _numeric_columns(
    encodings: Encodings, spec: Sequence[Mapping[str, Any]], extras: Mapping[str, Any], base: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """``(n, k)`` ordinal columns then the spec's numeric/log columns, with their names."""
    cols: list[np.ndarray] = []
    names: list[str] = []
    for o in extras.get("ordinal", []):
        x = encodings.columns[int(o["position"])].astype(np.float64)
        cols.append(((x - o["center"]) / o["scale"]).astype(np.float32))
        names.append(f"{o['position']} (ordinal)")
    offset = 0
    for j, s in enumerate(spec):
        width = len(s["values"]) if s["kind"] == "onehot" else 1
        if s["kind"] in ("numeric", "log"):
            cols.append(base[:, offset])
            names.append(f"{j} ({s['kind']})")
        offset += width
    n = len(encodings)
    return (np.stack(cols, axis=1) if cols else np.zeros((n, 0), dtype=np.float32)), names


def encoding_extra_features(
    encodings: Encodings, spec: Sequence[Mapping[str, Any]], extras: Mapping[str, Any], base: np.ndarray
) -> np.ndarray:
    """``(n, e)`` float32 extra columns: the ordinal columns, then the pairwise products.

    Args:
        encodings: the table.
        spec: its feature spec.
        extras: :func:`infer_encoding_extras` output.
        base: ``(n, d)`` the spec's features (:func:`nastune.space.features_from_spec`), whose numeric
            columns take part in the products.
    """
    numeric, _ = _numeric_columns(encodings, spec, extras, base)
    n_ordinal = len(extras.get("ordinal", []))
    parts = [numeric[:, :n_ordinal]]
    pairs = extras.get("interactions", [])
    if pairs:
        a = np.array([p[0] for p in pairs], dtype=np.int64)
        b = np.array([p[1] for p in pairs], dtype=np.int64)
        parts.append(numeric[:, a] * numeric[:, b])
    return np.ascontiguousarray(np.concatenate(parts, axis=1), dtype=np.float32)


def encoding_extra_names(
    encodings: Encodings, spec: Sequence[Mapping[str, Any]], extras: Mapping[str, Any]
) -> list[str]:
    """Names of the :func:`encoding_extra_features` columns."""
    names = [f"{o['position']} (ordinal)" for o in extras.get("ordinal", [])]
    names += [f"{j} ({s['kind']})" for j, s in enumerate(spec) if s["kind"] in ("numeric", "log")]
    n_ordinal = len(extras.get("ordinal", []))
    return names[:n_ordinal] + [f"{names[a]} x {names[b]}" for a, b in extras.get("interactions", [])]


# --------------------------------------------------------------------------------------------------
# Architecture features
# --------------------------------------------------------------------------------------------------


def _stable_hash(text: str) -> int:
    # Python's hash() is salted per process; features must be identical in every worker and on reload
    return zlib.crc32(text.encode())


def _module_category(module: torch.nn.Module) -> str:
    from torch import nn

    name = type(module).__name__.lower()
    if isinstance(module, nn.modules.conv._ConvNd):
        groups = int(module.groups)
        if groups > 1 and groups == int(module.in_channels):
            return "conv_depthwise"
        k = max(int(v) for v in module.kernel_size)
        return "conv1x1" if k <= 1 else "conv3x3" if k <= 3 else "conv5x5" if k <= 5 else "conv7x7+"
    if isinstance(module, nn.Linear):
        return "linear"
    if isinstance(module, nn.modules.batchnorm._NormBase | nn.LayerNorm | nn.GroupNorm) or "norm" in name:
        return "norm"
    if isinstance(module, nn.MultiheadAttention) or "attention" in name:
        return "attention"
    if isinstance(module, nn.Identity):
        return "identity"
    if "zero" in name:
        return "zero"
    if isinstance(module, nn.modules.pooling._AvgPoolNd | nn.modules.pooling._AdaptiveAvgPoolNd):
        return "pool_avg"
    if isinstance(module, nn.modules.pooling._MaxPoolNd | nn.modules.pooling._AdaptiveMaxPoolNd):
        return "pool_max"
    if module.__class__.__module__.startswith("torch.nn.modules.activation") or name in (
        "relu", "gelu", "silu", "hardswish", "sigmoid", "tanh"
    ):
        return "activation"
    return "other"


_ACTIVATION_FUNCS = {"relu", "gelu", "silu", "sigmoid", "tanh", "hardswish", "softmax", "leaky_relu", "relu6"}


def _function_label(node: Any) -> tuple[str, str]:
    """(category, label) of a call_function / call_method node of an fx graph."""
    target = node.target
    name = target if isinstance(target, str) else getattr(target, "__name__", str(target))
    name = str(name).lstrip("_").lower()
    consts = [a for a in node.args if isinstance(a, int | float) and not isinstance(a, bool)]
    if (name in ("mul", "mul_") and any(c == 0 for c in consts)) or name in ("zeros_like", "zero_"):
        return "zero", "zero"
    if target in (operator.add, operator.iadd) or name in ("add", "add_", "iadd"):
        return "other", "add"
    if name in ("cat", "concat", "stack"):
        return "other", "cat"
    if target is operator.mul or name in ("mul", "mul_", "imul", "matmul", "bmm"):
        return "other", name.rstrip("_")
    if name in _ACTIVATION_FUNCS:
        return "activation", name
    if "pool" in name:
        return ("pool_max" if "max" in name else "pool_avg"), name
    if "conv" in name:
        return "conv3x3", name
    if name in ("linear",):
        return "linear", name
    return "other", name


def _module_label(module: torch.nn.Module, category: str) -> str:
    from torch import nn

    if isinstance(module, nn.modules.conv._ConvNd):
        k = "x".join(str(int(v)) for v in module.kernel_size)
        s = int(module.stride[0])
        return f"{category} k{k} s{s}"
    if isinstance(module, nn.modules.pooling._AvgPoolNd | nn.modules.pooling._MaxPoolNd):
        stride: Any = module.stride
        return f"{category} s{stride if isinstance(stride, int) else stride[0]}"
    return type(module).__name__


def _conv_flops(module: Any, pixels: float) -> float:
    k = float(np.prod([int(v) for v in module.kernel_size]))
    return 2.0 * int(module.in_channels) / int(module.groups) * int(module.out_channels) * k * pixels


def _path_distribution(nodes: Sequence[Any], category_of: Mapping[Any, str], weight: Mapping[Any, float]) -> (
        np.ndarray):
    """How the live input->output paths of a graph are made (the ``path ...`` features).

    A network computes an ensemble of paths (a residual or multi-branch block multiplies them); how deep
    those paths are, and which ops they pass, says how the ops are wired where op counts cannot. One pass
    in topological order carries, per node, the log number of live paths reaching it (zero ops end a
    path), the distribution of their depth (weighted ops on the path) and the mean count of each op
    category along them; every path counts equally. Log-domain counts keep graphs with astronomically many
    paths finite.

    Returns:
        ``(len(_PATH_NAMES),)``: depth mean, std and 10/50/90 % quantiles, depth histogram shares over
        :data:`PATH_DEPTH_EDGES`, mean count per category of :data:`CATEGORIES`; zeros when no path is live.
    """
    n_cat = len(CATEGORIES)
    cat_index = {c: k for k, c in enumerate(CATEGORIES)}
    log_n: dict[Any, float] = {}
    depth: dict[Any, np.ndarray] = {}  # distribution over 0.._PATH_DEPTH_CAP of the paths reaching the node
    count: dict[Any, np.ndarray] = {}  # mean count per category along those paths
    for node in nodes:
        if node.op == "placeholder":
            log_n[node] = 0.0
            depth[node] = np.zeros(_PATH_DEPTH_CAP + 1)
            depth[node][0] = 1.0
            count[node] = np.zeros(n_cat)
            continue
        live = [i for i in node.all_input_nodes if i in log_n]
        if not live or category_of[node] == "zero":
            continue
        if len(live) == 1:  # most nodes: the input's paths, extended (arrays are copied before any change)
            log_n[node], dist, cats = log_n[live[0]], depth[live[0]], count[live[0]]
        else:
            logs = np.array([log_n[i] for i in live])
            top = float(logs.max())
            share = np.exp(logs - top)
            log_n[node] = top + math.log(float(share.sum()))
            share /= share.sum()
            dist = sum(w * depth[i] for w, i in zip(share, live, strict=True))
            cats = sum(w * count[i] for w, i in zip(share, live, strict=True))
        if weight[node] > 0:
            dist = np.concatenate([[0.0], dist[:-2], [dist[-2] + dist[-1]]])
        if node.op in ("call_module", "call_function", "call_method"):
            cats = cats.copy()
            cats[cat_index[category_of[node]]] += 1.0
        depth[node], count[node] = dist, cats
    outputs = [node for node in nodes if node.op == "output" and node in log_n]
    if not outputs:
        return np.zeros(len(_PATH_NAMES))
    dist, cats = depth[outputs[-1]], count[outputs[-1]]
    levels = np.arange(_PATH_DEPTH_CAP + 1, dtype=np.float64)
    mean = float(dist @ levels)
    std = math.sqrt(max(0.0, float(dist @ levels**2) - mean**2))
    cdf = np.cumsum(dist)
    quantiles = [float(np.searchsorted(cdf, q - 1e-12)) for q in (0.1, 0.5, 0.9)]
    shares = [float(dist[lo:hi].sum()) for lo, hi in itertools.pairwise([*PATH_DEPTH_EDGES, _PATH_DEPTH_CAP + 1])]
    return np.concatenate([[mean, std, *quantiles], shares, cats])


def architecture_features(net: torch.nn.Module) -> np.ndarray:
    """Fixed-length structure and wiring features of one network (see :data:`ARCH_FEATURE_NAMES`).

    Works on a network built on the meta device (only shapes and attributes are read; nothing runs).
    The computation graph comes from ``torch.fx.symbolic_trace``; a network that fx cannot trace
    (data-dependent control flow) gets the module-level features and zeros for the graph ones, with the
    ``graph_traced`` feature 0.

    Returns:
        ``(len(ARCH_FEATURE_NAMES),)`` float64, finite.
    """
    import torch

    n_cat = len(CATEGORIES)
    cat_index = {c: k for k, c in enumerate(CATEGORIES)}
    counts = np.zeros(n_cat)
    params = np.zeros(n_cat)
    flops = np.zeros(n_cat)
    widths: list[float] = []
    kernels: list[float] = []
    stage_stats: dict[int, list[float]] = {}  # scale level -> [sum log2 width, convs, sum kernel, flops]
    adds = cats = muls = 0
    n_leaves = 0
    traced = 0.0
    longest = shortest = 0.0
    paths = live_paths = 0.0
    wl = np.zeros((WL_ITERATIONS, WL_BUCKETS))
    path_stats = np.zeros(len(_PATH_NAMES))
    modules = dict(net.named_modules())

    def account(module: torch.nn.Module, category: str, scale: float) -> None:
        nonlocal n_leaves
        n_leaves += 1
        k = cat_index[category]
        counts[k] += 1
        params[k] += sum(p.numel() for p in module.parameters(recurse=False))
        if isinstance(module, torch.nn.modules.conv._ConvNd):
            pixels = _NOMINAL_PIXELS / scale**2
            f = _conv_flops(module, pixels)
            flops[k] += f
            widths.append(math.log2(max(1, int(module.out_channels))))
            kern = float(max(int(v) for v in module.kernel_size))
            kernels.append(kern)
            level = round(math.log2(max(scale, 1.0)))
            st = stage_stats.setdefault(level, [0.0, 0.0, 0.0, 0.0])
            st[0] += widths[-1]
            st[1] += 1
            st[2] += kern
            st[3] += f
        elif isinstance(module, torch.nn.Linear):
            flops[k] += 2.0 * module.in_features * module.out_features
            widths.append(math.log2(max(1, int(module.out_features))))

    try:
        graph = torch.fx.Tracer().trace(net)  # the graph only: building a GraphModule would double the cost
    except Exception as exc:  # data-dependent control flow: module-level features only
        logger.debug("torch.fx cannot trace this network (%s); graph features are zero", exc)
        graph = None
    if graph is None:
        for module in modules.values():
            if next(module.children(), None) is None:
                account(module, _module_category(module), 1.0)
    else:
        traced = 1.0
        nodes = list(graph.nodes)
        label: dict[Any, str] = {}
        category_of: dict[Any, str] = {}
        scale: dict[Any, float] = {}
        weight: dict[Any, float] = {}
        for node in nodes:
            inputs = node.all_input_nodes
            s_in = max((scale[i] for i in inputs), default=1.0)
            cat, lab = "other", node.op
            w = 0.0
            if node.op == "call_module":
                module = modules[str(node.target)]
                cat = _module_category(module)
                lab = _module_label(module, cat)
                stride = getattr(module, "stride", 1)
                stride = stride if isinstance(stride, int) else (stride[0] if stride else 1)
                if isinstance(module, torch.nn.modules.pooling._AdaptiveAvgPoolNd | torch.nn.modules.pooling.
                              _AdaptiveMaxPoolNd):
                    s_out = math.sqrt(_NOMINAL_PIXELS)
                else:
                    s_out = s_in * max(1, int(stride))
                account(module, cat, s_in)
                w = 1.0 if cat.startswith("conv") or cat in ("linear", "attention") else 0.0
                scale[node] = s_out
            else:
                if node.op in ("call_function", "call_method"):
                    cat, lab = _function_label(node)
                    counts[cat_index[cat]] += 1
                    adds += lab == "add"
                    cats += lab == "cat"
                    muls += lab in ("mul", "matmul", "bmm")
                    w = 1.0 if cat.startswith("conv") or cat == "linear" or lab in ("matmul", "bmm") else 0.0
                scale[node] = s_in
            category_of[node] = cat
            label[node] = lab
            weight[node] = w
        # input -> output paths: all of them, and the "live" ones that avoid zero ops
        n_paths: dict[Any, float] = {}
        n_live: dict[Any, float] = {}
        deepest: dict[Any, float] = {}
        shallowest: dict[Any, float] = {}
        for node in nodes:
            inputs = node.all_input_nodes
            if node.op == "placeholder":
                n_paths[node] = n_live[node] = 1.0
                deepest[node] = shallowest[node] = 0.0
                continue
            n_paths[node] = sum(n_paths[i] for i in inputs)
            live_in = [i for i in inputs if n_live[i] > 0]
            n_live[node] = 0.0 if category_of[node] == "zero" else sum(n_live[i] for i in live_in)
            if n_live[node] > 0:
                deepest[node] = max(deepest[i] for i in live_in) + weight[node]
                shallowest[node] = min(shallowest[i] for i in live_in) + weight[node]
            else:
                deepest[node] = shallowest[node] = 0.0
        outputs = [node for node in nodes if node.op == "output"]
        if outputs:
            out = outputs[-1]
            paths, live_paths = n_paths[out], n_live[out]
            longest, shortest = deepest[out], shallowest[out]
        path_stats = _path_distribution(nodes, category_of, weight)
        # Weisfeiler-Lehman subtree labels over predecessors, hashed into buckets
        current = {node: label[node] for node in nodes}
        for h in range(WL_ITERATIONS):
            relabelled = {}
            for node in nodes:
                neigh = sorted(current[i] for i in node.all_input_nodes)
                relabelled[node] = current[node] + "(" + ",".join(neigh) + ")"
            current = {node: str(_stable_hash(text)) for node, text in relabelled.items()}
            for node in nodes:
                if node.op in ("call_module", "call_function", "call_method"):
                    wl[h, int(current[node]) % WL_BUCKETS] += 1
    total_params = params.sum()
    total_flops = flops.sum()
    stage_levels = sorted(stage_stats)
    stages = np.zeros((N_STAGES, 4))
    for k, level in enumerate(stage_levels):
        st = stage_stats[level]
        row = stages[min(k, N_STAGES - 1)]
        row[1] += st[1]
        row[0] += st[0]
        row[2] += st[2]
        row[3] += st[3]
    for row in stages:
        if row[1] > 0:
            row[0] /= row[1]
            row[2] /= row[1]
        row[3] = row[3] / total_flops if total_flops > 0 else 0.0
        row[1] = math.log1p(row[1])
    global_feats = [
        math.log1p(total_params), math.log1p(total_flops), math.log1p(n_leaves), longest, shortest,
        math.log1p(paths), math.log1p(live_paths),
        float(np.mean(np.log2(kernels))) if kernels else 0.0, max(kernels, default=0.0),
        float(np.mean(widths)) if widths else 0.0, max(widths, default=0.0), min(widths, default=0.0),
        float(len(stage_levels)), math.log1p(adds), math.log1p(cats), math.log1p(muls), traced,
    ]
    out_vec = np.concatenate([
        np.log1p(counts),
        params / total_params if total_params > 0 else np.zeros(n_cat),
        flops / total_flops if total_flops > 0 else np.zeros(n_cat),
        np.asarray(global_feats),
        stages.reshape(-1),
        np.log1p(wl).reshape(-1),
        path_stats,
    ])
    return np.nan_to_num(out_vec, nan=0.0, posinf=0.0, neginf=0.0)


def standardise_architecture(raw: np.ndarray) -> dict[str, Any]:
    """Column statistics that turn raw architecture features into model inputs (JSON-safe).

    Constant columns (no information in this space) and columns that no row has (added to the features
    after the bundle was made) are dropped; rows that are NaN (not extracted, failed) become the column
    means.

    Args:
        raw: ``(n, len(ARCH_FEATURE_NAMES))`` float64, NaN rows for encodings without features.

    Returns:
        ``{"columns": [k, ...], "center": [...], "scale": [...]}`` over the kept columns.
    """
    known = np.flatnonzero(np.isfinite(raw).any(axis=0))  # a column no row has (an older bundle's) is dropped
    finite = np.isfinite(raw[:, known]).all(axis=1)
    if not finite.any():
        return {"columns": [], "center": [], "scale": []}
    x = raw[finite][:, known]
    center = x.mean(axis=0)
    scale = x.std(axis=0)
    kept = np.flatnonzero(scale > 1e-9 * np.maximum(1.0, np.abs(center)))
    keep, center, scale = known[kept], center[kept], scale[kept]
    return {
        "columns": keep.tolist(),
        "center": center.tolist(),
        "scale": scale.tolist(),
    }


def architecture_matrix(raw: np.ndarray, stats: Mapping[str, Any]) -> np.ndarray:
    """``(n, k)`` float32 standardised architecture features (NaN rows -> 0, the mean)."""
    cols = np.asarray(stats["columns"], dtype=np.int64)
    if len(cols) == 0:
        return np.zeros((raw.shape[0], 0), dtype=np.float32)
    z = (raw[:, cols] - np.asarray(stats["center"])) / np.asarray(stats["scale"])
    return np.nan_to_num(z, nan=0.0).astype(np.float32)
