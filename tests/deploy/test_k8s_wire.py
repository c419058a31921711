"""What the official client really puts on the wire (urllib3, no fake transport).

The fake cluster replaces the transport; this checks the transport itself against a local
HTTP server: the apply body is the manifest as JSON (valid YAML, not a JSON-encoded
string), the content type, the query, and that DELETE carries real ``DeleteOptions``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kubernetes.client import ApiClient, Configuration

from airpath.deploy import KubeClient, Rendered
from airpath.deploy.kube import APPLY_PATCH, KINDS

Seen = list[dict[str, Any]]


class _Handler(BaseHTTPRequestHandler):
    seen: Seen

    def _record(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        entry = {
            "method": self.command,
            "path": self.path,
            "headers": dict(self.headers),
            "body": body,
        }
        self.seen.append(entry)
        return entry

    def _send(self, status: int, payload: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_PATCH(self) -> None:
        entry = self._record()
        obj = json.loads(entry["body"])
        obj.setdefault("metadata", {})["generation"] = 1
        self._send(201, json.dumps(obj).encode())

    def do_DELETE(self) -> None:
        self._record()
        self._send(200, b'{"kind": "Status", "status": "Success"}')

    def do_GET(self) -> None:
        entry = self._record()
        if entry["path"].split("?")[0].endswith("/log"):
            self._send(200, b"line 1\nline 2\n", "text/plain")
        else:
            self._send(404, b'{"kind": "Status", "reason": "NotFound", "message": "nope"}')

    def log_message(self, format: str, *args: Any) -> None:  # noqa: ARG002 - quiet tests
        return


@pytest.fixture
def server() -> Iterator[tuple[KubeClient, Seen]]:
    seen: Seen = []
    handler = type("Handler", (_Handler,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    configuration = Configuration()
    configuration.host = f"http://127.0.0.1:{httpd.server_address[1]}"
    api = ApiClient(configuration)
    try:
        yield KubeClient(api), seen
    finally:
        api.close()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_apply_delete_get_and_logs_on_the_wire(
    server: tuple[KubeClient, Seen], rendered: dict[str, Rendered]
) -> None:
    client, seen = server
    app = next(m for m in rendered["prod"].manifests if m["kind"] == "SparkApplication")
    result = client.apply(app, force=True)
    assert result["metadata"]["generation"] == 1
    patch = seen[-1]
    assert patch["headers"]["Content-Type"] == APPLY_PATCH
    assert patch["path"] == (
        "/apis/sparkoperator.k8s.io/v1beta2/namespaces/airpath/sparkapplications/airpath-stream"
        "?fieldManager=airpath&fieldValidation=Strict&force=true"
    )
    assert json.loads(patch["body"]) == app

    assert client.delete(KINDS["SparkApplication"], "airpath-stream", "airpath") is True
    assert json.loads(seen[-1]["body"])["propagationPolicy"] == "Background"

    assert client.get(KINDS["Deployment"], "nope", "airpath") is None
    log = client.logs("airpath-stream-driver", "airpath", container="spark-kubernetes-driver",
                      tail_lines=2)  # fmt: skip
    assert log == "line 1\nline 2\n"
    assert seen[-1]["path"].endswith("/log?container=spark-kubernetes-driver&tailLines=2")
