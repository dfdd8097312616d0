"""`ChangeRecorder`: a consumer of an `igw.common.kube.Informer` for tests.

It keeps the state its callbacks built (key -> object), every call in order and the threads
they ran on; everything is guarded by one lock, since the informer calls it from its own thread
while the test reads it from the event loop's.
"""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["ChangeRecorder"]

Obj = dict[str, Any]


class ChangeRecorder:
    """`on_change` and `on_synced` for an informer; read back with the methods below."""

    def __init__(self) -> None:
        self.state: dict[str, Obj] = {}
        self.calls: list[tuple[str, Obj | None] | str] = []
        """`(key, obj)` per change (obj None: taken back), `"synced"` per (re)list."""
        self.threads: set[int] = set()
        self._lock = threading.Lock()

    def on_change(self, key: str, obj: Obj | None) -> None:
        with self._lock:
            self.threads.add(threading.get_ident())
            self.calls.append((key, obj))
            if obj is None:
                self.state.pop(key, None)
            else:
                self.state[key] = obj

    def on_synced(self) -> None:
        with self._lock:
            self.calls.append("synced")

    def keys(self) -> set[str]:
        with self._lock:
            return set(self.state)

    def changed_keys(self) -> set[str]:
        with self._lock:
            return {call[0] for call in self.calls if isinstance(call, tuple)}

    def syncs(self) -> int:
        with self._lock:
            return self.calls.count("synced")

    @property
    def trace(self) -> list[str]:
        """The calls as text: `+key` handed over, `-key` taken back, `synced`."""
        with self._lock:
            return [
                call if isinstance(call, str) else f"{'-' if call[1] is None else '+'}{call[0]}"
                for call in self.calls
            ]

    def since_first_sync(self) -> list[str]:
        """`trace` after the first `synced`."""
        trace = self.trace
        return trace[trace.index("synced") + 1 :]
