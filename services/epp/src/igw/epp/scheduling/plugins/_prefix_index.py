"""The approximate prefix-cache index: which endpoint recently served which prefix-block hash.

Each endpoint has an LRU of block hashes with its own capacity (golang-lru semantics: adding a
present hash refreshes it; a full LRU evicts its least recently used hash); a reverse map
hash -> endpoints answers lookups, and an eviction removes the endpoint from it. Owned by one
producer and touched only from the event loop.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection, Sequence

import xxhash

__all__ = ["PrefixIndex", "prefix_hashes"]


def prefix_hashes(
    text: str, model: str, cache_salt: str, block_chars: int, max_blocks: int
) -> list[int]:
    """The xxHash64 chain of `text`'s blocks (§3.6); empty when `text` is under one block.

    seed = xxh64(model ‖ cache_salt); h_i = xxh64(block_i ‖ little-endian uint64 h_{i-1}). The
    input is the UTF-8 bytes, truncated to `max_blocks` blocks; a trailing partial block counts.
    """
    limit = block_chars * max_blocks
    # Every character is at least one byte, so slicing characters first never cuts too much.
    data = text[:limit].encode()[:limit]
    if len(data) < block_chars or block_chars <= 0:
        return []
    digest = xxhash.xxh64_intdigest
    previous = digest(model.encode() + cache_salt.encode())
    hashes: list[int] = []
    for start in range(0, len(data), block_chars):
        previous = digest(data[start : start + block_chars] + previous.to_bytes(8, "little"))
        hashes.append(previous)
    return hashes


class PrefixIndex:
    def __init__(self) -> None:
        self._lrus: dict[str, OrderedDict[int, None]] = {}
        self._holders: dict[int, set[str]] = {}
        self._size = 0

    def __len__(self) -> int:
        """Entries across every endpoint's LRU."""
        return self._size

    def endpoint_hashes(self, endpoint: str) -> list[int]:
        """The endpoint's hashes, least recently used first."""
        return list(self._lrus.get(endpoint, ()))

    def match(self, hashes: Sequence[int]) -> dict[str, int]:
        """Endpoint -> blocks matched, walking `hashes` until one no endpoint holds."""
        matched: dict[str, int] = {}
        holders = self._holders
        for h in hashes:
            endpoints = holders.get(h)
            if not endpoints:
                break
            for name in endpoints:
                matched[name] = matched.get(name, 0) + 1
        return matched

    def add(self, endpoint: str, hashes: Sequence[int], capacity: int) -> None:
        """Records that `endpoint` now caches `hashes`, evicting beyond `capacity` entries."""
        lru = self._lrus.get(endpoint)
        if lru is None:
            lru = self._lrus[endpoint] = OrderedDict()
        refresh, holders, added = lru.move_to_end, self._holders, 0
        for h in hashes:
            if h in lru:
                refresh(h)
                continue
            lru[h] = None
            holders.setdefault(h, set()).add(endpoint)
            added += 1
        self._size += added
        while len(lru) > max(capacity, 1):
            self._evict(endpoint, lru.popitem(last=False)[0])

    def remove_endpoint(self, endpoint: str) -> None:
        for h in self._lrus.pop(endpoint, ()):
            self._unhold(endpoint, h)

    def purge(self, active: Collection[str]) -> None:
        """Forgets every endpoint not in `active` (gone from the pool)."""
        for endpoint in [e for e in self._lrus if e not in active]:
            self.remove_endpoint(endpoint)

    def _evict(self, endpoint: str, h: int) -> None:
        self._unhold(endpoint, h)

    def _unhold(self, endpoint: str, h: int) -> None:
        self._size -= 1
        holders = self._holders.get(h)
        if holders is not None:
            holders.discard(endpoint)
            if not holders:
                del self._holders[h]
