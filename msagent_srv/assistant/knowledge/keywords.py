"""Terms and their weights for the BM25 half of hybrid search (the index itself lives in Redis, which
applies the IDF). Latin text is split into lower-cased words; Chinese, which has no spaces, into
single characters and character pairs, so a Chinese question matches Chinese text even where the
embedding model only knows English."""

from __future__ import annotations

import re
import zlib
from collections import Counter

_TERMS = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?|[\u3400-\u9fff\uf900-\ufaff]+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_STOP = frozenset(
    "a an and are as at be by for from has have in is it its of on or that the this to was were "
    "what which who will with how do does did".split()
)
K1, B, AVERAGE_LENGTH = 1.2, 0.75, 120.0


def terms(text: str) -> list[str]:
    found: list[str] = []
    for run in _TERMS.findall(text.lower()):
        if _CJK.match(run):
            found.extend(run)  # characters
            found.extend(run[i : i + 2] for i in range(len(run) - 1))  # and pairs
        elif run not in _STOP:
            found.append(run)
    return found


def term_id(term: str) -> int:
    return zlib.crc32(term.encode()) & 0x7FFFFFFF


def term_weights(text: str) -> dict[int, float]:
    """BM25 term-frequency weights (saturated, length-normalised) by term id."""
    counts = Counter(terms(text))
    length = sum(counts.values()) or 1
    norm = K1 * (1 - B + B * length / AVERAGE_LENGTH)
    weights: dict[int, float] = {}
    for term, tf in counts.items():
        index = term_id(term)
        weights[index] = weights.get(index, 0.0) + tf * (K1 + 1) / (tf + norm)
    return weights


def query_terms(text: str) -> list[int]:
    return sorted({term_id(term) for term in terms(text)})
