"""TLS I/O on listener connections (src/tls/conn.c, sockbio.c, record.c):
whole undecrypted records may wait inside the TLS layer while the socket
is drained, so the gateway must keep processing them without an fd event,
also after back-pressure stopped reading, and must not spin on a partial
record; a handshake whose last read emptied the socket waits for the next
readiness event instead of reading again, and misses nothing that comes
in pieces or late. And what goes on the wire: the TLS 1.3 session ticket waits for
the first answer, close_notify leaves with the last one."""

import hashlib
import json
import pytest
import socket
import ssl
import struct
import time

from cgtest import UpstreamView, build_request, client_ctx, connect, route
from test_proxy import _payload, start
from test_tls_record import RawTLS


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


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_handshake_flights_in_pieces_and_a_late_request(cg, pki, upstream,
                                                        version):
    """Each of the client's flights arrives in three writes 50 ms apart,
    so the server's reads find the socket empty mid-flight, and the
    request comes 200 ms after the handshake (in TLS 1.2 the server sent
    the last flight, after which its read had emptied the socket); then a
    resumption in the same way. Every byte is waited for, none is lost."""
    d = start(cg, pki, [route(upstream)])
    v = (ssl.TLSVersion.TLSv1_2 if version == "1.2"
         else ssl.TLSVersion.TLSv1_3)
    ctx = client_ctx(pki, pki.alice, min_version=v, max_version=v)
    sess = None
    for i in range(2):
        c = RawTLS(pki, d.port(), pki.alice, ctx=ctx, session=sess,
                   pieces=3)
        try:
            assert c.obj.version() == "TLSv" + version
            assert c.obj.session_reused == (i == 1)
            time.sleep(0.2)
            c.send(build_request("GET", "/late%d" % i))
            up = UpstreamView(json.loads(
                c.read_response().split(b"\r\n\r\n", 1)[1]))
            assert up["path"] == "/late%d" % i
            assert up.get("X-Client-Verify") == "SUCCESS"
            sess = c.obj.session
        finally:
            c.close()


# --- What goes on the wire (src/tls/sockbio.c, src/tls/record.c) ---------
#
# Counted with the client socket's TCP_INFO: tcpi_data_segs_in, the data
# segments it received (Linux >= 4.6). On loopback one send() is one
# segment.

def _segs_in(sock):
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("I", info, 152)[0]


def _nothing_waiting(sock):
    t = sock.gettimeout()
    sock.settimeout(0)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(t)
    return False


# a static answer: one write per answer (a proxied one may take several)
STATIC = {"path": "/s", "respond": {"status": 200, "body": "ok\n",
                                    "content_type": "text/plain"}}


def _answer_then_close(c):
    """The answers to the requests sent, read to the end, which must be a
    close_notify."""
    got, err = c.read_all()
    assert err is None, "no close_notify before the end: %r" % err
    assert got.startswith(b"HTTP/1.1 200 "), got[:80]
    return got


def test_tls13_ticket_and_close_notify_leave_with_the_answer(cg, pki,
                                                             upstream):
    """A TLS 1.3 client gets the server's flight, then nothing until its
    request is answered: the session ticket, the answer and close_notify
    then come in one segment, and the ticket resumes."""
    d = start(cg, pki, [STATIC])
    ctx = client_ctx(pki, pki.alice, min_version=ssl.TLSVersion.TLSv1_3)
    c = RawTLS(pki, d.port(), pki.alice, ctx=ctx)
    try:
        time.sleep(0.2)
        assert _segs_in(c.sock) == 1
        assert _nothing_waiting(c.sock), "the ticket went out on its own"
        c.send(build_request("GET", "/s", close=True))
        assert _answer_then_close(c).endswith(b"\r\n\r\nok\n")
        assert _segs_in(c.sock) == 2
        sess = c.obj.session
        assert sess is not None and sess.has_ticket
    finally:
        c.close()
    r = RawTLS(pki, d.port(), pki.alice, ctx=ctx, session=sess)
    try:
        assert r.obj.session_reused
        r.send(build_request("GET", "/s", close=True))
        assert _answer_then_close(r).endswith(b"\r\n\r\nok\n")
        assert _segs_in(r.sock) == 2
    finally:
        r.close()


def test_tls13_keep_alive_ticket_with_the_first_answer_only(cg, pki,
                                                            upstream):
    d = start(cg, pki, [STATIC])
    ctx = client_ctx(pki, pki.alice, min_version=ssl.TLSVersion.TLSv1_3)
    c = RawTLS(pki, d.port(), pki.alice, ctx=ctx)
    try:
        for i in range(3):
            c.send(build_request("GET", "/s"))
            assert c.read_response().endswith(b"\r\n\r\nok\n")
            assert _segs_in(c.sock) == 2 + i
        assert c.obj.session is not None and c.obj.session.has_ticket
        c.send(build_request("GET", "/s", close=True))
        assert _answer_then_close(c).endswith(b"\r\n\r\nok\n")
        assert _segs_in(c.sock) == 5
    finally:
        c.close()


def test_tls12_close_notify_leaves_with_the_answer(cg, pki, upstream):
    """TLS 1.2 (no tickets: session ids): the server's two flights, then
    the answer with close_notify in one segment."""
    d = start(cg, pki, [STATIC])
    ctx = client_ctx(pki, pki.alice, max_version=ssl.TLSVersion.TLSv1_2)
    c = RawTLS(pki, d.port(), pki.alice, ctx=ctx)
    try:
        assert c.obj.version() == "TLSv1.2"
        c.send(build_request("GET", "/s", close=True))
        assert _answer_then_close(c).endswith(b"\r\n\r\nok\n")
        assert _segs_in(c.sock) == 3
    finally:
        c.close()


def test_request_in_the_segment_of_the_finished(cg, pki, upstream):
    """The client's Finished and its first request (and a second,
    pipelined) in one segment: what the handshake's read took beyond the
    Finished reaches the record layer, and is answered with no further
    event from the socket."""
    d = start(cg, pki, [route(upstream)])
    ctx = client_ctx(pki, pki.alice, min_version=ssl.TLSVersion.TLSv1_3)
    c = RawTLS(pki, d.port(), pki.alice, ctx=ctx,
               first=build_request("GET", "/f1") +
               build_request("GET", "/f2", close=True))
    try:
        got = _answer_then_close(c)
        assert b'"path": "/f1"' in got and b'"path": "/f2"' in got
    finally:
        c.close()
    recs = [r for r in d.access_logs() if r.get("path") in ("/f1", "/f2")]
    assert [r["status"] for r in recs] == [200, 200]


def test_ticket_goes_with_close_notify_when_nothing_is_answered(cg, pki,
                                                                upstream):
    """A client that sends nothing and closes: the gateway's close_notify
    goes out behind the ticket it held, in one segment."""
    d = start(cg, pki, [STATIC])
    ctx = client_ctx(pki, pki.alice, min_version=ssl.TLSVersion.TLSv1_3)
    c = RawTLS(pki, d.port(), pki.alice, ctx=ctx)
    try:
        c.sock.shutdown(socket.SHUT_WR)
        got, err = c.read_all()
        assert got == b"" and err is None, err
        assert _segs_in(c.sock) == 2
        assert c.obj.session is not None and c.obj.session.has_ticket
    finally:
        c.close()
