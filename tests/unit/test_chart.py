"""The rate chart's geometry: the scale always shows the threshold, the ticks and dates fall
where the page expects them, and the bands sit between the rates they mark."""

from __future__ import annotations

from typing import Any

import pytest

from mailflow.web import chart


def _points(rates: list[float]) -> list[dict[str, Any]]:
    return [{"at": f"day {i}", "rate": r, "counted": 10} for i, r in enumerate(rates)]


class TestScale:
    def test_the_axis_reaches_above_the_threshold(self) -> None:
        axis = chart.scale([0.0] * 5, threshold=0.05)
        assert axis.top >= 0.05 * chart.HEADROOM
        assert axis.step == 0.02
        # 0.08 / 0.02 is a hair over 4 in floating point: the axis rounds up a step.
        assert axis.top == pytest.approx(0.1)

    def test_a_rate_over_the_threshold_raises_the_axis(self) -> None:
        axis = chart.scale([0.01, 0.3], threshold=0.05)
        assert axis.top >= 0.3
        assert round(axis.top / axis.step) <= chart.MAX_Y_TICKS

    def test_the_axis_stops_at_one_hundred_percent(self) -> None:
        axis = chart.scale([1.0], threshold=0.9)
        assert axis.top == 1.0

    def test_the_plot_runs_from_the_left_margin_to_the_right_one(self) -> None:
        axis = chart.scale([0.0] * 3, threshold=0.05)
        assert axis.x(0) == chart.LEFT
        assert axis.x(2) == chart.WIDTH - chart.RIGHT

    def test_rate_zero_is_at_the_bottom_and_the_top_at_the_top(self) -> None:
        axis = chart.scale([0.0], threshold=0.05)
        assert axis.y(0.0) == chart.HEIGHT - chart.BOTTOM
        assert axis.y(axis.top) == chart.TOP
        assert axis.y(5.0) == chart.TOP  # off the scale: drawn at the top edge

    def test_a_single_point_is_drawn_at_the_left(self) -> None:
        assert chart.scale([0.2], threshold=0.05).x(0) == chart.LEFT


class TestTicks:
    def test_rate_ticks_from_zero_to_the_top_by_step(self) -> None:
        axis = chart.scale([0.0], threshold=0.05)
        values = [tick["value"] for tick in chart.y_ticks(axis)]
        assert values == pytest.approx([0.0, 0.02, 0.04, 0.06, 0.08, 0.1])

    def test_dates_every_tenth_day_back_from_today(self) -> None:
        assert chart.x_tick_indexes(60) == [9, 19, 29, 39, 49, 59]
        assert chart.x_tick_indexes(12) == [1, 11]
        assert chart.x_tick_indexes(1) == [0]
        assert chart.x_tick_indexes(0) == []


class TestRateChart:
    def test_a_dot_a_day_and_the_line_through_them(self) -> None:
        drawn = chart.rate_chart(_points([0.0, 0.04, 0.08]), threshold=0.05, warning_at=0.04)
        assert len(drawn["dots"]) == 3
        assert drawn["segments"] == [" ".join(f"{d['x']},{d['y']}" for d in drawn["dots"])]
        assert [d["rate"] for d in drawn["dots"]] == [0.0, 0.04, 0.08]

    def test_days_without_sales_are_gaps_not_zeros(self) -> None:
        points = _points([0.1, 0.0, 0.0, 0.2, 0.25])
        points[1]["counted"] = points[2]["counted"] = 0
        drawn = chart.rate_chart(points, threshold=0.05, warning_at=0.04)
        assert [d["index"] for d in drawn["dots"]] == [0, 3, 4]
        first, second = drawn["segments"]
        assert first.count(",") == 1 and second.count(",") == 2
        axis = chart.scale([0.1, 0.2, 0.25], threshold=0.05)
        assert drawn["dots"][1]["x"] == chart.Scale(axis.step, axis.top, 5).x(3)

    def test_the_warning_band_lies_between_the_warning_rate_and_the_threshold(self) -> None:
        drawn = chart.rate_chart(_points([0.0] * 10), threshold=0.05, warning_at=0.04)
        axis = chart.scale([0.0] * 10, threshold=0.05)
        assert drawn["threshold"]["y"] == axis.y(0.05)
        assert drawn["band"]["top"] == axis.y(0.05)
        assert drawn["band"]["top"] + drawn["band"]["height"] == pytest.approx(axis.y(0.04))
        assert drawn["over"] == {"top": chart.TOP, "height": round(axis.y(0.05) - chart.TOP, 1)}

    def test_no_points_still_draw_the_frame(self) -> None:
        drawn = chart.rate_chart([], threshold=0.05, warning_at=0.04)
        assert drawn["dots"] == [] and drawn["x_ticks"] == [] and drawn["segments"] == []
        assert drawn["ticks"][0]["value"] == 0.0
