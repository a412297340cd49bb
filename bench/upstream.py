"""The scripted OpenAI-wire upstream as its own process, answering every request with a ReAct tool call
(streamed in ~10 chunks): `python -m bench.upstream --port N`."""

from __future__ import annotations

import argparse
import signal
import threading

from tests.upstreams import ScriptedUpstream

REACT_ANSWER = 'I will look it up.\nAction: get_weather\nAction Input: {"city": "Paris", "unit": "celsius"}\n'


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    upstream = ScriptedUpstream()
    upstream.port = args.port
    upstream.script = lambda _body: REACT_ANSWER
    upstream.requests = _Discard()  # type: ignore[assignment]
    upstream.headers = _Discard()  # type: ignore[assignment]
    upstream.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()


class _Discard(list):
    """Keeps no history (a benchmark sends many thousands of requests)."""

    def append(self, _item: object) -> None:
        pass


if __name__ == "__main__":
    main()
