"""Running the simulator to files: readings per slice, truth snapshots, a manifest.

Layout of ``out_dir``::

    simulation.json                 seed, start, duration, network, sensors (with their
                                    true bias parameters), incidents, model parameters
    incidents.json                  the incident list alone
    readings/2026-05-01T08-00.jsonl one file per slice, one reading per line, fields
                                    named as in READING_SCHEMA, times ISO 8601 UTC "Z"
    truth/2026-05-01T08-00.npz      truth at that time: one float32 (n_edges,) array per
                                    pollutant, plus "time" (ISO string) and "unix_s"

Every file is written with :func:`airpath.durable.write_atomic` (a hidden temporary
sibling, fsynced, renamed), so a streaming reader never sees half a file and a slice
written stays written after a crash. The npz archives carry a fixed timestamp so that
the same seed gives byte-identical output.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from airpath.air.schema import Reading
from airpath.durable import write_atomic
from airpath.errors import SimulationError
from airpath.network.store import load_network
from airpath.sensors.clock import Clock, SystemClock, format_time, slice_name
from airpath.sensors.incidents import read_incidents
from airpath.sensors.simulator import CitySimulator, SimulationConfig
from airpath.sensors.stations import read_stations

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


@dataclass(frozen=True)
class SimulationReport:
    out_dir: Path
    n_slices: int
    n_readings: int
    n_truth_snapshots: int
    n_incidents: int
    elapsed_s: float

    def summary(self) -> str:
        return (
            f"{self.n_slices} slices, {self.n_readings} readings, "
            f"{self.n_truth_snapshots} truth snapshots, {self.n_incidents} incidents "
            f"in {self.elapsed_s:.1f} s"
        )


def reading_to_json(r: Reading) -> dict[str, Any]:
    """A reading as a JSON object with READING_SCHEMA's field names."""
    return {
        "sensor_id": r.sensor_id,
        "sensor_kind": str(r.sensor_kind),
        "lat": r.lat,
        "lon": r.lon,
        "time": format_time(r.time),
        "pollutant": str(r.pollutant),
        "value": r.value,
        "unit": str(r.unit),
        "speed_mps": r.speed_mps,
        "heading_deg": r.heading_deg,
    }


def write_readings(path: Path, readings: Sequence[Reading]) -> None:
    lines = [json.dumps(reading_to_json(r), ensure_ascii=False) for r in readings]
    write_atomic(path, ("\n".join(lines) + "\n" if lines else "").encode())


def write_truth(path: Path, t: dt.datetime, truth_ugm3: dict[str, npt.NDArray[Any]]) -> None:
    arrays: dict[str, npt.NDArray[Any]] = {
        p: np.asarray(a, dtype=np.float32) for p, a in truth_ugm3.items()
    }
    arrays["time"] = np.array(format_time(t))
    arrays["unix_s"] = np.array(int(t.timestamp()), dtype=np.int64)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, arr, allow_pickle=False)
            zf.writestr(zipfile.ZipInfo(f"{name}.npy", ZIP_EPOCH), member.getvalue())
    write_atomic(path, buf.getvalue())


def run_simulation(
    network_dir: str | Path,
    out_dir: str | Path,
    config: SimulationConfig,
    *,
    stations_file: str | Path | None = None,
    incidents_file: str | Path | None = None,
    truth_every_s: float = 900.0,
    speed: float = 0.0,
    progress: Callable[[float], None] | None = None,
    clock: Clock | None = None,
) -> SimulationReport:
    """Simulate and write the output layout above; ``speed`` simulated s per wall s (0: max)."""
    if speed < 0:
        raise SimulationError(f"speed must be ≥ 0, got {speed}")
    if truth_every_s < config.slice_s or truth_every_s % config.slice_s:
        raise SimulationError("truth snapshot interval must be a multiple of the slice")
    network = load_network(network_dir)
    stations = read_stations(stations_file, network) if stations_file else None
    incidents = read_incidents(incidents_file, network, config.start) if incidents_file else None
    clock = clock or SystemClock()
    wall0 = clock.monotonic()
    sim = CitySimulator(network, config, stations=stations, incidents=incidents)

    out = Path(out_dir)
    (out / "readings").mkdir(parents=True, exist_ok=True)
    (out / "truth").mkdir(exist_ok=True)
    manifest = sim.manifest()
    (out / "simulation.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False))
    (out / "incidents.json").write_text(json.dumps(manifest["incidents"], indent=2))
    every = round(truth_every_s / config.slice_s)
    n_readings = n_truth = 0
    last_pct = -1
    for piece in sim:
        name = slice_name(piece.start)
        if speed > 0:
            # A slice's readings exist once its last moment has passed: paced live, no
            # reading is ever stamped later than the wall clock says.
            due_s = (piece.end - config.start).total_seconds() / speed
            wait_s = due_s - (clock.monotonic() - wall0)
            if wait_s > 0:
                clock.sleep(wait_s)
        if piece.index % every == 0:
            write_truth(out / "truth" / f"{name}.npz", piece.start, piece.truth_ugm3)
            n_truth += 1
        write_readings(out / "readings" / f"{name}.jsonl", piece.readings)
        n_readings += len(piece.readings)
        pct = 100 * (piece.index + 1) // config.n_slices
        if progress is not None and pct != last_pct:
            progress(float(pct))
            last_pct = pct
    return SimulationReport(
        out, config.n_slices, n_readings, n_truth, len(sim.incidents), clock.monotonic() - wall0
    )


def read_truth(path: str | Path) -> tuple[dt.datetime, dict[str, npt.NDArray[np.float64]]]:
    """A truth snapshot back: its time and float64 arrays per pollutant."""
    with np.load(path, allow_pickle=False) as z:
        t = dt.datetime.fromtimestamp(int(z["unix_s"]), dt.UTC)
        arrays = {
            k: np.asarray(z[k], dtype=np.float64) for k in z.files if k not in ("time", "unix_s")
        }
    return t, arrays
