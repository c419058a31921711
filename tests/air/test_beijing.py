"""Hourly one-hour-ahead forecasts: skill on synthetic data, prequential discipline, real data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airpath.air.beijing import evaluate_beijing, forecast_next_hour, read_station_csv
from airpath.errors import SourceError
from shared import shared_data

COLUMNS = ["No", "year", "month", "day", "hour", "PM2.5", "PM10", "SO2", "NO2", "CO", "O3",
           "TEMP", "PRES", "DEWP", "RAIN", "wd", "WSPM", "station"]  # fmt: skip


def _write_station(folder: Path, station: str, seed: int, days: int = 40) -> Path:
    """Daily cycle + AR(1) noise (φ = 0.7 per hour) in the real column layout, ~2 % NA."""
    rng = np.random.default_rng(seed)
    n = 24 * days
    time = pd.date_range("2013-03-01", periods=n, freq="h")
    phase = 2 * np.pi * time.hour.to_numpy() / 24
    noise = np.zeros(n)
    for i in range(1, n):
        noise[i] = 0.7 * noise[i - 1] + rng.normal(0, 4.0)
    pm25 = np.maximum(60 + 25 * np.sin(phase + 1.0) + noise, 1.0)
    no2 = np.maximum(40 + 15 * np.cos(2 * phase) + 0.5 * noise, 1.0)
    frame = pd.DataFrame(
        {
            "No": np.arange(1, n + 1),
            "year": time.year,
            "month": time.month,
            "day": time.day,
            "hour": time.hour,
            "PM2.5": pm25.round(1),
            "PM10": (1.3 * pm25).round(1),
            "SO2": rng.uniform(2, 20, n).round(1),
            "NO2": no2.round(1),
            "CO": rng.uniform(300, 1500, n).round(0),
            "O3": rng.uniform(5, 80, n).round(1),
            "TEMP": (10 + 5 * np.sin(phase)).round(1),
            "PRES": rng.normal(1015, 3, n).round(1),
            "DEWP": rng.normal(-5, 3, n).round(1),
            "RAIN": 0.0,
            "wd": rng.choice(["N", "NE", "SW", "WNW"], n),
            "WSPM": rng.uniform(0, 5, n).round(1),
            "station": station,
        },
        columns=COLUMNS,
    )
    for column in ("PM2.5", "NO2", "TEMP", "wd"):
        frame.loc[rng.random(n) < 0.02, column] = np.nan
    path = folder / f"PRSA_Data_{station}_20130301-20170228.csv"
    frame.to_csv(path, index=False, na_rep="NA")
    return path


def test_model_beats_persistence_on_a_daily_cycle_with_ar_noise(tmp_path: Path) -> None:
    _write_station(tmp_path, "Alpha", seed=1)
    _write_station(tmp_path, "Beta", seed=2)
    result = evaluate_beijing(tmp_path)
    assert set(result["stations"]) == {"Alpha", "Beta"}
    for by_pollutant in result["stations"].values():
        for scores in by_pollutant.values():
            rmse = scores["rmse_ugm3"]
            assert rmse["model"] < 0.9 * rmse["persistence"], rmse
            assert scores["mae_ugm3"]["model"] < scores["mae_ugm3"]["persistence"]
            assert scores["n_skipped"] > 0  # the NA hours are counted, not scored
            assert scores["n_scored"] + scores["n_skipped"] == scores["n_hours"]
    assert result["summary"]["pm25"]["median_improvement_pct"] > 10.0
    assert result["summary"]["no2"]["stations_meeting_target"] == 2


def test_forecast_for_an_hour_ignores_that_hour_and_later(tmp_path: Path) -> None:
    frame = read_station_csv(_write_station(tmp_path, "Alpha", seed=3, days=20))
    before = forecast_next_hour(frame, "pm25")
    cut = 300
    altered = frame.copy()
    altered.iloc[cut:, altered.columns.get_loc("PM2.5")] *= 3.0
    altered.iloc[cut:, altered.columns.get_loc("TEMP")] += 20.0
    altered.iloc[cut:, altered.columns.get_loc("NO2")] = np.nan
    after = forecast_next_hour(altered, "pm25")
    # Entry i is the forecast of hour i made at hour i - 1: unchanged up to the cut itself.
    np.testing.assert_array_equal(before[: cut + 1], after[: cut + 1])
    assert not np.allclose(before[cut + 2 :], after[cut + 2 :], equal_nan=True)
    assert math.isnan(before[0])


def test_missing_folder_empty_folder_and_unknown_station_raise_source_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(SourceError, match="no Beijing data folder"):
        evaluate_beijing(tmp_path / "absent")
    with pytest.raises(SourceError, match="no PRSA_Data"):
        evaluate_beijing(tmp_path)
    _write_station(tmp_path, "Alpha", seed=4, days=3)
    with pytest.raises(SourceError, match="Gamma"):
        evaluate_beijing(tmp_path, stations=["Gamma"])
    with pytest.raises(SourceError, match="unknown pollutant"):
        evaluate_beijing(tmp_path, pollutants=["pm1"])


def test_real_station_beats_persistence_within_a_year() -> None:
    folder = shared_data("beijing")
    messages: list[str] = []
    result = evaluate_beijing(
        folder, stations=["Nongzhanguan"], max_hours=24 * 365, progress=messages.append
    )
    assert messages == ["Nongzhanguan pm25", "Nongzhanguan no2"]
    for scores in result["stations"]["Nongzhanguan"].values():
        rmse = scores["rmse_ugm3"]
        assert scores["n_hours"] == 24 * 365 - 1
        assert scores["n_scored"] > 0.9 * scores["n_hours"]
        assert rmse["model"] < 0.95 * rmse["persistence"] < rmse["seasonal_naive"], rmse
