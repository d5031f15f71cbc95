"""Interoperability tests of `certgate ca`.

Certificates, CRLs and PKCS#12 files made by certgate are checked with
the tools people use: `openssl verify` / `crl` / `pkcs12`, NSS's
`pk12util` (what Chromium and Firefox import with) and
python3-cryptography. Self-contained: every test makes its own CA in a
temporary directory.
"""

import base64
import json
import os
import re
import stat
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

BIN = os.environ.get("CERTGATE_BIN", "/work/main/build/certgate")


def cg(*args, cwd=None, ok=True, stdin=None):
    """Runs certgate; with ok=True asserts exit 0. Returns the result."""
    r = subprocess.run([BIN, *map(str, args)], cwd=cwd, input=stdin,
                       capture_output=True, text=True, timeout=120)
    # under CG_SANITIZE, a refused command must be as clean as a good one
    assert "Sanitizer" not in r.stderr, r.stderr
    if ok and r.returncode != 0:
        sys.stderr.write(r.stdout + r.stderr)
        raise AssertionError(f"certgate {args} exited {r.returncode}: "
                             f"{r.stderr.strip()}")
    return r


def tool(*args, ok=True):
    r = subprocess.run([*map(str, args)], capture_output=True, text=True,
                       timeout=120)
    if ok and r.returncode != 0:
        raise AssertionError(f"{args} exited {r.returncode}:\n"
                             f"{r.stdout}{r.stderr}")
    return r


def field(out, name):
    """The value of a 'name: value' line of certgate's output."""
    m = re.search(rf"^{re.escape(name)}: (.*)$", out, re.M)
    assert m, f"no {name!r} in:\n{out}"
    return m.group(1)


def load(path):
    with open(path, "rb") as f:
        return x509.load_pem_x509_certificate(f.read())


def load_all(data):
    """Every certificate of a PEM bundle, in order."""
    end = b"-----END CERTIFICATE-----"
    return [x509.load_pem_x509_certificate(part + end)
            for part in data.split(end) if b"BEGIN" in part]


def ext(cert, cls):
    return cert.extensions.get_extension_for_class(cls)


def listing(data, *args):
    return json.loads(cg("ca", "list", "--data", data, "--json",
                         *args).stdout)


class CA:
    """A CA made by `certgate ca init` in its own directory."""

    def __init__(self, base, intermediate=False, extra=()):
        self.base = base
        self.data = base / "data"
        self.out = base / "out"
        self.out.mkdir()
        args = ["ca", "init", "--name", "Test CA", "--data", self.data,
                *extra]
        if intermediate:
            args.append("--intermediate")
        self.init_out = cg(*args).stdout
        self.root = self.data / "ca" / "root.pem"
        self.intermediate = intermediate

    def issue(self, kind, *args, ok=True):
        r = cg("ca", "issue", kind, "--data", self.data, "--out-dir",
               self.out, *args, ok=ok)
        return r

    def verify(self, name, purpose, crl=None):
        args = ["openssl", "verify", "-CAfile", self.root, "-purpose",
                purpose]
        if self.intermediate:
            args += ["-untrusted", self.out / f"{name}-chain.pem"]
        if crl is not None:
            args += ["-crl_check", "-CRLfile", crl]
        return tool(*args, self.out / f"{name}.pem", ok=False)


@pytest.fixture
def root_ca(tmp_path):
    return CA(tmp_path)


@pytest.fixture
def inter_ca(tmp_path):
    return CA(tmp_path, intermediate=True)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# --- ca init -----------------------------------------------------------


def test_init_root(root_ca):
    ca = root_ca
    assert mode(ca.data / "ca" / "root.key") == 0o600
    assert not (ca.data / "ca" / "issuer.pem").exists()
    root = load(ca.root)
    bc = ext(root, x509.BasicConstraints)
    assert bc.critical and bc.value.ca
    ku = ext(root, x509.KeyUsage)
    assert ku.critical and ku.value.key_cert_sign and ku.value.crl_sign
    assert not ku.value.digital_signature
    ext(root, x509.SubjectKeyIdentifier)
    assert root.subject == root.issuer
    assert b"BEGIN PRIVATE KEY" in (ca.data / "ca" / "root.key").read_bytes()
    # a second init is refused and changes nothing
    before = (ca.data / "ca" / "root.pem").read_bytes()
    r = cg("ca", "init", "--name", "Other", "--data", ca.data, ok=False)
    assert r.returncode == 1 and "already exists" in r.stderr
    assert (ca.data / "ca" / "root.pem").read_bytes() == before


def test_init_intermediate(inter_ca):
    ca = inter_ca
    assert "offline" in ca.init_out
    for name in ("root.key", "issuer.key"):
        assert mode(ca.data / "ca" / name) == 0o600
    issuer = load(ca.data / "ca" / "issuer.pem")
    root = load(ca.root)
    assert issuer.issuer == root.subject
    bc = ext(issuer, x509.BasicConstraints)
    assert bc.critical and bc.value.ca and bc.value.path_length == 0
    aki = ext(issuer, x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == \
        ext(root, x509.SubjectKeyIdentifier).value.digest
    tool("openssl", "verify", "-CAfile", ca.root, ca.data / "ca" /
         "issuer.pem")


def test_init_encrypted_key(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("correct horse\nsecond line ignored\n")
    ca = CA(tmp_path, extra=["--passphrase-file", pw, "--key", "ec-p384"])
    key = (ca.data / "ca" / "root.key").read_bytes()
    assert b"BEGIN ENCRYPTED PRIVATE KEY" in key
    serialization.load_pem_private_key(key, b"correct horse")
    r = ca.issue("client", "--cn", "a", ok=False)
    assert r.returncode == 1 and "--ca-passphrase-file" in r.stderr
    assert not (ca.out / "a.pem").exists()
    ca.issue("client", "--cn", "a", "--ca-passphrase-file", pw)
    assert ca.verify("a", "sslclient").returncode == 0
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    r = cg("ca", "crl", "--data", ca.data, "--ca-passphrase-file", wrong,
           ok=False)
    assert r.returncode == 1


@pytest.mark.parametrize("key", ["ec-p256", "ec-p384", "rsa-2048",
                                 "ed25519"])
def test_key_types(tmp_path, key):
    ca = CA(tmp_path, extra=["--key", key])
    ca.issue("server", "--dns", "k.example", "--key", key)
    assert ca.verify("k.example", "sslserver").returncode == 0


def test_unknown_key_type(tmp_path):
    r = cg("ca", "init", "--name", "X", "--key", "dsa-1024", "--data",
           tmp_path / "d", ok=False)
    assert r.returncode == 2 and "unknown key type" in r.stderr
    assert not (tmp_path / "d").exists()
    ca = CA(tmp_path)
    r = ca.issue("client", "--cn", "x", "--key", "rsa-1024", ok=False)
    assert r.returncode == 2 and "unknown key type" in r.stderr


def test_missing_ca(tmp_path):
    data = tmp_path / "none"
    for args in (["list"], ["issue", "client", "--cn", "x"], ["crl"],
                 ["export"], ["revoke", "01"]):
        r = cg("ca", *args, "--data", data, ok=False, cwd=tmp_path)
        assert r.returncode == 1, args
        assert f"no CA in {data}: run certgate ca init first" in r.stderr
    assert not data.exists()
    assert not (tmp_path / "x.pem").exists()


def test_config_data_dir(tmp_path):
    conf = tmp_path / "certgate.json"
    conf.write_text(json.dumps({"data_dir": str(tmp_path / "fromcfg")}))
    cg("ca", "init", "--name", "Cfg", "-c", conf)
    assert (tmp_path / "fromcfg" / "ca" / "root.pem").exists()
    assert listing(str(tmp_path / "fromcfg")) == []


def test_help():
    for sub in ("init", "issue", "revoke", "crl", "list", "show", "export"):
        r = cg("ca", sub, "--help")
        assert r.stdout.startswith("usage: certgate ca " + sub), sub
    assert cg("ca", "--help").stdout.startswith("usage: certgate ca")
    assert cg("ca", "frobnicate", ok=False).returncode == 2


# --- ca issue ----------------------------------------------------------


def test_issue_client(root_ca):
    ca = root_ca
    r = ca.issue("client", "--cn", "alice", "--email", "alice@example.com",
                 "--san-uri", "urn:dev:1", "--device", "laptop")
    serial = field(r.stdout, "serial")
    assert re.fullmatch(r"[0-9A-F]{32}", serial)
    assert mode(ca.out / "alice.key") == 0o600
    assert not (ca.out / "alice-chain.pem").exists()  # root signs directly
    assert ca.verify("alice", "sslclient").returncode == 0
    assert ca.verify("alice", "sslserver").returncode != 0
    cert = load(ca.out / "alice.pem")
    assert format(cert.serial_number, "032X") == serial
    assert cert.serial_number > 0 and cert.serial_number.bit_length() <= 127
    assert cert.subject.rfc4514_string() == "CN=alice"
    bc = ext(cert, x509.BasicConstraints)
    assert bc.critical and not bc.value.ca
    ku = ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature
    assert not ku.value.key_encipherment and not ku.value.key_cert_sign
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["alice@example.com"]
    assert san.get_values_for_type(
        x509.UniformResourceIdentifier) == ["urn:dev:1"]
    ext(cert, x509.SubjectKeyIdentifier)
    ext(cert, x509.AuthorityKeyIdentifier)
    rows = listing(ca.data)
    assert [(x["serial"], x["status"], x["device"]) for x in rows] == \
        [(serial, "valid", "laptop")]


def test_issue_server(root_ca):
    ca = root_ca
    ca.issue("server", "--dns", "www.example.com", "--dns", "example.com",
             "--ip", "127.0.0.1", "--ip", "::1", "--key", "rsa-2048")
    name = "www.example.com"
    assert ca.verify(name, "sslserver").returncode == 0
    assert ca.verify(name, "sslclient").returncode != 0
    cert = load(ca.out / f"{name}.pem")
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ext(cert, x509.KeyUsage).value.key_encipherment  # RSA
    san = ext(cert, x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["www.example.com",
                                                     "example.com"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == \
        ["127.0.0.1", "::1"]
    days = (cert.not_valid_after - cert.not_valid_before).days
    assert days == 825  # server default (+5 minutes backdating)
    tool("openssl", "verify", "-CAfile", ca.root, "-purpose", "sslserver",
         "-verify_hostname", "example.com", ca.out / f"{name}.pem")
    tool("openssl", "verify", "-CAfile", ca.root, "-purpose", "sslserver",
         "-verify_ip", "127.0.0.1", ca.out / f"{name}.pem")


def test_issue_usage_errors(root_ca):
    ca = root_ca
    for args in (["server"], ["client"], ["client", "--cn", "a", "--ip",
                                            "300.1.1.1"],
                 ["client", "--cn", "a", "--email", "not-an-email"],
                 ["client", "--cn", "a", "--days", "0"],
                 ["client", "--cn", "a", "--bogus"], ["laptop"]):
        r = cg("ca", "issue", *args, "--data", ca.data, ok=False)
        assert r.returncode == 2, (args, r.stderr)
        assert r.stderr.startswith("certgate: "), args
        assert r.stderr.count("\n") == 1, r.stderr
    assert listing(ca.data) == []


def test_issue_intermediate_chain(inter_ca):
    ca = inter_ca
    ca.issue("client", "--cn", "bob", "--days", "30")
    chain = (ca.out / "bob-chain.pem").read_bytes()
    certs = load_all(chain)
    assert [c.subject for c in certs] == \
        [load(ca.data / "ca" / "issuer.pem").subject]  # root excluded
    assert ca.verify("bob", "sslclient").returncode == 0
    # without the chain the leaf does not verify against the root alone
    r = tool("openssl", "verify", "-CAfile", ca.root, ca.out / "bob.pem",
             ok=False)
    assert r.returncode != 0
    cert = load(ca.out / "bob.pem")
    assert (cert.not_valid_after - cert.not_valid_before).days == 30


def test_issue_user_email(root_ca):
    ca = root_ca
    r = ca.issue("client", "--cn", "x", "--user", "ghost", ok=False)
    assert r.returncode == 1 and "ghost" in r.stderr
    assert listing(ca.data) == []
    r = cg("user", "add", "carol", "--email", "carol@example.com", "--data",
           ca.data, ok=False)
    if r.returncode != 0:
        pytest.skip(f"certgate user add unavailable: {r.stderr.strip()}")
    ca.issue("client", "--cn", "carol-phone", "--user", "carol")
    san = ext(load(ca.out / "carol-phone.pem"),
              x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["carol@example.com"]
    ca.issue("client", "--cn", "carol-2", "--user", "carol", "--email",
             "other@example.com")
    san = ext(load(ca.out / "carol-2.pem"),
              x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.RFC822Name) == ["other@example.com"]
    rows = listing(ca.data, "--user", "carol")
    assert len(rows) == 2 and all(x["owner"] == "carol" for x in rows)


# --- CSRs --------------------------------------------------------------


def openssl_csr(tmp_path, name, *addext):
    key, csr = tmp_path / f"{name}.csrkey", tmp_path / f"{name}.csr"
    args = ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-subj",
            f"/CN={name}/O=Requested"]
    for a in addext:
        args += ["-addext", a]
    tool(*args, "-out", csr)
    return csr


def test_csr_signing(root_ca, tmp_path):
    ca = root_ca
    csr = openssl_csr(tmp_path, "dev1", "subjectAltName=DNS:evil.example",
                      "extendedKeyUsage=serverAuth,codeSigning",
                      "keyUsage=keyCertSign")
    r = ca.issue("client", "--cn", "dev1", "--csr", csr)
    assert "private key" not in r.stdout
    assert not (ca.out / "dev1.key").exists()
    assert ca.verify("dev1", "sslclient").returncode == 0
    cert = load(ca.out / "dev1.pem")
    req = x509.load_pem_x509_csr(csr.read_bytes())
    assert cert.public_key().public_numbers() == \
        req.public_key().public_numbers()
    # nothing requested is copied: subject, SAN, EKU, keyUsage are certgate's
    assert cert.subject.rfc4514_string() == "CN=dev1"
    with pytest.raises(x509.ExtensionNotFound):
        ext(cert, x509.SubjectAlternativeName)
    assert list(ext(cert, x509.ExtendedKeyUsage).value) == \
        [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not ext(cert, x509.KeyUsage).value.key_cert_sign


def test_csr_ca_true_refused(root_ca, tmp_path):
    ca = root_ca
    ca.issue("client", "--cn", "before")
    csr = openssl_csr(tmp_path, "evil", "basicConstraints=critical,CA:TRUE")
    r = ca.issue("client", "--cn", "evil", "--csr", csr, ok=False)
    assert r.returncode in (1, 2)
    assert "CA:TRUE" in r.stderr and r.stderr.count("\n") == 1
    assert len(listing(ca.data)) == 1
    assert sorted(os.listdir(ca.out)) == ["before.key", "before.pem"]


def test_csr_bad_signature_refused(root_ca, tmp_path):
    ca = root_ca
    key = ec.generate_private_key(ec.SECP256R1())
    req = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                       "bad")]))
           .sign(key, hashes.SHA256()))
    der = bytearray(req.public_bytes(serialization.Encoding.DER))
    # the signature BIT STRING ends the DER: corrupt one of its bytes
    # (an ECDSA INTEGER's last byte, keeping the encoding well-formed)
    der[-1] ^= 0x01
    pem = b"-----BEGIN CERTIFICATE REQUEST-----\n"
    pem += base64.encodebytes(bytes(der))
    pem += b"-----END CERTIFICATE REQUEST-----\n"
    bad = tmp_path / "bad.csr"
    bad.write_bytes(pem)
    r = ca.issue("client", "--cn", "bad", "--csr", bad, ok=False)
    assert r.returncode == 1 and "signature" in r.stderr
    garbage = tmp_path / "garbage.csr"
    garbage.write_text("hello\n")
    r = ca.issue("client", "--cn", "bad", "--csr", garbage, ok=False)
    assert r.returncode == 1 and "CSR" in r.stderr
    assert listing(ca.data) == []
    assert os.listdir(ca.out) == []


# --- revocation --------------------------------------------------------


def crl_number(path):
    crl = x509.load_pem_x509_crl(path.read_bytes())
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value \
        .crl_number


@pytest.mark.parametrize("intermediate", [False, True])
def test_revoke_and_crl(tmp_path, intermediate):
    ca = CA(tmp_path, intermediate=intermediate)
    bad = field(ca.issue("client", "--cn", "lost").stdout, "serial")
    ca.issue("client", "--cn", "kept")
    r = cg("ca", "revoke", bad, "--reason", "keyCompromise", "--data",
           ca.data)
    assert bad in r.stdout
    crl1 = tmp_path / "crl1.pem"
    cg("ca", "crl", "--data", ca.data, "--out", crl1, "--days", "3")
    text = tool("openssl", "crl", "-in", crl1, "-noout", "-text").stdout
    assert f"Serial Number: {bad}" in text
    assert "Key Compromise" in text
    assert "X509v3 Authority Key Identifier" in text
    crl = x509.load_pem_x509_crl(crl1.read_bytes())
    assert (crl.next_update - crl.last_update).days == 3
    entry = crl.get_revoked_certificate_by_serial_number(int(bad, 16))
    assert entry.extensions.get_extension_for_class(
        x509.CRLReason).value.reason == x509.ReasonFlags.key_compromise
    issuer = ca.data / "ca" / ("issuer.pem" if intermediate else "root.pem")
    assert crl.is_signature_valid(load(issuer).public_key())
    r = ca.verify("lost", "sslclient", crl=crl1)
    assert r.returncode != 0 and "certificate revoked" in r.stdout + r.stderr
    assert ca.verify("kept", "sslclient", crl=crl1).returncode == 0
    # CRL numbers increase; stdout output works too
    crl2 = tmp_path / "crl2.pem"
    crl2.write_text(cg("ca", "crl", "--data", ca.data).stdout)
    assert crl_number(crl2) > crl_number(crl1)
    rows = {x["serial"]: x for x in listing(ca.data)}
    assert rows[bad]["status"] == "revoked"
    assert rows[bad]["revocation_reason"] == "keyCompromise"
    assert [x["serial"] for x in listing(ca.data, "--status", "revoked")] \
        == [bad]
    assert len(listing(ca.data, "--status", "valid")) == 1
    assert listing(ca.data, "--status", "expired") == []


def test_revoke_errors(root_ca):
    ca = root_ca
    serial = field(ca.issue("client", "--cn", "a").stdout, "serial")
    r = cg("ca", "revoke", "0123456789ABCDEF", "--data", ca.data, ok=False)
    assert r.returncode == 1
    assert "no certificate with serial 0123456789ABCDEF" in r.stderr
    r = cg("ca", "revoke", serial, "--reason", "lost", "--data", ca.data,
           ok=False)
    assert r.returncode == 2
    cg("ca", "revoke", serial.lower(), "--data", ca.data)
    r = cg("ca", "revoke", serial, "--data", ca.data, ok=False)
    assert r.returncode == 1 and "already revoked" in r.stderr
    assert cg("ca", "revoke", "--data", ca.data, ok=False).returncode == 2


def test_show(root_ca):
    ca = root_ca
    serial = field(ca.issue("client", "--cn", "s", "--email",
                            "s@example.com").stdout, "serial")
    rec = json.loads(cg("ca", "show", serial, "--json", "--data",
                        ca.data).stdout)
    assert rec["serial"] == serial and rec["san_email"] == ["s@example.com"]
    assert rec["pem"] == (ca.out / "s.pem").read_text()
    pem = cg("ca", "show", serial, "--pem", "--data", ca.data).stdout
    assert pem == (ca.out / "s.pem").read_text()
    text = cg("ca", "show", serial, "--data", ca.data).stdout
    assert "CN=s" in text and "valid" in text
    r = cg("ca", "show", "ABCD", "--data", ca.data, ok=False)
    assert r.returncode == 1


# --- PKCS#12 -----------------------------------------------------------


def nss_import(tmp_path, p12, password):
    db = tmp_path / "nssdb"
    db.mkdir()
    tool("certutil", "-N", "-d", f"sql:{db}", "--empty-password")
    tool("pk12util", "-i", p12, "-d", f"sql:{db}", "-W", password)
    return tool("certutil", "-L", "-d", f"sql:{db}").stdout


def test_p12_modern(inter_ca, tmp_path):
    ca = inter_ca
    p12 = tmp_path / "alice.p12"
    r = ca.issue("client", "--cn", "alice", "--p12", p12)
    password = field(r.stdout, "PKCS#12 password")
    assert len(password) == 20
    assert r.stdout.count(password) == 1
    assert mode(p12) == 0o600
    pw = tmp_path / "pw"
    pw.write_text(password + "\n")
    info = tool("openssl", "pkcs12", "-info", "-nokeys", "-in", p12,
                "-passin", f"file:{pw}")
    out = info.stdout + info.stderr
    assert "MAC: sha256" in out and "AES-256-CBC" in out
    assert "PBKDF2" in out and "3DES" not in out
    assert "subject=CN = alice" in out and "Test CA Issuing CA" in out
    assert "subject=CN = Test CA Root CA" not in out  # root not bundled
    listed = nss_import(tmp_path, p12, password)
    assert "alice" in listed and "u,u,u" in listed
    wrong = tmp_path / "wrong"
    wrong.write_text("nope\n")
    assert tool("openssl", "pkcs12", "-info", "-nokeys", "-in", p12,
                "-passin", f"file:{wrong}", ok=False).returncode != 0


def test_p12_legacy(root_ca, tmp_path):
    ca = root_ca
    pw = tmp_path / "pw"
    pw.write_text("import-me\n")
    p12 = tmp_path / "old.p12"
    r = ca.issue("client", "--cn", "old", "--p12", p12,
                 "--p12-password-file", pw, "--p12-legacy", "--key",
                 "rsa-2048")
    assert "PKCS#12 password" not in r.stdout
    info = tool("openssl", "pkcs12", "-legacy", "-info", "-nokeys", "-in",
                p12, "-passin", f"file:{pw}")
    out = info.stdout + info.stderr
    assert "MAC: sha1" in out
    assert "pbeWithSHA1And3-KeyTripleDES-CBC" in out and "AES" not in out
    assert "subject=CN = old" in out
    assert "old" in nss_import(tmp_path, p12, "import-me")


def test_p12_with_csr_refused(root_ca, tmp_path):
    csr = openssl_csr(tmp_path, "c")
    r = root_ca.issue("client", "--cn", "c", "--csr", csr, "--p12",
                      tmp_path / "c.p12", ok=False)
    assert r.returncode == 2
    assert not (tmp_path / "c.p12").exists()


# --- concurrency and export ---------------------------------------------


def test_parallel_issue(root_ca):
    ca = root_ca
    procs = [subprocess.Popen([BIN, "ca", "issue", "client", "--cn",
                               f"dev{i}", "--data", ca.data, "--out-dir",
                               ca.out], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for i in range(8)]
    serials = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and "Sanitizer" not in err, err
        serials.append(field(out, "serial"))
    assert len(set(serials)) == 8
    rows = listing(ca.data)
    assert len(rows) == 8
    assert {x["serial"] for x in rows} == set(serials)
    for i in range(8):
        assert ca.verify(f"dev{i}", "sslclient").returncode == 0
    leftovers = [f for f in os.listdir(ca.out) if ".tmp." in f]
    assert leftovers == []


def test_export(inter_ca, tmp_path):
    ca = inter_ca
    ca.issue("server", "--dns", "gw.example")
    out = tmp_path / "chain.pem"
    cg("ca", "export", "--data", ca.data, "--out", out)
    certs = load_all(out.read_bytes())
    assert [c.subject.rfc4514_string() for c in certs] == \
        ["CN=Test CA Issuing CA", "CN=Test CA Root CA"]
    assert cg("ca", "export", "--data", ca.data).stdout == out.read_text()
    # the exported chain is a usable trust bundle for the gateway's peers
    tool("openssl", "verify", "-CAfile", out, "-purpose", "sslserver",
         ca.out / "gw.example.pem")
    # and is itself a valid chain: the issuer verifies against the root
    root_only = tmp_path / "root.pem"
    root_only.write_bytes(certs[1].public_bytes(serialization.Encoding.PEM))
    issuer = tmp_path / "issuer.pem"
    issuer.write_bytes(certs[0].public_bytes(serialization.Encoding.PEM))
    tool("openssl", "verify", "-CAfile", root_only, issuer)
