"""Shared harness for sluice's integration tests.

Starts real processes on loopback addresses only: dnsmasq (a real DNS
server answering MX and A queries), `sluice sim` (simulated providers) and
`sluice serve` (the daemon on a temporary SQLite database), and drives the
daemon through the `sluice` CLI exactly as an operator would. Every process
a test starts is stopped when the test ends, whatever happened.
"""
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

SKIP = 77  # CTest SKIP_RETURN_CODE

try:
    import ctypes
    _libc = ctypes.CDLL("libc.so.6", use_errno=True)
except OSError:  # pragma: no cover
    _libc = None


def _die_with_parent():
    """In the child: be killed when the test process dies, however it dies
    (a CTest timeout kills the test, not what it started)."""
    if _libc is not None:
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _exit_on_term(signum, frame):
    raise SystemExit("terminated by signal %d" % signum)


signal.signal(signal.SIGTERM, _exit_on_term)

BINARY = os.environ.get("SLUICE_BINARY") or shutil.which("sluice")


def skip(why):
    print("SKIP: " + why)
    sys.exit(SKIP)


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=10.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited early with %s" % proc.returncode)
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on %s:%d after %.0fs" % (host, port, timeout))


class Harness:
    """One test's world: a temp dir, processes, and the CLI."""

    def __init__(self, name):
        if not BINARY or not os.path.exists(BINARY):
            skip("the sluice binary is not built (SLUICE_BINARY unset)")
        self.dir = tempfile.mkdtemp(prefix="sluice-%s-" % name)
        self.procs = []
        self.admin_port = free_port()
        self.dns_port = None
        self.serve_proc = None
        self.conf = os.path.join(self.dir, "sluice.conf")
        self.record = os.path.join(self.dir, "received.jsonl")
        self.db = os.path.join(self.dir, "data", "sluice.db")
        self.smtp_port = free_port()

    # -- processes -------------------------------------------------------
    def spawn(self, args, log, **kw):
        f = open(os.path.join(self.dir, log), "ab")
        p = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT,
                             stdin=subprocess.DEVNULL, preexec_fn=_die_with_parent, **kw)
        f.close()
        self.procs.append(p)
        return p

    def stop(self, p, sig=signal.SIGTERM, timeout=20):
        if p.poll() is not None:
            return p.returncode
        p.send_signal(sig)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            raise RuntimeError("process %s did not stop within %ss" % (p.args, timeout))

    def close(self, keep=False):
        for p in reversed(self.procs):
            if p.poll() is None:
                p.kill()
                p.wait()
        if keep or os.environ.get("SLUICE_KEEP_TEST_DIR"):
            print("kept", self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, et, ev, tb):
        self.close(keep=et is not None)
        return False

    # -- dnsmasq ---------------------------------------------------------
    def start_dns(self, mx, hosts):
        """mx: [(domain, host, pref)], hosts: [(name, ip)]."""
        dnsmasq = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
        if not os.path.exists(dnsmasq):
            skip("dnsmasq is not installed (scripts/install-deps installs dnsmasq-base)")
        self.dns_port = free_port()
        args = [dnsmasq, "--no-daemon", "--no-resolv", "--no-hosts",
                "--conf-file=/dev/null", "--pid-file=",
                "--listen-address=127.0.0.1", "--bind-interfaces",
                "--port=%d" % self.dns_port, "--local=/test/", "--local-ttl=60",
                "--user=" + ("root" if os.geteuid() == 0 else os.environ.get("USER", "nobody"))]
        for d, h, pref in mx:
            args.append("--mx-host=%s,%s,%d" % (d, h, pref))
        for name, ip in hosts:
            args.append("--host-record=%s,%s" % (name, ip))
        p = self.spawn(args, "dnsmasq.log")
        time.sleep(0.3)
        if p.poll() is not None:
            raise RuntimeError("dnsmasq failed: " + open(os.path.join(self.dir, "dnsmasq.log")).read())
        return p

    # -- simulator -------------------------------------------------------
    def start_sim(self, scenario):
        path = os.path.join(self.dir, "providers.conf")
        with open(path, "w") as f:
            f.write("[sim]\nrecord = %s\nrecord_data = yes\nseed = 1\n\n" % self.record)
            f.write(scenario)
        p = self.spawn([BINARY, "sim", "-c", path], "sim.log")
        return p

    # -- daemon ----------------------------------------------------------
    def write_config(self, extra=""):
        with open(self.conf, "w") as f:
            f.write("[server]\ndata_dir = %s\nhostname = test.sluice.test\nlog_level = info\n\n"
                    % os.path.join(self.dir, "data"))
            f.write("[admin]\nlisten = 127.0.0.1:%d\n\n" % self.admin_port)
            f.write("[dns]\nresolver = %s\ntimeout = 2s\n\n"
                    % ("127.0.0.1:%d" % self.dns_port if self.dns_port else ""))
            f.write("[delivery]\nbounce_domain = bounces.sluice.test\nsmtp_port = %d\n"
                    "retry_schedule = 1s, 2s, 4s\nmax_age = 10m\nidle = 2s\n\n" % self.smtp_port)
            f.write("[timeouts]\nconnect = 5s\ngreeting = 10s\n\n")
            f.write(extra)

    def start_serve(self):
        p = self.spawn([BINARY, "serve", "-c", self.conf], "serve.log")
        wait_port("127.0.0.1", self.admin_port, 20, p)
        self.serve_proc = p
        return p

    def serve_log(self):
        with open(os.path.join(self.dir, "serve.log"), errors="replace") as f:
            return f.read()

    # -- CLI -------------------------------------------------------------
    def cli(self, *args, check=True, input=None, json_out=False):
        cmd = [BINARY] + list(args) + ["-c", self.conf] + (["--json"] if json_out else [])
        r = subprocess.run(cmd, capture_output=True, text=True, input=input, timeout=120)
        if check and r.returncode != 0:
            raise AssertionError("%s failed (%d): %s%s" % (" ".join(args), r.returncode,
                                                           r.stdout, r.stderr))
        if json_out and r.returncode == 0:
            return json.loads(r.stdout)
        return r

    def mailing(self, mid):
        return self.cli("mailing", "show", str(mid), json_out=True)

    def wait_done(self, mid, timeout=300):
        deadline = time.time() + timeout
        m = None
        while time.time() < deadline:
            m = self.mailing(mid)
            if m["state"] in ("done", "cancelled"):
                return m
            time.sleep(0.5)
        raise AssertionError("mailing %s not done after %ss: %s" % (mid, timeout, m))

    # -- store and records -----------------------------------------------
    def query(self, sql, args=()):
        con = sqlite3.connect("file:%s?mode=ro" % self.db, uri=True, timeout=10)
        try:
            return con.execute(sql, args).fetchall()
        finally:
            con.close()

    def received(self):
        """Accepted messages recorded by the simulator."""
        out = []
        if not os.path.exists(self.record):
            return out
        with open(self.record) as f:
            for line in f:
                line = line.strip()
                if not line:
                    continue
                r = json.loads(line)
                if r.get("type") != "message":
                    continue
                for rcpt in r.get("rcpts", []):
                    one = dict(r)
                    one["rcpt"] = rcpt
                    one["message"] = r.get("data", "")
                    out.append(one)
        return out

    def records(self, kind):
        """Every simulator record of one type (connect, close, reject, ...)."""
        out = []
        if os.path.exists(self.record):
            with open(self.record) as f:
                for line in f:
                    if line.strip():
                        r = json.loads(line)
                        if r.get("type") == kind:
                            out.append(r)
        return out


def check(cond, what):
    if not cond:
        raise AssertionError(what)
    print("ok -", what)
