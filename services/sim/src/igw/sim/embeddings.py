"""`/v1/embeddings`: deterministic unit vectors derived from the input's tokens.

The vector of an input is a function of its token ids only: a BLAKE2b digest of the ids seeds a
PRNG that draws `dimensions` (default 384, llm-d's simulator's size) Gaussian components, scaled
to unit length. Equal inputs give equal vectors; different inputs give unrelated ones. Embeddings
do not go through the generation engine: an embedding model is a different deployment, and the
router-relevant behaviour of this simulator is generation.

`encoding_format: "base64"` answers the little-endian float32 bytes, base64-encoded, as OpenAI
and vLLM do.
"""

from __future__ import annotations

import array
import base64
import hashlib
import math
import random
import sys
from collections.abc import Callable, Sequence

from igw.sim import openai_shapes
from igw.sim.openai_requests import EmbeddingRequest
from igw.sim.openai_shapes import ApiError

__all__ = ["respond", "vector"]


def vector(tokens: Sequence[int], dims: int) -> list[float]:
    """The unit vector of `tokens`, `dims` long."""
    digest = hashlib.blake2b(array.array("q", tokens).tobytes(), digest_size=16).digest()
    rng = random.Random(digest)  # noqa: S311 - a deterministic stand-in, not cryptography
    components = [rng.gauss(0.0, 1.0) for _ in range(dims)]
    norm = math.sqrt(sum(c * c for c in components)) or 1.0
    return [c / norm for c in components]


def _base64(values: list[float]) -> str:
    packed = array.array("f", values)
    if sys.byteorder != "little":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def respond(
    request: EmbeddingRequest,
    inputs: Sequence[str | tuple[int, ...]],
    *,
    model: str,
    encode: Callable[[str], tuple[int, ...]],
    max_model_len: int,
    default_dims: int,
) -> bytes:
    """The response body for a decoded request; raises `ApiError` for an input too long."""
    dims = request.dimensions or default_dims
    vectors: list[list[float] | str] = []
    prompt_tokens = 0
    for item in inputs:
        tokens = encode(item) if isinstance(item, str) else item
        if len(tokens) > max_model_len:
            raise ApiError(
                400,
                f"This model's maximum context length is {max_model_len} tokens. However, you "
                f"requested {len(tokens)} tokens in the input for embedding generation. Please "
                "reduce the length of the input.",
                param="input_tokens",
            )
        prompt_tokens += len(tokens)
        values = vector(tokens, dims)
        vectors.append(_base64(values) if request.encoding_format == "base64" else values)
    request_id = openai_shapes.new_id("embedding")
    return openai_shapes.embeddings_response(request_id, model, vectors, prompt_tokens)
