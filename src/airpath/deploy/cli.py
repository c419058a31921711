"""``airpath k8s …``: render, size, apply, status, logs, delete. Parsing and printing only.

Wire it into the main parser with ``add_k8s_parser(subparsers)``; each command sets
``func`` to a handler taking the parsed ``argparse.Namespace`` and returning the exit
code (0 ok; 1 ``status`` found something unhealthy). Errors are raised as
:class:`~airpath.deploy.errors.DeployError`, which the main CLI prints as one line.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airpath.deploy.errors import SizingError

if TYPE_CHECKING:
    from airpath.deploy.kube import KubeClient
    from airpath.deploy.resolve import Plan

Connect = Callable[[str | None, str | None], "KubeClient"]
COMPONENTS = ("stream", "train", "router", "redis", "simulator", "history", "monitoring",
              "access", "storage", "spark")  # fmt: skip


def connect_kubeconfig(kubeconfig: str | None, context: str | None) -> KubeClient:
    """The real client (imported on use: the Kubernetes client is slow to import)."""
    from airpath.deploy.kube import connect_kubeconfig as connect

    return connect(kubeconfig, context)


def describe(plan: Plan) -> list[str]:
    """Lines for people: the sizes each job got and where they came from."""
    lines: list[str] = []
    for job in (plan.stream, plan.train):
        if job is None:
            continue
        d, e = job.driver, job.executor
        count = str(job.instances)
        if job.max_executors != job.instances:
            count += f"–{job.max_executors}"
        lines.append(
            f"{job.name}: driver {d.core_request} CPU {d.memory}+{d.memory_overhead} on {d.pool}; "
            f"{count} executors × {e.cores} slots, {e.core_request} CPU, "
            f"{e.memory}+{e.memory_overhead} on {e.pool}"
            + (" (sized from the pool)" if job.sizing else "")
        )
    return lines


def _render(args: argparse.Namespace, *, validate: bool = True) -> Any:
    from airpath.deploy.rendering import render

    return render(args.overlay, layers_dir=args.layers, sets=args.set or (), validate=validate)


def cmd_render(args: argparse.Namespace) -> int:
    from airpath.deploy.layers import explain
    from airpath.deploy.rendering import write

    rendered = _render(args, validate=not args.no_validate)
    if args.explain:
        for line in [*explain(rendered.merged), "", *describe(rendered.plan)]:
            print(line)
    if args.out:
        paths = write(rendered, args.out)
        print(f"wrote {len(paths)} manifests for {args.overlay} to {args.out}", file=sys.stderr)
    elif not args.explain:
        sys.stdout.write(rendered.stream())
    return 0


def cmd_size(args: argparse.Namespace) -> int:
    from airpath.deploy.sizing import NodeShape, size_executors

    reserved: tuple[str, str] | str | None = None
    if args.system_reserved:
        text = args.system_reserved.strip()
        if text.endswith("%"):
            reserved = text
        else:
            cpu, sep, memory = text.partition(",")
            if not sep:
                raise SizingError(
                    f"--system-reserved takes CPU,MEMORY (100m,1Gi) or 15%, got {text!r}"
                )
            reserved = (cpu, memory)
    node = NodeShape.create(
        args.node_cores,
        args.node_memory,
        system_reserved=reserved,
        daemonset_cpu=args.daemonset_cpu,
        daemonset_memory=args.daemonset_memory,
    )
    size = size_executors(node, workload=args.workload, executors_per_node=args.executors_per_node)
    if args.json:
        print(
            json.dumps({"executorsPerNode": size.executors_per_node, **size.spark_conf()}, indent=2)
        )
    else:
        print(size.report())
    return 0


def _client(args: argparse.Namespace) -> KubeClient:
    connect: Connect = args.connect
    return connect(args.kubeconfig, args.context)


def cmd_apply(args: argparse.Namespace) -> int:
    from airpath.deploy.ops import apply_all, select

    rendered = _render(args)
    manifests = select(rendered.manifests, args.component)
    for line in apply_all(
        _client(args), manifests, force=args.force_conflicts, dry_run=args.dry_run
    ):
        print(line)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from airpath.deploy.ops import status_report, wait_healthy

    rendered = _render(args, validate=False)
    client = _client(args)
    if args.wait:
        report = wait_healthy(client, rendered.plan, args.wait)
    else:
        report = status_report(client, rendered.plan)
    for line in report.lines:
        print(line)
    return 0 if report.healthy else 1


def cmd_logs(args: argparse.Namespace) -> int:
    from airpath.deploy.ops import driver_logs

    rendered = _render(args, validate=False)
    text = driver_logs(
        _client(args), rendered.plan, job=args.job, tail=args.tail, previous=args.previous
    )
    sys.stdout.write(text if text.endswith("\n") or not text else text + "\n")
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from airpath.deploy.ops import delete_all, select

    rendered = _render(args, validate=False)
    manifests = select(rendered.manifests, args.component)
    for line in delete_all(_client(args), manifests, purge=args.purge):
        print(line)
    return 0


def _layer_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overlay", required=True, help="dev, prod, or an overlay of --layers")
    p.add_argument("--layers", help="a layer directory of your own (base/ and overlays/)")
    p.add_argument(
        "--set",
        action="append",
        metavar="PATH=VALUE",
        help="override one value after the job layer, e.g. stream.executor.instances=4",
    )


def _cluster_args(p: argparse.ArgumentParser, connect: Connect) -> None:
    _layer_args(p)
    p.add_argument("--kubeconfig", help="kubeconfig file (default: KUBECONFIG or ~/.kube/config)")
    p.add_argument("--context", help="kubeconfig context (default: the current one)")
    p.set_defaults(connect=connect)


def add_k8s_parser(
    subparsers: Any, *, connect: Connect = connect_kubeconfig
) -> argparse.ArgumentParser:
    """Register ``k8s render|size|apply|status|logs|delete`` on ``subparsers``."""
    k8s = subparsers.add_parser("k8s", help="Kubernetes: render, size and operate the deployment")
    sub = k8s.add_subparsers(dest="k8s_command", required=True)

    r = sub.add_parser("render", help="render the manifests of an overlay, one file per resource")
    _layer_args(r)
    r.add_argument("--out", help="directory to write (default: one YAML stream on stdout)")
    r.add_argument("--explain", action="store_true", help="show which layer set each value")
    r.add_argument("--no-validate", action="store_true", help="skip the schema checks")
    r.set_defaults(func=cmd_render)

    s = sub.add_parser("size", help="executor sizes that fill a node shape")
    s.add_argument("--node-cores", required=True, help="CPU cores of a node, e.g. 4")
    s.add_argument("--node-memory", required=True, help="memory of a node, e.g. 16Gi")
    s.add_argument(
        "--system-reserved",
        help="kube+system reserved and eviction: CPU,MEMORY (100m,1Gi) or a share (15%%); "
        "default: GKE's tiers",
    )
    s.add_argument("--daemonset-cpu", help="sum of DaemonSet CPU requests per node (default 200m)")
    s.add_argument("--daemonset-memory", help="sum of DaemonSet memory requests (default 512Mi)")
    s.add_argument("--workload", default="pyspark", choices=["pyspark", "jvm"])
    s.add_argument("--executors-per-node", type=int, help="default: at most 5 task slots each")
    s.add_argument("--json", action="store_true", help="print the Spark properties as JSON")
    s.set_defaults(func=cmd_size)

    a = sub.add_parser("apply", help="server-side apply the overlay to the cluster")
    _cluster_args(a, connect)
    a.add_argument("--component", action="append", choices=COMPONENTS, help="only these parts")
    a.add_argument("--force-conflicts", action="store_true", help="take over conflicting fields")
    a.add_argument("--dry-run", action="store_true", help="server-side dry run: validate only")
    a.set_defaults(func=cmd_apply)

    st = sub.add_parser("status", help="state of the jobs and router, and why anything is stuck")
    _cluster_args(st, connect)
    st.add_argument("--wait", type=float, metavar="SECONDS", help="poll until healthy or timeout")
    st.set_defaults(func=cmd_status)

    lg = sub.add_parser("logs", help="the Spark driver's log")
    _cluster_args(lg, connect)
    lg.add_argument("--job", default="stream", choices=["stream", "train"])
    lg.add_argument("--tail", type=int, help="only the last N lines")
    lg.add_argument("--previous", action="store_true", help="the previous (crashed) container")
    lg.set_defaults(func=cmd_logs)

    d = sub.add_parser("delete", help="delete what apply created (keeps data unless --purge)")
    _cluster_args(d, connect)
    d.add_argument("--component", action="append", choices=COMPONENTS, help="only these parts")
    d.add_argument(
        "--purge", action="store_true", help="also the work volume, namespace and priority classes"
    )
    d.set_defaults(func=cmd_delete)
    return k8s
