"""The session-end check finds what a test leaves behind, even when it detached itself."""

from __future__ import annotations

import subprocess
import sys

from .helpers import free_port, wait_for
from .leftovers import Leftovers, leftovers

# A daemon: forks, the parent exits, the child starts its own session and listens on a port.
DAEMON = """
import os, socket, sys, time
if os.fork():
    os._exit(0)
os.setsid()
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
time.sleep(600)
"""


def test_a_detached_process_and_its_port_are_found_and_removed() -> None:
    """The session-end check sees a process that detached itself (and its port) as this run's."""
    port = free_port()
    subprocess.run([sys.executable, "-c", DAEMON, str(port), "msagent_srv-leftover-probe"], check=True)
    found = wait_for(lambda: (f := leftovers()).ports.get(port) and f, 30, what="the daemon's listening port")
    daemon = found.ports[port]
    assert "msagent_srv-leftover-probe" in found.processes[daemon]
    # remove only the probe: the session's own fixtures (its Redis, say) are descendants too
    Leftovers({daemon: found.processes[daemon]}, {}, {}).remove()
    wait_for(lambda: daemon not in leftovers().processes, 30, what="the daemon to be gone")
