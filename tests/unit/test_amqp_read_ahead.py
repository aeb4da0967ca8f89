"""py-amqp's frame reads served from one `recv` of what the socket has (messaging._read_ahead)."""
import socket
import struct

import pytest
from amqp.transport import TCPTransport

import services.kernel.messaging  # noqa: F401  (installs the read-ahead)


def frame(kind: int, channel: int, payload: bytes) -> bytes:
    return struct.pack(">BHI", kind, channel, len(payload)) + payload + b"\xce"


class Sock:
    """Hands out `data` in pieces of at most `piece` bytes per recv; raises socket.timeout at `stalls`."""

    def __init__(self, data: bytes, piece: int = 1 << 20, stalls=()):
        self.data, self.piece, self.stalls, self.calls = data, piece, set(stalls), 0

    def recv(self, n):
        self.calls += 1
        if self.calls in self.stalls:
            raise socket.timeout()
        out, self.data = self.data[:min(n, self.piece)], self.data[min(n, self.piece):]
        return out

    def sendall(self, data):
        pass


def transport(sock) -> TCPTransport:
    t = object.__new__(TCPTransport)
    t.sock, t.raise_on_initial_eintr, t.connected = sock, True, True
    t._setup_transport()
    return t


FRAMES = [frame(1, 1, b"\x00\x3c\x00\x3c" + b"m" * 40), frame(2, 1, b"h" * 30), frame(3, 1, "正文".encode() * 100),
          frame(8, 0, b"")]


def test_one_recv_serves_every_frame_the_socket_already_has():
    sock = Sock(b"".join(FRAMES * 20))
    t = transport(sock)
    got = [t.read_frame() for _ in range(80)]
    assert got[:4] == [(1, 1, b"\x00\x3c\x00\x3c" + b"m" * 40), (2, 1, b"h" * 30), (3, 1, "正文".encode() * 100),
                       (8, 0, b"")]
    assert got == got[:4] * 20
    assert sock.calls <= 3  # py-amqp alone: three per frame, 240
    assert bytes(t._read_buffer) == b""


@pytest.mark.parametrize("piece", [1, 5, 7, 8, 333])
def test_frames_split_anywhere_by_the_network_are_read_whole(piece):
    t = transport(Sock(b"".join(FRAMES * 3), piece=piece))
    assert [t.read_frame() for _ in range(12)] == [t2 for t2 in [
        (1, 1, b"\x00\x3c\x00\x3c" + b"m" * 40), (2, 1, b"h" * 30), (3, 1, "正文".encode() * 100), (8, 0, b"")] * 3]


def test_a_timeout_in_the_middle_of_a_frame_keeps_what_was_read_for_the_next_try():
    sock = Sock(b"".join(FRAMES), piece=10, stalls={3, 8, 9, 20})  # in a header, a payload, twice in a row
    t = transport(sock)
    got, timeouts = [], 0
    while len(got) < 4:
        try:
            got.append(t.read_frame())
        except socket.timeout:
            timeouts += 1
    assert timeouts == 4
    assert got == [(1, 1, b"\x00\x3c\x00\x3c" + b"m" * 40), (2, 1, b"h" * 30), (3, 1, "正文".encode() * 100),
                   (8, 0, b"")]
