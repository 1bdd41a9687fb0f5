#!/usr/bin/env python3
"""Issue 16's preemption check: how fast a busy Go program runs untraced, with latch
attached and running, and with Delve attached and running.

Go preempts a goroutine that runs long with SIGURG to its thread, many times a second; a
debugger sees every such signal first. latch's ptrace thread passes them on without a
trip through the session (and sends the editor nothing); this measures what that costs.

    cargo build --release -p latch && python3 bench/scripts/sigurg.py [--seconds 3] [--rounds 3]

Builds bench/targets/gobusy with the `go` in PATH, then runs untraced, latch and Delve
(`dlv attach --headless --continue`, if installed) in turn, each on a fresh process,
and prints rounds of work per second and the DAP messages latch sent after the attach.
A benchmark, not a test: it sleeps to measure a rate."""
import argparse, json, os, queue, shutil, signal, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class Dap:
    """A minimal DAP client over a child's stdio."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        self.seq, self.q, self.seen = 0, queue.Queue(), []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        f = self.p.stdout
        while True:
            line = f.readline()
            if not line:
                self.q.put(None)
                return
            if line.startswith(b"Content-Length"):
                n = int(line.split(b":")[1])
                f.readline()
                self.q.put(json.loads(f.read(n)))

    def send(self, command, **args):
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command,
                           "arguments": args}).encode()
        self.p.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.p.stdin.flush()
        return self.seq

    def wait(self, match):
        for i, m in enumerate(self.seen):
            if match(m):
                return self.seen.pop(i)
        while True:
            m = self.q.get(timeout=15)
            if m is None:
                raise RuntimeError("latch ended")
            if match(m):
                return m
            self.seen.append(m)

    def request(self, command, **args):
        seq = self.send(command, **args)
        return self.wait(lambda m: m.get("type") == "response" and m["request_seq"] == seq)

    def drain(self):
        while not self.q.empty():
            m = self.q.get()
            if m is not None:
                self.seen.append(m)


def rate(counter, seconds):
    time.sleep(0.5)
    a, t0 = int(open(counter).read() or 0), time.time()
    time.sleep(seconds)
    b, t1 = int(open(counter).read() or 0), time.time()
    return (b - a) / (t1 - t0)


def run(mode, program, work, latch, seconds):
    counter = os.path.join(work, f"count-{mode}")
    open(counter, "w").write("0")
    target = subprocess.Popen([program, counter])
    time.sleep(0.5)
    dap = delve = None
    messages = None
    try:
        if mode == "latch":
            dap = Dap([latch, "dap"])
            dap.request("initialize", adapterID="latch", clientID="sigurg")
            attach = dap.send("attach", pid=target.pid)
            dap.wait(lambda m: m.get("type") == "event" and m["event"] == "initialized")
            dap.request("configurationDone")
            dap.wait(lambda m: m.get("type") == "response" and m["request_seq"] == attach)
            dap.drain()
            before = len(dap.seen)
        elif mode == "delve":
            delve = subprocess.Popen(["dlv", "attach", str(target.pid), "--headless", "--continue",
                                      "--accept-multiclient", "--listen", "127.0.0.1:0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.0)
        r = rate(counter, seconds)
        if dap:
            dap.drain()
            messages = len(dap.seen) - before
            dap.request("disconnect")
        if delve:
            delve.send_signal(signal.SIGINT)
            delve.wait(timeout=10)
    finally:
        target.kill()
        target.wait()
    return r, messages


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--latch", default=os.path.join(ROOT, "target", "release", "latch"))
    args = ap.parse_args()
    work = tempfile.mkdtemp(prefix="latch-sigurg-")
    program = os.path.join(work, "gobusy")
    subprocess.run(["go", "build", "-o", program, "."], check=True,
                   cwd=os.path.join(ROOT, "bench", "targets", "gobusy"),
                   env={**os.environ, "GOFLAGS": "-mod=mod", "GOPROXY": "off"})
    modes = ["none", "latch"] + (["delve"] if shutil.which("dlv") else [])
    results = {m: [] for m in modes}
    for _ in range(args.rounds):
        for mode in modes:
            r, messages = run(mode, program, work, args.latch, args.seconds)
            results[mode].append(r)
            extra = f", {messages} DAP messages to the editor while running" if messages is not None else ""
            print(f"{mode}: {r / 1e6:.2f} M rounds/s{extra}", file=sys.stderr)
    base = sorted(results["none"])[len(results["none"]) // 2]
    print("| attached | rounds of work per second (median) | of untraced |")
    print("|---|---:|---:|")
    for mode in modes:
        med = sorted(results[mode])[len(results[mode]) // 2]
        print(f"| {mode} | {med / 1e6:.2f} M | {100 * med / base:.0f}% |")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
