"""The record layer after the handshake (src/tls/record.c): a listener
connection leaves OpenSSL once its handshake is done, TLS 1.3 and 1.2.
Real clients (Python's ssl, openssl s_client) must see a normal peer:
KeyUpdate in both directions (1.3), renegotiation refused (1.2),
close_notify, and the protocol's alert for every malformed or forged
record, with a log line and no effect on other connections. TLS 1.3
records no real client sends are sealed by the test itself (Sealer: keys
from Python's key log)."""

import hashlib
import os
import re
import socket
import ssl
import struct
import subprocess
import time

import pytest

from cgtest import (build_request, client_ctx, config, connect, listener,
                    route, timeout, wait_for)
from test_proxy import _payload, start


def cgtest_config(pki, upstream):
    return config(pki, [listener("web", pki, [route(upstream)],
                                 mode="required")])


class RawTLS:
    """A TLS 1.3 client over a plain socket (ssl.SSLObject + MemoryBIO),
    so that records can also be written by hand after the handshake."""

    def __init__(self, pki, port, cert, seconds=10, ctx=None, bufs=None,
                 session=None, first=b"", pieces=1, gap=0.05):
        """first: application data sealed behind the client's Finished
        and sent with it, in one segment. pieces: each handshake flight
        is sent in that many writes, gap seconds apart."""
        if ctx is None:
            ctx = client_ctx(pki, cert, min_version=ssl.TLSVersion.TLSv1_3)
        if bufs is None:
            self.sock = socket.create_connection(("127.0.0.1", port),
                                                 timeout(seconds))
        else:  # small socket buffers, set before connecting
            self.sock = socket.socket()
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, bufs)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, bufs)
            self.sock.settimeout(timeout(seconds))
            self.sock.connect(("127.0.0.1", port))
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out,
                                server_hostname="localhost",
                                session=session)
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush(pieces, gap)
                self._fill()
        if first:
            self.obj.write(first)
        self._flush(pieces, gap)

    def _flush(self, pieces=1, gap=0.0):
        data = self.out.read()
        step = -(-len(data) // pieces)
        for i in range(0, len(data), max(step, 1)):
            if i:
                time.sleep(gap)
            self.sock.sendall(data[i:i + step])

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            self.inc.write_eof()
        else:
            self.inc.write(chunk)
        return chunk

    def send(self, data):
        self.obj.write(data)
        self._flush()

    def send_raw(self, data):
        self.sock.sendall(data)

    def read_all(self, seconds=5):
        """Plaintext until the server closes; the TLS error, if any."""
        got, deadline = b"", time.monotonic() + timeout(seconds)
        while time.monotonic() < deadline:
            try:
                chunk = self.obj.read(65536)
                if not chunk:
                    return got, None
                got += chunk
                continue
            except ssl.SSLWantReadError:
                pass
            except ssl.SSLError as e:
                return got, e
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                if not self._fill():
                    continue
            except ConnectionResetError as e:
                return got, e
        raise AssertionError("the server did not close the connection")

    def read_response(self, seconds=5):
        """One response with a Content-Length body (head and body)."""
        got, deadline = b"", time.monotonic() + timeout(seconds)
        while True:
            if b"\r\n\r\n" in got:
                head = got.split(b"\r\n\r\n", 1)[0].lower()
                clen = int(head.split(b"content-length:", 1)[1]
                           .split(b"\r\n", 1)[0])
                if len(got) >= len(head) + 4 + clen:
                    return got
            try:
                got += self.obj.read(65536)
                continue
            except ssl.SSLWantReadError:
                pass
            assert time.monotonic() < deadline, "no response"
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            assert self._fill(), "closed"

    def close(self):
        self.sock.close()


class Sealer:
    """The client's side of the record layer, by hand: keys derived from
    the TLS 1.3 client application traffic secret that Python's key log
    wrote (RFC 8446 sections 5.2, 7.1-7.3), so that records no real client
    sends can be sealed correctly and the server's answer to them seen."""

    def __init__(self, keylog, cipher_name):
        from cryptography.hazmat.primitives.ciphers.aead import (
            AESGCM, ChaCha20Poly1305)
        line = [l for l in open(keylog).read().splitlines()
                if l.startswith("CLIENT_TRAFFIC_SECRET_0 ")][-1]
        self.secret = bytes.fromhex(line.split()[2])
        self.hash = "sha384" if cipher_name.endswith("SHA384") else "sha256"
        self.keylen = 16 if "AES_128" in cipher_name else 32
        self.aead = (ChaCha20Poly1305 if "CHACHA20" in cipher_name
                     else AESGCM)
        self.rekey()

    def _label(self, secret, label, n):
        import hmac
        info = (struct.pack("!H", n) + bytes([6 + len(label)]) + b"tls13 " +
                label + b"\x00\x01")
        return hmac.new(secret, info, self.hash).digest()[:n]

    def rekey(self):
        self.key = self.aead(self._label(self.secret, b"key", self.keylen))
        self.iv = self._label(self.secret, b"iv", 12)
        self.seq = 0

    def update(self):
        """After our KeyUpdate: the next application traffic secret."""
        n = 48 if self.hash == "sha384" else 32
        self.secret = self._label(self.secret, b"traffic upd", n)
        self.rekey()

    def seal(self, inner_type, data, padding=0):
        plain = data + bytes([inner_type]) + b"\x00" * padding
        hdr = struct.pack("!BHH", 23, 0x0303, len(plain) + 16)
        nonce = bytes(a ^ b for a, b in zip(
            self.iv, b"\x00" * 4 + struct.pack("!Q", self.seq)))
        self.seq += 1
        return hdr + self.key.encrypt(nonce, plain, hdr)


def _crafted(pki, port, tmp_path, bufs=None):
    """A TLS 1.3 connection whose further records the test seals itself."""
    keylog = tmp_path / "keys.log"
    ctx = client_ctx(pki, pki.alice, min_version=ssl.TLSVersion.TLSv1_3)
    ctx.keylog_filename = str(keylog)
    c = RawTLS(pki, port, pki.alice, ctx=ctx, bufs=bufs)
    return c, Sealer(keylog, c.obj.cipher()[0])


def _record(ctype, body):
    return struct.pack("!BHH", ctype, 0x0303, len(body)) + body


def _refused_on(d, c, raw_bytes, alert, words=None):
    """Sends raw_bytes on c: the server must answer with alert, log the
    failure (with words) and close c. Returns the log line."""
    try:
        n = len(d.logs())
        c.send_raw(raw_bytes)
        _, err = c.read_all()
        assert err is not None and alert in str(err).upper(), err
        rec = d.wait_log(lambda r: "client connection error" in
                         r.get("msg", ""), after=n)
        assert words is None or words in rec["msg"], rec
        return rec
    finally:
        c.close()


def _refused(d, pki, raw_bytes, alert):
    return _refused_on(d, RawTLS(pki, d.port(), pki.alice), raw_bytes, alert)


def test_requests_after_the_hand_over(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    c = RawTLS(pki, d.port(), pki.alice)
    try:
        c.send(build_request("GET", "/one") + build_request("GET", "/two",
                                                            close=True))
        body, err = c.read_all()
        assert err is None
        assert body.count(b"HTTP/1.1 200") == 2
    finally:
        c.close()
    assert upstream.paths() == ["/one", "/two"]


def test_large_transfers_both_ways(cg, pki, upstream):
    """Many full records, partial socket writes and reads across record
    boundaries: a 4 MiB upload and a 4 MiB download on one connection."""
    d = start(cg, pki, [route(upstream)])
    body = _payload(4 << 20)
    with connect(pki, d.port(), pki.alice,
                 min_version=ssl.TLSVersion.TLSv1_3) as c:
        assert c.sock.version() == "TLSv1.3"
        r = c.request("POST", "/up", body=body)
        assert r.upstream()["body_sha256"] == hashlib.sha256(body).hexdigest()
        r = c.request("GET", "/big?n=%d" % (4 << 20))
        assert r.status == 200 and len(r.body) == 4 << 20


def _s_client(pki, port, lines, version="-tls1_3"):
    """openssl s_client typing lines, with a pause after each."""
    p = subprocess.Popen(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
         version, "-servername", "localhost", "-CAfile", pki.root.cert,
         "-cert", pki.alice.cert, "-key", pki.alice.key, "-crlf"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    try:
        time.sleep(timeout(0.5))
        for line in lines:
            p.stdin.write(line)
            p.stdin.flush()
            time.sleep(timeout(0.3))
        out, _ = p.communicate(timeout=timeout(10))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return out.decode("latin-1")


TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
                "TLS_CHACHA20_POLY1305_SHA256")


@pytest.mark.parametrize("suite", TLS13_SUITES)
def test_key_update_requested_and_not(cg, pki, upstream, suite):
    """'K' asks the server to update its keys too, 'k' does not; the
    requests after each must still be answered (both directions re-keyed
    correctly), in each TLS 1.3 suite (SHA-256 and SHA-384 secrets)."""
    d = start(cg, pki, [route(upstream)], tls13_ciphersuites=[suite])
    out = _s_client(pki, d.port(), [
        b"K\n", b"GET /after-K HTTP/1.1\nHost: localhost\n\n",
        b"k\n", b"GET /after-k HTTP/1.1\nHost: localhost\n\n",
        b"K\n", b"K\n",
        b"GET /last HTTP/1.1\nHost: localhost\nConnection: close\n\n"])
    assert "Cipher is %s" % suite in out, out
    assert out.count("KEYUPDATE") == 4, out
    assert out.count("HTTP/1.1 200") == 3, out
    assert upstream.paths() == ["/after-K", "/after-k", "/last"]


def test_connections_interleaved_on_shared_contexts(cg, pki, upstream):
    """A connection's first records use the worker's shared cipher
    contexts, re-keyed whenever another connection used them last; later
    ones its own. Three connections taking turns, past that point."""
    d = start(cg, pki, [route(upstream)])
    conns = [connect(pki, d.port(), cert) for cert in
             (pki.alice, pki.bob, pki.alice)]
    try:
        for i in range(8):
            for k, c in enumerate(conns):
                body = b"%d-%d" % (k, i) * (1 + i * 500)
                r = c.request("POST", "/t%d/%d" % (k, i), body=body)
                up = r.upstream()
                assert up["path"] == "/t%d/%d" % (k, i)
                assert up["body_sha256"] == hashlib.sha256(body).hexdigest()
    finally:
        for c in conns:
            c.close()


def test_quiet_connection_serves_again(cg, pki, upstream):
    """Quiet for over two seconds, a connection gives its cipher contexts
    and parser storage back (src/core/quiet.c); the next requests on it,
    in both directions, must not notice."""
    d = start(cg, pki, [route(upstream)])
    with connect(pki, d.port(), pki.alice) as c:
        for i in range(3):
            r = c.request("POST", "/q%d" % i, body=b"x" * (i * 40000))
            assert r.upstream()["body_len"] == i * 40000
            time.sleep(timeout(2.5))


def test_forged_record_gets_bad_record_mac(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    rec = _refused(d, pki, _record(23, b"\x00" * 40), "BAD_RECORD_MAC")
    assert "record authentication failed" in rec["msg"]
    # the gateway serves on
    with connect(pki, d.port(), pki.alice) as c:
        assert c.request("GET", "/still").status == 200


def test_plaintext_record_after_handshake_is_unexpected(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    # a change_cipher_spec or a cleartext alert after the Finished
    rec = _refused(d, pki, _record(20, b"\x01"), "UNEXPECTED_MESSAGE")
    assert "unprotected record" in rec["msg"]
    rec = _refused(d, pki, _record(21, b"\x02\x28"), "UNEXPECTED_MESSAGE")
    assert "unprotected record" in rec["msg"]


def test_oversized_record_gets_record_overflow(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    rec = _refused(d, pki, struct.pack("!BHH", 23, 0x0303, 16384 + 257),
                   "RECORD_OVERFLOW")
    assert "longer than" in rec["msg"]


# inner content, what the server must answer, the words of its log line
_BAD_RECORDS = [
    ("unknown content type", lambda s: s.seal(99, b"x"),
     "UNEXPECTED_MESSAGE", "unknown content type"),
    ("padding only", lambda s: _pad_only(s),
     "UNEXPECTED_MESSAGE", "without a content type"),
    ("empty handshake record", lambda s: s.seal(22, b""),
     "UNEXPECTED_MESSAGE", "empty handshake record"),
    ("NewSessionTicket from the client",
     lambda s: s.seal(22, b"\x04\x00\x00\x01\x00"),
     "UNEXPECTED_MESSAGE", "other than KeyUpdate"),
    ("KeyUpdate request_update 2",
     lambda s: s.seal(22, b"\x18\x00\x00\x01\x02"),
     "ILLEGAL_PARAMETER", "not 0 or 1"),
    ("KeyUpdate of a wrong length",
     lambda s: s.seal(22, b"\x18\x00\x00\x02\x00\x00"),
     "DECODE_ERROR", "wrong length"),
    ("data after KeyUpdate in its record",
     lambda s: s.seal(22, b"\x18\x00\x00\x01\x00\x18"),
     "UNEXPECTED_MESSAGE", "data after KeyUpdate"),
    ("alert of a wrong length", lambda s: s.seal(21, b"\x02"),
     "DECODE_ERROR", "alert of a wrong length"),
    ("plaintext over 2^14", lambda s: s.seal(23, b"x" * 16385),
     "RECORD_OVERFLOW", "plaintext longer than 2^14"),
    ("app data inside a fragmented KeyUpdate",
     lambda s: s.seal(22, b"\x18\x00") + s.seal(23, b"GET"),
     "UNEXPECTED_MESSAGE", "inside a fragmented handshake message"),
]


def _pad_only(s):
    """A record whose plaintext is all zeros: no content type at all."""
    plain = b"\x00" * 20
    hdr = struct.pack("!BHH", 23, 0x0303, len(plain) + 16)
    nonce = bytes(a ^ b for a, b in zip(
        s.iv, b"\x00" * 4 + struct.pack("!Q", s.seq)))
    s.seq += 1
    return hdr + s.key.encrypt(nonce, plain, hdr)


@pytest.mark.parametrize("case", _BAD_RECORDS, ids=[c[0] for c in
                                                    _BAD_RECORDS])
def test_malformed_protected_records_refused(cg, pki, upstream, tmp_path,
                                              case):
    """Records only a broken or hostile client sends, sealed correctly:
    each gets its alert, a log line, and the gateway serves on."""
    _, make, alert, words = case
    d = start(cg, pki, [route(upstream)])
    c, sealer = _crafted(pki, d.port(), tmp_path)
    _refused_on(d, c, make(sealer), alert, words)
    with connect(pki, d.port(), pki.alice) as other:
        assert other.request("GET", "/still").status == 200


@pytest.mark.parametrize("suite", TLS13_SUITES)
def test_crafted_key_update_fragmented_and_user_canceled(cg, pki, upstream,
                                                         tmp_path, suite):
    """What a client may legally do and real clients rarely do: a
    KeyUpdate split over two records, padding, an empty application
    record, a user_canceled warning; the request after them, under the
    updated key, is answered. In each TLS 1.3 suite."""
    d = start(cg, pki, [route(upstream)], tls13_ciphersuites=[suite])
    c, s = _crafted(pki, d.port(), tmp_path)
    try:
        assert c.obj.cipher()[0] == suite
        c.send_raw(s.seal(22, b"\x18\x00") + s.seal(22, b"\x00\x01\x00"))
        s.update()
        c.send_raw(s.seal(23, b"", padding=100) +
                   s.seal(21, b"\x01\x5a") +
                   s.seal(23, build_request("GET", "/crafted", close=True),
                          padding=7))
        body, err = c.read_all()
        assert err is None, err
        assert body.startswith(b"HTTP/1.1 200"), body[:200]
    finally:
        c.close()
    assert upstream.paths() == ["/crafted"]


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


def test_key_update_flood_from_a_peer_that_does_not_read(cg, pki, upstream,
                                                          tmp_path):
    """100,000 KeyUpdates asking for an answer (2.7 MB), from a client that
    does not read: the answers are not queued in the gateway's memory
    (they go to the kernel's socket buffer; past 16 KB that the socket
    does not take, the gateway stops reading the client); once the client
    reads again every answer arrives, in order, under 100,000 successive
    keys each way, and the request after them is answered."""
    import threading
    d = start(cg, pki, [route(upstream)])
    c, s = _crafted(pki, d.port(), tmp_path, bufs=4096)
    blob = []
    for _ in range(100000):
        blob.append(s.seal(22, b"\x18\x00\x00\x01\x01"))
        s.update()
    blob = b"".join(blob)
    sent = threading.Event()
    c.sock.settimeout(None)
    t = threading.Thread(target=lambda: (c.sock.sendall(blob), sent.set()),
                         daemon=True)
    try:
        before = _rss_kb(d.proc.pid)
        t.start()
        sent.wait(timeout(5))  # the kernel's buffers may take it all
        time.sleep(timeout(0.5))
        grew = _rss_kb(d.proc.pid) - before
        if os.environ.get("CG_SANITIZE") != "ON":  # ASan keeps what is freed
            assert grew < 1024, "RSS +%d KB with answers nobody reads" % grew
        c.sock.settimeout(timeout(30))
        got = b""
        deadline = time.monotonic() + timeout(60)
        while not sent.is_set():  # read answers until the blob is in
            assert time.monotonic() < deadline
            try:
                got += c.obj.read(65536)
            except ssl.SSLWantReadError:
                c._fill()
        t.join()
        c.send_raw(s.seal(23, build_request("GET", "/after-flood",
                                            close=True)))
        body, err = c.read_all(seconds=60)
        assert err is None, err
        assert (got + body).startswith(b"HTTP/1.1 200")
    finally:
        c.close()
    assert upstream.paths() == ["/after-flood"]


def _clean_close(d, c, path):
    """A request on c, then the client's close_notify: the server answers
    with its own and closes; nothing is logged as an error."""
    n = len(d.logs())
    c.send(build_request("GET", path))
    assert c.read_response().startswith(b"HTTP/1.1 200")
    try:
        c.obj.unwrap()
    except ssl.SSLWantReadError:
        pass
    c._flush()
    deadline = time.monotonic() + timeout(5)
    while True:
        try:
            c.obj.unwrap()
            break
        except ssl.SSLWantReadError:
            assert time.monotonic() < deadline
            assert c._fill(), "closed without close_notify"
    time.sleep(timeout(0.2))
    assert not any("client connection error" in r.get("msg", "")
                   for r in d.logs()[n:])


def test_close_notify_and_tls12_still_served(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    c = RawTLS(pki, d.port(), pki.alice)
    try:
        _clean_close(d, c, "/x")
    finally:
        c.close()
    with connect(pki, d.port(), pki.alice,
                 max_version=ssl.TLSVersion.TLSv1_2) as c:
        assert c.sock.version() == "TLSv1.2"
        assert c.request("GET", "/tls12").status == 200


def test_ca_switch_reverifies_from_what_was_kept(cg, pki, upstream):
    """After the hand-over a connection keeps its leaf's DER and the
    issuers it was verified with, not the parsed chain it sent. carol's
    leaf hangs off an intermediate only she sends: a switch to a trust set
    that still has the root keeps her connection, one without it closes
    it."""
    import copy
    cfg = cgtest_config(pki, upstream)
    cfg["trust"]["both"] = {"ca_files": [pki.root.cert, pki.other_ca.cert]}
    d = cg.start(cfg)
    c = RawTLS(pki, d.port(), pki.carol)
    try:
        c.send(build_request("GET", "/before"))
        assert c.read_response().startswith(b"HTTP/1.1 200")
        for trust, kept in (("both", True), ("other", False)):
            new = copy.deepcopy(d.cfg)
            new["listeners"][0]["client_auth"]["trust"] = trust
            d.reload(new)
            if kept:
                time.sleep(timeout(0.5))
                c.send(build_request("GET", "/after-" + trust))
                assert c.read_response().startswith(b"HTTP/1.1 200")
            else:
                _, err = c.read_all()
                d.wait_log(lambda r: r.get("event") ==
                           "connection_refused_now" and
                           r.get("reason") == "untrusted",
                           what="connection_refused_now")
    finally:
        c.close()


def test_tls12_aead_suites_only(cg, pki, upstream):
    """TLS 1.2 with an AEAD suite is served, also past the hand-over (1 MB
    each way); a client offering only CBC suites gets a handshake failure
    (the listener carries no CBC cipher)."""
    d = start(cg, pki, [route(upstream)])
    body = _payload(1 << 20)
    for cipher, ok in (("ECDHE-ECDSA-AES128-GCM-SHA256", True),
                       ("ECDHE-ECDSA-AES256-GCM-SHA384", True),
                       ("ECDHE-ECDSA-CHACHA20-POLY1305", True),
                       ("ECDHE-ECDSA-AES128-SHA256", False),
                       ("ECDHE-ECDSA-AES256-SHA", False)):
        ctx = client_ctx(pki, pki.alice,
                         max_version=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers(cipher)
        try:
            with connect(pki, d.port(), ctx=ctx) as c:
                assert c.sock.cipher()[0] == cipher
                for i in range(6):  # past the shared contexts
                    assert c.request("GET", "/12/%d" % i).status == 200
                r = c.request("POST", "/up12", body=body)
                assert r.upstream()["body_sha256"] == \
                    hashlib.sha256(body).hexdigest()
                r = c.request("GET", "/big?n=%d" % (1 << 20))
                assert len(r.body) == 1 << 20
            assert ok, cipher
        except ssl.SSLError as e:
            assert not ok, (cipher, e)
            assert "HANDSHAKE_FAILURE" in str(e).upper() or \
                "NO_SHARED_CIPHER" in str(e).upper(), e


def _tls12(pki, port):
    ctx = client_ctx(pki, pki.alice, max_version=ssl.TLSVersion.TLSv1_2)
    return RawTLS(pki, port, pki.alice, ctx=ctx)


@pytest.mark.parametrize("raw,alert,words", [
    (_record(23, b"\x00" * 40), "BAD_RECORD_MAC",
     "record authentication failed"),
    (_record(20, b"\x01"), "UNEXPECTED_MESSAGE",
     "change_cipher_spec after the handshake"),
    (_record(24, b"\x01" * 40), "UNEXPECTED_MESSAGE",
     "unknown content type"),
    (struct.pack("!BHH", 23, 0x0303, 16384 + 2049), "RECORD_OVERFLOW",
     "longer than 2^14 + 2048"),
], ids=["forged", "ccs", "unknown type", "oversized"])
def test_tls12_bad_records_refused(cg, pki, upstream, raw, alert, words):
    """TLS 1.2 connections leave OpenSSL after the handshake too; records
    their record layer refuses get the protocol's alert and a log line."""
    d = start(cg, pki, [route(upstream)])
    c = _tls12(pki, d.port())
    assert c.obj.version() == "TLSv1.2"
    _refused_on(d, c, raw, alert, words)


def test_tls12_renegotiation_refused(cg, pki, upstream):
    """'R' makes openssl s_client renegotiate a TLS 1.2 connection: the
    record layer answers the new ClientHello with handshake_failure."""
    d = start(cg, pki, [route(upstream)])
    n = len(d.logs())
    out = _s_client(pki, d.port(), [
        b"GET /first HTTP/1.1\nHost: localhost\n\n", b"R\n"],
        version="-tls1_2")
    assert "HTTP/1.1 200" in out and "RENEGOTIATING" in out, out
    assert "handshake failure" in out.lower(), out
    rec = d.wait_log(lambda r: "renegotiation refused" in r.get("msg", ""),
                     after=n)
    assert "alert 40 sent" in rec["msg"]
    assert upstream.paths() == ["/first"]


def test_tls12_close_notify_both_ways(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    c = _tls12(pki, d.port())
    try:
        _clean_close(d, c, "/x12")
    finally:
        c.close()


def test_resumption_after_the_hand_over(cg, pki, upstream):
    """The SSL is freed after the hand-over: its session must stay in
    the cache (an SSL freed without shutdown would drop it)."""
    d = start(cg, pki, [route(upstream)])
    ctx = client_ctx(pki, pki.alice, min_version=ssl.TLSVersion.TLSv1_3)
    with connect(pki, d.port(), ctx=ctx) as c:
        assert c.request("GET", "/a").status == 200
        wait_for(lambda: c.sock.session is not None, what="a session")
        sess = c.sock.session
    with connect(pki, d.port(), ctx=ctx, session=sess) as c:
        assert c.request("GET", "/b").status == 200
        assert c.sock.session_reused
