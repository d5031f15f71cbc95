"""Revocation that bites at once (issue 4): `certgate ca revoke` in another
process reaches a running gateway that trusts the built-in CA within a
second, closes open connections that use the revoked certificate, and a
session made before the revocation does not resume after it. Also: a
reload that switches the client CA closes connections the new CA does not
trust, while anonymous connections survive a switch to required."""

import json
import os
import re
import socket
import ssl
import time
import types

import pytest

import cgtest
from cgtest import config, connect, listener, route, run_cli

SLOW = 3 if os.environ.get("CG_SANITIZE") == "ON" else 1


def ca(*args):
    r = run_cli(["ca"] + [str(a) for a in args])
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.fixture
def devices(tmp_path):
    """A built-in CA with two device certificates."""
    data, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    ca("init", "--name", "Devices", "--data", data)
    devs = {}
    for cn in ("dev1", "dev2"):
        text = ca("issue", "client", "--cn", cn, "--data", data,
                  "--out-dir", out)
        pem = str(out / (cn + ".pem"))
        devs[cn] = types.SimpleNamespace(
            name=cn, cert=pem, chain=pem, key=str(out / (cn + ".key")),
            serial=re.search(r"^serial: (\S+)$", text, re.M).group(1))
    return data, devs


def start(cg, pki, upstream, data, mode="required", **kw):
    c = config(pki, [listener("web", pki, [route(upstream)], mode=mode,
                              trust="devices")], data_dir=str(data), **kw)
    c["trust"]["devices"] = {"builtin_ca": True}
    return cg.start(c)


def ctx_for(pki, dev, max_version=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.root.cert)
    ctx.load_cert_chain(dev.cert, dev.key)
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def wait_closed(conn, seconds):
    """Seconds until the server closed conn (EOF or reset), or None."""
    t0 = time.monotonic()
    conn.sock.settimeout(seconds)
    try:
        while True:
            d = conn.sock.recv(4096)
            if not d:
                return time.monotonic() - t0
    except (ConnectionError, ssl.SSLError):
        return time.monotonic() - t0
    except socket.timeout:
        return None


def refusals(d, cn):
    return [r for r in d.logs() if r.get("event") == "connection_refused_now"
            and r.get("reason") == "revoked" and r.get("cn") == cn]


def test_revoke_closes_open_keepalive_connection(cg, pki, upstream,
                                                 devices):
    data, devs = devices
    d = start(cg, pki, upstream, data)
    conn = cgtest.Conn(d.port(), ctx_for(pki, devs["dev1"]))
    other = cgtest.Conn(d.port(), ctx_for(pki, devs["dev2"]))
    assert conn.request("GET", "/a").status == 200
    assert other.request("GET", "/a").status == 200
    t0 = time.monotonic()
    ca("revoke", devs["dev1"].serial, "--data", data)
    took = wait_closed(conn, 3 * SLOW)
    assert took is not None, "revoked connection still open after 3 s"
    assert time.monotonic() - t0 < 1.5 * SLOW
    d.wait_log(lambda r: r.get("event") == "connection_refused_now" and
               r.get("reason") == "revoked" and
               r.get("cn") == "dev1", what="connection_refused_now")
    # dev2's connection is untouched and keeps working
    assert other.request("GET", "/b").status == 200
    other.close()
    # new handshakes with dev1 are refused without any reload
    assert cgtest.refused(pki, d.port(), devs["dev1"]) is not None


def test_revoke_during_handshake_refuses_when_done(cg, pki, upstream,
                                                   devices):
    """A handshake the gateway began before the revocation reached it
    (its ClientHello taken, its flight sent, the client's certificate
    still to come) is judged under the revocation once it is done: no
    request is served, the refusal is logged."""
    data, devs = devices
    d = start(cg, pki, upstream, data, workers=1)
    ctx = ctx_for(pki, devs["dev1"])
    open_conn = cgtest.Conn(d.port(), ctx)
    assert open_conn.request("GET", "/a").status == 200
    half = cgtest.HalfHandshake(d.port(), ctx)
    ca("revoke", devs["dev1"].serial, "--data", data)
    # the worker has the new settings once it closed the open connection
    assert wait_closed(open_conn, 3 * SLOW) is not None
    try:
        half.finish()  # TLS 1.3: the client is done before the server judges
        half.send(cgtest.build_request("GET", "/late", close=True))
        got = half.recv()
    except (ssl.SSLError, ConnectionError):
        got = b""
    half.close()
    assert got == b"", "served after the revocation: %r" % got[:80]
    # two refusals logged: the open connection's and the late handshake's
    cgtest.wait_for(lambda: len(refusals(d, "dev1")) == 2, seconds=5,
                    what="refusal of the late handshake")
    assert not [r for r in d.access_logs() if r.get("path") == "/late"]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3,
                                     ssl.TLSVersion.TLSv1_2])
def test_revoke_closes_open_resumed_connection(cg, pki, upstream, devices,
                                               version):
    """A resumed connection keeps no parsed certificate (nor does its
    cache entry): what it kept of it must still find the revocation, in
    both TLS versions (1.3 leaves OpenSSL after the handshake, 1.2 stays)."""
    data, devs = devices
    d = start(cg, pki, upstream, data)
    ctx = ctx_for(pki, devs["dev1"], max_version=version)
    c = cgtest.Conn(d.port(), ctx)
    assert c.request("GET", "/a").status == 200
    sess = c.session
    c.close()
    for i in range(2):  # a resumption of a resumption too
        c = cgtest.Conn(d.port(), ctx, session=sess)
        assert c.session_reused
        up = c.request("GET", "/r%d" % i).upstream()
        assert up.get("X-Client-Verify") == "SUCCESS"
        assert up.get("X-Client-Cert-Subject") == "CN=dev1"
        sess = c.session
        if i == 0:
            c.close()
    ca("revoke", devs["dev1"].serial, "--data", data)
    assert wait_closed(c, 3 * SLOW) is not None, \
        "revoked resumed connection still open after 3 s"
    d.wait_log(lambda r: r.get("event") == "connection_refused_now" and
               r.get("reason") == "revoked", what="connection_refused_now")


def test_revoke_seen_in_optional_mode_without_reload(cg, pki, upstream,
                                                    devices):
    data, devs = devices
    d = start(cg, pki, upstream, data, mode="optional")

    def verify():
        with connect(pki, d.port(), ctx=ctx_for(pki, devs["dev1"])) as c:
            try:
                r = c.request("GET", "/v", close=True)
            except (EOFError, ConnectionError):
                # made just before the gateway saw the revocation: the
                # revocation closes it as an open connection
                return "closed"
            return r.upstream().get("X-Client-Verify")
    assert verify() == "SUCCESS"
    ca("revoke", devs["dev1"].serial, "--data", data)
    cgtest.wait_for(lambda: verify() == "FAILED:revoked", seconds=2 * SLOW,
                    what="FAILED:revoked after ca revoke")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3,
                                     ssl.TLSVersion.TLSv1_2])
def test_session_made_before_revocation_does_not_resume(cg, pki, upstream,
                                                        devices, version):
    data, devs = devices
    d = start(cg, pki, upstream, data, mode="optional")
    ctx = ctx_for(pki, devs["dev1"], max_version=version)
    c = cgtest.Conn(d.port(), ctx)
    assert c.request("GET", "/1").status == 200
    sess = c.session
    c.close()
    c = cgtest.Conn(d.port(), ctx, session=sess)
    assert c.session_reused
    assert c.request("GET", "/2").upstream().get("X-Client-Verify") == \
        "SUCCESS"
    sess = c.session
    c.close()
    ca("revoke", devs["dev1"].serial, "--data", data)
    d.wait_log(lambda r: r.get("event") == "revocation",
               seconds=3 * SLOW, what="revocation event")
    c = cgtest.Conn(d.port(), ctx, session=sess)
    r = c.request("GET", "/3", close=True)
    assert not c.session_reused
    assert r.upstream().get("X-Client-Verify") == "FAILED:revoked"


def test_ca_switch_closes_untrusted_keeps_anonymous(cg, pki, upstream,
                                                    devices):
    data, devs = devices
    d = start(cg, pki, upstream, data, mode="optional")
    dev = cgtest.Conn(d.port(), ctx_for(pki, devs["dev1"]))
    anon = connect(pki, d.port())
    assert dev.request("GET", "/a").status == 200
    assert anon.request("GET", "/a").status == 200
    cfg = json.loads(json.dumps(d.cfg))
    # the listener now trusts only the test PKI's root: devices are out
    cfg["listeners"][0]["client_auth"] = cgtest.client_auth("required")
    d.reload(cfg)
    assert wait_closed(dev, 3 * SLOW) is not None
    d.wait_log(lambda r: r.get("event") == "connection_refused_now" and
               r.get("reason") == "untrusted", what="untrusted close")
    # the anonymous keep-alive connection keeps its settings
    assert anon.request("GET", "/b").status == 200
    anon.close()
