"""``airpath train``: the batch job that fits the field model to the history lake.

Plan::

    <lake>/readings/date=…/hour=…/*.parquet   (--since/--until prune date/hour partitions)
      ─► usable rows ⋈ broadcast priors        log-ratio r = log(max(c, 0.1) / prior)
      ─► cells: groupBy(pollutant, hour, edge)  n, mean, var_samp of r          (cached)
           ├─► hourly levels: groupBy(pollutant, hour)            ─► driver (P × hours rows)
           ├─► within-cell sums: groupBy(pollutant)               ─► driver (P rows)
           └─► cells ⋈ cells on (pollutant, hour), edge_a < edge_b, d < max lag
                 ─► groupBy(pollutant, distance bin) pair sums    ─► driver (P × bins rows)
      ─► fit on the driver (:func:`airpath.air.training.fit_model`)
      ─► a versioned :class:`~airpath.pipeline.artifacts.ModelArtifact` in the registry

Only those small aggregates reach the driver. The pair join grows with the square of the
edges observed per hour (mobile sensors: hundreds); when the hours' pairs would exceed
``max_pairs`` a deterministic hash of (pollutant, hour) keeps a random share of the hours,
which leaves the variogram estimator unbiased. The aggregation matches
:func:`airpath.air.training.aggregate_readings`, its in-memory reference.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from airpath.air.estimate import MIN_VALUE_UGM3, EdgeSpace
from airpath.air.training import (
    HOUR_S,
    TrainingAggregates,
    default_max_lag_m,
    fit_model,
)
from airpath.errors import PipelineConfigError
from airpath.network.store import load_network
from airpath.pipeline.artifacts import ModelArtifact, ModelRegistry
from airpath.pipeline.session import build_session, spark_settings
from airpath.serving.snapshot import network_key

Progress = Callable[[str], None]
_UNREADABLE = re.compile(r"FAILED_READ_FILE\S*\] Encountered error while reading file (\S+?)\.?\s")

# 50 M pairs: far more than a stable variogram needs (thousands per distance bin), while
# bounding the shuffle of the pair join.
DEFAULT_MAX_PAIRS = 50_000_000
N_BINS = 15
# The lake columns the job reads (batch.py writes them): an explicit schema means no
# footer is read for inference, and only these columns are scanned.
LAKE_COLUMNS = (
    "sensor_id string, pollutant string, edge_id bigint, value_ugm3 double, time timestamp"
)


def run_training(
    lake_dir: str | Path,
    network_dir: str | Path,
    registry_dir: str | Path,
    *,
    master: str = "local[2]",
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    utc_offset_h: float = 0.0,
    spark: Any = None,
    progress: Progress | None = None,
    max_pairs: int = DEFAULT_MAX_PAIRS,
) -> ModelArtifact:
    """Fit readings in ``[since, until)`` (UTC; ``None``: unbounded), save and return the artifact.

    ``lake_dir`` is the lake root (``<work>/lake``) holding ``readings/``. A session is
    started (and stopped) here unless ``spark`` is given or one is already active.
    """
    say = progress or (lambda _msg: None)
    if since is not None and until is not None and _utc(since) >= _utc(until):
        raise PipelineConfigError(f"--since {_iso(since)} is not before --until {_iso(until)}")
    if not -14.0 <= utc_offset_h <= 14.0:
        raise PipelineConfigError(f"UTC offset must be -14…14 hours, got {utc_offset_h}")
    network = load_network(network_dir)
    space = EdgeSpace.from_network(network)
    owns_spark = False
    if spark is None:
        from pyspark.sql import SparkSession

        spark = SparkSession.getActiveSession()
        if spark is None:
            say(f"starting Spark ({master})")
            spark = build_session(spark_settings(app_name="airpath-train", master=master))
            owns_spark = True
    try:
        readings = read_lake(spark, lake_dir, since=since, until=until)
        agg = aggregate_lake(
            spark,
            readings,
            space,
            max_pairs=max_pairs,
            progress=say,
            where=(lake_dir, since, until),
        )
    except Exception as exc:
        # A truncated or foreign file in the lake is a bad input, not a bug of ours.
        bad = _UNREADABLE.search(str(exc))
        if bad is None:
            raise
        raise PipelineConfigError(f"{bad.group(1)}: unreadable lake file") from None
    finally:
        if owns_spark:
            spark.stop()
    say(f"fitting {agg.n_readings} readings from {agg.n_sensors} sensors")
    fitted = fit_model(agg, utc_offset_h=utc_offset_h)
    artifact = ModelArtifact.create(fitted, network_key(network))
    path = ModelRegistry(registry_dir).save(artifact)
    say(f"saved {path}")
    return artifact


def read_lake(
    spark: Any,
    lake_dir: str | Path,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> Any:
    """The lake's readings as a DataFrame, pruned to the dates of ``[since, until)``."""
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    root = f"{str(lake_dir).rstrip('/')}/readings"
    if "://" not in root and not any(Path(root).glob("date=*/hour=*/*.parquet")):
        raise PipelineConfigError(f"no readings in {root} {_between(since, until)}")
    try:
        df = spark.read.schema(LAKE_COLUMNS).option("basePath", root).parquet(root)
    except AnalysisException as exc:
        reason = str(exc).splitlines()[0]
        raise PipelineConfigError(f"{root}: unreadable lake ({reason})") from None
    # The partitions are the reading's UTC date and hour: a filter on them alone prunes
    # whole directories (the cast keeps it independent of partition type inference).
    slot = F.concat(F.col("date").cast("string"), F.lpad(F.col("hour").cast("string"), 2, "0"))
    if since is not None:
        since = _utc(since)
        df = df.filter((slot >= since.strftime("%Y-%m-%d%H")) & (F.col("time") >= F.lit(since)))
    if until is not None:
        until = _utc(until)
        last = (until - dt.timedelta(microseconds=1)).strftime("%Y-%m-%d%H")
        df = df.filter((slot <= last) & (F.col("time") < F.lit(until)))
    return df


def aggregate_lake(
    spark: Any,
    readings: Any,
    space: EdgeSpace,
    *,
    max_lag_m: float | None = None,
    n_bins: int = N_BINS,
    max_pairs: int = DEFAULT_MAX_PAIRS,
    progress: Progress | None = None,
    where: tuple[Any, dt.datetime | None, dt.datetime | None] = ("the lake", None, None),
) -> TrainingAggregates:
    """The Spark version of :func:`~airpath.air.training.aggregate_readings` (module doc)."""
    from pyspark.sql import functions as F

    say = progress or (lambda _msg: None)
    lag = default_max_lag_m(space) if max_lag_m is None else float(max_lag_m)
    pollutants = list(space.pollutants)
    priors = spark.createDataFrame(
        pd.DataFrame(
            {
                "pollutant": np.repeat(pollutants, space.n_edges),
                "edge_id": np.tile(np.arange(space.n_edges, dtype=np.int64), len(pollutants)),
                "log_prior": np.log(np.concatenate([space.prior_ugm3[p] for p in pollutants])),
            }
        )
    )
    coords = spark.createDataFrame(
        pd.DataFrame(
            {
                "edge_id": np.arange(space.n_edges, dtype=np.int64),
                "x_m": space.xy_m[:, 0],
                "y_m": space.xy_m[:, 1],
            }
        )
    )
    t_s = F.col("time").cast("double")
    usable = (
        readings.filter(
            F.col("pollutant").isin(pollutants)
            & (F.col("edge_id") >= 0)
            & (F.col("edge_id") < space.n_edges)
            & F.col("value_ugm3").isNotNull()
            & ~F.isnan("value_ugm3")
            & F.col("time").isNotNull()
        )
        .select(
            "sensor_id", "pollutant", F.col("edge_id").cast("long"), "value_ugm3", t_s.alias("t_s")
        )
        .join(F.broadcast(priors), ["pollutant", "edge_id"])
    )
    say(f"reading {where[0]} {_between(where[1], where[2])}")
    totals = usable.agg(
        F.count(F.lit(1)).alias("n"),
        F.countDistinct("sensor_id").alias("sensors"),
        F.min("t_s").alias("t0"),
        F.max("t_s").alias("t1"),
    ).first()
    if totals is None or not totals["n"]:
        raise PipelineConfigError(f"no readings in {where[0]} {_between(where[1], where[2])}")
    say(f"{totals['n']} readings from {totals['sensors']} sensors; aggregating per edge and hour")
    log_ratio = F.log(F.greatest(F.col("value_ugm3"), F.lit(MIN_VALUE_UGM3))) - F.col("log_prior")
    cells = (
        usable.withColumn("hour_s", F.floor(F.col("t_s") / HOUR_S) * F.lit(HOUR_S))
        .groupBy("pollutant", "hour_s", "edge_id")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.avg(log_ratio).alias("mean"),
            F.var_samp(log_ratio).alias("var"),
        )
        .cache()
    )
    try:
        levels = (
            cells.groupBy("pollutant", "hour_s")
            .agg(
                F.avg("mean").alias("level"),
                F.count(F.lit(1)).alias("n_edges"),
                F.sum("n").alias("n_readings"),
            )
            .toPandas()
        )
        within = (
            cells.filter(F.col("n") >= 2)
            .groupBy("pollutant")
            .agg(
                F.sum(F.col("n") - 1).alias("dof"),
                F.sum((F.col("n") - 1) * F.col("var")).alias("sum_sq"),
            )
            .toPandas()
        )
        n_edges = levels["n_edges"].to_numpy(np.float64)
        all_pairs = float((n_edges * (n_edges - 1) / 2).sum())
        fraction = min(1.0, max_pairs / all_pairs) if all_pairs else 1.0
        say(f"variogram from {all_pairs:.0f} candidate pairs (share of hours {fraction:.3g})")
        sums = _pair_sums(cells, coords, lag, n_bins, fraction)
    finally:
        cells.unpersist()
    return TrainingAggregates(
        levels.astype({"hour_s": np.float64, "level": np.float64}),
        sums,
        within,
        int(totals["n"]),
        int(totals["sensors"]),
        float(totals["t0"]),
        float(totals["t1"]),
        lag,
        fraction,
    )


def _pair_sums(cells: Any, coords: Any, lag: float, n_bins: int, fraction: float) -> pd.DataFrame:
    from pyspark.sql import functions as F

    pts = cells.select("pollutant", "hour_s", "edge_id", "n", "mean")
    if fraction < 1.0:
        bucket = F.pmod(F.xxhash64("pollutant", "hour_s"), F.lit(1_000_000))
        pts = pts.filter(bucket < F.lit(int(fraction * 1_000_000)))
    pts = pts.join(F.broadcast(coords), "edge_id")
    a, b = pts.alias("a"), pts.alias("b")
    pairs = a.join(
        b,
        (F.col("a.pollutant") == F.col("b.pollutant"))
        & (F.col("a.hour_s") == F.col("b.hour_s"))
        & (F.col("a.edge_id") < F.col("b.edge_id")),
    )
    dx = F.col("a.x_m") - F.col("b.x_m")
    dy = F.col("a.y_m") - F.col("b.y_m")
    d = F.sqrt(dx * dx + dy * dy)
    width = lag / n_bins
    out = (
        pairs.select(
            F.col("a.pollutant").alias("pollutant"),
            d.alias("d"),
            (0.5 * F.pow(F.col("a.mean") - F.col("b.mean"), 2)).alias("sv"),
            (0.5 * (1.0 / F.col("a.n") + 1.0 / F.col("b.n"))).alias("inv_n"),
        )
        .filter(F.col("d") < lag)
        .withColumn("bin", F.least(F.floor(F.col("d") / width), F.lit(n_bins - 1)).cast("long"))
        .groupBy("pollutant", "bin")
        .agg(
            F.count(F.lit(1)).cast("double").alias("n_pairs"),
            F.sum("d").alias("sum_distance_m"),
            F.sum("sv").alias("sum_semivariance"),
            F.sum("inv_n").alias("sum_inv_n"),
        )
        .toPandas()
    )
    return out.sort_values(["pollutant", "bin"]).reset_index(drop=True)


# ---------------------------------------------------------------- command line


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``airpath train``."""
    parser.add_argument("--lake", required=True, help="history lake root (the stream's WORK/lake)")
    parser.add_argument("--network", required=True, help="network directory")
    parser.add_argument("--out", required=True, help="model registry directory")
    parser.add_argument("--since", help="first reading time, ISO 8601 (UTC if no offset)")
    parser.add_argument("--until", help="end of the readings (exclusive), ISO 8601")
    parser.add_argument("--master", default="local[2]", help="Spark master (default local[2])")
    parser.add_argument(
        "--utc-offset",
        type=float,
        default=0.0,
        help="hours from UTC to the city's local time, for the diurnal profile (default 0)",
    )


def cmd_train(args: argparse.Namespace) -> int:
    """Run the job and print one summary line."""
    import sys

    artifact = run_training(
        Path(args.lake),
        Path(args.network),
        Path(args.out),
        master=args.master,
        since=parse_time(args.since) if args.since else None,
        until=parse_time(args.until) if args.until else None,
        utc_offset_h=args.utc_offset,
        progress=lambda msg: print(f"  … {msg}", file=sys.stderr, flush=True),
    )
    print(summary_line(artifact))
    return 0


def summary_line(artifact: ModelArtifact) -> str:
    """Version, data range and the key metrics, on one line."""
    m, k = artifact.metrics, artifact.kriging
    parts = [
        f"model {artifact.version}: {_iso(artifact.data_from)}–{_iso(artifact.data_to)}",
        f"{m.get('n_readings', 0):.0f} readings from {m.get('n_sensors', 0):.0f} sensors",
    ]
    if k:
        parts.append(
            f"length scale {k['length_scale_m']:.0f} m, residual sd {k['residual_sd']:.3f}, "
            f"nugget sd {k['nugget_sd']:.3f}, variogram RMSE {m.get('variogram_rmse', 0.0):.2g}"
        )
    elif m.get("length_scale_at_bound"):
        parts.append(
            f"variogram length scale on its bound ({m['variogram_length_scale_m']:.0f} m): "
            "not identified, kriging defaults kept"
        )
    else:
        parts.append("variogram not fitted (too few pairs): kriging defaults kept")
    if "holdout_rmse_profile" in m:
        parts.append(
            f"diurnal holdout RMSE {m['holdout_rmse_profile']:.3f} "
            f"vs {m['holdout_rmse_mean']:.3f} (mean)"
        )
    return "; ".join(parts)


def parse_time(text: str) -> dt.datetime:
    """ISO 8601 time or date; without an offset, UTC."""
    try:
        t = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise PipelineConfigError(
            f"not an ISO 8601 time (e.g. 2026-05-04T00:00Z): {text!r}"
        ) from None
    return _utc(t)


def _utc(t: dt.datetime) -> dt.datetime:
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def _between(since: dt.datetime | None, until: dt.datetime | None) -> str:
    a = _iso(_utc(since)) if since is not None else "the start"
    b = _iso(_utc(until)) if until is not None else "the end"
    return f"between {a} and {b}"
