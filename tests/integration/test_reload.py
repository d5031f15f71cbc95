"""SIGHUP / `certgate reload`, invalid reloads, SIGTERM drain."""

import copy
import threading
import time

import cgtest
from cgtest import client_auth, config, connect, get, listener, refused, route


def web_config(pki, upstream, mode):
    return config(pki, [listener("web", pki, [route(upstream)], mode=mode)])


def set_mode(cfg, mode):
    cfg = copy.deepcopy(cfg)
    cfg["listeners"][0]["client_auth"] = client_auth(mode)
    return cfg


def test_toggle_client_auth_keeps_open_connection(cg, pki, upstream):
    d = cg.start(web_config(pki, upstream, "off"))
    port = d.port()
    ports_before = d.read_ports()
    keep = connect(pki, port)  # no client certificate
    try:
        r = keep.request("GET", "/keep/0")
        assert r.upstream().get("X-Client-Verify") == "NONE"

        gen1 = d.reload(set_mode(d.cfg, "required"))["generation"]
        # The open connection keeps the snapshot it started with.
        r = keep.request("GET", "/keep/1")
        assert r.status == 200 and r.upstream()["path"] == "/keep/1"
        # New connections follow the new setting.
        assert refused(pki, port, None, path="/new-anon") is not None
        r = get(pki, port, "/new-alice", cert=pki.alice)
        assert r.upstream().get("X-Client-Verify") == "SUCCESS"
        assert d.read_ports() == ports_before

        gen2 = d.reload(set_mode(d.cfg, "off"))["generation"]
        assert gen2 > gen1
        r = keep.request("GET", "/keep/2")
        assert r.status == 200
        r = get(pki, port, "/new-anon-2")
        assert r.upstream().get("X-Client-Verify") == "NONE"
        r = get(pki, port, "/new-alice-2", cert=pki.alice)
        assert r.upstream().get("X-Client-Verify") == "NONE"
        assert d.read_ports() == ports_before
    finally:
        keep.close()
    assert "/new-anon" not in upstream.paths()


def test_reload_required_to_off_keeps_verified_connection(cg, pki, upstream):
    d = cg.start(web_config(pki, upstream, "required"))
    with connect(pki, d.port(), pki.alice) as keep:
        assert keep.request("GET", "/a").upstream().get(
            "X-Client-Verify") == "SUCCESS"
        d.reload(set_mode(d.cfg, "off"))
        r = keep.request("GET", "/b")
        assert r.status == 200
        assert r.upstream().get("X-Client-Verify") == "SUCCESS"
    r = get(pki, d.port(), "/c")
    assert r.upstream().get("X-Client-Verify") == "NONE"


def test_invalid_reload_refused_old_config_serves(cg, pki, upstream):
    d = cg.start(web_config(pki, upstream, "required"))
    good = d.cfg
    bad = copy.deepcopy(good)
    bad["listeners"][0]["client_auth"]["mode"] = "sometimes"
    rec = d.reload(bad, expect_ok=False)
    assert rec["level"] == "error"
    text = str(rec)
    assert "listeners[0].client_auth.mode" in text, rec
    assert d.running
    # Old config: still required.
    assert refused(pki, d.port(), None) is not None
    r = get(pki, d.port(), "/", cert=pki.alice)
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"
    # A later good reload still works.
    d.reload(set_mode(good, "off"))
    r = get(pki, d.port(), "/")
    assert r.upstream().get("X-Client-Verify") == "NONE"


def test_invalid_json_reload_refused(cg, pki, upstream):
    d = cg.start(web_config(pki, upstream, "optional"))
    rec = d.reload('{"listeners": [', expect_ok=False)
    assert rec["level"] == "error"
    r = get(pki, d.port(), "/", cert=pki.alice)
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"


def test_reload_missing_ca_file_refused(cg, pki, upstream):
    d = cg.start(web_config(pki, upstream, "required"))
    bad = copy.deepcopy(d.cfg)
    bad["trust"]["staff"]["ca_files"] = ["/nonexistent/ca.pem"]
    d.reload(bad, expect_ok=False)
    r = get(pki, d.port(), "/", cert=pki.alice)
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"


def test_reload_cli(cg, pki, upstream):
    d = cg.start(web_config(pki, upstream, "off"))
    gen = d.reload(set_mode(d.cfg, "required"), via="cli")["generation"]
    assert refused(pki, d.port(), None) is not None
    r = get(pki, d.port(), "/", cert=pki.alice)
    assert r.upstream().get("X-Client-Verify") == "SUCCESS"
    gen2 = d.reload(via="cli")["generation"]  # same file again
    assert gen2 > gen


def test_reload_changes_routes(cg, pki, upstreams):
    a, b = upstreams("a"), upstreams("b")
    d = cg.start(config(pki, [listener("web", pki, [route(a)],
                                       mode="optional")]))
    assert get(pki, d.port(), "/").upstream()["server"] == "a"
    cfg = copy.deepcopy(d.cfg)
    cfg["listeners"][0]["routes"] = [route(b)]
    d.reload(cfg)
    assert get(pki, d.port(), "/").upstream()["server"] == "b"


def test_reload_adds_listener_keeps_ports(cg, pki, upstream):
    d = cg.start(web_config(pki, upstream, "optional"))
    before = d.read_ports()
    cfg = copy.deepcopy(d.cfg)
    cfg["listeners"].append(listener("second", pki, [route(upstream)],
                                     mode="off"))
    d.reload(cfg)
    ports = cgtest.wait_for(
        lambda: (lambda p: p if p and "second" in p else None)(
            d.read_ports()), what="ports file with the new listener")
    assert ports["web"] == before["web"]
    r = get(pki, ports["second"], "/", cert=pki.alice)
    assert r.upstream().get("X-Client-Verify") == "NONE"


def test_sigterm_drains_inflight_request(cg, pki, upstream):
    d = cg.start(web_config(pki, upstream, "required"))
    result = {}

    def slow():
        try:
            result["r"] = get(pki, d.port(), "/slow?s=1.5", cert=pki.alice)
        except Exception as e:  # reported below
            result["e"] = e
    t = threading.Thread(target=slow)
    t.start()
    cgtest.wait_for(lambda: any(p.startswith("/slow")
                                for p in upstream.paths()),
                    what="upstream to see /slow")
    t0 = time.monotonic()
    rc = d.stop()
    t.join(cgtest.timeout(10))
    assert rc == 0
    assert "e" not in result, result.get("e")
    assert result["r"].status == 200
    assert result["r"].upstream()["path"] == "/slow?s=1.5"
    assert time.monotonic() - t0 < cgtest.timeout(10)


def test_sigterm_idle_exits_promptly(cg, pki, upstream):
    d = cg.start(web_config(pki, upstream, "off"))
    with connect(pki, d.port()) as keep:  # idle keep-alive connection
        keep.request("GET", "/")
        t0 = time.monotonic()
        assert d.stop() == 0
        assert time.monotonic() - t0 < cgtest.timeout(5)


def test_reload_switches_trust_set(cg, pki, upstream):
    d = cg.start(web_config(pki, upstream, "optional"))
    assert get(pki, d.port(), "/", cert=pki.alice).upstream().get(
        "X-Client-Verify") == "SUCCESS"
    cfg = copy.deepcopy(d.cfg)
    cfg["listeners"][0]["client_auth"]["trust"] = "other"
    d.reload(cfg)
    assert get(pki, d.port(), "/", cert=pki.alice).upstream().get(
        "X-Client-Verify") == "FAILED:untrusted"
    assert get(pki, d.port(), "/", cert=pki.other_signed).upstream().get(
        "X-Client-Verify") == "SUCCESS"


def test_websocket_survives_reload(cg, pki, upstream):
    import json as _json
    d = cg.start(web_config(pki, upstream, "off"))
    with connect(pki, d.port()) as c:
        r, _ = cgtest.ws_client_handshake(c)
        assert r.status == 101
        d.reload(set_mode(d.cfg, "required"))
        c.send(cgtest.ws_frame("after reload", mask=True))
        deadline = time.monotonic() + cgtest.timeout(5)
        op, payload = cgtest.ws_read_frame(
            lambda n: c.read_exact(n, deadline))
        assert _json.loads(payload)["echo"] == "after reload"


def test_pid_file_and_ports_file_rewritten(cg, pki, upstream):
    import os
    d = cg.start(web_config(pki, upstream, "optional"))
    with open(d.pid_path) as f:
        assert int(f.read().strip()) == d.proc.pid
    before = d.read_ports()
    os.unlink(d.ports_path)
    d.reload()
    after = cgtest.wait_for(d.read_ports, what="ports file rewritten")
    assert after == before


def test_reload_removes_listener(cg, pki, upstream):
    import socket
    cfg = config(pki, [
        listener("web", pki, [route(upstream)], mode="optional"),
        listener("second", pki, [route(upstream)], mode="optional")])
    d = cg.start(cfg)
    second = d.port("second")
    assert get(pki, second, "/").status == 200
    cfg = copy.deepcopy(d.cfg)
    cfg["listeners"] = cfg["listeners"][:1]
    d.reload(cfg)
    ports = cgtest.wait_for(
        lambda: (lambda p: p if p and "second" not in p else None)(
            d.read_ports()), what="ports file without the removed listener")
    assert ports["web"] == d.port("web")

    def gone():
        try:
            s = socket.create_connection(("127.0.0.1", second), 1)
        except ConnectionRefusedError:
            return True
        s.close()
        return False
    cgtest.wait_for(gone, what="removed listener to stop accepting")
    assert get(pki, d.port("web"), "/").status == 200


def test_reload_tls_min_version(cg, pki, upstream):
    import ssl
    d = cg.start(web_config(pki, upstream, "optional"))
    ctx12 = cgtest.client_ctx(pki, max_version=ssl.TLSVersion.TLSv1_2)
    with connect(pki, d.port(), ctx=ctx12) as old:
        assert old.request("GET", "/").status == 200
        cfg = copy.deepcopy(d.cfg)
        cfg["listeners"][0]["tls_min_version"] = "1.3"
        d.reload(cfg)
        # The open TLS 1.2 connection keeps working...
        assert old.request("GET", "/again").status == 200
    # ...new TLS 1.2 clients are refused.
    try:
        with connect(pki, d.port(), ctx=ctx12) as c:
            c.request("GET", "/")
        raise AssertionError("TLS 1.2 accepted after tls_min_version 1.3")
    except (ssl.SSLError, ConnectionError, EOFError):
        pass
