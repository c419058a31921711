"""What the handlers of one app share: the network, its router, the field subscriber, the
ingest pieces and the metrics, built from :class:`ApiSettings` by :func:`build_context`.

One context per app, held in ``app.state``; nothing lives in module globals, so tests can
run several apps side by side.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from airpath.air.deadletters import DeadLetterWriter
from airpath.air.rules import Area
from airpath.api.auth import RateLimiter, TokenAuth
from airpath.api.metrics import ApiMetrics
from airpath.api.segments import SegmentIndex
from airpath.api.sensors_file import SensorsFile
from airpath.api.settings import ApiSettings
from airpath.network.store import Network, load_network
from airpath.routing.router import Router
from airpath.sensors.landing import Landing, LandingWriter
from airpath.serving import (
    FieldSnapshot,
    FieldStore,
    FieldSubscriber,
    network_key,
    open_store,
)


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass
class ApiContext:
    settings: ApiSettings
    network: Network
    network_key: str
    router: Router
    prior_version: str
    store: FieldStore | None
    subscriber: FieldSubscriber | None
    auth: TokenAuth
    limiter: RateLimiter
    landing: Landing | None
    dead_letters: DeadLetterWriter | None
    area: Area
    segments: SegmentIndex
    sensors: SensorsFile | None
    now: Callable[[], dt.datetime]
    metrics: ApiMetrics
    started: bool = False  # set by the app's lifespan once the subscriber runs
    # (version, model version) of the newest snapshot the subscriber applied
    applied: tuple[str, str] | None = field(default=None, repr=False)

    def on_applied(self, snapshot: FieldSnapshot) -> None:
        self.applied = (snapshot.version, snapshot.model_version)

    def field_info(
        self, version: str | None = None, valid_at: dt.datetime | None = None
    ) -> dict[str, Any]:
        """The :class:`~airpath.api.models.FieldInfo` dict of the field ``version`` (by
        default the router's newest), valid at ``valid_at``.

        Age and staleness come from the subscriber when it holds that version; otherwise
        (the priors, or a preset query still answered from the previous field while the
        new one is customised) the age is counted from ``valid_at``. The priors count as
        stale whenever the server has a freshness limit.
        """
        fld = self.router.field
        if version is None or valid_at is None:
            version, valid_at = fld.version, fld.valid_at
        max_age = self.settings.max_field_age_s or None
        status = self.subscriber.status() if self.subscriber is not None else None
        reachable = None if status is None else status.store_reachable
        info: dict[str, Any] = {
            "version": version,
            "valid_at": valid_at.isoformat(),
            "source": "prior" if version == self.prior_version else "store",
            "model_version": None,
            "freshness_s": None,
            "max_age_s": max_age,
            "store_reachable": reachable,
        }
        if status is not None and status.version == version and status.age_s is not None:
            age = status.age_s
            applied = self.applied
            if applied is not None and applied[0] == version:
                info["model_version"] = applied[1]
            info["freshness_s"] = status.freshness_s
        else:
            age = (self.now() - valid_at).total_seconds()
        info["age_s"] = round(age, 3)
        # The priors are annual means, never live data: stale whenever freshness matters.
        too_old = max_age is not None and (info["source"] == "prior" or age > max_age)
        info["stale"] = too_old or reachable is False
        return info

    def field_age_s(self) -> float:
        """Age of the newest field's data (what ``airpath_field_age_seconds`` shows)."""
        return float(self.field_info()["age_s"])


def build_context(settings: ApiSettings, *, now: Callable[[], dt.datetime] = utc_now) -> ApiContext:
    """Load the network and build the router and every helper the handlers use.

    The subscriber is made but not started: the app's lifespan starts and stops it.
    """
    network = load_network(settings.network_dir)
    key = network_key(network)
    router = Router(network, max_snap_m=settings.max_snap_m)
    router.warm_up()  # compiled kernels ready before the first request, not during it
    store = subscriber = None
    if settings.field_store is not None:
        store = open_store(settings.field_store, key)
        subscriber = FieldSubscriber(
            store,
            router,
            network_key=key,
            max_age_s=settings.max_field_age_s or float("inf"),
            poll_s=settings.field_poll_s,
            clock=now,
        )
    lon0, lat0, lon1, lat1 = (float(x) for x in network.manifest["bbox"])
    landing = dead = None
    if settings.landing_dir is not None:
        landing = LandingWriter(settings.landing_dir)
        if settings.dead_letter_dir is not None:
            dead = DeadLetterWriter(settings.dead_letter_dir, clock=now)
    ctx = ApiContext(
        settings=settings,
        network=network,
        network_key=key,
        router=router,
        prior_version=router.field.version,
        store=store,
        subscriber=subscriber,
        auth=TokenAuth(settings.tokens),
        limiter=RateLimiter(settings.readings_rate_per_s, settings.readings_burst),
        landing=landing,
        dead_letters=dead,
        area=Area(lon0, lat0, lon1, lat1),
        segments=SegmentIndex(network),
        sensors=None if settings.sensors_file is None else SensorsFile(settings.sensors_file),
        now=now,
        metrics=ApiMetrics(),
    )
    ctx.metrics.track_field_age(ctx.field_age_s)
    if subscriber is not None:
        subscriber.on_applied = ctx.on_applied
    return ctx


async def get_context(request: Request) -> ApiContext:
    """The app's context, as a FastAPI dependency (async: no thread hop per request)."""
    ctx = request.app.state.ctx
    assert isinstance(ctx, ApiContext)
    return ctx
