"""SNI vs Host (421), session resumption across listeners, TLS versions."""

import os
import ssl

import pytest

import cgtest
from cgtest import (assert_error_answer, build_request, client_auth,
                    client_ctx, config, connect, get, listener, route)


def two_entry_listener(pki, upstream):
    """app.localhost requires a staff certificate, other.localhost has no
    client auth; both names are on the same server certificate."""
    lst = listener("web", pki, [route(upstream, host="app.localhost"),
                                route(upstream, host="other.localhost")],
                   mode="optional")
    lst["certificates"] = [
        {"cert": pki.server.chain, "key": pki.server.key,
         "server_names": ["app.localhost"],
         "client_auth": client_auth("required")},
        {"cert": pki.server.chain, "key": pki.server.key,
         "server_names": ["other.localhost"],
         "client_auth": client_auth("off")},
    ]
    return lst


@pytest.fixture
def sni_daemon(cg, pki, upstream):
    return cg.start(config(pki, [two_entry_listener(pki, upstream)]))


def test_sni_and_host_agree(sni_daemon, pki, upstream):
    port = sni_daemon.port()
    r = get(pki, port, "/", cert=pki.alice, sni="app.localhost",
            host="app.localhost")
    assert r.status == 200
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"
    r = get(pki, port, "/", sni="other.localhost", host="other.localhost")
    assert r.status == 200
    assert r.upstream().get("X-Client-Verify") == "NONE"


def test_required_entry_refuses_without_cert(sni_daemon, pki, upstream):
    how = cgtest.refused(pki, sni_daemon.port(), None, sni="app.localhost")
    assert how is not None
    assert upstream.started == []


@pytest.mark.parametrize("host", ["app.localhost", "APP.LOCALHOST",
                                  "App.Localhost.", "app.localhost:{port}",
                                  "app.localhost.:{port}"])
def test_421_host_needs_other_policy(sni_daemon, pki, upstream, host):
    """SNI other.localhost (no client auth), Host app.localhost (required):
    421, never proxied."""
    port = sni_daemon.port()
    r = get(pki, port, "/x", sni="other.localhost",
            host=host.format(port=port))
    assert_error_answer(r, 421)
    assert upstream.started == []


def test_421_reverse_direction(sni_daemon, pki, upstream):
    port = sni_daemon.port()
    r = get(pki, port, "/x", cert=pki.alice, sni="app.localhost",
            host="other.localhost")
    assert_error_answer(r, 421)
    assert upstream.started == []


@pytest.mark.parametrize("host_header", ["app.localhost", "other.localhost"])
def test_421_absolute_form(sni_daemon, pki, upstream, host_header):
    """The authority of an absolute-form target is the Host that counts."""
    port = sni_daemon.port()
    with connect(pki, port, sni="other.localhost") as c:
        c.send(build_request("GET", "https://app.localhost:%d/abs" % port,
                             host=host_header, close=True))
        r = c.read_response()
    assert_error_answer(r, 421)
    assert upstream.started == []


def test_absolute_form_same_policy_ok(sni_daemon, pki, upstream):
    port = sni_daemon.port()
    with connect(pki, port, sni="other.localhost") as c:
        c.send(build_request("GET", "https://other.localhost/abs",
                             host="other.localhost", close=True))
        r = c.read_response()
    assert r.status == 200, r
    assert r.upstream()["path"] in ("/abs", "https://other.localhost/abs")


@pytest.mark.parametrize("host", ["OTHER.localhost", "other.localhost.",
                                  "other.localhost:{port}"])
def test_host_normalised_same_entry_ok(sni_daemon, pki, upstream, host):
    port = sni_daemon.port()
    r = get(pki, port, "/", sni="other.localhost",
            host=host.format(port=port))
    assert r.status == 200, r


# -- resumption ---------------------------------------------------------------

def two_listeners(cg, pki, upstream, **kw):
    a = listener("a", pki, [route(upstream)], mode="required", **kw)
    b = listener("b", pki, [route(upstream)], mode="optional", trust="other",
                 **kw)
    return cg.start(config(pki, [a, b]))


def test_tls13_session_resumes_only_on_same_listener(cg, pki, upstream):
    d = two_listeners(cg, pki, upstream)
    ctx = client_ctx(pki, pki.alice, min_version=ssl.TLSVersion.TLSv1_3)
    with connect(pki, d.port("a"), ctx=ctx) as c:
        assert c.request("GET", "/first").upstream().get(
            "X-Client-Verify") == "SUCCESS"
        sess = c.session
    assert sess is not None and sess.has_ticket, "no TLS 1.3 ticket"

    with connect(pki, d.port("a"), ctx=ctx, session=sess) as c:
        r = c.request("GET", "/again")
        assert c.session_reused, "session did not resume on listener a"
        up = r.upstream()
        assert up.get("X-Client-Verify") == "SUCCESS"
        assert up.get("X-Client-Cert-CN") == "alice"

    with connect(pki, d.port("b"), ctx=ctx, session=sess) as c:
        r = c.request("GET", "/cross")
        assert not c.session_reused, "listener a's session resumed on b"
        # b trusts "other" only: alice must be judged afresh.
        assert r.upstream().get("X-Client-Verify") == "FAILED:untrusted"


def _s_client_state(p):
    out = p.stdout.decode("latin-1")
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("New,") or line.startswith("Reused,"):
            return line.split(",")[0]
    raise AssertionError("no New/Reused line in s_client output:\n" +
                         out[-3000:] + p.stderr.decode("latin-1")[-2000:])


def test_tls12_session_resumes_only_on_same_listener(cg, pki, upstream,
                                                     tmp_path):
    d = two_listeners(cg, pki, upstream)
    sess = os.path.join(str(tmp_path), "sess.pem")
    p = cgtest.s_client(pki, d.port("a"), cert=pki.alice,
                        args=["-tls1_2", "-sess_out", sess])
    assert _s_client_state(p) == "New"
    assert os.path.getsize(sess) > 0

    p = cgtest.s_client(pki, d.port("a"), cert=pki.alice,
                        args=["-tls1_2", "-sess_in", sess])
    assert _s_client_state(p) == "Reused"

    p = cgtest.s_client(pki, d.port("b"), cert=pki.alice,
                        args=["-tls1_2", "-sess_in", sess])
    assert _s_client_state(p) == "New"


def test_tls12_python_resumption(cg, pki, upstream):
    d = two_listeners(cg, pki, upstream)
    ctx = client_ctx(pki, pki.alice, max_version=ssl.TLSVersion.TLSv1_2)
    with connect(pki, d.port("a"), ctx=ctx) as c:
        c.request("GET", "/")
        sess = c.session
    with connect(pki, d.port("a"), ctx=ctx, session=sess) as c:
        r = c.request("GET", "/")
        assert c.session_reused
        assert r.upstream().get("X-Client-Cert-CN") == "alice"
    with connect(pki, d.port("b"), ctx=ctx, session=sess) as c:
        r = c.request("GET", "/")
        assert not c.session_reused
        assert r.upstream().get("X-Client-Verify") == "FAILED:untrusted"


# -- versions -----------------------------------------------------------------

def test_tls_min_version_13_refuses_tls12(cg, pki, upstream):
    lst = listener("web", pki, [route(upstream)], mode="optional",
                   tls_min_version="1.3")
    d = cg.start(config(pki, [lst]))
    ctx = client_ctx(pki, pki.alice, max_version=ssl.TLSVersion.TLSv1_2)
    with pytest.raises((ssl.SSLError, ConnectionError)):
        with connect(pki, d.port(), ctx=ctx) as c:
            c.request("GET", "/")
    rc, code, _, _ = cgtest.curl(pki, d.port(), "/", cert=pki.alice,
                                 args=["--tlsv1.2", "--tls-max", "1.2"])
    assert rc != 0 and code == "000"
    assert upstream.started == []
    # TLS 1.3 works.
    ctx = client_ctx(pki, pki.alice, min_version=ssl.TLSVersion.TLSv1_3)
    with connect(pki, d.port(), ctx=ctx) as c:
        assert c.request("GET", "/").status == 200
        assert c.sock.version() == "TLSv1.3"


def test_tls12_allowed_by_default(cg, pki, upstream):
    lst = listener("web", pki, [route(upstream)], mode="required")
    d = cg.start(config(pki, [lst]))
    ctx = client_ctx(pki, pki.alice, max_version=ssl.TLSVersion.TLSv1_2)
    with connect(pki, d.port(), ctx=ctx) as c:
        r = c.request("GET", "/")
        assert c.sock.version() == "TLSv1.2"
        assert r.upstream().get("X-Client-Verify") == "SUCCESS"


def test_tls12_client_renegotiation_refused(cg, pki, upstream):
    lst = listener("web", pki, [route(upstream)], mode="optional")
    d = cg.start(config(pki, [lst]))
    # s_client renegotiates on a line "R"; then it sends the request.
    p = cgtest.s_client(pki, d.port(), cert=pki.alice, args=["-tls1_2"],
                        stdin=b"R\nGET / HTTP/1.1\r\nHost: localhost\r\n"
                        b"Connection: close\r\n\r\n")
    out = (p.stdout + p.stderr).decode("latin-1")
    assert "RENEGOTIATING" in out, out[-2000:]
    assert "no renegotiation" in out.lower() or \
        "HTTP/1.1 200" not in out, out[-3000:]


def test_no_421_when_policies_equal(cg, pki, upstream):
    """Two certificate entries with the same client-auth policy: a Host
    served by the other entry is fine."""
    lst = two_entry_listener(pki, upstream)
    for e in lst["certificates"]:
        e["client_auth"] = client_auth("required")
    d = cg.start(config(pki, [lst]))
    r = get(pki, d.port(), "/", cert=pki.alice, sni="other.localhost",
            host="app.localhost")
    assert r.status == 200, r
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"
