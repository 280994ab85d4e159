#!/usr/bin/env python3
"""Bad input gets a clear error and changes nothing (DESIGN 8):
  - an invalid configuration names FILE:LINE;
  - a member CSV with bad lines names every bad line and imports nothing;
  - an API call without a token, or with a wrong one, is refused (401);
  - hostile SMTP peers (an endless line, garbage, a slow drip, an early
    close) cost at most their own sessions: the rest of the mailing
    completes and the daemon stays up."""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from sluicetest import BINARY, Harness, check  # noqa: E402


class Hostile(threading.Thread):
    """A peer on 127.0.0.31:port that misbehaves in one way per connection."""

    def __init__(self, mode):
        super().__init__(daemon=True)
        self.mode = mode
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.31", 0))
        self.sock.listen(50)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.stopped = False

    def run(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            if self.mode == "endless":
                c.sendall(b"220-")
                chunk = b"x" * 65536
                for _ in range(64):  # 4 MiB without a line end
                    c.sendall(chunk)
            elif self.mode == "garbage":
                c.sendall(b"\x00\xff\xfeHELLO?? not smtp\r\n")
                time.sleep(0.5)
            elif self.mode == "drip":
                for b in b"220 slow.test ESMTP\r\n":
                    c.sendall(bytes([b]))
                    time.sleep(1.0)
            elif self.mode == "close":
                c.sendall(b"220 x ESMTP\r\n")
                c.recv(1024)
                c.sendall(b"250-x\r\n250-PIPEL")
        except OSError:
            pass
        finally:
            c.close()

    def stop(self):
        self.stopped = True
        self.sock.close()


def api(h, path, token):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (h.admin_port, path))
    if token is not None:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def main():
    with Harness("badinput") as h:
        # 1. Invalid configuration: FILE:LINE, and the daemon does not start.
        bad = os.path.join(h.dir, "bad.conf")
        with open(bad, "w") as f:
            f.write("[server]\ndata_dir = %s\nno_such_key = 1\n" % h.dir)
        r = subprocess.run([BINARY, "serve", "-n", "-c", bad], capture_output=True, text=True)
        check(r.returncode != 0 and ("%s:3:" % bad) in r.stderr,
              "invalid config is refused with FILE:LINE (%s)" % r.stderr.strip())
        with open(bad, "w") as f:
            f.write("[timeouts]\ngreeting = 0\n")
        r = subprocess.run([BINARY, "serve", "-n", "-c", bad], capture_output=True, text=True)
        check(r.returncode != 0 and ("%s:2:" % bad) in r.stderr, "out-of-range value names its line")

        hostiles = {m: Hostile(m) for m in ("endless", "garbage", "drip", "close")}
        p = h.smtp_port
        h.start_sim("[provider good]\ndomains = good.test\nmx = 127.0.0.21:%d\n" % p)
        h.write_config("")
        # short timeouts so the slow drip costs seconds, not minutes
        with open(h.conf) as f:
            conf = f.read().replace("greeting = 10s", "greeting = 3s")
        with open(h.conf, "w") as f:
            f.write(conf)
        r = subprocess.run([BINARY, "serve", "-n", "-c", h.conf], capture_output=True, text=True)
        check(r.returncode == 0 and r.stdout.strip() == "configuration OK", "a valid config checks OK")
        h.start_serve()
        # Threads start after the daemons: the harness spawns with a
        # preexec function, which must not run beside other threads.
        for t in hostiles.values():
            t.start()

        # 2. API authentication.
        token = open(os.path.join(h.dir, "data", "admin.token")).read().strip()
        check(api(h, "/api/v1/streams", None)[0] == 401, "no token: 401")
        check(api(h, "/api/v1/streams", "0" * 64)[0] == 401, "wrong token: 401")
        check(api(h, "/api/v1/streams", token)[0] == 200, "right token: 200")

        # 3. Bad CSV: every bad line named, nothing imported.
        h.cli("stream", "add", "s", "--ip", "127.0.0.11", "--ip", "127.0.0.12")
        h.cli("list", "create", "l", "--from", "l@sluice.test", "--stream", "s")
        csv = os.path.join(h.dir, "bad.csv")
        with open(csv, "w") as f:
            f.write("a@good.test\nnot-an-address\nb@good.test,B\nc@good.test,C,emperor\n")
        r = h.cli("member", "import", "l", csv, check=False)
        check(r.returncode != 0, "a bad CSV fails")
        check("%s:2:" % csv in r.stderr and "%s:4:" % csv in r.stderr,
              "every bad line is named with its number")
        show = h.cli("list", "show", "l", json_out=True)
        check(show["members"].get("active", 0) == 0, "nothing was imported from the bad file")

        # 4. Hostile peers cost their own sessions only.
        good = ["g%d@good.test" % i for i in range(300)]
        bad_rcpts = []
        for m, t in hostiles.items():
            h.cli("route", "set", "%s.test" % m, "127.0.0.31:%d" % t.port)
            bad_rcpts += ["%s%d@%s.test" % (m, i, m) for i in range(5)]
        h.cli("route", "set", "good.test", "127.0.0.21:%d" % p)
        with open(csv, "w") as f:
            f.write("\n".join(good + bad_rcpts) + "\n")
        h.cli("member", "import", "l", csv)
        msg = os.path.join(h.dir, "m.eml")
        with open(msg, "w") as f:
            f.write("From: l@sluice.test\nSubject: x\n\nbody\n")
        mid = h.cli("mailing", "send", "l", msg, json_out=True)["id"]
        deadline = time.time() + 120
        while time.time() < deadline:
            c = h.mailing(mid)["counts"]
            attempted = set(r[0] for r in h.query(
                "SELECT DISTINCT domain FROM attempt WHERE mailing_id = ?", (mid,)))
            if c["sent"] == len(good) and {"%s.test" % m for m in hostiles} <= attempted:
                break
            time.sleep(0.5)
        c = h.mailing(mid)["counts"]
        print("counts:", c)
        check(c["sent"] == len(good), "every recipient at the good provider was delivered")
        check(c["failed"] == 0, "no recipient failed because of a hostile peer")
        rows = h.query("SELECT domain, category, text FROM attempt WHERE mailing_id = ? AND outcome != 'sent'", (mid,))
        seen = {}
        for d, cat, text in rows:
            seen.setdefault(d, set()).add(cat)
        print("hostile outcomes:", {d: sorted(v) for d, v in seen.items()})
        for m in hostiles:
            check("%s.test" % m in seen, "the %s peer's recipients were deferred, not lost" % m)
        check(h.serve_proc.poll() is None, "the daemon is still running")
        for m, t in hostiles.items():
            print("%s: %d sessions" % (m, t.connections))
            check(t.connections <= 10, "the %s peer cost a bounded number of sessions" % m)
        h.cli("mailing", "cancel", str(mid))
        check(h.stop(h.serve_proc) == 0, "serve exits 0 on SIGTERM")
        for t in hostiles.values():
            t.stop()


if __name__ == "__main__":
    main()
