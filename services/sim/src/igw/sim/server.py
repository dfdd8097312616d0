"""One simulated pod: an aiohttp application in front of one engine, on one port.

Routes (vLLM's OpenAI server's, for what a router sees):

    POST /v1/completions, /v1/chat/completions   generation (`igw.sim.generation`), SSE if asked
    POST /v1/embeddings                          deterministic vectors (`igw.sim.embeddings`)
    GET  /v1/models                              the base model, then each known adapter
    POST /v1/load_lora_adapter                   `{"lora_name", "lora_path"}`, vLLM's answers
    POST /v1/unload_lora_adapter                 `{"lora_name"}`
    GET  /health                                 200, or 503 until `startup_delay_s` has passed
    GET  /metrics                                Prometheus text (`igw.sim.metrics`)

Every answer carries `x-inference-pod`, `x-inference-port` and `x-inference-rank`. Errors are
OpenAI error objects (`igw.sim.openai_shapes.ApiError`); while the pod is starting, the `/v1`
endpoints answer 503 as well, as a vLLM still loading its weights would not answer at all.

Lifecycle: `SimPod` owns its engine and its aiohttp runner. `start()` starts the engine,
registers the preloaded adapters, binds the port (0 picks a free one: see `port`) and arms the
startup delay. `stop()` is ordered: health turns 503, the runner stops accepting and gives
in-flight requests `grace_s` seconds (streams still open then are cancelled, which cancels their
engine requests), then the engine stops. Client disconnects cancel the handler
(`handler_cancellation`), so a request the client gave up on leaves the engine at once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CONTENT_TYPE_LATEST

from igw.common.telemetry import get_logger
from igw.sim import embeddings, openai_requests, openai_shapes
from igw.sim.engine.api import AdapterError, EngineFullError, SimEngine
from igw.sim.failures import FailureInjector
from igw.sim.generation import Generation, PromptTokenizer
from igw.sim.metrics import PodMetrics
from igw.sim.openai_shapes import ApiError

__all__ = ["PodSettings", "SimPod"]

_log = get_logger(__name__)

_MAX_BODY_BYTES: Final = 16 * 1024 * 1024
_JSON: Final = "application/json"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class PodSettings:
    """What the HTTP layer of one pod (or one DP rank) needs; the engine has the rest."""

    model: str
    """The served model name, what clients put in `model`."""
    max_model_len: int
    pod_name: str
    port: int = 0
    host: str = "127.0.0.1"
    rank: int = 0
    model_root: str | None = None
    """The model path shown as `root` in `/v1/models` (default: `model`)."""
    adapters: Mapping[str, str] = field(default_factory=dict)
    """Adapters to register at start, name -> path."""
    startup_delay_s: float = 0.0
    default_max_tokens: int = 256
    """Chat completions without `max_tokens` (completions default to 16, as vLLM's do)."""
    embedding_dims: int = 384
    grace_s: float = 5.0


class SimPod:
    """Serves one engine over HTTP; see the module docstring for the lifecycle."""

    def __init__(
        self,
        engine: SimEngine,
        settings: PodSettings,
        *,
        tokenizer: PromptTokenizer,
        failures: FailureInjector | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.metrics = PodMetrics(engine.snapshot, model_name=settings.model, engine=settings.rank)
        self._adapters: dict[str, str] = {}
        self._created = int(time.time())
        self._ready_timer: asyncio.TimerHandle | None = None
        self._runner: web.AppRunner | None = None
        self.port = settings.port
        self._generation = Generation(
            engine,
            settings,
            tokenizer=tokenizer,
            metrics=self.metrics,
            resolve_lora=self._resolve_lora,
            failures=failures or FailureInjector(0.0),
            tracer_provider=tracer_provider,
        )
        self.app = self._build_app()

    @property
    def ready(self) -> bool:
        """Past the startup delay and not stopping: `/health` answers 200."""
        return self._generation.ready

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.port}"

    async def start(self) -> None:
        await self.engine.start()
        try:
            for name, path in self.settings.adapters.items():
                await self.engine.load_lora(name)
                self._adapters[name] = path
            self._runner = await self._serve()
        except BaseException:
            await self.engine.stop()
            raise
        delay = self.settings.startup_delay_s
        if delay > 0:
            self._ready_timer = asyncio.get_running_loop().call_later(delay, self._set_ready)
        else:
            self._set_ready()
        _log.info(
            "pod serving", pod=self.settings.pod_name, port=self.port, rank=self.settings.rank
        )

    async def _serve(self) -> web.AppRunner:
        runner = web.AppRunner(
            self.app,
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=self.settings.grace_s,
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.settings.host, self.settings.port, reuse_port=False)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self.port = _bound_port(runner, self.settings.port)
        return runner

    async def stop(self) -> None:
        """Ordered stop (see the module docstring); safe to call twice."""
        self._generation.ready = False
        if self._ready_timer is not None:
            self._ready_timer.cancel()
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
            await self.engine.stop()

    def _set_ready(self) -> None:
        self._generation.ready = True

    def _build_app(self) -> web.Application:
        app = web.Application(client_max_size=_MAX_BODY_BYTES, middlewares=[_errors])
        app.on_response_prepare.append(self._identify)
        gen = self._generation
        app.router.add_post("/v1/completions", gen.completions)
        app.router.add_post("/v1/chat/completions", gen.chat_completions)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/load_lora_adapter", self._load_lora)
        app.router.add_post("/v1/unload_lora_adapter", self._unload_lora)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def _identify(self, _request: web.Request, response: web.StreamResponse) -> None:
        response.headers["x-inference-pod"] = self.settings.pod_name
        response.headers["x-inference-port"] = str(self.port)
        response.headers["x-inference-rank"] = str(self.settings.rank)

    def _resolve_lora(self, model: str | None) -> tuple[str, str | None]:
        """The model name to answer with and the adapter to use (None: the base model)."""
        if model is None or model == self.settings.model:
            return self.settings.model, None
        if model in self._adapters or model in self.engine.known_loras():
            return model, model
        raise ApiError(404, f"The model `{model}` does not exist.", param="model")

    async def _health(self, _request: web.Request) -> web.Response:
        if not self.ready:
            return _error(ApiError(503, "igw-sim is starting."))
        return web.Response(status=200)

    async def _metrics(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.render())
        response.headers["content-type"] = CONTENT_TYPE_LATEST
        return response

    async def _models(self, _request: web.Request) -> web.Response:
        adapters = {name: self._adapters.get(name, name) for name in self.engine.known_loras()}
        body = openai_shapes.model_list(
            self.settings.model,
            self.settings.model_root or self.settings.model,
            self.settings.max_model_len,
            adapters,
            self._created,
        )
        return web.Response(body=body, content_type=_JSON)

    async def _embeddings(self, request: web.Request) -> web.Response:
        self._generation.admit(request)
        decoded, inputs = openai_requests.decode_embedding(await request.read())
        model, _ = self._resolve_lora(decoded.model)
        body = embeddings.respond(
            decoded,
            inputs,
            model=model,
            encode=self._generation.tokenizer.encode,
            max_model_len=self.settings.max_model_len,
            default_dims=self.settings.embedding_dims,
        )
        return web.Response(body=body, content_type=_JSON)

    async def _load_lora(self, request: web.Request) -> web.Response:
        body = openai_requests.decode_lora_load(await request.read())
        if not body.lora_name or not body.lora_path:
            raise _invalid_input("Both 'lora_name' and 'lora_path' must be provided.")
        name = body.lora_name
        if name in self._adapters or name in self.engine.known_loras():
            raise _invalid_input(f"The lora adapter '{name}' has already been loaded.")
        try:
            await self.engine.load_lora(name)
        except AdapterError as e:
            raise _invalid_input(str(e)) from None
        self._adapters[name] = body.lora_path
        _log.info("lora adapter loaded", pod=self.settings.pod_name, adapter=name)
        return web.Response(text=f"Success: LoRA adapter '{name}' added successfully.")

    async def _unload_lora(self, request: web.Request) -> web.Response:
        body = openai_requests.decode_lora_unload(await request.read())
        if not body.lora_name:
            raise _invalid_input("'lora_name' must be provided.")
        name = body.lora_name
        try:
            await self.engine.unload_lora(name)
        except AdapterError:
            raise ApiError(
                404, f"The lora adapter '{name}' cannot be found.", type_="NotFoundError"
            ) from None
        self._adapters.pop(name, None)
        _log.info("lora adapter unloaded", pod=self.settings.pod_name, adapter=name)
        return web.Response(text=f"Success: LoRA adapter '{name}' removed successfully.")


def _invalid_input(message: str) -> ApiError:
    # vLLM's adapter endpoints answer their own error type.
    return ApiError(400, message, type_="InvalidUserInput")


def _error(error: ApiError) -> web.Response:
    return web.Response(status=error.status, body=error.body(), content_type=_JSON)


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Maps the errors a handler raises before answering to OpenAI error responses."""
    try:
        return await handler(request)
    except ApiError as e:
        return _error(e)
    except EngineFullError as e:
        return _error(ApiError(429, str(e) or "The server's waiting queue is full."))
    except AdapterError as e:
        return _error(ApiError(400, str(e) or "LoRA adapter error.", param="model"))
    except web.HTTPException as e:
        if e.status < 400:
            raise
        return _error(ApiError(e.status, e.reason))


def _bound_port(runner: web.AppRunner, requested: int) -> int:
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return requested
