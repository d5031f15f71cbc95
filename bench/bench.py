#!/usr/bin/python3
"""bench/bench.py: the measuring half of bench/run (Debian's python3 only).

Starts one upstream (bench_upstream, CPU 1) and the three servers under
test (certgate, nginx, HAProxy; each one worker pinned to CPU 0) on
127.0.0.1, runs every scenario for each server in turn (A B C A B C) with
bench/loadgen pinned to CPU 1, and reports rates per server-CPU-second.

Server CPU time is utime + stime of every process of the server (all
threads; nginx master + worker) from /proc/PID/stat. loadgen samples it at
the exact edges of its measured window (--server-pid); this script also
samples it around the whole loadgen run (warm-up included) for raw.json.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

SERVERS = ("certgate", "nginx", "haproxy")
# Every server gets the same suites in the same order of preference
# (certgate's defaults, Mozilla's "intermediate" order), so that all of
# them negotiate the same suite with loadgen (OpenSSL's client, which lists
# AES-256 first); table() names the suite each scenario ran with.
SUITES13 = ["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
            "TLS_CHACHA20_POLY1305_SHA256"]
CIPHERS12 = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
             "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
             "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"]
SERVER_CPU = "0"
LOAD_CPU = "1"
CONNS = 16

# scenario -> loadgen arguments (idle: RSS per connection instead of rate)
SCENARIOS = (
    ("full_tls13", ["--mode", "full", "--tls", "1.3", "--path", "/proxy"]),
    ("full_tls12", ["--mode", "full", "--tls", "1.2", "--path", "/proxy"]),
    ("resume_tls13", ["--mode", "resume", "--tls", "1.3", "--path",
                      "/proxy"]),
    ("keepalive_static", ["--mode", "keepalive", "--tls", "1.3", "--path",
                          "/static"]),
    ("keepalive_proxied", ["--mode", "keepalive", "--tls", "1.3", "--path",
                           "/proxy"]),
    ("idle_rss_per_conn_bytes", ["--mode", "idle", "--tls", "1.3",
                                 "--path", "/proxy"]),
)
IDLE = "idle_rss_per_conn_bytes"

PROFILES = {
    # warm-up and measured seconds per run, idle connections, hold time
    "quick": dict(rounds=1, warmup=1.0, duration=5.0, idle=500, hold=1.5,
                  crypto=0.3),
    "full": dict(rounds=2, warmup=2.0, duration=12.0, idle=1000, hold=3.0,
                 crypto=1.0),
}


class BenchError(Exception):
    pass


def log(msg):
    print(msg, flush=True)


def free_port():
    """A port free right now on 127.0.0.1 (nginx/HAProxy cannot bind 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, seconds=10.0):
    """Waits until 127.0.0.1:port accepts a TCP connection."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise BenchError("exited with status %s during start-up"
                             % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise BenchError("port %d not accepting after %.0f s" % (port, seconds))


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def spawn(argv, cpu, stdout, stderr):
    """Starts argv pinned to cpu (taskset execs it: same pid)."""
    return subprocess.Popen(["taskset", "-c", cpu] + argv, stdout=stdout,
                            stderr=stderr, preexec_fn=raise_nofile)


def stop(proc, seconds=5.0):
    """SIGTERM, then SIGKILL after seconds, of one process we started."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def children(pid):
    """Direct children of pid, from /proc/*/stat."""
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(d))
    return sorted(kids)


def proc_cpu(pids):
    """utime + stime seconds summed over pids (all threads of each)."""
    tck = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        fields = st[st.rindex(")") + 2:].split()
        total += int(fields[11]) + int(fields[12])
    return total / tck


def proc_rss(pids):
    """VmRSS bytes summed over pids."""
    total = 0
    for pid in pids:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


class Server:
    """One server under test, in its own directory under out/."""

    name = None

    def __init__(self, args, upstream_port):
        self.args = args
        self.pki = args.pki
        self.up = upstream_port
        self.dir = os.path.join(args.out, self.name)
        os.makedirs(self.dir, exist_ok=True)
        self.log = os.path.join(self.dir, "server.log")
        self.proc = None
        self.port = None
        self.starts = 0

    def argv(self):
        raise NotImplementedError

    def configure(self):
        raise NotImplementedError

    def start(self):
        self.configure()
        with open(self.log, "ab") as logf:
            self.proc = spawn(self.argv(), SERVER_CPU, logf, logf)
        self.starts += 1
        try:
            self.ready()
        except BenchError as e:
            raise BenchError("%s: %s (log: %s)" % (self.name, e, self.log))

    def ready(self):
        wait_port(self.port, self.proc)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def pids(self):
        """Every process whose CPU and RSS count for this server."""
        return [self.proc.pid]

    def stop(self):
        stop(self.proc)

    def version(self):
        return ""

    def p(self, name):
        return os.path.join(self.pki, name)


class Certgate(Server):
    """certgate serve: one listener, one worker, client_auth required.
    /static is answered by certgate itself (a "respond" route, like nginx's
    return 200 and HAProxy's http-request return); the rest is proxied."""

    name = "certgate"

    def configure(self):
        self.ports_file = os.path.join(self.dir, "ports.json")
        if os.path.exists(self.ports_file):
            os.unlink(self.ports_file)
        cfg = {
            "workers": 1,
            "data_dir": os.path.join(self.dir, "data"),
            "ports_file": self.ports_file,
            "log": {"level": "warn", "access": False},
            "trust": {"bench": {"ca_files": [self.p("root.pem")]}},
            "listeners": [{
                "name": "web", "kind": "https", "listen": "127.0.0.1:0",
                "tls13_ciphersuites": SUITES13, "tls12_ciphers": CIPHERS12,
                "certificates": [{"cert": self.p("server.pem"),
                                  "key": self.p("server.key")}],
                "client_auth": {"enabled": True, "mode": "required",
                                "trust": "bench"},
                "routes": [
                    {"path": "/static",
                     "respond": {"status": 200, "body": "ok\n",
                                 "content_type": "text/plain"}},
                    {"path": "/",
                     "upstream": "http://127.0.0.1:%d" % self.up}],
            }],
        }
        self.conf = os.path.join(self.dir, "certgate.json")
        with open(self.conf, "w") as f:
            json.dump(cfg, f, indent=2)

    def argv(self):
        return [os.path.join(self.args.bin, "certgate"), "serve", "-c",
                self.conf]

    def ready(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError("exited with status %s during start-up"
                                 % self.proc.returncode)
            try:
                with open(self.ports_file) as f:
                    self.port = json.load(f)["web"]
                break
            except (OSError, ValueError, KeyError):
                time.sleep(0.02)
        else:
            raise BenchError("no ports file after 10 s")
        # The ports file is written once the socket listens; no TCP probe
        # here, as certgate logs a connection closed before a handshake.

    def version(self):
        r = subprocess.run(["git", "-C", os.path.dirname(self.args.out),
                            "describe", "--always", "--dirty"],
                           capture_output=True, text=True)
        return "git " + (r.stdout.strip() or "?")


NGINX_CONF = """\
# bench/run: one worker pinned to CPU 0, mTLS required.
daemon off;
master_process on;
worker_processes 1;
worker_cpu_affinity 01;
worker_rlimit_nofile 16384;
pid {dir}/nginx.pid;
error_log {dir}/server.log warn;
events {{ worker_connections 8192; }}
http {{
    access_log off;
    client_body_temp_path {dir}/tmp-body;
    proxy_temp_path {dir}/tmp-proxy;
    fastcgi_temp_path {dir}/tmp-fastcgi;
    uwsgi_temp_path {dir}/tmp-uwsgi;
    scgi_temp_path {dir}/tmp-scgi;
    keepalive_timeout 120s;
    keepalive_requests 100000000;
    upstream up {{
        server 127.0.0.1:{up};
        keepalive 32;
        keepalive_requests 100000000;
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {pki}/server.pem;
        ssl_certificate_key {pki}/server.key;
        ssl_client_certificate {pki}/root.pem;
        ssl_verify_client on;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_prefer_server_ciphers on;
        ssl_ciphers {c12};
        ssl_conf_command Ciphersuites {s13};
        ssl_conf_command Options PrioritizeChaCha;
        location = /static {{
            default_type text/plain;
            return 200 "ok\\n";
        }}
        location / {{
            proxy_pass http://up;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Client-Verify $ssl_client_verify;
            proxy_set_header X-Client-Cert-Subject $ssl_client_s_dn;
            proxy_set_header X-Client-Cert-Issuer $ssl_client_i_dn;
            proxy_set_header X-Client-Cert-Serial $ssl_client_serial;
            proxy_set_header X-Client-Cert-Fingerprint $ssl_client_fingerprint;
            proxy_set_header Client-Cert $ssl_client_escaped_cert;
        }}
    }}
}}
"""


class Nginx(Server):
    """nginx 1.22: master + one worker (both counted)."""

    name = "nginx"

    def configure(self):
        self.port = free_port()
        self.conf = os.path.join(self.dir, "nginx.conf")
        with open(self.conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, up=self.up,
                                      port=self.port, pki=self.pki,
                                      c12=":".join(CIPHERS12),
                                      s13=":".join(SUITES13)))

    def argv(self):
        return ["nginx", "-p", self.dir, "-c", self.conf, "-e", self.log]

    def ready(self):
        wait_port(self.port, self.proc)
        deadline = time.monotonic() + 5
        while not children(self.proc.pid):
            if time.monotonic() > deadline:
                raise BenchError("no nginx worker process")
            time.sleep(0.02)

    def pids(self):
        return [self.proc.pid] + children(self.proc.pid)

    def stop(self):
        # nginx: SIGTERM = fast shutdown of master and workers
        stop(self.proc)

    def version(self):
        r = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
        return r.stderr.strip().replace("nginx version: nginx/", "")


HAPROXY_CONF = """\
# bench/run: one thread pinned to CPU 0, mTLS required.
global
    nbthread 1
    cpu-map 1/1 0
    maxconn 4000
    ssl-server-verify none

defaults
    mode http
    timeout connect 5s
    timeout client 120s
    timeout server 60s
    timeout http-request 30s
    timeout http-keep-alive 120s

frontend web
    bind 127.0.0.1:{port} ssl crt {dir}/server-with-key.pem ca-file {pki}/root.pem verify required ciphers {c12} ciphersuites {s13}
    http-request return status 200 content-type text/plain string "ok" if {{ path /static }}
    http-request set-header X-Client-Verify %[ssl_c_verify]
    http-request set-header X-Client-Cert-Subject %[ssl_c_s_dn]
    http-request set-header X-Client-Cert-Issuer %[ssl_c_i_dn]
    http-request set-header X-Client-Cert-Serial %[ssl_c_serial,hex]
    http-request set-header X-Client-Cert-Fingerprint %[ssl_c_sha1,hex]
    http-request set-header Client-Cert :%[ssl_c_der,base64]:
    default_backend up

backend up
    server up 127.0.0.1:{up}
"""


class Haproxy(Server):
    """HAProxy 2.6: one process, nbthread 1."""

    name = "haproxy"

    def configure(self):
        self.port = free_port()
        pem = os.path.join(self.dir, "server-with-key.pem")
        with open(pem, "w") as out:
            for part in ("server.pem", "server.key"):
                with open(self.p(part)) as f:
                    out.write(f.read())
        os.chmod(pem, 0o600)
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        with open(self.conf, "w") as f:
            f.write(HAPROXY_CONF.format(dir=self.dir, up=self.up,
                                        port=self.port, pki=self.pki,
                                        c12=":".join(CIPHERS12),
                                        s13=":".join(SUITES13)))

    def argv(self):
        return ["haproxy", "-db", "-f", self.conf]

    def version(self):
        r = subprocess.run(["haproxy", "-v"], capture_output=True, text=True)
        m = re.search(r"version (\S+)", r.stdout)
        return m.group(1) if m else "?"


class Bench:
    """The run: upstream, servers, scenarios, results."""

    def __init__(self, args):
        self.args = args
        self.prof = PROFILES["quick" if args.quick else "full"]
        self.loadgen = os.path.join(args.bin, "bench", "loadgen")
        self.upstream = None
        self.servers = []
        self.runs = []
        self.notes = []

    # -- processes ---------------------------------------------------------
    def start_upstream(self, cpu):
        p = spawn([os.path.join(self.args.bin, "bench", "bench_upstream")],
                  cpu, subprocess.PIPE, None)
        line = p.stdout.readline().decode()
        if not line.startswith("PORT "):
            stop(p)
            raise BenchError("bench_upstream did not start: %r" % line)
        return p, int(line.split()[1])

    def start(self):
        self.upstream, self.up_port = self.start_upstream(LOAD_CPU)
        for cls in (Certgate, Nginx, Haproxy):
            srv = cls(self.args, self.up_port)
            srv.start()
            self.servers.append(srv)
            log("started %s on 127.0.0.1:%d (pids %s)"
                % (srv.name, srv.port, srv.pids()))

    def stop_all(self):
        for srv in self.servers:
            srv.stop()
        stop(self.upstream)

    # -- one loadgen run ---------------------------------------------------
    def loadgen_argv(self, srv, extra):
        pki = self.args.pki
        return [self.loadgen, "--port", str(srv.port), "--sni", "localhost",
                "--ca", os.path.join(pki, "root.pem"),
                "--cert", os.path.join(pki, "client.pem"),
                "--key", os.path.join(pki, "client.key"),
                "--server-pid", ",".join(map(str, srv.pids()))] + extra

    def run_loadgen(self, argv, errpath, on_ready=None):
        """Runs loadgen on CPU 1; returns its JSON report (or raises)."""
        limit = self.prof["warmup"] + self.prof["duration"] + 60
        with open(errpath, "wb") as err:
            p = spawn(argv, LOAD_CPU, subprocess.PIPE, err)
        watchdog = threading.Timer(limit, p.kill)
        watchdog.start()
        try:
            report = None
            for raw in p.stdout:
                line = raw.decode().strip()
                if line.startswith("READY") and on_ready:
                    on_ready(int(line.split()[1]))
                elif line.startswith("{"):
                    report = json.loads(line)
            p.wait()
        finally:
            watchdog.cancel()
            stop(p)
        if report is None:
            raise BenchError("loadgen gave no report (exit %s): %s"
                             % (p.returncode, read_text(errpath)[-500:]))
        return report

    def run_one(self, rnd, scenario, extra, srv):
        """One scenario against one server; appends to self.runs."""
        rec = {"round": rnd, "scenario": scenario, "server": srv.name}
        errpath = os.path.join(self.args.out, "loadgen.err")
        logpos = file_size(srv.log)
        try:
            if not srv.alive():
                self.note("%s was not running before %s: restarted"
                          % (srv.name, scenario))
                srv.start()
            if scenario == IDLE:
                self.run_idle(srv, extra, errpath, rec)
            else:
                self.run_rate(srv, extra, errpath, rec)
        except (BenchError, OSError, ValueError,
                subprocess.TimeoutExpired) as e:
            rec["failed"] = str(e)
        rec["loadgen_stderr"] = read_text(errpath).splitlines()[:20]
        rec["server_log"] = read_text(srv.log, logpos).splitlines()[:40]
        if not srv.alive():
            rec["server_exit"] = srv.proc.returncode
            self.note("%s EXITED (status %s) during %s round %d; log: %s"
                      % (srv.name, srv.proc.returncode, scenario, rnd,
                         rec["server_log"][-5:]))
        self.runs.append(rec)
        log(describe(rec))
        return rec

    def run_rate(self, srv, extra, errpath, rec):
        pids = srv.pids()
        argv = self.loadgen_argv(srv, extra + [
            "--conns", str(CONNS), "--warmup", str(self.prof["warmup"]),
            "--duration", str(self.prof["duration"])])
        cpu0 = proc_cpu(pids)
        r = self.run_loadgen(argv, errpath)
        rec["server_cpu_whole_run_s"] = round(proc_cpu(pids) - cpu0, 3)
        rec["loadgen"] = r
        if r.get("ciphers_differ"):
            self.note("%s %s: loadgen's connections negotiated different "
                      "suites" % (rec["scenario"], srv.name))
        scpu, el = r["server_cpu_s"], r["elapsed_s"]
        if not scpu or r["requests"] == 0:
            raise BenchError("no requests or no server CPU measured")
        rec["value"] = round(r["requests"] / scpu, 1)
        rec["server_util"] = round(scpu / el, 3)
        busy = r.get("cpu_busy", [])
        if len(busy) > int(LOAD_CPU):
            rec["cpu0_busy"] = busy[int(SERVER_CPU)]
            rec["cpu1_busy"] = busy[int(LOAD_CPU)]
        rec["client_util"] = round(r["client_cpu_s"] / el, 3)
        if r["client_cpu_s"] > 0:
            rec["client_rate_per_cpu_s"] = round(
                r["requests"] / r["client_cpu_s"], 1)

    def run_idle(self, srv, extra, errpath, rec):
        """RSS per idle connection on a fresh server process: allocators
        (HAProxy's pools, glibc's free lists) keep what earlier runs freed,
        which would hide the connections' memory. A short full-handshake
        warm-up first, so one-time set-up is not counted."""
        srv.stop()
        srv.start()
        self.run_loadgen(self.loadgen_argv(srv, [
            "--mode", "full", "--conns", str(CONNS), "--duration", "0.5",
            "--path", "/proxy"]), errpath)
        pids = srv.pids()
        n = self.prof["idle"]
        argv = self.loadgen_argv(srv, extra + [
            "--conns", str(n), "--parallel", "32",
            "--duration", str(self.prof["hold"])])
        rss = {"before": proc_rss(pids)}

        def ready(held):
            time.sleep(0.3)  # let the last handshakes' frees settle
            rss["after"] = proc_rss(srv.pids())
            rss["held"] = held

        r = self.run_loadgen(argv, errpath, ready)
        rec["loadgen"] = r
        rec["rss_before"] = rss["before"]
        if "after" not in rss or not rss["held"]:
            raise BenchError("loadgen never held its connections")
        rec["rss_after"] = rss["after"]
        rec["held"] = rss["held"]
        rec["value"] = round((rss["after"] - rss["before"]) / rss["held"])

    def note(self, msg):
        self.notes.append(msg)
        log("NOTE: " + msg)


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_text(path, offset=0):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


def describe(rec):
    """One progress line for a finished run."""
    head = "[r%d] %-24s %-9s" % (rec["round"], rec["scenario"], rec["server"])
    if "failed" in rec:
        return head + " FAILED: " + rec["failed"]
    r = rec["loadgen"]
    if rec["scenario"] == IDLE:
        return head + (" %7d B/conn  (%d held, RSS %.1f -> %.1f MB, "
                       "errors %d)" % (rec["value"], rec["held"],
                                       rec["rss_before"] / 2**20,
                                       rec["rss_after"] / 2**20,
                                       r["errors_total"]))
    return head + (" %9.1f /server-CPU-s  %8.1f req/s  server %3.0f%% "
                   "(CPU0 %3.0f%%)  loadgen %3.0f%% (CPU1 %3.0f%%)  "
                   "p99 %.2f ms  errors %d  %s%s"
                   % (rec["value"], r["rate"], rec["server_util"] * 100,
                      rec.get("cpu0_busy", 0) * 100,
                      rec["client_util"] * 100,
                      rec.get("cpu1_busy", 0) * 100, r["p99_ms"], r["errors"],
                      r.get("cipher"),
                      "  resumed %d/%d" % (r["resumed"], r["requests"])
                      if "resume" in rec["scenario"] else ""))


def mean(values):
    return round(statistics.mean(values), 1) if values else None


def machine():
    """Date, machine and versions for raw.json and the README table."""
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    ossl = subprocess.run(["openssl", "version"], capture_output=True,
                          text=True).stdout.strip()
    return {"date": datetime.datetime.now(datetime.timezone.utc)
            .strftime("%Y-%m-%d %H:%M UTC"),
            "nproc": os.cpu_count(), "cpu": model,
            "kernel": platform.release(), "openssl": ossl,
            "loadavg_at_start": open("/proc/loadavg").read().split()[:3]}


def crypto_limit(args, secs):
    """Runs cryptolimit on the servers' CPU; returns its JSON."""
    r = subprocess.run(["taskset", "-c", SERVER_CPU,
                        os.path.join(args.bin, "bench", "cryptolimit"),
                        str(secs)], capture_output=True, text=True,
                       check=True)
    return json.loads(r.stdout)


def self_check(bench):
    """loadgen against a trivial server: plain HTTP keep-alive to a second
    bench_upstream on CPU 0. Shows loadgen's own per-request ceiling."""
    p, port = bench.start_upstream(SERVER_CPU)
    try:
        argv = [bench.loadgen, "--plain", "--mode", "keepalive", "--port",
                str(port), "--conns", str(CONNS), "--warmup", "0.5",
                "--duration", "2", "--server-pid", str(p.pid)]
        r = bench.run_loadgen(argv, os.path.join(bench.args.out,
                                                 "loadgen.err"))
    finally:
        stop(p)
    r["client_rate_per_cpu_s"] = round(r["requests"] / r["client_cpu_s"])
    return r


def summarize(runs):
    """{scenario: {server: mean value over rounds}} as the issue asks."""
    out = {}
    for scenario, _ in SCENARIOS:
        out[scenario] = {}
        for name in SERVERS:
            vals = [r["value"] for r in runs if r["scenario"] == scenario
                    and r["server"] == name and "value" in r]
            out[scenario][name] = mean(vals)
    return out


def ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"


def table(summary, runs, crypto, check):
    """The printed (and README) table, as Markdown."""
    unit = {"full_tls13": "handshakes", "full_tls12": "handshakes",
            "resume_tls13": "handshakes", "keepalive_static": "requests",
            "keepalive_proxied": "requests", IDLE: "bytes"}
    lines = ["| scenario (per server-CPU-second; RSS in bytes) | certgate "
             "| nginx | haproxy | certgate/nginx | certgate/haproxy "
             "| loadgen per loadgen-CPU-s (busiest run) |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for scenario, _ in SCENARIOS:
        v = summary[scenario]
        # loadgen batches more, and so costs less per request, the busier
        # it is: its capacity shows in the run where it was busiest.
        lg = [(r["client_util"], r["client_rate_per_cpu_s"]) for r in runs
              if r["scenario"] == scenario and "client_rate_per_cpu_s" in r]
        cells = ["%.0f" % v[n] if v[n] is not None else "FAILED"
                 for n in SERVERS]
        lines.append("| %s (%s) | %s | %s | %s | %s | %s | %s |" % (
            scenario, unit[scenario], cells[0], cells[1], cells[2],
            ratio(v["certgate"], v["nginx"]),
            ratio(v["certgate"], v["haproxy"]),
            "%.0f" % max(lg)[1] if lg else "-"))
    cg = summary["full_tls13"]["certgate"]
    lines.append("")
    lines.append("Suites negotiated: %s." % "; ".join(
        "%s %s" % (scenario, "/".join(sorted(set(
            str(r["loadgen"].get("cipher")) for r in runs
            if r["scenario"] == scenario and "loadgen" in r))))
        for scenario, _ in SCENARIOS if scenario != IDLE))
    lines.append("Physical limit (cryptolimit, CPU 0): %d handshakes per "
                 "CPU-second (ECDSA P-256 sign %.1f us, verify %.1f us x2, "
                 "X25519 keygen+derive %.1f us = %.1f us)%s." % (
                     crypto["handshakes_per_s"], crypto["sign_us"],
                     crypto["verify_us"], crypto["x25519_us"],
                     crypto["handshake_us"],
                     "; certgate full_tls13 is at %.0f%% of it"
                     % (100 * cg / crypto["handshakes_per_s"]) if cg else ""))
    lines.append("loadgen self-check (plain HTTP keep-alive, trivial "
                 "server): %d requests per loadgen-CPU-second." %
                 check["client_rate_per_cpu_s"])
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--bin", required=True, help="build directory")
    ap.add_argument("--pki", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    bench = Bench(args)
    meta = machine()
    meta["profile"] = "quick" if args.quick else "full"
    meta.update({k: v for k, v in bench.prof.items()})
    meta["conns"] = CONNS
    try:
        meta["crypto"] = crypto = crypto_limit(args, bench.prof["crypto"])
        log("physical limit: %s" % json.dumps(crypto))
        meta["loadgen_self_check"] = check = self_check(bench)
        log("loadgen self-check: %d req/s on %.2f loadgen-CPU-s" % (
            check["rate"], check["client_cpu_s"]))
        bench.start()
        meta["versions"] = {s.name: s.version() for s in bench.servers}
        for rnd in range(1, bench.prof["rounds"] + 1):
            for scenario, extra in SCENARIOS:
                for srv in bench.servers:
                    bench.run_one(rnd, scenario, extra, srv)
    finally:
        bench.stop_all()
    for scenario, _ in SCENARIOS:
        got = set(r["loadgen"].get("cipher") for r in bench.runs
                  if r["scenario"] == scenario and "loadgen" in r and
                  scenario != IDLE)
        if len(got) > 1:
            bench.note("%s: the servers negotiated different suites (%s)"
                       % (scenario, ", ".join(sorted(map(str, got)))))
    meta["server_starts"] = {s.name: s.starts for s in bench.servers}
    meta["notes"] = bench.notes
    summary = summarize(bench.runs)
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    with open(os.path.join(args.out, "raw.json"), "w") as f:
        json.dump({"meta": meta, "runs": bench.runs}, f, indent=1)
        f.write("\n")
    text = table(summary, bench.runs, crypto, check)
    with open(os.path.join(args.out, "table.md"), "w") as f:
        f.write("%s, %d CPUs (%s), %s, %s, certgate %s\n\n%s\n" % (
            meta["date"], meta["nproc"], meta["cpu"], meta["openssl"],
            ", ".join("%s %s" % (k, v) for k, v in meta["versions"].items()
                      if k != "certgate"), meta["versions"]["certgate"],
            text))
    log("")
    log(text)
    for n in bench.notes:
        log("NOTE: " + n)
    log("wrote %s/summary.json, raw.json, table.md" % args.out)
    failed = [r for r in bench.runs if "failed" in r]
    return 1 if failed or bench.notes else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print("bench.py: %s" % e, file=sys.stderr)
        sys.exit(1)
