"""The operations on a real cluster: ``make e2e-k8s`` (kind, or any kubeconfig).

Opt-in (``AIRPATH_E2E_K8S=1``, which ``make e2e-k8s`` sets) so that the test suite never
touches whatever cluster a developer's kubeconfig points at. Skips, saying why, when no
kubeconfig or cluster is reachable or the Spark Operator's CRDs are missing. Runs the
dev overlay in its own namespace (``AIRPATH_E2E_NAMESPACE``, default ``airpath-e2e``):
server-side dry run, apply, status (optionally waiting for health), driver logs, delete.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from airpath.deploy import (
    ClusterError,
    KubeClient,
    KubeconfigError,
    Rendered,
    connect_kubeconfig,
    render,
)
from airpath.deploy.kube import KINDS, Kind
from airpath.deploy.layers import packaged_layers
from airpath.deploy.ops import apply_all, delete_all, driver_logs, status_report, wait_healthy

pytestmark = pytest.mark.skipif(
    os.environ.get("AIRPATH_E2E_K8S") != "1",
    reason="opt-in: `make e2e-k8s` (AIRPATH_E2E_K8S=1) runs this against a real cluster",
)
CRD = Kind("apiextensions.k8s.io/v1", "CustomResourceDefinition", "customresourcedefinitions",
           namespaced=False)  # fmt: skip


@pytest.fixture(scope="module")
def client() -> KubeClient:
    try:
        client = connect_kubeconfig(os.environ.get("KUBECONFIG") or None,
                                    os.environ.get("AIRPATH_E2E_CONTEXT") or None)  # fmt: skip
        client.get(KINDS["Namespace"], "default")
    except (KubeconfigError, ClusterError) as exc:
        pytest.skip(f"no reachable cluster: {exc}")
    if client.get(CRD, "sparkapplications.sparkoperator.k8s.io") is None:
        pytest.skip("the Spark Operator is not installed (docs/kubernetes.md, step 2)")
    return client


@pytest.fixture(scope="module")
def layers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped layers with the e2e namespace as the dev overlay's policy."""
    root = tmp_path_factory.mktemp("layers") / "layers"
    shutil.copytree(str(packaged_layers()), root)
    namespace = os.environ.get("AIRPATH_E2E_NAMESPACE", "airpath-e2e")
    (root / "overlays" / "dev" / "namespace.yaml").write_text(f"namespace:\n  name: {namespace}\n")
    return root


@pytest.fixture(scope="module")
def deployment(client: KubeClient, layers: Path) -> Iterator[Rendered]:
    sets = [f"cluster.image={os.environ.get('AIRPATH_E2E_IMAGE', 'airpath:dev')}"]
    if client.get(CRD, "podmonitors.monitoring.coreos.com") is None:
        sets.append("cluster.monitoring.enabled=false")
    rendered = render("dev", layers_dir=layers, sets=sets)
    yield rendered
    delete_all(client, rendered.manifests, purge=True)


def test_apply_status_logs_delete(client: KubeClient, deployment: Rendered) -> None:
    rendered = deployment
    plan = rendered.plan
    dry = apply_all(client, rendered.manifests[:1], dry_run=True)
    assert dry[0].endswith("(server dry run)")
    lines = apply_all(client, rendered.manifests)
    assert len(lines) == len(rendered.manifests)
    app = client.get(KINDS["SparkApplication"], plan.stream.name, plan.namespace)
    assert app is not None
    assert app["spec"]["executor"]["instances"] == plan.stream.instances

    wait_s = float(os.environ.get("AIRPATH_E2E_WAIT_S", "0"))
    report = wait_healthy(client, plan, wait_s) if wait_s else status_report(client, plan)
    print("\n".join(report.lines))
    assert report.lines[0].startswith(f"SparkApplication {plan.stream.name}: ")
    try:
        logs = driver_logs(client, plan, tail=20)
    except ClusterError as exc:  # the driver may not have started yet
        logs = str(exc)
    print(logs)
    if wait_s:
        assert report.healthy, "\n".join(report.lines)
        assert "does not exist yet" not in logs

    deleted = delete_all(client, rendered.manifests)
    assert f"deleted SparkApplication/{plan.stream.name}" in deleted
    assert client.get(KINDS["SparkApplication"], plan.stream.name, plan.namespace) is None
