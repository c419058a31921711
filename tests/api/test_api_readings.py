"""POST /v1/readings: auth, rate limit, size limit, per-reading reasons, landing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from api_helpers import OTHER_TOKEN, TOKEN, AppFactory, assert_problem, landed_records
from fastapi.testclient import TestClient

from airpath.air.deadletters import read_dead_letters
from airpath.api.auth import RateLimiter, TokenAuth
from airpath.api.readings import ReadingsReceipt
from airpath.sensors.landing import MemoryLanding

Reading = Callable[..., dict[str, Any]]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_missing_or_unknown_token_is_401(client: TestClient, reading: Reading) -> None:
    body = assert_problem(client.post("/v1/readings", json=reading()), 401, "unauthorized")
    assert "Bearer" in body["detail"]
    r = client.post("/v1/readings", json=reading(), headers={"Authorization": "Bearer nope"})
    assert_problem(r, 401, "unauthorized")
    assert r.headers["www-authenticate"] == 'Bearer realm="airpath", error="invalid_token"'
    r = client.post("/v1/readings", json=reading(), headers={"Authorization": f"Basic {TOKEN}"})
    assert_problem(r, 401, "unauthorized")


def test_token_comparison() -> None:
    auth = TokenAuth({TOKEN: "a", OTHER_TOKEN: "b"})
    assert auth.partner(TOKEN) == "a"
    assert auth.partner(OTHER_TOKEN) == "b"
    assert auth.partner(TOKEN[:-1]) is None
    assert auth.partner(TOKEN + "x") is None
    assert auth.partner("\udcff") is None  # a lone surrogate must not raise


def test_rate_limit_is_per_token_with_retry_after(make_app: AppFactory, reading: Reading) -> None:
    app = make_app(readings_burst=2, readings_rate_per_s=0.01)
    with TestClient(app) as client:
        codes = [
            client.post("/v1/readings", json=reading(), headers=AUTH).status_code for _ in "abc"
        ]
        assert codes == [202, 202, 429]
        r = client.post("/v1/readings", json=reading(), headers=AUTH)
        assert_problem(r, 429, "rate-limited")
        assert 1 <= int(r.headers["retry-after"]) <= 100  # 1 token at 0.01/s
        other = {"Authorization": f"Bearer {OTHER_TOKEN}"}
        assert client.post("/v1/readings", json=reading(), headers=other).status_code == 202


def test_token_bucket_refills() -> None:
    t = [0.0]
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=lambda: t[0])
    assert [limiter.take("k") for _ in range(4)] == [0.0, 0.0, 0.0, 0.5]
    t[0] = 0.5
    assert limiter.take("k") == 0.0
    assert limiter.take("k") == pytest.approx(0.5)


def test_body_size_limit_is_413(make_app: AppFactory, reading: Reading, tmp_path: Path) -> None:
    with TestClient(make_app(max_body_bytes=2000)) as client:
        big = json.dumps([reading(sensor_id=f"s{k}") for k in range(40)]).encode()
        assert_problem(client.post("/v1/readings", content=big, headers=AUTH), 413)

        def chunks() -> Iterator[bytes]:  # no Content-Length: chunked transfer
            yield from (big[k : k + 500] for k in range(0, len(big), 500))

        r = client.post("/v1/readings", content=chunks(), headers=AUTH)
        assert_problem(r, 413, "payload-too-large")
    assert landed_records(tmp_path / "landing") == []


def test_each_reading_gets_a_verdict(client: TestClient, reading: Reading, tmp_path: Path) -> None:
    good = [reading(sensor_id="a"), reading(sensor_id="b", unit="ppb", value=10.0)]
    batch = [
        good[0],
        reading(time="2020-01-01T00:00:00Z"),  # stale
        reading(lat=48.85, lon=2.35),  # Paris: outside the network
        reading(pollutant="so2"),
        reading(time="2026-05-01T08:00:00"),  # no time zone
        good[1],
        dict(good[0]),  # same sensor, time and pollutant: a duplicate
        reading(sensor_kind="satellite"),
        {"sensor_id": "x"},
    ]
    r = client.post("/v1/readings", json=batch, headers=AUTH)
    assert r.status_code == 202, r.text
    receipt = ReadingsReceipt.model_validate(r.json())
    assert (receipt.received, receipt.accepted, receipt.rejected) == (9, 2, 7)
    assert receipt.partner == "citizen-lab"
    reasons = {x.index: x.reason for x in receipt.rejections}
    assert reasons == {
        1: "stale_timestamp",
        2: "outside_area",
        3: "unknown_pollutant",
        4: "missing_timestamp",
        6: "duplicate",
        7: "unknown_sensor_kind",
        8: "malformed",
    }
    assert receipt.reasons["duplicate"] == 1
    assert receipt.dead_lettered
    assert landed_records(tmp_path / "landing") == good
    dead = read_dead_letters(tmp_path / "landing-rejected")
    assert sorted(dead["reason"]) == sorted(reasons.values())
    assert set(dead["source"]) == {f"http:citizen-lab:{k}" for k in reasons}


def test_json_lines_and_bad_json_lines(
    client: TestClient, reading: Reading, tmp_path: Path
) -> None:
    text = "\n".join([json.dumps(reading(sensor_id="a")), "{oops", "", json.dumps(reading())])
    r = client.post(
        "/v1/readings",
        content=text.encode(),
        headers={**AUTH, "Content-Type": "application/x-ndjson"},
    )
    assert r.status_code == 202
    assert r.json()["accepted"] == 2
    assert r.json()["rejections"][0]["index"] == 1
    assert r.json()["rejections"][0]["reason"] == "malformed"
    assert len(landed_records(tmp_path / "landing")) == 2


def test_nothing_valid_is_422_with_reasons(
    client: TestClient, reading: Reading, tmp_path: Path
) -> None:
    r = client.post("/v1/readings", json=[reading(value=-50.0)], headers=AUTH)
    body = assert_problem(r, 422, "no-valid-readings")
    assert body["rejections"] == [
        {"index": 0, "reason": "out_of_range", "message": body["rejections"][0]["message"]}
    ]
    for payload in (b"", b"[]", b"not json", b"42"):
        assert_problem(client.post("/v1/readings", content=payload, headers=AUTH), 422)
    assert landed_records(tmp_path / "landing") == []
    assert len(read_dead_letters(tmp_path / "landing-rejected")) == 4  # "[]" holds nothing


def test_ingest_off_without_landing_directory(make_app: AppFactory, reading: Reading) -> None:
    with TestClient(make_app(landing_dir=None)) as client:
        r = client.post("/v1/readings", json=reading(), headers=AUTH)
    assert_problem(r, 503, "ingest-disabled")


def test_readings_are_counted(client: TestClient, reading: Reading) -> None:
    client.post("/v1/readings", json=[reading(), reading(pollutant="so2")], headers=AUTH)
    text = client.get("/metrics").text
    assert 'airpath_readings_total{outcome="accepted",partner="citizen-lab"} 1.0' in text
    assert 'airpath_readings_total{outcome="rejected",partner="citizen-lab"} 1.0' in text


def test_landing_failure_accepts_nothing(make_app: AppFactory, reading: Reading) -> None:
    app = make_app()
    landing = MemoryLanding()
    landing.failing = True  # as a full disk would
    app.state.ctx.landing = landing
    with TestClient(app) as client:
        r = client.post("/v1/readings", json=[reading()], headers=AUTH)
        assert_problem(r, 503, "landing-failed")
        assert r.headers["retry-after"] == "5"
        landing.failing = False
        assert client.post("/v1/readings", json=[reading()], headers=AUTH).status_code == 202
    assert len(landing.lines) == 1


def test_dead_letter_failure_still_accepts(
    make_app: AppFactory, reading: Reading, tmp_path: Path
) -> None:
    app = make_app()

    class Broken:
        def write(self, _rejected: object) -> None:
            raise OSError("disk full")

    app.state.ctx.dead_letters = Broken()
    with TestClient(app) as client:
        r = client.post("/v1/readings", json=[reading(), reading(pollutant="so2")], headers=AUTH)
    assert r.status_code == 202
    assert r.json()["dead_lettered"] is False
    assert r.json()["rejections"][0]["reason"] == "unknown_pollutant"
    assert len(landed_records(tmp_path / "landing")) == 1
