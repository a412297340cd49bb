"""Chunks in Qdrant: one collection per session (`uuid_str`), a dense and a keyword vector per chunk,
searched together and fused by rank. Embedded local mode (a directory) by default, a server by URL.

The client is synchronous and used from one worker thread: local mode computes in Python and must not
run on the event loop, and one thread keeps its single-process file lock simple.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .chunking import Chunk
from .keywords import document_vector, query_vector

DENSE, KEYWORDS = "dense", "keywords"


@dataclass
class Hit:
    file: str
    chunk_id: str
    position: int
    score: float
    text: str
    headings: list[str]
    page: int | None = None

    def citation(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "chunk_id": self.chunk_id,
            "score": round(self.score, 4),
            "text": self.text,
            "heading": " > ".join(self.headings),
            "page": self.page,
        }


def collection_name(session: str) -> str:
    return "kb_" + re.sub(r"[^A-Za-z0-9_-]", "_", session)


class VectorStore:
    def __init__(self, path: Path | None = None, url: str | None = None, api_key: str | None = None) -> None:
        from qdrant_client import QdrantClient

        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="qdrant")
        if url:
            self._client = QdrantClient(url=url, api_key=api_key, timeout=30)
        else:
            assert path is not None
            path.mkdir(parents=True, exist_ok=True)
            self._client = QdrantClient(path=str(path))
        self._known: set[str] = set()
        self._remote = bool(url)

    async def _run(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(*args, **kwargs))

    def _tune_local(self, name: str) -> None:
        """Local mode writes each point in its own SQLite transaction, fsync'd: with WAL and
        synchronous=NORMAL a commit costs no fsync (a crash of this process loses nothing; a power cut
        may lose the last commits, and the index can be rebuilt from the files). 4x faster ingest."""
        local = getattr(self._client, "_client", None)
        collection = getattr(local, "collections", {}).get(name)
        connection = getattr(getattr(collection, "storage", None), "storage", None)
        if isinstance(connection, sqlite3.Connection):
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")

    def _ensure(self, name: str, dimension: int) -> None:
        from qdrant_client import models

        if name in self._known:
            return
        if self._client.collection_exists(name):
            self._known.add(name)
            self._tune_local(name)
            return
        self._client.create_collection(
            name,
            vectors_config={DENSE: models.VectorParams(size=dimension, distance=models.Distance.COSINE)},
            sparse_vectors_config={KEYWORDS: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        if self._remote:  # local mode scans payloads anyway (and warns about indexes)
            self._client.create_payload_index(name, "file", models.PayloadSchemaType.KEYWORD)
        self._known.add(name)
        self._tune_local(name)

    def _upsert(self, session: str, file: str, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        from qdrant_client import models

        name = collection_name(session)
        self._ensure(name, len(vectors[0]))
        points = []
        for chunk, vector in zip(chunks, vectors, strict=True):
            indices, values = document_vector(" ".join([*chunk.headings, chunk.text]))
            points.append(models.PointStruct(
                id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{session}/{file}#{chunk.position}")),
                vector={DENSE: vector, KEYWORDS: models.SparseVector(indices=indices, values=values)},
                payload={"file": file, "chunk_id": f"{file}#{chunk.position}", "position": chunk.position,
                         "headings": chunk.headings, "page": chunk.page, "text": chunk.text},
            ))  # fmt: skip
        for start in range(0, len(points), 256):
            self._client.upsert(name, points=points[start : start + 256], wait=True)

    async def upsert(self, session: str, file: str, chunks: list[Chunk], vectors: list[list[float]]) -> None:
        if chunks:
            await self._run(self._upsert, session, file, chunks, vectors)

    def _delete_file(self, session: str, file: str) -> None:
        from qdrant_client import models

        name = collection_name(session)
        if not self._client.collection_exists(name):
            return
        selector = models.FilterSelector(
            filter=models.Filter(
                must=[models.FieldCondition(key="file", match=models.MatchValue(value=file))]
            )
        )
        self._client.delete(name, points_selector=selector, wait=True)

    async def delete_file(self, session: str, file: str) -> None:
        await self._run(self._delete_file, session, file)

    def _count(self, session: str, file: str | None) -> int:
        from qdrant_client import models

        name = collection_name(session)
        if not self._client.collection_exists(name):
            return 0
        where = (
            models.Filter(must=[models.FieldCondition(key="file", match=models.MatchValue(value=file))])
            if file
            else None
        )
        return int(self._client.count(name, count_filter=where, exact=True).count)

    async def count(self, session: str, file: str | None = None) -> int:
        return await self._run(self._count, session, file)

    def _search(
        self, session: str, vector: list[float], query: str, files: list[str] | None, limit: int
    ) -> list[Hit]:
        from qdrant_client import models

        name = collection_name(session)
        if not self._client.collection_exists(name):
            return []
        where = (
            models.Filter(must=[models.FieldCondition(key="file", match=models.MatchAny(any=files))])
            if files
            else None
        )
        indices, values = query_vector(query)
        prefetch = [models.Prefetch(query=vector, using=DENSE, limit=limit * 4, filter=where)]
        if indices:
            prefetch.append(
                models.Prefetch(
                    query=models.SparseVector(indices=indices, values=values),
                    using=KEYWORDS,
                    limit=limit * 4,
                    filter=where,
                )
            )
        result = self._client.query_points(
            name,
            prefetch=prefetch,
            query=models.FusionQuery(fusion=models.Fusion.RRF),
            limit=limit,
            with_payload=True,
        )
        return [
            Hit(
                file=p.payload["file"],
                chunk_id=p.payload["chunk_id"],
                position=p.payload["position"],
                score=float(p.score),
                text=p.payload["text"],
                headings=p.payload.get("headings") or [],
                page=p.payload.get("page"),
            )
            for p in result.points
            if p.payload
        ]

    async def search(
        self, session: str, vector: list[float], query: str, files: list[str] | None = None, limit: int = 5
    ) -> list[Hit]:
        return await self._run(self._search, session, vector, query, files, limit)

    async def drop(self, session: str) -> None:
        def drop() -> None:
            name = collection_name(session)
            self._known.discard(name)
            if self._client.collection_exists(name):
                self._client.delete_collection(name)

        await self._run(drop)

    async def close(self) -> None:
        await self._run(self._client.close)
        self._executor.shutdown(wait=True)
