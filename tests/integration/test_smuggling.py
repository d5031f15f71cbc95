"""Malformed and ambiguous requests, byte by byte over raw TLS.

Each answer: the expected status (with Content-Length and Connection), the
connection closed afterwards, and the upstream never saw the smuggled
request (/smuggled).
"""

import time

import pytest

import cgtest
from cgtest import assert_error_answer, config, connect, listener, route

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: localhost\r\n\r\n"

CASES = [
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
        id="cl_te"),
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\n"
        b"Transfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n"
        b"0\r\n\r\n" + SMUGGLED,
        id="te_cl"),
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
        b"Content-Length: 44\r\n\r\n" + SMUGGLED,
        id="duplicate_cl"),
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0, 44\r\n"
        b"\r\n" + SMUGGLED,
        id="cl_list"),
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n" +
        SMUGGLED,
        id="bad_chunk_size"),
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\nhello\r\n"
        b"0\r\n\r\n" + SMUGGLED,
        id="chunk_size_overflow"),
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5 \r\nhello\r\n0\r\n\r\n" +
        SMUGGLED,
        id="chunk_size_trailing_space"),
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\n"
        b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
        id="space_before_colon"),
    pytest.param(
        b"GET /a HTTP/1.1\r\nHost: localhost\r\nX-Folded: a\r\n"
        b" Transfer-Encoding: chunked\r\n\r\n" + SMUGGLED,
        id="obs_fold"),
    pytest.param(
        b"GET /a HTTP/1.1\nHost: localhost\nX-Lf: 1\n\n" + SMUGGLED,
        id="bare_lf"),
    pytest.param(
        b"GET /a HTTP/1.1\r\nHost: localhost\r\nX-Lf: 1\nX-Other: 2\r\n\r\n" +
        SMUGGLED,
        id="bare_lf_in_header"),
    pytest.param(
        b"GET /a HTTP/1.1\r\nHost: localhost\r\nX-Nul: a\x00b\r\n\r\n" +
        SMUGGLED,
        id="nul_in_header"),
    pytest.param(
        b"GET /a HTTP/1.1\r\nHost: localhost\r\nHost: other.localhost\r\n"
        b"\r\n" + SMUGGLED,
        id="two_host"),
    pytest.param(
        b"GET /a HTTP/1.1\r\nX-No-Host: 1\r\n\r\n" + SMUGGLED,
        id="no_host_http11"),
    pytest.param(
        b"GET /a HTTP/1.1\r\nHost: localhost\r\nX Bad: 1\r\n\r\n" + SMUGGLED,
        id="space_in_header_name"),
    pytest.param(
        b"GET /a HTTP/1.1 junk\r\nHost: localhost\r\n\r\n" + SMUGGLED,
        id="bad_request_line"),
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\n"
        b"Transfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n" +
        SMUGGLED,
        id="te_chunked_not_final"),
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\n"
        b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n" + SMUGGLED,
        id="te_chunked_twice"),
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n"
        b"\r\n" + SMUGGLED,
        id="negative_cl"),
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: +44\r\n"
        b"\r\n" + SMUGGLED,
        id="plus_cl"),
    pytest.param(
        b"POST /a HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Length: 99999999999999999999999\r\n\r\n" + SMUGGLED,
        id="cl_overflow"),
]


def start(cg, pki, upstream, **kw):
    return cg.start(config(pki, [listener("web", pki, [route(upstream)],
                                          mode="optional", **kw)]))


def assert_refused(c, upstream, status):
    r = c.read_response()
    assert_error_answer(r, status)
    assert "close" in r.header("Connection").lower(), r
    assert c.is_closed(), "connection left open after %d" % status
    assert "/smuggled" not in upstream.paths(), upstream.paths()
    return r


@pytest.mark.parametrize("raw", CASES)
def test_malformed_400(cg, pki, upstream, raw):
    d = start(cg, pki, upstream)
    with connect(pki, d.port(), pki.alice) as c:
        c.send(raw)
        assert_refused(c, upstream, 400)
    # Still serving.
    r = cgtest.get(pki, d.port(), "/ok", cert=pki.alice)
    assert r.status == 200
    assert "/smuggled" not in upstream.paths()


def test_header_too_large_431(cg, pki, upstream):
    d = start(cg, pki, upstream, limits={"header_bytes": 4096})
    with connect(pki, d.port(), pki.alice) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: localhost\r\nX-Big: " +
               b"a" * 8192 + b"\r\n\r\n" + SMUGGLED)
        assert_refused(c, upstream, 431)
    assert upstream.paths() == []


def test_header_too_large_default_limit(cg, pki, upstream):
    d = start(cg, pki, upstream)
    with connect(pki, d.port(), pki.alice) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: localhost\r\n" +
               b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 1000)
                        for i in range(40)) + b"\r\n")
        assert_refused(c, upstream, 431)
    assert upstream.paths() == []


def test_header_under_limit_passes(cg, pki, upstream):
    d = start(cg, pki, upstream, limits={"header_bytes": 4096})
    with connect(pki, d.port(), pki.alice) as c:
        r = c.request("GET", "/a", headers=[("X-Big", "a" * 2000)])
        assert r.status == 200
        assert r.upstream().get("X-Big") == "a" * 2000


def test_too_many_headers_431(cg, pki, upstream):
    d = start(cg, pki, upstream, limits={"header_count": 20})
    with connect(pki, d.port(), pki.alice) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: localhost\r\n" +
               b"".join(b"X-H%d: v\r\n" % i for i in range(30)) + b"\r\n" +
               SMUGGLED)
        assert_refused(c, upstream, 431)
    assert upstream.paths() == []


def test_too_many_headers_default_limit(cg, pki, upstream):
    d = start(cg, pki, upstream)
    with connect(pki, d.port(), pki.alice) as c:
        c.send(b"GET /a HTTP/1.1\r\nHost: localhost\r\n" +
               b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n")
        assert_refused(c, upstream, 431)


def test_header_timeout_408(cg, pki, upstream):
    d = start(cg, pki, upstream, timeouts={"header": "1s"})
    with connect(pki, d.port(), pki.alice) as c:
        t0 = time.monotonic()
        c.send(b"GET /a HTTP/1.1\r\nHost: localhost\r\nX-Slow: 1\r\n")
        r = c.read_response(seconds=6)
        elapsed = time.monotonic() - t0
        assert_error_answer(r, 408)
        assert c.is_closed()
    assert 0.5 <= elapsed < cgtest.timeout(4), elapsed
    assert upstream.paths() == []


def test_header_timeout_trickle(cg, pki, upstream):
    """Sending a byte now and then does not extend the header deadline."""
    d = start(cg, pki, upstream, timeouts={"header": "1s"})
    with connect(pki, d.port(), pki.alice) as c:
        t0 = time.monotonic()
        c.send(b"GET /a HTTP/1.1\r\nHost: localhost\r\n")
        got = None
        while time.monotonic() - t0 < cgtest.timeout(5):
            if cgtest.wait_readable(c.sock, 0.3):
                got = c.read_response(seconds=2)
                break
            try:
                c.send(b"X: y\r\n")
            except OSError:
                break
        assert got is not None, "no answer while trickling the head"
        assert_error_answer(got, 408)
    assert upstream.paths() == []


def test_smuggle_after_valid_request_not_forwarded(cg, pki, upstream):
    """A good request followed by a CL+TE one: the first is answered, the
    second refused, nothing after it reaches the upstream."""
    d = start(cg, pki, upstream)
    with connect(pki, d.port(), pki.alice) as c:
        c.send(b"GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n"
               b"POST /a HTTP/1.1\r\nHost: localhost\r\nContent-Length: 6\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED)
        r = c.read_response()
        assert r.status == 200 and r.upstream()["path"] == "/first"
        assert_refused(c, upstream, 400)
    assert "/a" not in upstream.paths()


def test_chunk_extensions_and_trailers_accepted(cg, pki, upstream):
    d = start(cg, pki, upstream)
    with connect(pki, d.port(), pki.alice) as c:
        c.send(b"POST /ext HTTP/1.1\r\nHost: localhost\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n"
               b"5;name=value\r\nhello\r\n6\r\n world\r\n"
               b"0\r\nX-Trailer: t\r\n\r\n")
        r = c.read_response()
        assert r.status == 200, r
        assert r.upstream()["body"] == "hello world"
        r = c.request("GET", "/next")
        assert r.upstream()["path"] == "/next"
