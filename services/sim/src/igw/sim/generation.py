"""The completions and chat completions endpoints of one pod: admit, tokenize, submit, answer.

A request goes through, in order: the pod's readiness (503 while starting), failure injection
(`x-return-error` or the random rate), body decoding and validation (400), the model (404 unless
the base model or a known adapter), the context check (400), and the engine (429 when its
waiting queue is full). Then it is answered whole, or streamed as SSE with one event per token.

`max_tokens`, as vLLM resolves it: a prompt of `max_model_len` tokens or more is refused, and so
is an explicit `max_tokens` (or `max_completion_tokens`) that does not fit beside the prompt.
Without one, completions generate 16 tokens (vLLM's default) and chat completions
`PodSettings.default_max_tokens` (vLLM would generate up to the end of the context, which a
model stops long before by emitting EOS; the simulator has no EOS to wait for). Either default
is cut to what fits in the context.

Cancellation: if the client goes away (the handler is cancelled, or a write fails), the engine
request is cancelled at once and counted as `abort` in `vllm:request_success_total`. If the
engine stops first (the pod is shutting down), a whole answer is a 503 and a stream ends
without `[DONE]`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Final, Protocol

from aiohttp import web
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from igw.common.telemetry import tracer
from igw.sim import openai_requests, openai_shapes
from igw.sim.engine.api import GenerationRequest, RequestHandle, SimEngine, TokenEvent
from igw.sim.failures import RETURN_ERROR_HEADER, FailureInjector
from igw.sim.metrics import PodMetrics
from igw.sim.openai_shapes import ApiError, ChunkEncoder, Kind

__all__ = ["COMPLETIONS_DEFAULT_MAX_TOKENS", "Generation", "PromptTokenizer"]

COMPLETIONS_DEFAULT_MAX_TOKENS: Final = 16

_PROPAGATOR: Final = TraceContextTextMapPropagator()
_SSE_HEADERS: Final = {"content-type": "text/event-stream", "cache-control": "no-cache"}


@dataclass(slots=True)
class _Progress:
    """One request's tokens so far: their engine times, and why it ended once it has."""

    times: list[float] = field(default_factory=list)
    finish: str | None = None

    def add(self, event: TokenEvent) -> None:
        self.times.append(event.time)
        if event.finish_reason is not None:
            self.finish = event.finish_reason


class PromptTokenizer(Protocol):
    """Turns prompts into the token ids the engine caches by (`igw.sim.tokenizer`)."""

    def encode(self, text: str) -> tuple[int, ...]: ...

    def encode_chat(self, messages: Iterable[Mapping[str, object]]) -> tuple[int, ...]:
        """The tokens of the chat template rendered over OpenAI messages."""


class _Settings(Protocol):
    @property
    def max_model_len(self) -> int: ...
    @property
    def default_max_tokens(self) -> int: ...


class Generation:
    """The generation handlers of one pod, bound to its engine, metrics and failure injector."""

    def __init__(
        self,
        engine: SimEngine,
        settings: _Settings,
        *,
        tokenizer: PromptTokenizer,
        metrics: PodMetrics,
        resolve_lora: Callable[[str | None], tuple[str, str | None]],
        failures: FailureInjector,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.engine = engine
        self.tokenizer = tokenizer
        self.ready = False
        self._settings = settings
        self._metrics = metrics
        self._resolve_lora = resolve_lora
        self._failures = failures
        self._tracer = tracer(tracer_provider, "igw.sim") if tracer_provider else None

    def admit(self, request: web.Request) -> None:
        """Raises the error a request fails with before its body is even read."""
        if not self.ready:
            raise ApiError(503, "igw-sim is starting.")
        model_hint = self._resolve_lora(None)[0]
        error = self._failures.check(request.headers.get(RETURN_ERROR_HEADER), model_hint)
        if error is not None:
            raise error

    async def chat_completions(self, request: web.Request) -> web.StreamResponse:
        with self._span(request, "chat"):
            self.admit(request)
            body = openai_requests.decode_chat(await request.read())
            tokens = self.tokenizer.encode_chat(openai_requests.message_dicts(body.messages))
            return await self._generate(
                request,
                "chat",
                body,
                tokens,
                requested=body.max_completion_tokens or body.max_tokens,
                default=self._settings.default_max_tokens,
            )

    async def completions(self, request: web.Request) -> web.StreamResponse:
        with self._span(request, "completion"):
            self.admit(request)
            body, prompt = openai_requests.decode_completion(await request.read())
            tokens = self.tokenizer.encode(prompt) if isinstance(prompt, str) else prompt
            return await self._generate(
                request,
                "completion",
                body,
                tokens,
                requested=body.max_tokens,
                default=COMPLETIONS_DEFAULT_MAX_TOKENS,
            )

    async def _generate(
        self,
        request: web.Request,
        kind: Kind,
        body: openai_requests.ChatRequest | openai_requests.CompletionRequest,
        tokens: tuple[int, ...],
        *,
        requested: int | None,
        default: int,
    ) -> web.StreamResponse:
        model, lora = self._resolve_lora(body.model)
        max_tokens = resolve_max_tokens(
            len(tokens), requested, default, self._settings.max_model_len
        )
        request_id = openai_shapes.new_id(kind)
        try:
            handle = self.engine.submit(GenerationRequest(request_id, tokens, max_tokens, lora))
        except ValueError as e:  # the engine's own validation, worded as vLLM's
            raise ApiError(400, str(e)) from None
        _annotate(len(tokens), max_tokens, model)
        if body.stream:
            options = body.stream_options
            include_usage = bool(options and options.include_usage)
            encoder = ChunkEncoder(kind, request_id, model)
            return await self._stream(request, handle, encoder, include_usage=include_usage)
        return await self._whole(kind, handle, model)

    async def _whole(self, kind: Kind, handle: RequestHandle, model: str) -> web.Response:
        with self._tracked(handle) as progress:
            async for event in handle:
                progress.add(event)
        if progress.finish is None:
            raise ApiError(503, "The engine stopped before the request finished.")
        tokens = len(progress.times)
        usage = openai_shapes.usage(handle.prompt_tokens, tokens, handle.cached_tokens)
        build = openai_shapes.chat_completion if kind == "chat" else openai_shapes.completion
        body = build(handle.request_id, model, tokens, progress.finish, usage)
        return web.Response(body=body, content_type="application/json")

    async def _stream(
        self,
        request: web.Request,
        handle: RequestHandle,
        encoder: ChunkEncoder,
        *,
        include_usage: bool,
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers=_SSE_HEADERS)
        with self._tracked(handle) as progress, _quiet_disconnect():
            await response.prepare(request)
            async for event in handle:
                chunk = encoder.token(event.index, event.finish_reason)
                if not progress.times:
                    chunk = encoder.first() + chunk
                progress.add(event)
                await response.write(chunk)
            if progress.finish is None:
                return response  # the engine stopped: end the stream without [DONE]
            if include_usage:
                tokens = len(progress.times)
                usage = openai_shapes.usage(handle.prompt_tokens, tokens, handle.cached_tokens)
                await response.write(encoder.usage(usage))
            await response.write(encoder.done())
            await response.write_eof()
        return response

    @contextlib.contextmanager
    def _tracked(self, handle: RequestHandle) -> Iterator[_Progress]:
        """Records the request's end in the metrics; cancels it unless its last token came.

        A failure after the last token (the client leaving during `[DONE]`) is no abort: the
        engine is done with the request by then.
        """
        progress = _Progress()
        try:
            yield progress
        finally:
            if progress.finish is None:
                handle.cancel()
            self._metrics.record(handle.timings, progress.times, progress.finish or "abort")

    @contextlib.contextmanager
    def _span(self, request: web.Request, operation: str) -> Iterator[None]:
        """A server span continuing the caller's `traceparent`; nothing when tracing is off."""
        if self._tracer is None:
            yield
            return
        parent = _PROPAGATOR.extract(request.headers)
        with self._tracer.start_as_current_span(
            f"{request.method} {request.path}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            attributes={"gen_ai.operation.name": operation, "http.request.method": request.method},
        ):
            yield


@contextlib.contextmanager
def _quiet_disconnect() -> Iterator[None]:
    """A client that left mid-stream is routine for a server, not an error to log."""
    with contextlib.suppress(ConnectionResetError):
        yield


def resolve_max_tokens(
    prompt_len: int, requested: int | None, default: int, max_model_len: int
) -> int:
    """Output tokens to generate, or a 400 as vLLM answers it (see the module docstring)."""
    if prompt_len >= max_model_len:
        raise ApiError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, your "
            f"request has {prompt_len} input tokens. Please reduce the length of the input "
            "messages.",
            param="input_tokens",
        )
    room = max_model_len - prompt_len
    if requested is None:
        return min(default, room)
    if requested > room:
        raise ApiError(
            400,
            f"'max_tokens' or 'max_completion_tokens' is too large: {requested}. This model's "
            f"maximum context length is {max_model_len} tokens and your request has "
            f"{prompt_len} input tokens ({requested} > {max_model_len} - {prompt_len}).",
            param="max_tokens",
        )
    return requested


def _annotate(prompt_tokens: int, max_tokens: int, model: str) -> None:
    span = trace.get_current_span()
    if span.is_recording():
        span.set_attribute("gen_ai.request.model", model)
        span.set_attribute("gen_ai.request.max_tokens", max_tokens)
        span.set_attribute("gen_ai.usage.input_tokens", prompt_tokens)
