"""Which local processes the bench counts as the broker and the database (services/simulator/bench.py
`infrastructure`): found by the TCP port of their URI, or — a `MONGO_URI` naming a Unix domain socket,
as pymongo writes one (`mongodb://%2Fpath%2Fto.sock/`) — by that socket. Without the second, a database
reached through a socket went missing from the bench's CPU figures (its share of every event)."""
import os
import socket
import urllib.parse

from services.simulator import bench


def test_a_database_on_a_unix_socket_is_found_by_its_path(tmp_path):
    path = str(tmp_path / "mongo.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen(1)
        assert bench.unix_listener_pid(path) == os.getpid()
        uri = f"mongodb://{urllib.parse.quote(path, safe='')}/"
        assert bench.infrastructure("amqp://guest:guest@203.0.113.1:5672/", uri) == {"mongodb": os.getpid()}
    assert bench.unix_listener_pid(path) is None                 # closed: nobody listens there
    assert bench.unix_listener_pid(str(tmp_path / "other.sock")) is None


def test_a_database_on_a_local_port_is_found_by_the_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert bench.infrastructure("amqp://guest:guest@203.0.113.1:5672/", f"mongodb://127.0.0.1:{port}/") == \
            {"mongodb": os.getpid()}
    assert bench.infrastructure("amqp://guest:guest@203.0.113.1:5672/", "mongodb://203.0.113.1:27017/") == {}
