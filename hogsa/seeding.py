"""Random generators seeded per work item from its key, so that a result never depends on the order
in which work items run, on which process or worker runs them, or on Python's string hashing."""

from __future__ import annotations

import hashlib

import numpy as np


def key_words(*key: str | int) -> list[int]:
    """Four 32-bit words from the SHA-256 of ``key`` (its parts joined by '/'): a stable seed sequence."""
    digest = hashlib.sha256("/".join(map(str, key)).encode()).digest()
    return [int.from_bytes(digest[4 * k:4 * k + 4], "little") for k in range(4)]


def generator(seed: int, *key: str | int) -> np.random.Generator:
    """The numpy generator of work item ``key`` under the study's ``seed``."""
    return np.random.default_rng([seed, *key_words(*key)])
