"""Reverse proxying: keep-alive, bodies, 100-continue, WebSocket, upstream
kinds (http, https with upstream_tls, unix), upstream errors, routing."""

import hashlib
import json
import os
import time

import pytest

import cgtest
from cgtest import (assert_error_answer, build_request, config, connect, get,
                    listener, route, ws_accept, ws_client_handshake, ws_frame,
                    ws_read_frame)


def start(cg, pki, routes, mode="optional", **kw):
    return cg.start(config(pki, [listener("web", pki, routes, mode=mode,
                                          **kw)]))


def test_keep_alive(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    with connect(pki, d.port(), pki.alice) as c:
        for i in range(5):
            r = c.request("GET", "/ka/%d" % i)
            assert r.status == 200
            up = r.upstream()
            assert up["path"] == "/ka/%d" % i
            assert up.get("X-Client-Verify") == "SUCCESS"
        assert not c.is_closed(0.2)
    assert [p for p in upstream.paths()] == ["/ka/%d" % i for i in range(5)]


def test_pipelined_requests(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    with connect(pki, d.port(), pki.alice) as c:
        c.send(build_request("GET", "/p/1") + build_request("GET", "/p/2") +
               build_request("GET", "/p/3", close=True))
        paths = [c.read_response().upstream()["path"] for _ in range(3)]
        assert paths == ["/p/1", "/p/2", "/p/3"]
        assert c.is_closed()


def test_post_content_length(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    r = get(pki, d.port(), "/post", cert=pki.alice, method="POST",
            body=b"hello world", headers=[("Content-Type", "text/plain")])
    up = r.upstream()
    assert up["method"] == "POST"
    assert up["body"] == "hello world"


def _payload(n):
    return os.urandom(n // 2).hex().encode()


def test_post_1mib_content_length_streamed(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    body = _payload(1 << 20)
    with connect(pki, d.port(), pki.alice) as c:
        c.send(build_request("POST", "/upload", headers=[
            ("Content-Length", str(len(body)))]))
        for i in range(0, len(body), 65536):
            c.send(body[i:i + 65536])
        r = c.read_response(seconds=30)
    up = r.upstream()
    assert up["body_len"] == len(body)
    assert up["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_post_1mib_chunked_streamed(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    body = _payload(1 << 20)
    with connect(pki, d.port(), pki.alice) as c:
        c.send(build_request("POST", "/chunked", headers=[
            ("Transfer-Encoding", "chunked")]))
        for i in range(0, len(body), 65536):
            part = body[i:i + 65536]
            c.send(b"%x\r\n" % len(part) + part + b"\r\n")
        c.send(b"0\r\n\r\n")
        r = c.read_response(seconds=30)
        assert r.status == 200, r
        up = r.upstream()
        assert up["body_len"] == len(body)
        assert up["body_sha256"] == hashlib.sha256(body).hexdigest()
        # The connection is still usable after a chunked body.
        assert c.request("GET", "/next").upstream()["path"] == "/next"


def test_expect_100_continue(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    with connect(pki, d.port(), pki.alice) as c:
        c.send(build_request("POST", "/expect", headers=[
            ("Content-Length", "5"), ("Expect", "100-continue")]))
        interim = c.read_response(seconds=5, stop_at_1xx=True)
        assert interim.status == 100, interim
        c.send(b"hello")
        r = c.read_response()
        assert r.status == 200
        assert r.upstream()["body"] == "hello"


def test_websocket(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    with connect(pki, d.port(), pki.alice) as c:
        r, key = ws_client_handshake(c)
        assert r.status == 101, r
        assert r.header("Sec-WebSocket-Accept") == ws_accept(key)
        assert (r.header("Upgrade") or "").lower() == "websocket"
        c.send(ws_frame("hello through certgate", mask=True))
        deadline = time.monotonic() + cgtest.timeout(5)
        op, payload = ws_read_frame(lambda n: c.read_exact(n, deadline))
        assert op == 1
        msg = json.loads(payload)
        assert msg["echo"] == "hello through certgate"
        assert msg["verify"] == "SUCCESS"
        assert msg["cn"] == "alice"
        c.send(ws_frame(b"\x03\xe8", opcode=8, mask=True))
        op, _ = ws_read_frame(lambda n: c.read_exact(n, deadline))
        assert op == 8


def test_https_upstream(cg, pki, upstreams):
    up = upstreams("tls", kind="https")
    d = start(cg, pki, [route(up, upstream_tls={
        "ca_file": pki.root.cert, "server_name": "upstream.test"})])
    r = get(pki, d.port(), "/tls", cert=pki.alice)
    assert r.status == 200, r
    rec = r.upstream()
    assert rec["server"] == "tls"
    assert rec.get("X-Client-Verify") == "SUCCESS"
    assert rec["tls_client_cn"] is None


def test_https_upstream_client_cert(cg, pki, upstreams):
    up = upstreams("tls", kind="https", require_cert=True)
    d = start(cg, pki, [route(up, upstream_tls={
        "ca_file": pki.root.cert, "server_name": "upstream.test",
        "cert": pki.gateway.chain, "key": pki.gateway.key})])
    r = get(pki, d.port(), "/mtls", cert=pki.alice)
    assert r.status == 200, r
    assert r.upstream()["tls_client_cn"] == "gateway"


@pytest.mark.parametrize("tls", [
    pytest.param({"ca_file": "OTHER", "server_name": "upstream.test"},
                 id="untrusted_ca"),
    pytest.param({"ca_file": "ROOT", "server_name": "wrong.test"},
                 id="name_mismatch"),
])
def test_https_upstream_refused(cg, pki, upstreams, tls):
    up = upstreams("tls", kind="https")
    tls = dict(tls)
    tls["ca_file"] = {"OTHER": pki.other_ca.cert,
                      "ROOT": pki.root.cert}[tls["ca_file"]]
    d = start(cg, pki, [route(up, upstream_tls=tls)])
    r = get(pki, d.port(), "/tls", cert=pki.alice)
    assert_error_answer(r, 502)
    assert up.started == []


def test_unix_upstream(cg, pki, upstreams):
    up = upstreams("unix", kind="unix")
    d = start(cg, pki, [route(up)])
    r = get(pki, d.port(), "/unix", cert=pki.alice)
    assert r.status == 200, r
    rec = r.upstream()
    assert rec["server"] == "unix" and rec["path"] == "/unix"
    assert rec.get("X-Client-Verify") == "SUCCESS"


def test_upstream_down_502(cg, pki):
    port = cgtest.closed_port()
    d = start(cg, pki, [route("http://127.0.0.1:%d" % port)])
    r = get(pki, d.port(), "/", cert=pki.alice)
    assert_error_answer(r, 502)
    acc = d.wait_access(1)[-1]
    assert acc["status"] == 502


def test_upstream_bad_response_502(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    r = get(pki, d.port(), "/bad", cert=pki.alice)
    assert_error_answer(r, 502)


def test_upstream_timeout_504(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)],
              timeouts={"upstream_read": "1s"})
    t0 = time.monotonic()
    r = get(pki, d.port(), "/slow?s=5", cert=pki.alice)
    elapsed = time.monotonic() - t0
    assert_error_answer(r, 504)
    assert elapsed < cgtest.timeout(4), elapsed


def test_no_route_404(cg, pki, upstream):
    d = start(cg, pki, [route(upstream, path="/api")])
    r = get(pki, d.port(), "/nothing", cert=pki.alice)
    assert_error_answer(r, 404)
    assert upstream.started == []


def test_path_prefix_longest_wins(cg, pki, upstreams):
    a, b, c = upstreams("root"), upstreams("api"), upstreams("v2")
    # Listed out of order: the longest prefix wins, not the first.
    d = start(cg, pki, [route(b, path="/api"), route(a, path="/"),
                        route(c, path="/api/v2")])
    for path, server in [("/api/v2/users", "v2"), ("/api/users", "api"),
                         ("/api", "api"), ("/other", "root"), ("/", "root"),
                         ("/api/v2", "v2")]:
        r = get(pki, d.port(), path, cert=pki.alice)
        assert r.status == 200, (path, r)
        assert r.upstream()["server"] == server, path
        assert r.upstream()["path"] == path


def test_host_routing(cg, pki, upstreams):
    a, b, w = upstreams("app"), upstreams("other"), upstreams("wild")
    d = start(cg, pki, [route(a, host="app.localhost"),
                        route(b, host="other.localhost"),
                        route(w, host="*.example.com")])
    for host, server in [("app.localhost", "app"),
                         ("APP.localhost", "app"),
                         ("other.localhost", "other"),
                         ("x.example.com", "wild"),
                         ("a.b.example.com", "wild")]:
        r = get(pki, d.port(), "/", cert=pki.alice, host=host)
        assert r.status == 200, (host, r)
        assert r.upstream()["server"] == server, host
    for host in ("example.com", "unknown.localhost", "xexample.com"):
        r = get(pki, d.port(), "/", cert=pki.alice, host=host)
        assert_error_answer(r, 404)


def test_host_route_with_default(cg, pki, upstreams):
    a, dflt = upstreams("app"), upstreams("default")
    d = start(cg, pki, [route(a, host="app.localhost"), route(dflt)])
    r = get(pki, d.port(), "/", cert=pki.alice, host="app.localhost")
    assert r.upstream()["server"] == "app"
    r = get(pki, d.port(), "/", cert=pki.alice, host="localhost")
    assert r.upstream()["server"] == "default"


def test_curl_end_to_end(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)], mode="required")
    rc, code, hdrs, body = cgtest.curl(pki, d.port(), "/curl",
                                       cert=pki.alice,
                                       args=["-H", "X-Client-Cert-CN: x"])
    assert (rc, code) == (0, "200"), (rc, code, body)
    up = cgtest.UpstreamView(json.loads(body))
    assert up.get("X-Client-Cert-CN") == "alice"
    assert "application/json" in hdrs.lower()


@pytest.mark.parametrize("path", ["/big?n=4194304", "/chunked-resp?n=1048576"])
def test_large_response_streamed(cg, pki, upstream, path):
    d = start(cg, pki, [route(upstream)])
    n = int(path.split("=")[1])
    with connect(pki, d.port(), pki.alice) as c:
        r = c.request("GET", path)
        assert r.status == 200
        assert len(r.body) == n
        assert hashlib.sha256(r.body).hexdigest() == r.header(
            "X-Body-Sha256")
        # Keep-alive survives a large body.
        assert c.request("GET", "/after").upstream()["path"] == "/after"


def test_head_request(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    with connect(pki, d.port(), pki.alice) as c:
        r = c.request("HEAD", "/big?n=1000")
        assert r.status == 200 and r.body == b""
        assert r.header("Content-Length") == "1000"
        assert c.request("GET", "/next").upstream()["path"] == "/next"


def test_upstream_status_passes_through(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    with connect(pki, d.port(), pki.alice) as c:
        r = c.request("GET", "/status/500")
        assert r.status == 500
        assert r.upstream()["path"] == "/status/500"
        r = c.request("GET", "/status/404")
        assert r.status == 404
        assert r.upstream()["path"] == "/status/404"


def test_http10_request(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    with connect(pki, d.port(), pki.alice) as c:
        c.send(b"GET /old HTTP/1.0\r\nHost: localhost\r\n\r\n")
        r = c.read_response()
        assert r.status == 200
        assert r.upstream()["path"] == "/old"
        assert c.is_closed()


def test_idle_timeout_closes_keep_alive(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)], timeouts={"idle": "1s"})
    with connect(pki, d.port(), pki.alice) as c:
        assert c.request("GET", "/").status == 200
        t0 = time.monotonic()
        assert c.is_closed(5), "idle connection not closed"
        assert 0.5 <= time.monotonic() - t0 < cgtest.timeout(3)


def test_handshake_timeout(cg, pki, upstream):
    import socket
    d = start(cg, pki, [route(upstream)], timeouts={"handshake": "1s"})
    s = socket.create_connection(("127.0.0.1", d.port()))
    try:
        s.settimeout(cgtest.timeout(5))
        t0 = time.monotonic()
        try:
            data = s.recv(100)
        except ConnectionError:
            data = b""
        assert data == b"", data
        assert time.monotonic() - t0 < cgtest.timeout(3)
    finally:
        s.close()


def test_upstream_connection_reuse_does_not_mix_identities(cg, pki,
                                                            upstream):
    """Two clients in turn (alice, bob) never get each other's headers,
    whatever upstream connection pooling certgate does."""
    d = start(cg, pki, [route(upstream)])
    for who in ("alice", "bob", "alice", None, "bob"):
        cert = getattr(pki, who) if who else None
        r = get(pki, d.port(), "/", cert=cert)
        up = r.upstream()
        assert up.get("X-Client-Cert-CN") == who
        assert up.get("X-Client-Verify") == ("SUCCESS" if who else "NONE")


def test_websocket_refused_route_policy(cg, pki, upstream):
    d = start(cg, pki, [route(upstream, allow={"cn": ["alice"]})])
    with connect(pki, d.port(), pki.bob) as c:
        r, _ = ws_client_handshake(c)
        assert_error_answer(r, 403)
    assert upstream.started == []


def test_concurrent_requests(cg, pki, upstream):
    import concurrent.futures
    d = start(cg, pki, [route(upstream)])
    n = 40

    def one(i):
        cert = pki.alice if i % 2 else pki.bob
        r = get(pki, d.port(), "/slow?s=0.3&i=%d" % i, cert=cert)
        up = r.upstream()
        return (r.status, up.get("X-Client-Cert-CN"), up["path"])
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(n) as ex:
        results = list(ex.map(one, range(n)))
    elapsed = time.monotonic() - t0
    for i, (status, cn, path) in enumerate(results):
        assert status == 200
        assert cn == ("alice" if i % 2 else "bob")
        assert path == "/slow?s=0.3&i=%d" % i
    assert elapsed < cgtest.timeout(n * 0.3 / 2), elapsed  # not serialised


def test_client_aborts_mid_body(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    c = connect(pki, d.port(), pki.alice)
    c.send(build_request("POST", "/upload", headers=[
        ("Content-Length", str(1 << 20))]) + b"x" * 10000)
    c.close()
    with connect(pki, d.port(), pki.alice) as c2:
        c2.send(b"GET /alive HTTP/1.1\r\nHost: localhost\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n40\r\n" + b"y" * 64)
        c2.sock.close()
    r = get(pki, d.port(), "/after", cert=pki.alice)
    assert r.status == 200
    assert d.running


def test_client_aborts_while_upstream_slow(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    c = connect(pki, d.port(), pki.alice)
    c.send(build_request("GET", "/slow?s=1"))
    cgtest.wait_for(lambda: any(p.startswith("/slow")
                                for p in upstream.paths()),
                    what="upstream to see /slow")
    c.close()
    r = get(pki, d.port(), "/after", cert=pki.alice)
    assert r.status == 200
    # Let the upstream finish writing into the closed proxy side.
    cgtest.wait_for(lambda: any(q["path"].startswith("/slow")
                                for q in upstream.requests),
                    what="slow request to complete")
    assert get(pki, d.port(), "/after2", cert=pki.alice).status == 200


def test_upstream_truncated_response(cg, pki, upstream):
    """The upstream promises 1000 bytes and closes after 10: the client
    gets a 502, or a cut connection, never a complete-looking answer and
    never a hang."""
    d = start(cg, pki, [route(upstream)])
    with connect(pki, d.port(), pki.alice) as c:
        c.send(build_request("GET", "/truncate"))
        try:
            r = c.read_response(seconds=10)
        except (EOFError, ConnectionError, OSError):
            r = None
        if r is not None:
            assert_error_answer(r, 502)
    assert get(pki, d.port(), "/after", cert=pki.alice).status == 200


def test_no_sni(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    r = get(pki, d.port(), "/", cert=pki.alice, sni=None)
    assert r.status == 200
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"


def test_connect_method_not_tunnelled(cg, pki, upstream):
    d = start(cg, pki, [route(upstream)])
    with connect(pki, d.port(), pki.alice) as c:
        c.send(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n"
               % (upstream.port, upstream.port))
        r = c.read_response(method="CONNECT")
        assert r.status != 200 or r.upstream()["method"] == "CONNECT", r
