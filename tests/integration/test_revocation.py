"""Revocation (issue 4): CRLs of a trust set and the built-in CA's own
revocations, checked by the one verification function on every full
handshake.

CRLs are made here with python3-cryptography's
CertificateRevocationListBuilder, signed by the session PKI's CAs. Every
test writes its own CRL files, so the shared PKI stays unrevoked for the
other suites.
"""

import datetime
import json
import os
import re
import types

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

import cgtest
from cgtest import client_auth, config, get, listener, refused, route, \
    run_cli


# -- helpers -----------------------------------------------------------------

def make_crl(path, issuer, revoked=(), last=-3600, nxt=86400, key=None,
             der=False):
    """Writes a CRL of issuer (a cgtest.Cert) listing the certificates in
    revoked; last/nxt: thisUpdate/nextUpdate in seconds from now; key:
    signing key (default issuer's)."""
    now = datetime.datetime.utcnow().replace(microsecond=0)
    b = (x509.CertificateRevocationListBuilder()
         .issuer_name(issuer.x509.subject)
         .last_update(now + datetime.timedelta(seconds=last))
         .next_update(now + datetime.timedelta(seconds=nxt))
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             issuer.key_obj.public_key()), critical=False)
         .add_extension(x509.CRLNumber(1), critical=False))
    for c in revoked:
        b = b.add_revoked_certificate(
            x509.RevokedCertificateBuilder()
            .serial_number(c.x509.serial_number)
            .revocation_date(now - datetime.timedelta(minutes=5))
            .build())
    crl = b.sign(key or issuer.key_obj, hashes.SHA256())
    enc = serialization.Encoding.DER if der else serialization.Encoding.PEM
    tmp = str(path) + ".tmp"
    with open(tmp, "wb") as f:
        f.write(crl.public_bytes(enc))
    os.replace(tmp, str(path))
    return str(path)


def cfg_with(pki, upstream, crl_files, mode="required", **trust_extra):
    t = {"ca_files": [pki.root.cert],
         "crl_files": [str(p) for p in crl_files]}
    t.update(trust_extra)
    c = config(pki, [listener("web", pki, [route(upstream)], mode=mode)])
    c["trust"]["staff"] = t
    return c


def verify_header(pki, d, cert):
    r = get(pki, d.port(), "/v", cert=cert)
    assert r.status == 200, r
    return r.upstream().get("X-Client-Verify")


def assert_refused(pki, d, cert, reason):
    how = refused(pki, d.port(), cert, path="/refused")
    assert how is not None, "revoked certificate got an HTTP answer"
    assert "alert" in how.lower(), how
    d.wait_log(lambda rec: rec.get("event") == "handshake_failed" and
               rec.get("reason") == reason and
               rec.get("serial") == cert.serial_hex,
               what="handshake_failed %s for %s" % (reason, cert.name))


def write_json(tmp_path, name, cfg):
    p = tmp_path / name
    p.write_text(json.dumps(cfg))
    return str(p)


# -- CRLs: refusals at handshake -------------------------------------------

def test_revoked_leaf_required(cg, pki, upstream, tmp_path):
    crl = make_crl(tmp_path / "root.crl", pki.root, [pki.alice])
    d = cg.start(cfg_with(pki, upstream, [crl]))
    assert_refused(pki, d, pki.alice, "revoked")
    assert "/refused" not in upstream.paths()
    # a non-revoked certificate of the same CA
    r = get(pki, d.port(), "/ok", cert=pki.bob)
    assert r.status == 200
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"
    rc, code, _, _ = cgtest.curl(pki, d.port(), "/refused", cert=pki.alice)
    assert rc != 0 and code == "000", (rc, code)


def test_revoked_leaf_optional(cg, pki, upstream, tmp_path):
    crl = make_crl(tmp_path / "root.der", pki.root, [pki.alice], der=True)
    d = cg.start(cfg_with(pki, upstream, [crl], mode="optional"))
    r = get(pki, d.port(), "/opt", cert=pki.alice)
    assert r.status == 200
    up = r.upstream()
    assert up.get("X-Client-Verify") == "FAILED:revoked"
    for h in cgtest.IDENTITY_HEADERS:
        assert up.all(h) == [], h
    assert verify_header(pki, d, pki.bob) == "SUCCESS"
    assert verify_header(pki, d, pki.carol) == "SUCCESS"


def test_revoked_intermediate(cg, pki, upstream, tmp_path):
    """The root's CRL lists the intermediate: carol (under it) is refused,
    alice (directly under the root) is not."""
    crl = make_crl(tmp_path / "root.crl", pki.root, [pki.inter])
    d = cg.start(cfg_with(pki, upstream, [crl], mode="optional"))
    assert verify_header(pki, d, pki.carol) == "FAILED:revoked"
    assert verify_header(pki, d, pki.alice) == "SUCCESS"
    d.reload(cfg_with(pki, upstream, [crl], mode="required"))
    assert_refused(pki, d, pki.carol, "revoked")


def test_crl_directory(cg, pki, upstream, tmp_path):
    crls = tmp_path / "crls"
    crls.mkdir()
    make_crl(crls / "root.pem", pki.root, [pki.bob])
    (crls / "README.txt").write_text("ignored\n")
    d = cg.start(cfg_with(pki, upstream, [str(crls)], mode="optional"))
    assert verify_header(pki, d, pki.bob) == "FAILED:revoked"
    assert verify_header(pki, d, pki.alice) == "SUCCESS"


# -- CRLs refused at load --------------------------------------------------

def test_crl_of_other_ca_refused_by_check(pki, upstream, tmp_path, binary):
    crl = make_crl(tmp_path / "other.crl", pki.other_ca, [pki.other_signed])
    path = write_json(tmp_path, "c.json", cfg_with(pki, upstream, [crl]))
    r = run_cli(["check", "-c", path])
    assert r.returncode == 2, r
    want = ('trust.staff.crl_files[0]: %s: issuer "CN=Other CA,O=elsewhere" '
            'is not a CA certificate of trust set "staff"' % crl)
    assert want in r.stderr, r.stderr


@pytest.mark.parametrize("kind,why", [
    ("wrong_key", "signed by another key"),
    ("malformed", "malformed CRL"),
    ("future", "is in the future"),
])
def test_bad_crl_refused_by_check(pki, upstream, tmp_path, binary, kind, why):
    path = tmp_path / "bad.crl"
    if kind == "wrong_key":  # the root's name, the fake root's key
        make_crl(path, pki.root, [pki.alice], key=pki.fake_root.key_obj)
    elif kind == "malformed":
        make_crl(path, pki.root, [pki.alice], der=True)
        path.write_bytes(path.read_bytes()[:-10])
    else:
        make_crl(path, pki.root, [pki.alice], last=3600, nxt=7200)
    cfgp = write_json(tmp_path, "c.json", cfg_with(pki, upstream, [path]))
    r = run_cli(["check", "-c", cfgp])
    assert r.returncode == 2, r
    line = [l for l in r.stderr.splitlines()
            if l.startswith("trust.staff.crl_files[0]: %s: " % path)]
    assert line and why in line[0], r.stderr


def test_bad_crl_on_reload_keeps_old_index(cg, pki, upstream, tmp_path):
    crl = tmp_path / "root.crl"
    make_crl(crl, pki.root, [pki.alice])
    d = cg.start(cfg_with(pki, upstream, [str(crl)], mode="optional"))
    assert verify_header(pki, d, pki.alice) == "FAILED:revoked"
    other = make_crl(tmp_path / "other.crl", pki.other_ca)
    rec = d.reload(cfg_with(pki, upstream, [other], mode="optional"),
                   expect_ok=False)
    assert rec.get("event") == "reload_failed", rec
    assert any(e.startswith("trust.staff.crl_files[0]: %s: issuer " % other)
               for e in rec.get("errors", [])), rec
    assert verify_header(pki, d, pki.alice) == "FAILED:revoked"
    assert verify_header(pki, d, pki.bob) == "SUCCESS"


# -- stale CRLs ----------------------------------------------------------------

@pytest.mark.parametrize("policy,expect,level", [
    ("reject", "FAILED:stale_crl", "error"),
    ("grace:2h", "SUCCESS", "warn"),
    ("grace:30m", "FAILED:stale_crl", "error"),
])
def test_stale_crl(cg, pki, upstream, tmp_path, policy, expect, level):
    """nextUpdate an hour ago; alice is listed, bob is not."""
    crl = make_crl(tmp_path / "stale.crl", pki.root, [pki.alice],
                   last=-3 * 3600, nxt=-3600)
    d = cg.start(cfg_with(pki, upstream, [crl], mode="optional",
                          on_stale_crl=policy))
    d.wait_log(lambda rec: rec.get("level") == level and
               "stale.crl" in rec.get("msg", "") and
               "nextUpdate" in rec.get("msg", ""),
               what="%s log of the stale CRL" % level)
    assert verify_header(pki, d, pki.bob) == expect
    assert verify_header(pki, d, pki.alice) == "FAILED:revoked"


def test_stale_crl_required_refuses(cg, pki, upstream, tmp_path):
    crl = make_crl(tmp_path / "stale.crl", pki.root, [], last=-7200,
                   nxt=-60)
    d = cg.start(cfg_with(pki, upstream, [crl]))
    assert_refused(pki, d, pki.bob, "stale_crl")


# -- reload ------------------------------------------------------------------

def test_reload_with_new_crl(cg, pki, upstream, tmp_path):
    crl = tmp_path / "root.crl"
    make_crl(crl, pki.root, [])
    d = cg.start(cfg_with(pki, upstream, [str(crl)]))
    r = get(pki, d.port(), "/before", cert=pki.alice)
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"
    make_crl(crl, pki.root, [pki.alice])  # same path, new content
    d.reload()
    assert_refused(pki, d, pki.alice, "revoked")
    assert get(pki, d.port(), "/bob", cert=pki.bob).status == 200
    make_crl(crl, pki.root, [])  # and back
    d.reload(via="cli")
    assert get(pki, d.port(), "/again", cert=pki.alice).status == 200


# -- certgate verify -----------------------------------------------------------

def test_verify_shows_revoked(pki, upstream, tmp_path, binary):
    crl = make_crl(tmp_path / "root.crl", pki.root, [pki.alice, pki.inter])
    path = write_json(tmp_path, "c.json", cfg_with(pki, upstream, [crl]))
    r = run_cli(["verify", "-c", path, "--listener", "web", "--json",
                 pki.alice.cert])
    assert r.returncode == 1, r
    out = json.loads(r.stdout)
    assert (out["verdict"], out["reason"]) == ("refused", "revoked")
    assert out["identity"]["serial"] == pki.alice.serial_hex
    r = run_cli(["verify", "-c", path, "--listener", "web", pki.carol.chain])
    assert r.returncode == 1 and re.search(r"^reason\s+revoked$", r.stdout,
                                           re.M), r.stdout
    r = run_cli(["verify", "-c", path, "--listener", "web", pki.bob.cert])
    assert r.returncode == 0, r


# -- the built-in CA -----------------------------------------------------------

def ca(*args):
    r = run_cli(["ca"] + [str(a) for a in args])
    assert r.returncode == 0, "certgate ca %r: %s" % (args, r.stderr)
    return r.stdout


def issued(out_dir, cn):
    pem = os.path.join(str(out_dir), cn + ".pem")
    return types.SimpleNamespace(
        name=cn, cert=pem, chain=pem, key=os.path.join(str(out_dir),
                                                       cn + ".key"))


def test_builtin_ca(cg, pki, upstream, tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    c = config(pki, [listener("web", pki, [route(upstream)],
                              mode="optional", trust="devices")],
               data_dir=str(data))
    c["trust"]["devices"] = {"builtin_ca": True}
    # no CA yet: the configuration is refused
    cfgp = write_json(tmp_path, "c.json", c)
    r = run_cli(["check", "-c", cfgp])
    assert r.returncode == 2
    assert ("trust.devices.builtin_ca: no CA in %s: run certgate ca init"
            % data) in r.stderr, r.stderr
    ca("init", "--name", "Devices", "--data", data)
    serials = {}
    for cn in ("dev1", "dev2"):
        text = ca("issue", "client", "--cn", cn, "--data", data,
                  "--out-dir", out)
        serials[cn] = re.search(r"^serial: (\S+)$", text, re.M).group(1)
    d = cg.start(c)
    dev1, dev2 = issued(out, "dev1"), issued(out, "dev2")
    assert verify_header(pki, d, dev1) == "SUCCESS"
    ca("revoke", serials["dev1"], "--data", data)
    d.reload()
    assert verify_header(pki, d, dev1) == "FAILED:revoked"
    assert verify_header(pki, d, dev2) == "SUCCESS"
    # alice's CA is not in the set
    assert verify_header(pki, d, pki.alice) == "FAILED:untrusted"
