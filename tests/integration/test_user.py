"""`certgate user ...`: the user store through the real binary.

Self-contained: every test runs the binary (env CERTGATE_BIN, default
/work/main/build/certgate) with --data in its own tmp dir. Certificates
owned by a user are planted with Python's sqlite3 (the `ca` commands are
tested elsewhere) to drive `user delete [--revoke-certs]`.
"""

import json
import os
import sqlite3
import stat
import subprocess
import time

import pytest

BIN = os.environ.get("CERTGATE_BIN", "/work/main/build/certgate")
SECRET = "Tr0ub4dor&3-never-print-me"
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


@pytest.fixture(scope="module")
def certgate_bin():
    if not os.access(BIN, os.X_OK):
        pytest.skip("certgate binary not found at %s (set CERTGATE_BIN)" % BIN)
    return BIN


class Cli:
    """Runs `certgate user ...` against one data dir; keeps all output."""

    def __init__(self, binary, data):
        self.binary = binary
        self.data = str(data)
        self.outputs = []

    def __call__(self, *args, stdin=None, data=True):
        argv = [self.binary, "user", *args]
        if data:
            argv += ["--data", self.data]
        r = subprocess.run(argv, input=stdin, capture_output=True, text=True,
                           timeout=60)
        self.outputs += [r.stdout, r.stderr]
        for mark in SANITIZER_MARKS:
            assert mark not in r.stderr, r.stderr
        return r

    def ok(self, *args, **kw):
        r = self(*args, **kw)
        assert r.returncode == 0, r.stderr
        assert r.stderr == "", r.stderr
        return r

    def fails(self, code, *args, **kw):
        r = self(*args, **kw)
        assert r.returncode == code, (r.returncode, r.stdout, r.stderr)
        assert r.stdout == ""
        lines = r.stderr.splitlines()
        assert lines and lines[0].startswith("certgate: "), r.stderr
        return r

    def users(self):
        return json.loads(self.ok("list", "--json").stdout)

    def show(self, name):
        return json.loads(self.ok("show", name, "--json").stdout)


@pytest.fixture
def cli(certgate_bin, tmp_path):
    return Cli(certgate_bin, tmp_path / "data")


def plant_certs(data, owner, n, expired=0):
    """Adds a CA row and n valid (+ expired) certificates owned by owner."""
    now = int(time.time())
    db = sqlite3.connect(os.path.join(data, "certgate.db"))
    with db:
        cur = db.execute("INSERT INTO cas (name, cert_pem, key_path,"
                         " is_issuer, created_at) VALUES"
                         " ('ca', 'PEM', '/k', 1, ?)", (now,))
        ca = cur.lastrowid
        for i in range(n + expired):
            not_after = now + 86400 if i < n else now - 60
            db.execute("INSERT INTO certs (serial, ca_id, subject, owner,"
                       " profile, not_before, not_after, pem) VALUES"
                       " (?, ?, 'CN=x', ?, 'client', ?, ?, 'PEM')",
                       ("%02X" % (i + 1), ca, owner, now - 60, not_after))
    db.close()


def cert_rows(data):
    db = sqlite3.connect(os.path.join(data, "certgate.db"))
    rows = db.execute("SELECT serial, owner, status, revocation_reason"
                      " FROM certs ORDER BY serial").fetchall()
    seq = db.execute("SELECT seq FROM revocation_seq").fetchone()[0]
    db.close()
    return rows, seq


# -- happy paths --------------------------------------------------------------

def test_add_list_show(cli):
    cli.ok("add", "alice", "--email", "alice@example.com", "--role", "admin")
    cli.ok("add", "bob", "--email", "Bob@Example.org", "--password-stdin",
           stdin=SECRET + "\n")
    users = cli.users()
    assert [u["name"] for u in users] == ["alice", "bob"]
    alice, bob = users
    assert alice["email"] == "alice@example.com"
    assert alice["role"] == "admin" and bob["role"] == "user"
    assert alice["status"] == "active"
    assert alice["has_password"] is False and bob["has_password"] is True
    assert alice["created_at"].endswith("Z")
    shown = cli.show("bob")
    assert shown["email"] == "Bob@Example.org"
    assert shown["certificates"] == []
    text = cli.ok("show", "bob").stdout
    assert "Bob@Example.org" in text and "password     set" in text
    listing = cli.ok("list").stdout.splitlines()
    assert listing[0].split()[:2] == ["NAME", "EMAIL"]
    assert [l.split()[0] for l in listing[1:]] == ["alice", "bob"]


def test_passwd_via_stdin(cli):
    cli.ok("add", "carol", "--email", "carol@example.com")
    assert cli.show("carol")["has_password"] is False
    cli.ok("passwd", "carol", stdin=SECRET + "\nsecond line ignored\n")
    assert cli.show("carol")["has_password"] is True
    db = sqlite3.connect(os.path.join(cli.data, "certgate.db"))
    (h,) = db.execute("SELECT pw_hash FROM users WHERE name = 'carol'"
                      ).fetchone()
    db.close()
    assert h.startswith("$argon2id$") and SECRET not in h
    cli.fails(1, "passwd", "carol", stdin="")
    cli.fails(1, "passwd", "carol", stdin="\n")
    cli.fails(1, "passwd", "nobody", stdin=SECRET + "\n")


def test_add_empty_password_refused(cli):
    r = cli.fails(1, "add", "kim", "--email", "kim@example.com",
                  "--password-stdin", stdin="\n")
    assert "empty password" in r.stderr
    assert cli.users() == []


def test_disable_enable(cli):
    cli.ok("add", "dave", "--email", "dave@example.com")
    cli.ok("disable", "dave")
    assert cli.show("dave")["status"] == "disabled"
    cli.ok("enable", "dave")
    assert cli.show("dave")["status"] == "active"
    cli.fails(1, "disable", "nobody")
    cli.fails(1, "enable", "nobody")


def test_delete(cli):
    cli.ok("add", "erin", "--email", "erin@example.com")
    cli.ok("delete", "erin")
    assert cli.users() == []
    cli.fails(1, "show", "erin")
    cli.fails(1, "delete", "erin")
    # the name and email are free again
    cli.ok("add", "erin", "--email", "ERIN@example.com")


def test_delete_with_certificates(cli):
    cli.ok("add", "bob", "--email", "bob@example.com")
    plant_certs(cli.data, "bob", 2, expired=1)
    r = cli.fails(1, "delete", "bob")
    assert r.stderr == ('certgate: user "bob" owns 2 valid certificates: '
                        "revoke them first or pass --revoke-certs\n")
    assert [u["name"] for u in cli.users()] == ["bob"]
    rows, seq = cert_rows(cli.data)
    assert [r[2] for r in rows] == ["valid"] * 3 and seq == 0
    assert len(cli.show("bob")["certificates"]) == 3

    r = cli.ok("delete", "bob", "--revoke-certs")
    assert "2 certificates revoked" in r.stdout
    assert cli.users() == []
    rows, seq = cert_rows(cli.data)
    assert rows[0] == ("01", "bob", "revoked", "cessationOfOperation")
    assert rows[1][2] == "revoked"
    assert rows[2][2] == "valid"  # expired: left alone
    assert seq == 2


# -- refusals -----------------------------------------------------------------

def test_duplicates_refused(cli):
    cli.ok("add", "alice", "--email", "alice@example.com")
    r = cli.fails(1, "add", "mallory", "--email", "ALICE@Example.COM")
    assert "alice" in r.stderr and "email" in r.stderr
    cli.fails(1, "add", "alice", "--email", "other@example.com")
    cli.fails(1, "add", "ALICE", "--email", "other@example.com")
    assert [u["name"] for u in cli.users()] == ["alice"]


@pytest.mark.parametrize("args", [
    ["add", "x", "--email", "x@example.com", "--role", "root"],
    ["add", "x", "--email", "x@example.com", "--role", ""],
    ["add", "x"],
    ["add", "x", "--email", "no-at-sign"],
    ["add", "x", "--email", "two@@example.com"],
    ["add", "x", "--email", "sp ace@example.com"],
    ["add", "x", "--email", "ctl\x01@example.com"],
    ["add", "x", "--email", "a" * 250 + "@b.cd"],
    ["add", "bad name", "--email", "x@example.com"],
    ["add", "bad/name", "--email", "x@example.com"],
    ["add", "n" * 65, "--email", "x@example.com"],
    ["add", "", "--email", "x@example.com"],
    ["add", "--email", "x@example.com"],
    ["show"],
    ["show", "a", "b"],
    ["list", "extra"],
    ["list", "--email", "x@example.com"],
    ["delete", "x", "--json"],
    ["passwd"],
    ["frobnicate"],
    ["add", "x", "--email", "x@example.com", "--bogus"],
    ["add", "x", "--email"],
    ["list", "-x"],
])
def test_usage_errors(cli, args):
    r = cli(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    # one clear line
    assert r.stderr.startswith("certgate: user"), r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    # nothing was written
    if os.path.exists(os.path.join(cli.data, "certgate.db")):
        assert cli.users() == []


def test_help(cli):
    top = cli.ok("--help", data=False).stdout
    assert top.startswith("usage: certgate user")
    for sub in ("add", "list", "show", "passwd", "disable", "enable",
                "delete"):
        r = cli.ok(sub, "--help", data=False)
        assert r.stdout.startswith("usage: certgate user " + sub), r.stdout
        assert "--data DIR" in r.stdout
    assert not os.path.exists(cli.data)
    for args in ([], ["list", "--data"], ["list", "-c"]):
        r = cli(*args, data=False)
        assert r.returncode == 2 and r.stdout == "", r.stderr
        assert r.stderr.startswith("certgate: user"), r.stderr


# -- secrets, files, concurrency ----------------------------------------------

def test_password_never_printed(cli):
    cli.ok("add", "frank", "--email", "frank@example.com", "--password-stdin",
           stdin=SECRET + "\n")
    cli.ok("passwd", "frank", stdin=SECRET + "2\n")
    cli.fails(1, "add", "frank", "--email", "f2@example.com",
              "--password-stdin", stdin=SECRET + "\n")
    cli.ok("list")
    cli.ok("list", "--json")
    cli.ok("show", "frank")
    cli.ok("show", "frank", "--json")
    cli.fails(1, "passwd", "nobody", stdin=SECRET + "\n")
    for out in cli.outputs:
        assert SECRET not in out
        assert "argon2" not in out  # nor its hash
    for name in os.listdir(cli.data):
        with open(os.path.join(cli.data, name), "rb") as f:
            assert SECRET.encode() not in f.read()


def test_file_modes(cli):
    cli.ok("add", "gina", "--email", "gina@example.com")
    st = os.stat(cli.data)
    assert stat.S_IMODE(st.st_mode) == 0o700
    for name in os.listdir(cli.data):
        mode = stat.S_IMODE(os.stat(os.path.join(cli.data, name)).st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert "certgate.db" in os.listdir(cli.data)


def test_data_dir_from_config(certgate_bin, tmp_path):
    cfg = tmp_path / "conf" / "certgate.json"
    cfg.parent.mkdir()
    cfg.write_text(json.dumps({"data_dir": "state"}))
    cli = Cli(certgate_bin, tmp_path / "unused")
    r = cli("add", "hank", "--email", "hank@example.com", "-c", str(cfg),
            data=False)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(tmp_path / "conf" / "state" / "certgate.db")
    r = cli("list", "--json", "-c", str(cfg), data=False)
    assert [u["name"] for u in json.loads(r.stdout)] == ["hank"]
    cfg.write_text("{\"data_dir\": 1}")
    r = cli("list", "-c", str(cfg), data=False)
    assert r.returncode == 2 and r.stderr.startswith("certgate: ")


def test_default_data_dir(certgate_bin, tmp_path):
    r = subprocess.run([certgate_bin, "user", "add", "ivy", "--email",
                        "ivy@example.com"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert os.path.exists(tmp_path / "certgate-data" / "certgate.db")


def test_concurrent_adds(cli):
    # all eight open, create and migrate a store that does not exist yet
    procs = [subprocess.Popen(
        [cli.binary, "user", "add", "user%d" % i, "--email",
         "user%d@example.com" % i, "--password-stdin", "--data", cli.data],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for i in range(8)]
    results = [p.communicate(SECRET + "\n", timeout=120) for p in procs]
    for p, (out, err) in zip(procs, results):
        assert p.returncode == 0, err
        assert SECRET not in out + err
    users = cli.users()
    assert sorted(u["name"] for u in users) == ["user%d" % i
                                                 for i in range(8)]
    assert all(u["has_password"] for u in users)
