"""The body of each micro-batch (``foreachBatch``): dead letters, lake, model, field.

Every side effect is idempotent per batch id — files are named after it and overwritten
on replay, the field version is ``b<batch id>``, the model state is saved under it — so a
batch that Spark replays after a crash leaves the same results as one run once.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from airpath.air.gate import VALID_COLUMNS
from airpath.air.observations import ObservationBatch
from airpath.durable import write_atomic
from airpath.errors import FieldStoreError
from airpath.network.store import Network
from airpath.pipeline.artifacts import ModelRegistry, adopt
from airpath.pipeline.config import StreamConfig
from airpath.pipeline.metrics import JobMetrics
from airpath.pipeline.model import ModelCheckpoints, StreamModel
from airpath.pipeline.tiles import evaluate_field, space_at
from airpath.routing.field import PollutionField
from airpath.serving.snapshot import FieldSnapshot, network_key
from airpath.serving.store import FieldStore

log = logging.getLogger("airpath.stream")

# Fault injection for the exactly-once tests: set to "<batch id>" the handler stops in the
# middle of that batch (after its files, before its field and model state); set to
# "<batch id>:end" it stops after everything but before Spark commits the batch. Either
# way it waits there to be killed.
FAULT_PAUSE_ENV = "AIRPATH_FAULT_PAUSE_BATCH"

# The lake keeps a field every 15 min of event time: enough to train priors and diurnal
# profiles from, without a 30k-edge table per second.
FIELD_HISTORY_EVERY_S = 900.0


@dataclass
class BatchOutcome:
    """What one batch did; the last few are kept for tests, logs and the benchmarks."""

    batch_id: int
    rows_in: int
    valid: int
    rejected: dict[str, int]
    field_version: str | None
    published: bool
    newest_event_time: dt.datetime | None
    duration_s: float
    partitions_used: set[int] = field(default_factory=set)
    stages_s: dict[str, float] = field(default_factory=dict)
    oldest_event_time: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    def log_line(self) -> str:
        return json.dumps(
            {
                "event": "batch",
                "batch_id": self.batch_id,
                "rows_in": self.rows_in,
                "valid": self.valid,
                "rejected": self.rejected,
                "field_version": self.field_version,
                "published": self.published,
                "newest_event_time": _iso(self.newest_event_time),
                "duration_s": round(self.duration_s, 3),
                "field_partitions": len(self.partitions_used),
                "stages_s": {k: round(v, 3) for k, v in self.stages_s.items()},
            },
            sort_keys=True,
        )


class BatchHandler:
    """Called by Spark with each micro-batch's rows (gated and matched)."""

    def __init__(
        self,
        config: StreamConfig,
        network: Network,
        store: FieldStore,
        metrics: JobMetrics,
        spark: Any,
    ) -> None:
        self.config = config
        self.network = network
        self.network_path = str(Path(config.network).resolve())
        self.network_key = network_key(network)
        self.store = store
        self.metrics = metrics
        self.spark = spark
        self.checkpoints = ModelCheckpoints(config.model_dir, keep=config.keep_model_states)
        self.registry = ModelRegistry(config.models) if config.models is not None else None
        self.model: StreamModel | None = None
        self.model_batch: int = -1
        self.outcomes: list[BatchOutcome] = []
        self.counts_by_batch: dict[int, int] = {}
        self.unpublished: FieldSnapshot | None = None
        self._last_field_history_s = -math.inf

    # ------------------------------------------------------------------ the batch

    def __call__(self, df: Any, batch_id: int) -> None:
        t0 = time.perf_counter()
        stages: dict[str, float] = {}
        frame = df.toArrow().to_pandas()
        stages["gate_match"] = time.perf_counter() - t0
        frame = _sorted(frame)
        valid = frame[frame["status"] == "valid"]
        rejected = frame[frame["status"] != "valid"]
        reasons = dict(Counter(rejected["reason"].astype(str)))
        self.counts_by_batch[batch_id] = len(frame)
        if len(rejected):
            self._write_dead_letters(batch_id, rejected)
        if len(valid):
            self._write_readings(batch_id, valid)
        t1 = time.perf_counter()
        stages["write"] = t1 - t0 - stages["gate_match"]
        model = self._model_for(batch_id)
        self._adopt(batch_id, model)
        obs = _observations(valid)
        model.learn(obs)
        if len(valid):
            model.observe_sensors(valid)
            _write_json(self.config.work / "sensors.json", model.sensors_document())
        t2 = time.perf_counter()
        stages["learn"] = t2 - t1
        self._maybe_pause(f"{batch_id}")
        outcome = BatchOutcome(batch_id, len(frame), len(valid), reasons, None, False, None, 0.0)
        if len(valid):
            oldest = int(valid["time_ms"].min())
            outcome.oldest_event_time = dt.datetime.fromtimestamp(oldest / 1000, dt.UTC)
        if len(valid) or self.unpublished is not None:
            batch_time = _batch_time(frame)
            snapshot, used = self._field(model, batch_id, batch_time, len(valid))
            outcome.partitions_used = used
            outcome.field_version = snapshot.version
            outcome.newest_event_time = snapshot.newest_event_time
            t3 = time.perf_counter()
            stages["field"] = t3 - t2
            outcome.published = self._publish(snapshot)
            self._write_field_history(batch_id, snapshot)
            stages["publish"] = time.perf_counter() - t3
        if len(valid):
            self.checkpoints.save(batch_id, model)
        self.model, self.model_batch = model, batch_id
        outcome.duration_s = time.perf_counter() - t0
        outcome.stages_s = stages
        outcome.finished_at = dt.datetime.now(dt.UTC)
        self._export(outcome, model)
        self.outcomes = [*self.outcomes[-99:], outcome]
        log.info(outcome.log_line())
        self._maybe_pause(f"{batch_id}:end")

    def _maybe_pause(self, where: str) -> None:
        if os.environ.get(FAULT_PAUSE_ENV) != where:
            return
        (self.config.work / f"paused-{where.replace(':', '-')}").touch()
        while True:  # until the test kills the process
            time.sleep(1.0)

    # ------------------------------------------------------------------ the model

    def _model_for(self, batch_id: int) -> StreamModel:
        if self.model is not None and self.model_batch == batch_id - 1:
            return self.model
        saved = self.checkpoints.load_before(batch_id)
        if saved is not None:
            return saved[1]
        return StreamModel(space_at(self.network_path), self.config.horizons_min)

    def _adopt(self, batch_id: int, model: StreamModel) -> None:
        """Switch to a newer artifact of ``airpath train``, if any, without losing state.

        Which version a batch adopted is written down before it is used, so a batch
        replayed after a crash adopts the same one (exactly once, also for models).
        """
        if self.registry is None:
            return
        path = self.config.model_dir / "adoptions.json"
        log_ = json.loads(path.read_text()) if path.exists() else {}
        want = log_.get(str(batch_id))
        if want is None:
            latest = self.registry.latest_version()
            if latest is None or latest == getattr(model, "adopted_version", None):
                return
            want = log_[str(batch_id)] = latest
            _write_json(path, log_)
        if want != getattr(model, "adopted_version", None):
            adopt(model, self.registry.get(want), network_key=self.network_key)
            model.adopted_version = want
            log.info(json.dumps({"event": "model_adopted", "batch_id": batch_id, "version": want}))

    def _field(
        self, model: StreamModel, batch_id: int, batch_time: dt.datetime, n_valid: int
    ) -> tuple[FieldSnapshot, set[int]]:
        newest = (
            None
            if model.newest_event_s is None
            else dt.datetime.fromtimestamp(model.newest_event_s, dt.UTC)
        )
        # The field is for the batch's processing time (recorded by Spark, so the same on
        # replay); replaying recorded data it is for the newest reading instead.
        valid_at = batch_time if self.config.clock == "wall" or newest is None else newest
        plan = model.plan(valid_at, self.config.horizons_min)
        n_edges = self.network.n_edges
        used: set[int] = set()
        if self.config.field_compute == "spark":
            values, used = evaluate_field(
                self.spark,
                self.network_path,
                self.config.tile_deg,
                plan,
                n_edges,
                self.config.shuffle_partitions,
            )
        else:
            values = plan.evaluate(space_at(self.network_path))
        fld = PollutionField.create(
            f"b{batch_id:010d}",
            valid_at,
            {p: m for p, (m, _) in values.items()},
            n_edges=n_edges,
            horizons_min=plan.horizons_min,
            uncertainty_ugm3={p: s for p, (_, s) in values.items()},
        )
        stats = {"readings": float(n_valid), "model_batches": float(model.n_batches)}
        snapshot = FieldSnapshot(
            fld,
            self.network_key,
            plan.model_version,
            newest,
            dt.datetime.now(dt.UTC),
            batch_id,
            stats,
        )
        return snapshot, used

    # ------------------------------------------------------------------ outputs

    def _publish(self, snapshot: FieldSnapshot) -> bool:
        try:
            self.store.publish(snapshot)
        except FieldStoreError as exc:
            # Routers keep serving the last field (flagged stale by its age); the next
            # batch publishes a newer one, and this one is retried if no batch comes.
            self.unpublished = snapshot
            self.metrics.publish_failures.inc()
            self.metrics.store_up.set(0)
            log.warning(json.dumps({"event": "publish_failed", "error": str(exc)}))
            return False
        self.unpublished = None
        self.metrics.store_up.set(1)
        self.metrics.field_published.set(snapshot.published_at.timestamp())
        if snapshot.freshness_s is not None:
            self.metrics.freshness.set(snapshot.freshness_s)
        return True

    def retry_unpublished(self) -> bool:
        """Publish a field whose publication failed (called between batches)."""
        if self.unpublished is None:
            return True
        return self._publish(self.unpublished)

    def _write_dead_letters(self, batch_id: int, rejected: pd.DataFrame) -> None:
        table = pa.table(
            {
                "batch_id": pa.array([batch_id] * len(rejected), pa.int64()),
                "sensor_id": pa.array(rejected["sensor_id"].tolist(), pa.string()),
                "reason": pa.array(rejected["reason"].astype(str).tolist(), pa.string()),
                "message": pa.array(rejected["message"].astype(str).tolist(), pa.string()),
                "payload": pa.array(rejected["payload"].astype(str).tolist(), pa.string()),
            }
        )
        _write_table(table, self.config.deadletters / f"part-{batch_id:012d}.parquet")

    def _write_readings(self, batch_id: int, valid: pd.DataFrame) -> None:
        """Append the batch's valid readings to the lake, one file per event hour."""
        time_ms = valid["time_ms"].to_numpy(dtype=np.int64)
        cols = [*(c for c in VALID_COLUMNS if c != "time_ms"), "edge_id", "match_m"]
        out = valid[cols].assign(
            time=pd.to_datetime(time_ms, unit="ms", utc=True), batch_id=batch_id
        )
        out["edge_id"] = out["edge_id"].astype("int64")
        table = pa.Table.from_pandas(out, preserve_index=False)
        # Partitions by integer hour (a batch spans one or two), not by formatting every
        # row's time: the formatting cost more than everything else in the batch.
        hours = time_ms // 3_600_000
        distinct = np.unique(hours)
        for hour in distinct.tolist():
            t = dt.datetime.fromtimestamp(hour * 3600, dt.UTC)
            part = table if len(distinct) == 1 else table.filter(pa.array(hours == hour))
            path = (
                self.config.lake
                / "readings"
                / f"date={t:%Y-%m-%d}"
                / f"hour={t:%H}"
                / f"part-{batch_id:012d}.parquet"
            )
            _write_table(part, path)

    def _write_field_history(self, batch_id: int, snapshot: FieldSnapshot) -> None:
        t = snapshot.field.valid_at
        slot = math.floor(t.timestamp() / FIELD_HISTORY_EVERY_S)
        if slot <= self._last_field_history_s:
            return
        self._last_field_history_s = slot
        cols: dict[str, Any] = {"edge_id": np.arange(self.network.n_edges, dtype=np.int64)}
        for p, arr in snapshot.field.concentration_ugm3.items():
            for k, h in enumerate(snapshot.field.horizons_min):
                cols[f"{p}_h{int(h)}"] = arr[k].astype(np.float32)
                cols[f"{p}_h{int(h)}_sd"] = snapshot.field.uncertainty_ugm3[p][k].astype(np.float32)
        table = pa.table(cols).append_column(
            "valid_at", pa.array([t] * self.network.n_edges, pa.timestamp("ms", tz="UTC"))
        )
        path = (
            self.config.lake
            / "fields"
            / f"date={t:%Y-%m-%d}"
            / f"hour={t:%H}"
            / f"field-{batch_id:012d}.parquet"
        )
        _write_table(table, path)

    def _export(self, outcome: BatchOutcome, model: StreamModel) -> None:
        m = self.metrics
        m.batch_seconds.observe(outcome.duration_s)
        m.rows_in.inc(outcome.rows_in)
        m.rows_valid.inc(outcome.valid)
        for reason, n in outcome.rejected.items():
            m.rows_rejected.labels(reason).inc(n)
        m.last_batch.set(outcome.batch_id)
        for (p, h), rmse in model.prequential_rmse().items():
            if math.isfinite(rmse):
                m.prequential.labels(p, f"{h:g}").set(rmse)
        seen = getattr(self, "_drift_seen", 0)
        for report in model.drift_reports[seen:]:
            m.drift_alarms.labels(report.pollutant).inc()
        self._drift_seen = len(model.drift_reports)


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows in an order that does not depend on how Spark partitioned them."""
    keys = ["status", "sensor_id", "time_ms", "pollutant", "reason", "payload"]
    return frame.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)


def _batch_time(frame: pd.DataFrame) -> dt.datetime:
    t = pd.Timestamp(frame["batch_time"].iloc[0])
    return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).to_pydatetime()


def _observations(valid: pd.DataFrame) -> ObservationBatch:
    if len(valid) == 0:
        return ObservationBatch.empty()
    return ObservationBatch.create(
        valid["edge_id"].to_numpy(dtype=np.int64),
        valid["time_ms"].to_numpy(dtype=np.float64) / 1000.0,
        valid["pollutant"].to_numpy(dtype=object),
        valid["value_ugm3"].to_numpy(dtype=np.float64),
        valid["sensor_id"].to_numpy(dtype=object),
        valid["sensor_kind"].to_numpy(dtype=object),
    )


def _write_json(path: Path, document: Any) -> None:
    write_atomic(path, json.dumps(document, separators=(",", ":")).encode())


def _write_table(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` atomically and durably (see :mod:`airpath.durable`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_atomic(path, memoryview(sink.getvalue()))


def _iso(t: dt.datetime | None) -> str | None:
    return None if t is None else t.isoformat().replace("+00:00", "Z")
