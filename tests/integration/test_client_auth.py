"""Client certificate verification in each client_auth mode.

required: refused certificates never get a connection (handshake alert);
optional: the request goes through with X-Client-Verify: FAILED:<reason>
(NONE without a certificate) and no identity headers; report: everything
goes through, the access log names the would-be refusal; off: no
CertificateRequest at all.
"""

import json
import subprocess

import pytest

import cgtest
from cgtest import (IDENTITY_HEADERS, client_auth, config, get, listener,
                    refused, route)

# (PKI attribute, reason code certgate must give)
REFUSALS = [
    pytest.param("other_signed", "untrusted", id="other_ca"),
    pytest.param("fake_signed", "untrusted", id="fake_root_same_dn"),
    pytest.param("expired", "expired", id="expired"),
    pytest.param("notyet", "not_yet_valid", id="not_yet_valid"),
    pytest.param("server_eku", "bad_eku", id="server_auth_only_eku"),
    pytest.param("empty_eku", "bad_eku", id="empty_eku"),
    pytest.param("ca_leaf", "leaf_is_ca", id="ca_true_leaf"),
    pytest.param("nul_cn", "bad_name", id="nul_in_cn"),
    pytest.param("crlf_cn", "bad_name", id="crlf_in_cn"),
    pytest.param("two_cn", "multiple_cn", id="two_cns"),
    pytest.param("bad_sig", "bad_signature", id="bad_signature"),
]
REFUSALS_AND_NONE = [pytest.param(None, "no_cert", id="no_cert")] + REFUSALS

# (PKI attribute, CN, email)
ACCEPTED = [
    pytest.param("alice", "alice", "alice@example.com", id="alice"),
    pytest.param("carol", "carol", "carol@example.com",
                 id="via_intermediate"),
    pytest.param("bob", "bob", "bob@other.org", id="bob"),
    pytest.param("noemail", "noemail", None, id="no_email"),
    pytest.param("special", 'Smith, John+Jr "Q"', "smith@example.com",
                 id="cn_comma_plus_quote"),
]


def start(cg, pki, upstream, mode, **ca_extra):
    lst = listener("web", pki, [route(upstream)])
    lst["client_auth"] = client_auth(mode, **ca_extra)
    return cg.start(config(pki, [lst]))


def cert_of(pki, attr):
    return getattr(pki, attr) if attr else None


def assert_no_identity(up):
    for h in IDENTITY_HEADERS:
        assert up.all(h) == [], "%s sent upstream without SUCCESS: %r" % (
            h, up.all(h))


# -- required ---------------------------------------------------------------

@pytest.mark.parametrize("attr,reason", REFUSALS_AND_NONE)
def test_required_refuses_handshake(cg, pki, upstream, attr, reason):
    d = start(cg, pki, upstream, "required")
    how = refused(pki, d.port(), cert_of(pki, attr), path="/refused")
    assert how is not None, "required listener answered HTTP for %s" % attr
    assert "alert" in how.lower(), "refused without a TLS alert: " + how
    assert "/refused" not in upstream.paths()
    # The refusal is logged with its reason (STYLE 6: client faults, info).
    d.wait_log(lambda rec: rec.get("reason") == reason,
               what="a log line with reason %s" % reason)
    # The daemon keeps serving good clients.
    r = get(pki, d.port(), "/after", cert=pki.alice)
    assert r.status == 200
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
@pytest.mark.parametrize("attr,reason", REFUSALS_AND_NONE)
def test_required_alert_s_client(cg, pki, upstream, attr, reason, version):
    """openssl s_client sees a TLS alert, in TLS 1.2 and 1.3."""
    d = start(cg, pki, upstream, "required")
    p = cgtest.s_client(pki, d.port(), cert=cert_of(pki, attr),
                        args=[version, "-ign_eof"], stdin=b"")
    # -ign_eof: keep reading after stdin's EOF, so the TLS 1.3 alert (sent
    # after the client's Finished) is read rather than raced by our close.
    out = (p.stdout + p.stderr).decode("latin-1")
    assert p.returncode != 0, out[-2000:]
    assert "SSL alert number" in out, out[-2000:]
    assert upstream.started == []


@pytest.mark.parametrize("attr", [None, "expired", "other_signed"])
def test_required_refuses_curl(cg, pki, upstream, attr):
    d = start(cg, pki, upstream, "required")
    rc, code, _, _ = cgtest.curl(pki, d.port(), "/refused",
                                 cert=cert_of(pki, attr))
    assert rc != 0 and code == "000", (rc, code)
    assert upstream.paths() == []


@pytest.mark.parametrize("attr,cn,email", ACCEPTED)
def test_required_accepts(cg, pki, upstream, attr, cn, email):
    d = start(cg, pki, upstream, "required")
    rc, code, _, body = cgtest.curl(pki, d.port(), "/ok",
                                    cert=getattr(pki, attr))
    assert (rc, code) == (0, "200"), body
    up = cgtest.UpstreamView(json.loads(body))
    assert up.get("X-Client-Verify") == "SUCCESS"
    assert up.get("X-Client-Cert-CN") == cn
    assert up.get("X-Client-Cert-Email") == email


def test_intermediate_without_chain_is_untrusted(cg, pki, upstream):
    """carol's leaf alone (no intermediate sent, none in the trust set)."""
    d = start(cg, pki, upstream, "optional")
    r = get(pki, d.port(), "/", cert=pki.carol, chain=False)
    assert r.status == 200
    assert r.upstream().get("X-Client-Verify") == "FAILED:untrusted"


# -- optional ---------------------------------------------------------------

@pytest.mark.parametrize("attr,reason", REFUSALS)
def test_optional_passes_failed(cg, pki, upstream, attr, reason):
    d = start(cg, pki, upstream, "optional")
    r = get(pki, d.port(), "/opt", cert=getattr(pki, attr))
    assert r.status == 200, r
    up = r.upstream()
    assert up["path"] == "/opt"
    assert up.get("X-Client-Verify") == "FAILED:" + reason
    assert_no_identity(up)


def test_optional_no_cert_is_none(cg, pki, upstream):
    d = start(cg, pki, upstream, "optional")
    r = get(pki, d.port(), "/opt")
    assert r.status == 200
    up = r.upstream()
    assert up.get("X-Client-Verify") == "NONE"
    assert_no_identity(up)


@pytest.mark.parametrize("attr,cn,email", ACCEPTED)
def test_optional_accepts(cg, pki, upstream, attr, cn, email):
    d = start(cg, pki, upstream, "optional")
    r = get(pki, d.port(), "/", cert=getattr(pki, attr))
    up = r.upstream()
    assert up.get("X-Client-Verify") == "SUCCESS"
    assert up.get("X-Client-Cert-CN") == cn


# -- report -----------------------------------------------------------------

@pytest.mark.parametrize("attr,reason", REFUSALS_AND_NONE)
def test_report_passes_and_logs(cg, pki, upstream, attr, reason):
    d = start(cg, pki, upstream, "report")
    r = get(pki, d.port(), "/rep", cert=cert_of(pki, attr))
    assert r.status == 200, r
    up = r.upstream()
    assert up["path"] == "/rep"
    assert_no_identity(up)
    acc = d.wait_access(1)[-1]
    assert acc["status"] == 200
    assert acc["reason"] == reason, acc
    assert acc.get("would_refuse") is True, acc
    if attr is None:
        assert acc["verify"] in ("NONE", "FAILED"), acc
    else:
        assert acc["verify"] == "FAILED", acc


@pytest.mark.parametrize("attr,cn,email", ACCEPTED[:2])
def test_report_accepts(cg, pki, upstream, attr, cn, email):
    d = start(cg, pki, upstream, "report")
    r = get(pki, d.port(), "/", cert=getattr(pki, attr))
    up = r.upstream()
    assert up.get("X-Client-Verify") == "SUCCESS"
    assert up.get("X-Client-Cert-CN") == cn
    acc = d.wait_access(1)[-1]
    assert acc["verify"] == "SUCCESS" and acc["reason"] is None, acc
    assert not acc.get("would_refuse"), acc
    assert acc["cn"] == cn


# -- off --------------------------------------------------------------------

@pytest.mark.parametrize("attr", [None, "alice", "expired", "other_signed"])
def test_off_ignores_certificates(cg, pki, upstream, attr):
    d = start(cg, pki, upstream, "off")
    r = get(pki, d.port(), "/", cert=cert_of(pki, attr))
    assert r.status == 200
    up = r.upstream()
    assert up.get("X-Client-Verify") == "NONE"
    assert_no_identity(up)


def test_mode_off_explicit(cg, pki, upstream):
    """"enabled": true with "mode": "off" behaves as disabled."""
    d = start(cg, pki, upstream, "required")
    cfg = d.cfg
    cfg["listeners"][0]["client_auth"] = {"enabled": True, "mode": "off",
                                          "trust": "staff"}
    d.reload(cfg)
    r = get(pki, d.port(), "/", cert=pki.alice)
    assert r.upstream().get("X-Client-Verify") == "NONE"


@pytest.mark.parametrize("mode,requested", [("off", False),
                                            ("optional", True),
                                            ("required", True),
                                            ("report", True)])
def test_certificate_request_sent(cg, pki, upstream, mode, requested):
    """openssl s_client -msg shows whether a CertificateRequest came."""
    d = start(cg, pki, upstream, mode)
    p = cgtest.s_client(pki, d.port(), cert=pki.alice, args=["-msg"],
                        stdin=b"")
    out = p.stdout.decode("latin-1")
    assert ("CertificateRequest" in out) == requested, out[-3000:]


# -- identity values --------------------------------------------------------

@pytest.mark.parametrize("attr,cn,email", ACCEPTED)
def test_identity_headers_exact(cg, pki, upstream, attr, cn, email):
    c = getattr(pki, attr)
    d = start(cg, pki, upstream, "required")
    r = get(pki, d.port(), "/id", cert=c)
    assert r.status == 200
    up = r.upstream()
    expected = {
        "X-Client-Verify": "SUCCESS",
        "X-Client-Cert-Subject": c.subject_dn,
        "X-Client-Cert-Issuer": c.issuer_dn,
        "X-Client-Cert-Serial": c.serial_hex,
        "X-Client-Cert-Fingerprint-SHA256": c.sha256,
        "X-Client-Cert-CN": cn,
        "X-Client-Cert-Email": email,
        "X-Client-Cert-Not-After": c.not_after,
        "Client-Cert": c.client_cert_header,
    }
    got = {k: up.get(k) for k in expected}
    assert got == expected
    acc = d.wait_access(1)[-1]
    assert acc["verify"] == "SUCCESS"
    assert acc["cn"] == cn
    assert acc["sha256"] == c.sha256
    assert acc["serial"] == c.serial_hex


def test_identity_values_match_openssl(pki):
    """The expected values computed in Python agree with openssl x509."""
    for c in (pki.alice, pki.carol, pki.special):
        out = subprocess.run(
            ["openssl", "x509", "-in", c.cert, "-noout", "-serial",
             "-fingerprint", "-sha256", "-subject", "-issuer", "-nameopt",
             "RFC2253"], capture_output=True, text=True, check=True).stdout
        lines = dict(l.split("=", 1) for l in out.splitlines())
        assert lines["serial"] == c.serial_hex
        fp = [v for k, v in lines.items() if "Fingerprint" in k][0]
        assert fp.replace(":", "").lower() == c.sha256
        assert lines["subject"] == c.subject_dn
        assert lines["issuer"] == c.issuer_dn


# -- verify depth -----------------------------------------------------------

def test_chain_too_long(cg, pki, upstream):
    d = start(cg, pki, upstream, "optional", verify_depth=1)
    r = get(pki, d.port(), "/", cert=pki.dave)
    up = r.upstream()
    assert up.get("X-Client-Verify") == "FAILED:chain_too_long"
    assert_no_identity(up)
    r = get(pki, d.port(), "/", cert=pki.alice)
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"


def test_deep_chain_default_depth(cg, pki, upstream):
    d = start(cg, pki, upstream, "required")
    r = get(pki, d.port(), "/", cert=pki.dave)
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"
    assert r.upstream().get("X-Client-Cert-Issuer") == pki.dave.issuer_dn


def test_other_trust_set(cg, pki, upstream):
    """A listener trusting "other" accepts other-signed, refuses alice."""
    d = start(cg, pki, upstream, "optional", trust="other")
    r = get(pki, d.port(), "/", cert=pki.other_signed)
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"
    r = get(pki, d.port(), "/", cert=pki.alice)
    assert r.upstream().get("X-Client-Verify") == "FAILED:untrusted"


def test_crlf_in_san_email_refused(cg, pki, upstream):
    d = start(cg, pki, upstream, "optional")
    r = get(pki, d.port(), "/", cert=pki.crlf_email)
    up = r.upstream()
    assert up.get("X-Client-Verify") == "FAILED:bad_name"
    assert_no_identity(up)
    assert "x-evil" not in up.names()


def test_unicode_cn_accepted(cg, pki, upstream):
    """UTF-8 in the subject: accepted; the DN header escapes nothing but
    RFC 4514 specials, the value reaches the upstream intact or escaped,
    never as raw control bytes."""
    d = start(cg, pki, upstream, "optional")
    r = get(pki, d.port(), "/", cert=pki.unicode_cn)
    up = r.upstream()
    assert up.get("X-Client-Verify") == "SUCCESS"
    for k, v in up.headers:
        assert "\r" not in v and "\n" not in v and "\x00" not in v
    acc = d.wait_access(1)[-1]
    assert acc["cn"] == "Zo\u00eb"
