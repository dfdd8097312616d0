"""OpenAI request bodies and the header that rewrites their model, for tests through a gateway."""

from __future__ import annotations

from igw.epp.requestpath.headers import MODEL_REWRITE

__all__ = ["completion", "model_rewrite", "streamed_completion"]


def completion(model: str, prompt: str = "hello", **fields: object) -> dict[str, object]:
    """A `/v1/completions` body; `fields` add to it or override it."""
    return {"model": model, "prompt": prompt, **fields}


def streamed_completion(model: str, prompt: str, max_tokens: int) -> dict[str, object]:
    """A completion answered as SSE, one event per token."""
    return completion(model, prompt, max_tokens=max_tokens, stream=True)


def model_rewrite(model: str, target: str) -> dict[str, str]:
    """The request headers that make the EPP send `target` to the pod instead of `model`."""
    return {} if target == model else {MODEL_REWRITE: target}
