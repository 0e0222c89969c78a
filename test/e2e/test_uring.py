"""The write path where the kernel refuses io_uring (server.io_uring):
auto falls back to sendmsg with one line saying why, on refuses to start.
The refusal is real: a seccomp filter in the gateway's process makes
io_uring_setup fail with ENOSYS before it starts. With io_uring usable,
test_fanout.py's test_write_path_is_the_one_asked checks the path taken."""

import errno

from gwtest import Client, Gateway, uniq
import conftest


def _forbid_io_uring():
    """In the gateway's process, before exec: io_uring_setup fails with
    ENOSYS, as on a kernel without io_uring or in a container whose seccomp
    profile forbids it (Docker's default does)."""
    import seccomp
    f = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    f.add_rule(seccomp.ERRNO(errno.ENOSYS), "io_uring_setup")
    f.load()


def _without_io_uring(workdir, mode):
    gw = Gateway(conftest.BIN, str(workdir), {"server": {"io_uring": mode}})
    gw.preexec = _forbid_io_uring
    return gw


async def test_without_io_uring_auto_writes_with_sendmsg(tmp_path):
    """server.io_uring = auto where the kernel refuses a ring: one line says
    why, and the fan-out goes out through sendmsg."""
    gw = _without_io_uring(tmp_path, "auto").start()
    try:
        assert ("write path: sendmsg (io_uring is unusable here: "
                "Function not implemented)") in gw.stderr_text(), gw.tail()
        clients = [await Client.session(gw, guilds=[]) for _ in range(8)]
        tag = uniq("f")
        await gw.apublish({"event": "fallback", "broadcast": True,
                           "data": {"tag": tag}})
        for c in clients:
            msg = await c.recv()
            assert (msg.get("event"), msg.get("data")) == (
                "fallback", {"tag": tag}), msg
        totals = await gw.totals()
        assert (totals["uring_sends"], totals["uring_submits"]) == (0, 0), \
            totals
    finally:
        problems = gw.stop()
    assert not problems, problems


def test_without_io_uring_on_refuses_to_start(tmp_path):
    """server.io_uring = on where the kernel refuses a ring: the gateway
    does not start, and says what to change."""
    gw = _without_io_uring(tmp_path, "on")
    gw._configure()
    err = gw._spawn()
    text = gw.tail()
    gw.stop()
    assert err is not None and "exited with status 1" in err, (err, text)
    assert "server.io_uring = on, but io_uring is unusable here" in text, text
