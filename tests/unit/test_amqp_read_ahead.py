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


class TimedSock(Sock):
    """A Sock that counts the timeout changes py-amqp makes around its reads."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.timeout, self.timeout_sets = None, 0

    def gettimeout(self):
        return self.timeout

    def settimeout(self, value):
        self.timeout_sets += 1
        self.timeout = value


class Conn:
    """What `Connection.blocking_read` uses of a connection: its transport and its frame handler."""

    def __init__(self, t):
        self.transport, self.frames = t, []

    def on_inbound_frame(self, frame):
        self.frames.append(frame)
        return False


def blocking_reads(conn, n, timeout=1.0):
    from amqp.connection import Connection

    timeouts = 0
    while len(conn.frames) < n:
        try:
            Connection.blocking_read(conn, timeout)
        except socket.timeout:
            timeouts += 1
    return timeouts


def test_frames_held_whole_in_the_buffer_are_read_without_touching_the_socket_timeout():
    sock = TimedSock(b"".join(FRAMES * 20))
    conn = Conn(transport(sock))
    blocking_reads(conn, 80)
    assert conn.frames == [(1, 1, b"\x00\x3c\x00\x3c" + b"m" * 40), (2, 1, b"h" * 30), (3, 1, "正文".encode() * 100),
                           (8, 0, b"")] * 20
    # the first frame comes from the socket (timeout set and set back); the other 79 from the buffer
    assert sock.timeout_sets == 2 and sock.timeout is None


@pytest.mark.parametrize("piece", [1, 7, 8, 9, 333])
def test_frames_split_by_the_network_still_arrive_whole_and_in_order(piece):
    conn = Conn(transport(TimedSock(b"".join(FRAMES * 3), piece=piece)))
    blocking_reads(conn, 12)
    assert conn.frames == [(1, 1, b"\x00\x3c\x00\x3c" + b"m" * 40), (2, 1, b"h" * 30), (3, 1, "正文".encode() * 100),
                           (8, 0, b"")] * 3


def test_a_timeout_mid_frame_keeps_the_partial_frame_and_the_next_read_finishes_it():
    sock = TimedSock(b"".join(FRAMES), piece=10, stalls={3, 8, 9, 20})
    conn = Conn(transport(sock))
    assert blocking_reads(conn, 4) == 4
    assert conn.frames == [(1, 1, b"\x00\x3c\x00\x3c" + b"m" * 40), (2, 1, b"h" * 30), (3, 1, "正文".encode() * 100),
                           (8, 0, b"")]
    assert sock.timeout is None  # (set back after every read through the socket)


def test_a_buffered_frame_with_a_wrong_end_octet_is_refused_as_py_amqp_refuses_it():
    from amqp.exceptions import UnexpectedFrame

    bad = struct.pack(">BHI", 1, 1, 3) + b"abc" + b"\x00"
    conn = Conn(transport(TimedSock(FRAMES[0] + bad + FRAMES[1])))
    blocking_reads(conn, 1)
    with pytest.raises(UnexpectedFrame):
        blocking_reads(conn, 2)
