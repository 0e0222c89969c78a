"""A private RabbitMQ node for the end-to-end tests.

RabbitServer runs Debian's rabbitmq-server in the foreground with everything
of its own under one temporary directory: node name gwtest-<port>@localhost,
free loopback ports (AMQP, distribution, and a private epmd), data and log
directories, config and plugins files (no plugins), and HOME, so that the
Erlang cookie is private too. The system node, if any, is never touched.

    srv = RabbitServer(tmpdir).start()   # waits until AMQP answers
    srv.publish([envelope, ...], routing_key="t.x")
    srv.bindings()   # [(source, destination, kind, routing key)], from
                     # rabbitmqctl list_bindings (no management plugin)
    srv.stop()       # SIGKILL to the node's whole process group
    srv.restart()    # same ports and data dir: durable queues survive
    srv.close()      # stop, and stop the private epmd

The `rabbit` fixture gives a test module one node: import rabbit_fixture
into the module. Clients use pika (Debian python3-pika); every wait is
bounded and scaled by GATEWAYD_TIMEOUT_SCALE.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import time

import pika
import pytest

from gwtest import T, free_port

EXCHANGE = "discord_events"
DLQ = EXCHANGE + ".dlq"

SERVER_SCRIPTS = ("/usr/lib/rabbitmq/bin/rabbitmq-server",)


def server_script():
    for path in SERVER_SCRIPTS:
        if os.access(path, os.X_OK):
            return path
    return shutil.which("rabbitmq-server")


def _port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _body(msg):
    if isinstance(msg, (dict, list)):
        return json.dumps(msg).encode()
    if isinstance(msg, str):
        return msg.encode()
    return msg


class RabbitServer:
    def __init__(self, basedir):
        self.dir = str(basedir)
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = "gwtest-%d@localhost" % self.port
        self.proc = None
        self.epmd = None
        self.log_path = os.path.join(self.dir, "rabbitmq.out")
        self._write_files()
        # The node runs in its own session, so an interrupted run would
        # leave it behind.
        atexit.register(self.close)

    # -- lifecycle

    def _write_files(self):
        for sub in ("mnesia", "log", "home"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            # The tmp file system may be small; the default limit (50 MB
            # free) would block publishers on a full CI disk.
            f.write("disk_free_limit.absolute = 1MB\n"
                    "log.console = false\n"
                    "log.file.level = info\n")
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        open(os.path.join(self.dir, "rabbitmq-env.conf"), "w").close()

    def _env(self):
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_"))}
        d = self.dir
        env.update({
            "HOME": os.path.join(d, "home"),
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": os.path.join(d, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(d, "log"),
            "RABBITMQ_CONFIG_FILE": os.path.join(d, "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(d, "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(d, "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(d, "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": os.path.join(d, "rabbitmq.pid"),
            # Distribution on loopback only; epmd is ours (below).
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-kernel inet_dist_use_interface {127,0,0,1} -start_epmd false",
        })
        return env

    def _start_epmd(self, deadline):
        if self.epmd is not None and self.epmd.poll() is None:
            return
        self.epmd = subprocess.Popen(
            ["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=self._env(), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        while not _port_open(self.epmd_port):
            if self.epmd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("private epmd on port %d did not start"
                                   % self.epmd_port)
            time.sleep(0.02)  # polling a port, bounded by the deadline

    def start(self, timeout=60):
        script = server_script()
        if script is None:
            raise RuntimeError("rabbitmq-server not installed (make test-deps)")
        deadline = time.monotonic() + T(timeout)
        self._start_epmd(deadline)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [script], env=self._env(), cwd=self.dir,
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                start_new_session=True)
        self._wait_ready(deadline)
        return self

    def _wait_ready(self, deadline):
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rabbitmq-server exited with status %s\n%s"
                                   % (self.proc.returncode, self.tail()))
            if _port_open(self.port):
                try:
                    self.connection().close()
                    return
                except pika.exceptions.AMQPError as e:
                    last = repr(e)
            time.sleep(0.1)  # polling the AMQP port, bounded by the deadline
        self.stop()
        raise RuntimeError("rabbitmq-server did not accept AMQP on port %d "
                           "(%s)\n%s" % (self.port, last, self.tail()))

    def stop(self):
        """Kills the node at once (no clean shutdown), like a crash."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def restart(self, timeout=60):
        self.stop()
        return self.start(timeout)

    def close(self):
        self.stop()
        if self.epmd is not None:
            try:
                os.killpg(self.epmd.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.epmd.wait()
            self.epmd = None

    def tail(self, lines=40):
        text = ""
        for path in (self.log_path,
                     os.path.join(self.dir, "log", self.node + ".log")):
            try:
                with open(path, "rb") as f:
                    text += "--- %s ---\n%s\n" % (path, b"\n".join(
                        f.read().splitlines()[-lines:]).decode("utf-8",
                                                               "replace"))
            except OSError:
                pass
        return text

    # -- the node's own CLI (blocking, about half a second a call)

    def ctl(self, *args):
        """Runs rabbitmqctl against this node (Debian's own script, not the
        wrapper that switches to the rabbitmq user, whose cookie is not
        this node's) and returns its output."""
        ctl = os.path.join(os.path.dirname(server_script()), "rabbitmqctl")
        out = subprocess.run([ctl, "-q", "-n", self.node] + list(args),
                             env=self._env(), capture_output=True, text=True,
                             timeout=T(30))
        if out.returncode != 0:
            raise RuntimeError("rabbitmqctl %s: %s" % (" ".join(args),
                                                       out.stderr.strip()))
        return out.stdout

    def bindings(self):
        """Every binding of the default vhost, as (source, destination,
        destination kind, routing key); the default exchange's left out."""
        rows = json.loads(self.ctl(
            "list_bindings", "--formatter", "json", "source_name",
            "destination_name", "destination_kind", "routing_key"))
        return [(r["source_name"], r["destination_name"],
                 r["destination_kind"], r["routing_key"])
                for r in rows if r["source_name"] != ""]

    # -- clients (pika, blocking; call from a thread in async tests)

    def connection(self):
        params = pika.ConnectionParameters(
            host="127.0.0.1", port=self.port, connection_attempts=1,
            socket_timeout=T(5), blocked_connection_timeout=T(10),
            stack_timeout=T(10), heartbeat=0)
        return pika.BlockingConnection(params)

    def publish(self, messages, routing_key="events", persistent=True,
                exchange=EXCHANGE):
        """Publishes each message (dict, str or bytes) and returns once
        RabbitMQ has confirmed them all."""
        conn = self.connection()
        try:
            ch = conn.channel()
            ch.confirm_delivery()
            ch.exchange_declare(exchange, "topic", durable=True)
            props = pika.BasicProperties(delivery_mode=2 if persistent else 1,
                                         content_type="application/json")
            for msg in messages:
                ch.basic_publish(exchange, routing_key, _body(msg), props)
        finally:
            conn.close()

    def get_all(self, queue):
        """Takes every message now in queue: [(body, properties)]."""
        conn = self.connection()
        out = []
        try:
            ch = conn.channel()
            while True:
                method, props, body = ch.basic_get(queue, auto_ack=True)
                if method is None:
                    return out
                out.append((body, props))
        finally:
            conn.close()

    def queue_info(self, queue):
        """(messages, consumers) of queue; "exclusive" when another
        connection owns it exclusively; None when it does not exist."""
        conn = self.connection()
        try:
            ch = conn.channel()
            try:
                ok = ch.queue_declare(queue, passive=True)
            except pika.exceptions.ChannelClosedByBroker as e:
                if e.reply_code == 404:
                    return None
                if e.reply_code == 405:  # RESOURCE_LOCKED
                    return "exclusive"
                raise
            return ok.method.message_count, ok.method.consumer_count
        finally:
            if conn.is_open:
                conn.close()


@pytest.fixture(scope="module", name="rabbit")
def rabbit_fixture(tmp_path_factory):
    """`rabbit`: one private RabbitMQ node for the test module (import this
    function into the module that uses it)."""
    if server_script() is None:
        pytest.fail("rabbitmq-server is not installed (make test-deps)",
                    pytrace=False)
    srv = RabbitServer(tmp_path_factory.mktemp("rabbitmq"))
    try:
        srv.start()
    except RuntimeError as e:
        srv.close()
        pytest.fail(str(e), pytrace=False)
    yield srv
    srv.close()
