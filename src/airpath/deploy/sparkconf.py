"""``sparkConf`` keys that have a CRD field: mapped onto that field, or refused.

The Spark Operator builds ``spark-submit`` from the SparkApplication's fields *after* its
``sparkConf``, so a key such as ``spark.executor.instances`` in ``sparkConf`` is silently
shadowed by ``spec.executor.instances``; and from operator v2.5 its admission webhook
rejects outright the keys that it manages itself — the master, container images,
service-account names, OAuth credentials, and a namespace other than the application's
(``internal/webhook/sparkconf_validator.go`` in kubeflow/spark-operator). A platform's
``spark-defaults.conf`` habitually sets exactly those, so each layer's ``sparkConf`` is
normalised when it is read: keys with a field are moved onto the airpath key that
renders that field (so the layer order still decides who wins, and ``--explain`` shows
it), keys nobody may set are refused with the reason, and values become strings.

A key in ``cluster.sparkConf`` that belongs to a job (sizes, service accounts) becomes a
cluster default for both jobs; dynamic-allocation keys go to the training job only,
because the streaming job never uses dynamic allocation (see ``spark.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airpath.deploy.errors import LayerError

JOBS = ("stream", "train")
_OPERATOR = "the Spark Operator sets it from the cluster it runs in"
_CREDENTIALS = "credentials are the service account's; the operator refuses tokens in sparkConf"
REFUSED: dict[str, str] = {
    "spark.master": _OPERATOR,
    "spark.kubernetes.driver.master": _OPERATOR,
    "spark.kubernetes.authenticate.oauthToken": _CREDENTIALS,
    "spark.kubernetes.authenticate.oauthTokenFile": _CREDENTIALS,
    "spark.kubernetes.authenticate.driver.oauthToken": _CREDENTIALS,
    "spark.kubernetes.authenticate.driver.oauthTokenFile": _CREDENTIALS,
    "spark.kubernetes.authenticate.executor.oauthToken": _CREDENTIALS,
    "spark.kubernetes.authenticate.executor.oauthTokenFile": _CREDENTIALS,
    "spark.kubernetes.driver.podTemplateFile": (
        "pod templates are rendered into spec.driver.template from the layers, and the "
        "operator writes the file"
    ),
    "spark.kubernetes.executor.podTemplateFile": (
        "pod templates are rendered into spec.executor.template from the layers, and the "
        "operator writes the file"
    ),
}
# sparkConf key -> (path under a job section, value type). The field each renders is in
# spark.py; e.g. executor.coreRequest -> spec.executor.coreRequest.
JOB_FIELDS: dict[str, tuple[tuple[str, ...], type]] = {
    "spark.kubernetes.container.image": (("image",), str),
    "spark.kubernetes.driver.container.image": (("driver", "image"), str),
    "spark.kubernetes.executor.container.image": (("executor", "image"), str),
    "spark.kubernetes.authenticate.driver.serviceAccountName": (("driver", "serviceAccount"), str),
    "spark.kubernetes.authenticate.executor.serviceAccountName": (
        ("executor", "serviceAccount"),
        str,
    ),
    "spark.driver.cores": (("driver", "cores"), int),
    "spark.kubernetes.driver.request.cores": (("driver", "coreRequest"), str),
    "spark.kubernetes.driver.limit.cores": (("driver", "coreLimit"), str),
    "spark.driver.memory": (("driver", "memory"), str),
    "spark.driver.memoryOverhead": (("driver", "memoryOverhead"), str),
    "spark.executor.instances": (("executor", "instances"), int),
    "spark.executor.cores": (("executor", "cores"), int),
    "spark.kubernetes.executor.request.cores": (("executor", "coreRequest"), str),
    "spark.kubernetes.executor.limit.cores": (("executor", "coreLimit"), str),
    "spark.executor.memory": (("executor", "memory"), str),
    "spark.executor.memoryOverhead": (("executor", "memoryOverhead"), str),
}
DYNAMIC_ALLOCATION: dict[str, tuple[tuple[str, ...], type]] = {
    "spark.dynamicAllocation.enabled": (("dynamicAllocation", "enabled"), bool),
    "spark.dynamicAllocation.minExecutors": (("dynamicAllocation", "minExecutors"), int),
    "spark.dynamicAllocation.maxExecutors": (("dynamicAllocation", "maxExecutors"), int),
    "spark.dynamicAllocation.initialExecutors": (("dynamicAllocation", "initialExecutors"), int),
    "spark.dynamicAllocation.shuffleTracking.enabled": (
        ("dynamicAllocation", "shuffleTracking"),
        bool,
    ),
}
STREAM_NO_DYNAMIC_ALLOCATION = (
    "the streaming job runs a fixed executor count: Spark's dynamic allocation is "
    "batch-oriented and removes executors idle between micro-batches, dropping their "
    "state-store instances (SPARK-24815)"
)
CLUSTER_FIELDS: dict[str, tuple[tuple[str, ...], type]] = {
    "spark.kubernetes.container.image": (("cluster", "image"), str),
    "spark.kubernetes.container.image.pullPolicy": (("cluster", "imagePullPolicy"), str),
}


def normalise_layer(data: dict[str, Any], source: str, kind: str) -> dict[str, Any]:
    """``data`` with every ``sparkConf`` map normalised (see the module doc)."""
    out = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in data.items()}
    if isinstance(out.get("cluster"), dict) and "sparkConf" in out["cluster"]:
        conf = out["cluster"]["sparkConf"]
        out["cluster"]["sparkConf"] = _normalise(out, conf, "cluster", source, kind)
    for job in JOBS:
        if isinstance(out.get(job), dict) and "sparkConf" in out[job]:
            conf = out[job]["sparkConf"]
            out[job]["sparkConf"] = _normalise(out, conf, job, source, kind)
    return out


def _normalise(
    layer: dict[str, Any], conf: Any, section: str, source: str, kind: str
) -> dict[str, Any] | None:
    if conf is None:
        return None
    if not isinstance(conf, Mapping):
        raise LayerError(f"layer {source}: {section}.sparkConf must be a mapping of key: value")
    kept: dict[str, Any] = {}
    for key, raw in conf.items():
        key = str(key)
        where = f"layer {source}: {section}.sparkConf key {key!r}"
        if key in REFUSED:
            raise LayerError(f"{where} is refused: {REFUSED[key]}")
        if key == "spark.kubernetes.namespace":
            if kind != "namespace":
                raise LayerError(
                    f"{where} is refused: the namespace is namespace.name, set by the "
                    "namespace layer"
                )
            _put(layer, ("namespace", "name"), _typed(raw, str, where), where)
            continue
        targets = _targets(key, section, where)
        if targets is None:
            kept[key] = None if raw is None else _string(raw)
            continue
        for path, tp in targets:
            _put(layer, path, None if raw is None else _typed(raw, tp, where), where)
    return kept


def _targets(key: str, section: str, where: str) -> list[tuple[tuple[str, ...], type]] | None:
    if section == "cluster":
        if key in CLUSTER_FIELDS:
            return [CLUSTER_FIELDS[key]]
        if key in JOB_FIELDS:
            path, tp = JOB_FIELDS[key]
            return [((job, *path), tp) for job in JOBS]
        if key in DYNAMIC_ALLOCATION:
            path, tp = DYNAMIC_ALLOCATION[key]
            return [(("train", *path), tp)]
        return None
    if key in CLUSTER_FIELDS and key not in JOB_FIELDS:
        raise LayerError(f"{where} is refused here: set cluster.imagePullPolicy instead")
    if key in JOB_FIELDS:
        path, tp = JOB_FIELDS[key]
        return [((section, *path), tp)]
    if key in DYNAMIC_ALLOCATION:
        if section == "stream":
            raise LayerError(f"{where} is refused: {STREAM_NO_DYNAMIC_ALLOCATION}")
        path, tp = DYNAMIC_ALLOCATION[key]
        return [((section, *path), tp)]
    return None


def _put(layer: dict[str, Any], path: tuple[str, ...], value: Any, where: str) -> None:
    node = layer
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise LayerError(f"{where}: {'.'.join(path)} is also set as a non-mapping")
        node = child
    if path[-1] in node and node[path[-1]] != value:
        raise LayerError(f"{where} maps to {'.'.join(path)}, which the same layer also sets")
    node[path[-1]] = value


def _string(raw: Any) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    if isinstance(raw, int | float | str):
        return str(raw)
    raise LayerError(f"sparkConf values must be scalars, got {type(raw).__name__}")


def _typed(raw: Any, tp: type, where: str) -> Any:
    text = _string(raw).strip()
    if tp is str:
        return text
    if tp is bool:
        if text.lower() not in ("true", "false"):
            raise LayerError(f"{where}: must be true or false, got {raw!r}")
        return text.lower() == "true"
    try:
        return int(text)
    except ValueError:
        raise LayerError(f"{where}: must be an integer, got {raw!r}") from None


def forwarded_session_conf(
    conf: Mapping[str, str], session_defaults: Mapping[str, str]
) -> dict[str, str]:
    """The sparkConf entries the streaming job's own session builder would override.

    ``airpath stream`` builds its SparkSession with :func:`airpath.pipeline.session.
    spark_settings`, whose keys win over ``spark-submit --conf`` (builder options are
    applied last). Those keys are therefore forwarded as ``--conf KEY=VALUE`` arguments,
    which the job applies after its own, whenever the layers set a different value.
    """
    skip = {"spark.master", "spark.app.name", "spark.sql.shuffle.partitions"}
    return {
        key: value
        for key, value in conf.items()
        if key in session_defaults and key not in skip and session_defaults[key] != value
    }
