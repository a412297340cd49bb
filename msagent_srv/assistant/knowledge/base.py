"""The knowledge base of every session: index uploaded files, forget them, search them."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from ...store import FileRecords, FileStatus
from .chunking import chunk_sections
from .embeddings import Embedder
from .loaders import load
from .store import Hit, VectorStore

log = logging.getLogger("msagent_srv.knowledge")

EMBED_BATCH = 128


class KnowledgeBase:
    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        records: FileRecords,
        *,
        chunk_tokens: int = 200,
        chunk_overlap: int = 30,
    ) -> None:
        self.store, self.embedder, self.records = store, embedder, records
        self.chunk_tokens, self.chunk_overlap = chunk_tokens, chunk_overlap

    async def index_file(self, session: str, name: str, path: Path) -> int:
        """Replace the file's chunks with those of its current content; the record tells how it went."""
        await self.records.update(session, name, status=FileStatus.indexing, error=None)
        try:
            sections = await asyncio.to_thread(load, path)
            chunks = chunk_sections(sections, self.chunk_tokens, self.chunk_overlap)
            await self.store.delete_file(session, name)
            # embedding (torch, its own thread) and writing (Qdrant, its own thread) overlap batch by batch
            writing: asyncio.Task[None] | None = None
            try:
                for start in range(0, len(chunks), EMBED_BATCH):
                    batch = chunks[start : start + EMBED_BATCH]
                    vectors = await self.embedder.embed(
                        [f"{c.heading_path}\n{c.text}" if c.headings else c.text for c in batch]
                    )
                    if writing is not None:
                        await writing
                    writing = asyncio.ensure_future(self.store.upsert(session, name, batch, vectors))
                if writing is not None:
                    await writing
            finally:
                if writing is not None and not writing.done():
                    writing.cancel()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the file is marked failed; nothing else is affected
            log.warning("indexing %s failed: %s", name, exc)
            await self.records.update(session, name, status=FileStatus.failed, error=str(exc)[:500])
            return 0
        await self.records.update(session, name, status=FileStatus.indexed, chunks=len(chunks))
        return len(chunks)

    async def forget_file(self, session: str, name: str) -> None:
        await self.store.delete_file(session, name)

    async def search(
        self, session: str, query: str, files: list[str] | None = None, limit: int = 5
    ) -> list[Hit]:
        if not query.strip():
            return []
        vector = (await self.embedder.embed([query]))[0]
        return await self.store.search(session, vector, query, files or None, limit)

    async def close(self) -> None:
        await self.embedder.close()
        await self.store.close()
