"""Incremental parsing of a streamed ReAct transcript: content is passed on as it arrives, but nothing
that may be the start of an `Action:` is let through until it is known not to be one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .parser import (
    _ACTION,
    _ACTION_INPUT,
    _OBSERVATION,
    ParsedCall,
    ToolCallParser,
    _balanced_object,
    clean_content,
)

_MARKERS = ("\naction:", "action:", "\nfinal answer:", "final answer:", "thought:")
_LABEL = re.compile(r"(?:^|(?<=\n))[ \t]*(?:Final[ _]Answer|Thought)[ \t]*[:：][ \t]*", re.IGNORECASE)


def _held_back(buffer: str) -> int:
    """How many trailing characters could begin a marker and must wait for more text."""
    lowered = buffer.lower()
    longest = 0
    for marker in _MARKERS:
        for size in range(min(len(marker), len(lowered)), 0, -1):
            if marker.startswith(lowered[-size:]):
                longest = max(longest, size)
                break
    # "Action" alone is held back too, so a full-width colon ("Action：") arriving next is still caught
    return longest


def _object_closed(text: str) -> bool:
    """True when the first JSON object in `text` has its closing brace."""
    candidate = _balanced_object(text)
    return candidate is not None and candidate in text


@dataclass
class StreamEvent:
    content: str | None = None
    call: ParsedCall | None = None


class ToolCallStream:
    def __init__(self, parser: ToolCallParser, *, parallel: bool = True) -> None:
        self.parser, self.parallel = parser, parallel
        self._buffer = ""
        self._calls_text: str | None = None
        self._emitted_calls = 0
        self._content_started = False
        self.calls_found = 0
        self.done = False  # True once no more upstream text is wanted

    def _content(self, text: str) -> list[StreamEvent]:
        text = _LABEL.sub("", text)
        if not self._content_started:
            text = text.lstrip()
        if not text:
            return []
        self._content_started = True
        return [StreamEvent(content=text)]

    def feed(self, text: str) -> list[StreamEvent]:
        if self.done or not text:
            return []
        if self._calls_text is not None:
            self._calls_text += text
            return self._complete_calls(final=False)
        self._buffer += text
        match = _ACTION.search(self._buffer)
        if match:
            events = self._content(self._buffer[: match.start()].rstrip())
            self._calls_text = self._buffer[match.start() :]
            self._buffer = ""
            return events + self._complete_calls(final=False)
        keep = _held_back(self._buffer)
        ready, self._buffer = (
            self._buffer[: len(self._buffer) - keep],
            self._buffer[len(self._buffer) - keep :],
        )
        return self._content(ready)

    def _complete_calls(self, final: bool) -> list[StreamEvent]:
        assert self._calls_text is not None
        text = self._calls_text
        observation = _OBSERVATION.search(text)
        if observation:
            text, final = text[: observation.start()], True
        segments = _ACTION.split(text)[1:]
        events: list[StreamEvent] = []
        for index, segment in enumerate(segments):
            if index < self._emitted_calls:
                continue
            is_last = index == len(segments) - 1
            pieces = _ACTION_INPUT.split(segment, 1)
            if len(pieces) < 2:
                if final or not is_last:
                    self._emitted_calls = index + 1  # an Action without input: nothing to call
                continue
            # the last call may still grow; a single-call stream may stop as soon as its JSON closes
            if is_last and not final and (self.parallel or not _object_closed(pieces[1])):
                continue
            call = self.parser.parse_call(pieces[0].split("\n", 1)[0], pieces[1])
            self._emitted_calls = index + 1
            if call is not None:
                self.calls_found += 1
                events.append(StreamEvent(call=call))
                if not self.parallel:
                    self.done = True
                    return events
        if final:
            self.done = True
        return events

    def finish(self) -> list[StreamEvent]:
        """The remaining events at the end of the stream. A transcript that held no valid call comes
        back as content, as the non-streamed reply would have it."""
        if self._calls_text is None:
            events = self._content(self._buffer)
            self._buffer = ""
            return events
        events = [] if self.done else self._complete_calls(final=True)
        if self.calls_found == 0:
            events += self._content(clean_content(self._calls_text))
        return events
