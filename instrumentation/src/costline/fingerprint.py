"""API-key fingerprints: a durable, non-secret identity for the key a client used.

The fingerprint is the first 16 lowercase hex characters of SHA-256 of the key. Sixteen hex characters (64 bits)
keep accidental collisions out of reach for any realistic number of keys while staying short enough for a label,
and a truncated hash of a high-entropy secret reveals nothing usable about it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

FINGERPRINT_LENGTH = 16


@lru_cache(maxsize=64)
def fingerprint(api_key: str) -> str:
    """The fingerprint of `api_key`. Cached: a process uses a handful of keys, and hashing per call adds up."""
    return hashlib.sha256(api_key.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]
