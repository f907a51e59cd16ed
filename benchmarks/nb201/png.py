"""A small line-chart renderer with Pillow (the environment has no matplotlib and no Plotly image export).

Draws a grid of panels, each with several named series over a shared x axis, axis ticks, an optional
logarithmic y axis and one legend; enough for the benchmark's curve plot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

PALETTE = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]


@dataclass
class Panel:
    title: str
    x: Sequence[float]
    series: Mapping[str, Sequence[float]]  # label -> y values (NaN = gap)
    y_label: str = ""
    log_y: bool = False
    y_range: tuple[float, float] | None = None
    dashed: set[str] = field(default_factory=set)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    for name in ("DejaVuSans.ttf", "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default()


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    span = hi - lo
    if span <= 0:
        return [lo]
    raw = span / n
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw), default=10 * mag)
    start = math.ceil(lo / step) * step
    ticks = []
    t = start
    while t <= hi + 1e-9 * span:
        ticks.append(round(t, 10))
        t += step
    return ticks


def _log10(v: float) -> float:
    return math.log10(v)


def _identity(v: float) -> float:
    return v


def _mapper(box: tuple[float, float, float, float], xr: tuple[float, float], yr: tuple[float, float],
            fy: Callable[[float], float]) -> Callable[[float, float], tuple[float, float]]:
    """Data coordinates -> pixel coordinates inside ``box`` = (left, right, upper, lower)."""
    left, right, upper, lower = box

    def to_px(x: float, y: float) -> tuple[float, float]:
        px = left + (x - xr[0]) / max(xr[1] - xr[0], 1e-12) * (right - left)
        py = lower - (fy(y) - yr[0]) / (yr[1] - yr[0]) * (lower - upper)
        return px, py

    return to_px


def render(panels: Sequence[Panel], path: str | Path, *, columns: int = 3, title: str = "",
           panel_size: tuple[int, int] = (520, 360)) -> Path:
    """Draw ``panels`` in a grid and save a PNG; every label seen in any panel gets one legend entry."""
    rows = math.ceil(len(panels) / columns)
    pw, ph = panel_size
    labels: list[str] = []
    for p in panels:
        for label in p.series:
            if label not in labels:
                labels.append(label)
    legend_rows = math.ceil(len(labels) / 3)
    top = 40 if title else 10
    width, height = columns * pw, top + rows * ph + 24 * legend_rows + 20
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    f_title, f_text = _font(18), _font(12)
    if title:
        draw.text((width // 2, 12), title, fill="black", font=f_title, anchor="mt")
    colour = {label: PALETTE[k % len(PALETTE)] for k, label in enumerate(labels)}
    for k, p in enumerate(panels):
        ox, oy = (k % columns) * pw, top + (k // columns) * ph
        left, right, upper, lower = ox + 62, ox + pw - 14, oy + 28, oy + ph - 42
        draw.text(((left + right) // 2, oy + 6), p.title, fill="black", font=f_text, anchor="mt")
        xs = [float(v) for v in p.x]
        x_lo, x_hi = min(xs), max(xs)
        values = [float(v) for ys in p.series.values() for v in ys if math.isfinite(float(v))]
        if p.log_y:
            values = [v for v in values if v > 0]
        if p.y_range is not None:
            y_lo, y_hi = p.y_range
        else:
            y_lo, y_hi = (min(values), max(values)) if values else (0.0, 1.0)
        fy = _log10 if p.log_y else _identity
        a, b = fy(y_lo), fy(y_hi)
        if b <= a:
            b = a + 1.0
        to_px = _mapper((left, right, upper, lower), (x_lo, x_hi), (a, b), fy)

        draw.rectangle([left, upper, right, lower], outline=(90, 90, 90))
        for t in _nice_ticks(x_lo, x_hi):
            px, _ = to_px(t, y_lo if not p.log_y else 10**a)
            draw.line([px, lower, px, lower + 4], fill="black")
            draw.line([px, upper, px, lower], fill=(235, 235, 235))
            draw.text((px, lower + 6), f"{t:g}", fill="black", font=f_text, anchor="mt")
        y_ticks = [10.0**e for e in range(math.floor(a), math.ceil(b) + 1)] if p.log_y else _nice_ticks(y_lo, y_hi)
        for t in y_ticks:
            if not (a - 1e-9 <= fy(t) <= b + 1e-9):
                continue
            _, py = to_px(x_lo, t)
            draw.line([left - 4, py, left, py], fill="black")
            draw.line([left, py, right, py], fill=(235, 235, 235))
            draw.text((left - 6, py), f"{t:g}", fill="black", font=f_text, anchor="rm")
        draw.text(((left + right) // 2, lower + 22), "evaluations (hi-fi units)", fill="black", font=f_text,
                  anchor="mt")
        if p.y_label:
            label_img = Image.new("RGBA", (lower - upper, 16), (255, 255, 255, 0))
            ImageDraw.Draw(label_img).text(((lower - upper) // 2, 0), p.y_label, fill="black", font=f_text,
                                           anchor="mt")
            img.paste(label_img.rotate(90, expand=True), (ox + 4, upper), label_img.rotate(90, expand=True))
        for label, ys in p.series.items():
            points: list[tuple[float, float]] = []
            for x, y in zip(xs, ys, strict=True):
                yv = float(y)
                ok = math.isfinite(yv) and (yv > 0 or not p.log_y)
                if ok:
                    yv = min(max(yv, 10**a if p.log_y else y_lo), 10**b if p.log_y else y_hi)
                    points.append(to_px(x, yv))
                if (not ok or x == xs[-1]) and len(points) > 1:
                    if label in p.dashed:
                        for i in range(0, len(points) - 1, 2):
                            draw.line(points[i : i + 2], fill=colour[label], width=2)
                    else:
                        draw.line(points, fill=colour[label], width=2)
                if not ok:
                    points = []
    ly = top + rows * ph + 6
    for k, label in enumerate(labels):
        x0 = 20 + (k % 3) * (width // 3)
        y0 = ly + (k // 3) * 24
        draw.line([x0, y0 + 8, x0 + 28, y0 + 8], fill=colour[label], width=3)
        draw.text((x0 + 34, y0 + 1), label, fill="black", font=f_text)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save(out, optimize=True)
    return out
