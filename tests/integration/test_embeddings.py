"""The local embedding model (real ONNX weights from a package) and the OpenAI-compatible
embedder against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import numpy as np
import pytest

from podium.errors import ModelError
from podium.memory.embeddings import LocalEmbedder, OpenAIEmbedder, default_embedder


async def test_local_vectors_are_unit_length_and_follow_meaning() -> None:
    embedder = LocalEmbedder()
    vectors = await embedder.embed([
        "Forecast demand for next month from the sales history",
        "Predict how many units we will sell next month",
        "Send the invoice to the customer by email",
    ])
    assert vectors.shape == (3, 384)
    assert vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    similar, unrelated = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert similar > 0.5 > unrelated


async def test_local_embedding_is_deterministic_and_cached() -> None:
    embedder = LocalEmbedder()
    first = await embedder.embed(["a text", "another text", "a text"])
    assert np.array_equal(first[0], first[2])
    uncached = embedder.embed_sync(["another text"])
    assert np.allclose(uncached[0], first[1], atol=1e-6)
    assert (await embedder.embed([])).shape == (0, 384)
    assert default_embedder() is default_embedder()


async def test_long_text_is_truncated_not_refused() -> None:
    vector = await LocalEmbedder().embed_one("word " * 5000)
    assert vector.shape == (384,)


class _Embeddings(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"body": body, "auth": self.headers.get("Authorization")})
        if body["model"] == "broken":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"model crashed")
            return
        data = [{"index": i, "embedding": [float(len(text)), 1.0, 0.0]}
                for i, text in enumerate(body["input"])]
        reply = json.dumps({"data": list(reversed(data))}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Embeddings.requests = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Embeddings)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


async def test_openai_embedder_orders_normalises_and_caches(
        server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMBED_KEY", "sk-test")
    embedder = OpenAIEmbedder("mini", base_url=server, api_key_env="EMBED_KEY")
    vectors = await embedder.embed(["ab", "abcd", "ab"])
    assert embedder.dim == 3
    assert np.allclose(vectors[0], np.array([2, 1, 0]) / np.sqrt(5), atol=1e-6)
    assert np.allclose(vectors[1], np.array([4, 1, 0]) / np.sqrt(17), atol=1e-6)
    await embedder.embed(["abcd"])
    assert len(_Embeddings.requests) == 1
    assert _Embeddings.requests[0]["body"]["input"] == ["ab", "abcd"]
    assert _Embeddings.requests[0]["auth"] == "Bearer sk-test"


async def test_openai_embedder_errors_name_the_server(server: str) -> None:
    with pytest.raises(ModelError, match="HTTP 500: model crashed"):
        await OpenAIEmbedder("broken", base_url=server).embed(["x"])
    with pytest.raises(ModelError, match="expected 8"):
        await OpenAIEmbedder("mini", base_url=server, dim=8).embed(["x"])
    with pytest.raises(ModelError, match="could not reach"):
        await OpenAIEmbedder("mini", base_url="http://127.0.0.1:9/v1", timeout=2).embed(["x"])
