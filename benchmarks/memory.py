"""Long-term memory: embedding throughput, search latency and recall; prints one JSON object.

- `embedding`: the local MiniLM model (int8 ONNX) on this machine's CPU: texts per second in
  batches, and the latency of one short query.
- `search[n]`: for n memories in one namespace of a `SQLiteMemoryStore` file, the latency of
  `search_vector(top_k=10)` (p50/p95 over the query set, cached matrix; the first search
  after a change, which reads the namespace's vectors from the file, is `cold_ms`), and the
  same for the `sqlite-vec` extension's `vec0` table (loaded through `sqlean-py`, since
  Python's own sqlite3 here cannot load extensions). `recall_at_10` compares each with an
  exact brute-force numpy search over the same vectors. `podium_sqlite_encrypted` is the
  same store with a master key: text, metadata and vector sealed (AES-256-GCM); its
  `cold_ms` includes decrypting the namespace's vectors.
- The 10,000 memories are real embeddings of generated, realistic texts (patients' notes,
  customers' preferences, decisions). The 100,000 are those 10,000 plus 90,000 vectors made
  by perturbing them (Gaussian noise, renormalised), since embedding 100,000 texts takes
  several minutes on 2 cores; the JSON says so (`vectors`).
- `prompt_render_us`: placing 5 retrieved memories in a prompt as a data block.

    python benchmarks/memory.py            # the full benchmark (a few minutes)
    python benchmarks/memory.py --quick    # small sizes: a smoke test
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from _bench import environment, package_version

from podium.core.memory import Memory, render_memories
from podium.memory import NewMemory, SQLiteMemoryStore
from podium.memory.embeddings import LocalEmbedder
from podium.security.crypto import Keyring, MasterKey

NAMES = ["Ada", "Bruno", "Chen", "Dara", "Elif", "Farid", "Greta", "Hiro", "Ines", "Jonas",
         "Kemi", "Luca", "Mina", "Nils", "Olga", "Pavel", "Quinn", "Rosa", "Sami", "Tove"]
CONDITIONS = ["type 2 diabetes", "asthma", "high blood pressure", "migraines", "eczema",
              "a penicillin allergy", "a latex allergy", "sleep apnoea", "arthritis in the knee",
              "low vitamin D", "an irregular heartbeat", "seasonal hay fever"]
DRUGS = ["metformin", "an inhaler", "lisinopril", "ibuprofen", "a steroid cream",
         "vitamin D drops", "melatonin", "a beta blocker", "antihistamines"]
THINGS = ["morning appointments", "e-mail over phone calls", "the window seat",
          "vegetarian meals", "invoices in PDF", "a French-speaking agent", "quarterly billing",
          "delivery on Fridays", "paper statements", "short meetings"]
DECISIONS = ["switch the supplier for packaging", "delay the product launch by two weeks",
             "refund the damaged order", "move the data centre to Frankfurt",
             "hire a second support engineer", "cancel the annual subscription",
             "renegotiate the office lease", "ship the mobile app first"]
REASONS = ["costs rose by 12 percent", "the customer complained twice", "tests failed on "
           "Android", "the legal review is pending", "demand doubled in March",
           "a key supplier went bankrupt", "the budget was cut", "users asked for it"]
QUESTIONS = ["Which patients have breathing problems?", "Who is allergic to antibiotics?",
             "What does the customer prefer for billing?", "Why was the launch delayed?",
             "Who takes blood pressure medication?", "Which supplier decisions were made?",
             "What are the seating preferences?", "Who needs help sleeping?",
             "What did we decide about refunds?", "Which clients want paper documents?"]


def texts(n: int, seed: int = 1) -> list[str]:
    """`n` varied, realistic memory texts, seeded."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        who = f"{rng.choice(NAMES)} {rng.choice(NAMES)}son"
        kind = i % 3
        if kind == 0:
            out.append(f"{who} has {rng.choice(CONDITIONS)} and takes {rng.choice(DRUGS)} "
                       f"{rng.choice(['daily', 'twice a day', 'when needed', 'at night'])}.")
        elif kind == 1:
            out.append(f"{who} prefers {rng.choice(THINGS)} and dislikes "
                       f"{rng.choice(THINGS)}.")
        else:
            out.append(f"On {rng.randint(1, 28)} {rng.choice(['May', 'June', 'July'])} we "
                       f"decided to {rng.choice(DECISIONS)} because {rng.choice(REASONS)}.")
    return out


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    ordered = sorted(samples_ms)
    return {"p50_ms": round(statistics.median(ordered), 3),
            "p95_ms": round(ordered[max(0, int(len(ordered) * 0.95) - 1)], 3)}


def embedding(embedder: LocalEmbedder, sample: int) -> dict[str, Any]:
    batch = texts(sample, seed=99)
    embedder.embed_sync(batch[:8])  # load the model and warm up
    started = time.perf_counter()
    embedder.embed_sync(batch)
    seconds = time.perf_counter() - started
    singles = []
    for text in QUESTIONS:
        started = time.perf_counter()
        embedder.embed_sync([text])
        singles.append((time.perf_counter() - started) * 1000)
    return {"model": embedder.name, "texts": sample, "texts_per_s": round(sample / seconds, 1),
            "one_query": percentiles(singles)}


def perturbed(real: np.ndarray, total: int, seed: int = 5) -> np.ndarray:
    """`real` plus made-up rows near them, to `total` rows, unit length."""
    rng = np.random.default_rng(seed)
    extra = total - len(real)
    if extra <= 0:
        return real[:total]
    base = real[rng.integers(0, len(real), extra)]
    noisy = base + rng.normal(0, 0.35 / np.sqrt(real.shape[1]), base.shape).astype(np.float32)
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return np.concatenate([real, noisy.astype(np.float32)])


def exact_top(vectors: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    scores = np.einsum("ij,j->i", vectors, query)
    top = np.argpartition(-scores, k - 1)[:k]
    return [int(i) for i in top[np.argsort(-scores[top])]]


async def podium_search(vectors: np.ndarray, queries: np.ndarray, folder: Path,
                        keys: Keyring | None = None) -> dict[str, Any]:
    name = f"memory-{len(vectors)}{'-sealed' if keys else ''}.db"
    store = SQLiteMemoryStore(folder / name, LocalEmbedder(), keys=keys)
    try:
        started = time.perf_counter()
        step = 5000
        for start in range(0, len(vectors), step):
            chunk = vectors[start:start + step]
            await store.add_many("bench", [NewMemory(text=f"memory {start + i}", source="system")
                                           for i in range(len(chunk))], vectors=chunk)
        insert_s = time.perf_counter() - started
        started = time.perf_counter()
        await store.search_vector("bench", queries[0], top_k=10)
        cold_ms = (time.perf_counter() - started) * 1000
        latencies, hits = [], 0
        for query in queries:
            started = time.perf_counter()
            found = await store.search_vector("bench", query, top_k=10)
            latencies.append((time.perf_counter() - started) * 1000)
            got = {int(m.text.split()[1]) for m in found}
            hits += len(got & set(exact_top(vectors, query, 10)))
        return {"method": "exact (numpy over the cached namespace matrix)",
                **percentiles(latencies), "cold_ms": round(cold_ms, 1),
                "recall_at_10": round(hits / (10 * len(queries)), 4),
                "insert_per_s": round(len(vectors) / insert_s)}
    finally:
        await store.close()


def sqlite_vec_search(vectors: np.ndarray, queries: np.ndarray, folder: Path
                      ) -> dict[str, Any]:
    try:
        import sqlean
        import sqlite_vec
    except ImportError as e:
        return {"skipped": f"needs {e.name} (pip install 'podium[bench]')"}
    db = sqlean.connect(str(folder / f"vec-{len(vectors)}.db"))
    db.enable_load_extension(True)
    sqlite_vec.load(db)
    db.execute(f"CREATE VIRTUAL TABLE v USING vec0(embedding float[{vectors.shape[1]}] "
               "distance_metric=cosine)")
    started = time.perf_counter()
    with db:
        db.executemany("INSERT INTO v (rowid, embedding) VALUES (?, ?)",
                       ((i + 1, row.tobytes()) for i, row in enumerate(vectors)))
    insert_s = time.perf_counter() - started
    latencies, hits = [], 0
    for query in queries:
        started = time.perf_counter()
        rows = db.execute("SELECT rowid FROM v WHERE embedding MATCH ? AND k = 10 "
                          "ORDER BY distance", (query.tobytes(),)).fetchall()
        latencies.append((time.perf_counter() - started) * 1000)
        hits += len({r[0] - 1 for r in rows} & set(exact_top(vectors, query, 10)))
    db.close()
    return {"method": f"sqlite-vec {package_version('sqlite-vec')} vec0 (full scan, exact)",
            **percentiles(latencies), "recall_at_10": round(hits / (10 * len(queries)), 4),
            "insert_per_s": round(len(vectors) / insert_s)}


async def main() -> None:
    quick = "--quick" in sys.argv
    sizes = (1_000, 3_000) if quick else (10_000, 100_000)
    real_count = 300 if quick else sizes[0]
    embedder = LocalEmbedder()
    report: dict[str, Any] = {"benchmark": "memory", "quick": quick,
                              "environment": environment()}
    report["embedding"] = embedding(embedder, 32 if quick else 512)
    started = time.perf_counter()
    real = embedder.embed_sync(texts(real_count))
    embed_all_s = time.perf_counter() - started
    questions = [f"{q} ({i})" if i >= len(QUESTIONS) else q
                 for i, q in enumerate(QUESTIONS * (2 if quick else 10))]
    queries = embedder.embed_sync(questions)
    report["vectors"] = {
        "real": real_count, "real_embedding_s": round(embed_all_s, 1),
        "perturbed_beyond_real": True,
        "how": "rows past the real ones are real embeddings plus Gaussian noise (sigma "
               "0.35/sqrt(dim)), renormalised",
        "queries": len(queries)}
    search: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for n in sizes:
            vectors = perturbed(real, n)
            search[str(n)] = {"podium_sqlite": await podium_search(vectors, queries,
                                                                   Path(folder)),
                              "podium_sqlite_encrypted": await podium_search(
                                  vectors, queries, Path(folder),
                                  Keyring(keys=(MasterKey.generate(),))),
                              "sqlite_vec": sqlite_vec_search(vectors, queries, Path(folder))}
    report["search"] = search
    memories = [Memory(id=f"m-{i}", namespace="bench", text=t, source="system")
                for i, t in enumerate(texts(5))]
    started = time.perf_counter()
    for _ in range(1000):
        render_memories(memories)
    report["prompt_render_us"] = round((time.perf_counter() - started) * 1000, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
