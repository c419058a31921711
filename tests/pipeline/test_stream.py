"""The streaming job on real Spark: gate, dead letters, lake, field, tiles, formats."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from airpath.air.schema import READING_SCHEMA
from airpath.network.store import Network
from airpath.pipeline.config import StreamConfig
from airpath.pipeline.stream import run_stream
from airpath.serving.store import LocalFieldStore


def _config(tmp: Path, helsinki_dir: Path, landing: Path, **kw: Any) -> StreamConfig:
    args: dict[str, Any] = {
        "network": helsinki_dir,
        "landing": landing,
        "work": tmp / "work",
        "clock": "event",
        "max_files_per_trigger": 4,
        "tile_deg": 0.002,  # Helsinki's extract spans ~0.02°: dozens of tiles
    }
    args.update(kw)
    return StreamConfig(**args)


BAD_LINES = [
    "{truncated",
    '{"sensor_id": "x-1", "sensor_kind": "mobile", "lat": 60.17, "lon": 24.94, '
    '"time": "2026-05-04T07:03:00Z", "pollutant": "co", "value": 1, "unit": "ug/m3"}',
    '{"sensor_id": "x-2", "sensor_kind": "low_cost", "lat": 48.85, "lon": 2.35, '
    '"time": "2026-05-04T07:03:00Z", "pollutant": "no2", "value": 20, "unit": "ug/m3"}',
]


def test_stream_end_to_end(
    spark: Any, helsinki: Network, helsinki_dir: Path, sim_readings: Path, tmp_path: Path
) -> None:
    landing = tmp_path / "landing"
    shutil.copytree(sim_readings, landing)
    files = sorted(landing.iterdir())
    # A repeat of a whole file (a redelivery) and a file of bad lines, landed last.
    (landing / "zz-repeat.jsonl").write_bytes(files[-1].read_bytes())
    (landing / "zz-bad.jsonl").write_text("\n".join(BAD_LINES) + "\n")
    n_lines = sum(len(p.read_text().splitlines()) for p in landing.iterdir())
    n_repeat = len(files[-1].read_text().splitlines())

    config = _config(tmp_path, helsinki_dir, landing)
    run = run_stream(config, once=True, spark=spark)
    outcomes = run.handler.outcomes

    assert sum(o.rows_in for o in outcomes) == n_lines
    assert run.metrics.rows_unaccounted._value.get() == 0
    dead = pd.concat([pq.read_table(p).to_pandas() for p in config.deadletters.glob("*.parquet")])
    lake = pq.read_table(config.lake / "readings").to_pandas()
    assert len(dead) + len(lake) == n_lines
    reasons = dead["reason"].value_counts().to_dict()
    assert reasons["duplicate"] == n_repeat
    assert reasons["malformed"] == 1
    assert reasons["unknown_pollutant"] == 1
    assert reasons["outside_area"] == 1
    assert "{truncated" in set(dead["payload"])
    assert lake.groupby(["sensor_id", "time", "pollutant"]).size().max() == 1
    assert {p.name for p in (config.lake / "readings").iterdir()} == {"date=2026-05-04"}
    assert (config.lake / "readings" / "date=2026-05-04" / "hour=07").is_dir()

    last = max((o for o in outcomes if o.field_version), key=lambda o: o.batch_id)
    assert last.published
    assert len(last.partitions_used) > 1
    snap = LocalFieldStore(config.field_store_location).latest()
    assert snap.version == last.field_version
    assert snap.field.horizons_min == (0.0, 15.0, 30.0, 60.0)
    for p in helsinki.pollutants:
        now = snap.field.concentration_ugm3[p][0]
        assert np.isfinite(now).all()
        assert (now > 0).all()
        prior = np.asarray(helsinki.edge_prior_ugm3)[helsinki.pollutants.index(p)]
        assert not np.allclose(now, prior)  # the readings moved the field
    assert snap.newest_event_time is not None
    assert snap.newest_event_time.isoformat().startswith("2026-05-04T07:11")
    assert list(config.model_dir.glob("state-*.pkl"))
    sensors = json.loads((config.work / "sensors.json").read_text())
    assert {s["sensor_id"] for s in sensors["sensors"]} == set(lake["sensor_id"])
    assert sensors["updated_at"].startswith("2026-05-04T07:11")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_csv_and_parquet_landing(
    spark: Any, helsinki_dir: Path, sim_readings: Path, tmp_path: Path, fmt: str
) -> None:
    landing = tmp_path / "landing"
    landing.mkdir()
    frame = pd.concat(
        pd.read_json(p, lines=True, dtype={"time": str}) for p in sorted(sim_readings.iterdir())[:3]
    )
    if fmt == "csv":
        frame.to_csv(landing / "a.csv", index=False)
        with open(landing / "a.csv", "a") as f:
            f.write("lc-9,low_cost,60.17\n")  # a truncated row
        n_bad = 1
    else:
        frame["time"] = pd.to_datetime(frame["time"], utc=True)
        table = pa.Table.from_pandas(frame, schema=READING_SCHEMA, preserve_index=False)
        pq.write_table(table, landing / "a.parquet")
        (landing / "b.parquet").write_bytes((landing / "a.parquet").read_bytes()[:300])
        n_bad = 1  # the truncated file: one dead letter naming it
    config = _config(tmp_path, helsinki_dir, landing, input_format=fmt)
    run = run_stream(config, once=True, spark=spark)
    rows = sum(o.rows_in for o in run.handler.outcomes)
    valid = sum(o.valid for o in run.handler.outcomes)
    assert rows == len(frame) + n_bad
    assert valid >= 0.8 * len(frame)
    parts = [pq.read_table(p).to_pandas() for p in config.deadletters.glob("*.parquet")]
    rejected = pd.concat(parts) if parts else pd.DataFrame({"reason": [], "payload": []})
    assert len(rejected) == rows - valid
    assert (rejected["reason"] == "malformed").sum() == n_bad
    for payload in rejected["payload"]:
        if fmt == "csv" and "60.17" in payload and "lc-9" in payload:
            continue  # the truncated row, kept as it came
        if fmt == "parquet" and "b.parquet" in json.loads(payload).get("_file", ""):
            continue
        assert json.loads(payload)["sensor_id"]
    lake = pq.read_table(config.lake / "readings").to_pandas()
    assert len(lake) == valid


def test_kafka_without_its_connector_is_a_clear_error(
    spark: Any, helsinki_dir: Path, tmp_path: Path
) -> None:
    from airpath.errors import PipelineConfigError

    config = _config(
        tmp_path, helsinki_dir, tmp_path / "none", input_format="kafka", kafka_bootstrap="k:9092"
    )
    with pytest.raises(PipelineConfigError, match="spark-sql-kafka connector"):
        run_stream(config, once=True, spark=spark)


def test_metrics_endpoint_serves_the_job_metrics(
    spark: Any, helsinki_dir: Path, sim_readings: Path, tmp_path: Path
) -> None:
    import urllib.request

    from airpath.pipeline.stream import start_stream

    landing = tmp_path / "landing"
    landing.mkdir()
    first = sorted(sim_readings.iterdir())[0]
    shutil.copy(first, landing / first.name)
    (landing / "zz.jsonl").write_text("{broken\n")
    run = start_stream(_config(tmp_path, helsinki_dir, landing, metrics_port=0), once=True,
                       spark=spark)  # fmt: skip
    try:
        run.query.awaitTermination(120)
        port = run.metrics_server.server_port
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            text = resp.read().decode()
    finally:
        run.stop()
    n_lines = len(first.read_text().splitlines()) + 1
    assert f"airpath_input_rows_total {float(n_lines)}" in text
    assert 'airpath_rejected_rows_total{reason="malformed"} 1.0' in text
    for name in ("airpath_batch_duration_seconds_bucket", "airpath_field_freshness_seconds",
                 "airpath_field_store_up 1.0", "airpath_batch_rows_unaccounted 0.0",
                 "airpath_last_batch_id"):  # fmt: skip
        assert name in text
