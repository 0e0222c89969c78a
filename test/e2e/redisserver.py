"""A private redis-server for the end-to-end tests.

RedisServer starts Debian's redis-server on a free 127.0.0.1 port with no
persistence and its own directory (and a password when asked), waits
(bounded) until PING answers, and can be stopped with SIGKILL and restarted
on the same port, which is how a test makes gatewayd's Redis link fail and
recover. Fixtures: `redis_server` (one server per test) and
`redis_server_factory(**kw)` (as many as a test wants); both stop their
servers after the test. Request them before `gateway_factory`, so that the
gateways are stopped first.

RedisCluster starts three cluster-enabled servers and joins them with
`redis-cli --cluster create` into a cluster of three masters (no
replicas), that keeps serving the slots of the masters that are up when
one is down (`cluster-require-full-coverage no`); a master killed and
started again on its port rejoins with its slots (its nodes.conf is
kept). Fixture: `redis_cluster`.
"""

import os
import shutil
import signal
import subprocess
import time

import pytest
import redis

from gwtest import T, free_port

REDIS_BIN = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    def __init__(self, workdir, password=None, cluster=False):
        self.dir = str(workdir)
        self.password = password
        self.cluster = cluster
        self.port = free_port()
        # The cluster bus: by default port + 10000, which may be taken or
        # beyond 65535; a free port of its own instead.
        self.bus_port = free_port() if cluster else None
        self.proc = None
        self.log_path = os.path.join(self.dir, "redis.log")

    def start(self):
        """Starts the server on self.port and waits until it answers."""
        # Several attempts on the same port: after a SIGKILL the kernel may
        # still hold it for a moment, and another process may have taken it
        # between free_port() and the bind.
        deadline = time.monotonic() + T(10)
        while True:
            self._spawn()
            err = self._wait_ready(deadline)
            if err is None:
                return self
            self.stop()
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server on port %d: %s\n--- log ---\n"
                                   "%s" % (self.port, err, self.log_tail()))
            time.sleep(0.1)  # bounded by the deadline above

    def _spawn(self):
        argv = [REDIS_BIN, "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", self.dir,
                "--daemonize", "no"]
        if self.password:
            argv += ["--requirepass", self.password]
        if self.cluster:
            argv += ["--cluster-enabled", "yes",
                     "--cluster-port", str(self.bus_port),
                     "--cluster-config-file", "nodes.conf",
                     "--cluster-node-timeout", "1000",
                     "--cluster-require-full-coverage", "no"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                argv, cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log,
                stderr=subprocess.STDOUT)

    def _wait_ready(self, deadline):
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "exited with status %s" % self.proc.returncode
            try:
                with self.client(timeout=0.5) as c:
                    if c.ping():
                        return None
            except redis.RedisError as e:
                last = str(e)
            time.sleep(0.02)  # polling PING, bounded by the deadline
        return "PING not answered (%s)" % last

    def client(self, timeout=None):
        return redis.Redis(host="127.0.0.1", port=self.port,
                           password=self.password,
                           socket_timeout=timeout or T(5),
                           socket_connect_timeout=timeout or T(5))

    def stop(self):
        """Kills the server at once (SIGKILL, as a crash would)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(T(10))
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    def publish(self, channel, message):
        """PUBLISH; returns the number of subscribers that received it."""
        with self.client() as c:
            return c.publish(channel, message)

    def log_tail(self, lines=20):
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


class RedisCluster:
    """Three masters on loopback, joined into one cluster."""

    def __init__(self, workdir, masters=3):
        self.nodes = []
        for i in range(masters):
            d = workdir / ("node%d" % i)
            d.mkdir(parents=True)
            self.nodes.append(RedisServer(d, cluster=True))

    def start(self):
        for n in self.nodes:
            self._first_start(n)
        subprocess.run(
            ["redis-cli", "--cluster", "create"] +
            ["127.0.0.1:%d" % n.port for n in self.nodes] +
            ["--cluster-replicas", "0", "--cluster-yes"],
            check=True, timeout=T(30), stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT)
        self.wait_ok()
        return self

    @staticmethod
    def _first_start(node, attempts=3):
        """Starts a node that has not joined yet, on new ports if its own
        stay taken (another process may have bound the port, or the bus
        port, since free_port() chose it)."""
        for attempt in range(attempts):
            try:
                return node.start()
            except RuntimeError:
                if attempt == attempts - 1:
                    raise
                node.port, node.bus_port = free_port(), free_port()

    def wait_ok(self, timeout=20):
        """Until every node up says cluster_state:ok and knows every slot
        (bounded)."""
        deadline = time.monotonic() + T(timeout)
        while time.monotonic() < deadline:
            try:
                if all(self._ok(n) for n in self.nodes
                       if n.proc is not None):
                    return
            except redis.RedisError:
                pass
            time.sleep(0.05)  # polling CLUSTER INFO, bounded above
        raise RuntimeError("the cluster did not settle")

    @staticmethod
    def _ok(node):
        with node.client(timeout=0.5) as c:
            info = c.execute_command("CLUSTER", "INFO")
            if isinstance(info, bytes):
                info = info.decode()
            return ("cluster_state:ok" in info and
                    "cluster_slots_assigned:16384" in info)

    @property
    def seeds(self):
        return ["127.0.0.1:%d" % n.port for n in self.nodes]

    def _live(self):
        return next(n for n in self.nodes if n.proc is not None)

    def slot(self, key):
        with self._live().client() as c:
            return c.execute_command("CLUSTER", "KEYSLOT", key)

    def owner(self, key):
        """The master (of self.nodes) whose slots hold key, as the nodes
        up see it: a master that is down keeps its slots (no replicas)."""
        slot = self.slot(key)
        with self._live().client() as c:
            for start, end, master, *_ in c.execute_command("CLUSTER",
                                                            "SLOTS"):
                if start <= slot <= end:
                    port = master[1]
                    return next(n for n in self.nodes if n.port == port)
        raise LookupError("no node serves slot %d" % slot)

    def spublish(self, channel, message):
        """SPUBLISH on the channel's node: the receivers it reached."""
        with self.owner(channel).client() as c:
            return c.execute_command("SPUBLISH", channel, message)

    def stop(self):
        for n in self.nodes:
            n.stop()


@pytest.fixture
def redis_cluster(tmp_path):
    cluster = RedisCluster(tmp_path / "cluster")
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def redis_server_factory(tmp_path):
    servers = []

    def make(**kw):
        workdir = tmp_path / ("redis%d" % len(servers))
        workdir.mkdir()
        servers.append(RedisServer(workdir, **kw))
        return servers[-1].start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def redis_server(redis_server_factory):
    return redis_server_factory()
