"""The driver side of a batch without Spark: lake files per event hour, the sensors' latest
readings, observations from the matched frame."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from airpath.air.gate import VALID_COLUMNS
from airpath.pipeline.batch import BatchHandler, _observations
from airpath.pipeline.model import StreamModel

T0 = int(dt.datetime(2026, 3, 1, 22, 30, tzinfo=dt.UTC).timestamp() * 1000)


def _valid(times_ms: list[int]) -> pd.DataFrame:
    n = len(times_ms)
    frame: dict[str, Any] = {c: [f"{c}-{i}" for i in range(n)] for c in VALID_COLUMNS}
    frame["time_ms"] = times_ms
    for c in ("lat", "lon", "value", "value_ugm3", "speed_mps", "heading_deg", "match_m"):
        frame[c] = np.arange(n, dtype=np.float64)
    frame["edge_id"] = np.arange(n, dtype=np.int32)
    return pd.DataFrame(frame, index=np.arange(n)[::-1] + 10)  # an index not 0..n-1


def test_readings_go_to_one_file_per_event_hour_in_row_order(tmp_path: Path) -> None:
    hour = 3_600_000
    times = [T0, T0 + hour, T0 - 2 * hour, T0 + 1, T0 + hour + 5, T0 + 2 * hour]
    handler: Any = object.__new__(BatchHandler)
    handler.config = SimpleNamespace(lake=tmp_path)
    handler._write_readings(7, _valid(times))
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.parquet"))
    assert files == [
        "readings/date=2026-03-01/hour=20/part-000000000007.parquet",
        "readings/date=2026-03-01/hour=22/part-000000000007.parquet",
        "readings/date=2026-03-01/hour=23/part-000000000007.parquet",
        "readings/date=2026-03-02/hour=00/part-000000000007.parquet",
    ]
    at_22 = pq.read_table(tmp_path / files[1]).to_pandas()
    assert at_22["sensor_id"].tolist() == ["sensor_id-0", "sensor_id-3"]
    assert at_22["batch_id"].tolist() == [7, 7]
    assert at_22["edge_id"].dtype == np.int64
    stamps = pd.to_datetime(at_22["time"], utc=True)
    assert [int(t.timestamp() * 1000) for t in stamps] == [T0, T0 + 1]
    assert "time_ms" not in at_22.columns


def test_observations_keep_the_strings_and_numbers() -> None:
    frame = _valid([T0, T0 + 1500]).assign(sensor_kind=["mobile", "reference"], pollutant="no2")
    obs = _observations(frame)
    assert obs.sensor_id.tolist() == ["sensor_id-0", "sensor_id-1"]
    assert obs.sensor_kind.tolist() == ["mobile", "reference"]
    assert obs.pollutant.dtype.kind == "U"
    np.testing.assert_array_equal(obs.time_s, [T0 / 1000, T0 / 1000 + 1.5])


def _readings(rows: list[tuple[str, int, str, float]]) -> pd.DataFrame:
    sensor, t, pollutant, value = zip(*rows, strict=True)
    return pd.DataFrame(
        {
            "sensor_id": sensor,
            "sensor_kind": "low_cost",
            "lat": [float(i) for i in range(len(rows))],
            "lon": 2.0,
            "time_ms": t,
            "pollutant": pollutant,
            "value_ugm3": value,
        }
    )


def test_sensors_keep_their_newest_reading_per_pollutant() -> None:
    model: Any = object.__new__(StreamModel)
    model.sensors = {}
    model.observe_sensors(
        _readings(
            [
                ("a", T0, "no2", 10.0),
                ("b", T0 + 5, "no2", 20.0),
                ("a", T0 + 1000, "no2", 11.0),
                ("a", T0 + 1000, "pm10", 30.0),
                ("a", T0 + 500, "pm10", 29.0),  # older than a's newest pm10: not kept
            ]
        )
    )
    a = model.sensors["a"]
    assert a["time_ms"] == T0 + 1000
    assert a["lat"] in (2.0, 3.0)  # a row of the newest time
    assert a["values_ugm3"] == {"no2": 11.0, "pm10": 30.0}
    assert model.sensors["b"]["values_ugm3"] == {"no2": 20.0}
    # A late reading less than a minute old updates its value but not the position; one
    # more than a minute older than the record is stale and ignored.
    model.observe_sensors(
        _readings([("a", T0 - 30_000, "pm25", 5.0), ("a", T0 - 120_000, "no2", 1.0)])
    )
    assert a is model.sensors["a"]
    assert a["time_ms"] == T0 + 1000
    assert a["values_ugm3"] == {"no2": 11.0, "pm10": 30.0, "pm25": 5.0}
