"""Identity headers cannot be spoofed; forwarding headers; hop-by-hop."""

import pytest

from cgtest import (ALL_IDENTITY_HEADERS, IDENTITY_HEADERS, config, get,
                    listener, route)


def norm(name):
    return name.lower().replace("_", "-")


def spoof_headers(names):
    """Every name in several spellings, several copies each."""
    out = []
    for i, n in enumerate(names):
        for j, v in enumerate((n, n.lower(), n.upper(), n.replace("-", "_"),
                               n.lower().replace("-", "_"), n)):
            out.append((v, "spoof-%d-%d" % (i, j)))
    return out


def start(cg, pki, upstream, mode="optional", **route_kw):
    return cg.start(config(pki, [listener(
        "web", pki, [route(upstream, **route_kw)], mode=mode)]))


def assert_no_spoof(up):
    leaked = [(k, v) for k, v in up.headers if "spoof" in v]
    assert leaked == [], "spoofed headers reached the upstream: %r" % leaked


@pytest.mark.parametrize("with_cert", [True, False], ids=["alice", "nocert"])
def test_spoofed_identity_headers_stripped(cg, pki, upstream, with_cert):
    d = start(cg, pki, upstream)
    r = get(pki, d.port(), "/", cert=pki.alice if with_cert else None,
            headers=spoof_headers(ALL_IDENTITY_HEADERS))
    assert r.status == 200, r
    up = r.upstream()
    assert_no_spoof(up)
    # No second spelling survives next to certgate's own header.
    for n in ALL_IDENTITY_HEADERS:
        same = [k for k in up.names() if norm(k) == norm(n)]
        assert len(same) <= 1, (n, same)
    if with_cert:
        assert up.get("X-Client-Verify") == "SUCCESS"
        assert up.get("X-Client-Cert-CN") == "alice"
        assert up.get("X-Client-Cert-Email") == "alice@example.com"
        assert up.get("Client-Cert") == pki.alice.client_cert_header
    else:
        assert up.get("X-Client-Verify") == "NONE"
        for n in IDENTITY_HEADERS:
            assert up.all(n) == []


def test_spoofed_headers_stripped_on_refused_cert(cg, pki, upstream):
    d = start(cg, pki, upstream)
    r = get(pki, d.port(), "/", cert=pki.expired,
            headers=spoof_headers(ALL_IDENTITY_HEADERS))
    up = r.upstream()
    assert_no_spoof(up)
    assert up.get("X-Client-Verify") == "FAILED:expired"


CUSTOM = {"X-User": "cn", "X-Mail": "email", "X-Fp": "sha256"}


@pytest.mark.parametrize("with_cert", [True, False], ids=["alice", "nocert"])
def test_configured_identity_headers_stripped(cg, pki, upstream, with_cert):
    d = start(cg, pki, upstream, identity_headers=CUSTOM)
    r = get(pki, d.port(), "/", cert=pki.alice if with_cert else None,
            headers=spoof_headers(list(CUSTOM) +
                                  list(ALL_IDENTITY_HEADERS)))
    assert r.status == 200, r
    up = r.upstream()
    assert_no_spoof(up)
    if with_cert:
        assert up.get("X-User") == "alice"
        assert up.get("X-Mail") == "alice@example.com"
        assert up.get("X-Fp") == pki.alice.sha256
    else:
        for n in CUSTOM:
            assert up.all(n) == []


def test_forwarded_headers(cg, pki, upstream):
    d = start(cg, pki, upstream)
    host = "localhost:%d" % d.port()
    r = get(pki, d.port(), "/fwd", cert=pki.alice, host=host, headers=[
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Host", "evil.example"),
    ])
    up = r.upstream()
    xff = [p.strip() for v in up.all("X-Forwarded-For")
           for p in v.split(",")]
    assert xff in (["127.0.0.1"], ["1.2.3.4", "127.0.0.1"]), xff
    assert up.all("X-Forwarded-Proto") == ["https"]
    assert up.all("X-Forwarded-Host") == [host]


def test_forwarded_headers_set_without_inbound(cg, pki, upstream):
    d = start(cg, pki, upstream)
    r = get(pki, d.port(), "/", cert=pki.alice)
    up = r.upstream()
    assert up.all("X-Forwarded-For") == ["127.0.0.1"]
    assert up.all("X-Forwarded-Proto") == ["https"]
    assert up.all("X-Forwarded-Host") == ["localhost"]


def test_hop_by_hop_not_forwarded(cg, pki, upstream):
    d = start(cg, pki, upstream)
    r = get(pki, d.port(), "/hop", cert=pki.alice, headers=[
        ("Connection", "keep-alive, X-Hop-One"),
        ("Connection", "X-Hop-Two"),
        ("X-Hop-One", "1"),
        ("X-Hop-Two", "2"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("X-End-To-End", "kept"),
    ])
    assert r.status == 200
    up = r.upstream()
    names = up.names()
    for h in ("x-hop-one", "x-hop-two", "keep-alive", "proxy-connection"):
        assert h not in names, "%s forwarded: %r" % (h, up.headers)
    for v in up.all("Connection"):
        assert "hop" not in v.lower(), up.headers
    assert up.get("X-End-To-End") == "kept"


@pytest.mark.parametrize("with_cert", [True, False], ids=["alice", "nocert"])
def test_connection_header_cannot_drop_identity(cg, pki, upstream,
                                                with_cert):
    """Naming certgate's headers in Connection must not remove them."""
    d = start(cg, pki, upstream)
    r = get(pki, d.port(), "/", cert=pki.alice if with_cert else None,
            headers=[("Connection",
                      "X-Client-Verify, X-Client-Cert-CN, Client-Cert, "
                      "X-Forwarded-For, X-Forwarded-Proto")])
    up = r.upstream()
    assert up.get("X-Forwarded-Proto") == "https"
    assert up.all("X-Forwarded-For") != []
    if with_cert:
        assert up.get("X-Client-Verify") == "SUCCESS"
        assert up.get("X-Client-Cert-CN") == "alice"
        assert up.get("Client-Cert") == pki.alice.client_cert_header
    else:
        assert up.get("X-Client-Verify") == "NONE"


def test_ordinary_headers_pass_through(cg, pki, upstream):
    d = start(cg, pki, upstream)
    r = get(pki, d.port(), "/", cert=pki.alice, headers=[
        ("X-Custom", "one"), ("X-Custom", "two"),
        ("Authorization", "Bearer abc"), ("Cookie", "a=b")])
    up = r.upstream()
    assert up.all("X-Custom") in (["one", "two"], ["one, two"])
    assert up.get("Authorization") == "Bearer abc"
    assert up.get("Cookie") == "a=b"


ALL_FIELDS = {
    "X-F-Verify": "verify", "X-F-Cn": "cn", "X-F-Dn": "dn",
    "X-F-Email": "email", "X-F-San-Email": "san_email",
    "X-F-Serial": "serial", "X-F-Issuer": "issuer_dn",
    "X-F-Nb": "not_before", "X-F-Na": "not_after", "X-F-Sha256": "sha256",
    "X-F-Md5": "md5", "X-F-Crt": "crt", "X-F-Cc": "client_cert",
}


def test_identity_header_fields_exact(cg, pki, upstream):
    import base64
    import hashlib
    d = start(cg, pki, upstream, identity_headers=ALL_FIELDS)
    c = pki.carol
    up = get(pki, d.port(), "/", cert=c).upstream()
    got = {k: up.get(k) for k in ALL_FIELDS}
    assert got == {
        "X-F-Verify": "SUCCESS", "X-F-Cn": "carol", "X-F-Dn": c.subject_dn,
        "X-F-Email": "carol@example.com",
        "X-F-San-Email": "carol@example.com",
        "X-F-Serial": c.serial_hex, "X-F-Issuer": c.issuer_dn,
        "X-F-Nb": c.not_before, "X-F-Na": c.not_after,
        "X-F-Sha256": c.sha256, "X-F-Md5": hashlib.md5(c.der).hexdigest(),
        "X-F-Crt": base64.b64encode(c.der).decode(),
        "X-F-Cc": c.client_cert_header,
    }


def test_pem_urlencoded_decodes_once(cg, pki, upstream):
    """pem_urlencoded is URL-encoded once (nginx $ssl_client_escaped_cert):
    one unquote gives the PEM back."""
    import urllib.parse
    d = start(cg, pki, upstream, identity_headers={"X-Pem": "pem_urlencoded"})
    c = pki.carol
    pem = get(pki, d.port(), "/", cert=c).upstream().get("X-Pem")
    assert pem is not None
    assert "\n" not in pem and " " not in pem
    assert urllib.parse.unquote(pem).strip() == c.pem_text.strip(), pem[:80]


def test_configured_identity_headers_only_on_success(cg, pki, upstream):
    d = start(cg, pki, upstream, mode="report", identity_headers=CUSTOM)
    up = get(pki, d.port(), "/", cert=pki.expired).upstream()
    for n in CUSTOM:
        assert up.all(n) == [], (n, up.headers)
