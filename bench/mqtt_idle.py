#!/usr/bin/python3
"""bench/mqtt_idle.py: issue 6's idle MQTT benchmark (the measuring half
of bench/run --mqtt-idle; Debian's python3 and mosquitto only).

10,000 (--conns) MQTT-over-TLS connections held idle through certgate:

  loadgen --mqtt --mode idle  --TLS 1.3, client cert-->  certgate (kind
  "mqtt", client_auth required, peer_cert_as_username "cn", workers 1,
  CPU 0)  --plain TCP-->  mosquitto 2.0 (its own config on a loopback
  port, max_connections -1; CPU 1, beside loadgen)

Each connection is a TLS 1.3 handshake with the client certificate, one
MQTT 3.1.1 CONNECT (client id bench-<n>, clean session, keep-alive 600 s)
answered by CONNACK 0, then nothing. Measured: VmRSS of certgate and of
mosquitto before (after a small warm-up) and with every connection held,
per connection; certgate's open descriptors; how many CONNACK 0 loadgen
got; how many clients the broker reports ($SYS/broker/clients/connected)
and logged ("New client connected ... as bench-<n> ... u'bench-client'",
the CN that certgate put in the user name).

RLIMIT_NOFILE is raised to 65536 (soft and hard, which needs root with
CAP_SYS_RESOURCE) for this process and so for everything it starts. Where
the hard limit cannot be raised, each certgate process can hold only
(limit - 64) / 2 connections (a client socket and a broker socket each):
the connections are then split evenly over as many identical certgate
processes as needed, each with its own loadgen (client ids kept
distinct), all held at once, and the per-connection figure is the sum of
their RSS growth over all connections. Writes --json and OUT/table.md.
"""

import argparse
import json
import os
import pwd
import re
import resource
import signal
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench as B  # noqa: E402

NOFILE = 65536
SETTLE_S = 1.0  # after READY, before reading RSS
PROFILES = {
    "quick": dict(conns=1000, hold=8.0),
    "full": dict(conns=10000, hold=10.0),
}
CN = "bench-client"
CONNECTED = re.compile(r"New client connected from \S+ as (bench-\d+) "
                       r"\(p2, c1, k600, u'([^']*)'\)")


def raise_nofile():
    """Raises RLIMIT_NOFILE to NOFILE, or as far as allowed; returns the
    soft limit now in force (inherited by every process we start)."""
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    except (ValueError, OSError):
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def port_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = map(int, f.read().split())
    return lo, hi


class Run:
    def __init__(self, args):
        self.args = args
        self.prof = dict(PROFILES["quick" if args.quick else "full"])
        if args.conns:
            self.prof["conns"] = args.conns
        self.loadgen = os.path.join(args.bin, "bench", "loadgen")
        self.procs = []
        self.notes = []
        self.cgs = []  # one dict per certgate process

    def note(self, msg):
        self.notes.append(msg)
        B.log("NOTE: " + msg)

    def p(self, name):
        return os.path.join(self.args.pki, name)

    # -- processes ---------------------------------------------------------
    def start_mosquitto(self):
        d = os.path.join(self.args.out, "mosquitto")
        os.makedirs(d, exist_ok=True)
        self.mq_port = B.free_port()
        self.mq_log = os.path.join(d, "mosquitto.log")
        conf = os.path.join(d, "mosquitto.conf")
        with open(conf, "w") as f:
            # as root mosquitto would switch to user "mosquitto": stay us
            f.write("user %s\n" % pwd.getpwuid(os.getuid()).pw_name +
                    "per_listener_settings false\n"
                    "allow_anonymous true\n"
                    "persistence false\n"
                    "sys_interval 1\n"
                    "connection_messages true\n"
                    "log_dest file %s\n" % self.mq_log +
                    "log_type error\nlog_type warning\nlog_type notice\n"
                    "listener %d 127.0.0.1\n" % self.mq_port +
                    "max_connections -1\n")
        self.mq_err = open(os.path.join(d, "stderr.log"), "wb")
        self.mq = B.spawn(["mosquitto", "-c", conf], B.LOAD_CPU,
                          self.mq_err, self.mq_err)
        self.procs.append(self.mq)
        B.wait_port(self.mq_port, self.mq)

    def start_certgate(self, i):
        """certgate number i (1, 2, ...): its own directory and port."""
        d = os.path.join(self.args.out, "certgate-%d" % i)
        os.makedirs(d, exist_ok=True)
        ports = os.path.join(d, "ports.json")
        if os.path.exists(ports):
            os.unlink(ports)
        cfg = {
            "workers": 1,
            "data_dir": os.path.join(d, "data"),
            "ports_file": ports,
            "log": {"level": "warn", "access": False},
            "trust": {"bench": {"ca_files": [self.p("root.pem")]}},
            "listeners": [{
                "name": "mqtt", "kind": "mqtt", "listen": "127.0.0.1:0",
                "certificates": [{"cert": self.p("server.pem"),
                                  "key": self.p("server.key")}],
                "client_auth": {"enabled": True, "mode": "required",
                                "trust": "bench"},
                "upstream": "127.0.0.1:%d" % self.mq_port,
                "peer_cert_as_username": "cn",
                "timeouts": {"idle": "20m"},
            }],
        }
        conf = os.path.join(d, "certgate.json")
        with open(conf, "w") as f:
            json.dump(cfg, f, indent=2)
        log = os.path.join(d, "server.log")
        logf = open(log, "wb")
        proc = B.spawn([os.path.join(self.args.bin, "certgate"), "serve",
                        "-c", conf], B.SERVER_CPU, logf, logf)
        logf.close()
        self.procs.append(proc)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise B.BenchError("certgate exited with status %s: %s" % (
                    proc.returncode, B.read_text(log)[-500:]))
            try:
                with open(ports) as f:
                    port = json.load(f)["mqtt"]
                break
            except (OSError, ValueError, KeyError):
                time.sleep(0.02)
        else:
            raise B.BenchError("certgate: no ports file after 10 s")
        cg = {"proc": proc, "pid": proc.pid, "port": port, "log": log}
        self.cgs.append(cg)
        return cg

    def stop_all(self):
        for p in reversed(self.procs):
            B.stop(p)

    # -- loadgen -----------------------------------------------------------
    def loadgen_argv(self, cg, conns, hold, id_base=0):
        return [self.loadgen, "--port", str(cg["port"]), "--sni",
                "localhost", "--ca", self.p("root.pem"),
                "--cert", self.p("client.pem"), "--key", self.p("client.key"),
                "--mqtt", "--mqtt-id-base", str(id_base), "--mode", "idle",
                "--conns", str(conns), "--parallel", "64", "--timeout", "30",
                "--duration", str(hold), "--server-pid", str(cg["pid"])]

    def run_loadgen(self, argv, limit, on_ready=None, tag=""):
        errpath = os.path.join(self.args.out, "loadgen%s.err" % tag)
        with open(errpath, "wb") as err:
            p = B.spawn(argv, B.LOAD_CPU, subprocess.PIPE, err)
        watchdog = threading.Timer(limit, p.kill)
        watchdog.start()
        report, ready_at, t0 = None, None, time.monotonic()
        try:
            for raw in p.stdout:
                line = raw.decode().strip()
                if line.startswith("READY"):
                    ready_at = time.monotonic() - t0
                    if on_ready:
                        on_ready(int(line.split()[1]))
                elif line.startswith("{"):
                    report = json.loads(line)
            p.wait()
        finally:
            watchdog.cancel()
            B.stop(p)
        if report is None:
            raise B.BenchError("loadgen gave no report (exit %s): %s" % (
                p.returncode, B.read_text(errpath)[-500:]))
        report["open_s"] = round(ready_at, 2) if ready_at else None
        report["stderr"] = B.read_text(errpath).splitlines()[:10]
        return report

    # -- the broker's view -------------------------------------------------
    def sys_connected(self):
        """$SYS/broker/clients/connected (retained, refreshed every
        sys_interval), read by a mosquitto_sub of our own."""
        r = subprocess.run(
            ["mosquitto_sub", "-h", "127.0.0.1", "-p", str(self.mq_port),
             "-i", "bench-sys", "-t", "$SYS/broker/clients/connected",
             "-C", "1", "-W", "5"], capture_output=True, text=True,
            timeout=10)
        try:
            return int(r.stdout.split()[0])
        except (IndexError, ValueError):
            return None

    def broker_count(self, want):
        """Polls $SYS until it shows want clients (+1: the reader itself
        may be counted) or 5 s pass; returns the last value."""
        deadline = time.monotonic() + 5
        v = None
        while time.monotonic() < deadline:
            v = self.sys_connected()
            if v is not None and want <= v <= want + 1:
                return v
            time.sleep(0.5)
        return v

    def logged(self, pos):
        """Clients the broker logged as connected after offset pos:
        {client id: user name}."""
        out = {}
        for m in CONNECTED.finditer(B.read_text(self.mq_log, pos)):
            out[m.group(1)] = m.group(2)
        return out

    # -- the run -----------------------------------------------------------
    def run(self):
        n, hold = self.prof["conns"], self.prof["hold"]
        res = {"conns": n, "nofile": self.args.nofile}
        lo, hi = port_range()
        res["ip_local_port_range"] = [lo, hi]
        if hi - lo < n + 1000:
            raise B.BenchError("ip_local_port_range %d-%d is too narrow for "
                               "%d connections" % (lo, hi, n))
        per = (self.args.nofile - 64) // 2
        k = -(-n // per)
        shares = [n // k + (1 if i < n % k else 0) for i in range(k)]
        res["certgate_processes"] = k
        res["shares"] = shares
        if k > 1:  # a property of the machine, not a failure
            res["split"] = (
                "RLIMIT_NOFILE is %d and cannot be raised here, so one "
                "certgate holds at most %d connections: %d certgate "
                "processes hold %s" % (self.args.nofile, per, k,
                                       "+".join(map(str, shares))))
            B.log(res["split"])
        self.start_mosquitto()
        for i in range(k):
            self.start_certgate(i + 1)
        B.log("mosquitto on 127.0.0.1:%d (pid %d); certgate mqtt listener(s) "
              "on %s" % (self.mq_port, self.mq.pid, ", ".join(
                  "127.0.0.1:%d (pid %d)" % (c["port"], c["pid"])
                  for c in self.cgs)))
        self.warm_up()
        names = ["certgate-%d" % (i + 1) for i in range(k)]
        pids = {nm: c["pid"] for nm, c in zip(names, self.cgs)}
        pids["mosquitto"] = self.mq.pid
        res["rss_before"] = {nm: B.proc_rss([p]) for nm, p in pids.items()}
        res["fds_before"] = {nm: fds(p) for nm, p in pids.items()}
        logpos = B.file_size(self.mq_log)
        held, reports, events = {}, [None] * k, [threading.Event()
                                                 for _ in range(k)]
        counts = [0] * k

        def drive(i):
            def ready(m):
                counts[i] = m
                events[i].set()
            try:
                reports[i] = self.run_loadgen(
                    self.loadgen_argv(self.cgs[i], shares[i], hold,
                                      sum(shares[:i])), 170, ready,
                    tag="-%d" % (i + 1))
            except B.BenchError as e:
                reports[i] = {"failed": str(e)}
            finally:
                events[i].set()

        B.log("opening %d MQTT-over-TLS connections ..." % n)
        t0 = time.monotonic()
        threads = [threading.Thread(target=drive, args=(i,))
                   for i in range(k)]
        for t in threads:
            t.start()
        for e in events:
            e.wait(170)
        res["open_s"] = round(time.monotonic() - t0, 1)
        early = [i for i in range(k) if reports[i] is not None]
        if not early:
            time.sleep(SETTLE_S)
            held["rss"] = {nm: B.proc_rss([p]) for nm, p in pids.items()}
            held["fds"] = {nm: fds(p) for nm, p in pids.items()}
            held["broker_sys"] = self.broker_count(sum(counts))
            held["broker_logged"] = self.logged(logpos)
            held["measured_s"] = round(time.monotonic() - t0, 1)
        for t in threads:
            t.join()
        res["loadgen"] = reports
        bad = [r["failed"] for r in reports if "failed" in r]
        if bad or early:
            raise B.BenchError("loadgen ended before the measurement: %s"
                               % (bad or [reports[i] for i in early]))
        res["held"] = sum(counts)
        res["held_at_end"] = sum(r.get("held_at_end", 0) for r in reports)
        res["errors_total"] = sum(r["errors_total"] for r in reports)
        res["rss_held"] = held["rss"]
        res["fds_held"] = held["fds"]
        res["measured_at_s"] = held["measured_s"]
        delta = {nm: held["rss"][nm] - res["rss_before"][nm] for nm in pids}
        res["rss_delta"] = delta
        res["per_conn"] = {
            "certgate": round(sum(delta[nm] for nm in names) / res["held"]),
            "mosquitto": round(delta["mosquitto"] / res["held"])}
        for i, nm in enumerate(names):
            res["per_conn"][nm] = round(delta[nm] / counts[i])
        res["broker_sys_connected"] = held["broker_sys"]
        users = held["broker_logged"]
        res["broker_logged_clients"] = len(users)
        res["broker_logged_user_cn"] = sum(1 for u in users.values()
                                           if u == CN)
        res["certgate_log_problems"] = [
            ln for c in self.cgs for ln in
            B.read_text(c["log"]).splitlines() if ln.strip()][:20]
        self.check(res, n)
        return res

    def warm_up(self):
        """64 connections to each certgate, held 0.5 s, then closed: one-
        time set-up (TLS contexts, first allocations, the broker's first
        clients) is not counted per connection."""
        for c in self.cgs:
            base = fds(c["pid"])
            w = self.run_loadgen(self.loadgen_argv(c, 64, 0.5, 900000), 60)
            if w["errors_total"] or w["requests"] != 64:
                raise B.BenchError("warm-up failed: %s" % w)
            deadline = time.monotonic() + 10
            while fds(c["pid"]) > base and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(0.5)

    def check(self, res, n):
        if res["held"] != n:
            self.note("only %d of %d connections got CONNACK 0 and were "
                      "held" % (res["held"], n))
        if res["errors_total"] or res["held_at_end"] != n:
            self.note("loadgen errors %d, %s held at the end: %s" % (
                res["errors_total"], res["held_at_end"],
                [r["stderr"] for r in res["loadgen"]]))
        sysv = res["broker_sys_connected"]
        if sysv is None or not n <= sysv <= n + 1:
            self.note("mosquitto $SYS/broker/clients/connected = %s, "
                      "expected %d" % (sysv, n))
        if res["broker_logged_clients"] != n or \
                res["broker_logged_user_cn"] != n:
            self.note("mosquitto logged %d clients, %d with user name %r" % (
                res["broker_logged_clients"], res["broker_logged_user_cn"],
                CN))
        if res["certgate_log_problems"]:
            self.note("certgate logged: %s" % res["certgate_log_problems"][:3])


def table(res):
    n = res["held"]
    mb = 2 ** 20
    k = res["certgate_processes"]
    rows = ["| process | VmRSS before, MB | VmRSS with the connections, MB "
            "| connections | RSS per connection, bytes | open fds |",
            "|---|---:|---:|---:|---:|---:|"]
    names = ["certgate-%d" % (i + 1) for i in range(k)]
    for i, nm in enumerate(names):
        rows.append("| %s | %.1f | %.1f | %s | %s | %s |" % (
            nm if k > 1 else "certgate", res["rss_before"][nm] / mb,
            res["rss_held"][nm] / mb, "{:,}".format(res["shares"][i]),
            "{:,}".format(res["per_conn"][nm]),
            "{:,}".format(res["fds_held"][nm])))
    if k > 1:
        rows.append("| **certgate, all %d** | %.1f | %.1f | %s | **%s** | %s "
                    "|" % (k, sum(res["rss_before"][x] for x in names) / mb,
                           sum(res["rss_held"][x] for x in names) / mb,
                           "{:,}".format(n),
                           "{:,}".format(res["per_conn"]["certgate"]),
                           "{:,}".format(sum(res["fds_held"][x]
                                             for x in names))))
    rows.append("| mosquitto | %.1f | %.1f | %s | %s | %s |" % (
        res["rss_before"]["mosquitto"] / mb,
        res["rss_held"]["mosquitto"] / mb, "{:,}".format(n),
        "{:,}".format(res["per_conn"]["mosquitto"]),
        "{:,}".format(res["fds_held"]["mosquitto"])))
    rows.append("")
    rows.append(
        "%s of %s connections got CONNACK 0 (%s still held at the end of "
        "the hold, loadgen errors %d); all open %.1f s after the start (64 "
        "at a time per loadgen), RSS read %.1f s after the start. "
        "mosquitto: $SYS/broker/clients/connected = %s (its own reader may "
        "count as one), %s distinct clients logged as connected, %s of them "
        "with user name '%s' (the certificate CN, mapped by certgate)." % (
            "{:,}".format(n), "{:,}".format(res["conns"]),
            "{:,}".format(res["held_at_end"]), res["errors_total"],
            res["open_s"], res["measured_at_s"],
            res["broker_sys_connected"],
            "{:,}".format(res["broker_logged_clients"]),
            "{:,}".format(res["broker_logged_user_cn"]), CN))
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="1,000 connections instead of 10,000")
    ap.add_argument("--conns", type=int, default=0)
    ap.add_argument("--bin", required=True, help="build directory")
    ap.add_argument("--pki", required=True)
    ap.add_argument("--out", required=True, help="directory for logs")
    ap.add_argument("--json", required=True, help="result file")
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.nofile = raise_nofile()
    started = time.monotonic()
    run = Run(args)
    meta = B.machine()
    meta["profile"] = "quick" if args.quick else "full"
    meta["nofile"] = args.nofile
    mv = subprocess.run(["mosquitto", "-h"], capture_output=True, text=True)
    m = re.search(r"mosquitto version (\S+)", mv.stdout + mv.stderr)
    meta["versions"] = {"mosquitto": m.group(1) if m else "?",
                        "certgate": B.Certgate.version(run)}
    try:
        res = run.run()
    finally:
        run.stop_all()
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["notes"] = run.notes
    with open(args.json, "w") as f:
        json.dump({"meta": meta, "result": res}, f, indent=1)
        f.write("\n")
    text = table(res)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write("%s, %d CPUs (%s), Linux %s, %s, mosquitto %s, certgate %s\n"
                "\n%s\n" % (meta["date"], meta["nproc"], meta["cpu"],
                            meta["kernel"], meta["openssl"],
                            meta["versions"]["mosquitto"],
                            meta["versions"]["certgate"], text))
    B.log("")
    B.log(text)
    for n in run.notes:
        B.log("NOTE: " + n)
    B.log("wrote %s and %s/table.md (%.0f s)" % (args.json, args.out,
                                                  meta["elapsed_s"]))
    return 1 if run.notes else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except B.BenchError as e:
        print("mqtt_idle.py: %s" % e, file=sys.stderr)
        sys.exit(1)
