"""Test set-up: eventlet first, then real servers for integration tests.

Servers are chosen in this order: AMQP_URI / MONGO_URI if set; else a Docker engine through
pytest-docker and docker-compose.yml if one answers; else the project's own local servers
(`scripts/infra.sh up test`, which installs and starts them if needed).
"""
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

import eventlet  # noqa: E402

eventlet.monkey_patch()  # noqa: E402 -- must run before anything imports socket/threading

import os  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import quote, urlsplit, urlunsplit  # noqa: E402

import pytest  # noqa: E402

from services.simulator import ports  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def pytest_configure(config):
    config.option.suppress_eventlet_notification = True


def _docker_engine() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0


def _local_servers() -> dict:
    out = subprocess.run(["bash", str(ROOT / "scripts" / "infra.sh"), "up", "test"], capture_output=True,
                         text=True, timeout=900, check=True).stdout
    env = {}
    for line in out.splitlines():
        if line.startswith("export "):
            key, _, value = line[len("export "):].partition("=")
            env[key] = value.strip("'\"")
    return env


@pytest.fixture(scope="session")
def servers(request):
    """URIs of the real AMQP broker, its management API and the MongoDB-wire server."""
    if os.environ.get("AMQP_URI") and os.environ.get("MONGO_URI"):
        return {k: os.environ.get(k, "") for k in ("AMQP_URI", "MONGO_URI", "RABBIT_MGMT_URI", "RABBIT_PROMETHEUS_URI")}
    if _docker_engine():
        # docker-compose.yml has no default passwords: the test session makes its own
        import secrets

        for var in ("ZHIFA_RABBITMQ_PASSWORD", "ZHIFA_MONGO_PASSWORD", "ZHIFA_GRAFANA_PASSWORD"):
            os.environ.setdefault(var, secrets.token_urlsafe(18))
        rpw, mpw = quote(os.environ["ZHIFA_RABBITMQ_PASSWORD"], safe=""), quote(os.environ["ZHIFA_MONGO_PASSWORD"], safe="")
        docker_services = request.getfixturevalue("docker_services")
        docker_ip = request.getfixturevalue("docker_ip")
        amqp = f"amqp://zhifa:{rpw}@{docker_ip}:{docker_services.port_for('rabbitmq', 5672)}/"
        mgmt = f"http://zhifa:{rpw}@{docker_ip}:{docker_services.port_for('rabbitmq', 15672)}"
        mongo = f"mongodb://zhifa:{mpw}@{docker_ip}:{docker_services.port_for('mongo', 27017)}/?authSource=admin"
        docker_services.wait_until_responsive(timeout=120, pause=1, check=lambda: _mgmt_ok(mgmt))
        rprom = f"http://{docker_ip}:{docker_services.port_for('rabbitmq', 15692)}/metrics"
        return {"AMQP_URI": amqp, "MONGO_URI": mongo, "RABBIT_MGMT_URI": mgmt, "RABBIT_PROMETHEUS_URI": rprom}
    return _local_servers()


@pytest.fixture(scope="session")
def docker_setup():
    """Only the servers: the tests start the services themselves."""
    return ["up -d rabbitmq mongo"]


@pytest.fixture(scope="session")
def docker_compose_file():
    return str(ROOT / "docker-compose.yml")


def _mgmt_ok(mgmt: str) -> bool:
    import requests

    try:
        return requests.get(f"{_mgmt_base(mgmt)}/api/overview", auth=_mgmt_auth(mgmt), timeout=2).ok
    except requests.RequestException:
        return False


def _mgmt_base(mgmt: str) -> str:
    parts = urlsplit(mgmt)
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, "", "", "")).rstrip("/")


def _mgmt_auth(mgmt: str):
    parts = urlsplit(mgmt)
    return (parts.username or "guest", parts.password or "guest")


@pytest.fixture
def vhost(servers, vhost_deletions):
    """A fresh RabbitMQ virtual host per test, deleted afterwards: tests share nothing."""
    import requests

    name = f"t-{uuid.uuid4().hex[:10]}"
    base, auth = _mgmt_base(servers["RABBIT_MGMT_URI"]), _mgmt_auth(servers["RABBIT_MGMT_URI"])
    requests.put(f"{base}/api/vhosts/{name}", auth=auth, timeout=10).raise_for_status()
    requests.put(f"{base}/api/permissions/{name}/{auth[0]}", auth=auth, timeout=10,
                 json={"configure": ".*", "write": ".*", "read": ".*"}).raise_for_status()
    amqp = servers["AMQP_URI"].rstrip("/") + "/" + quote(name, safe="")
    yield {"name": name, "amqp_uri": amqp, "mgmt": base, "auth": auth}
    # deleted in a green thread while the next test runs (nothing reuses the name); the session waits for it
    vhost_deletions.append(eventlet.spawn(requests.delete, f"{base}/api/vhosts/{name}", auth=auth, timeout=30))


@pytest.fixture(scope="session")
def vhost_deletions():
    """The test vhosts' deletions still under way; every one finished before the session ends."""
    pending: list = []
    yield pending
    for deletion in pending:
        try:
            deletion.wait()
        except Exception as exc:  # noqa: BLE001 -- a vhost left behind is no test's failure; say so
            warnings.warn(f"a test vhost was not deleted: {exc!r}")


@pytest.fixture
def zhifa_config(servers, vhost):
    """nameko config for one test: its own vhost and its own database prefix."""
    from nameko import config

    import pymongo

    prefix = f"t{uuid.uuid4().hex[:8]}_"
    settings = {
        "AMQP_URI": vhost["amqp_uri"],
        "MONGO_URI": servers["MONGO_URI"],
        "DB_PREFIX": prefix,
        "RETRY_DELAYS_MS": [200, 400],
        "OUTBOX_SWEEP_SECONDS": 1,
        "METRICS_PORT": 0,
        "WEB_SERVER_ADDRESS": f"127.0.0.1:{ports.free_port()}",
        "max_workers": 10,
        "CASE_LIST_LAG_MS": 100,  # (the lagged case list sync runs in every test, a shorter lag than a suite's)
    }
    with config.patch(settings, clear=False):
        yield settings
    client = pymongo.MongoClient(servers["MONGO_URI"], serverSelectionTimeoutMS=3000)
    for name in client.list_database_names():
        if name.startswith(prefix):
            client.drop_database(name)
    client.close()


def _as_pg() -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the package's `postgres` user."""
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", "--"] if os.getuid() == 0 else []


@pytest.fixture(scope="session")
def ferretdb_on_postgresql():
    """A private PostgreSQL cluster with a FerretDB of its own on it (ZHIFA_FERRETDB_BACKEND=postgresql),
    one per test session (initdb and two server starts once): its tests use databases of their own."""
    import glob
    import tempfile

    import pymongo

    from tests.helpers import FERRETDB, stop_process, tcp_open, wait_for

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    assert found, "PostgreSQL is not installed: run scripts/bootstrap.sh postgresql"
    assert FERRETDB.exists(), "FerretDB binary missing: run scripts/bootstrap.sh"
    bin_dir = Path(found[-1]).parent
    base = Path(tempfile.mkdtemp(prefix="zhifa-pg-"))  # not pytest's tmp_path: the postgres user must enter it
    base.chmod(0o755)
    data, sock, log = base / "data", base / "sock", base / "pg.log"
    sock.mkdir()
    log.touch()
    if os.getuid() == 0:
        shutil.chown(sock, "postgres")
        shutil.chown(base, "postgres")
        shutil.chown(log, "postgres")
    subprocess.run(_as_pg() + [str(bin_dir / "initdb"), "-D", str(data), "-U", "zhifa", "--auth=trust",
                                "--encoding=UTF8", "--locale=C.UTF-8"], check=True, capture_output=True)
    pg = subprocess.Popen(_as_pg() + [str(bin_dir / "postgres"), "-D", str(data), "-c", "listen_addresses=",
                                      "-c", f"unix_socket_directories={sock}", "-c", "port=5432"],
                          stdout=subprocess.DEVNULL, stderr=open(log, "ab"))
    ferret = None
    try:
        wait_for(lambda: (sock / ".s.PGSQL.5432").exists(), timeout=30)
        wait_for(lambda: subprocess.run(_as_pg() + [str(bin_dir / "createdb"), "-h", str(sock), "-U", "zhifa",
                                                    "ferretdb"], capture_output=True).returncode == 0, timeout=30)
        port = ports.free_port()
        ferret = subprocess.Popen(
            [str(FERRETDB), "--handler=postgresql", f"--postgresql-url=postgres:///ferretdb?host={sock}&user=zhifa",
             f"--listen-addr=127.0.0.1:{port}", "--debug-addr=-", f"--state-dir={base}",
             "--telemetry=disable", "--log-level=error"],
            stdout=subprocess.DEVNULL, stderr=open(base / "ferretdb.log", "ab"))
        wait_for(lambda: tcp_open(port), timeout=20)
        client = pymongo.MongoClient(f"mongodb://127.0.0.1:{port}/", serverSelectionTimeoutMS=10000)
        yield client
        client.close()
    finally:
        if ferret is not None:
            stop_process(ferret)
        stop_process(pg)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def free_port():
    return ports.free_port  # (never one port twice in this process)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "integration" in item.nodeid.split("/"):
            item.add_marker(pytest.mark.integration)
    shard = _shard()
    if shard is not None:
        from tests.shards import assign

        index, count = shard
        mine = assign(sorted({_test_file(item.nodeid) for item in items}), count,
                      counts=_counts(items))[index - 1]
        kept = [item for item in items if _test_file(item.nodeid) in mine]
        dropped = [item for item in items if _test_file(item.nodeid) not in mine]
        if dropped:
            config.hook.pytest_deselected(items=dropped)
            items[:] = kept


# -- shards: `make test` runs the suite as ZHIFA_TEST_SHARDS pytest processes side by side -----------
# (scripts/test_shards.py; tests/shards.py splits the test files by their recorded durations)

def _shard() -> tuple[int, int] | None:
    """(k, n) from ZHIFA_TEST_SHARD="k/n" (1 <= k <= n), or None (the whole suite)."""
    spec = os.environ.get("ZHIFA_TEST_SHARD", "").strip()
    if not spec:
        return None
    k, _, n = spec.partition("/")
    if not (k.isdigit() and n.isdigit() and 1 <= int(k) <= int(n)):
        raise pytest.UsageError(f"ZHIFA_TEST_SHARD={spec!r}: expected k/n with 1 <= k <= n, e.g. 1/2")
    return int(k), int(n)


def _test_file(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _counts(items) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[_test_file(item.nodeid)] = counts.get(_test_file(item.nodeid), 0) + 1
    return counts


_durations: dict[str, float] = {}


def pytest_runtest_logreport(report):
    _durations[_test_file(report.nodeid)] = _durations.get(_test_file(report.nodeid), 0.0) + report.duration


def pytest_sessionfinish(session, exitstatus):
    """Each file's seconds (setup + call + teardown) of this run, for the next split (tests/shards.py)."""
    if _durations:
        from tests.shards import record

        record(_durations, os.environ.get("ZHIFA_TEST_SHARD", "all").replace("/", "of"))
