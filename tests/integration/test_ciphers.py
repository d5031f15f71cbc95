"""A listener's cipher suites: the default order (AES-128-GCM first), a
ChaCha20-first client, configured lists, clients refused for want of a
shared suite, live reload and resumption across a change."""

import copy
import ssl

import cgtest
from cgtest import client_ctx, config, connect, get, listener, route

AES128_13 = "TLS_AES_128_GCM_SHA256"
AES256_13 = "TLS_AES_256_GCM_SHA384"
CHACHA_13 = "TLS_CHACHA20_POLY1305_SHA256"
AES128_12 = "ECDHE-ECDSA-AES128-GCM-SHA256"
AES256_12 = "ECDHE-ECDSA-AES256-GCM-SHA384"
CHACHA_12 = "ECDHE-ECDSA-CHACHA20-POLY1305"


def web(pki, upstream, **kw):
    return config(pki, [listener("web", pki, [route(upstream)], **kw)])


def ctx12(pki, ciphers=None):
    ctx = client_ctx(pki, pki.alice, max_version=ssl.TLSVersion.TLSv1_2)
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def negotiated(pki, port, ctx=None, **kw):
    """The suite of one successful request; its identity reached the
    upstream."""
    with connect(pki, port, pki.alice, ctx=ctx, **kw) as c:
        r = c.request("GET", "/")
        assert r.status == 200, r
        assert r.upstream().get("X-Client-Verify") == "SUCCESS"
        return c.sock.cipher()[0]


def s_client_suite(pki, port, args):
    """(suite or None, output) of `openssl s_client` with args."""
    p = cgtest.s_client(pki, port, cert=pki.alice, args=list(args),
                        stdin=b"GET / HTTP/1.1\r\nHost: localhost\r\n"
                        b"Connection: close\r\n\r\n")
    out = (p.stdout + p.stderr).decode("latin-1")
    for line in out.splitlines():
        if "Cipher is " in line:
            suite = line.split()[-1]
            if suite != "(NONE)":
                return suite, out
    return None, out


def assert_no_shared_suite(pki, d, args, upstream):
    suite, out = s_client_suite(pki, d.port(), args)
    assert suite is None, out[-2000:]
    assert "alert handshake failure" in out, out[-2000:]
    d.wait_log(lambda rec: rec.get("event") == "handshake_failed" and
               "no shared cipher" in str(rec.get("error")),
               what="handshake_failed: no shared cipher")
    assert upstream.started == []


def test_default_order_prefers_aes128(cg, pki, upstream):
    """OpenSSL's client lists AES-256 first; the listener's order wins."""
    d = cg.start(web(pki, upstream))
    assert negotiated(pki, d.port()) == AES128_13
    assert negotiated(pki, d.port(), ctx=ctx12(pki)) == AES128_12
    logs = d.wait_access(2)
    assert [(r["tls"], r["cipher"]) for r in logs[:2]] == [
        ("TLSv1.3", AES128_13), ("TLSv1.2", AES128_12)]
    suite, out = s_client_suite(
        pki, d.port(), ["-ciphersuites", AES256_13 + ":" + AES128_13])
    assert suite == AES128_13, out[-2000:]


def test_chacha_first_client_gets_chacha(cg, pki, upstream):
    """A client that puts ChaCha20-Poly1305 first (no AES instructions)
    gets it, in both versions."""
    d = cg.start(web(pki, upstream))
    suite, out = s_client_suite(
        pki, d.port(), ["-ciphersuites", CHACHA_13 + ":" + AES128_13])
    assert suite == CHACHA_13, out[-2000:]
    ctx = ctx12(pki, CHACHA_12 + ":" + AES128_12)
    assert negotiated(pki, d.port(), ctx=ctx) == CHACHA_12


def test_configured_lists(cg, pki, upstream):
    d = cg.start(web(pki, upstream, tls13_ciphersuites=[AES256_13],
                     tls12_ciphers=["TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"]))
    assert negotiated(pki, d.port()) == AES256_13
    assert negotiated(pki, d.port(), ctx=ctx12(pki)) == AES256_12
    # A ChaCha20-first client gets no ChaCha20 the listener does not list.
    suite, out = s_client_suite(
        pki, d.port(), ["-ciphersuites", CHACHA_13 + ":" + AES256_13])
    assert suite == AES256_13, out[-2000:]


def test_no_shared_suite_refused(cg, pki, upstream):
    d = cg.start(web(pki, upstream, tls13_ciphersuites=[AES256_13],
                     tls12_ciphers=[AES256_12]))
    assert_no_shared_suite(pki, d, ["-ciphersuites", AES128_13], upstream)
    assert_no_shared_suite(pki, d, ["-tls1_2", "-cipher", AES128_12],
                           upstream)


def test_reload_changes_suites(cg, pki, upstream):
    """New connections get the new order at once; an open connection keeps
    its suite and keeps working; a TLS 1.2 session made under the old
    lists is not resumed (OpenSSL would resume it with a suite the
    listener no longer lists)."""
    d = cg.start(web(pki, upstream))
    ctx = ctx12(pki, AES128_12 + ":" + AES256_12)
    with connect(pki, d.port(), pki.alice, ctx=ctx) as c:
        assert c.request("GET", "/").status == 200
        session = c.sock.session
    with connect(pki, d.port(), pki.alice, ctx=ctx, session=session) as c:
        assert c.sock.session_reused
        assert c.request("GET", "/").status == 200
    old = connect(pki, d.port(), pki.alice)
    assert old.request("GET", "/").status == 200
    new = copy.deepcopy(d.cfg)
    new["listeners"][0]["tls13_ciphersuites"] = [AES256_13]
    new["listeners"][0]["tls12_ciphers"] = [AES256_12]
    d.reload(new)
    with old:
        assert old.request("GET", "/").status == 200
        assert old.sock.cipher()[0] == AES128_13
    assert negotiated(pki, d.port()) == AES256_13
    with connect(pki, d.port(), pki.alice, ctx=ctx, session=session) as c:
        assert not c.sock.session_reused
        assert c.sock.cipher()[0] == AES256_12
        assert c.request("GET", "/").status == 200


def test_invalid_suites_reload_refused(cg, pki, upstream):
    d = cg.start(web(pki, upstream))
    bad = copy.deepcopy(d.cfg)
    bad["listeners"][0]["tls13_ciphersuites"] = [AES256_13, "TLS_RC4"]
    rec = d.reload(bad, expect_ok=False)
    assert "listeners[0].tls13_ciphersuites[1]: unknown TLS 1.3 cipher " \
        "suite" in str(rec), rec
    assert negotiated(pki, d.port()) == AES128_13


def test_tls13_only_listener(cg, pki, upstream):
    d = cg.start(web(pki, upstream, tls_min_version="1.3",
                     tls13_ciphersuites=[CHACHA_13]))
    assert negotiated(pki, d.port()) == CHACHA_13
    r = get(pki, d.port(), "/", cert=pki.alice)
    assert r.status == 200
