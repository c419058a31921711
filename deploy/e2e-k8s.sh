#!/usr/bin/env bash
# End-to-end on a real cluster: render the dev overlay, server-side apply it, read the
# status and the driver's log, delete it (tests/deploy/test_k8s_e2e.py). Used by
# `make e2e-k8s`; see docs/kubernetes.md, "End-to-end test".
#
# The cluster is the current kubeconfig context (KUBECONFIG, AIRPATH_E2E_CONTEXT), or a
# kind cluster created on demand when KIND_CLUSTER is set and `kind` is installed. No
# reachable cluster: the test skips and this exits 0.
#
#   KIND_CLUSTER=airpath make e2e-k8s              # kind: create, build, load, run
#   AIRPATH_E2E_IMAGE=reg/airpath:0.1.0 make e2e-k8s   # any cluster that can pull the image
#
# Variables: AIRPATH_E2E_IMAGE (default airpath:dev), BUILD_IMAGE=0 to skip the docker
# build, INSTALL_OPERATOR=1 to helm-install the Spark Operator when its CRDs are missing,
# AIRPATH_E2E_WAIT_S to wait (seconds) until everything is healthy, AIRPATH_E2E_NAMESPACE.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PY:-.venv/bin/python}
IMAGE=${AIRPATH_E2E_IMAGE:-airpath:dev}
NAMESPACE=${AIRPATH_E2E_NAMESPACE:-airpath-e2e}

if [ -n "${KIND_CLUSTER:-}" ] && command -v kind >/dev/null; then
  if ! kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
    kind create cluster --name "$KIND_CLUSTER" --config deploy/kind.yaml
  fi
  export AIRPATH_E2E_CONTEXT="kind-$KIND_CLUSTER"
fi

if [ "${BUILD_IMAGE:-1}" = 1 ] && command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  docker build -f deploy/Dockerfile -t "$IMAGE" .
  if [ -n "${KIND_CLUSTER:-}" ] && command -v kind >/dev/null; then
    kind load docker-image "$IMAGE" --name "$KIND_CLUSTER"
  fi
fi

if [ "${INSTALL_OPERATOR:-0}" = 1 ] && command -v helm >/dev/null && command -v kubectl >/dev/null \
   && ! kubectl ${AIRPATH_E2E_CONTEXT:+--context "$AIRPATH_E2E_CONTEXT"} get crd \
        sparkapplications.sparkoperator.k8s.io >/dev/null 2>&1; then
  helm repo add spark-operator https://kubeflow.github.io/spark-operator >/dev/null
  helm repo update spark-operator >/dev/null
  helm upgrade --install spark-operator spark-operator/spark-operator \
    ${AIRPATH_E2E_CONTEXT:+--kube-context "$AIRPATH_E2E_CONTEXT"} \
    --namespace spark-operator --create-namespace \
    --set "spark.jobNamespaces={$NAMESPACE}" --wait
fi

AIRPATH_E2E_K8S=1 AIRPATH_E2E_IMAGE="$IMAGE" AIRPATH_E2E_NAMESPACE="$NAMESPACE" \
  "$PY" -m pytest tests/deploy/test_k8s_e2e.py -v -rs -p no:cacheprovider
