"""Scanning a ReAct transcript, streamed or whole (a whole reply is one piece): prose is passed on as it
arrives, a `Thought:` is kept apart as reasoning, `Action:`/`Action Input:` pairs become calls.

Work stays linear in the text however it is cut: every marker has a bounded length, so each piece is
searched together with only the last few characters before it; text is kept as lists of pieces and joined
once; an `Action` segment is parsed once, when it is complete."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...jsonrepair import first_object

if TYPE_CHECKING:
    from .parser import ParsedCall, ToolCallParser

_LINE = r"\n[ \t>*#]{0,8}"  # markers open a line; the text is scanned as if it began with "\n"
_COLON = r"[ \t]{0,8}[:：]"
_HEAD_MARKERS = {  # which labels end the current part of the text before the first Action
    "content": re.compile(
        _LINE + rf"(?:(?P<action>Action)|(?P<thought>Thought)|(?P<final>Final[ _]Answer)){_COLON}", re.I
    ),
    "thought": re.compile(_LINE + rf"(?:(?P<action>Action)|(?P<final>Final[ _]Answer)){_COLON}", re.I),
    "answer": re.compile(_LINE + rf"(?P<action>Action){_COLON}", re.I),
}
_HEAD_WORDS = {
    "content": ("action", "thought", "final answer", "final_answer"),
    "thought": ("action", "final answer", "final_answer"),
    "answer": ("action",),
}
_HEAD_MARKER_MAX = 1 + 8 + len("final answer") + 8 + 1
# after the first Action: the next Action line, or an Observation anywhere (the model ran past its stop)
_BOUNDARY = re.compile(rf"{_LINE}(?P<action>Action){_COLON}|(?P<observation>Observation){_COLON}", re.I)
_BOUNDARY_MAX = 1 + 8 + len("observation") + 8 + 1
ACTION_INPUT = re.compile(rf"Action[ _]Input{_COLON}", re.I)
OBSERVATION = re.compile(rf"Observation{_COLON}", re.I)
MAX_ACTIONS = 128  # as many calls as OpenAI takes tools; an Action line beyond ends the transcript
EARLY_CHECK_LIMIT = 1 << 16  # a single-call stream stops at the closing brace of calls up to this size


def _could_open_marker(rest: str, words: tuple[str, ...]) -> bool:
    """Whether `rest` (a line start without its newline) may still grow into one of the markers."""
    label = rest.lstrip(" \t>*#")
    if len(rest) - len(label) > 8:
        return False
    lowered = label.lower()
    for word in words:
        if word.startswith(lowered):
            return True
        if lowered.startswith(word):
            after = lowered[len(word) :]
            return len(after) <= 8 and not after.strip(" \t")
    return False


@dataclass
class StreamEvent:
    content: str | None = None
    reasoning: str | None = None
    call: ParsedCall | None = None


class ToolCallStream:
    def __init__(self, parser: ToolCallParser, *, parallel: bool = True) -> None:
        self.parser, self.parallel = parser, parallel
        self.calls_found = 0
        self.done = False  # True once no more upstream text is wanted
        # before the first Action: "content", "thought" (held until we know what it was) or "answer"
        self._mode = "content"
        self._hold = "\n"  # unscanned text that may open a marker (at most a marker's length)
        self._thought: list[str] = []
        self._content_started = False
        self._skip_space = True  # leading whitespace of the reply (and of a part after a label) is dropped
        self._pending_space: list[str] = []  # trailing whitespace waits until more text follows it
        # from the first Action on
        self._in_calls = False
        self._calls_text: list[str] = []  # the whole transcript from "Action", for a reply without calls
        self._calls_cut: int | None = None  # where an Observation ended it, counted in _calls_text
        self._calls_len = 0
        self._segment: list[str] = []  # text of the current Action after its colon
        self._segment_len = 0
        self._segment_tail = ""  # its last characters, searched again with the next piece
        self._actions = 0
        self._segment_done = False  # parsed early (single-call stream), the rest of it is ignored
        self._next_check = 0  # a single-call stream looks for the closed object when it has grown this far

    # -- prose, thought and answer ------------------------------------------------------------------------
    def _content(self, text: str) -> list[StreamEvent]:
        if self._skip_space:
            text = text.lstrip()
            if not text:
                return []
            self._skip_space = False
        body = text.rstrip()
        if not body:
            self._pending_space.append(text)
            return []
        if self._pending_space:
            body = "".join(self._pending_space) + body
        self._pending_space = [text[len(text.rstrip()) :]] if text[-1:].isspace() else []
        self._content_started = True
        return [StreamEvent(content=body)]

    def _new_part(self) -> None:
        """A label starts a new part: its leading spaces go, a line break joins it to earlier content."""
        self._pending_space = ["\n"] if self._content_started else []
        self._skip_space = True

    def _take(self, text: str) -> list[StreamEvent]:
        if not text:
            return []
        if self._mode == "thought":
            self._thought.append(text)
            return []
        return self._content(text)

    def _end_thought(self) -> list[StreamEvent]:
        thought = "".join(self._thought).strip()
        self._thought.clear()
        return [StreamEvent(reasoning=thought)] if thought else []

    def feed(self, text: str) -> list[StreamEvent]:
        if self.done or not text:
            return []
        if self._in_calls:
            return self._feed_calls(text)
        window, pos = self._hold + text, 0
        events: list[StreamEvent] = []
        while True:
            marker = _HEAD_MARKERS[self._mode].search(window, pos)
            if marker is None:
                break
            events += self._take(window[pos : marker.start()])
            pos = marker.end()
            if marker.group("action"):
                if self._mode == "thought":
                    events += self._end_thought()
                self._in_calls = True
                self._hold = ""
                head = window[marker.start() + 1 : pos]
                self._calls_text.append(head)
                self._calls_len = len(head)
                self._actions = 1
                return events + self._feed_calls(window[pos:])
            if self._mode == "thought":  # a Final Answer after the thought
                events += self._end_thought()
            self._mode = "thought" if marker.lastgroup == "thought" else "answer"
            if self._mode == "answer":
                self._new_part()
            else:
                self._pending_space.clear()
        line = window.rfind("\n", max(pos, len(window) - _HEAD_MARKER_MAX + 1))
        keep = line if line >= 0 and _could_open_marker(window[line + 1 :], _HEAD_WORDS[self._mode]) else None
        events += self._take(window[pos:keep])
        self._hold = window[keep:] if keep is not None else ""
        return events

    # -- calls ----------------------------------------------------------------------------------------------
    def _feed_calls(self, text: str) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if not text:
            return events
        self._calls_text.append(text)
        self._calls_len += len(text)
        tail = self._segment_tail
        window = tail + text
        offset = self._segment_len - len(tail)  # where window[0] sits in the segment
        self._segment.append(text)
        self._segment_len += len(text)
        pos = 0
        while True:
            boundary = _BOUNDARY.search(window, pos)
            if boundary is None:
                break
            end = offset + boundary.start()  # the segment ends here
            events += self._segment_complete(end)
            if self.done:
                return events
            if boundary.group("observation") or self._actions >= MAX_ACTIONS:
                self._calls_cut = self._calls_len - (len(window) - boundary.start())
                self.done = True
                return events
            self._actions += 1
            # a new segment begins after this Action's colon: it holds the rest of the window
            pos = boundary.end()
            rest = window[pos:]
            self._segment, self._segment_len, self._segment_done = [rest], len(rest), False
            offset, window, pos = self._segment_len - len(rest), rest, 0
            self._next_check = 0
        self._segment_tail = window[-(_BOUNDARY_MAX - 1) :]
        if (
            not self.parallel
            and not self._segment_done
            and "}" in text
            and self._segment_len <= EARLY_CHECK_LIMIT
        ):
            events += self._early_call()
        return events

    def _segment_text(self, end: int | None = None) -> str:
        text = "".join(self._segment)
        self._segment = [text]
        return text if end is None else text[:end]

    def _split(self, segment: str) -> tuple[str, str] | None:
        action_input = ACTION_INPUT.search(segment)
        if action_input is None:
            return None
        return segment[: action_input.start()].split("\n", 1)[0], segment[action_input.end() :]

    def _emit(self, call: ParsedCall | None) -> list[StreamEvent]:
        if call is None:
            return []
        self.calls_found += 1
        if not self.parallel:
            self.done = True
        return [StreamEvent(call=call)]

    def _segment_complete(self, end: int | None) -> list[StreamEvent]:
        if self._segment_done:
            return []
        self._segment_done = True
        pieces = self._split(self._segment_text(end))
        return self._emit(self.parser.parse_call(*pieces)) if pieces else []

    def _early_call(self) -> list[StreamEvent]:
        """A single-call stream stops as soon as the call's object has closed. The check re-reads the
        segment, so it runs again only once the segment has grown by half: linear work in all (and none
        past EARLY_CHECK_LIMIT: a bigger call ends with its segment, as in a parallel stream)."""
        if self._segment_len < self._next_check:
            return []
        self._next_check = self._segment_len + max(32, self._segment_len // 2)
        pieces = self._split(self._segment_text())
        if pieces is None:
            return []
        value, closed = first_object(pieces[1], final=False)
        if value is None or not closed:  # (None, True) is no object yet: a fence may still bring one
            return []
        self._segment_done = True
        return self._emit(self.parser.parse_call(*pieces))

    def finish(self) -> list[StreamEvent]:
        """The remaining events at the end of the stream. A transcript that held no valid call comes
        back as content, as the non-streamed reply would have it."""
        if not self._in_calls:
            events = self._take(self._hold)
            self._hold = ""
            if self._mode == "thought":  # a thought and nothing after it: that was the answer
                thought = "".join(self._thought)
                self._thought.clear()
                self._mode = "answer"
                self._new_part()
                events += self._content(thought)
            return events
        events = [] if self.done else self._segment_complete(None)
        self.done = True
        if self.calls_found == 0:
            calls_text = "".join(self._calls_text)[: self._calls_cut]
            self._new_part()
            events += self._content(calls_text)
        return events
