"""Fixtures of the gatewayd end-to-end suite.

- `gw`: the shared default gateway (workers = 4, 60 s heartbeat), started
  once per session and restarted if a test kills it. After each test it must
  still be alive, free of sanitizer reports, and serve a fresh client.
- `gateway_factory(**sections)`: a private gateway with config overrides,
  e.g. gateway_factory(session={"heartbeat_interval_ms": 300}); stopped with
  SIGTERM after the test, which fails on a crash, a hang or a sanitizer
  report.

Tests are `async def`; the runner below gives each its own event loop and a
time limit (30 s unless marked @pytest.mark.time_limit(seconds)), scaled by
GATEWAYD_TIMEOUT_SCALE.

A test marked @pytest.mark.each_transport runs twice: as `name[ws]` over
plain ws://, and as `name[wss]` against gateways that serve their clients
over wss:// (`gw` and `gateway_factory` both), whose Client and RawConn.to
connections then speak TLS (a certificate made once per run with openssl).
"""

import asyncio
import inspect
import os
import resource
import sys

import pytest

sys.dont_write_bytecode = True

import gwtest  # noqa: E402

BIN = os.path.abspath(os.environ.get("GATEWAYD_BIN", "./gatewayd"))

# The scale test holds 1,000 sockets on each side; the daemon inherits this.
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
_want = 65536 if _hard == resource.RLIM_INFINITY else min(_hard, 65536)
if _soft != resource.RLIM_INFINITY and _soft < _want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (_want, _hard))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "time_limit(seconds): wall-clock budget of an async test "
        "(before GATEWAYD_TIMEOUT_SCALE); default 30")
    config.addinivalue_line(
        "markers", "each_transport: run once over ws:// and once over wss://")


def pytest_generate_tests(metafunc):
    if metafunc.definition.get_closest_marker("each_transport"):
        metafunc.parametrize("transport", ["ws", "wss"], indirect=True)


@pytest.fixture(scope="session")
def wss_pair(tmp_path_factory):
    """The certificate and key of the wss:// runs: ECDSA P-256, as most
    sites serve now."""
    return gwtest.make_pair(tmp_path_factory.mktemp("wss"), "gw")


@pytest.fixture
def transport(request):
    """What the test's gateways serve clients over: None for ws://, the
    (cert, key) pair for wss://."""
    if getattr(request, "param", "ws") == "ws":
        return None
    return request.getfixturevalue("wss_pair")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    fn = pyfuncitem.obj
    if not inspect.iscoroutinefunction(fn):
        return None
    mark = pyfuncitem.get_closest_marker("time_limit")
    limit = gwtest.T(mark.args[0] if mark else 30)
    kwargs = {name: pyfuncitem.funcargs[name]
              for name in pyfuncitem._fixtureinfo.argnames}

    async def main():
        task = asyncio.ensure_future(fn(**kwargs))
        try:
            done, _ = await asyncio.wait([task], timeout=limit)
            if not done:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                pytest.fail("test exceeded its time limit of %.0fs" % limit)
            return task.result()
        finally:
            await gwtest.abort_all()

    asyncio.run(main())
    return True


def _start(workdir, overrides=None, wss=None):
    if not os.access(BIN, os.X_OK):
        pytest.fail("gatewayd binary %s not found or not executable (build it "
                    "with `make`, or set GATEWAYD_BIN)" % BIN, pytrace=False)
    gw = gwtest.Gateway(BIN, workdir, overrides, wss)
    try:
        return gw.start()
    except RuntimeError as e:
        pytest.fail(str(e), pytrace=False)


def _report(gw, problems):
    return ("gatewayd (%s): %s\n--- stderr tail (%s) ---\n%s"
            % (gw.config_path, "; ".join(problems), gw.stderr_path, gw.tail()))


def _serving_problem(gw):
    try:
        asyncio.run(_probe(gw))
    except (AssertionError, OSError, asyncio.TimeoutError, Exception) as e:
        return "no longer serves a fresh client: %s: %s" % (
            type(e).__name__, e)
    return None


async def _probe(gw):
    try:
        await asyncio.wait_for(gwtest.assert_serving(gw), gwtest.T(15))
    finally:
        await gwtest.abort_all()


class SharedGateway:
    """One shared gateway per transport, started when first asked for."""

    def __init__(self, tmp_path_factory):
        self.factory = tmp_path_factory
        self.gw = {}  # None (ws://) or the wss:// pair -> its gateway
        self.retired = []  # gateways that died; checked again at the end

    def get(self, wss=None):
        gw = self.gw.get(wss)
        if gw is None or not gw.alive():
            if gw is not None:
                self.retired.append(gw)
            gw = self.gw[wss] = _start(self.factory.mktemp("shared-gw"),
                                       wss=wss)
        return gw

    def shutdown(self):
        problems = []
        for gw in self.retired + list(self.gw.values()):
            p = gw.stop()
            if p:
                problems.append(_report(gw, p))
        return problems


@pytest.fixture(scope="session")
def shared_gateway(tmp_path_factory):
    holder = SharedGateway(tmp_path_factory)
    yield holder
    problems = holder.shutdown()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


def _live_problems(gw):
    """What /health and a fresh client show to be wrong with gw."""
    problems = gw.health_problems()
    if gw.alive():
        p = _serving_problem(gw)
        if p:
            problems.append(p)
    return problems


@pytest.fixture
def gw(shared_gateway, transport):
    gw = shared_gateway.get(transport)
    yield gw
    problems = _live_problems(gw)
    if gw.alive():
        problems.extend(gw.new_findings())
    if problems:
        pytest.fail(_report(gw, problems), pytrace=False)


@pytest.fixture
def gateway_factory(tmp_path, transport):
    started = []

    def make(**overrides):
        workdir = tmp_path / ("gw%d" % len(started))
        workdir.mkdir()
        gw = _start(workdir, overrides, transport)
        started.append(gw)
        return gw

    yield make
    reports = []
    for gw in started:
        problems = _live_problems(gw)
        problems.extend(gw.stop())
        if problems:
            reports.append(_report(gw, problems))
    if reports:
        pytest.fail("\n\n".join(reports), pytrace=False)
