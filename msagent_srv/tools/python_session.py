"""A long-lived Python child process that keeps its globals between submissions (the code interpreter's
session). The child runs in its own session with a clean environment, no capabilities, a memory limit, and
dies with this process; it talks over two pipes with length-prefixed JSON frames, while its stdout and stderr
(Python's and any subprocess's) go to one more pipe that this side reads, bounded. After each submission
every process the code forked is killed (the session process itself stays); a timeout, a cancelled call or
a crash ends the whole session, and the next submission starts a fresh one.

Everything here is blocking with a deadline on every wait: callers run `run()` in a thread."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import secrets
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

from .process_tree import kill_forked
from .python_child import RUNNER, prepare_child

MAX_OUTPUT = 64 * 1024  # bytes of stdout/stderr kept per submission
MAX_FRAME = 64 * 1024 * 1024  # a reply larger than this ends the session
DRAIN_GRACE = (
    2.0  # seconds to wait for the output written before the reply, and for a dead child's last words
)
START_TIMEOUT = 30.0
_HEADER = struct.Struct(">I")


@dataclass
class Outcome:
    """What one submission produced."""

    output: str = ""  # stdout and stderr, interleaved as written (bounded)
    value: str | None = None  # repr of the last expression, when not None
    error: str | None = None  # the traceback
    images: list[str] = field(default_factory=list)  # paths of the figures saved
    timed_out: bool = False
    crashed: str | None = None  # how the session process ended, when it did
    restarted: bool = False  # the session was ended: its state is lost


class Ticket:
    """One submission's handle: `cancel()` from any thread ends it (and the session)."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.session: PythonSession | None = None

    def cancel(self) -> None:
        self.cancelled.set()
        if self.session is not None:
            self.session.abort(self)


# Sessions are started from one long-lived thread: the kernel kills a child when the *thread* that forked it
# ends (PR_SET_PDEATHSIG), and callers' threads come and go.
_spawner = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="python-session-spawn")
# Pids of the live sessions of this process; a sweep of stray processes keeps them. Held while spawning: a
# child not yet registered would look like a stray.
_registry_lock = threading.Lock()
_live: set[int] = set()


def sweep_strays() -> None:
    """What left a session (setsid) and was orphaned to this process (a node is a subreaper) ends too."""
    from ..node.hardening import end_strays

    with _registry_lock:
        end_strays(set(_live))


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "the session process stopped answering"
    if returncode < 0:
        try:
            return f"the session process was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"the session process was killed by signal {-returncode}"
    return f"the session process exited with code {returncode}"


class PythonSession:
    """One persistent interpreter, started on the first submission and after each restart."""

    def __init__(self, memory_mb: int = 512) -> None:
        self.memory_mb = memory_mb
        self.workdir: str | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._requests = self._replies = -1  # our ends of the control pipes
        self._lock = threading.Lock()  # one submission at a time
        self._current: Ticket | None = None
        self._closed = False

    # -- lifecycle ------------------------------------------------------------------------------------

    def _start(self) -> None:
        if self.workdir is None:
            self.workdir = tempfile.mkdtemp(prefix="code-session-")
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        try:
            future = _spawner.submit(self._spawn, req_r, rep_w)
            self._proc = future.result(timeout=START_TIMEOUT)
        except BaseException:
            for fd in (req_w, rep_r):
                os.close(fd)
            raise
        finally:
            for fd in (req_r, rep_w):
                os.close(fd)
        self._requests, self._replies = req_w, rep_r
        assert self._proc.stdout is not None
        os.set_blocking(self._proc.stdout.fileno(), False)
        os.set_blocking(self._replies, False)
        os.set_blocking(self._requests, False)

    def _spawn(self, req_r: int, rep_w: int) -> subprocess.Popen[bytes]:
        assert self.workdir is not None
        memory_mb = self.memory_mb
        with _registry_lock:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-u", "-c", RUNNER, str(req_r), str(rep_w)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={
                    "PATH": "/usr/local/bin:/usr/bin:/bin",
                    "HOME": self.workdir,
                    "LANG": "C.UTF-8",
                    "MPLBACKEND": "Agg",
                },
                preexec_fn=lambda: prepare_child(memory_mb),
                start_new_session=True,
                pass_fds=(req_r, rep_w),
            )
            _live.add(proc.pid)
        return proc

    def _end(self) -> None:
        """Kills the session process and everything it forked; the next submission starts a new one."""
        from ..node.hardening import kill_session

        proc, self._proc = self._proc, None
        if proc is None:
            return
        kill_forked(proc.pid, time.monotonic() + 5)  # while the tree is intact: descendants that left
        kill_session(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        for fd in (self._requests, self._replies):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._requests = self._replies = -1
        if proc.stdout is not None:
            proc.stdout.close()
        with _registry_lock:
            _live.discard(proc.pid)
        sweep_strays()

    def abort(self, ticket: Ticket) -> None:
        """From any thread: ends the session if it is running `ticket`'s submission (its reads then end)."""
        from ..node.hardening import kill_session

        proc = self._proc
        if self._current is ticket and proc is not None:
            kill_session(proc.pid)

    def close(self) -> None:
        self._closed = True
        proc = self._proc
        if proc is not None:
            from ..node.hardening import kill_session

            kill_session(proc.pid)
        if self._lock.acquire(timeout=30):
            try:
                self._end()
            finally:
                self._lock.release()

    # -- one submission -------------------------------------------------------------------------------

    def run(self, code: str, timeout: float, ticket: Ticket | None = None) -> Outcome:
        ticket = ticket or Ticket()
        ticket.session = self
        if not self._lock.acquire(timeout=timeout + START_TIMEOUT + 30):
            raise TimeoutError("the session is busy with another submission")
        try:
            if ticket.cancelled.is_set() or self._closed:
                return Outcome(crashed="the call was cancelled")
            if self._proc is None or self._proc.poll() is not None:
                self._end()
                self._start()
            self._current = ticket
            if ticket.cancelled.is_set():
                self._end()
                return Outcome(crashed="the call was cancelled", restarted=True)
            try:
                return self._submit(code, timeout, ticket)
            finally:
                self._current = None
        finally:
            self._lock.release()

    def _submit(self, code: str, timeout: float, ticket: Ticket) -> Outcome:
        proc = self._proc
        assert proc is not None and proc.stdout is not None and self.workdir is not None
        marker = f"\0msagent-end-{secrets.token_hex(16)}\0"
        request = json.dumps({"code": code, "marker": marker, "figdir": self.workdir}).encode()
        outbox = memoryview(_HEADER.pack(len(request)) + request)
        output = _BoundedOutput(marker.encode())
        inbox = bytearray()
        reply: dict | None = None
        out_fd, deadline = proc.stdout.fileno(), time.monotonic() + timeout
        out_open = True
        while reply is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            readable = [self._replies] + ([out_fd] if out_open else [])
            r, w, _ = select.select(readable, [self._requests] if outbox else [], [], min(remaining, 1.0))
            if self._requests in w:
                try:
                    outbox = outbox[os.write(self._requests, outbox) :]
                except BlockingIOError:
                    pass
                except OSError:
                    outbox = memoryview(b"")  # the child is gone: its replies pipe says so
            if out_fd in r:
                out_open = output.read(out_fd)
            if self._replies in r:
                chunk = _read_some(self._replies)
                if not chunk:  # the session process is gone
                    break
                inbox += chunk
                if len(inbox) >= _HEADER.size:
                    (size,) = _HEADER.unpack_from(inbox)
                    if size > MAX_FRAME:
                        break
                    if len(inbox) >= _HEADER.size + size:
                        try:
                            reply = json.loads(bytes(inbox[_HEADER.size : _HEADER.size + size]))
                        except ValueError:
                            break
        if reply is not None:
            output.drain(out_fd, time.monotonic() + DRAIN_GRACE)  # what was written before the reply
            kill_forked(proc.pid, time.monotonic() + 5)
            sweep_strays()
            if isinstance(reply, dict):
                images = reply.get("images")
                return Outcome(
                    output=output.text(),
                    value=_str_or_none(reply.get("value")),
                    error=_str_or_none(reply.get("error")),
                    images=[p for p in images if isinstance(p, str)] if isinstance(images, list) else [],
                )
        # timed out, cancelled, crashed, or spoke garbage: the session ends
        timed_out = proc.poll() is None and not ticket.cancelled.is_set() and time.monotonic() >= deadline
        if proc.poll() is None:
            from ..node.hardening import kill_session

            kill_forked(proc.pid, time.monotonic() + 5)
            kill_session(proc.pid)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)
        output.drain(out_fd, time.monotonic() + DRAIN_GRACE)
        how = None
        if ticket.cancelled.is_set():
            how = "the call was cancelled"
        elif not timed_out:
            how = _describe_exit(proc.returncode) if reply is None else "the session process answered garbage"
        self._end()
        return Outcome(output=output.text(), timed_out=timed_out, crashed=how, restarted=True)


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _read_some(fd: int) -> bytes | None:
    """Up to 64 KB; b"" at end of file; None when nothing is there yet."""
    try:
        return os.read(fd, 65536)
    except BlockingIOError:
        return None
    except OSError:
        return b""


class _BoundedOutput:
    """The first MAX_OUTPUT bytes of the output pipe up to the end marker; the rest is read and dropped."""

    def __init__(self, marker: bytes) -> None:
        self.marker = marker
        self.kept = bytearray()
        self.total = 0
        self.held = b""  # the last bytes read, held back: they may be the start of the marker
        self.ended = False

    def _commit(self, data: bytes) -> None:
        self.total += len(data)
        if len(self.kept) < MAX_OUTPUT:
            self.kept += data[: MAX_OUTPUT - len(self.kept)]

    def read(self, fd: int) -> bool:
        """Reads what is there; False once the pipe is closed."""
        chunk = _read_some(fd)
        if chunk is None:
            return True
        if not chunk:
            return False
        if self.ended:  # written after the submission ended: not its output
            return True
        pending = self.held + chunk
        at = pending.find(self.marker)
        if at >= 0:
            self.ended, self.held = True, b""
            self._commit(pending[:at])
        else:
            keep = len(self.marker) - 1
            self._commit(pending[:-keep])
            self.held = pending[-keep:]
        return True

    def drain(self, fd: int, deadline: float) -> None:
        """Reads until the marker, the end of the pipe or the deadline."""
        with contextlib.suppress(OSError, ValueError):
            while not self.ended and (remaining := deadline - time.monotonic()) > 0:
                r, _, _ = select.select([fd], [], [], remaining)
                if r and not self.read(fd):
                    return

    def text(self) -> str:
        if self.held:
            self._commit(self.held)
            self.held = b""
        text = self.kept.decode(errors="replace")
        return text + ("\n...[truncated]" if self.total > len(self.kept) else "")
