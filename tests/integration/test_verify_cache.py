"""The verified-chain cache and the session cache (src/tls/chaincache.c,
src/tls/sessions.c) never let a certificate through that a full
verification would refuse now.

Each test first makes the gateway accept the certificate several times
over new connections (one worker, so later handshakes hit the cache it
filled), then changes what matters: the CA set (reload), the revocation
list (reload with a CRL), the clock (a certificate that expires seconds
after it was cached); the next handshake must be refused with the reason
a fresh verification gives, and a kept session must not resume.
"""

import copy
import datetime
import ssl

import cgtest
from cgtest import config, connect, listener, route
from test_revocation import make_crl


def start(cg, pki, upstream, mode="optional", **trust):
    cfg = config(pki, [listener("web", pki, [route(upstream)], mode=mode)],
                 workers=1)
    cfg["trust"]["staff"].update(trust)
    return cg.start(cfg)


_ctxs = {}


def verdict(pki, d, cert, session=None, version=None):
    """X-Client-Verify of one request on a new connection; the session
    the connection ended with; whether it resumed. One client context per
    certificate and version (a session belongs to its context)."""
    key = (cert.name, version)
    if key not in _ctxs:
        _ctxs[key] = cgtest.client_ctx(pki, cert, max_version=version)
    ctx = _ctxs[key]
    with connect(pki, d.port(), ctx=ctx, session=session) as c:
        r = c.request("GET", "/v")
        return (r.upstream().get("X-Client-Verify"), c.session,
                c.session_reused)


def warm(pki, d, cert, n=4):
    for _ in range(n):
        assert verdict(pki, d, cert)[0] == "SUCCESS"


def test_ca_switched_by_reload_refuses_cached_chain(cg, pki, upstream):
    d = start(cg, pki, upstream)
    warm(pki, d, pki.alice)
    warm(pki, d, pki.carol)  # via the intermediate
    _, sess, _ = verdict(pki, d, pki.alice,
                         version=ssl.TLSVersion.TLSv1_2)
    cfg = copy.deepcopy(d.cfg)
    cfg["trust"]["staff"]["ca_files"] = [pki.other_ca.cert]
    d.reload(cfg)
    assert verdict(pki, d, pki.alice)[0] == "FAILED:untrusted"
    assert verdict(pki, d, pki.carol)[0] == "FAILED:untrusted"
    v, _, reused = verdict(pki, d, pki.alice, session=sess,
                           version=ssl.TLSVersion.TLSv1_2)
    assert not reused and v == "FAILED:untrusted"
    # and back: accepted again (verified afresh under the new set)
    cfg["trust"]["staff"]["ca_files"] = [pki.root.cert]
    d.reload(cfg)
    assert verdict(pki, d, pki.alice)[0] == "SUCCESS"


def test_required_mode_refuses_after_ca_switch(cg, pki, upstream):
    d = start(cg, pki, upstream, mode="required")
    warm(pki, d, pki.alice)
    cfg = copy.deepcopy(d.cfg)
    cfg["trust"]["staff"]["ca_files"] = [pki.other_ca.cert]
    d.reload(cfg)
    assert cgtest.refused(pki, d.port(), pki.alice) is not None


def test_revoked_by_crl_after_cached(cg, pki, upstream, tmp_path):
    crl = make_crl(tmp_path / "root.crl", pki.root, revoked=[])
    d = start(cg, pki, upstream, crl_files=[crl])
    warm(pki, d, pki.alice)
    warm(pki, d, pki.bob)
    _, sess13, _ = verdict(pki, d, pki.alice)
    _, sess12, _ = verdict(pki, d, pki.alice,
                           version=ssl.TLSVersion.TLSv1_2)
    make_crl(tmp_path / "root.crl", pki.root, revoked=[pki.alice])
    d.reload()
    assert verdict(pki, d, pki.alice)[0] == "FAILED:revoked"
    assert verdict(pki, d, pki.bob)[0] == "SUCCESS"
    for sess, version in ((sess13, None), (sess12, ssl.TLSVersion.TLSv1_2)):
        v, _, reused = verdict(pki, d, pki.alice, session=sess,
                               version=version)
        assert not reused and v == "FAILED:revoked"


def refused_once_expired(pki, d, cert):
    """cert's chain, cached and resumable, is refused as expired by a
    full handshake and on resumption (TLS 1.3 and 1.2) once a certificate
    of it expires (within 10 s)."""
    warm(pki, d, cert, n=3)
    _, sess13, _ = verdict(pki, d, cert)
    _, sess12, _ = verdict(pki, d, cert, version=ssl.TLSVersion.TLSv1_2)
    v, sess13, reused = verdict(pki, d, cert, session=sess13)
    assert reused and v == "SUCCESS"
    cgtest.wait_for(
        lambda: verdict(pki, d, cert)[0] == "FAILED:expired",
        seconds=10, interval=0.25, what="FAILED:expired once past notAfter")
    for sess, version in ((sess13, None), (sess12, ssl.TLSVersion.TLSv1_2)):
        v, _, reused = verdict(pki, d, cert, session=sess, version=version)
        assert not reused and v == "FAILED:expired"


def test_expiry_checked_at_each_handshake(cg, pki, upstream):
    """A certificate that expires a few seconds after it was cached is
    refused as expired, by a full handshake and on resumption."""
    now = datetime.datetime.utcnow().replace(microsecond=0)
    short = pki._client("short-lived", "short-lived",
                        not_before=now - datetime.timedelta(minutes=1),
                        not_after=now + datetime.timedelta(seconds=4))
    refused_once_expired(pki, start(cg, pki, upstream), short)
    assert short.x509.not_valid_after < datetime.datetime.utcnow()


def test_issuer_expiry_checked_at_each_handshake(cg, pki, upstream):
    """An intermediate CA that expires a few seconds after its chain was
    cached, under a leaf still valid for days: the chain is refused as
    expired, by a full handshake and on resumption."""
    now = datetime.datetime.utcnow().replace(microsecond=0)
    inter = pki._ca("short-inter", cgtest._name(
        (cgtest.NameOID.COMMON_NAME, "Short-lived Intermediate")),
        issuer=pki.root, pathlen=0,
        not_after=now + datetime.timedelta(seconds=4))
    leaf = pki._client("under-short-inter", "under-short-inter",
                       issuer=inter)
    refused_once_expired(pki, start(cg, pki, upstream), leaf)
    assert inter.x509.not_valid_after < datetime.datetime.utcnow()
    assert leaf.x509.not_valid_after > datetime.datetime.utcnow()


def test_tampered_copy_of_cached_cert_refused(cg, pki, upstream, tmp_path):
    """alice's own certificate with one signature bit flipped, presented
    with alice's key after alice's chain was cached: other bytes, never a
    hit, refused."""
    d = start(cg, pki, upstream)
    warm(pki, d, pki.alice)
    der = bytearray(pki.alice.der)
    der[-3] ^= 0x01
    forged = tmp_path / "alice-forged.pem"
    forged.write_bytes(ssl.DER_cert_to_PEM_cert(bytes(der)).encode())
    ctx = cgtest.client_ctx(pki)
    ctx.load_cert_chain(str(forged), pki.alice.key)
    for _ in range(3):
        with connect(pki, d.port(), ctx=ctx) as c:
            r = c.request("GET", "/forged")
            assert r.upstream().get("X-Client-Verify") == \
                "FAILED:bad_signature"
    assert verdict(pki, d, pki.alice)[0] == "SUCCESS"
