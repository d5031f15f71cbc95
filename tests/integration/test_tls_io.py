"""TLS I/O on listener connections with read-ahead (src/tls/conn.c):
OpenSSL may hold whole undecrypted records in its read buffer while the
socket is drained, so the gateway must keep processing them without an
fd event, also after back-pressure stopped reading, and must not spin on
a partial record."""

import hashlib

from cgtest import build_request, connect, route
from test_proxy import _payload, start


def test_upload_and_pipelined_requests_in_one_go(cg, pki, upstream):
    """An 8 MiB upload (far over the 256 KiB back-pressure mark) and two
    pipelined requests written back to back, before reading anything."""
    d = start(cg, pki, [route(upstream)])
    body = _payload(8 << 20)
    with connect(pki, d.port(), pki.alice) as c:
        c.send(build_request("POST", "/upload", headers=[
            ("Content-Length", str(len(body)))]) + body +
            build_request("GET", "/p1") + build_request("GET", "/p2"))
        up = c.read_response(seconds=60).upstream()
        assert up["body_len"] == len(body)
        assert up["body_sha256"] == hashlib.sha256(body).hexdigest()
        assert c.read_response(seconds=30).upstream()["path"] == "/p1"
        assert c.read_response(seconds=30).upstream()["path"] == "/p2"


def test_many_pipelined_requests(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    with connect(pki, d.port(), pki.alice) as c:
        c.send(b"".join(build_request("GET", "/q%d" % i)
                        for i in range(200)))
        for i in range(200):
            r = c.read_response(seconds=30)
            assert r.upstream()["path"] == "/q%d" % i
        # and the connection idles then serves again
        assert c.request("GET", "/after").upstream()["path"] == "/after"
