"""Best-value curves as Plotly figures (the data comes from :meth:`SearchInstance.best_curve`).

The data is plain lists, so a web page can also draw it with plotly.js directly; these functions
only turn it into a :class:`plotly.graph_objects.Figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from nastune.errors import NastuneError

if TYPE_CHECKING:
    import plotly.graph_objects as go

__all__ = ["X_AXES", "band_figure", "best_curve_figure"]

#: x-axis choices of :func:`best_curve_figure`: key in the curve data -> axis title
X_AXES: dict[str, str] = {
    "evaluation": "evaluations",
    "budget_units": "budget spent (hi-fi evaluations)",
    "cost": "cost spent",
}


def _check_curve(curve: Mapping[str, Sequence[Any]], x: str, y: str) -> None:
    for key in (x, y):
        if key not in curve:
            raise NastuneError(f"curve data has no {key!r} list; pass SearchInstance.best_curve() output")
    if len(curve[x]) != len(curve[y]):
        raise NastuneError(f"curve lists {x!r} and {y!r} differ in length")


def best_curve_figure(
    curves: Mapping[str, Mapping[str, Sequence[Any]]] | Mapping[str, Sequence[Any]],
    *,
    x: str = "evaluation",
    y: str = "best_hi",
    title: str | None = None,
    show_points: bool = True,
) -> go.Figure:
    """Best value so far against evaluations (or spent budget / cost).

    Args:
        curves: one :meth:`SearchInstance.best_curve` result, or ``{label: best_curve(), ...}`` to compare.
        x: ``"evaluation"``, ``"budget_units"`` or ``"cost"``.
        y: ``"best_hi"`` (default) or ``"best_lo"``.
        title: figure title.
        show_points: also draw every evaluation's value (hi fidelity as dots, lo fidelity as crosses)
            when a single curve is given.

    Returns:
        A Plotly figure (step lines; entries before the first result are gaps).
    """
    import plotly.graph_objects as go

    if x not in X_AXES:
        raise NastuneError(f"x must be one of {sorted(X_AXES)}, got {x!r}")
    single = "evaluation" in curves and not isinstance(curves.get("evaluation"), Mapping)
    named: dict[str, Any] = {"best": curves} if single else dict(curves)
    fig = go.Figure()
    for label, curve in named.items():
        _check_curve(curve, x, y)
        fig.add_trace(go.Scatter(x=list(curve[x]), y=list(curve[y]), mode="lines", name=str(label),
                                 line={"shape": "hv"}))
        if single and show_points and "value" in curve and "fidelity" in curve:
            for fid, symbol in (("hi", "circle"), ("lo", "x")):
                xs = [a for a, f in zip(curve[x], curve["fidelity"], strict=True) if f == fid]
                ys = [v for v, f in zip(curve["value"], curve["fidelity"], strict=True) if f == fid]
                if xs:
                    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", name=f"{fid}-fidelity evaluations",
                                             marker={"symbol": symbol, "size": 5, "opacity": 0.5}))
    fig.update_layout(
        title=title, xaxis_title=X_AXES[x], yaxis_title="best value" if y == "best_hi" else "best lo-fi value",
        template="plotly_white", legend={"orientation": "h", "y": -0.2},
    )
    return fig


def band_figure(
    x: Sequence[float],
    series: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[float]]],
    *,
    title: str | None = None,
    x_title: str = "evaluations",
    y_title: str = "value",
    log_y: bool = False,
) -> go.Figure:
    """Median lines with a shaded band (e.g. the 25th-75th percentile over seeds) per method.

    Args:
        x: ``(T,)`` x values shared by every series.
        series: label -> ``(median, lower, upper)``, each ``(T,)``.
        title, x_title, y_title: labels. log_y: logarithmic y axis.
    """
    import plotly.graph_objects as go

    fig = go.Figure()
    for label, (mid, lo, hi) in series.items():
        if not (len(mid) == len(lo) == len(hi) == len(x)):
            raise NastuneError(f"series {label!r}: median/lower/upper must have {len(x)} values each")
        fig.add_trace(go.Scatter(x=list(x) + list(x)[::-1], y=list(hi) + list(lo)[::-1], fill="toself",
                                 opacity=0.2, line={"width": 0}, showlegend=False, hoverinfo="skip",
                                 name=f"{label} band"))
        fig.add_trace(go.Scatter(x=list(x), y=list(mid), mode="lines", name=str(label)))
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, template="plotly_white")
    if log_y:
        fig.update_yaxes(type="log")
    return fig
