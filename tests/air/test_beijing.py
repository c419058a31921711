"""Hourly one-hour-ahead forecasts: skill on synthetic data, prequential discipline, real data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from airpath.air.beijing import (
    _SEASON_H,
    TARGET_IMPROVEMENT_PCT,
    evaluate_beijing,
    forecast_next_hour,
    read_station_csv,
)
from airpath.errors import SourceError
from shared import shared_data

COLUMNS = ["No", "year", "month", "day", "hour", "PM2.5", "PM10", "SO2", "NO2", "CO", "O3",
           "TEMP", "PRES", "DEWP", "RAIN", "wd", "WSPM", "station"]  # fmt: skip


def _ar_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """AR(1) noise, φ = 0.7 per hour, innovations of 4 µg/m³."""
    noise = np.zeros(n)
    for i in range(1, n):
        noise[i] = 0.7 * noise[i - 1] + rng.normal(0, 4.0)
    return noise


def _write_station(
    folder: Path, station: str, seed: int, days: int = 40, noise: np.ndarray | None = None
) -> Path:
    """Daily cycle + AR(1) noise (or ``noise``) in the real column layout, ~2 % NA."""
    rng = np.random.default_rng(seed)
    n = 24 * days
    time = pd.date_range("2013-03-01", periods=n, freq="h")
    phase = 2 * np.pi * time.hour.to_numpy() / 24
    if noise is None:
        noise = _ar_noise(rng, n)
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


def _differs_from(before: np.ndarray, after: np.ndarray) -> int:
    """The first entry where two forecast series differ (NaN equals NaN)."""
    same = (before == after) | (np.isnan(before) & np.isnan(after))
    return int(np.flatnonzero(~same)[0])


def test_cross_station_forecast_made_at_hour_t_ignores_other_stations_after_t(
    tmp_path: Path,
) -> None:
    # Dongsi and Tiantan have known positions (Tiantan ~5 km south: upwind in a SW wind);
    # Alpha has none, so it enters the city terms only.
    frames = {
        name: read_station_csv(_write_station(tmp_path, name, seed=seed, days=20))
        for name, seed in (("Dongsi", 5), ("Tiantan", 6), ("Alpha", 7))
    }
    own = frames.pop("Dongsi")
    before = forecast_next_hour(own, "pm25", others=frames, station="Dongsi")
    t = 300
    altered = {name: frame.copy() for name, frame in frames.items()}
    tiantan, alpha = altered["Tiantan"], altered["Alpha"]
    assert not math.isnan(tiantan["PM2.5"].iloc[t + 1])  # so hour t + 1 does change
    tiantan.iloc[t + 1 :, tiantan.columns.get_loc("PM2.5")] *= 3.0
    alpha.iloc[t + 1 :, alpha.columns.get_loc("PM2.5")] = np.nan
    after = forecast_next_hour(own, "pm25", others=altered, station="Dongsi")
    # Entry i is the forecast of hour i made at hour i - 1: the one made at hour t is the
    # last unchanged, the one made at t + 1 (which sees the altered hour) the first changed.
    assert _differs_from(before, after) == t + 2

    alone = forecast_next_hour(own, "pm25")
    no_positions = forecast_next_hour(own, "pm25", others=frames)
    # The first forecast (entry 25, made at hour 24) is persistence, whatever the inputs;
    # the next one has learnt from the neighbours, and from the upwind terms.
    assert _differs_from(alone, before) == _SEASON_H + 2
    assert not np.array_equal(no_positions, before, equal_nan=True)

    # Other stations are matched by hour, not by row: one that starts at hour 50 changes
    # nothing before. The forecast made at hour 50 still has zero weight on the new terms;
    # the one made at hour 51, after learning from hour 50, is the first that moves.
    late = forecast_next_hour(own, "pm25", others={"Tiantan": frames["Tiantan"].iloc[50:-30]})
    assert _differs_from(alone, late) == 52
    assert np.isfinite(late[_SEASON_H + 1 :]).all()


def test_a_station_alone_needs_no_others(tmp_path: Path) -> None:
    frame = read_station_csv(_write_station(tmp_path, "Dongsi", seed=8))
    alone = forecast_next_hour(frame, "no2")
    for others in ({}, {"Dongsi": frame}):  # a station is never its own neighbour
        with_others = forecast_next_hour(frame, "no2", others=others, station="Dongsi")
        np.testing.assert_array_equal(alone, with_others)
    result = evaluate_beijing(tmp_path)
    assert result == evaluate_beijing(tmp_path, cross_station=False)
    for scores in result["stations"]["Dongsi"].values():
        assert scores["rmse_ugm3"]["model"] < scores["rmse_ugm3"]["persistence"]


def test_a_plume_seen_at_another_station_an_hour_earlier_is_forecast(tmp_path: Path) -> None:
    days = 40
    shared_noise = 3.0 * _ar_noise(np.random.default_rng(9), 24 * days + 1)
    # Dongsi sees at hour t + 1 the departure from the daily cycle Tiantan saw at hour t.
    _write_station(tmp_path, "Tiantan", seed=10, days=days, noise=shared_noise[1:])
    _write_station(tmp_path, "Dongsi", seed=11, days=days, noise=shared_noise[:-1])
    messages: list[str] = []
    together = evaluate_beijing(tmp_path, stations=["Dongsi"], progress=messages.append)
    alone = evaluate_beijing(tmp_path, stations=["Dongsi"], cross_station=False)
    assert messages == ["Dongsi pm25", "Dongsi no2"]  # Tiantan is an input, not scored
    assert set(together["stations"]) == {"Dongsi"}
    for pollutant in ("pm25", "no2"):
        rmse = together["stations"]["Dongsi"][pollutant]["rmse_ugm3"]["model"]
        rmse_alone = alone["stations"]["Dongsi"][pollutant]["rmse_ugm3"]["model"]
        assert rmse < 0.5 * rmse_alone, (pollutant, rmse, rmse_alone)


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
    alone = evaluate_beijing(
        folder, stations=["Nongzhanguan"], max_hours=24 * 365, cross_station=False
    )
    assert messages == ["Nongzhanguan pm25", "Nongzhanguan no2"]
    for pollutant, scores in result["stations"]["Nongzhanguan"].items():
        rmse = scores["rmse_ugm3"]
        assert scores["n_hours"] == 24 * 365 - 1
        assert scores["n_scored"] > 0.9 * scores["n_hours"]
        assert rmse["model"] < 0.95 * rmse["persistence"] < rmse["seasonal_naive"], rmse
        # The other eight stations in the folder feed the cross-station terms (first year:
        # PM2.5 13.7 % vs 9.5 % alone, NO2 13.5 % vs 11.2 %).
        assert scores["improvement_pct"] > TARGET_IMPROVEMENT_PCT
        single = alone["stations"]["Nongzhanguan"][pollutant]
        assert scores["improvement_pct"] > single["improvement_pct"] + 1.0, pollutant
