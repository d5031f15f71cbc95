"""Prometheus metrics (builtin:metrics) scraped with curl over mTLS from a
real daemon, after real actions: refused handshakes by reason, answered
requests by class and route, report-mode would-refuse, MQTT CONNECTs and
per-identity series (escaping, cardinality cap), TCP sessions, a live
revocation close, reloads, and a stale CRL in its grace. Also the static
answer of a route ("respond") and the config checks of both."""

import copy
import json
import re
import ssl
import time

import pytest

import cgtest
from cgtest import config, curl, get, listener, refused, route, run_cli
from mqtthelp import (Capture, connack, connect_packet, mqtt_listener,
                      read_until_close, tcp_listener, tls_connect)
from test_tcp import Server

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+]+|NaN)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def unescape(v):
    return re.sub(r'\\(.)', lambda m: {"n": "\n"}.get(m.group(1),
                                                     m.group(1)), v)


def parse(text):
    """Strict parse of the text exposition 0.0.4: every family declared
    once (HELP then TYPE) before its samples, samples of a family
    together, label values well-formed. Returns {(name, labels): value}
    with labels a tuple of sorted (key, unescaped value) pairs."""
    out, typed, done, current = {}, {}, set(), None
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            name = line.split(" ")[2]
            assert name not in typed and name not in done, line
            if current:
                done.add(current)
            current = name
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name == current and kind in ("counter", "gauge"), line
            typed[name] = kind
            continue
        m = LINE.match(line)
        assert m, "bad sample line %r" % line
        name, labels = m.group(1), m.group(3) or ""
        assert name == current, "%s outside its family %s" % (name, current)
        pairs, pos = [], 0
        while pos < len(labels):
            lm = LABEL.match(labels, pos)
            assert lm, "bad labels %r" % labels
            pairs.append((lm.group(1), unescape(lm.group(2))))
            pos = lm.end()
        key = (name, tuple(sorted(pairs)))
        assert key not in out, "duplicate series %r" % (key,)
        out[key] = float(m.group(4))
    assert text.endswith("\n")
    return out


def val(m, name, **labels):
    """The value of one series (0 when absent)."""
    want = tuple(sorted(labels.items()))
    for (n, ls), v in m.items():
        if n == name and all(p in ls for p in want):
            return v
    return 0


def series(m, name, **labels):
    want = labels.items()
    return {ls: v for (n, ls), v in m.items()
            if n == name and all(p in ls for p in want)}


METRICS_ROUTE = {"path": "/metrics", "upstream": "builtin:metrics",
                 "allow": {"cn": ["alice"]}}


def admin(pki, **kw):
    """An https listener with the metrics route for alice only."""
    return listener("admin", pki, [METRICS_ROUTE], **kw)


def scrape(pki, d, cert=None, listener="admin"):
    rc, code, hdrs, body = curl(pki, d.port(listener), "/metrics",
                                cert=cert or pki.alice)
    assert rc == 0 and code == "200", (rc, code, body)
    assert re.search(r"(?im)^content-type: text/plain; version=0\.0\.4",
                     hdrs), hdrs
    return parse(body.decode("utf-8"))


def wait_metric(pki, d, pred, what, seconds=5):
    last = {}

    def ok():
        last["m"] = scrape(pki, d)
        return pred(last["m"])
    try:
        return cgtest.wait_for(ok, seconds, interval=0.1, what=what) and \
            last["m"]
    except AssertionError:
        raise AssertionError("%s; last scrape:\n%s" % (what, json.dumps(
            {"%s%s" % k: v for k, v in last.get("m", {}).items()},
            indent=1)[:6000]))


# -- exposition ---------------------------------------------------------------

def test_exposition_format_and_process(cg, pki, upstream):
    d = cg.start(config(pki, [listener("web", pki, [route(upstream)]),
                              admin(pki)]))
    m = scrape(pki, d)
    assert val(m, "certgate_workers") == 2
    assert abs(val(m, "certgate_process_start_time_seconds") -
               time.time()) < 600
    assert val(m, "certgate_config_generation") == 1
    assert val(m, "certgate_reloads_total", result="ok") == 0
    assert val(m, "certgate_config_last_reload_successful") == 1
    # every listener exposes its connection counters
    assert series(m, "certgate_connections_accepted_total", listener="web")
    assert val(m, "certgate_connections_open", listener="admin",
               kind="https") >= 1
    assert val(m, "certgate_identities_max") == 10000
    # HEAD gets the headers only
    r = get(pki, d.port("admin"), "/metrics", cert=pki.alice, method="HEAD")
    assert r.status == 200 and r.body == b""
    assert int(r.header("Content-Length")) > 1000


def test_metrics_route_refusals(cg, pki, upstream):
    """The metrics route is protected by the route policy and the
    listener's mTLS: no certificate, another identity, an untrusted one."""
    d = cg.start(config(pki, [admin(pki, mode="optional")]))
    port = d.port("admin")
    assert get(pki, port, "/metrics").status == 403
    assert get(pki, port, "/metrics", cert=pki.bob).status == 403
    assert get(pki, port, "/metrics", cert=pki.other_signed).status == 403
    r = get(pki, port, "/metrics", cert=pki.alice)
    assert r.status == 200 and b"certgate_workers 2" in r.body


# -- TLS -----------------------------------------------------------------------

def test_refused_handshakes_by_reason(cg, pki, upstream):
    d = cg.start(config(pki, [listener("web", pki, [route(upstream)]),
                              admin(pki)]))
    port = d.port("web")
    for cert in (None, pki.other_signed, pki.expired, pki.other_signed):
        assert refused(pki, port, cert) is not None
    assert get(pki, port, "/", cert=pki.alice).status == 200
    m = wait_metric(pki, d, lambda m: val(
        m, "certgate_tls_handshake_failures_total", listener="web",
        reason="untrusted") == 2, "two untrusted refusals")
    assert val(m, "certgate_tls_handshake_failures_total", listener="web",
               reason="no_cert") == 1
    assert val(m, "certgate_tls_handshake_failures_total", listener="web",
               reason="expired") == 1
    assert val(m, "certgate_tls_handshakes_total", listener="web") == 1
    assert val(m, "certgate_connections_accepted_total", listener="web") == 5
    assert val(m, "certgate_connections_open", listener="web") == 0
    assert val(m, "certgate_http_requests_total", listener="web",
               **{"class": "2xx"}) == 1


def test_handshake_timeouts_counted(cg, pki, upstream, capture):
    """A client that opens TCP and never finishes its handshake is cut
    off by timeouts.handshake and counted as reason="timeout", on an
    https and on an mqtt listener."""
    import socket
    d = cg.start(config(pki, [
        listener("web", pki, [route(upstream)],
                 timeouts={"handshake": "300ms"}),
        mqtt_listener("mq", pki, capture.addr,
                      timeouts={"handshake": "300ms"}),
        admin(pki)]))
    for name in ("web", "mq"):
        s = socket.create_connection(("127.0.0.1", d.port(name)))
        s.sendall(b"\x16\x03\x01")  # a ClientHello that never ends
        s.settimeout(5)
        assert s.recv(10) == b""
        s.close()
    m = wait_metric(pki, d, lambda m: all(
        val(m, "certgate_tls_handshake_failures_total", listener=n,
            reason="timeout") == 1 for n in ("web", "mq")),
        "a handshake timeout on each listener")
    assert val(m, "certgate_connections_open", listener="web") == 0
    assert val(m, "certgate_connections_open", listener="mq") == 0


def test_resumed_handshakes(cg, pki, upstream):
    d = cg.start(config(pki, [listener("web", pki, [route(upstream)]),
                              admin(pki)]))
    ctx = cgtest.client_ctx(pki, pki.alice, max_version=ssl.TLSVersion.TLSv1_2)
    with cgtest.connect(pki, d.port("web"), ctx=ctx) as c:
        c.request("GET", "/", close=True)
        sess = c.session
    with cgtest.Conn(d.port("web"), ctx, session=sess) as c:
        assert c.session_reused
        c.request("GET", "/", close=True)
    m = scrape(pki, d)
    assert val(m, "certgate_tls_resumed_total", listener="web") == 1
    assert val(m, "certgate_tls_handshakes_total", listener="web") == 2


def session_of(pki, port):
    """A TLS 1.2 session of alice's (one request on a new connection)."""
    ctx = cgtest.client_ctx(pki, pki.alice, max_version=ssl.TLSVersion.TLSv1_2)
    with cgtest.connect(pki, port, ctx=ctx) as c:
        c.request("GET", "/", close=True)
        return ctx, c.session


def resumes(port, ctx, sess):
    with cgtest.Conn(port, ctx, session=sess) as c:
        reused = c.session_reused
        c.request("GET", "/", close=True)
        return reused


def test_session_cache_bound(cg, pki, upstream, tmp_path):
    """session_cache.max_entries bounds the cache (least recently used
    dropped first), 0 turns resumption off, a reload applies a new bound
    to the cache as it is, and the gauges show it."""
    cfg = config(pki, [listener("web", pki, [route(upstream)]),
                       admin(pki)], session_cache={"max_entries": 2})
    d = cg.start(cfg)
    port = d.port("web")
    sessions = [session_of(pki, port) for _ in range(3)]
    m = scrape(pki, d)  # the scrape's own session is cached too
    assert val(m, "certgate_tls_session_cache_max_entries") == 2
    assert val(m, "certgate_tls_session_cache_entries") == 2
    assert resumes(port, *sessions[2])
    assert not resumes(port, *sessions[0])  # pushed out
    cfg["session_cache"] = {"max_entries": 0}
    d.reload(cfg)
    m = wait_metric(pki, d, lambda m: val(
        m, "certgate_tls_session_cache_max_entries") == 0, "bound 0")
    assert val(m, "certgate_tls_session_cache_entries") == 0
    ctx, sess = session_of(pki, port)
    assert not resumes(port, ctx, sess)
    assert val(scrape(pki, d), "certgate_tls_session_cache_entries") == 0


def test_report_mode_would_refuse(cg, pki, upstream):
    d = cg.start(config(pki, [listener("web", pki, [route(upstream)],
                                       mode="report"), admin(pki)]))
    assert get(pki, d.port("web"), "/", cert=pki.expired).status == 200
    assert get(pki, d.port("web"), "/").status == 200
    m = scrape(pki, d)
    assert val(m, "certgate_tls_would_refuse_total", listener="web",
               reason="expired") == 1
    assert val(m, "certgate_tls_would_refuse_total", listener="web",
               reason="no_cert") == 1
    assert val(m, "certgate_tls_handshake_failures_total",
               listener="web") == 0


# -- HTTP ----------------------------------------------------------------------

def test_requests_by_class_route_and_upstream_errors(cg, pki, upstream):
    dead = cgtest.closed_port()
    d = cg.start(config(pki, [listener("web", pki, [
        route(upstream, path="/app"),
        route("http://127.0.0.1:%d" % dead, path="/down"),
    ]), admin(pki)]))
    port = d.port("web")
    with cgtest.connect(pki, port, pki.alice) as c:
        for _ in range(3):
            assert c.request("GET", "/app/x").status == 200
    assert get(pki, port, "/elsewhere", cert=pki.alice).status == 404
    assert get(pki, port, "/down", cert=pki.alice).status == 502
    m = scrape(pki, d)
    assert val(m, "certgate_http_requests_total", listener="web",
               **{"class": "2xx"}) == 3
    assert val(m, "certgate_http_requests_total", listener="web",
               **{"class": "4xx"}) == 1
    assert val(m, "certgate_http_requests_total", listener="web",
               **{"class": "5xx"}) == 1
    assert val(m, "certgate_http_route_requests_total", listener="web",
               route="*/app", **{"class": "2xx"}) == 3
    assert val(m, "certgate_http_route_requests_total", listener="web",
               route="*/down", **{"class": "5xx"}) == 1
    # a refused connect shows as upstream_closed (non-blocking connect)
    assert sum(series(m, "certgate_upstream_errors_total",
                      listener="web").values()) == 1
    # the scrape itself is counted on the admin route
    assert val(m, "certgate_http_route_requests_total", listener="admin",
               route="*/metrics", **{"class": "2xx"}) == 0
    m = scrape(pki, d)
    assert val(m, "certgate_http_route_requests_total", listener="admin",
               route="*/metrics", **{"class": "2xx"}) == 1


# -- MQTT and TCP ----------------------------------------------------------------

@pytest.fixture
def capture():
    c = Capture()
    yield c
    c.close()


def test_mqtt_connects_and_identities(cg, pki, capture):
    d = cg.start(config(pki, [mqtt_listener("mq", pki, capture.addr),
                              admin(pki)]))
    s = tls_connect(d.port("mq"), pki, pki.alice)
    s.sendall(connect_packet("dev-a"))
    assert connack(s) == b"\x20\x02\x00\x00"
    m = scrape(pki, d)
    assert val(m, "certgate_mqtt_connects_total", listener="mq",
               result="accepted", connack="0x00") == 1
    assert val(m, "certgate_identity_connections_total", listener="mq",
               identity="alice") == 1
    assert val(m, "certgate_identity_connections_open", listener="mq",
               identity="alice") == 1
    s.close()
    wait_metric(pki, d, lambda m: val(
        m, "certgate_identity_connections_open", listener="mq",
        identity="alice") == 0, "alice's session closed")
    # a refusal: no certificate where the mapping needs one (optional)
    d2 = cg.start(config(pki, [mqtt_listener("mq", pki, capture.addr,
                                             mode="optional"),
                               admin(pki)]))
    s = tls_connect(d2.port("mq"), pki, None)
    s.sendall(connect_packet("dev-b", level=5))
    assert connack(s) == b"\x20\x03\x00\x87\x00"
    s.close()
    s = tls_connect(d2.port("mq"), pki, pki.alice)
    s.sendall(b"\x10\x01\x00")  # malformed, closed without a CONNACK
    read_until_close(s)
    s.close()
    m = wait_metric(pki, d2, lambda m: val(
        m, "certgate_mqtt_connects_total", listener="mq",
        result="malformed") == 1, "malformed CONNECT counted")
    assert val(m, "certgate_mqtt_connects_total", listener="mq",
               result="not_authorized", connack="0x87") == 1
    assert series(m, "certgate_mqtt_connects_total", result="malformed")


def test_identity_escaping_and_cap(cg, pki, capture):
    """Client-chosen user names (mapping disabled) as label values: quotes,
    backslashes and newlines escaped; beyond max_identities: __other__."""
    d = cg.start(config(pki, [mqtt_listener(
        "mq", pki, capture.addr, peer_cert_as_username="disabled"),
        admin(pki)], metrics={"max_identities": 2}))
    names = ['a"b\\c\nd', "second", "third", "fourth"]
    for n in names:
        s = tls_connect(d.port("mq"), pki, pki.alice)
        s.sendall(connect_packet("id", username=n))
        assert connack(s) == b"\x20\x02\x00\x00"
        s.close()
    m = scrape(pki, d)
    ids = {dict(ls)["identity"]: v for ls, v in series(
        m, "certgate_identity_connections_total", listener="mq").items()}
    assert ids == {'a"b\\c\nd': 1, "second": 1, "__other__": 2}, ids
    assert val(m, "certgate_identities_tracked") == 2
    assert val(m, "certgate_identities_max") == 2


def test_tcp_sessions_and_identity(cg, pki):
    e = Server(False)  # echoes upper-cased
    d = cg.start(config(pki, [tcp_listener("db", pki, e.addr), admin(pki)]))
    for cert in (pki.alice, pki.carol):
        s = tls_connect(d.port("db"), pki, cert)
        s.sendall(b"ping")
        s.settimeout(5)
        assert s.recv(4) == b"PING"
        s.close()
    assert refused(pki, d.port("db"), pki.other_signed) is not None
    m = wait_metric(pki, d, lambda m: val(
        m, "certgate_connections_open", listener="db") == 0,
        "tcp sessions closed")
    assert val(m, "certgate_tcp_sessions_total", listener="db") == 2
    assert val(m, "certgate_identity_connections_total", listener="db",
               identity="carol") == 1
    assert val(m, "certgate_tls_handshake_failures_total", listener="db",
               reason="untrusted") == 1
    e.close()


# -- revocation, reload, CRLs ------------------------------------------------------

def test_live_revocation_close_counted(cg, pki, upstream, tmp_path):
    from test_revocation_live import ca, wait_closed
    import types
    data, out = tmp_path / "data", tmp_path / "out"
    out.mkdir()
    ca("init", "--name", "Devices", "--data", data)
    text = ca("issue", "client", "--cn", "dev1", "--data", data,
              "--out-dir", out)
    serial = re.search(r"^serial: (\S+)$", text, re.M).group(1)
    dev = types.SimpleNamespace(cert=str(out / "dev1.pem"),
                                key=str(out / "dev1.key"))
    c = config(pki, [listener("web", pki, [route(upstream)],
                              trust="devices"), admin(pki)],
               data_dir=str(data))
    c["trust"]["devices"] = {"builtin_ca": True}
    d = cg.start(c)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.root.cert)
    ctx.load_cert_chain(dev.cert, dev.key)
    conn = cgtest.connect(pki, d.port("web"), ctx=ctx)
    assert conn.request("GET", "/").status == 200
    ca("revoke", serial, "--data", data)
    assert wait_closed(conn, cgtest.timeout(5)) is not None
    conn.close()
    m = wait_metric(pki, d, lambda m: val(
        m, "certgate_recheck_closed_total", listener="web",
        reason="revoked") == 1, "revocation close counted")
    assert val(m, "certgate_revocation_rebuilds_total", result="ok") >= 1
    assert val(m, "certgate_revocation_generation") >= 1
    assert val(m, "certgate_crl_entries", trust="devices") == 1


def test_reloads_counted(cg, pki, upstream):
    cfg = config(pki, [listener("web", pki, [route(upstream)]), admin(pki)])
    d = cg.start(cfg)
    get(pki, d.port("web"), "/", cert=pki.alice)
    cfg2 = copy.deepcopy(cfg)
    cfg2["listeners"][0]["routes"].append(
        {"path": "/ok", "respond": {"status": 200}})
    d.reload(cfg2)
    bad = copy.deepcopy(cfg2)
    bad["listeners"][0]["client_auth"]["mode"] = "sometimes"
    d.reload(bad, expect_ok=False)
    m = scrape(pki, d)
    assert val(m, "certgate_reloads_total", result="ok") == 1
    assert val(m, "certgate_reloads_total", result="failed") == 1
    assert val(m, "certgate_config_generation") == 2
    assert val(m, "certgate_config_last_reload_successful") == 0
    assert val(m, "certgate_config_last_reload_timestamp_seconds") > 0
    # counters survive the reload; the new route is exposed
    assert val(m, "certgate_http_requests_total", listener="web",
               **{"class": "2xx"}) == 1
    assert series(m, "certgate_http_route_requests_total", route="*/ok")


def test_stale_crl_in_grace(cg, pki, upstream, tmp_path):
    from test_revocation import cfg_with, make_crl
    crl = make_crl(tmp_path / "stale.crl", pki.root, [pki.bob],
                   last=-3 * 3600, nxt=-3600)
    fresh = make_crl(tmp_path / "fresh.crl", pki.other_ca, [], nxt=7200)
    c = cfg_with(pki, upstream, [crl], mode="optional",
                 on_stale_crl="grace:2h")
    c["trust"]["other"]["crl_files"] = [fresh]
    c["listeners"].append(admin(pki))
    d = cg.start(c)
    assert get(pki, d.port("web"), "/", cert=pki.alice).status == 200
    m = scrape(pki, d)
    root = dict(trust="staff")
    assert val(m, "certgate_crl_stale", **root) == 1
    assert val(m, "certgate_crl_refusing", **root) == 0
    assert val(m, "certgate_crl_entries", **root) == 1
    left = val(m, "certgate_crl_grace_remaining_seconds", **root)
    assert 3500 < left <= 3600, left
    assert -3700 < val(m, "certgate_crl_next_update_seconds", **root) < -3500
    issuer = dict(series(m, "certgate_crl_stale", **root).popitem()[0])
    assert "Test Root CA" in issuer["issuer"]
    other = dict(trust="other")
    assert val(m, "certgate_crl_stale", **other) == 0
    assert 7000 < val(m, "certgate_crl_next_update_seconds", **other) <= 7200
    assert val(m, "certgate_crl_grace_remaining_seconds", **other) == 0


# -- respond ---------------------------------------------------------------------

def test_respond_static_answer(cg, pki):
    d = cg.start(config(pki, [listener("web", pki, [
        {"path": "/", "respond": {"status": 200, "body": "ok\n",
                                  "content_type": "text/plain"}},
        {"path": "/gone", "respond": {"status": 301, "headers": {
            "Location": "https://example.com/"}}},
        {"path": "/empty", "respond": {"status": 204}},
    ]), admin(pki)]))
    port = d.port("web")
    with cgtest.connect(pki, port, pki.alice) as c:
        for _ in range(3):  # keep-alive: one connection, many answers
            r = c.request("GET", "/x")
            assert (r.status, r.body) == (200, b"ok\n")
            assert r.header("Content-Type") == "text/plain"
            assert r.header("Content-Length") == "3"
        r = c.request("POST", "/x", body=b"ignored" * 1000)
        assert (r.status, r.body) == (200, b"ok\n")
        r = c.request("HEAD", "/x")
        assert (r.status, r.body) == (200, b"")
        r = c.request("GET", "/gone")
        assert r.status == 301 and r.header("Location") == \
            "https://example.com/"
        r = c.request("GET", "/empty")
        assert r.status == 204 and r.header("Content-Length") is None
    rc, code, _, body = curl(pki, port, "/", cert=pki.alice)
    assert (rc, code, body) == (0, "200", b"ok\n")
    # still behind mTLS: no certificate, no answer
    assert refused(pki, port) is not None
    m = scrape(pki, d)
    assert val(m, "certgate_http_route_requests_total", listener="web",
               route="*/", **{"class": "2xx"}) == 6


# -- config checks ------------------------------------------------------------------

def check(tmp_path, cfg):
    p = tmp_path / "c.json"
    p.write_text(json.dumps(cfg))
    r = run_cli(["check", "-c", str(p)])
    return r.returncode, [l for l in r.stderr.splitlines() if l.strip()]


@pytest.mark.parametrize("rt,err", [
    ({"path": "/", "upstream": "http://127.0.0.1:1",
      "respond": {"status": 200}},
     r"routes\[0\]\.upstream: not allowed with \"respond\""),
    ({"path": "/"}, r"routes\[0\]\.upstream: required \(or \"respond\"\)"),
    ({"respond": {"status": 99}}, r"routes\[0\]\.respond\.status: "),
    ({"respond": {"status": 600}}, r"routes\[0\]\.respond\.status: "),
    ({"respond": {}}, r"routes\[0\]\.respond\.status: .*required"),
    ({"respond": "ok"}, r"routes\[0\]\.respond: expected object"),
    ({"respond": {"status": 200, "colour": 1}},
     r"routes\[0\]\.respond\.colour: .*unknown"),
    ({"respond": {"status": 204, "body": "x"}},
     r"routes\[0\]\.respond\.body: must be empty with status 204"),
    ({"respond": {"status": 200, "body": 5}},
     r"routes\[0\]\.respond\.body: expected string"),
    ({"respond": {"status": 200, "headers": {"Content-Type": "x"}}},
     r"routes\[0\]\.respond\.headers\.Content-Type: .*content_type"),
    ({"respond": {"status": 200, "headers": {"Content-Length": "1"}}},
     r"routes\[0\]\.respond\.headers\.Content-Length: header .* cannot"),
    ({"respond": {"status": 200, "headers": {"X-A": "a\nb"}}},
     r"routes\[0\]\.respond\.headers\.X-A: must not contain control"),
    ({"respond": {"status": 200}, "upstream_tls": {"verify": False}},
     r"routes\[0\]\.upstream_tls: not allowed with \"respond\""),
    ({"respond": {"status": 200}, "identity_headers": {}},
     r"routes\[0\]\.identity_headers: not allowed with \"respond\""),
    ({"upstream": "builtin:nope"},
     r"routes\[0\]\.upstream: .*expected builtin:echo or builtin:metrics"),
    ({"upstream": "builtin:metrics",
      "upstream_tls": {"verify": False}},
     r"routes\[0\]\.upstream_tls: only allowed with an https upstream"),
])
def test_check_route_errors(binary, pki, tmp_path, rt, err):
    cfg = config(pki, [listener("web", pki, [rt])])
    rc, lines = check(tmp_path, cfg)
    assert rc == 2
    assert any(re.match(r"^listeners\[0\]\." + err, l) for l in lines), lines


def test_check_metrics_exposure(binary, pki, tmp_path):
    """builtin:metrics open to unverified clients on a public address is
    refused; loopback, required client auth or a route policy are fine."""
    open_route = {"path": "/metrics", "upstream": "builtin:metrics"}
    public = listener("pub", pki, [open_route], mode="optional",
                      listen="0.0.0.0:0")
    rc, lines = check(tmp_path, config(pki, [public]))
    assert rc == 2
    assert any(l.startswith("listeners[0].routes[0].upstream: "
                            "builtin:metrics would be open") for l in lines)
    # a per-certificate override weakening required is seen too
    weak = listener("pub", pki, [open_route], listen="0.0.0.0:0")
    weak["certificates"][0]["client_auth"] = cgtest.client_auth("optional")
    assert check(tmp_path, config(pki, [weak]))[0] == 2
    ok = [
        listener("a", pki, [open_route], mode="optional"),  # loopback
        listener("b", pki, [open_route], listen="0.0.0.0:0"),  # required
        listener("c", pki, [dict(open_route, require_verified=True)],
                 mode="optional", listen="0.0.0.0:0"),
        listener("d", pki, [dict(open_route, allow={"cn": ["alice"]})],
                 mode="off", listen="[::]:0"),
    ]
    rc, lines = check(tmp_path, config(pki, ok))
    assert rc == 0, lines


@pytest.mark.parametrize("m,err", [
    ({"max_identities": -1}, r"metrics\.max_identities: "),
    ({"max_identities": 2000000}, r"metrics\.max_identities: "),
    ({"cap": 1}, r"metrics\.cap: .*unknown"),
    ({"session_cache": {"max_entries": -1}},
     r"session_cache\.max_entries: "),
    ({"session_cache": {"max_entries": "many"}},
     r"session_cache\.max_entries: "),
    ({"session_cache": {"size": 1}}, r"session_cache\.size: .*unknown"),
])
def test_check_metrics_settings(binary, pki, tmp_path, m, err):
    if "session_cache" in m:
        cfg = config(pki, [], session_cache=m["session_cache"])
    else:
        cfg = config(pki, [], metrics=m)
    rc, lines = check(tmp_path, cfg)
    assert rc == 2
    assert any(re.match("^" + err, l) for l in lines), lines
