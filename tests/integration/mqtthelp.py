"""Helpers for the mqtt and tcp listener tests: a real mosquitto broker,
a capturing fake upstream, MQTT packets built byte by byte, TLS clients
and listener config builders."""

import os
import socket
import ssl
import subprocess
import threading
import time

import cgtest


def free_port():
    """A free 127.0.0.1 port (bound to 0, then released): mosquitto
    cannot listen on port 0 and report it."""
    return cgtest.closed_port()


# ---------------------------------------------------------------- packets

def vbi(n):
    out = bytearray()
    while True:
        b = n % 128
        n //= 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def mstr(b):
    if isinstance(b, str):
        b = b.encode()
    return len(b).to_bytes(2, "big") + b


def connect_packet(client_id="dev", level=4, username=None, password=None,
                   clean=True, keepalive=60, props=b"", name=None):
    flags = 0x02 if clean else 0
    payload = mstr(client_id)
    if username is not None:
        flags |= 0x80
        payload += mstr(username)
    if password is not None:
        flags |= 0x40
        payload += mstr(password)
    if name is None:
        name = "MQIsdp" if level == 3 else "MQTT"
    var = mstr(name) + bytes([level, flags]) + keepalive.to_bytes(2, "big")
    if level == 5:
        var += vbi(len(props)) + props
    body = var + payload
    return b"\x10" + vbi(len(body)) + body


def parse_connect(pkt):
    """Decodes a CONNECT (3.1.1 or 5.0) into a dict of raw bytes."""
    i = 1
    mult, rl = 1, 0
    while True:
        b = pkt[i]
        i += 1
        rl += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            break
    assert len(pkt) - i == rl, "remaining length %d vs %d" % (rl, len(pkt) - i)

    def rd(j):
        n = int.from_bytes(pkt[j:j + 2], "big")
        return pkt[j + 2:j + 2 + n], j + 2 + n
    name, i = rd(i)
    level, flags = pkt[i], pkt[i + 1]
    i += 4
    out = {"name": name, "level": level, "flags": flags}
    if level == 5:
        mult, pl, j = 1, 0, i
        while True:
            b = pkt[j]
            j += 1
            pl += (b & 0x7F) * mult
            mult *= 128
            if not b & 0x80:
                break
        out["props"] = pkt[j:j + pl]
        i = j + pl
    out["client_id"], i = rd(i)
    if flags & 0x04:
        if level == 5:
            raise NotImplementedError
        out["will_topic"], i = rd(i)
        out["will_payload"], i = rd(i)
    out["username"] = None
    out["password"] = None
    if flags & 0x80:
        out["username"], i = rd(i)
    if flags & 0x40:
        out["password"], i = rd(i)
    assert i == len(pkt)
    return out


def packet_len(buf):
    """Size of the first whole packet in buf, or None."""
    if len(buf) < 2:
        return None
    mult, rl, i = 1, 0, 1
    while i < len(buf):
        b = buf[i]
        i += 1
        rl += (b & 0x7F) * mult
        mult *= 128
        if not b & 0x80:
            return i + rl if len(buf) >= i + rl else None
    return None


# ------------------------------------------------------- fake upstream

class Capture:
    """A TCP upstream that records what each connection sends; answers a
    CONNECT with CONNACK accepted (3.1.1 or 5.0 form) and echoes nothing
    else. conns: list of bytearrays, one per accepted connection."""

    def __init__(self, connack=True, unix_path=None):
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.bind(unix_path)
            self.addr = "unix:" + unix_path
        else:
            self.sock = socket.socket()
            self.sock.bind(("127.0.0.1", 0))
            self.addr = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.sock.listen(16)
        self.connack = connack
        self.conns = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            buf = bytearray()
            with self.lock:
                self.conns.append(buf)
            threading.Thread(target=self._serve, args=(c, buf),
                             daemon=True).start()

    def _serve(self, c, buf):
        answered = False
        with c:
            while True:
                try:
                    d = c.recv(65536)
                except OSError:
                    return
                if not d:
                    return
                with self.lock:
                    buf.extend(d)
                n = packet_len(bytes(buf))
                if self.connack and not answered and n is not None:
                    answered = True
                    level = parse_connect(bytes(buf[:n]))["level"]
                    c.sendall(b"\x20\x03\x00\x00\x00" if level == 5
                              else b"\x20\x02\x00\x00")

    def first_connect(self, seconds=5):
        def get():
            with self.lock:
                for b in self.conns:
                    n = packet_len(bytes(b))
                    if n is not None:
                        return parse_connect(bytes(b[:n]))
            return None
        return cgtest.wait_for(get, seconds, what="CONNECT at the upstream")

    def received(self):
        with self.lock:
            return [bytes(b) for b in self.conns]

    def close(self):
        self.closed = True
        self.sock.close()


# ------------------------------------------------------------ mosquitto

class Mosquitto(cgtest.ExternalServer):
    """A real mosquitto on 127.0.0.1 whose ACL makes the user name and
    client id visible: a client may only use devices/<username>/# and
    clients/<clientid>/#; user "admin" reads everything."""

    def __init__(self, workdir):
        self.dir = str(workdir)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        acl = os.path.join(self.dir, "acl")
        with open(acl, "w") as f:
            f.write("user admin\ntopic read #\n\n"
                    "pattern readwrite devices/%u/#\n"
                    "pattern readwrite clients/%c/#\n")
        conf = os.path.join(self.dir, "mosquitto.conf")
        with open(conf, "w") as f:
            # as root, mosquitto drops to user "mosquitto", which cannot
            # read the test's private temp dir: stay who we are
            import pwd
            f.write("user %s\n" % pwd.getpwuid(os.getuid()).pw_name)
            f.write("per_listener_settings false\n"
                    "allow_anonymous true\n"
                    "acl_file %s\n"
                    "listener %d 127.0.0.1\n"
                    "log_dest stderr\n"
                    "log_type all\n"
                    "persistence false\n" % (acl, self.port))
        self.start_process(["mosquitto", "-c", conf],
                           os.path.join(self.dir, "mosquitto.log"),
                           "mosquitto listening")

    @property
    def addr(self):
        return "127.0.0.1:%d" % self.port


class Subscriber:
    """mosquitto_sub connected straight to the broker as admin."""

    def __init__(self, broker, topic="#", count=None):
        args = ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port),
                "-u", "admin", "-i", "admin-sub", "-t", topic, "-v"]
        if count:
            args += ["-C", str(count)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        # wait until mosquitto logs the subscription
        cgtest.wait_for(lambda: "admin-sub" in broker.log() and
                        "SUBSCRIBE" in broker.log(), 5,
                        what="subscriber ready")

    def lines(self, seconds=3):
        try:
            out, _ = self.proc.communicate(timeout=seconds)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            out, _ = self.proc.communicate()
        return out.decode().splitlines()


# ---------------------------------------------------------------- clients

def tls_connect(port, pki, cert=None, server_name="localhost"):
    ctx = ssl.create_default_context(cafile=pki.root.cert)
    if cert is not None:
        ctx.load_cert_chain(cert.chain, cert.key)
    s = socket.create_connection(("127.0.0.1", port), 5)
    return ctx.wrap_socket(s, server_hostname=server_name)


def read_until_close(s, seconds=5, limit=1 << 20):
    s.settimeout(seconds)
    out = b""
    deadline = time.monotonic() + seconds
    while len(out) < limit and time.monotonic() < deadline:
        try:
            d = s.recv(65536)
        except (ssl.SSLError, ConnectionResetError):
            break
        except socket.timeout:
            raise AssertionError("connection not closed; got %r" % out)
        if not d:
            break
        out += d
    return out


def exchange(port, pki, cert, data, chunks=None):
    """Sends data (whole, or in chunks of the given size, one TLS record
    each) and returns everything received until the close."""
    s = tls_connect(port, pki, cert)
    try:
        if chunks:
            for i in range(0, len(data), chunks):
                s.sendall(data[i:i + chunks])
        else:
            s.sendall(data)
        return read_until_close(s)
    finally:
        s.close()


def connack(s, seconds=5):
    s.settimeout(seconds)
    buf = b""
    while packet_len(buf) is None:
        d = s.recv(4096)
        if not d:
            break
        buf += d
    return buf


# ---------------------------------------------------------------- config

def mqtt_listener(name, pki, upstream, mode="required", trust="staff", **kw):
    d = {
        "name": name,
        "kind": "mqtt",
        "listen": "127.0.0.1:0",
        "certificates": [{"cert": pki.server.chain, "key": pki.server.key}],
        "client_auth": cgtest.client_auth(mode, trust),
        "upstream": upstream,
    }
    d.update(kw)
    return d


def tcp_listener(name, pki, upstream, mode="required", trust="staff", **kw):
    d = mqtt_listener(name, pki, upstream, mode, trust, **kw)
    d["kind"] = "tcp"
    return d


def builtin_ca_devices(tmp_path, names):
    """A built-in CA in tmp_path/data (`certgate ca init`) and a client
    certificate per name (`certgate ca issue client --cn NAME`). Returns
    (data_dir, {name: namespace(chain, key, serial)}, ca) where ca(*args)
    runs `certgate ca ...` and returns its stdout."""
    import re
    import types
    data, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()

    def ca(*args):
        r = cgtest.run_cli(["ca"] + [str(a) for a in args])
        assert r.returncode == 0, r.stderr
        return r.stdout
    ca("init", "--name", "Devices", "--data", data)
    devs = {}
    for cn in names:
        text = ca("issue", "client", "--cn", cn, "--data", data,
                  "--out-dir", out)
        devs[cn] = types.SimpleNamespace(
            chain=str(out / (cn + ".pem")), key=str(out / (cn + ".key")),
            serial=re.search(r"^serial: (\S+)$", text, re.M).group(1))
    return data, devs, ca


def closed_within(s, seconds):
    """True when the peer closes s (EOF or reset) within seconds (x3
    under the sanitizers)."""
    import time
    if os.environ.get("CG_SANITIZE") == "ON":
        seconds *= 3
    t0 = time.monotonic()
    s.settimeout(seconds + 2)
    try:
        while s.recv(4096):
            pass
    except (ConnectionError, OSError):
        pass
    return time.monotonic() - t0 < seconds
