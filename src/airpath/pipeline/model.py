"""The streaming job's model and its per-batch checkpoints.

:class:`StreamModel` is the estimator of :mod:`airpath.air` as the job runs it: low-cost
sensors calibrated per sensor and pollutant (against a co-located reference station where
there is one, else against the field that reference and bike readings alone give, see
:mod:`airpath.air.network_calibration`), then residual kriging with its level forecasters
and drift monitor.

Exactly once: the model after batch ``N`` is saved as ``state-N`` before the batch's
``foreachBatch`` returns, hence before Spark commits the batch. A batch that Spark
replays after a crash starts from the newest state older than it, so it is folded in once
whatever happened to the first attempt. Only the newest few states are kept.
"""

from __future__ import annotations

import datetime as dt
import pickle
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from airpath.air.calibration import SensorCalibrator
from airpath.air.drift import DriftReport
from airpath.air.estimate import EdgeSpace
from airpath.air.kriging import ResidualKriging
from airpath.air.observations import ObservationBatch
from airpath.air.plan import FieldPlan
from airpath.durable import write_atomic
from airpath.errors import PipelineConfigError

STATE_FORMAT = 1
_STATE = re.compile(r"^state-(\d{12})\.pkl$")


class StreamModel:
    """Calibration + residual kriging, learned batch by batch (the ``learn`` verb)."""

    def __init__(self, space: EdgeSpace, horizons_min: Sequence[float]) -> None:
        self.calibrator = SensorCalibrator(space, pass_uncalibrated=True)
        self.kriging = ResidualKriging(space, horizons_min=[h for h in horizons_min if h > 0])
        self.newest_event_s: float | None = None
        self.n_batches = 0
        self.sensors: dict[str, dict[str, Any]] = {}  # latest reading per sensor
        self.adopted_version: str | None = None  # model artifact in use (airpath train)

    def observe_sensors(self, valid: pd.DataFrame) -> None:
        """Keep the latest position, time and value per pollutant of each sensor.

        As if the rows were visited in (sensor, time) order: a sensor's record moves to
        every reading at least as new as it, and a reading sets its pollutant's value
        unless it is more than a minute older than the record. Computed per sensor and
        per (sensor, pollutant) from their newest rows, not row by row.
        """
        if not len(valid):
            return
        cols = ["sensor_id", "sensor_kind", "lat", "lon", "time_ms", "pollutant", "value_ugm3"]
        rows = valid[cols].sort_values(["sensor_id", "time_ms"], kind="stable")
        newest = rows.drop_duplicates("sensor_id", keep="last")
        # Record times before this batch: a reading a minute older than them is stale.
        before = {
            s: rec["time_ms"]
            for s in newest["sensor_id"].tolist()
            if (rec := self.sensors.get(s)) is not None
        }
        for sensor, kind, lat, lon, t in zip(*(newest[c].tolist() for c in cols[:5]), strict=True):
            rec = self.sensors.get(sensor)
            if rec is None or t >= rec["time_ms"]:
                values = {} if rec is None else rec["values_ugm3"]
                self.sensors[sensor] = {
                    "sensor_id": sensor, "sensor_kind": kind, "lat": lat, "lon": lon,
                    "time_ms": int(t), "values_ugm3": values,
                }  # fmt: skip
        latest = rows.drop_duplicates(["sensor_id", "pollutant"], keep="last")
        for sensor, t, p, v in zip(
            *(latest[c].tolist() for c in ("sensor_id", "time_ms", "pollutant", "value_ugm3")),
            strict=True,
        ):
            if t >= before.get(sensor, t) - 60_000:
                self.sensors[sensor]["values_ugm3"][p] = float(v)

    def sensors_document(self) -> dict[str, Any]:
        """What ``GET /v1/sensors`` serves: the latest reading of every sensor."""
        out = []
        for rec in sorted(self.sensors.values(), key=lambda r: str(r["sensor_id"])):
            t = dt.datetime.fromtimestamp(rec["time_ms"] / 1000, dt.UTC)
            item = {k: v for k, v in rec.items() if k != "time_ms"}
            item["time"] = t.isoformat().replace("+00:00", "Z")
            out.append(item)
        newest = max((r["time_ms"] for r in self.sensors.values()), default=None)
        updated = (
            None
            if newest is None
            else dt.datetime.fromtimestamp(newest / 1000, dt.UTC).isoformat().replace("+00:00", "Z")
        )
        return {"updated_at": updated, "sensors": out}

    def learn(self, batch: ObservationBatch) -> None:
        if len(batch) == 0:
            return
        self.calibrator.learn(batch)
        self.kriging.learn(self.calibrator.transform(batch))
        newest = float(batch.time_s.max())
        self.newest_event_s = max(newest, self.newest_event_s or newest)
        self.n_batches += 1

    def plan(self, t: dt.datetime, horizons_min: Sequence[float]) -> FieldPlan:
        return self.kriging.plan(t, horizons_min)

    @property
    def drift_reports(self) -> list[DriftReport]:
        return self.kriging.drift.reports

    def prequential_rmse(self) -> dict[tuple[str, float], float]:
        """Forecast RMSE of the city-wide level (log units) per pollutant and horizon,
        each forecast scored before the data it forecast was learned."""
        return {
            (p, h): v for p, fc in self.kriging.forecasters.items() for h, v in fc.rmse().items()
        }


class ModelCheckpoints:
    """``state-<batch id>.pkl`` files in one directory, written atomically."""

    def __init__(self, directory: Path, *, keep: int = 3) -> None:
        self.directory = Path(directory)
        self.keep = max(int(keep), 2)
        self.directory.mkdir(parents=True, exist_ok=True)

    def batch_ids(self) -> list[int]:
        return sorted(
            int(m.group(1)) for p in self.directory.iterdir() if (m := _STATE.match(p.name))
        )

    def save(self, batch_id: int, model: StreamModel) -> Path:
        path = self.directory / f"state-{batch_id:012d}.pkl"
        state = (STATE_FORMAT, batch_id, model)
        write_atomic(path, pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL))
        for old in self.batch_ids()[: -self.keep]:
            (self.directory / f"state-{old:012d}.pkl").unlink(missing_ok=True)
        return path

    def load_before(self, batch_id: int) -> tuple[int, StreamModel] | None:
        """The newest saved model older than ``batch_id``, with its batch id."""
        older = [b for b in self.batch_ids() if b < batch_id]
        if not older:
            return None
        path = self.directory / f"state-{older[-1]:012d}.pkl"
        try:
            with open(path, "rb") as f:
                fmt, saved_id, model = pickle.load(f)
        except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
            raise PipelineConfigError(f"{path}: unreadable model state ({exc})") from exc
        if fmt != STATE_FORMAT or not isinstance(model, StreamModel):
            raise PipelineConfigError(
                f"{path}: model state of format {fmt}, this airpath reads {STATE_FORMAT}"
            )
        return int(saved_id), model
