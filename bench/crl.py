#!/usr/bin/python3
"""bench/crl.py: the revocation benchmark of issue 4 (the measuring half of
bench/run --crl; Debian's python3 with python3-cryptography).

For CRLs of 0, 100,000 and 1,000,000 revoked serials made by gen_crl.py
(and a baseline without any CRL configured), starts certgate (trust set
with "crl_files"), nginx (ssl_crl) and HAProxy (crl-file on the bind line)
one at a time, each one worker pinned to CPU 0, and measures:

  load     process start until the port answers: an mTLS TLS 1.3
           handshake with the (non-revoked) client certificate and a
           GET /proxy answered 200 (polled every 5 ms)
  rate     full TLS 1.3 mTLS handshakes per server-CPU-second
           (loadgen --mode full, non-revoked client, 16 connections)
  RSS      VmRSS summed over every process of the server after the load
           (and PSS, which counts pages that nginx's master and worker
           share only once)
  reload   certgate: SIGHUP until its "reload" log event (log level info,
           access log off); nginx: `nginx -s reload` until a new worker
           answers (old worker gone, probe answered); HAProxy: soft reload
           (`haproxy -sf OLD`) until the old process is gone and the new
           one answers
  refused  a client certificate whose serial is in the CRL is refused
           (so that a CRL which was not applied cannot pass as free)

Then, for the rate target alone, paired certgate runs (run_pairs): two
no-CRL processes and one with 1,000,000 entries, side by side, loaded in
turn in rotating order; the two identical processes show the noise floor.

Order: for each round, for each CRL, certgate, nginx, HAProxy (fresh
process each). Writes OUT/table.md and the JSON file given by --json.
Reuses bench.py's server classes, loadgen driver and /proc readers.
"""

import argparse
import datetime
import json
import os
import signal
import statistics
import socket
import ssl
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

COUNTS = (None, 0, 100000, 1000000)  # None: no CRL configured at all
FULL_TLS13 = ["--mode", "full", "--tls", "1.3", "--path", "/proxy"]
PROFILES = {
    # pairs: cycles of the paired certgate runs (run_pairs: no CRL twice
    # and 1M entries, side by side, loaded in turn), pair_warmup +
    # pair_duration seconds per run (the < 5% target is far below one
    # run's noise on a shared machine)
    "quick": dict(rounds=1, warmup=1.0, duration=4.0, pairs=3,
                  pair_warmup=0.5, pair_duration=3.0),
    "full": dict(rounds=2, warmup=2.0, duration=10.0, pairs=6,
                 pair_warmup=1.0, pair_duration=5.0),
}
POLL = 0.005
LIMIT_S = 60.0  # load or reload slower than this counts as failed
TARGETS = {"rate_cost": 0.05, "rss_mb": 64, "load_s": 1.0}


def label(n):
    return "none" if n is None else str(n)


def crl_path(pki, n):
    return os.path.join(pki, "crl-%d.pem" % n)


# -- the three servers, with a CRL ------------------------------------------

class CrlMixin:
    crl = None  # path of the CRL file, or None

    def log_tail(self, pos):
        return B.read_text(self.log, pos).splitlines()


class Certgate(CrlMixin, B.Certgate):
    def configure(self):
        super().configure()
        with open(self.conf) as f:
            cfg = json.load(f)
        cfg["log"] = {"level": "info", "access": False}
        if self.crl:
            cfg["trust"]["bench"]["crl_files"] = [self.crl]
        with open(self.conf, "w") as f:
            json.dump(cfg, f, indent=2)

    def ready(self):
        """The ports file only (the load-time probe does the rest)."""
        deadline = time.monotonic() + LIMIT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise B.BenchError("exited with status %s during start-up"
                                   % self.proc.returncode)
            try:
                with open(self.ports_file) as f:
                    self.port = json.load(f)["web"]
                return
            except (OSError, ValueError, KeyError):
                time.sleep(POLL)
        raise B.BenchError("no ports file after %.0f s" % LIMIT_S)


class Nginx(CrlMixin, B.Nginx):
    def configure(self):
        super().configure()
        if self.crl:
            with open(self.conf) as f:
                text = f.read()
            text = text.replace("ssl_verify_client on;",
                                "ssl_verify_client on;\n        ssl_crl %s;"
                                % self.crl)
            with open(self.conf, "w") as f:
                f.write(text)

    def ready(self):
        pass  # the port is known: the load-time probe waits for it


class Haproxy(CrlMixin, B.Haproxy):
    def configure(self):
        super().configure()
        if self.crl:
            with open(self.conf) as f:
                text = f.read()
            text = text.replace(" verify required",
                                " crl-file %s verify required" % self.crl)
            with open(self.conf, "w") as f:
                f.write(text)

    def ready(self):
        pass


# -- probes -------------------------------------------------------------------

class Prober:
    """One mTLS TLS 1.3 connection + GET /proxy with a given client."""

    def __init__(self, pki, cert, key):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(os.path.join(pki, "ca.pem"))
        ctx.load_cert_chain(cert, key)
        self.ctx = ctx

    def once(self, port, timeout=2.0):
        """(stage, detail): stage 'refused' (no TCP), 'tls' (TCP but the
        TLS exchange failed), 'http' (answered, not 200) or 'ok'."""
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout)
        except OSError as e:
            return "refused", str(e)
        try:
            with self.ctx.wrap_socket(sock, server_hostname="localhost") as s:
                s.sendall(b"GET /proxy HTTP/1.1\r\nHost: localhost\r\n"
                          b"Connection: close\r\n\r\n")
                data = b""
                while b"\r\n" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
        except (OSError, ssl.SSLError) as e:
            return "tls", str(e)
        finally:
            sock.close()
        line = data.split(b"\r\n", 1)[0].decode("latin-1")
        if line.split(" ")[1:2] == ["200"]:
            return "ok", line
        return "http", line or "closed without an answer"

    def wait(self, srv, t0, until=None):
        """Polls until an answer 200; returns (first TCP accept, answer)
        in seconds since t0. until(): extra condition checked first."""
        t_tcp = None
        deadline = t0 + LIMIT_S
        last = None
        while time.monotonic() < deadline:
            if srv.proc.poll() is not None:
                raise B.BenchError("exited with status %s"
                                   % srv.proc.returncode)
            if until is not None and not until():
                time.sleep(POLL)
                continue
            stage, last = self.once(srv.port)
            now = time.monotonic()
            if stage != "refused" and t_tcp is None:
                t_tcp = now - t0
            if stage == "ok":
                return t_tcp, now - t0
            time.sleep(POLL)
        raise B.BenchError("no answer after %.0f s (last: %s)"
                           % (LIMIT_S, last))


def pss(pids):
    total = 0
    for pid in pids:
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
        except OSError:
            return None
    return total


def make_revoked(pki, counts):
    """For each non-empty CRL, a client certificate whose serial is the
    middle entry of that CRL: revoked-N.pem / .key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    with open(os.path.join(pki, "ca.pem"), "rb") as f:
        ca = x509.load_pem_x509_certificate(f.read())
    with open(os.path.join(pki, "ca.key"), "rb") as f:
        ca_key = serialization.load_pem_private_key(f.read(), None)
    now = datetime.datetime.utcnow()
    out = {}
    for n in counts:
        if not n:
            continue
        with open(os.path.join(pki, "crl-%d.der" % n), "rb") as f:
            crl = x509.load_der_x509_crl(f.read())
        serial = crl[len(crl) // 2].serial_number
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(
                    NameOID.COMMON_NAME, "bench-revoked-%d" % n)]))
                .issuer_name(ca.subject).public_key(key.public_key())
                .serial_number(serial)
                .not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=False,
                                                     path_length=None),
                               critical=True)
                .add_extension(x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(
                    x509.AuthorityKeyIdentifier.from_issuer_public_key(
                        ca_key.public_key()), critical=False)
                .sign(ca_key, hashes.SHA256()))
        base = os.path.join(pki, "revoked-%d" % n)
        with open(base + ".pem", "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(base + ".key", "wb") as f:
            f.write(key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        out[n] = (base + ".pem", base + ".key", "%x" % serial)
    return out


# -- one (round, CRL, server) -------------------------------------------------

class CrlBench(B.Bench):
    def __init__(self, args):
        super().__init__(args)
        self.prof = PROFILES["quick" if args.quick else "full"]
        self.good = Prober(args.pki, os.path.join(args.pki, "client.pem"),
                           os.path.join(args.pki, "client.key"))
        self.revoked = {}

    def timed_start(self, srv, rec):
        srv.configure()
        t0 = time.monotonic()
        with open(srv.log, "ab") as logf:
            srv.proc = B.spawn(srv.argv(), B.SERVER_CPU, logf, logf)
        srv.starts += 1
        srv.ready()
        t_tcp, t_ok = self.good.wait(srv, t0)
        rec["load_s"] = round(t_ok, 4)
        rec["load_tcp_s"] = round(t_tcp, 4)
        rec["rss_start"] = B.proc_rss(srv.pids())

    def reload_certgate(self, srv, rec):
        pos = B.file_size(srv.log)
        t0 = time.monotonic()
        os.kill(srv.proc.pid, signal.SIGHUP)
        deadline = t0 + LIMIT_S
        while True:
            if srv.proc.poll() is not None:
                raise B.BenchError("exited with status %s during reload"
                                   % srv.proc.returncode)
            events = []
            for line in srv.log_tail(pos):
                try:
                    events.append(json.loads(line).get("event"))
                except ValueError:
                    pass
            if "reload" in events:
                rec["reload_s"] = round(time.monotonic() - t0, 4)
                break
            if "reload_failed" in events:
                raise B.BenchError("reload_failed: %s"
                                   % srv.log_tail(pos)[-3:])
            if time.monotonic() > deadline:
                raise B.BenchError("no reload event after %.0f s"
                                   % LIMIT_S)
            time.sleep(0.002)
        _, t_ok = self.good.wait(srv, t0)
        rec["reload_answer_s"] = round(t_ok, 4)

    def reload_nginx(self, srv, rec):
        old = set(B.children(srv.proc.pid))
        t0 = time.monotonic()
        r = subprocess.run(["taskset", "-c", B.SERVER_CPU, "nginx", "-p",
                            srv.dir, "-c", srv.conf, "-e", srv.log, "-s",
                            "reload"], capture_output=True, text=True)
        rec["reload_cmd_s"] = round(time.monotonic() - t0, 4)
        if r.returncode != 0:
            raise B.BenchError("nginx -s reload: %s" % r.stderr.strip())

        def new_worker():
            kids = set(B.children(srv.proc.pid))
            return bool(kids - old) and not (kids & old)

        _, t_ok = self.good.wait(srv, t0, new_worker)
        rec["reload_s"] = round(t_ok, 4)

    def reload_haproxy(self, srv, rec):
        old = srv.proc
        t0 = time.monotonic()
        with open(srv.log, "ab") as logf:
            srv.proc = B.spawn(srv.argv() + ["-sf", str(old.pid)],
                               B.SERVER_CPU, logf, logf)
        try:
            _, t_ok = self.good.wait(srv, t0,
                                     lambda: old.poll() is not None)
        finally:
            B.stop(old)
        rec["reload_s"] = round(t_ok, 4)

    def run_pairs(self):
        """The rate target, measured apart: three certgate processes run
        side by side on CPU 0 (idle when not loaded): two without a CRL
        (A and A', the control) and one with 1,000,000 entries (M), loaded
        in turn, each cycle in another order (a Latin square in quick mode,
        all six orders in full), pair_warmup + pair_duration seconds each.
        The cost is 1 - median(M) / median(A and A'); A' against A shows
        what two identical processes differ by on this machine."""
        kinds = (("A", None), ("A'", None), ("M", 1000000))
        orders = ([("A", "A'", "M"), ("A'", "M", "A"), ("M", "A", "A'")]
                  if self.args.quick else
                  [("A", "A'", "M"), ("M", "A'", "A"), ("A'", "M", "A"),
                   ("A", "M", "A'"), ("M", "A", "A'"), ("A'", "A", "M")])
        srvs = {}
        out = {"runs": [], "values": {k: [] for k, _ in kinds}}
        errpath = os.path.join(self.args.out, "loadgen.err")
        prof = dict(self.prof, warmup=self.prof["pair_warmup"],
                    duration=self.prof["pair_duration"])
        saved, self.prof = self.prof, prof
        try:
            for k, n in kinds:
                srv = Certgate(self.args, self.up_port)
                srv.dir = os.path.join(self.args.out, "certgate-paired-%s"
                                       % ("control" if k == "A'" else
                                          label(n)))
                os.makedirs(srv.dir, exist_ok=True)
                srv.log = os.path.join(srv.dir, "server.log")
                srv.crl = crl_path(self.args.pki, n) if n else None
                srvs[k] = srv
                self.timed_start(srv, {})
            for i, order in enumerate(orders[:saved["pairs"]]):
                for k in order:
                    rec = {"cycle": i, "process": k}
                    self.run_rate(srvs[k], FULL_TLS13, errpath, rec)
                    rec["loadgen_errors"] = rec["loadgen"]["errors_total"]
                    del rec["loadgen"]
                    out["runs"].append(rec)
                    out["values"][k].append(rec["value"])
                B.log("[paired %d] certgate handshakes per server-CPU-s: "
                      "no CRL %.1f and %.1f, 1M entries %.1f" % (
                          i + 1, out["values"]["A"][-1],
                          out["values"]["A'"][-1], out["values"]["M"][-1]))
        except (B.BenchError, OSError, ValueError,
                subprocess.TimeoutExpired) as e:
            out["failed"] = str(e)
            self.note("certgate paired runs FAILED: %s" % e)
        finally:
            self.prof = saved
            for k, srv in srvs.items():
                if srv.alive():
                    srv.stop()
                else:
                    self.note("certgate (paired %s) EXITED: %s"
                              % (k, srv.log_tail(0)[-5:]))
                bad = [ln for ln in srv.log_tail(0)
                       if is_bad("certgate", ln)]
                if bad:
                    self.note("certgate (paired %s) logged: %s"
                              % (k, bad[:5]))
        v = out["values"]
        if v["A"] and v["A'"] and v["M"]:
            med = statistics.median
            out["cycles"] = len(v["M"])
            out["median"] = {k: med(v[k]) for k in v}
            out["cost"] = round(1 - med(v["M"]) / med(v["A"] + v["A'"]), 4)
            out["control"] = round(1 - med(v["A'"]) / med(v["A"]), 4)
        return out

    def run_crl(self, rnd, n, cls):
        srv = cls(self.args, self.up_port)
        srv.crl = crl_path(self.args.pki, n) if n is not None else None
        rec = {"round": rnd, "crl": label(n), "server": srv.name}
        errpath = os.path.join(self.args.out, "loadgen.err")
        logpos = B.file_size(srv.log)
        step = "start"
        try:
            self.timed_start(srv, rec)
            step = "load"
            self.run_rate(srv, FULL_TLS13, errpath, rec)
            rec["rss_after_load"] = B.proc_rss(srv.pids())
            rec["pss_after_load"] = pss(srv.pids())
            if n:
                step = "revoked client"
                cert, key, serial = self.revoked[n]
                stage, what = Prober(self.args.pki, cert, key).once(srv.port)
                rec["revoked_client"] = {"serial": serial, "stage": stage,
                                         "detail": what}
                rec["revoked_refused"] = stage != "ok"
            step = "reload"
            getattr(self, "reload_" + srv.name)(srv, rec)
            rec["rss_after_reload"] = B.proc_rss(srv.pids())
        except (B.BenchError, OSError, ValueError,
                subprocess.TimeoutExpired) as e:
            rec["failed"] = "%s: %s" % (step, e)
        finally:
            if srv.alive():
                srv.stop()
            else:
                rec["server_exit"] = srv.proc.returncode if srv.proc else None
        rec["loadgen_stderr"] = B.read_text(errpath).splitlines()[:20]
        lines = srv.log_tail(logpos)
        rec["server_log"] = lines[:60]
        bad = [ln for ln in lines if is_bad(srv.name, ln)]
        if bad:
            rec["server_log_problems"] = bad[:20]
            self.note("%s crl=%s round %d logged: %s"
                      % (srv.name, label(n), rnd, bad[:5]))
        if "failed" in rec:
            self.note("%s crl=%s round %d FAILED at %s; log: %s"
                      % (srv.name, label(n), rnd, rec["failed"], lines[-5:]))
        if n and rec.get("revoked_refused") is False:
            self.note("%s crl=%s: the revoked client was ACCEPTED (%s)"
                      % (srv.name, label(n), rec["revoked_client"]))
        if srv.name == "certgate":
            rec["index_log"] = index_ms(lines)
        self.runs.append(rec)
        B.log(describe(rec))
        return rec


def is_bad(name, line):
    """A server log line that says something went wrong."""
    if name == "certgate":
        try:
            return json.loads(line).get("level") in ("warn", "error")
        except ValueError:
            return bool(line.strip())
    if name == "nginx":  # error_log at warn: anything but the reload notice
        return bool(line.strip()) and "signal process started" not in line
    # HAProxy -db: the soft reload's own messages are expected
    return bool(line.strip()) and not any(
        s in line for s in ("Stopping frontend", "Stopping backend",
                            "Proxy web stopped", "Proxy up stopped",
                            "stopped (cumulated conns"))


def index_ms(lines):
    """certgate's own 'revocation index ... built in N ms' figures."""
    out = []
    for ln in lines:
        try:
            msg = json.loads(ln).get("msg", "")
        except ValueError:
            continue
        if "revocation index" in msg and "built in" in msg:
            out.append(msg)
    return out


def describe(rec):
    head = "[r%d] crl %-8s %-9s" % (rec["round"], rec["crl"], rec["server"])
    parts = []
    if "load_s" in rec:
        parts.append("load %.3f s" % rec["load_s"])
    if "value" in rec:
        r = rec["loadgen"]
        parts.append("%7.1f hs/server-CPU-s (%.0f/s, server %3.0f%%, "
                     "CPU0 %3.0f%%, errors %d)"
                     % (rec["value"], r["rate"], rec["server_util"] * 100,
                        rec.get("cpu0_busy", 0) * 100, r["errors_total"]))
    if "rss_after_load" in rec:
        parts.append("RSS %.1f MB" % (rec["rss_after_load"] / 2**20))
    if "revoked_refused" in rec:
        parts.append("revoked %s" % ("refused" if rec["revoked_refused"]
                                     else "ACCEPTED"))
    if "reload_s" in rec:
        parts.append("reload %.3f s" % rec["reload_s"])
    if "failed" in rec:
        parts.append("FAILED: " + rec["failed"])
    return head + " " + ", ".join(parts)


# -- summary and table -----------------------------------------------------

FIELDS = ("value", "rss_after_load", "pss_after_load", "rss_after_reload",
          "load_s", "reload_s", "reload_cmd_s")


def summarize(runs):
    """{server: {crl: {field: mean over rounds}}}."""
    out = {}
    for name in B.SERVERS:
        out[name] = {}
        for n in COUNTS:
            rs = [r for r in runs if r["server"] == name
                  and r["crl"] == label(n)]
            d = {}
            for fld in FIELDS:
                vals = [r[fld] for r in rs if r.get(fld) is not None]
                if vals:
                    d[fld] = round(sum(vals) / len(vals), 4)
            d["runs"] = len(rs)
            d["failed"] = sum(1 for r in rs if "failed" in r)
            d["errors"] = sum(r["loadgen"]["errors_total"] for r in rs
                              if "loadgen" in r)
            if n:
                d["revoked_refused"] = all(r.get("revoked_refused")
                                           for r in rs)
            out[name][label(n)] = d
    return out


def targets(summary, pairs):
    """The issue's targets for certgate at 1M entries against no CRL. The
    rate cost is judged on the paired runs' median when there are any."""
    cg = summary["certgate"]
    base, big = cg["none"], cg["1000000"]
    res = {}
    cost, how = None, None
    if "cost" in pairs:
        cost, how = pairs["cost"], "paired runs, %d cycles; two identical "\
            "no-CRL processes differed by %.1f%%" % (
                pairs["cycles"], abs(100 * pairs["control"]))
    elif "value" in base and "value" in big:
        cost, how = 1 - big["value"] / base["value"], "table"
    if cost is not None:
        res["rate_cost"] = {"value": round(cost, 4), "how": how,
                            "target": "< %.0f%%" % (TARGETS["rate_cost"]
                                                    * 100),
                            "met": cost < TARGETS["rate_cost"]}
        if (not res["rate_cost"]["met"] and "control" in pairs
                and cost <= abs(pairs["control"])):
            res["rate_cost"]["met"] = None  # not resolved: within noise
    if "rss_after_load" in base and "rss_after_load" in big:
        delta = (big["rss_after_load"] - base["rss_after_load"]) / 2**20
        res["rss_mb"] = {"value": round(delta, 1),
                         "absolute": round(big["rss_after_load"] / 2**20, 1),
                         "target": "< %d MB" % TARGETS["rss_mb"],
                         "met": delta < TARGETS["rss_mb"]}
    if "load_s" in big:
        res["load_s"] = {"value": big["load_s"],
                         "target": "< %.0f s" % TARGETS["load_s"],
                         "met": big["load_s"] < TARGETS["load_s"]}
    return res


def fmt(v, spec, scale=1.0):
    return spec % (v / scale) if v is not None else "-"


def table(summary, tg, pairs):
    lines = ["| server | revoked serials | full TLS 1.3 handshakes per "
             "server-CPU-s | vs no CRL | RSS after load, MB (VmRSS, all "
             "processes) | PSS, MB | RSS after a reload, MB | load, s | "
             "reload, s | revoked client refused |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name in B.SERVERS:
        base = summary[name]["none"].get("value")
        for n in COUNTS:
            d = summary[name][label(n)]
            v = d.get("value")
            vs = ("%+.1f%%" % (100 * (v / base - 1))
                  if v is not None and base and n is not None else "")
            if n is None:
                ref = "-"
            else:
                ref = ("n/a" if n == 0 else
                       "yes" if d.get("revoked_refused") else "**NO**")
            reload = fmt(d.get("reload_s"), "%.3f")
            if name == "nginx" and d.get("reload_cmd_s") is not None:
                reload += " (cmd %.3f)" % d["reload_cmd_s"]
            cells = [name, "no CRL" if n is None else "{:,}".format(n),
                     fmt(v, "%.0f"), vs,
                     fmt(d.get("rss_after_load"), "%.1f", 2**20),
                     fmt(d.get("pss_after_load"), "%.1f", 2**20),
                     fmt(d.get("rss_after_reload"), "%.1f", 2**20),
                     fmt(d.get("load_s"), "%.3f"), reload, ref]
            if d["failed"]:
                cells[2] += " (%d FAILED)" % d["failed"]
            lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if "cost" in pairs:
        v = pairs["values"]
        lines.append(
            "certgate paired runs (three processes side by side, loaded in "
            "turn, %d cycles; handshakes per server-CPU-s): no CRL A %s, "
            "no CRL A' %s, 1,000,000 entries %s; medians %.0f, %.0f, %.0f: "
            "cost of 1M entries %+.1f%% against A and A' together, "
            "A' against A %+.1f%% (the noise floor)." % (
                pairs["cycles"], "/".join("%.0f" % x for x in v["A"]),
                "/".join("%.0f" % x for x in v["A'"]),
                "/".join("%.0f" % x for x in v["M"]),
                pairs["median"]["A"], pairs["median"]["A'"],
                pairs["median"]["M"], 100 * pairs["cost"],
                -100 * pairs["control"]))
    lines.append("Targets (certgate, 1,000,000 entries against no CRL): " +
                 "; ".join(target_text(k, t) for k, t in tg.items()) + ".")
    return "\n".join(lines)


def target_text(k, t):
    what = {"rate_cost": "handshake-rate cost %+.1f%% (%s)"
            % (100 * t["value"], t["how"]) if k == "rate_cost" else "",
            "rss_mb": "RSS +%.1f MB (%.1f MB in all)"
            % (t.get("value", 0), t.get("absolute", 0))
            if k == "rss_mb" else "",
            "load_s": "load %.3f s" % t["value"] if k == "load_s" else ""}[k]
    verdict = {True: "met", False: "NOT met",
               None: "not resolved (within the noise floor)"}[t["met"]]
    return "%s (target %s): %s" % (what, t["target"], verdict)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bin", required=True, help="build directory")
    ap.add_argument("--pki", required=True, help="gen_crl.py's directory")
    ap.add_argument("--out", required=True, help="directory for logs")
    ap.add_argument("--json", required=True, help="result file")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    # bench.py's servers and loadgen read root.pem/.key: gen_crl's CA
    for ext in ("pem", "key"):
        link = os.path.join(args.pki, "root." + ext)
        if not os.path.exists(link):
            os.symlink("ca." + ext, link)
    bench = CrlBench(args)
    bench.revoked = make_revoked(args.pki, COUNTS)
    meta = B.machine()
    meta["profile"] = "quick" if args.quick else "full"
    meta.update(bench.prof)
    meta["conns"] = B.CONNS
    meta["crl_bytes"] = {label(n): os.path.getsize(crl_path(args.pki, n))
                         for n in COUNTS if n is not None}
    try:
        bench.upstream, bench.up_port = bench.start_upstream(B.LOAD_CPU)
        meta["versions"] = {
            "certgate": Certgate(args, bench.up_port).version(),
            "nginx": Nginx(args, bench.up_port).version(),
            "haproxy": Haproxy(args, bench.up_port).version()}
        for rnd in range(1, bench.prof["rounds"] + 1):
            for n in COUNTS:
                for cls in (Certgate, Nginx, Haproxy):
                    bench.run_crl(rnd, n, cls)
        pairs = bench.run_pairs()
    finally:
        B.stop(bench.upstream)
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["notes"] = bench.notes
    summary = summarize(bench.runs)
    tg = targets(summary, pairs)
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "summary": summary, "targets": tg,
                   "pairs": pairs, "runs": bench.runs}, f, indent=1)
        f.write("\n")
    text = table(summary, tg, pairs)
    v = meta["versions"]
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write("%s, %d CPUs (%s), Linux %s, %s, nginx %s, HAProxy %s, "
                "certgate %s, %s profile (%d round(s))\n\n%s\n" % (
                    meta["date"], meta["nproc"], meta["cpu"], meta["kernel"],
                    meta["openssl"], v["nginx"], v["haproxy"], v["certgate"],
                    meta["profile"], meta["rounds"], text))
    B.log("")
    B.log(text)
    for n in bench.notes:
        B.log("NOTE: " + n)
    B.log("wrote %s and %s/table.md (%.0f s)" % (args.json, args.out,
                                                  meta["elapsed_s"]))
    failed = [r for r in bench.runs if "failed" in r]
    return 1 if failed or bench.notes else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except B.BenchError as e:
        print("crl.py: %s" % e, file=sys.stderr)
        sys.exit(1)
