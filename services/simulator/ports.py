"""Free local TCP ports for processes the bench and the tests start themselves.

`free_port()` binds port 0 and closes the socket; the kernel offers such a port again until
someone binds it (here, twelve calls gave one port twice), so two processes given ports one after
the other could get the same one: one fails to bind, and a health check answered by the other
takes it as started. This process never hands out a port twice."""
from __future__ import annotations

import socket

_GIVEN: set[int] = set()


def free_port() -> int:
    """A local TCP port free now that this process has not handed out before."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _GIVEN:
            _GIVEN.add(port)
            return port
