"""deploy/gatewayd.service passes systemd's own checker (which reports
problems on its output while exiting 0, so any output fails), with the unit's
binary path pointed at the binary under test."""
import os
import subprocess

UNIT = os.path.join(os.path.dirname(__file__), "..", "..", "deploy",
                    "gatewayd.service")


def test_systemd_unit_verifies(tmp_path):
    binary = os.path.abspath(os.environ.get("GATEWAYD_BIN", "./gatewayd"))
    with open(UNIT) as f:
        text = f.read()
    assert "/usr/local/bin/gatewayd -c /etc/gatewayd/gateway.toml" in text
    assert "ExecReload=/bin/kill -HUP $MAINPID" in text
    unit = tmp_path / "gatewayd.service"
    unit.write_text(text.replace("/usr/local/bin/gatewayd", binary))
    r = subprocess.run(["systemd-analyze", "verify", str(unit)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout == "" and r.stderr == "", (
        r.returncode, r.stdout, r.stderr)
