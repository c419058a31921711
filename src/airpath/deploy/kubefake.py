"""An in-memory Kubernetes API server, plugged in under the official client.

:class:`FakeCluster` replaces the ``rest_client`` of a real ``kubernetes.client.ApiClient``
(the transport), so everything above it — request serialisation, authentication hooks,
:class:`~airpath.deploy.kube.KubeClient`, the operations in :mod:`.ops` — runs as it
would against a cluster. It understands, for the kinds airpath uses:

* server-side apply (``PATCH``, ``application/apply-patch+yaml``): create or update,
  ``fieldManager`` required, field ownership per manager with conflicts (409) unless
  ``force=true``, fields a manager stops applying are removed, ``dryRun=All``;
  namespaced objects need their Namespace; a Job's pod template is immutable (422);
* ``GET`` of one object or a collection with ``labelSelector`` (``k=v``, ``k!=v``,
  ``k``), ``DELETE`` (owner-reference cascade, namespace contents), and pod logs
  (``container``, ``tailLines``, ``previous``);
* 404 for kinds whose CRD is not "installed" (``FakeCluster(served=...)``).

Ownership is tracked per leaf field with lists as atomic values, a simplification of the
API server's structured merge (``x-kubernetes-list-type: map`` merging is not modelled).
Tests seed what controllers would create (pods, statuses, logs) with :meth:`put`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import yaml
from kubernetes.client import ApiClient, Configuration

from airpath.deploy.kube import APPLY_PATCH, KINDS, Kind

Key = tuple[str, str, str, str]  # api_version, plural, namespace ("" if cluster-scoped), name
Leaf = tuple[str, ...]
_SERVER_META = ("uid", "resourceVersion", "generation", "creationTimestamp", "managedFields")


@dataclass
class FakeResponse:
    """What the official client reads from its transport."""

    status: int
    data: bytes
    reason: str = ""
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})

    def read(self) -> bytes:
        return self.data

    def getheaders(self) -> dict[str, str]:
        return self.headers

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name, default)


@dataclass(frozen=True)
class Request:
    """One request as the transport saw it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


def _status(code: int, reason: str, message: str) -> FakeResponse:
    body = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
            "message": message, "code": code}  # fmt: skip
    return FakeResponse(code, json.dumps(body).encode(), reason)


def _ok(code: int, obj: Any) -> FakeResponse:
    return FakeResponse(code, json.dumps(obj).encode(), "OK")


def _leaves(obj: Any, prefix: Leaf = ()) -> dict[Leaf, Any]:
    if isinstance(obj, Mapping) and obj:
        out: dict[Leaf, Any] = {}
        for k, v in obj.items():
            out |= _leaves(v, (*prefix, str(k)))
        return out
    return {prefix: obj}


def _tree(leaves: Mapping[Leaf, Any]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path, value in sorted(leaves.items()):
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = json.loads(json.dumps(value))
    return root


def _desired(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` without what the server owns (status, server metadata)."""
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in dict(obj.get("metadata", {})).items() if k not in _SERVER_META}
    out["metadata"] = meta
    return out


def _matches(labels: Mapping[str, str], selector: str | None) -> bool:
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k) == v:
                return False
        elif "=" in term:
            k, v = term.split("=", 1)
            if labels.get(k) != v.lstrip("="):
                return False
        elif term not in labels:
            return False
    return True


class FakeCluster:
    """The in-memory API server (see the module doc)."""

    def __init__(self, *, served: Iterable[str] | None = None) -> None:
        self.objects: dict[Key, dict[str, Any]] = {}
        self.owners: dict[Key, dict[str, set[Leaf]]] = {}
        self.pod_logs: dict[tuple[str, str, str, bool], str] = {}
        self.requests: list[Request] = []
        self.served = set(served) if served is not None else {k.kind for k in KINDS.values()}
        self._counter = itertools.count(1)

    # -- plumbing -------------------------------------------------------------------
    def api_client(self) -> ApiClient:
        """A real ``ApiClient`` whose transport is this fake."""
        configuration = Configuration()
        configuration.host = "https://kubernetes.fake"
        api = ApiClient(configuration)
        api.rest_client = self  # type: ignore[assignment]  # duck-typed transport
        return api

    def _kind(self, api_version: str, plural: str) -> Kind | None:
        for kind in KINDS.values():
            if kind.api_version == api_version and kind.plural == plural:
                return kind if kind.kind in self.served else None
        return None

    @staticmethod
    def key(obj: Mapping[str, Any]) -> Key:
        kind = KINDS[obj["kind"]]
        meta = obj["metadata"]
        return (
            kind.api_version,
            kind.plural,
            meta.get("namespace", "") if kind.namespaced else "",
            meta["name"],
        )

    # -- seeding, as controllers and the kubelet would --------------------------------
    def put(
        self, obj: Mapping[str, Any], manager: str = "kube-controller-manager"
    ) -> dict[str, Any]:
        key = self.key(obj)
        stored = json.loads(json.dumps(obj))
        stored.setdefault("metadata", {}).update(self._server_meta(key, stored))
        self.objects[key] = stored
        self.owners.setdefault(key, {})[manager] = set(_leaves(_desired(stored)))
        return stored

    def put_log(
        self, namespace: str, pod: str, container: str, text: str, *, previous: bool = False
    ) -> None:
        self.pod_logs[(namespace, pod, container, previous)] = text

    def get(self, kind: str, name: str, namespace: str = "") -> dict[str, Any] | None:
        k = KINDS[kind]
        return self.objects.get((k.api_version, k.plural, namespace if k.namespaced else "", name))

    def _server_meta(self, key: Key, obj: Mapping[str, Any]) -> dict[str, Any]:
        old = self.objects.get(key)
        old_meta = old["metadata"] if old else {}
        generation = old_meta.get("generation", 0)
        if old is None or old.get("spec") != obj.get("spec"):
            generation += 1
        return {
            "uid": old_meta.get("uid") or f"00000000-0000-0000-0000-{next(self._counter):012d}",
            "resourceVersion": str(next(self._counter)),
            "generation": generation,
            "creationTimestamp": old_meta.get("creationTimestamp", "2026-01-01T00:00:00Z"),
        }

    # -- the transport ---------------------------------------------------------------
    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        post_params: Any = None,  # noqa: ARG002 - the transport's signature
        _request_timeout: Any = None,
    ) -> FakeResponse:
        parsed = urlparse(url)
        query = parse_qs(parsed.query)
        self.requests.append(Request(method, parsed.path, query, dict(headers or {})))
        parts = parsed.path.strip("/").split("/")
        if parts[0] == "api":
            api_version, rest = parts[1], parts[2:]
        else:
            api_version, rest = f"{parts[1]}/{parts[2]}", parts[3:]
        namespace = ""
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        kind = self._kind(api_version, rest[0])
        if kind is None:
            return _status(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else ""
        key = (api_version, kind.plural, namespace, name or "")
        if method == "PATCH":
            return self._apply(kind, key, dict(headers or {}), body, query)
        if method == "GET" and sub == "log":
            return self._log(key, query)
        if method == "GET" and name:
            obj = self.objects.get(key)
            return (
                _ok(200, obj)
                if obj
                else _status(404, "NotFound", f'{kind.plural} "{name}" not found')
            )
        if method == "GET":
            return self._list(kind, namespace, query)
        if method == "DELETE" and name:
            return self._delete(kind, key)
        return _status(405, "MethodNotAllowed", f"{method} {parsed.path}")

    def _apply(
        self, kind: Kind, key: Key, headers: dict[str, str], body: Any, query: dict[str, list[str]]
    ) -> FakeResponse:
        if headers.get("Content-Type") != APPLY_PATCH:
            return _status(415, "UnsupportedMediaType", f"only {APPLY_PATCH} is served here")
        manager = (query.get("fieldManager") or [""])[0]
        if not manager:
            return _status(400, "BadRequest", "fieldManager is required for apply requests")
        validation = (query.get("fieldValidation") or ["Strict"])[0]
        if validation not in ("Ignore", "Warn", "Strict"):
            return _status(400, "BadRequest", f"invalid fieldValidation {validation!r}")
        obj = yaml.safe_load(body if isinstance(body, str | bytes) else json.dumps(body))
        meta = obj.get("metadata", {})
        if obj.get("apiVersion") != kind.api_version or obj.get("kind") != kind.kind:
            return _status(400, "BadRequest", "apiVersion/kind do not match the URL")
        if meta.get("name") != key[3] or (
            kind.namespaced and meta.get("namespace", key[2]) != key[2]
        ):
            return _status(400, "BadRequest", "metadata.name/namespace do not match the URL")
        if kind.namespaced and ("v1", "namespaces", "", key[2]) not in self.objects:
            return _status(404, "NotFound", f'namespaces "{key[2]}" not found')
        force = query.get("force") == ["true"]
        current = self.objects.get(key)
        owners = {m: set(p) for m, p in self.owners.get(key, {}).items()}
        applied = _leaves(_desired(obj))
        have = _leaves(_desired(current)) if current else {}
        conflicts = sorted(
            ".".join(p) for p, v in applied.items()
            if p in have and have[p] != v
            and any(p in paths for m, paths in owners.items() if m != manager)
        )  # fmt: skip
        if conflicts and not force:
            return _status(409, "Conflict", f"Apply failed with {len(conflicts)} conflicts: "
                           f"{', '.join(conflicts)}")  # fmt: skip
        for m, paths in owners.items():
            if m != manager:
                paths -= set(applied) if force else set()
        leaves = dict(have)
        others = set().union(*(p for m, p in owners.items() if m != manager)) if owners else set()
        for path in owners.get(manager, set()) - set(applied) - others:
            leaves.pop(path, None)
        leaves |= applied
        new = _tree(leaves)
        old_template = (current or {}).get("spec", {}).get("template")
        if kind.kind == "Job" and current and old_template != new.get("spec", {}).get("template"):
            return _status(422, "Invalid", "spec.template: field is immutable")
        if current is not None and "status" in current:
            new["status"] = current["status"]
        new["metadata"].update(self._server_meta(key, new))
        owners[manager] = set(applied)
        new["metadata"]["managedFields"] = [
            {"manager": m, "operation": "Apply" if m == manager else "Update"}
            for m in sorted(owners)
        ]
        if query.get("dryRun") != ["All"]:
            self.objects[key] = new
            self.owners[key] = owners
        return _ok(200 if current else 201, new)

    def _list(self, kind: Kind, namespace: str, query: dict[str, list[str]]) -> FakeResponse:
        selector = query.get("labelSelector", [""])[0] or None
        items = [
            obj
            for (av, plural, ns, _), obj in sorted(self.objects.items())
            if (av, plural) == (kind.api_version, kind.plural)
            and (not namespace or ns == namespace)
            and _matches(obj.get("metadata", {}).get("labels", {}), selector)
        ]
        return _ok(
            200, {"apiVersion": kind.api_version, "kind": f"{kind.kind}List", "items": items}
        )

    def _delete(self, kind: Kind, key: Key) -> FakeResponse:
        obj = self.objects.pop(key, None)
        if obj is None:
            return _status(404, "NotFound", f'{kind.plural} "{key[3]}" not found')
        self.owners.pop(key, None)
        uid = obj["metadata"].get("uid")
        for other_key, other in list(self.objects.items()):
            refs = other.get("metadata", {}).get("ownerReferences", [])
            in_namespace = kind.kind == "Namespace" and other_key[2] == key[3]
            if in_namespace or any(r.get("uid") == uid for r in refs):
                self._delete(KINDS[other["kind"]], other_key)
        return _ok(200, {"kind": "Status", "apiVersion": "v1", "status": "Success"})

    def _log(self, key: Key, query: dict[str, list[str]]) -> FakeResponse:
        pod = self.objects.get(key)
        if pod is None:
            return _status(404, "NotFound", f'pods "{key[3]}" not found')
        containers = [c["name"] for c in pod.get("spec", {}).get("containers", [])]
        container = (query.get("container") or containers[:1] or [""])[0]
        previous = query.get("previous") == ["true"]
        text = self.pod_logs.get((key[2], key[3], container, previous))
        if text is None:
            what = "previous terminated container" if previous else "container"
            return _status(400, "BadRequest", f'{what} "{container}" has no log here')
        tail = query.get("tailLines")
        if tail:
            text = "".join(text.splitlines(keepends=True)[-int(tail[0]) :])
        return FakeResponse(200, text.encode(), "OK", {"Content-Type": "text/plain"})
