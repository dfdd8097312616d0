"""`Handle`: the `RequestHandle` the server gets back from `Engine.submit`."""

from __future__ import annotations

from collections.abc import Callable

from igw.sim.engine.api import RequestTimings, TokenEvent
from igw.sim.engine.sequence import Sequence

__all__ = ["Handle"]


class Handle:
    """Reads one sequence's tokens and timings; `cancel` goes back to the engine."""

    __slots__ = ("_on_cancel", "_sequence", "prompt_tokens", "request_id")

    def __init__(self, sequence: Sequence, on_cancel: Callable[[Sequence], None]) -> None:
        self.request_id = sequence.request.request_id
        self.prompt_tokens = sequence.prompt_len
        self._sequence = sequence
        self._on_cancel = on_cancel

    @property
    def cached_tokens(self) -> int:
        return self._sequence.cached_tokens or 0

    @property
    def timings(self) -> RequestTimings:
        seq = self._sequence
        return RequestTimings(seq.arrival, seq.scheduled, seq.first_token, seq.finished)

    def __aiter__(self) -> Handle:
        return self

    async def __anext__(self) -> TokenEvent:
        event = await self._sequence.channel.get()
        if event is None:
            raise StopAsyncIteration
        return event

    def cancel(self) -> None:
        self._on_cancel(self._sequence)
