"""``airpath k8s …``: the handlers as the main CLI will call them."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from k8s_helpers import pod, with_status

from airpath.deploy import FakeCluster, KubeClient, LayerError
from airpath.deploy.cli import add_k8s_parser
from airpath.deploy.ops import APP_LABEL
from airpath.errors import AirpathError, InputError

Connect = Callable[[str | None, str | None], KubeClient]


def run(argv: list[str], connect: Connect | None = None) -> int:
    parser = argparse.ArgumentParser(prog="airpath")
    sub = parser.add_subparsers(dest="command", required=True)
    if connect is None:
        add_k8s_parser(sub)
    else:
        add_k8s_parser(sub, connect=connect)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_render_writes_one_file_per_resource(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["k8s", "render", "--overlay", "dev", "--out", str(tmp_path)]) == 0
    files = sorted(tmp_path.glob("*.yaml"))
    assert len(files) == 26
    assert files[0].name == "00-namespace-airpath-dev.yaml"
    assert "wrote 26 manifests for dev" in capsys.readouterr().err


def test_render_without_out_prints_one_stream(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["k8s", "render", "--overlay", "prod", "--set", "train.enabled=false"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    assert len(docs) == 29
    assert "ScheduledSparkApplication" not in {d["kind"] for d in docs}


def test_render_explain_says_which_layer_set_each_value(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["k8s", "render", "--overlay", "prod", "--explain"]) == 0
    out = capsys.readouterr().out
    assert (
        "stream.executor.instances = 4  ← overlays/prod/job.yaml  (was 2 from base/job.yaml)" in out
    )
    assert 'cluster.sparkConf["spark.eventLog.dir"] = ' in out
    assert (
        "airpath-stream: driver 1 CPU 2g+819m on onDemand; 4 executors × 4 slots, 3600m CPU" in out
    )


def test_an_invalid_layer_fails_with_one_line() -> None:
    with pytest.raises(LayerError) as info:
        run(
            [
                "k8s",
                "render",
                "--overlay",
                "prod",
                "--set",
                "stream.sparkConf.spark.master=local[*]",
            ]
        )
    assert isinstance(info.value, AirpathError)
    assert isinstance(info.value, InputError)
    assert "\n" not in str(info.value)
    assert "spark.master" in str(info.value)


def test_size(capsys: pytest.CaptureFixture[str]) -> None:
    node = ["--node-cores", "4", "--node-memory", "16Gi", "--system-reserved", "100m,1Gi"]
    argv = ["k8s", "size", *node, "--daemonset-cpu", "500m", "--daemonset-memory", "1Gi"]
    assert run(argv) == 0
    out = capsys.readouterr().out
    assert "--conf spark.kubernetes.executor.request.cores=3400m" in out
    assert "heap 10g + overhead 4g" in out
    assert run([*argv, "--json", "--workload", "jvm"]) == 0
    conf = json.loads(capsys.readouterr().out)
    assert conf["spark.executor.memoryOverheadFactor"] == "0.1"
    assert conf["executorsPerNode"] == 1


def test_size_refuses_what_cannot_schedule() -> None:
    from airpath.deploy import SizingError

    with pytest.raises(SizingError, match="nothing is free"):
        run(["k8s", "size", "--node-cores", "1", "--node-memory", "4Gi", "--daemonset-cpu", "1"])
    with pytest.raises(SizingError, match="CPU,MEMORY"):
        run(
            [
                "k8s",
                "size",
                "--node-cores",
                "4",
                "--node-memory",
                "16Gi",
                "--system-reserved",
                "1Gi",
            ]
        )


def test_apply_status_logs_delete(
    cluster: FakeCluster, connect: Connect, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["k8s", "apply", "--overlay", "dev"], connect) == 0
    assert "applied SparkApplication/airpath-stream" in capsys.readouterr().out
    assert cluster.get("SparkApplication", "airpath-stream", "airpath-dev") is not None

    assert run(["k8s", "status", "--overlay", "dev"], connect) == 1  # nothing runs yet
    assert "SparkApplication airpath-stream: NEW" in capsys.readouterr().out

    app = cluster.get("SparkApplication", "airpath-stream", "airpath-dev")
    cluster.put(with_status(app, {"applicationState": {"state": "RUNNING"}}))  # type: ignore[arg-type]
    labels = {APP_LABEL: "airpath-stream", "spark-role": "driver"}
    cluster.put(pod("airpath-stream-driver", "airpath-dev", labels))
    for name in ("airpath-router", "airpath-redis"):
        dep = cluster.get("Deployment", name, "airpath-dev")
        cluster.put(with_status(dep, {"replicas": 1, "readyReplicas": 1}))  # type: ignore[arg-type]
    assert run(["k8s", "status", "--overlay", "dev", "--wait", "5"], connect) == 0
    capsys.readouterr()

    cluster.put_log("airpath-dev", "airpath-stream-driver", "spark-kubernetes-driver", "batch 7")
    assert run(["k8s", "logs", "--overlay", "dev", "--tail", "10"], connect) == 0
    assert capsys.readouterr().out == "batch 7\n"

    assert run(["k8s", "delete", "--overlay", "dev", "--component", "stream"], connect) == 0
    assert capsys.readouterr().out == "deleted SparkApplication/airpath-stream\n"
    assert (
        run(["k8s", "apply", "--overlay", "dev", "--component", "stream", "--dry-run"], connect)
        == 0
    )
    assert "(server dry run)" in capsys.readouterr().out
    assert cluster.get("SparkApplication", "airpath-stream", "airpath-dev") is None


def test_unknown_commands_and_choices_are_usage_errors() -> None:
    with pytest.raises(SystemExit):
        run(["k8s", "apply", "--overlay", "dev", "--component", "everything"])
    with pytest.raises(SystemExit):
        run(["k8s"])
