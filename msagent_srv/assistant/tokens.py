"""Token counts when a backend reports none: CJK characters count one each, other text by word pieces."""

from __future__ import annotations

import re
from typing import Any

_PIECE = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[A-Za-z]{1,4}|\d{1,3}|[^\sA-Za-z\d\u3400-\u9fff]")


def count_text(text: str) -> int:
    return len(_PIECE.findall(text))


def count_messages(messages: list[dict[str, Any]]) -> int:
    # ~4 tokens of framing a message, as chat templates add
    return sum(4 + count_text(str(m.get("content") or "")) for m in messages) + 2
