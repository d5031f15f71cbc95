"""certgate demo: one command to a working gateway, as its printed lines say."""
import json
import os
import signal
import stat
import subprocess
import time

import pytest

BIN = os.environ.get("CERTGATE_BIN", "/work/main/build/certgate")
SLOW = 3 if os.environ.get("CG_SANITIZE") == "ON" else 1


def wait_for(pred, timeout=15 * SLOW, what="condition"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


@pytest.fixture
def demo(tmp_path):
    d = tmp_path / "demo"
    err = open(tmp_path / "demo.err", "w+")
    p = subprocess.Popen([BIN, "demo", "--dir", str(d), "--listen",
                          "127.0.0.1:0"], stdout=subprocess.PIPE,
                         stderr=err, text=True)

    def port():
        try:
            return json.loads((d / "ports.json").read_text())["web"]
        except (OSError, ValueError, KeyError):
            return None
    try:
        yield d, wait_for(port, what="demo ports.json"), p
    finally:
        p.send_signal(signal.SIGTERM)
        out, _ = p.communicate(timeout=20 * SLOW)
        err.seek(0)
        log = err.read()
        err.close()
        assert p.returncode == 0, log
        assert "Sanitizer" not in log and "runtime error" not in log, log


def curl(d, port, who=None, path="/"):
    cmd = ["curl", "-sS", "--cacert", str(d / "ca.pem"),
           "-w", "\n%{http_code}", "https://localhost:%d%s" % (port, path)]
    if who:
        cmd[1:1] = ["--cert", str(d / (who + ".pem")),
                    "--key", str(d / (who + ".key"))]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    body, _, code = r.stdout.rpartition("\n")
    return int(code), body


def test_demo_files_and_modes(demo):
    d, _, _ = demo
    for f in ["ca.pem", "server.pem", "alice.pem", "alice.key", "alice.p12",
              "bob.pem", "bob.key", "carol.pem", "carol.key",
              "certgate.json", "p12-password.txt"]:
        assert (d / f).exists(), f
    for f in ["alice.key", "bob.key", "carol.key", "alice.p12",
              "p12-password.txt", "server.key"]:
        assert stat.S_IMODE((d / f).stat().st_mode) == 0o600, f


def test_demo_identities(demo):
    d, port, _ = demo
    code, body = curl(d, port, "alice")
    assert code == 200
    ident = json.loads(body)["identity"]
    assert ident["X-Client-Verify"] == "SUCCESS"
    assert ident["X-Client-Cert-Email"] == "alice@example.com"
    code, body = curl(d, port, "bob")
    assert json.loads(body)["identity"]["X-Client-Verify"] == \
        "FAILED:revoked"
    code, body = curl(d, port, "carol")
    assert json.loads(body)["identity"]["X-Client-Verify"] == \
        "FAILED:expired"
    assert curl(d, port, None, "/private")[0] == 403
    assert curl(d, port, "alice", "/private")[0] == 200


def test_demo_prints_lines_and_password(demo):
    d, port, p = demo
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=20 * SLOW)
    pw = (d / "p12-password.txt").read_text().strip()
    assert pw and pw in out
    assert "curl --cacert %s/ca.pem --cert %s/alice.pem" % (d, d) in out
    r = subprocess.run(["openssl", "pkcs12", "-info", "-nokeys", "-in",
                        str(d / "alice.p12"), "-passin", "pass:" + pw],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # restarting reuses the directory
    p2 = subprocess.run([BIN, "demo", "--dir", str(d), "--help"],
                        capture_output=True, text=True)
    assert p2.returncode == 0


def test_demo_dir_is_the_data_dir(demo):
    d, _, _ = demo
    r = subprocess.run([BIN, "ca", "list", "--data", str(d), "--json"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    rows = rows if isinstance(rows, list) else rows.get("certificates", [])
    assert len(rows) >= 4
