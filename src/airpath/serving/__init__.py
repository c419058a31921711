"""Serving: the field store that carries pollution field snapshots to running routers.

The streaming job publishes :class:`FieldSnapshot` objects to a :class:`FieldStore`
(:class:`LocalFieldStore` on one machine, :class:`RedisFieldStore` on a cluster,
:class:`MemoryFieldStore` in tests); each router runs a :class:`FieldSubscriber` that
applies every new snapshot made for its network (:func:`network_key`)::

    store = LocalFieldStore("fields/helsinki")
    store.publish(FieldSnapshot(field, network_key(network), "lur-v3", newest, now))
    with FieldSubscriber(store, router, network_key=network_key(network)) as sub:
        ...  # router serves the newest field; sub.status() says how fresh it is
"""

from airpath.serving.redis_store import RedisFieldStore, RedisUpdateListener
from airpath.serving.snapshot import (
    FieldSnapshot,
    decode_snapshot,
    encode_snapshot,
    network_key,
)
from airpath.serving.store import (
    FieldStore,
    LocalFieldStore,
    MemoryFieldStore,
    NotifyingFieldStore,
    RetryPolicy,
    UpdateListener,
    open_store,
)
from airpath.serving.subscriber import FieldSubscriber, SubscriberStatus

__all__ = [
    "FieldSnapshot",
    "FieldStore",
    "FieldSubscriber",
    "LocalFieldStore",
    "MemoryFieldStore",
    "NotifyingFieldStore",
    "RedisFieldStore",
    "RedisUpdateListener",
    "RetryPolicy",
    "SubscriberStatus",
    "UpdateListener",
    "decode_snapshot",
    "encode_snapshot",
    "network_key",
    "open_store",
]
