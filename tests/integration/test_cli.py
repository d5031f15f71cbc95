"""`certgate check` and `certgate verify`."""

import copy
import json
import re

import pytest

from cgtest import config, listener, route, run_cli

MODE_ERROR = ("listeners[0].client_auth.mode: expected one of off, optional, "
              "required, report")


@pytest.fixture
def good_cfg(pki):
    return config(pki, [listener("web", pki, [route("http://127.0.0.1:9")],
                                 mode="required")])


@pytest.fixture
def write(tmp_path):
    def w(cfg, name="certgate.json"):
        p = tmp_path / name
        p.write_text(cfg if isinstance(cfg, str) else json.dumps(cfg))
        return str(p)
    return w


def err_lines(r):
    return [l for l in r.stderr.splitlines() if l.strip()]


# -- check --------------------------------------------------------------------

def test_check_valid(binary, good_cfg, write):
    r = run_cli(["check", "-c", write(good_cfg)])
    assert r.returncode == 0, r.stderr


def test_check_bad_mode(binary, good_cfg, write):
    cfg = copy.deepcopy(good_cfg)
    cfg["listeners"][0]["client_auth"]["mode"] = "sometimes"
    r = run_cli(["check", "-c", write(cfg)])
    assert r.returncode == 2
    assert MODE_ERROR in err_lines(r), r.stderr


def test_check_unknown_key(binary, good_cfg, write):
    cfg = copy.deepcopy(good_cfg)
    cfg["listeners"][0]["bogus_key"] = 1
    r = run_cli(["check", "-c", write(cfg)])
    assert r.returncode == 2
    assert any(re.match(r"^listeners\[0\]\.bogus_key: .*unknown", l, re.I)
               for l in err_lines(r)), r.stderr


def test_check_unknown_top_level_key(binary, good_cfg, write):
    cfg = copy.deepcopy(good_cfg)
    cfg["colour"] = "blue"
    r = run_cli(["check", "-c", write(cfg)])
    assert r.returncode == 2
    assert any(re.match(r"^colour: .*unknown", l, re.I)
               for l in err_lines(r)), r.stderr


def test_check_missing_trust(binary, good_cfg, write):
    cfg = copy.deepcopy(good_cfg)
    cfg["listeners"][0]["client_auth"]["trust"] = "nosuch"
    r = run_cli(["check", "-c", write(cfg)])
    assert r.returncode == 2
    assert any(l.startswith("listeners[0].client_auth.trust: ") and
               "nosuch" in l for l in err_lines(r)), r.stderr


def test_check_reports_every_error(binary, good_cfg, write):
    cfg = copy.deepcopy(good_cfg)
    cfg["listeners"][0]["client_auth"]["mode"] = "sometimes"
    cfg["listeners"][0]["bogus_key"] = 1
    r = run_cli(["check", "-c", write(cfg)])
    assert r.returncode == 2
    lines = err_lines(r)
    assert MODE_ERROR in lines, r.stderr
    assert any(l.startswith("listeners[0].bogus_key: ") for l in lines)


def test_check_json_syntax_error(binary, write):
    r = run_cli(["check", "-c", write('{\n  "workers": 2,\n  oops\n}')])
    assert r.returncode == 2
    assert "line 3" in r.stderr, r.stderr


def test_check_missing_file(binary, tmp_path):
    r = run_cli(["check", "-c", str(tmp_path / "nope.json")])
    assert r.returncode == 2
    assert r.stderr.strip()


def test_check_missing_ca_file(binary, good_cfg, write):
    cfg = copy.deepcopy(good_cfg)
    cfg["trust"]["staff"]["ca_files"] = ["/nonexistent/ca.pem"]
    r = run_cli(["check", "-c", write(cfg)])
    assert r.returncode == 2
    assert "trust.staff.ca_files[0]" in r.stderr, r.stderr


# -- verify, listener form ----------------------------------------------------

def verify_json(args):
    r = run_cli(["verify", "--json"] + args)
    try:
        out = json.loads(r.stdout)
    except ValueError:
        raise AssertionError("verify --json printed no JSON: rc=%d %r %r" % (
            r.returncode, r.stdout, r.stderr))
    return r.returncode, out


def test_verify_listener_accepts_alice(binary, pki, good_cfg, write):
    rc, out = verify_json(["-c", write(good_cfg), "--listener", "web",
                           pki.alice.cert])
    assert rc == 0, out
    assert out["verdict"] == "accepted"
    assert out["reason"] is None
    ident = out["identity"]
    assert ident["cn"] == "alice"
    assert ident["email"] == "alice@example.com"
    assert ident["dn"] == pki.alice.subject_dn
    assert ident["serial"] == pki.alice.serial_hex
    assert ident["sha256"] == pki.alice.sha256


def test_verify_listener_text(binary, pki, good_cfg, write):
    r = run_cli(["verify", "-c", write(good_cfg), "--listener", "web",
                 pki.alice.cert])
    assert r.returncode == 0
    assert "accepted" in r.stdout.lower()
    assert "alice" in r.stdout
    r = run_cli(["verify", "-c", write(good_cfg), "--listener", "web",
                 pki.expired.cert])
    assert r.returncode == 1
    assert "refused" in r.stdout.lower() and "expired" in r.stdout


@pytest.mark.parametrize("attr,reason", [("expired", "expired"),
                                         ("other_signed", "untrusted"),
                                         ("fake_signed", "untrusted"),
                                         ("nul_cn", "bad_name"),
                                         ("two_cn", "multiple_cn"),
                                         ("ca_leaf", "leaf_is_ca")])
def test_verify_listener_refuses(binary, pki, good_cfg, write, attr, reason):
    rc, out = verify_json(["-c", write(good_cfg), "--listener", "web",
                           getattr(pki, attr).cert])
    assert rc == 1
    assert out["verdict"] == "refused"
    assert out["reason"] == reason


def test_verify_listener_chain_argument(binary, pki, good_cfg, write):
    path = write(good_cfg)
    rc, out = verify_json(["-c", path, "--listener", "web", pki.carol.cert,
                           pki.inter.cert])
    assert rc == 0 and out["identity"]["cn"] == "carol", out
    rc, out = verify_json(["-c", path, "--listener", "web", pki.carol.cert])
    assert rc == 1 and out["reason"] == "untrusted", out


def test_verify_unknown_listener_is_usage(binary, pki, good_cfg, write):
    r = run_cli(["verify", "-c", write(good_cfg), "--listener", "nosuch",
                 pki.alice.cert])
    assert r.returncode == 2, r


# -- verify, standalone form --------------------------------------------------

def test_verify_standalone_accepts(binary, pki):
    rc, out = verify_json(["--ca", pki.root.cert, pki.alice.cert])
    assert rc == 0 and out["verdict"] == "accepted", out
    assert out["identity"]["sha256"] == pki.alice.sha256


def test_verify_standalone_untrusted(binary, pki):
    rc, out = verify_json(["--ca", pki.other_ca.cert, pki.alice.cert])
    assert (rc, out["verdict"], out["reason"]) == (1, "refused", "untrusted")
    rc, out = verify_json(["--ca", pki.other_ca.cert, "--ca", pki.root.cert,
                           pki.alice.cert])
    assert rc == 0, out


def test_verify_standalone_untrusted_intermediate(binary, pki):
    rc, out = verify_json(["--ca", pki.root.cert, "--untrusted",
                           pki.inter.cert, pki.carol.cert])
    assert rc == 0, out
    rc, out = verify_json(["--ca", pki.root.cert, pki.carol.cert])
    assert rc == 1 and out["reason"] == "untrusted", out


def test_verify_standalone_purpose(binary, pki):
    rc, out = verify_json(["--ca", pki.root.cert, "--purpose", "server",
                           pki.alice.cert])
    assert rc == 1 and out["reason"] == "bad_eku", out
    rc, out = verify_json(["--ca", pki.root.cert, "--purpose", "server",
                           pki.server.cert])
    assert rc == 0, out
    rc, out = verify_json(["--ca", pki.root.cert, "--purpose", "client",
                           pki.server.cert])
    assert rc == 1 and out["reason"] == "bad_eku", out


def test_verify_at(binary, pki):
    a = pki.alice
    before = int(a.not_before_dt.timestamp()) - 3600
    after = int(a.not_after_dt.timestamp()) + 3600
    inside = int(a.not_before_dt.timestamp()) + 60
    rc, out = verify_json(["--ca", pki.root.cert, "--at", str(before),
                           a.cert])
    assert rc == 1 and out["reason"] == "not_yet_valid", out
    rc, out = verify_json(["--ca", pki.root.cert, "--at", str(after), a.cert])
    assert rc == 1 and out["reason"] == "expired", out
    rc, out = verify_json(["--ca", pki.root.cert, "--at", str(inside),
                           a.cert])
    assert rc == 0, out


def test_verify_at_makes_expired_valid(binary, pki):
    e = pki.expired
    rc, out = verify_json(["--ca", pki.root.cert, e.cert])
    assert rc == 1 and out["reason"] == "expired", out
    when = int(e.not_before_dt.timestamp()) + 3600
    rc, out = verify_json(["--ca", pki.root.cert, "--at", str(when), e.cert])
    assert rc == 0, out


@pytest.mark.parametrize("args", [[], ["--bogus"], ["--ca"],
                                  ["--purpose", "both", "x.pem"]])
def test_verify_usage(binary, pki, args):
    r = run_cli(["verify"] + args)
    assert r.returncode == 2, (args, r)
    assert r.stderr.strip()


def test_serve_invalid_config_exits_2(binary, good_cfg, write):
    cfg = copy.deepcopy(good_cfg)
    cfg["listeners"][0]["client_auth"]["mode"] = "sometimes"
    r = run_cli(["serve", "-c", write(cfg)])
    assert r.returncode == 2
    assert "listeners[0].client_auth.mode" in r.stderr, r.stderr


def test_reload_cli_without_daemon(binary, good_cfg, write, tmp_path):
    cfg = copy.deepcopy(good_cfg)
    cfg["pid_file"] = str(tmp_path / "none.pid")
    r = run_cli(["reload", "-c", write(cfg)])
    assert r.returncode != 0
    assert r.stderr.strip()
