"""Exactly once across a crash: SIGKILL the job in the middle of a batch, restart it from
its checkpoint, and get what an uninterrupted run on the same input gets."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from airpath.pipeline.batch import FAULT_PAUSE_ENV
from airpath.pipeline.config import StreamConfig
from airpath.pipeline.stream import run_stream
from airpath.serving.store import LocalFieldStore

PAUSE_AT = 2


def _cli(helsinki_dir: Path, landing: Path, work: Path) -> list[str]:
    return [
        sys.executable, "-c", "from airpath.cli import main; raise SystemExit(main())",
        "stream", "--network", str(helsinki_dir), "--landing", str(landing),
        "--work", str(work), "--clock", "event", "--max-files-per-trigger", "3",
        "--tile-deg", "0.005", "--once",
    ]  # fmt: skip


def _table(root: Path) -> pd.DataFrame:
    frame = pq.read_table(root).to_pandas()
    cols = [c for c in frame.columns if c not in ("date", "hour")]
    return frame[cols].sort_values(cols[:6] if len(cols) > 6 else cols).reset_index(drop=True)


@pytest.mark.parametrize("where", [f"{PAUSE_AT}", f"{PAUSE_AT}:end"])
def test_sigkill_then_restart_equals_an_uninterrupted_run(
    spark: Any, helsinki_dir: Path, sim_readings: Path, tmp_path: Path, where: str
) -> None:
    """Killed mid-batch (files written, no field or model state yet) or at its very end
    (all written, Spark's commit not): the replay must count nothing twice."""
    landing = tmp_path / "landing"
    shutil.copytree(sim_readings, landing)
    (landing / "zz-bad.jsonl").write_text('{"sensor_id": "a", "oops": \n')

    reference = StreamConfig(
        network=helsinki_dir, landing=landing, work=tmp_path / "ref", clock="event",
        max_files_per_trigger=3, tile_deg=0.005,
    )  # fmt: skip
    run_stream(reference, once=True, spark=spark)

    work = tmp_path / "crashed"
    env = {**os.environ, FAULT_PAUSE_ENV: where}
    log = tmp_path / "crashed.log"
    with open(log, "wb") as err:
        job = subprocess.Popen(
            _cli(helsinki_dir, landing, work), env=env, start_new_session=True,
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
        marker = work / f"paused-{where.replace(':', '-')}"
        deadline = time.monotonic() + 240
        while not marker.exists():
            assert job.poll() is None, log.read_text()[-2000:]
            assert time.monotonic() < deadline, "the job never reached the batch to kill"
            time.sleep(0.2)
        os.killpg(job.pid, signal.SIGKILL)  # the driver and its JVM, mid-batch
        job.wait(timeout=30)
    states = sorted(p.name for p in (work / "model").glob("state-*.pkl"))
    newest = PAUSE_AT if where.endswith(":end") else PAUSE_AT - 1
    assert states[-1] == f"state-{newest:012d}.pkl"

    done = subprocess.run(
        _cli(helsinki_dir, landing, work), check=False, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]

    for part in ("lake/readings", "deadletters"):
        pd.testing.assert_frame_equal(_table(work / part), _table(reference.work / part))
    ours = LocalFieldStore(work / "fields").latest()
    theirs = LocalFieldStore(reference.work / "fields").latest()
    assert ours.version == theirs.version
    assert ours.newest_event_time == theirs.newest_event_time
    for p, arr in theirs.field.concentration_ugm3.items():
        np.testing.assert_array_equal(ours.field.concentration_ugm3[p], arr)
        np.testing.assert_array_equal(
            ours.field.uncertainty_ugm3[p], theirs.field.uncertainty_ugm3[p]
        )
