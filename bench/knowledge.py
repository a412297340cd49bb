"""Benchmark: knowledge ingest throughput, query latency over 10,000 chunks, and recall@5.

    python -m bench.knowledge [--chunks 10000] [--queries 200] [--json bench/results/knowledge.json]

A synthetic corpus of mixed documents (txt, md, html, csv, json), each paragraph stating one fact about a
made-up component; questions ask for those facts. Runs the real pipeline in-process (loaders, chunking,
all-MiniLM-L6-v2 embeddings, Qdrant local mode, hybrid search) against a real embedded Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path

from msagent_srv.assistant.knowledge.base import KnowledgeBase
from msagent_srv.assistant.knowledge.chunking import chunk_sections
from msagent_srv.assistant.knowledge.embeddings import SentenceTransformerEmbedder
from msagent_srv.assistant.knowledge.loaders import load
from msagent_srv.assistant.knowledge.store import VectorStore
from msagent_srv.identity import Space
from msagent_srv.settings import Settings
from msagent_srv.store import FileRecord, Store
from msagent_srv.store.embedded import EmbeddedRedis
from msagent_srv.store.keyword_index import KeywordIndex

from .common import percentile, write_json

BENCH_SPACE = Space(None, "bench")

SYLLABLES = "ka lo mi ra tu ve zo ni pa shi do re ga bu fe ko".split()
CITIES = ["Oslo", "Lima", "Kyoto", "Porto", "Quito", "Accra", "Hanoi", "Perth", "Turin", "Cusco"]
ROLES = ["designed", "tested", "audited", "rewrote", "documented"]


def word(rng: random.Random, parts: int = 3) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


def fact(rng: random.Random) -> tuple[str, str, str]:
    component, product, person = word(rng), word(rng, 2), word(rng, 2)
    city, role, year = rng.choice(CITIES), rng.choice(ROLES), rng.randint(1990, 2030)
    text = (
        f"The {component} module of the {product} system was {role} by {person} in {city} in {year}. "
        f"It handles {rng.choice(['billing', 'routing', 'storage', 'search', 'telemetry'])} for "
        f"{rng.randint(2, 900)} customers and its latency budget is {rng.randint(1, 99)} milliseconds. "
        f"Operators restart it with the {word(rng, 2).lower()} command when the queue exceeds "
        f"{rng.randint(100, 9999)} items, and its logs rotate every {rng.randint(2, 48)} hours."
    )
    return component, f"Who {role} the {component} module of the {product} system?", text


def render(kind: str, title: str, paragraphs: list[str]) -> str:
    if kind == "md":
        return f"# {title}\n\n" + "\n\n".join(f"## Part {i}\n\n{p}" for i, p in enumerate(paragraphs))
    if kind == "html":
        return f"<html><body><h1>{title}</h1>" + "".join(f"<p>{p}</p>" for p in paragraphs) + "</body></html>"
    if kind == "csv":
        return "id,note\n" + "\n".join(f'{i},"{p}"' for i, p in enumerate(paragraphs))
    if kind == "json":
        return json.dumps([{"id": i, "note": p} for i, p in enumerate(paragraphs)])
    return f"{title}\n\n" + "\n\n".join(paragraphs)


async def run(args: argparse.Namespace) -> dict:
    rng = random.Random(7)
    workdir = Path(tempfile.mkdtemp(prefix="msagent-bench-kb-"))
    redis = EmbeddedRedis(workdir / "redis", appendonly=False).start()
    store = Store.open(redis.url)
    defaults = Settings()  # the shipped chunking and embedding settings
    embedder = SentenceTransformerEmbedder(dtype=defaults.embedding_dtype)
    kb = KnowledgeBase(
        VectorStore(workdir / "qdrant"),
        embedder,
        store.files,
        KeywordIndex(store.redis),
        chunk_tokens=defaults.chunk_tokens,
        chunk_overlap=defaults.chunk_overlap,
    )
    await embedder.dimension()  # model load is not ingest
    documents_dir = workdir / "docs"
    documents_dir.mkdir()
    questions: list[tuple[str, str]] = []
    files: list[Path] = []
    paragraphs_per_file = 50
    planned = 0
    number = 0
    while planned < args.chunks:  # documents until their chunks (counted the way indexing cuts them) suffice
        kind = ["txt", "md", "html", "csv", "json"][number % 5]
        facts = [fact(rng) for _ in range(paragraphs_per_file)]
        questions.extend((q, component) for component, q, _ in facts[:2])
        path = documents_dir / f"doc{number:04d}.{kind}"
        path.write_text(render(kind, f"Document {number}", [t for _, _, t in facts]))
        files.append(path)
        planned += len(chunk_sections(load(path), defaults.chunk_tokens, defaults.chunk_overlap))
        number += 1
    total_bytes = sum(p.stat().st_size for p in files)
    for path in files:
        await store.files.put(
            BENCH_SPACE, FileRecord(name=path.name, path=str(path), size=path.stat().st_size, sha256="")
        )
    started = time.perf_counter()
    gate = asyncio.Semaphore(2)  # the server indexes each uploaded file as its own task; two in flight here

    async def index(path: Path) -> int:
        async with gate:
            return await kb.index_file(BENCH_SPACE, path.name, path)

    chunks = sum(await asyncio.gather(*(index(p) for p in files)))
    ingest_seconds = time.perf_counter() - started
    sample = rng.sample(questions, min(args.queries, len(questions)))
    for question, _ in sample[:10]:
        await kb.search(BENCH_SPACE, question)  # warm-up
    latencies, found = [], 0
    for question, component in sample:
        t0 = time.perf_counter()
        hits = await kb.search(BENCH_SPACE, question, limit=5)
        latencies.append(time.perf_counter() - t0)
        found += any(component in hit.text for hit in hits)
    await kb.close()
    await store.close()
    redis.stop()
    return {
        "documents": len(files),
        "bytes": total_bytes,
        "chunks": chunks,
        "ingest_seconds": ingest_seconds,
        "ingest_mb_per_min": total_bytes / 1e6 / (ingest_seconds / 60),
        "query_p50_ms": percentile(latencies, 50) * 1e3,
        "query_p99_ms": percentile(latencies, 99) * 1e3,
        "recall_at_5": found / len(sample),
        "queries": len(sample),
    }


def print_table(r: dict) -> None:
    print(f"{'measure':<34}{'value':>14}")
    print(f"{'documents / chunks':<34}{r['documents']:>7} / {r['chunks']}")
    print(f"{'ingest (MB of text per minute)':<34}{r['ingest_mb_per_min']:>14.2f}")
    print(f"{'query p50 / p99 (ms)':<34}{r['query_p50_ms']:>7.1f} / {r['query_p99_ms']:.1f}")
    print(f"{'recall@5':<34}{r['recall_at_5']:>14.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=10000, help="at least this many chunks in the index")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--json", default="bench/results/knowledge.json")
    args = parser.parse_args()
    r = asyncio.run(run(args))
    print_table(r)
    write_json(args.json, r)


if __name__ == "__main__":
    main()
