"""The geometry of the seller's rate chart, an inline SVG that ``seller/stats.html.j2`` draws:
the daily rate as a line of dots, the threshold line, the warning band under it and the zone
over it, on a scale that always shows the threshold. Pure functions of the points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

WIDTH = 720
HEIGHT = 280
LEFT, RIGHT, TOP, BOTTOM = 56, 64, 16, 40
STEPS = (0.005, 0.01, 0.02, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5)
"""Tick steps of the rate axis, the smallest that needs at most six ticks is chosen."""
MAX_Y_TICKS = 6
X_TICK_EVERY = 10
"""A date under every tenth point, counted back from the last (today's) one."""
HEADROOM = 1.6
"""The axis reaches at least this many times the threshold, so the zone over it shows."""


@dataclass(frozen=True)
class Scale:
    """The rate axis: from 0 to ``top`` in ``step``s, over ``count`` points."""

    step: float
    top: float
    count: int

    def x(self, index: int) -> float:
        width = WIDTH - LEFT - RIGHT
        offset = width * index / (self.count - 1) if self.count > 1 else 0
        return round(LEFT + offset, 1)

    def y(self, rate: float) -> float:
        height = HEIGHT - TOP - BOTTOM
        return round(TOP + height * (1 - min(rate, self.top) / self.top), 1)


def scale(rates: list[float], threshold: float) -> Scale:
    """The axis that shows every rate and the threshold with headroom, capped at 100 %."""
    highest = max([threshold * HEADROOM, *rates])
    step = next((s for s in STEPS if highest / s <= MAX_Y_TICKS), 1.0)
    top = min(1.0, step * -(-highest // step)) or 1.0
    return Scale(step, top, len(rates))


def y_ticks(axis: Scale) -> list[dict[str, float]]:
    """A tick at each step from 0 to the top of the axis, both included."""
    ticks = []
    value = 0.0
    while value <= axis.top + 1e-9:
        ticks.append({"value": value, "y": axis.y(value)})
        value = round(value + axis.step, 6)
    return ticks


def x_tick_indexes(count: int) -> list[int]:
    """The points that get a date: every tenth counted back from the last, and the last."""
    if count == 0:
        return []
    last = count - 1
    return sorted({*range(last % X_TICK_EVERY, last + 1, X_TICK_EVERY), last})


def band_height(axis: Scale, upper: float, lower: float) -> float:
    """The height of the band between two rates (``upper`` drawn above ``lower``)."""
    return round(axis.y(lower) - axis.y(upper), 1)


def segments(dots: list[dict[str, Any]]) -> list[str]:
    """The line through the dots, broken where a day has none (no sale in its window: there
    is no rate to draw, which is not a rate of 0 %)."""
    runs: list[list[dict[str, Any]]] = []
    last = -2
    for dot in dots:
        if dot["index"] != last + 1:
            runs.append([])
        runs[-1].append(dot)
        last = dot["index"]
    return [" ".join(f"{d['x']},{d['y']}" for d in run) for run in runs]


def rate_chart(points: list[dict[str, Any]], threshold: float, warning_at: float) -> dict[str, Any]:
    """Everything the template draws, from the daily points (``at``, ``rate``, ``counted``).
    A day whose window holds no sale gets no dot, and the line has a gap there."""
    axis = scale([p["rate"] for p in points if p["counted"]], threshold)
    axis = Scale(axis.step, axis.top, len(points))
    dots = [
        {
            "index": i,
            "x": axis.x(i),
            "y": axis.y(p["rate"]),
            "at": p["at"],
            "rate": p["rate"],
            "counted": p["counted"],
        }
        for i, p in enumerate(points)
        if p["counted"]
    ]
    return {
        "width": WIDTH,
        "height": HEIGHT,
        "left": LEFT,
        "right": WIDTH - RIGHT,
        "top": TOP,
        "bottom": HEIGHT - BOTTOM,
        "segments": segments(dots),
        "dots": dots,
        "ticks": y_ticks(axis),
        "x_ticks": [{"x": axis.x(i), "at": points[i]["at"]} for i in x_tick_indexes(len(points))],
        "threshold": {"value": threshold, "y": axis.y(threshold)},
        "band": {"top": axis.y(threshold), "height": band_height(axis, threshold, warning_at)},
        "over": {"top": TOP, "height": round(axis.y(threshold) - TOP, 1)},
    }
