"""Applying a new pollution field: synchronously, and in the background on a worker thread.

Synchronous: :meth:`Router.apply_field` returns when every metric is customised; the
time is that call alone (building the :class:`PollutionField`, which validates and copies
the arrays, is timed on its own). A breakdown times the two parts of the call one by one:
per-profile weights (``Router._new_state``) and each CCH customisation.

Background: ``apply_field(field, background=True)`` publishes the new weights for
flexible queries and customises on a thread. "Live" is measured by asking: a flexible
query (``balanced`` with a non-preset α) started right after the call returns, and then
preset (``least_exposure``) queries back to back until one answers with the new field's
version, with a flexible query between two preset ones. "Live" times run from the start
of the ``apply_field`` call to the end of that answer, so they include any wait for the
interpreter lock; the slowest probe of each kind shows how long queries stall meanwhile.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from typing import Any

import numpy as np

from _measure import perturbed_field, summary
from airpath import PollutionField, Router

BACKGROUND_TIMEOUT_S = 120.0
PROBE_BALANCE = 0.37  # not the preset α = 0.5, so the query takes the flexible engine


def drop_request_weights(router: Router, before: set[str]) -> None:
    """Forget per-request weight vectors a query cached, if this router version caches
    them (some kept one per distinct α for good; the report says so when it sees it)."""
    for state in {id(router._latest): router._latest, id(router._state): router._state}.values():
        with getattr(state, "lock", contextlib.nullcontext()):
            for key in set(state.weights) - before:
                state.weights.pop(key, None)


def apply_sync(router: Router, base: PollutionField, repeats: int, seed: int) -> dict[str, Any]:
    net = router.network
    create_ns, apply_ns = [], []
    router.apply_field(perturbed_field(net, base, seed - 1))  # warm-up
    for k in range(repeats):
        t0 = time.perf_counter_ns()
        fld = perturbed_field(net, base, seed + k)
        create_ns.append(time.perf_counter_ns() - t0)
        gc.collect()
        t0 = time.perf_counter_ns()
        router.apply_field(fld)
        apply_ns.append(time.perf_counter_ns() - t0)
        if router.field is not fld or router._state is not router._latest:
            raise RuntimeError("apply_field returned before the new field was live")
    weights_ns, customise_ns = [], {}
    for k in range(max(1, min(repeats, 3))):
        fld = perturbed_field(net, base, seed + 100 + k)
        t0 = time.perf_counter_ns()
        state = router._new_state(fld)
        weights_ns.append(time.perf_counter_ns() - t0)
        for key, w in state.weights.items():
            if key in state.metrics:
                continue
            t0 = time.perf_counter_ns()
            router.engine.customise(w)
            customise_ns.setdefault(key, []).append(time.perf_counter_ns() - t0)
    return {
        "repeats": repeats,
        "create_field": summary(np.array(create_ns)),
        "apply_field": summary(np.array(apply_ns)),
        "weights": summary(np.array(weights_ns)),
        "customise": {k: summary(np.array(v)) for k, v in customise_ns.items()},
        "raw_apply_ns": apply_ns,
    }


def apply_background(
    router: Router,
    base: PollutionField,
    repeats: int,
    seed: int,
    origin: tuple[float, float],
    destination: tuple[float, float],
) -> dict[str, Any]:
    net = router.network
    worker_errors: list[str] = []
    previous_hook = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        worker_errors.append(f"{args.exc_type.__name__}: {args.exc_value}")

    threading.excepthook = hook
    runs: list[dict[str, Any]] = []
    try:
        for k in range(repeats):
            fld = perturbed_field(net, base, seed + k)
            before = set(router._latest.weights)
            gc.collect()
            t0 = time.perf_counter_ns()
            router.apply_field(fld, background=True)
            published = time.perf_counter_ns() - t0
            flex = router.route(origin, destination, "balanced", balance=PROBE_BALANCE)
            flex_live = time.perf_counter_ns() - t0
            if flex.field_version != fld.version:
                raise RuntimeError("a flexible query after apply_field saw the old field")
            preset_probes: list[int] = []
            flex_probes: list[int] = []
            preset_live = None
            while preset_live is None:
                a = time.perf_counter_ns()
                res = router.route(origin, destination, "least_exposure")
                b = time.perf_counter_ns()
                preset_probes.append(b - a)
                if res.field_version == fld.version:
                    preset_live = b - t0
                elif (b - t0) / 1e9 > BACKGROUND_TIMEOUT_S or worker_errors:
                    break
                else:
                    a = time.perf_counter_ns()
                    router.route(origin, destination, "balanced", balance=PROBE_BALANCE)
                    flex_probes.append(time.perf_counter_ns() - a)
            router.wait_customised(BACKGROUND_TIMEOUT_S)
            drop_request_weights(router, before)
            runs.append(
                {
                    "published_ms": published / 1e6,
                    "flexible_live_ms": flex_live / 1e6,
                    "flexible_query_ms": (flex_live - published) / 1e6,
                    "preset_live_ms": None if preset_live is None else preset_live / 1e6,
                    "probes": len(preset_probes) + len(flex_probes),
                    "preset_probe_max_ms": max(preset_probes) / 1e6,
                    "flexible_probe_max_ms": max(flex_probes, default=0) / 1e6,
                }
            )
            if preset_live is None:
                break
    finally:
        threading.excepthook = previous_hook
    return {"repeats": len(runs), "runs": runs, "worker_errors": worker_errors}
