"""One soak request through the gateway, and the outcome the client saw.

Outcomes: `2xx` (a whole answer with choices, or a stream that reached `[DONE]`), `4xx`, `5xx`,
`transport` (the connection failed or timed out), `truncated` (a 200 whose stream ended without
`[DONE]`, or whose body was not an answer) and `disconnected` (the client itself closed the
connection after the first event, as the `disconnect` kind asks). A status is read before the
body, so a 5xx counts as 5xx however its body ends.
"""

from __future__ import annotations

import aiohttp

from bench._soak_mix import Planned

__all__ = ["OUTCOMES", "send"]

OUTCOMES = ("2xx", "4xx", "5xx", "transport", "truncated", "disconnected")
_HEADERS = {"content-type": "application/json"}


async def send(session: aiohttp.ClientSession, base_url: str, request: Planned) -> tuple[str, str]:
    """POSTs `request`; returns its outcome (module docstring) and a line saying what came back.
    Never raises for a failure of the request itself."""
    try:
        async with session.post(
            base_url + request.kind.path, data=request.body, headers=_HEADERS
        ) as response:
            if response.status >= 300:
                text = (await response.read())[:160].decode(errors="replace")
                return f"{response.status // 100}xx", f"HTTP {response.status}: {text}"
            if request.kind.stream:
                outcome = await _read_stream(
                    response, abandon=request.kind.expect == "disconnected"
                )
                return outcome, f"HTTP {response.status}, stream {outcome}"
            answer = await response.read()
            if b'"choices"' in answer:
                return "2xx", f"HTTP {response.status}"
            return "truncated", f"HTTP {response.status}: {answer[:160].decode(errors='replace')}"
    except (aiohttp.ClientError, TimeoutError) as e:
        return "transport", f"{type(e).__name__}: {e}"


async def _read_stream(response: aiohttp.ClientResponse, *, abandon: bool) -> str:
    async for line in response.content:
        if not line.startswith(b"data: "):
            continue
        if abandon:
            response.close()  # drops the connection mid-stream, as a client that goes away
            return "disconnected"
        if line.startswith(b"data: [DONE]"):
            return "2xx"
    return "truncated"
