"""Helpers for the certgate integration suite (STYLE.md section 10).

Everything a test needs besides pytest itself: the per-run test PKI made
with python3-cryptography, upstream servers (HTTP/1.1, HTTPS, unix socket,
with /slow and /ws), the daemon runner (ports file, JSON log, reload,
SIGTERM), and clients (curl, raw TLS sockets, openssl s_client).

No fixed ports (everything binds 127.0.0.1:0) and no blind sleeps: waits
poll with deadlines, scaled by SCALE when the binary is an ASan build.
"""

import base64
import datetime
import hashlib
import http.server
import ipaddress
import json
import os
import select
import signal
import socket
import socketserver
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

CERTGATE_BIN = os.environ.get("CERTGATE_BIN", "/work/main/build/certgate")
SANITIZE = os.environ.get("CG_SANITIZE", "").upper() in ("ON", "1", "TRUE",
                                                          "YES")
SCALE = 3 if SANITIZE else 1
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:",
                     "ERROR: LeakSanitizer")

# Default identity headers (contract): sent upstream only on SUCCESS, except
# X-Client-Verify which is always sent.
IDENTITY_HEADERS = (
    "X-Client-Cert-Subject",
    "X-Client-Cert-Issuer",
    "X-Client-Cert-Serial",
    "X-Client-Cert-Fingerprint-SHA256",
    "X-Client-Cert-CN",
    "X-Client-Cert-Email",
    "X-Client-Cert-Not-After",
    "Client-Cert",
)
ALL_IDENTITY_HEADERS = ("X-Client-Verify",) + IDENTITY_HEADERS


def timeout(seconds):
    """A timeout in seconds scaled for sanitizer builds."""
    return seconds * SCALE


def wait_for(pred, seconds=5.0, interval=0.02, what="condition"):
    """Polls pred() until it returns a truthy value; returns that value.
    Raises AssertionError after the (scaled) deadline."""
    deadline = time.monotonic() + timeout(seconds)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(interval)


# --------------------------------------------------------------------------
# PKI
# --------------------------------------------------------------------------

def _write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _name(*attrs):
    """x509.Name from (oid, value) pairs, in encoding order."""
    return x509.Name([x509.NameAttribute(o, v) for o, v in attrs])


_SHORT = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.DOMAIN_COMPONENT: "DC",
}


def rfc4514_escape(value):
    """RFC 4514 section 2.4 escaping, with control bytes as \\XX."""
    out = []
    raw = value.encode("utf-8")
    for i, c in enumerate(raw):
        ch = chr(c)
        edge = (i == 0 and ch in " #") or (i == len(raw) - 1 and ch == " ")
        if c < 0x20 or c == 0x7F:
            out.append("\\%02X" % c)
        elif edge or ch in ',+"\\<>;':
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out).encode("latin-1").decode("utf-8", "replace")


def rfc4514(name):
    """RFC 4514 string of an x509.Name: most specific RDN (encoded last)
    first, ',' between RDNs, '+' between members of one RDN."""
    parts = []
    for rdn in reversed(list(name.rdns)):
        parts.append("+".join(
            "%s=%s" % (_SHORT.get(a.oid, a.oid.dotted_string),
                       rfc4514_escape(a.value)) for a in rdn))
    return ",".join(parts)


def _rfc822(value):
    """RFC822Name; control bytes (refused by the validating constructor)
    go through cryptography's unvalidated path."""
    try:
        return x509.RFC822Name(value)
    except ValueError:
        return x509.RFC822Name._init_without_validation(value)


class Cert:
    """One certificate with its key on disk.

    cert: PEM path of the leaf alone; chain: leaf followed by its
    intermediates (same as cert when there are none); key: PEM key (0600).
    """

    def __init__(self, name, x, key, dirpath, chain_certs=(), der=None):
        self.name = name
        self.parent = None  # issuing Cert; None for a self-signed root
        self.x509 = x
        self.key_obj = key
        self.der = der if der is not None else x.public_bytes(
            serialization.Encoding.DER)
        self.cert = os.path.join(dirpath, name + ".pem")
        self.key = os.path.join(dirpath, name + ".key")
        self.chain = os.path.join(dirpath, name + "-chain.pem")
        pem = ssl.DER_cert_to_PEM_cert(self.der).encode()
        with open(self.cert, "wb") as f:
            f.write(pem)
        with open(self.chain, "wb") as f:
            f.write(pem)
            for c in chain_certs:
                f.write(c.x509.public_bytes(serialization.Encoding.PEM))
        _write_private(self.key, key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))

    # Values certgate must produce, computed here from the certificate.
    @property
    def sha256(self):
        return hashlib.sha256(self.der).hexdigest()

    @property
    def serial_hex(self):
        """Uppercase hex as `openssl x509 -serial` prints it."""
        n = self.x509.serial_number
        if n == 0:
            return "00"
        return n.to_bytes((n.bit_length() + 7) // 8, "big").hex().upper()

    @property
    def subject_dn(self):
        return rfc4514(self.x509.subject)

    @property
    def issuer_dn(self):
        return rfc4514(self.x509.issuer)

    @property
    def not_after_dt(self):
        return getattr(self.x509, "not_valid_after_utc", None) or \
            self.x509.not_valid_after.replace(tzinfo=datetime.timezone.utc)

    @property
    def not_before_dt(self):
        return getattr(self.x509, "not_valid_before_utc", None) or \
            self.x509.not_valid_before.replace(tzinfo=datetime.timezone.utc)

    @property
    def not_after(self):
        """RFC 3339 UTC."""
        return self.not_after_dt.strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def not_before(self):
        return self.not_before_dt.strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def client_cert_header(self):
        return ":" + base64.b64encode(self.der).decode() + ":"

    @property
    def pem_text(self):
        with open(self.cert) as f:
            return f.read()


class PKI:
    """The per-run test PKI. Attribute names are the certificate names."""

    def __init__(self, dirpath):
        self.dir = dirpath
        self.now = datetime.datetime.utcnow().replace(microsecond=0)
        self.certs = {}
        day = datetime.timedelta(days=1)

        # CAs
        self.root = self._ca("root", _name(
            (NameOID.ORGANIZATION_NAME, "certgate tests"),
            (NameOID.COMMON_NAME, "Test Root CA")))
        self.inter = self._ca("inter", _name(
            (NameOID.ORGANIZATION_NAME, "certgate tests"),
            (NameOID.COMMON_NAME, "Test Intermediate CA")),
            issuer=self.root, pathlen=0)
        self.other_ca = self._ca("other-ca", _name(
            (NameOID.ORGANIZATION_NAME, "elsewhere"),
            (NameOID.COMMON_NAME, "Other CA")))
        # Same DN as the real root, another key.
        self.fake_root = self._ca("fake-root", self.root.x509.subject)

        # Servers
        self.server = self._leaf(
            "server", _name((NameOID.COMMON_NAME, "localhost")),
            eku=[ExtendedKeyUsageOID.SERVER_AUTH],
            dns=["localhost", "app.localhost", "other.localhost",
                 "*.example.com", "example.com"],
            ips=["127.0.0.1"])
        self.upstream_server = self._leaf(
            "upstream-server", _name((NameOID.COMMON_NAME, "upstream.test")),
            eku=[ExtendedKeyUsageOID.SERVER_AUTH],
            dns=["upstream.test"], ips=["127.0.0.1"])
        # certgate's client certificate towards an https upstream.
        self.gateway = self._client("gateway", "gateway")

        # Clients
        staff = [(NameOID.ORGANIZATION_NAME, "Example"),
                 (NameOID.ORGANIZATIONAL_UNIT_NAME, "staff")]
        self.alice = self._leaf(
            "alice", _name(*staff, (NameOID.COMMON_NAME, "alice")),
            emails=["alice@example.com"])
        self.carol = self._leaf(  # via the intermediate
            "carol", _name(*staff, (NameOID.COMMON_NAME, "carol")),
            emails=["carol@example.com"], issuer=self.inter)
        self.bob = self._client("bob", "bob", emails=["bob@other.org"])
        self.noemail = self._client("noemail", "noemail")
        self.special = self._client("special", 'Smith, John+Jr "Q"',
                                    emails=["smith@example.com"])
        self.expired = self._client(
            "expired", "expired", emails=["expired@example.com"],
            not_before=self.now - 10 * day, not_after=self.now - day)
        self.notyet = self._client(
            "notyet", "notyet", emails=["notyet@example.com"],
            not_before=self.now + day, not_after=self.now + 10 * day)
        self.server_eku = self._client(
            "server-eku", "server-eku",
            eku=[ExtendedKeyUsageOID.SERVER_AUTH])
        # ExtendedKeyUsage([]) is refused by cryptography 38 (SIZE 1..MAX):
        # the extension is written raw as DER 30 00.
        self.empty_eku = self._client("empty-eku", "empty-eku",
                                      eku="empty")
        self.ca_leaf = self._client("ca-leaf", "ca-leaf", ca=True)
        self.other_signed = self._client("other-signed", "alice",
                                         emails=["alice@example.com"],
                                         issuer=self.other_ca)
        self.fake_signed = self._client("fake-signed", "alice",
                                        emails=["alice@example.com"],
                                        issuer=self.fake_root)
        # cryptography 38 accepts NUL and CR LF in a NameAttribute as is.
        self.nul_cn = self._client("nul-cn", "alice\x00.evil.com")
        self.crlf_cn = self._client("crlf-cn", "alice\r\nX-Injected: 1")
        self.two_cn = self._leaf("two-cn", _name(
            (NameOID.COMMON_NAME, "alice"),
            (NameOID.COMMON_NAME, "mallory")))
        self.bad_sig = self._client("bad-sig", "bad-sig", tamper=True)
        self.crlf_email = self._client(
            "crlf-email", "crlf-email",
            emails=["eve@example.com\r\nX-Evil: 1"])
        self.unicode_cn = self._client("unicode-cn", "Zo\u00eb",
                                       emails=["zoe@example.com"])
        # root -> deep1 -> deep2 -> dave: two intermediates, for
        # client_auth.verify_depth.
        self.deep1 = self._ca("deep1", _name(
            (NameOID.COMMON_NAME, "Deep CA 1")), issuer=self.root)
        self.deep2 = self._ca("deep2", _name(
            (NameOID.COMMON_NAME, "Deep CA 2")), issuer=self.deep1,
            pathlen=0)
        self.dave = self._client("dave", "dave", emails=["dave@example.com"],
                                 issuer=self.deep2)

    # -- builders ----------------------------------------------------------

    def _key(self):
        return ec.generate_private_key(ec.SECP256R1())

    def _ca(self, name, subject, issuer=None, pathlen=None, not_after=None):
        key = self._key()
        b = (x509.CertificateBuilder()
             .subject_name(subject)
             .issuer_name(issuer.x509.subject if issuer else subject)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             # CAs outlive every leaf, so leaf dates decide (verify --at).
             .not_valid_before(self.now - datetime.timedelta(days=365))
             .not_valid_after(not_after or
                              self.now + datetime.timedelta(days=365))
             .add_extension(x509.BasicConstraints(ca=True,
                                                  path_length=pathlen),
                            critical=True)
             .add_extension(x509.KeyUsage(
                 digital_signature=True, content_commitment=False,
                 key_encipherment=False, data_encipherment=False,
                 key_agreement=False, key_cert_sign=True, crl_sign=True,
                 encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                 key.public_key()), critical=False))
        signer = issuer.key_obj if issuer else key
        if issuer:
            b = b.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(
                    issuer.key_obj.public_key()), critical=False)
        x = b.sign(signer, hashes.SHA256())
        chain = []
        i = issuer
        while i is not None and i.parent is not None:
            chain.append(i)
            i = i.parent
        c = Cert(name, x, key, self.dir, chain_certs=chain)
        c.parent = issuer
        self.certs[name] = c
        return c

    def _client(self, name, cn, **kw):
        return self._leaf(name, _name((NameOID.COMMON_NAME, cn)), **kw)

    def _leaf(self, name, subject, issuer=None, eku=None, emails=(), dns=(),
              ips=(), ca=False, not_before=None, not_after=None,
              tamper=False):
        issuer = issuer or self.root
        key = self._key()
        b = (x509.CertificateBuilder()
             .subject_name(subject)
             .issuer_name(issuer.x509.subject)
             .public_key(key.public_key())
             .serial_number(x509.random_serial_number())
             .not_valid_before(not_before or
                               self.now - datetime.timedelta(hours=1))
             .not_valid_after(not_after or
                              self.now + datetime.timedelta(days=30))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None),
                            critical=True)
             .add_extension(x509.KeyUsage(
                 digital_signature=True, content_commitment=False,
                 key_encipherment=False, data_encipherment=False,
                 key_agreement=False, key_cert_sign=ca, crl_sign=False,
                 encipher_only=False, decipher_only=False), critical=True)
             .add_extension(x509.SubjectKeyIdentifier.from_public_key(
                 key.public_key()), critical=False)
             .add_extension(
                 x509.AuthorityKeyIdentifier.from_issuer_public_key(
                     issuer.key_obj.public_key()), critical=False))
        if eku == "empty":
            b = b.add_extension(x509.UnrecognizedExtension(
                ExtensionOID.EXTENDED_KEY_USAGE, b"\x30\x00"), critical=False)
        else:
            b = b.add_extension(x509.ExtendedKeyUsage(
                eku or [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        sans = ([_rfc822(e) for e in emails] +
                [x509.DNSName(d) for d in dns] +
                [x509.IPAddress(ipaddress.ip_address(i)) for i in ips])
        if sans:
            b = b.add_extension(x509.SubjectAlternativeName(sans),
                                critical=False)
        x = b.sign(issuer.key_obj, hashes.SHA256())
        der = None
        if tamper:
            # Flip a bit inside the ECDSA signature value (the last bytes of
            # the DER): still parses, no longer verifies.
            d = bytearray(x.public_bytes(serialization.Encoding.DER))
            d[-3] ^= 0x01
            der = bytes(d)
            x = x509.load_der_x509_certificate(der)
        chain = []
        i = issuer
        while i.parent is not None:  # intermediates, leaf side first
            chain.append(i)
            i = i.parent
        c = Cert(name, x, key, self.dir, chain_certs=chain, der=der)
        c.parent = issuer
        self.certs[name] = c
        return c


# --------------------------------------------------------------------------
# Upstream servers
# --------------------------------------------------------------------------

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def ws_accept(key):
    return base64.b64encode(hashlib.sha1(
        (key + WS_GUID).encode()).digest()).decode()


def ws_frame(payload, opcode=1, mask=False):
    """One final WebSocket frame."""
    if isinstance(payload, str):
        payload = payload.encode()
    head = bytearray([0x80 | opcode])
    n = len(payload)
    mbit = 0x80 if mask else 0
    if n < 126:
        head.append(mbit | n)
    elif n < 65536:
        head.append(mbit | 126)
        head += n.to_bytes(2, "big")
    else:
        head.append(mbit | 127)
        head += n.to_bytes(8, "big")
    if mask:
        key = os.urandom(4)
        head += key
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return bytes(head) + payload


def ws_read_frame(read):
    """Reads one frame with read(n) -> bytes; returns (opcode, payload)."""
    b0, b1 = read(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(read(2), "big")
    elif n == 127:
        n = int.from_bytes(read(8), "big")
    key = read(4) if b1 & 0x80 else None
    payload = read(n) if n else b""
    if key:
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return b0 & 0x0F, payload


def big_body(n):
    """The body /big and /chunked-resp answer with."""
    block = hashlib.sha256(b"certgate").hexdigest().encode() * 2048
    return (block * (n // len(block) + 1))[:n]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cgtest-upstream"

    def log_message(self, fmt, *args):  # quiet
        pass

    def address_string(self):
        return "upstream"

    def _read_exact(self, n):
        data = b""
        while len(data) < n:
            chunk = self.rfile.read(n - len(data))
            if not chunk:
                raise ConnectionError("short read")
            data += chunk
        return data

    def _read_body(self):
        te = self.headers.get("Transfer-Encoding", "")
        if "chunked" in te.lower():
            body = bytearray()
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n",
                                                             b""):
                        pass
                    return bytes(body)
                body += self._read_exact(size)
                self.rfile.readline(3)
        n = int(self.headers.get("Content-Length") or 0)
        return self._read_exact(n) if n else b""

    def _tls_peer_cn(self):
        try:
            peer = self.connection.getpeercert()
        except (AttributeError, ValueError):
            return None
        if not peer:
            return None
        for rdn in peer.get("subject", ()):
            for k, v in rdn:
                if k == "commonName":
                    return v
        return None

    def _handle(self):
        srv = self.server
        path = self.path
        parsed = urllib.parse.urlsplit(path)
        q = urllib.parse.parse_qs(parsed.query)
        hdrs = [[k, v] for k, v in self.headers.items()]
        with srv.lock:
            srv.started.append({"method": self.command, "path": path,
                                "headers": hdrs})
        if parsed.path == "/ws":
            return self._websocket(hdrs)
        if parsed.path == "/truncate":
            # Promises 1000 bytes, sends 10, closes.
            self._read_body()
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n"
                             b"Content-Type: text/plain\r\n\r\n0123456789")
            self.wfile.flush()
            self.close_connection = True
            return
        if parsed.path == "/bad":
            self.wfile.write(b"THIS IS NOT HTTP\r\n\r\n")
            self.close_connection = True
            return
        body = self._read_body()
        if parsed.path in ("/big", "/chunked-resp"):
            return self._big(parsed.path, int(q.get("n", ["1048576"])[0]))
        if parsed.path == "/slow":
            time.sleep(float(q.get("s", ["2"])[0]))
        rec = {
            "server": srv.name,
            "method": self.command,
            "path": path,
            "version": self.request_version,
            "headers": hdrs,
            "body": body.decode("utf-8", "replace"),
            "body_len": len(body),
            "body_sha256": hashlib.sha256(body).hexdigest(),
            "tls_client_cn": self._tls_peer_cn(),
        }
        with srv.lock:
            srv.requests.append(rec)
        out = json.dumps(rec).encode()
        status = 200
        if parsed.path.startswith("/status/"):
            status = int(parsed.path.split("/")[2])
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(out)

    def _big(self, path, n):
        """n bytes of a deterministic pattern; /chunked-resp sends them
        chunked. The X-Body-Sha256 header carries their digest."""
        data = big_body(n)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("X-Body-Sha256", hashlib.sha256(data).hexdigest())
        if path == "/chunked-resp":
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, n, 50000):
                part = data[i:i + 50000]
                self.wfile.write(b"%x\r\n" % len(part) + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(n))
            self.end_headers()
            if self.command != "HEAD":
                for i in range(0, n, 65536):
                    self.wfile.write(data[i:i + 65536])

    def _websocket(self, hdrs):
        key = self.headers.get("Sec-WebSocket-Key")
        if (self.headers.get("Upgrade", "").lower() != "websocket"
                or not key):
            self.send_error(400, "not a websocket request")
            return
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", ws_accept(key))
        self.end_headers()
        self.wfile.flush()
        try:
            op, payload = ws_read_frame(self._read_exact)
            reply = json.dumps({
                "echo": payload.decode("utf-8", "replace"),
                "opcode": op,
                "verify": self.headers.get("X-Client-Verify"),
                "cn": self.headers.get("X-Client-Cert-CN"),
            })
            self.wfile.write(ws_frame(reply))
            op, _ = ws_read_frame(self._read_exact)  # expect close
            if op == 8:
                self.wfile.write(ws_frame(b"\x03\xe8", opcode=8))
        except (ConnectionError, OSError, ValueError):
            pass
        with self.server.lock:
            self.server.requests.append({"server": self.server.name,
                                         "method": self.command,
                                         "path": self.path,
                                         "headers": hdrs, "body": "",
                                         "ws": True})
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _handle
    do_OPTIONS = _handle


class _ServerMixin:
    daemon_threads = True
    allow_reuse_address = True

    def _init_state(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.requests = []
        self.started = []

    def handle_error(self, request, client_address):
        pass  # resets from certgate aborting a request are expected


class _TCPServer(_ServerMixin, http.server.ThreadingHTTPServer):
    pass


class _TLSServer(_TCPServer):
    ctx = None

    def finish_request(self, request, client_address):
        try:
            request.settimeout(timeout(10))
            tls = self.ctx.wrap_socket(request, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.tls_failures += 1
            return
        super().finish_request(tls, client_address)


class _UnixServer(_ServerMixin, socketserver.ThreadingUnixStreamServer):
    pass


class Upstream:
    """A threaded HTTP/1.1 upstream answering every request with JSON
    {"server","method","path","headers":[[n,v],..],"body",...}.

    kind: "http", "https" (needs pki) or "unix".
    Special paths: /slow?s=SECONDS, /ws (WebSocket echo of one frame),
    /bad (garbage instead of HTTP), /status/NNN.
    """

    def __init__(self, name="up", kind="http", pki=None, require_cert=False):
        self.name = name
        self.kind = kind
        self.tmpdir = None
        if kind == "unix":
            self.tmpdir = tempfile.mkdtemp(prefix="cgu", dir="/tmp")
            self.path = os.path.join(self.tmpdir, "up.sock")
            self.srv = _UnixServer(self.path, _Handler)
        elif kind == "https":
            self.srv = _TLSServer(("127.0.0.1", 0), _Handler)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(pki.upstream_server.chain,
                                pki.upstream_server.key)
            ctx.load_verify_locations(pki.root.cert)
            ctx.verify_mode = (ssl.CERT_REQUIRED if require_cert
                               else ssl.CERT_OPTIONAL)
            self.srv.ctx = ctx
            self.srv.tls_failures = 0
        else:
            self.srv = _TCPServer(("127.0.0.1", 0), _Handler)
        self.srv._init_state(name)
        self.thread = threading.Thread(target=self.srv.serve_forever,
                                       kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def port(self):
        return self.srv.server_address[1]

    @property
    def url(self):
        if self.kind == "unix":
            return "unix:" + self.path
        return "%s://127.0.0.1:%d" % (self.kind, self.port)

    @property
    def requests(self):
        with self.srv.lock:
            return list(self.srv.requests)

    @property
    def started(self):
        with self.srv.lock:
            return list(self.srv.started)

    @property
    def tls_failures(self):
        return getattr(self.srv, "tls_failures", 0)

    def paths(self):
        return [r["path"] for r in self.started]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()
        if self.tmpdir:
            try:
                os.unlink(self.path)
                os.rmdir(self.tmpdir)
            except OSError:
                pass


def closed_port():
    """A 127.0.0.1 port nobody listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --------------------------------------------------------------------------
# Configuration builders
# --------------------------------------------------------------------------

def client_auth(mode, trust="staff", **extra):
    if mode == "off":
        d = {"enabled": False}
    else:
        d = {"enabled": True, "mode": mode, "trust": trust}
    d.update(extra)
    return d


def route(upstream, path="/", **kw):
    url = upstream if isinstance(upstream, str) else upstream.url
    d = {"path": path, "upstream": url}
    d.update(kw)
    return d


def listener(name, pki, routes, mode="required", trust="staff", **kw):
    d = {
        "name": name,
        "kind": "https",
        "listen": "127.0.0.1:0",
        "certificates": [{"cert": pki.server.chain, "key": pki.server.key}],
        "client_auth": client_auth(mode, trust),
        "routes": routes,
    }
    d.update(kw)
    return d


def config(pki, listeners, **kw):
    d = {
        "workers": 2,
        "log": {"level": "info"},
        "trust": {
            "staff": {"ca_files": [pki.root.cert]},
            "other": {"ca_files": [pki.other_ca.cert]},
        },
        "listeners": listeners,
    }
    d.update(kw)
    return d


# --------------------------------------------------------------------------
# The daemon
# --------------------------------------------------------------------------

class Daemon:
    """`certgate serve -c` in a temp dir, stderr captured to a file."""

    def __init__(self, workdir, cfg, name="certgate", binary=None):
        self.workdir = str(workdir)
        self.name = name
        self.binary = binary or CERTGATE_BIN
        self.config_path = os.path.join(self.workdir, "certgate.json")
        self.ports_path = os.path.join(self.workdir, "ports.json")
        self.pid_path = os.path.join(self.workdir, "certgate.pid")
        self.stderr_path = os.path.join(self.workdir, "stderr.log")
        self.proc = None
        self.ports = {}
        self.cfg = None
        self.write_config(cfg)

    def write_config(self, cfg):
        """Writes cfg (a dict, with ports_file/pid_file filled in, or raw
        text) atomically to the config path."""
        if isinstance(cfg, dict):
            cfg = dict(cfg)
            cfg.setdefault("ports_file", self.ports_path)
            cfg.setdefault("pid_file", self.pid_path)
            self.cfg = cfg
            text = json.dumps(cfg, indent=2)
        else:
            text = cfg
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)

    def start(self, wait=True):
        if os.path.exists(self.ports_path):
            os.unlink(self.ports_path)
        self._err = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "serve", "-c", self.config_path],
            stdin=subprocess.DEVNULL, stdout=self._err, stderr=self._err,
            cwd=self.workdir)
        if wait:
            want = [l["name"] for l in (self.cfg or {}).get("listeners", [])]
            self.ports = self.wait_ports(want)
        return self

    def wait_ports(self, names, seconds=10):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(
                    "certgate exited with %s during start-up:\n%s" %
                    (self.proc.returncode, self.stderr_text()))
            p = self.read_ports()
            if p is not None and all(n in p for n in names):
                return p
            return None
        return wait_for(ready, seconds, what="ports file %s" %
                        self.ports_path)

    def read_ports(self):
        try:
            with open(self.ports_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return None

    def port(self, listener="web"):
        return self.ports[listener]

    # -- logs --------------------------------------------------------------

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def logs(self):
        """Every JSON log line so far, parsed (non-JSON lines skipped)."""
        out = []
        for line in self.stderr_text().splitlines():
            line = line.strip()
            if not line.startswith("{"):
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def wait_log(self, pred, seconds=5, after=0, what="log line"):
        """Waits for a parsed log line (index >= after) matching pred."""
        def find():
            for rec in self.logs()[after:]:
                if pred(rec):
                    return rec
            return None
        return wait_for(find, seconds, what=what)

    def access_logs(self):
        return [r for r in self.logs() if r.get("event") == "access"]

    def wait_access(self, n=1, seconds=5):
        """Waits for at least n access lines; returns them all."""
        return wait_for(lambda: (lambda a: a if len(a) >= n else None)(
            self.access_logs()), seconds, what="%d access log lines" % n)

    # -- control -----------------------------------------------------------

    def reload(self, cfg=None, via="hup", expect_ok=True, seconds=10):
        """Rewrites the config (when given), asks for a reload (SIGHUP or
        `certgate reload -c`) and waits for the "reload" event (or the
        failure event when expect_ok is false). Returns the log line."""
        mark = len(self.logs())
        if cfg is not None:
            self.write_config(cfg)
        if via == "hup":
            self.proc.send_signal(signal.SIGHUP)
        else:
            r = run_cli(["reload", "-c", self.config_path])
            assert r.returncode == 0, "certgate reload: rc=%d %s" % (
                r.returncode, r.stderr)

        def ok(rec):
            return rec.get("event") == "reload"

        def failed(rec):
            ev = str(rec.get("event", ""))
            return ev == "reload_failed" or (
                rec.get("level") == "error" and "reload" in ev)

        def either(rec):
            return ok(rec) or failed(rec)
        rec = self.wait_log(either, seconds, after=mark,
                            what="reload / reload_failed event")
        if expect_ok:
            assert ok(rec), "reload refused: %r" % rec
        else:
            assert failed(rec), "invalid reload was accepted: %r" % rec
        return rec

    def stop(self, expect_rc=0, seconds=15):
        """SIGTERM, wait, check the exit code and sanitizer output."""
        if self.proc is None or self.proc.returncode is not None:
            rc = self.proc.returncode if self.proc else None
        else:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout(seconds))
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("certgate did not exit %ds after "
                                     "SIGTERM" % timeout(seconds))
        self._err.close()
        self.check_sanitizer()
        if expect_rc is not None:
            assert rc == expect_rc, "certgate exit code %r, expected %r" % (
                rc, expect_rc)
        return rc

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def check_sanitizer(self):
        bad = [l for l in self.stderr_text().splitlines()
               if any(m in l for m in SANITIZER_MARKERS)]
        assert not bad, "sanitizer report in certgate stderr:\n" + \
            "\n".join(bad)

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None


def run_cli(args, seconds=20, cwd=None):
    """Runs the certgate binary with args; returns CompletedProcess (text)."""
    return subprocess.run([CERTGATE_BIN] + list(args), capture_output=True,
                          text=True, timeout=timeout(seconds), cwd=cwd,
                          stdin=subprocess.DEVNULL)


# --------------------------------------------------------------------------
# Clients
# --------------------------------------------------------------------------

class Response:
    def __init__(self, status, reason, headers, body, interim=()):
        self.status = status
        self.reason = reason
        self.headers = headers  # [(name, value)] as received
        self.body = body
        self.interim = list(interim)  # 1xx responses (status, headers)

    def header(self, name, default=None):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return default

    def header_all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self):
        return json.loads(self.body)

    def upstream(self):
        """The upstream's JSON echo as an UpstreamView."""
        return UpstreamView(self.json())

    def __repr__(self):
        return "<Response %s %r %r>" % (self.status, self.headers,
                                        self.body[:300])


class UpstreamView:
    """What the upstream received, from its JSON echo."""

    def __init__(self, rec):
        self.rec = rec
        self.headers = [tuple(h) for h in rec["headers"]]

    def all(self, name):
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def get(self, name):
        vals = self.all(name)
        assert len(vals) <= 1, "several %s headers upstream: %r" % (
            name, vals)
        return vals[0] if vals else None

    def names(self):
        return [k.lower() for k, _ in self.headers]

    def __getitem__(self, k):
        return self.rec[k]


def client_ctx(pki, cert=None, min_version=None, max_version=None,
               check_hostname=True, chain=True):
    """A TLS client context trusting the test root; cert is a Cert (its
    chain file is loaded when chain is true)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.root.cert)
    ctx.check_hostname = check_hostname
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    if cert is not None:
        ctx.load_cert_chain(cert.chain if chain else cert.cert, cert.key)
    return ctx


class HalfHandshake:
    """A TLS client stopped in the middle of its handshake: the server has
    read its ClientHello and sent its own flight (so it took the
    connection under the settings it had then) and waits for the
    client's certificate, which this client sends only in finish().
    Memory BIOs keep the client from going on by itself."""

    def __init__(self, port, ctx, sni="localhost", seconds=10):
        self.seconds = seconds
        self.raw = socket.create_connection(("127.0.0.1", port), seconds)
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=sni)
        try:
            self.obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        self.raw.sendall(self.out.read())  # the ClientHello
        assert wait_readable(self.raw, seconds), "no server flight"

    def _pump(self):
        """Sends what the client wrote; reads what the server sent into
        the client; False at EOF."""
        pending = self.out.read()
        if pending:
            self.raw.sendall(pending)
        self.raw.settimeout(timeout(self.seconds))
        d = self.raw.recv(65536)
        if not d:
            return False
        self.inc.write(d)
        return True

    def finish(self):
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                if not self._pump():
                    raise ConnectionResetError("EOF during the handshake")
        pending = self.out.read()
        if pending:
            self.raw.sendall(pending)

    def send(self, data):
        self.obj.write(data)
        self.raw.sendall(self.out.read())

    def recv(self):
        """Application bytes; b"" at the end of the connection."""
        while True:
            try:
                return self.obj.read(65536)
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
            except ssl.SSLWantReadError:
                if not self._pump():
                    return b""

    def close(self):
        self.raw.close()


class Conn:
    """A raw TLS connection with a small HTTP/1.1 reader."""

    def __init__(self, port, ctx, sni="localhost", session=None,
                 seconds=10):
        self.timeout = timeout(seconds)
        raw = socket.create_connection(("127.0.0.1", port), self.timeout)
        try:
            self.sock = ctx.wrap_socket(raw, server_hostname=sni,
                                        session=session)
        except BaseException:
            raw.close()
            raise
        self.buf = b""

    # -- bytes -------------------------------------------------------------

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("read deadline")
        self.sock.settimeout(remaining)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def read_until(self, marker, deadline):
        while marker not in self.buf:
            self._fill(deadline)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_close(self, deadline):
        try:
            while True:
                self._fill(deadline)
        except (EOFError, ConnectionError, ssl.SSLError):
            pass
        out, self.buf = self.buf, b""
        return out

    # -- HTTP --------------------------------------------------------------

    def _read_head(self, deadline):
        head = self.read_until(b"\r\n\r\n", deadline).decode("latin-1")
        lines = head.split("\r\n")
        parts = lines[0].split(" ", 2)
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for line in lines[1:]:
            if not line:
                continue
            k, _, v = line.partition(":")
            headers.append((k, v.strip(" \t")))
        return status, reason, headers

    def read_response(self, method="GET", seconds=None, stop_at_1xx=False):
        deadline = time.monotonic() + (timeout(seconds) if seconds
                                       else self.timeout)
        interim = []
        while True:
            status, reason, headers = self._read_head(deadline)
            if 100 <= status < 200 and status != 101 and not stop_at_1xx:
                interim.append((status, headers))
                continue
            break
        r = Response(status, reason, headers, b"", interim)
        if method == "HEAD" or status in (101, 204, 304) or \
                100 <= status < 200:
            return r
        te = (r.header("Transfer-Encoding") or "").lower()
        if "chunked" in te:
            body = b""
            while True:
                line = self.read_until(b"\r\n", deadline)
                size = int(line.split(b";")[0].strip(), 16)
                if size == 0:
                    while self.read_until(b"\r\n", deadline) != b"\r\n":
                        pass
                    break
                body += self.read_exact(size, deadline)
                self.read_exact(2, deadline)
            r.body = body
        elif r.header("Content-Length") is not None:
            r.body = self.read_exact(int(r.header("Content-Length")),
                                     deadline)
        else:
            r.body = self.read_to_close(deadline)
        return r

    def request(self, method="GET", path="/", headers=(), body=b"",
                host="localhost", close=False):
        self.send(build_request(method, path, headers=headers, body=body,
                                host=host, close=close))
        return self.read_response(method)

    def is_closed(self, seconds=5):
        """True when the peer closes (EOF, reset, alert) before the deadline
        without sending more data; False on timeout or extra data."""
        if self.buf:
            return False
        deadline = time.monotonic() + timeout(seconds)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionError, ssl.SSLError, OSError):
                return True
            if not data:
                return True
            self.buf += data
            return False

    @property
    def session(self):
        return self.sock.session

    @property
    def session_reused(self):
        return self.sock.session_reused

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()


def build_request(method="GET", path="/", headers=(), body=b"",
                  host="localhost", close=False, version="HTTP/1.1"):
    """Request bytes. host=None sends no Host; Content-Length is added for
    a body unless headers already frame it."""
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s %s" % (method, path, version)]
    if host is not None:
        lines.append("Host: " + host)
    names = [k.lower() for k, _ in headers]
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    if body and "content-length" not in names and \
            "transfer-encoding" not in names:
        lines.append("Content-Length: %d" % len(body))
    if close and "connection" not in names:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def connect(pki, port, cert=None, sni="localhost", session=None, ctx=None,
            **ctxkw):
    if ctx is None:
        ctx = client_ctx(pki, cert, check_hostname=sni is not None,
                         **ctxkw)
    return Conn(port, ctx, sni=sni, session=session)


def get(pki, port, path="/", cert=None, headers=(), method="GET", body=b"",
        sni="localhost", host="localhost", **ctxkw):
    """One request on a fresh connection (Connection: close)."""
    with connect(pki, port, cert, sni=sni, **ctxkw) as c:
        return c.request(method, path, headers=headers, body=body,
                         host=host, close=True)


def refused(pki, port, cert=None, sni="localhost", path="/"):
    """Connects with cert and tries one request. Returns a description of
    how it failed (handshake error, alert, EOF) or None if an HTTP response
    came back. In TLS 1.3 the client's handshake completes before the
    server checks the certificate, so the refusal is often seen on the
    first read."""
    try:
        c = connect(pki, port, cert, sni=sni)
    except (ssl.SSLError, ConnectionError, OSError) as e:
        return "handshake: %r" % e
    try:
        try:
            # Read first: a TLS 1.3 server's alert follows the client's
            # Finished; writing first can turn it into a reset.
            if wait_readable(c.sock, 1):
                try:
                    c._fill(time.monotonic() + timeout(1))
                except socket.timeout:  # session tickets only
                    pass
            c.send(build_request("GET", path, close=True))
            r = c.read_response()
            return None if r else "no response"
        except (ssl.SSLError, ConnectionError, EOFError, OSError) as e:
            return "after handshake: %r" % e
    finally:
        c.close()


def curl(pki, port, path="/", cert=None, host="localhost", args=(),
         seconds=10, chain=True):
    """Runs curl; returns (rc, http_code, headers_text, body_bytes)."""
    with tempfile.TemporaryDirectory(prefix="cgcurl") as td:
        body = os.path.join(td, "body")
        hdrs = os.path.join(td, "headers")
        cmd = ["curl", "-sS", "--max-time", str(timeout(seconds)),
               "--cacert", pki.root.cert,
               "--resolve", "%s:%d:127.0.0.1" % (host, port),
               "-o", body, "-D", hdrs, "-w", "%{http_code}"]
        if cert is not None:
            cmd += ["--cert", cert.chain if chain else cert.cert,
                    "--key", cert.key]
        cmd += list(args)
        cmd.append("https://%s:%d%s" % (host, port, path))
        p = subprocess.run(cmd, capture_output=True, text=True,
                           timeout=timeout(seconds) + 5)
        b = open(body, "rb").read() if os.path.exists(body) else b""
        h = open(hdrs).read() if os.path.exists(hdrs) else ""
        return p.returncode, p.stdout.strip(), h, b


def s_client(pki, port, cert=None, sni="localhost", args=(), seconds=10,
             stdin=b""):
    """Runs `openssl s_client`; returns CompletedProcess (bytes)."""
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
           "-CAfile", pki.root.cert]
    if sni:
        cmd += ["-servername", sni]
    if cert is not None:
        cmd += ["-cert", cert.chain, "-key", cert.key]
    cmd += list(args)
    return subprocess.run(cmd, input=stdin, capture_output=True,
                          timeout=timeout(seconds))


def assert_error_answer(r, status):
    """An error answer from certgate: status, Content-Length, Connection."""
    assert r.status == status, r
    assert r.header("Content-Length") is not None, \
        "error answer without Content-Length: %r" % r
    assert r.header("Connection") is not None, \
        "error answer without Connection: %r" % r


def ws_client_handshake(conn, path="/ws", host="localhost", headers=()):
    """Sends a WebSocket upgrade on conn; returns (Response, key)."""
    key = base64.b64encode(os.urandom(16)).decode()
    hs = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
          ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]
    conn.send(build_request("GET", path, headers=hs + list(headers),
                            host=host))
    return conn.read_response(), key


def wait_readable(sock, seconds):
    r, _, _ = select.select([sock], [], [], timeout(seconds))
    return bool(r)


class ExternalServer:
    """A third-party daemon (mosquitto, HAProxy) started by a test on a
    loopback port, its stdout and stderr in log_path; ready once the
    port accepts, stopped by close()."""

    def start_process(self, argv, log_path, what):
        self.log_path = log_path
        self._log = open(log_path, "wb")
        self.proc = subprocess.Popen(argv, stdout=self._log,
                                     stderr=self._log)
        wait_for(self._up, 10, what=what)

    def _up(self):
        assert self.proc.poll() is None, self.log()
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
            return True
        except OSError:
            return False

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self._log.close()
