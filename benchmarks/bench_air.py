"""Air-quality benchmark: `airpath evaluate` on simulated Barcelona and real Beijing data.

Runs the evaluation (street-level estimate versus prior-only, nearest-sensor and
inverse-distance baselines on a simulated day; exposure benefit of routes chosen on the
estimate; 1-hour-ahead forecasts on the Beijing hourly series versus persistence and
seasonal naive) and writes its section of ``BENCHMARKS.md`` (after the routing report,
which keeps it when regenerated). Plots and report.json go to benchmarks/out/air/.

    .venv/bin/python benchmarks/bench_air.py [--hours 24] [--seed 1] [--trips 200]
        [--more-seeds 2,3]

The targets are judged on ``--seed``'s day; ``--more-seeds`` runs the simulated day again
with other seeds (no Beijing, no plots kept) and tabulates their headline figures, to
show how much of a difference between two versions is the day rather than the model.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from _sections import write_section
from airpath.air.evaluation import EvaluationConfig, evaluate
from airpath.errors import AirpathError
from airpath.network.sources import build_from_sources
from airpath.network.store import NetworkFormatError, load_network

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
OUT = REPO / "benchmarks" / "out"
BEGIN = "<!-- air:begin -->"
END = "<!-- air:end -->"
POLLUTANTS = ("no2", "pm10", "pm25")
ESTIMATORS = (
    ("ours", "ours"),
    ("inverse_distance", "IDW"),
    ("nearest_sensor", "nearest"),
    ("prior_only", "prior"),
    ("prior_inverse_distance", "prior × IDW"),
)
BASELINES = (
    "Baselines, run in the same script on the same readings: **IDW** spreads the "
    "observed streets' recent concentrations (each observed street's readings smoothed "
    "in time, as for every estimator) by inverse-distance weighting, the interpolation a "
    "city team runs on its sensors; **nearest** takes the nearest observed street's; "
    "**prior** is the 2022 annual map alone. **prior × IDW** is a stronger hybrid: the "
    "annual map times the inverse-distance weighting of the observed streets' ratios to "
    "it. It already uses the street prior, half of our model, so the last column, ours "
    "against it, is what kriging adds over a naive interpolation of the same residuals; "
    "it is reported without a target."
)


def _network() -> Path:
    net = OUT / "networks" / "barcelona"
    try:
        load_network(net)
    except NetworkFormatError:
        build_from_sources([str(DATA / "bcn")], net)
    return net


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "n/a (nothing to measure)"
    return "**PASS**" if ok else "**FAIL**"


def render(report: dict[str, Any], command: str) -> str:
    lines = [
        BEGIN,
        "",
        "# Air-quality benchmarks",
        "",
        f"Command: `{command}` ({report['runtime_s']['total']:.0f} s"
        + (
            f" for seed {report['config']['seed']}, about as long for each other seed)."
            if report.get("other_seeds")
            else ")."
        ),
        "",
        f"Simulated day: Barcelona network ({report['network']['edges']:,} edges), "
        f"{report['network']['n_reference_stations']} reference stations at the real "
        f"station locations, {report['simulation']['n_low_cost']} low-cost and "
        f"{report['simulation']['n_mobile']} mobile sensors, seed "
        f"{report['config']['seed']}, {report['config']['duration_s'] / 3600:.0f} h; "
        f"{report['warm_up']}. Scored {report['scored_times']} times over all edges.",
        "",
        "## Street-level RMSE (µg/m³) by horizon",
        "",
        BASELINES,
        "",
        "| pollutant | horizon | "
        + " | ".join(n for _, n in ESTIMATORS)
        + " | ours vs IDW | ours vs prior × IDW |",
        "|---|---:|" + "---:|" * (len(ESTIMATORS) + 2),
    ]
    for p in POLLUTANTS:
        for h, red in report["rmse_reduction_vs_idw_pct"][p].items():
            hybrid = report["rmse_reduction_vs_prior_idw_pct"][p][h]
            cells = [f"{report['scores'][k][p][h]['rmse_ugm3']:.2f}" for k, _ in ESTIMATORS]
            lines.append(
                f"| {p} | +{float(h):.0f} min | "
                + " | ".join(cells)
                + f" | {red:+.1f} % | {hybrid:+.1f} % |"
            )
    t = report["targets"]
    lines += ["", "## Targets", "", "| what | measured | target | verdict |", "|---|---|---|---|"]
    for p in POLLUTANTS:
        lines.append(
            f"| RMSE below IDW at +0 min, {p} | {t['rmse_vs_idw_h0']['achieved_pct'][p]:.1f} % "
            f"| ≥ {t['rmse_vs_idw_h0']['target_pct']:.0f} % | "
            f"{_verdict(t['rmse_vs_idw_h0']['met'][p])} |"
        )
    for p in POLLUTANTS:
        lines.append(
            f"| RMSE below prior × IDW at +0 min, {p} (stronger baseline, reported) | "
            f"{report['rmse_reduction_vs_prior_idw_pct'][p]['0']:.1f} % | none | — |"
        )
    inc = report["incident_detection"]
    lines.append(
        f"| incidents seen by a sensor and detected within 2 batches | "
        f"{inc['within_two_batches']} of {inc['n_observed']} seen ({inc['n_incidents']} in all; "
        f"max latency {inc['max_latency_batches']} batches) | ≤ 2 batches | "
        f"{_verdict(t['incident_latency']['met'])} |"
    )
    for prof, share in t["share_realised"]["achieved"].items():
        lines.append(
            f"| share of achievable dose reduction, {prof} | "
            f"{share['share_of_median_reduction']:.2f} (95 % interval over the trips "
            f"{_interval(share)}; of total dose saved "
            f"{share['share_of_total_dose_saved']:.2f}) | ≥ {t['share_realised']['target']} | "
            f"{_verdict(t['share_realised']['met'][prof])} |"
        )
    others = report.get("other_seeds") or []
    if others:
        lines += [
            "",
            "## The same day with other seeds",
            "",
            "RMSE below IDW and below prior × IDW at +0 min, and the share of achievable "
            "median dose reduction; the targets above are judged on seed "
            f"{report['config']['seed']}.",
            "",
            "| seed | "
            + " | ".join(POLLUTANTS)
            + " | "
            + " | ".join(f"{p} vs prior × IDW" for p in POLLUTANTS)
            + " | least_exposure | balanced |",
            "|---:|" + "---:|" * (2 * len(POLLUTANTS) + 2),
        ]
        rows = [_seed_row(report), *others]
        for row in rows:
            lines.append(_seed_line(row))
        mean = {k: sum(float(r[k]) for r in rows) / len(rows) for k in rows[0] if k != "seed"}
        lines.append(_seed_line({"seed": "mean", **mean}))
    ex = report["exposure_benefit"]
    lines += [
        "",
        f"## Exposure benefit ({ex['n_trips_routed']} trips, NO2, doses under the "
        f"true field; shortest route median {ex['shortest_median_distance_m'] / 1000:.1f} km)",
        "",
        "| routes chosen on | profile | median dose reduction | median extra distance |",
        "|---|---|---:|---:|",
    ]
    for fld, rows in ex["table"].items():
        for prof, row in rows.items():
            lines.append(
                f"| {fld} | {prof} | {row['median_dose_reduction_pct']:.1f} % | "
                f"{row['median_extra_distance_pct']:.1f} % |"
            )
    bj = report.get("beijing")
    if bj:
        lines += [
            "",
            "## Beijing, 1-hour-ahead forecast RMSE (µg/m³), trained online",
            "",
            "| station | pollutant | ours | persistence | seasonal naive | vs persistence |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for station, per in bj["stations"].items():
            for p, r in per.items():
                rm = r["rmse_ugm3"]
                lines.append(
                    f"| {station} | {p} | {rm['model']:.2f} | {rm['persistence']:.2f} | "
                    f"{rm['seasonal_naive']:.2f} | {r['improvement_pct']:.1f} % "
                    f"{'✓' if r['meets_target'] else '✗'} |"
                )
        for p, s in bj["summary"].items():
            lines.append(
                f"\n{p}: median {s['median_improvement_pct']:.1f} % below persistence; "
                f"{s['stations_meeting_target']} of {s['n_stations']} stations meet the "
                f"{bj['target_improvement_pct']:.0f} % target."
            )
    lines += [
        "",
        f"Plots: {', '.join(report['plots'])} in `benchmarks/out/air/` (git-ignored).",
        "",
        END,
        "",
    ]
    return "\n".join(lines)


def _interval(share: dict[str, Any]) -> str:
    """The bootstrap interval of a share of the median reduction, "low–high" (reports
    written before it was computed have none: "not computed")."""
    low, high = share.get("share_of_median_reduction_ci95") or (None, None)
    return "not computed" if low is None or high is None else f"{low:.2f}–{high:.2f}"


def _seed_row(report: dict[str, Any]) -> dict[str, Any]:
    """One seed's headline figures: RMSE below IDW and below prior × IDW at +0 per
    pollutant, shares."""
    t = report["targets"]
    shares = t["share_realised"]["achieved"]
    return {
        "seed": report["config"]["seed"],
        **{p: t["rmse_vs_idw_h0"]["achieved_pct"][p] for p in POLLUTANTS},
        **{f"{p}/prior_idw": report["rmse_reduction_vs_prior_idw_pct"][p]["0"] for p in POLLUTANTS},
        **{prof: shares[prof]["share_of_median_reduction"] for prof in shares},
    }


def _seed_line(row: dict[str, Any]) -> str:
    cols = [*POLLUTANTS, *(f"{p}/prior_idw" for p in POLLUTANTS)]
    pct = " | ".join(f"{float(row[c]):.1f} %" for c in cols)
    share = f"{float(row['least_exposure']):.2f} | {float(row['balanced']):.2f}"
    return f"| {row['seed']} | {pct} | {share} |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trips", type=int, default=200)
    parser.add_argument(
        "--more-seeds",
        default="",
        help="comma-separated seeds whose simulated days are tabulated too",
    )
    parser.add_argument(
        "--render-only",
        action="store_true",
        help="re-render the section from benchmarks/out/air/report.json",
    )
    args = parser.parse_args()
    if args.render_only:
        stored = json.loads((OUT / "air" / "report.json").read_text())
        print(f"wrote {write_section(BEGIN, END, render(stored, stored['_command']))}")
        return 0
    if not (DATA / "bcn").is_dir():
        print(f"bench_air: needs the shared data at {DATA}", file=sys.stderr)
        return 1
    try:
        network = _network()

        def day(seed: int, out: Path, beijing_dir: Path | None) -> dict[str, Any]:
            return evaluate(
                network,
                out,
                EvaluationConfig.create(hours=args.hours, seed=seed, n_trips=args.trips),
                stations_file=DATA / "bcn" / "stations_realtime_2024-04-21T19.json",
                beijing_dir=beijing_dir,
                progress=lambda m: print(f"  … {m}", file=sys.stderr, flush=True),
            )

        beijing = DATA / "beijing"
        report = day(args.seed, OUT / "air", beijing if beijing.is_dir() else None)
        others = []
        for seed in (int(s) for s in args.more_seeds.split(",") if s.strip()):
            print(f"  … seed {seed}", file=sys.stderr, flush=True)
            others.append(_seed_row(day(seed, OUT / "air" / f"seed-{seed}", None)))
    except (AirpathError, ValueError) as exc:
        print(f"bench_air: {exc}", file=sys.stderr)
        return 1
    report["other_seeds"] = others
    command = shlex.join([".venv/bin/python", "benchmarks/bench_air.py", *sys.argv[1:]])
    report["_command"] = command
    (OUT / "air" / "report.json").write_text(json.dumps(report, indent=1, default=str))
    path = write_section(BEGIN, END, render(report, command))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
