"""A BM25 keyword index in Redis: one sorted set a term (chunk id -> saturated term frequency), scored
server-side: IDF from the sets' sizes, the sum by ZUNIONSTORE with the IDFs as weights."""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from ..identity import Space
from ..ids import random_hex
from . import keys
from .connection import translate_errors

# KEYS[1] scratch, KEYS[2] all chunks, KEYS[3..2+T] term sets, KEYS[3+T..] file chunk sets (restriction)
# ARGV[1] T (number of terms), ARGV[2] limit. Returns {chunk id, score, ...}, best first.
_SEARCH = """
local terms = tonumber(ARGV[1])
local n = redis.call('SCARD', KEYS[2])
if n == 0 or terms == 0 then return {} end
local args = {'ZUNIONSTORE', KEYS[1], terms}
local weights = {'WEIGHTS'}
for i = 3, 2 + terms do
  table.insert(args, KEYS[i])
  local df = redis.call('ZCARD', KEYS[i])
  table.insert(weights, tostring(math.log(1 + (n - df + 0.5) / (df + 0.5))))
end
for _, w in ipairs(weights) do table.insert(args, w) end
redis.call(unpack(args))
if #KEYS > 2 + terms then
  local files = {'SUNIONSTORE', KEYS[1] .. ':files'}
  for i = 3 + terms, #KEYS do table.insert(files, KEYS[i]) end
  redis.call(unpack(files))
  redis.call('ZINTERSTORE', KEYS[1], 2, KEYS[1], KEYS[1] .. ':files', 'WEIGHTS', 1, 0)
  redis.call('DEL', KEYS[1] .. ':files')
end
local top = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
redis.call('DEL', KEYS[1])
return top
"""


class KeywordIndex:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._search = redis.register_script(_SEARCH)

    @translate_errors
    async def add(self, space: Space, file: str, chunks: Sequence[tuple[str, dict[int, float]]]) -> None:
        """Index chunks: (chunk id, {term: weight})."""
        by_term: dict[int, dict[str, float]] = {}
        for chunk_id, weights in chunks:
            for term, weight in weights.items():
                by_term.setdefault(term, {})[chunk_id] = weight
        all_terms = set(by_term)
        async with self._redis.pipeline(transaction=False) as pipe:
            for term, members in by_term.items():  # one ZADD a term, not one a (term, chunk)
                pipe.zadd(keys.keyword_term(space, term), members)
            if chunks:
                ids = [chunk_id for chunk_id, _ in chunks]
                pipe.sadd(keys.keyword_chunks(space), *ids)
                pipe.sadd(keys.keyword_file_chunks(space, file), *ids)
            if all_terms:
                pipe.sadd(keys.keyword_file_terms(space, file), *all_terms)
            await pipe.execute()

    @translate_errors
    async def remove_file(self, space: Space, file: str) -> None:
        chunk_key, terms_key = keys.keyword_file_chunks(space, file), keys.keyword_file_terms(space, file)
        chunk_ids = list(await self._redis.smembers(chunk_key))
        terms = list(await self._redis.smembers(terms_key))
        async with self._redis.pipeline(transaction=False) as pipe:
            if chunk_ids:
                for term in terms:
                    pipe.zrem(keys.keyword_term(space, term), *chunk_ids)
                pipe.srem(keys.keyword_chunks(space), *chunk_ids)
            pipe.delete(chunk_key, terms_key)
            await pipe.execute()

    @translate_errors
    async def search(
        self, space: Space, terms: Sequence[int], files: Sequence[str] | None = None, limit: int = 20
    ) -> list[tuple[str, float]]:
        unique = list(dict.fromkeys(terms))
        search_keys = [keys.keyword_scratch(space, random_hex(8)), keys.keyword_chunks(space)]
        search_keys += [keys.keyword_term(space, t) for t in unique]
        search_keys += [keys.keyword_file_chunks(space, f) for f in files or []]
        flat = await self._search(keys=search_keys, args=[len(unique), limit])
        return [(flat[i], float(flat[i + 1])) for i in range(0, len(flat), 2)]
