"""TCP listener (kind "tcp"): TLS with client auth, then a splice to the
upstream, with an optional PROXY v2 header whose TLVs carry the TLS facts
and the certificate identity (decoded here as docs/tcp.md describes)."""

import os
import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

import cgtest
from mqtthelp import (builtin_ca_devices, closed_within, read_until_close,
                      tcp_listener, tls_connect)

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def tlvs(b):
    out, i = {}, 0
    while i < len(b):
        t, n = b[i], int.from_bytes(b[i + 1:i + 3], "big")
        out.setdefault(t, []).append(b[i + 3:i + 3 + n])
        i += 3 + n
    assert i == len(b)
    return out


def fields(tlv_e0):
    out, i = {}, 0
    while i < len(tlv_e0):
        t, n = tlv_e0[i], int.from_bytes(tlv_e0[i + 1:i + 3], "big")
        v = tlv_e0[i + 3:i + 3 + n]
        if t == 0x01:
            name, _, value = v.partition(b"=")
            out[name.decode()] = value
        i += 3 + n
    return out


class Server:
    """Reads an optional PROXY v2 header, then echoes upper-cased."""

    def __init__(self, proxy):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.proxy = proxy
        self.headers = []
        threading.Thread(target=self._run, daemon=True).start()

    def _read(self, c, n):
        b = b""
        while len(b) < n:
            d = c.recv(n - len(b))
            if not d:
                raise EOFError
            b += d
        return b

    def _serve(self, c):
        with c:
            try:
                if self.proxy:
                    fixed = self._read(c, 16)
                    assert fixed[:12] == SIG
                    body = self._read(c, int.from_bytes(fixed[14:16], "big"))
                    self.headers.append((fixed, body))
                while True:
                    d = c.recv(65536)
                    if not d:
                        return
                    c.sendall(d.upper())
            except (EOFError, OSError):
                return

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,),
                             daemon=True).start()

    def close(self):
        self.sock.close()


@pytest.fixture
def server_v2():
    s = Server(True)
    yield s
    s.close()


@pytest.fixture
def server_plain():
    s = Server(False)
    yield s
    s.close()


def start(cg, pki, up, **kw):
    return cg.start(cgtest.config(pki, [tcp_listener("db", pki, up.addr,
                                                     **kw)]))


def roundtrip(port, pki, cert, data):
    s = tls_connect(port, pki, cert)
    s.sendall(data)
    s.settimeout(5)
    got = b""
    while len(got) < len(data):
        d = s.recv(65536)
        if not d:
            break
        got += d
    s.close()
    return got


def test_proxy_v2_header(cg, pki, server_v2):
    d = start(cg, pki, server_v2, proxy_protocol="v2",
              proxy_identity=["cn", "email", "serial", "sha256", "verify"])
    port = d.port("db")
    assert roundtrip(port, pki, pki.alice, b"hello") == b"HELLO"
    fixed, body = server_v2.headers[0]
    assert fixed[12] == 0x21 and fixed[13] == 0x11
    assert body[0:4] == bytes([127, 0, 0, 1])
    assert body[4:8] == bytes([127, 0, 0, 1])
    assert int.from_bytes(body[10:12], "big") == port
    t = tlvs(body[12:])
    assert t[0x02] == [b"localhost"]
    ssl_v = t[0x20][0]
    assert ssl_v[0] == 0x07  # SSL, cert on connection and session
    assert ssl_v[1:5] == b"\x00\x00\x00\x00"
    sub = tlvs(ssl_v[5:])
    assert sub[0x21][0].startswith(b"TLSv1.")
    assert sub[0x22] == [b"alice"]
    assert sub[0x23][0]
    assert sub[0x24] == [b"ECDSA-SHA256"]
    assert sub[0x25] == [b"EC256"]
    f = fields(t[0xE0][0])
    assert f == {"cn": b"alice", "email": b"alice@example.com",
                 "serial": pki.alice.serial_hex.encode(),
                 "sha256": pki.alice.sha256.encode(),
                 "verify": b"SUCCESS"}
    rec = d.wait_log(lambda r: r.get("event") == "relay_close")
    assert rec["bytes_up"] > 5 and rec["bytes_down"] == 5


def test_proxy_v2_default_fields_optional_no_cert(cg, pki, server_v2):
    d = start(cg, pki, server_v2, proxy_protocol="v2", mode="optional")
    assert roundtrip(d.port("db"), pki, None, b"x") == b"X"
    fixed, body = server_v2.headers[0]
    t = tlvs(body[12:])
    ssl_v = t[0x20][0]
    assert ssl_v[0] == 0x01
    assert ssl_v[1:5] != b"\x00\x00\x00\x00"
    assert 0x22 not in tlvs(ssl_v[5:])
    assert 0xE0 not in t  # no identity without a verified certificate
    assert roundtrip(d.port("db"), pki, pki.bob, b"y") == b"Y"
    f = fields(tlvs(server_v2.headers[1][1][12:])[0xE0][0])
    assert list(f) == ["cn", "dn", "serial", "sha256"]
    assert f["dn"] == pki.bob.subject_dn.encode()


def test_plain_splice_big(cg, pki, server_plain):
    d = start(cg, pki, server_plain)
    data = b"abc" * 400000  # 1.2 MB both ways, back-pressure
    assert roundtrip(d.port("db"), pki, pki.alice, data) == data.upper()


def test_quiet_connection_serves_again(cg, pki, server_plain):
    """A relayed connection quiet for over two seconds gave its cipher
    contexts back (src/core/quiet.c); its next bytes still flow."""
    d = start(cg, pki, server_plain)
    s = tls_connect(d.port("db"), pki, pki.alice)
    s.settimeout(5)
    for word in (b"first", b"after-quiet"):
        s.sendall(word)
        got = b""
        while len(got) < len(word):
            got += s.recv(65536)
        assert got == word.upper()
        time.sleep(cgtest.timeout(2.5))
    s.close()


def test_tcp_refuses_untrusted(cg, pki, server_plain):
    d = start(cg, pki, server_plain)
    with pytest.raises((ConnectionError, OSError)):
        roundtrip(d.port("db"), pki, pki.other_signed, b"x")


def test_tcp_revoked_closed_at_once(cg, pki, server_plain, tmp_path):
    """`certgate ca revoke` (another process, built-in CA) closes the open
    TCP session of the revoked device within a second, logs why, leaves
    the other device's session alone and refuses the revoked one after."""
    data, devs, ca = builtin_ca_devices(tmp_path, ("dev1", "dev2"))
    cfg = cgtest.config(pki, [tcp_listener("db", pki, server_plain.addr,
                                           trust="devices")],
                        data_dir=str(data))
    cfg["trust"]["devices"] = {"builtin_ca": True}
    d = cg.start(cfg)
    port = d.port("db")
    s1 = tls_connect(port, pki, devs["dev1"])
    s2 = tls_connect(port, pki, devs["dev2"])
    for s in (s1, s2):
        s.sendall(b"hello")
        s.settimeout(5)
        assert s.recv(10) == b"HELLO"
    ca("revoke", devs["dev1"].serial, "--data", data)
    assert closed_within(s1, 1.0)
    d.wait_log(lambda r: r.get("event") == "connection_refused_now" and
               r.get("reason") == "revoked" and r.get("cn") == "dev1")
    s2.sendall(b"still")
    assert s2.recv(10) == b"STILL"
    s2.close()
    s1.close()
    with pytest.raises((ConnectionError, OSError)):
        roundtrip(port, pki, devs["dev1"], b"x")


def test_tcp_revoke_during_handshake_refused_when_done(cg, pki, server_plain,
                                                       tmp_path):
    """A TLS handshake the gateway began before a revocation reached it is
    judged under the revocation once done: nothing is relayed, the
    refusal is logged."""
    data, devs, ca = builtin_ca_devices(tmp_path, ("dev1",))
    cfg = cgtest.config(pki, [tcp_listener("db", pki, server_plain.addr,
                                           trust="devices")],
                        data_dir=str(data), workers=1)
    cfg["trust"]["devices"] = {"builtin_ca": True}
    d = cg.start(cfg)
    port = d.port("db")
    s1 = tls_connect(port, pki, devs["dev1"])
    s1.sendall(b"hello")
    s1.settimeout(5)
    assert s1.recv(10) == b"HELLO"
    ctx = cgtest.client_ctx(pki)
    ctx.load_cert_chain(devs["dev1"].chain, devs["dev1"].key)
    half = cgtest.HalfHandshake(port, ctx)
    ca("revoke", devs["dev1"].serial, "--data", data)
    assert closed_within(s1, 1.0)  # the worker has the revocation
    s1.close()
    try:
        half.finish()
        half.send(b"late")
        got = half.recv()
    except (ssl.SSLError, ConnectionError):
        got = b""
    half.close()
    assert got == b"", "relayed after the revocation: %r" % got
    cgtest.wait_for(
        lambda: len([r for r in d.logs()
                     if r.get("event") == "connection_refused_now" and
                     r.get("reason") == "revoked" and
                     r.get("cn") == "dev1"]) == 2,
        seconds=5, what="refusal of the late handshake")


def test_tcp_upstream_down(cg, pki):
    class Dead:
        addr = "127.0.0.1:%d" % cgtest.closed_port()
    d = start(cg, pki, Dead)
    s = tls_connect(d.port("db"), pki, pki.alice)
    s.sendall(b"x")
    assert read_until_close(s) == b""
    s.close()


# ------------------------------------------------- interop: HAProxy

HAPROXY = shutil.which("haproxy")

# What HAProxy 2.6 makes of the header it accepted (docs/tcp.md, "Who
# decodes what"): the addresses, and of the TLVs only AUTHORITY and
# UNIQUE_ID (fc_pp_tlv(), for any type, came in 2.9).
HAPROXY_ANSWER = ("src=%[src] src_port=%[src_port] dst=%[dst] "
                  "dst_port=%[dst_port] rcvd=%[fc_rcvd_proxy] "
                  "authority=%[fc_pp_authority] "
                  "unique_id=%[fc_pp_unique_id]")

HAPROXY_CFG = """\
global
    log stderr format raw local0 info

defaults
    mode http
    log global
    timeout connect 5s
    timeout client 10s
    timeout server 10s

frontend pp
    bind 127.0.0.1:{port} accept-proxy
    log-format "pp {answer}"
    http-request return status 200 content-type text/plain lf-string "{answer}"
"""


class Haproxy(cgtest.ExternalServer):
    """HAProxy in the foreground (-db) behind certgate: a frontend that
    accepts only connections starting with a PROXY header and answers
    every request with what it decoded from it."""

    def __init__(self, workdir):
        os.makedirs(workdir, exist_ok=True)
        self.port = cgtest.closed_port()
        self.addr = "127.0.0.1:%d" % self.port
        cfg = os.path.join(workdir, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_CFG.format(port=self.port, answer=HAPROXY_ANSWER))
        self.start_process([HAPROXY, "-db", "-f", cfg],
                           os.path.join(workdir, "haproxy.log"),
                           "haproxy listening")


@pytest.fixture
def haproxy(tmp_path):
    if HAPROXY is None:
        pytest.skip("haproxy not installed (scripts/deps.sh test)")
    h = Haproxy(str(tmp_path / "haproxy"))
    yield h
    h.close()


def decoded(port, pki, cert, sni="localhost"):
    """One HTTP request through certgate to HAProxy; returns (HAProxy's
    answer as a dict, the client's own source port)."""
    s = tls_connect(port, pki, cert, server_name=sni)
    sport = s.getsockname()[1]
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    got = read_until_close(s)
    s.close()
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), got
    return dict(kv.split("=", 1) for kv in body.decode().split()), sport


def test_proxy_v2_haproxy_decodes(cg, pki, haproxy):
    # every identity field certgate has, crt and pem among them: a 0xE0
    # TLV of some 2 KB that HAProxy must step over by its length
    d = start(cg, pki, haproxy, proxy_protocol="v2",
              proxy_identity=["cn", "dn", "issuer_dn", "email", "serial",
                              "not_before", "not_after", "sha256", "md5",
                              "crt", "pem", "verify"])
    port = d.port("db")
    got, sport = decoded(port, pki, pki.alice)
    assert got == {"src": "127.0.0.1", "src_port": str(sport),
                   "dst": "127.0.0.1", "dst_port": str(port), "rcvd": "1",
                   "authority": "localhost", "unique_id": ""}
    # a second connection: another source port, same decoding
    got2, sport2 = decoded(port, pki, pki.bob)
    assert sport2 != sport and got2["src_port"] == str(sport2)
    cgtest.wait_for(lambda: haproxy.log().count("pp src=127.0.0.1") == 2,
                    5, what="two HAProxy log lines")
    assert "src_port=%d " % sport in haproxy.log()
    rec = d.wait_log(lambda r: r.get("event") == "relay_close")
    assert rec["bytes_down"] > 0


def test_proxy_v2_haproxy_no_sni_no_certificate(cg, pki, haproxy):
    # optional client auth, no certificate and no SNI: the header has no
    # AUTHORITY TLV and no identity TLV, and HAProxy still takes it
    d = start(cg, pki, haproxy, proxy_protocol="v2", mode="optional")
    # Python sends no SNI for an IP address (the certificate has it)
    fields_, sport = decoded(d.port("db"), pki, None, sni="127.0.0.1")
    assert fields_["src_port"] == str(sport)
    assert fields_["authority"] == "" and fields_["rcvd"] == "1"


def test_haproxy_refuses_without_header(cg, pki, haproxy):
    # the control: the same listener without proxy_protocol, so HAProxy's
    # accept-proxy finds the request where the header must be: it closes
    # without an answer (the decoding above is HAProxy's, not a default)
    d = start(cg, pki, haproxy)
    s = tls_connect(d.port("db"), pki, pki.alice)
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert read_until_close(s) == b""
    s.close()
    assert "pp src=" not in haproxy.log()
    cgtest.wait_for(lambda: "does not look like a PROXY protocol header"
                    in haproxy.log(), 5, what="HAProxy's refusal")
