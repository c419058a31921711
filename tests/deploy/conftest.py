"""Fixtures for the deployment tests: rendered overlays, strict CRD validators, a fake
cluster behind the official client."""

from __future__ import annotations

from collections.abc import Callable

import jsonschema
import pytest
import yaml
from k8s_helpers import CRD_DIR, CRD_FILES, strictify

from airpath.deploy import FakeCluster, KubeClient, Rendered, render


@pytest.fixture(scope="session")
def crd_validators() -> dict[str, jsonschema.Draft202012Validator]:
    """Strict validators of the Spark Operator's kinds, from its published CRDs."""
    if not CRD_DIR.is_dir():
        pytest.skip(
            f"needs the Spark Operator CRDs at {CRD_DIR} (the shared schemas beside the "
            "repository); not present on this machine"
        )
    validators = {}
    for kind, name in CRD_FILES.items():
        # 0.8 MB each: libyaml parses them several times faster than pure Python.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        crd = yaml.load((CRD_DIR / name).read_text(), Loader=loader)
        schema = strictify(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
        validators[kind] = jsonschema.Draft202012Validator(schema)
    return validators


@pytest.fixture(scope="session")
def rendered() -> dict[str, Rendered]:
    """Both shipped overlays, rendered and validated once per run."""
    return {overlay: render(overlay) for overlay in ("dev", "prod")}


@pytest.fixture
def cluster() -> FakeCluster:
    return FakeCluster()


@pytest.fixture
def client(cluster: FakeCluster) -> KubeClient:
    return KubeClient(cluster.api_client())


@pytest.fixture
def connect(client: KubeClient) -> Callable[[str | None, str | None], KubeClient]:
    def connect(kubeconfig: str | None, context: str | None) -> KubeClient:
        assert kubeconfig is None
        assert context is None
        return client

    return connect
