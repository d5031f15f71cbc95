#!/usr/bin/python3
"""bench/gen_crl.py: a CA, a client certificate and CRLs of N revoked
serials for the revocation benchmark (issue 4). Debian's python3 with
python3-cryptography only.

    bench/gen_crl.py OUTDIR [--counts 0,100000,1000000] [--seed S]

writes into OUTDIR:

    ca.pem ca.key           an EC P-256 root CA ("certgate bench CRL CA")
    client.pem client.key   a client certificate of that CA, never revoked
    server.pem server.key   a server certificate (CN localhost, 127.0.0.1)
    crl-N.pem crl-N.der     for every N: a v2 CRL with N revoked serials
                            (random 16-byte serials, as real CAs draw them),
                            thisUpdate now - 1 h, nextUpdate now + 30 days,
                            cRLNumber and authorityKeyIdentifier

cryptography's CertificateRevocationListBuilder needs minutes for a
million entries, so the TBSCertList is written here as DER directly and
only its signature comes from cryptography (about 2 s for 1,000,000).
Small CRLs are read back with cryptography and their signature checked,
so a mistake in the encoder shows at once.
"""

import argparse
import datetime
import os
import random
import sys

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ECDSA_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")
OID_AKI = bytes.fromhex("0603551d23")
OID_CRL_NUMBER = bytes.fromhex("0603551d14")


# -- DER -------------------------------------------------------------------

def der_len(n):
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def tlv(tag, body):
    return bytes([tag]) + der_len(len(body)) + body


def der_int(n):
    return tlv(0x02, n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True))


def der_time(t):
    """UTCTime before 2050, GeneralizedTime from then on (RFC 5280)."""
    if t.year < 2050:
        return tlv(0x17, t.strftime("%y%m%d%H%M%SZ").encode())
    return tlv(0x18, t.strftime("%Y%m%d%H%M%SZ").encode())


def tbs_cert_list(ca, serials, this_update, next_update, number):
    """The DER TBSCertList (RFC 5280 section 5.1) revoking serials."""
    issuer = ca.subject.public_bytes()
    keyid = ca.extensions.get_extension_for_class(
        x509.SubjectKeyIdentifier).value.digest
    when = der_time(this_update - datetime.timedelta(minutes=5))
    revoked = b""
    if serials:
        # One entry: SEQUENCE { INTEGER serial, Time revocationDate }.
        revoked = tlv(0x30, b"".join(
            tlv(0x30, der_int(s) + when) for s in serials))
    aki = tlv(0x30, OID_AKI + tlv(0x04, tlv(0x30, tlv(0x80, keyid))))
    crl_number = tlv(0x30, OID_CRL_NUMBER + tlv(0x04, der_int(number)))
    exts = tlv(0xA0, tlv(0x30, aki + crl_number))
    return tlv(0x30, der_int(1) + ECDSA_SHA256 + issuer +
               der_time(this_update) + der_time(next_update) + revoked +
               exts)


def sign_crl(tbs, key):
    sig = key.sign(tbs, ec.ECDSA(hashes.SHA256()))
    return tlv(0x30, tbs + ECDSA_SHA256 + tlv(0x03, b"\x00" + sig))


def pem(der, label):
    import base64
    b = base64.encodebytes(der).decode().replace("\n", "")
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    return ("-----BEGIN %s-----\n%s\n-----END %s-----\n" % (
        label, "\n".join(lines), label)).encode()


# -- certificates ------------------------------------------------------------

def write(path, data, private=False):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_pair(outdir, name, cert, key):
    write(os.path.join(outdir, name + ".pem"),
          cert.public_bytes(serialization.Encoding.PEM))
    write(os.path.join(outdir, name + ".key"), key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()), private=True)


def make_ca(now):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "certgate bench"),
        x509.NameAttribute(NameOID.COMMON_NAME, "certgate bench CRL CA")])
    pub = key.public_key()
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(pub)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None),
                           critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False,
                key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(pub),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def make_leaf(ca, ca_key, now, cn, eku, sans=()):
    key = ec.generate_private_key(ec.SECP256R1())
    b = (x509.CertificateBuilder()
         .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                     cn)]))
         .issuer_name(ca.subject).public_key(key.public_key())
         .serial_number(x509.random_serial_number())
         .not_valid_before(now - datetime.timedelta(days=1))
         .not_valid_after(now + datetime.timedelta(days=365))
         .add_extension(x509.BasicConstraints(ca=False, path_length=None),
                        critical=True)
         .add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
             ca_key.public_key()), critical=False))
    if sans:
        b = b.add_extension(x509.SubjectAlternativeName(list(sans)),
                            critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


def check_small(der, ca, serials):
    crl = x509.load_der_x509_crl(der)
    assert crl.is_signature_valid(ca.public_key()), "bad CRL signature"
    got = sorted(r.serial_number for r in crl)
    assert got == sorted(serials), "CRL entries differ"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("outdir")
    ap.add_argument("--counts", default="0,100000,1000000",
                    help="comma-separated numbers of revoked serials")
    ap.add_argument("--seed", type=int, default=4,
                    help="seed of the serial generator (default 4)")
    a = ap.parse_args()
    counts = [int(c) for c in a.counts.split(",") if c != ""]
    os.makedirs(a.outdir, exist_ok=True)
    now = datetime.datetime.utcnow().replace(microsecond=0)
    ca, ca_key = make_ca(now)
    write_pair(a.outdir, "ca", ca, ca_key)
    client, client_key = make_leaf(ca, ca_key, now, "bench-client",
                                   ExtendedKeyUsageOID.CLIENT_AUTH)
    write_pair(a.outdir, "client", client, client_key)
    import ipaddress
    server, server_key = make_leaf(
        ca, ca_key, now, "localhost", ExtendedKeyUsageOID.SERVER_AUTH,
        [x509.DNSName("localhost"),
         x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    write_pair(a.outdir, "server", server, server_key)
    rng = random.Random(a.seed)
    keep = {client.serial_number, server.serial_number}
    for number, n in enumerate(counts, 1):
        serials = set()
        while len(serials) < n:
            s = rng.getrandbits(127) | (1 << 126)  # 16 bytes, positive
            if s not in keep:
                serials.add(s)
        serials = sorted(serials)
        tbs = tbs_cert_list(ca, serials, now - datetime.timedelta(hours=1),
                            now + datetime.timedelta(days=30), number)
        der = sign_crl(tbs, ca_key)
        if n <= 1000:
            check_small(der, ca, serials)
        write(os.path.join(a.outdir, "crl-%d.der" % n), der)
        write(os.path.join(a.outdir, "crl-%d.pem" % n), pem(der, "X509 CRL"))
        print("crl-%d: %d bytes DER" % (n, len(der)), file=sys.stderr)


if __name__ == "__main__":
    main()
