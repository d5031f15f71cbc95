"""MQTT listener (kind "mqtt"): certificate identity mapped into the
CONNECT, password / JWT checks, refusals with exact CONNACK bytes, and a
real mosquitto whose %u / %c ACL shows which identity it saw."""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

import pytest

import cgtest
from mqtthelp import (Capture, Mosquitto, Subscriber, builtin_ca_devices,
                      closed_within, connack,
                      connect_packet, exchange, mqtt_listener, tls_connect,
                      vbi)

CONNACK_OK = b"\x20\x02\x00\x00"
NOT_AUTH_3 = b"\x20\x02\x00\x05"
NOT_AUTH_5 = b"\x20\x03\x00\x87\x00"
BAD_PW_3 = b"\x20\x02\x00\x04"
BAD_PW_5 = b"\x20\x03\x00\x86\x00"


@pytest.fixture
def capture():
    c = Capture()
    yield c
    c.close()


@pytest.fixture
def broker(tmp_path):
    b = Mosquitto(tmp_path / "mosquitto")
    yield b
    b.close()


def start(cg, pki, upstream, data_dir=None, mode="required", **kw):
    cfg = cgtest.config(pki, [mqtt_listener("mq", pki, upstream, mode=mode,
                                            **kw)])
    if data_dir is not None:
        cfg["data_dir"] = str(data_dir)
    return cg.start(cfg)


def through(cg, pki, capture, cert, pkt=None, **kw):
    """One CONNECT through a fresh daemon; returns (answer, CONNECT seen
    by the upstream or None)."""
    d = start(cg, pki, capture.addr, **kw)
    s = tls_connect(d.port("mq"), pki, cert)
    s.sendall(pkt or connect_packet("typed-id", username="typed-user"))
    ans = connack(s)
    s.close()
    return d, ans


# --------------------------------------------------------------- mapping

def emqx_dn(cert):
    """EMQX dn form: RDNs most specific first, joined by ','."""
    return ",".join(a.rfc4514_string() for rdn in
                    reversed(cert.x509.subject.rdns) for a in rdn)


@pytest.mark.parametrize("mode", ["cn", "dn", "pem", "md5", "sha256",
                                  "email", "crt"])
def test_mapping_modes_byte_exact(cg, pki, capture, mode):
    c = pki.alice
    want = {
        "cn": b"alice",
        "dn": emqx_dn(c).encode(),
        "pem": base64.b64encode(c.der),
        "md5": hashlib.md5(c.der).hexdigest().encode(),
        "sha256": hashlib.sha256(c.der).hexdigest().encode(),
        "email": b"alice@example.com",
        "crt": c.der,
    }[mode]
    d, ans = through(cg, pki, capture, c, peer_cert_as_username=mode,
                     peer_cert_as_clientid=mode)
    assert ans == CONNACK_OK
    got = capture.first_connect()
    assert got["username"] == want
    assert got["client_id"] == want
    opened = d.wait_log(lambda r: r.get("event") == "relay_open")
    assert opened["cn"] == "alice" and opened["protocol_level"] == 4


def test_default_maps_cn_keeps_client_id(cg, pki, capture):
    d, ans = through(cg, pki, capture, pki.bob)
    assert ans == CONNACK_OK
    got = capture.first_connect()
    assert got["username"] == b"bob"
    assert got["client_id"] == b"typed-id"


def test_missing_field_refused(cg, pki, capture):
    # noemail has no email: 3.1.1 0x05, 5.0 0x87, nothing forwarded
    d, ans = through(cg, pki, capture, pki.noemail,
                     peer_cert_as_username="email")
    assert ans == NOT_AUTH_3
    s = tls_connect(d.port("mq"), pki, pki.noemail)
    s.sendall(connect_packet("x", level=5))
    assert connack(s) == NOT_AUTH_5
    s.close()
    assert capture.received() == []
    rec = d.wait_log(lambda r: r.get("event") == "mqtt_refused")
    assert rec["reason"] == "not_authorized"
    assert rec["detail"] == "missing_field"


def test_san_uri_missing(cg, pki, capture):
    d, ans = through(cg, pki, capture, pki.alice,
                     peer_cert_as_clientid="san_uri")
    assert ans == NOT_AUTH_3
    assert capture.received() == []


def test_unsafe_value_refused(cg, pki, capture):
    # CN 'Smith, John+Jr "Q"' holds '+': refused in cn mode
    d, ans = through(cg, pki, capture, pki.special)
    assert ans == NOT_AUTH_3
    assert capture.received() == []
    rec = d.wait_log(lambda r: r.get("event") == "mqtt_refused")
    assert rec["detail"] == "unsafe_value"


def test_optional_mode_without_cert(cg, pki, capture):
    d = start(cg, pki, capture.addr, mode="optional")
    s = tls_connect(d.port("mq"), pki, None)
    s.sendall(connect_packet("x"))
    assert connack(s) == NOT_AUTH_3
    s.close()
    assert capture.received() == []


def test_optional_mode_mapping_disabled_passes(cg, pki, capture):
    d = start(cg, pki, capture.addr, mode="optional",
              peer_cert_as_username="disabled")
    s = tls_connect(d.port("mq"), pki, None)
    s.sendall(connect_packet("anon", username="u1", password="p1"))
    assert connack(s) == CONNACK_OK
    s.close()
    got = capture.first_connect()
    assert got["username"] == b"u1" and got["password"] == b"p1"
    assert got["client_id"] == b"anon"


def test_required_mode_refuses_handshake(cg, pki, capture):
    d = start(cg, pki, capture.addr)
    with pytest.raises(Exception):
        s = tls_connect(d.port("mq"), pki, pki.other_signed)
        s.sendall(connect_packet("x"))
        assert connack(s) == b""
    assert capture.received() == []


# ------------------------------------------------------------- password

def add_user(data_dir, name, email, password, disabled=False):
    r = subprocess.run([cgtest.CERTGATE_BIN, "user", "add", name, "--email",
                        email, "--password-stdin", "--data", str(data_dir)],
                       input=password + "\n", capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if disabled:
        r = subprocess.run([cgtest.CERTGATE_BIN, "user", "disable", name,
                            "--data", str(data_dir)],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr


@pytest.fixture
def users(tmp_path):
    dd = tmp_path / "data"
    add_user(dd, "alice", "alice@example.com", "s3cret-alice")
    add_user(dd, "bob", "bob@other.org", "s3cret-bob", disabled=True)
    return dd


@pytest.mark.parametrize("level", [4, 5])
def test_password_auth(cg, pki, capture, users, level):
    d = start(cg, pki, capture.addr, data_dir=users,
              auth={"password": True})
    port = d.port("mq")
    ok = CONNACK_OK if level == 4 else b"\x20\x03\x00\x00\x00"
    bad = BAD_PW_3 if level == 4 else BAD_PW_5
    notauth = NOT_AUTH_3 if level == 4 else NOT_AUTH_5

    def attempt(cert, pw, user="ignored"):
        s = tls_connect(port, pki, cert)
        s.sendall(connect_packet("c", level=level, username=user,
                                 password=pw))
        a = connack(s)
        s.close()
        return a
    assert attempt(pki.alice, "wrong") == bad
    assert attempt(pki.alice, None, user=None) == bad
    assert attempt(pki.bob, "s3cret-bob") == notauth  # disabled user
    assert attempt(pki.carol, "s3cret-alice") == bad  # no such user
    assert capture.received() == []
    assert attempt(pki.alice, "s3cret-alice") == ok
    got = capture.first_connect()
    assert got["username"] == b"alice"
    assert got["password"] is None  # checked by certgate, not forwarded


def test_password_user_found_by_email(cg, pki, capture, users):
    # username mapped to md5: no user of that name; found by the email
    d = start(cg, pki, capture.addr, data_dir=users,
              auth={"password": True}, peer_cert_as_username="md5")
    s = tls_connect(d.port("mq"), pki, pki.alice)
    s.sendall(connect_packet("c", username="x", password="s3cret-alice"))
    assert connack(s) == CONNACK_OK
    s.close()


# ------------------------------------------------------------------ JWT

SECRET = "0123456789abcdef0123456789abcdef-secret"


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def hs256(claims, secret=SECRET, alg="HS256"):
    h = b64u(json.dumps({"alg": alg, "typ": "JWT"}).encode())
    p = b64u(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), (h + "." + p).encode(),
                   hashlib.sha256).digest()
    return h + "." + p + "." + b64u(sig)


@pytest.mark.parametrize("level", [4, 5])
def test_jwt_auth(cg, pki, capture, level):
    d = start(cg, pki, capture.addr, auth={"jwt": {"secret": SECRET}})
    port = d.port("mq")
    now = int(time.time())
    ok = CONNACK_OK if level == 4 else b"\x20\x03\x00\x00\x00"
    bad = BAD_PW_3 if level == 4 else BAD_PW_5

    def attempt(tok):
        s = tls_connect(port, pki, pki.alice)
        s.sendall(connect_packet("c", level=level, username="u",
                                 password=tok))
        a = connack(s)
        s.close()
        return a
    assert attempt(hs256({"sub": "bob", "exp": now + 60})) == bad
    assert attempt(hs256({"sub": "alice", "exp": now - 120})) == bad
    assert attempt(hs256({"sub": "alice", "exp": now + 60},
                         secret=SECRET + "x")) == bad
    assert attempt(hs256({"sub": "alice"})) == bad
    assert attempt("not-a-jwt") == bad
    assert capture.received() == []
    assert attempt(hs256({"sub": "alice", "exp": now + 60})) == ok
    assert capture.first_connect()["username"] == b"alice"


def test_jwt_enhanced_auth_refused(cg, pki, capture):
    d = start(cg, pki, capture.addr, auth={"jwt": {"secret": SECRET}})
    s = tls_connect(d.port("mq"), pki, pki.alice)
    props = b"\x15" + (5).to_bytes(2, "big") + b"SCRAM"
    s.sendall(connect_packet("c", level=5, props=props))
    assert connack(s) == b"\x20\x03\x00\x8c\x00"
    s.close()
    assert capture.received() == []


# ------------------------------------------------------ malformed input

MALFORMED = {
    # first packet not CONNECT: close, no CONNACK
    "not_connect": (b"\x30\x02\x00\x00", b""),
    # remaining length over 4 bytes
    "bad_remaining_length": (b"\x10\xff\xff\xff\xff\x7f", b""),
    # non-minimal remaining length
    "non_minimal": (b"\x10\x80\x00", b""),
    # bad protocol name
    "protocol_name": (connect_packet("x", name="MQTX"), b""),
    # bad level for MQTT: CONNACK 0x01
    "level_3_mqtt": (connect_packet("x", level=3, name="MQTT"),
                     b"\x20\x02\x00\x01"),
    "level_6": (connect_packet("x", level=6), b"\x20\x03\x00\x84\x00"),
    # invalid UTF-8 in the client id: 3.1.1 close, 5.0 0x81
    "bad_utf8_311": (connect_packet(b"\xc3\x28"), b""),
    "bad_utf8_5": (connect_packet(b"\xc3\x28", level=5),
                   b"\x20\x03\x00\x81\x00"),
    # too large for max_connect_bytes (1024): 3.1.1 close, 5.0 0x95
    "too_large_311": (connect_packet("x" * 2000), b""),
    "too_large_5": (connect_packet("x" * 2000, level=5),
                    b"\x20\x03\x00\x95\x00"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_connect(cg, pki, capture, case):
    pkt, want = MALFORMED[case]
    d = start(cg, pki, capture.addr, max_connect_bytes=1024)
    got = exchange(d.port("mq"), pki, pki.alice, pkt)
    assert got == want
    time.sleep(0.1)
    assert capture.received() == []
    d.wait_log(lambda r: r.get("event") == "mqtt_refused")


def test_connect_split_across_records(cg, pki, capture):
    d = start(cg, pki, capture.addr)
    pkt = connect_packet("split-id", level=5, username="u",
                         props=b"\x11\x00\x00\x00\x3c")
    s = tls_connect(d.port("mq"), pki, pki.alice)
    for i in range(len(pkt)):
        s.sendall(pkt[i:i + 1])
        if i == 10:
            time.sleep(0.05)
            assert capture.received() == []  # nothing forwarded yet
    assert connack(s) == b"\x20\x03\x00\x00\x00"
    s.close()
    got = capture.first_connect()
    assert got["client_id"] == b"split-id"
    assert got["username"] == b"alice"
    assert got["props"] == b"\x11\x00\x00\x00\x3c"


def test_bytes_after_connect_follow_it(cg, pki, capture):
    d = start(cg, pki, capture.addr)
    pingreq = b"\xc0\x00"
    s = tls_connect(d.port("mq"), pki, pki.alice)
    s.sendall(connect_packet("x") + pingreq + connect_packet("again"))
    assert connack(s) == CONNACK_OK

    def done():
        r = capture.received()
        return r and r[0].endswith(pingreq + connect_packet("again"))
    cgtest.wait_for(done, 5, what="second CONNECT passed through")
    s.close()


def test_header_timeout(cg, pki, capture):
    d = start(cg, pki, capture.addr, timeouts={"header": "300ms"})
    s = tls_connect(d.port("mq"), pki, pki.alice)
    s.sendall(b"\x10")
    assert s.recv(10) == b""
    s.close()


def test_idle_timeout_follows_keepalive(cg, pki, capture):
    """timeouts.idle closes a silent session, but never before 1.5 x the
    keep-alive the client announced: a client that pings in time stays."""
    d = start(cg, pki, capture.addr, timeouts={"idle": "400ms"})
    pingreq = b"\xc0\x00"
    s = tls_connect(d.port("mq"), pki, pki.alice)
    s.sendall(connect_packet("ka", keepalive=1))
    assert connack(s) == CONNACK_OK
    time.sleep(1.0)  # > idle, < 1.5 x keep-alive
    s.sendall(pingreq)
    cgtest.wait_for(lambda: capture.received() and
                    capture.received()[0].endswith(pingreq), 5,
                    what="PINGREQ after 1 s of silence passed through")
    t0 = time.monotonic()
    s.settimeout(5)
    assert s.recv(10) == b""  # then silent past 1.5 s: closed
    assert 1.2 < time.monotonic() - t0 < 3.5
    s.close()

    s = tls_connect(d.port("mq"), pki, pki.alice)
    s.sendall(connect_packet("no-ka", keepalive=0))
    assert connack(s) == CONNACK_OK
    t0 = time.monotonic()
    s.settimeout(5)
    assert s.recv(10) == b""  # no keep-alive: timeouts.idle alone
    assert time.monotonic() - t0 < 1.2
    s.close()
    d.wait_log(lambda r: r.get("reason") == "idle_timeout", 5)


def test_upstream_unreachable(cg, pki):
    d = start(cg, pki, "127.0.0.1:%d" % cgtest.closed_port())
    s = tls_connect(d.port("mq"), pki, pki.alice)
    s.sendall(connect_packet("x"))
    assert connack(s) == b"\x20\x02\x00\x03"
    s.close()


# ------------------------------------------------------- real mosquitto

def mosquitto_pub(port, pki, cert, topic, msg, extra=()):
    return subprocess.run(
        ["mosquitto_pub", "-h", "127.0.0.1", "-p", str(port),
         "--cafile", pki.root.cert, "--cert", cert.chain, "--key", cert.key,
         "--insecure", "-t", topic, "-m", msg, "-q", "1"] + list(extra),
        capture_output=True, text=True, timeout=10)


def test_mosquitto_acl_sees_mapped_username(cg, pki, broker):
    d = start(cg, pki, broker.addr)
    sub = Subscriber(broker, "devices/#", count=1)
    # to another user's topic: the broker's ACL drops it
    r = mosquitto_pub(d.port("mq"), pki, pki.alice, "devices/bob/x", "no",
                      ["-u", "bob"])
    assert r.returncode == 0, r.stderr
    r = mosquitto_pub(d.port("mq"), pki, pki.alice, "devices/alice/x", "yes",
                      ["-u", "bob"])
    assert r.returncode == 0, r.stderr
    assert sub.lines() == ["devices/alice/x yes"]


def test_mosquitto_acl_sees_mapped_clientid(cg, pki, broker):
    d = start(cg, pki, broker.addr, peer_cert_as_username="disabled",
              peer_cert_as_clientid="sha256")
    sub = Subscriber(broker, "clients/#", count=1)
    cid = pki.carol.sha256
    r = mosquitto_pub(d.port("mq"), pki, pki.carol, "clients/typed/x", "no",
                      ["-i", "typed"])
    assert r.returncode == 0, r.stderr
    r = mosquitto_pub(d.port("mq"), pki, pki.carol, "clients/%s/x" % cid,
                      "yes", ["-i", "typed"])
    assert r.returncode == 0, r.stderr
    assert sub.lines() == ["clients/%s/x yes" % cid]


@pytest.mark.parametrize("v5", [False, True])
def test_paho_through_certgate(cg, pki, broker, v5):
    import paho.mqtt.client as mqtt
    d = start(cg, pki, broker.addr)
    sub = Subscriber(broker, "devices/#", count=1)
    proto = mqtt.MQTTv5 if v5 else mqtt.MQTTv311
    c = mqtt.Client(client_id="paho-dev", protocol=proto)
    c.tls_set(ca_certs=pki.root.cert, certfile=pki.alice.chain,
              keyfile=pki.alice.key)
    c.tls_insecure_set(True)
    got = []
    c.on_connect = lambda cl, u, f, rc, *a: got.append(rc)
    c.connect("127.0.0.1", d.port("mq"), 30)
    c.loop_start()
    cgtest.wait_for(lambda: got, 5, what="paho CONNACK")
    assert got[0] == 0
    info = c.publish("devices/alice/p", b"hi", qos=1)
    info.wait_for_publish(5)
    c.disconnect()
    c.loop_stop()
    assert sub.lines() == ["devices/alice/p hi"]
    d.wait_log(lambda r: r.get("event") == "relay_close" and
               r.get("bytes_up", 0) > 0)


# ------------------------------------------------------------ revocation

def test_revoked_device_refused_and_closed(cg, pki, capture, tmp_path):
    """Built-in CA of data_dir: `certgate ca revoke` closes the device's
    open MQTT session within a second and refuses new ones."""
    data, devs, ca = builtin_ca_devices(tmp_path, ("dev1", "dev2"))
    cfg = cgtest.config(pki, [mqtt_listener("mq", pki, capture.addr,
                                            trust="devices")],
                        data_dir=str(data))
    cfg["trust"]["devices"] = {"builtin_ca": True}
    d = cg.start(cfg)
    s1 = tls_connect(d.port("mq"), pki, devs["dev1"])
    s1.sendall(connect_packet("c1"))
    assert connack(s1) == CONNACK_OK
    s2 = tls_connect(d.port("mq"), pki, devs["dev2"])
    s2.sendall(connect_packet("c2"))
    assert connack(s2) == CONNACK_OK
    ca("revoke", devs["dev1"].serial, "--data", data)
    assert closed_within(s1, 1.5)
    d.wait_log(lambda r: r.get("event") == "connection_refused_now" and
               r.get("reason") == "revoked" and r.get("cn") == "dev1")
    # dev2 is untouched
    s2.sendall(b"\xc0\x00")
    cgtest.wait_for(lambda: any(b.endswith(b"\xc0\x00")
                                for b in capture.received()), 5,
                    what="PINGREQ from dev2")
    s2.close()
    s1.close()
    with pytest.raises((ConnectionError, OSError)):
        s = tls_connect(d.port("mq"), pki, devs["dev1"])
        s.sendall(connect_packet("c1"))
        assert connack(s) != b""
