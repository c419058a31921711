# Tasks outside the Python test suite (which runs with `bash .ci/run`).
#
#   make image     build the container image (deploy/Dockerfile)
#   make e2e-k8s   render → apply → status → logs → delete on a real cluster: the current
#                  kubeconfig context, or kind with KIND_CLUSTER=name (deploy/e2e-k8s.sh);
#                  skips cleanly when no cluster is reachable

IMAGE ?= airpath:dev

.PHONY: image e2e-k8s

image:
	docker build -f deploy/Dockerfile -t $(IMAGE) .

e2e-k8s:
	AIRPATH_E2E_IMAGE=$(IMAGE) deploy/e2e-k8s.sh
