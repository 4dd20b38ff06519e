"""Caches that live exactly as long as the object they describe.

The cost model derives numpy tables and serial latencies from a ModelSpec or a Cluster
thousands of times per search; hashing a model's thousands of ops on every lookup would
cost more than the work, so these caches are keyed by the object's identity instead.
`per_object(obj)` is obj's own cache (a dict): it is dropped when obj is collected (a
weakref finalizer), so it never keeps a model alive, grows only with the live objects,
and an id can never be reused while its entry exists.
"""
from __future__ import annotations

import weakref

_CACHES: dict[int, dict] = {}


def per_object(obj) -> dict:
    """The cache of values derived from `obj` (obj must support weak references)."""
    key = id(obj)
    cache = _CACHES.get(key)
    if cache is None:
        cache = _CACHES[key] = {}
        weakref.finalize(obj, _CACHES.pop, key, None)
    return cache
