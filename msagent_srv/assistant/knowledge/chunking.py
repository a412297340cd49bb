"""Chunks that follow the document's structure: split at headings, then paragraphs, then sentences
(CJK punctuation too), then words; packed up to a token budget, with overlap between neighbours."""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..tokens import count_text
from .loaders import Section

_PARAGRAPHS = re.compile(r"\n\s*\n")
_SENTENCES = re.compile(r"(?<=[.!?;。！？；…])\s*|(?<=\n)")
_WORDS = re.compile(r"(?<=\s)|(?<=[\u3400-\u9fff\uf900-\ufaff，、])")


@dataclass
class Chunk:
    text: str
    position: int  # order within the file
    headings: list[str]
    page: int | None = None

    @property
    def heading_path(self) -> str:
        return " > ".join(self.headings)


def _pieces(text: str, budget: int) -> list[str]:
    """`text` cut into pieces that each fit the budget, at the coarsest boundary that works."""
    if count_text(text) <= budget:
        return [text]
    for splitter in (_PARAGRAPHS, _SENTENCES, _WORDS):
        parts = [p for p in splitter.split(text) if p.strip()]
        if len(parts) > 1:
            return [piece for part in parts for piece in _pieces(part, budget)]
    # one unbreakable run (a long token sequence): cut by characters
    step = max(1, len(text) * budget // max(1, count_text(text)))
    return [text[i : i + step] for i in range(0, len(text), step)]


def _joiner(left: str, right: str) -> str:
    if not left or not right:
        return ""
    cjk = re.compile(r"[\u3400-\u9fff\uf900-\ufaff，。！？；：、]")
    return "" if cjk.match(left[-1]) or cjk.match(right[0]) else " " if "\n" not in left[-1:] else ""


def chunk_sections(sections: list[Section], max_tokens: int = 200, overlap_tokens: int = 20) -> list[Chunk]:
    chunks: list[Chunk] = []
    for section in sections:
        pieces = _pieces(section.text.strip(), max_tokens)
        current: list[str] = []
        size = 0
        for piece in pieces:
            tokens = count_text(piece)
            if current and size + tokens > max_tokens:
                chunks.append(Chunk(_join(current), len(chunks), list(section.headings), section.page))
                # carry the tail of this chunk into the next one
                carried: list[str] = []
                carried_size = 0
                for previous in reversed(current):
                    previous_size = count_text(previous)
                    if carried_size + previous_size > overlap_tokens:
                        break
                    carried.insert(0, previous)
                    carried_size += previous_size
                current, size = carried, carried_size
            current.append(piece)
            size += tokens
        if current:
            chunks.append(Chunk(_join(current), len(chunks), list(section.headings), section.page))
    return chunks


def _join(pieces: list[str]) -> str:
    text = ""
    for piece in pieces:
        piece = piece.strip()
        if piece:
            text += _joiner(text, piece) + piece if text else piece
    return text
