"""The ports the bench and the tests hand the processes they start (services/simulator/ports.py): never
one port to two of them.

The kernel offers a port it offered a moment ago when no one has bound it yet (here: 12 calls of
bind(0) gave one port twice). Two processes given one port: one fails to bind, and the bench's health
check, answered by the other, took the suite as started (a latency phase then read "saturated" with
no gateway running)."""
import socket

from services.simulator import bench, ports


def test_free_ports_are_never_handed_out_twice(monkeypatch):
    offered = iter([40001, 40002, 40001, 40002, 40003])  # what bind(0) gives, repeats included

    class Socket:
        def __init__(self, *args):
            self.port = None

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def bind(self, address):
            self.port = next(offered)

        def getsockname(self):
            return ("127.0.0.1", self.port)

    monkeypatch.setattr(ports, "_GIVEN", set())
    monkeypatch.setattr(ports.socket, "socket", Socket)
    assert [ports.free_port(), ports.free_port(), ports.free_port()] == [40001, 40002, 40003]
    assert bench.free_port is ports.free_port  # (the bench's, bigcases' and bench_gateway's)


def test_many_real_free_ports_are_distinct_and_free(monkeypatch):
    monkeypatch.setattr(ports, "_GIVEN", set())
    given = [ports.free_port() for _ in range(300)]
    assert len(set(given)) == len(given)
    with socket.socket() as s:  # (and each was free when handed out: the last one still is)
        s.bind(("127.0.0.1", given[-1]))
