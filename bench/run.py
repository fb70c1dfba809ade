#!/usr/bin/env python3
"""run.py - the benchmark behind `make bench`: select_server against the
textbook alternatives, in throughput and in what the server spends.

Every scenario runs against a fresh server, pinned to CPU 0 while the load
generator (bench/loadgen) runs on CPU 1 when the machine has two cores.  Each
measurement is the median of --runs runs.  The load generator reads the
server's CPU time (the whole process tree, forked children included) over the
measured phase only, so the table shows the cost per unit of work, not just
the speed: on a 2-core machine the load generator saturates its core about
as soon as a good server does.

    bench/run.py                  everything, results in bench/RESULTS.md
    bench/run.py --runs 1 --seconds 1 --servers select_server,textbook_select

It also times the other half of the project, select_client, against netcat
and socat as a client in a pipeline: the same file through the same
select_server's echo, into a pipe and into /dev/null (client_pipeline).

Start reading at main(); SERVERS and SCENARIOS say what is measured.
"""

import argparse
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOADGEN = os.path.join(ROOT, "bench", "loadgen")
HOST = "127.0.0.1"

# name: (command, what it is, scenarios it cannot run).  "PORT" in a command
# is replaced by 0; each server prints the port it got on its first line.
SERVERS = {
    "select_server": (
        [os.path.join(ROOT, "select_server"), "-p", "0", "-b", HOST, "-q",
         "--no-udp", "-B", "1024"],
        "this project: one select() loop, non-blocking buffered I/O", set()),
    "textbook_select": (
        [os.path.join(ROOT, "lab", "naive_server"), "-p", "0"],
        "lab/naive_server: the textbook select() loop, blocking writes",
        set()),
    "fork": (
        [os.path.join(ROOT, "lab", "fork_server"), "-p", "0"],
        "lab/fork_server: a process per client (UNP ch. 5)", set()),
    "iterative": (
        [os.path.join(ROOT, "lab", "iterative_server"), "-p", "0"],
        "lab/iterative_server: one client at a time",
        {"pingpong-100", "pingpong-1000", "sparse", "hold-1000"}),
    "asyncio": (
        [sys.executable, os.path.join(ROOT, "bench", "asyncio_echo.py"), "-p",
         "0"],
        "bench/asyncio_echo.py: Python asyncio streams", set()),
    "socat": (
        ["socat", "-d", "-d",
         "TCP-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,backlog=1024", "PIPE"],
        "socat TCP-LISTEN,fork PIPE: a process per client", set()),
}

# name: (loadgen arguments, columns taken from its summary line).
SCENARIOS = {
    "bulk": (["bulk", "-s", "256"], ["mib_per_s", "cpu_s_per_gib"]),
    "pingpong-1": (["pingpong", "-c", "1"], ["rt_per_s", "cpu_us_per_rt"]),
    "pingpong-100": (["pingpong", "-c", "100"],
                     ["rt_per_s", "cpu_us_per_rt"]),
    "pingpong-1000": (["pingpong", "-c", "1000"],
                      ["rt_per_s", "cpu_us_per_rt"]),
    "sparse": (["pingpong", "-c", "1000", "-a", "10"],
               ["rt_per_s", "cpu_us_per_rt"]),
    "connrate": (["connrate", "-P", "8"], ["conn_per_s", "cpu_us_per_conn"]),
}
TIMED = {"pingpong-1", "pingpong-100", "pingpong-1000", "sparse", "connrate"}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3, help="runs per median")
    ap.add_argument("--seconds", type=float, default=3.0,
                    help="measured seconds per timed run")
    ap.add_argument("--servers", default=",".join(SERVERS),
                    help="comma-separated subset of: " + ", ".join(SERVERS))
    ap.add_argument("--client-runs", type=int, default=7,
                    help="runs per median of the client pipeline (0: skip)")
    ap.add_argument("--client-mib", type=int, default=512,
                    help="MiB the client pipeline sends through the echo")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench", "RESULTS.md"))
    args = ap.parse_args()

    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in SERVERS:
            sys.exit(f"run.py: unknown server '{s}'")
    if shutil.which("socat") is None and "socat" in servers:
        print("socat is not installed: skipped (apt-get install socat)")
        servers.remove("socat")
    pin = os.cpu_count() >= 2 and shutil.which("taskset") is not None
    started = time.monotonic()
    cpu_before = cpu_ticks()

    # Servers take turns within each scenario and each round of runs, so
    # that a slow minute of the machine falls on all of them alike.
    results = {server: {} for server in servers}
    spread = {}
    for scen, (lg_args, columns) in SCENARIOS.items():
        able = [s for s in servers if scen not in SERVERS[s][2]]
        runs = {server: [] for server in able}
        for _ in range(args.runs):
            for server in able:
                runs[server].append(run_loadgen(server, lg_args, scen in TIMED,
                                                args.seconds, pin))
        for server in able:
            results[server][scen] = {c: median(runs[server], c)
                                     for c in columns}
            cost = columns[1]
            spread[(server, scen)] = sorted(float(r[cost])
                                            for r in runs[server] if cost in r)
            print(f"{server:16} {scen:14} " + "  ".join(
                f"{c}={fmt(results[server][scen][c])}" for c in columns),
                flush=True)
    for server in servers:
        if "hold-1000" not in SERVERS[server][2]:
            results[server]["hold-1000"] = hold_memory(server, 1000, pin)
            print(f"{server:16} {'hold-1000':14} " + "  ".join(
                f"{k}={fmt(v)}" for k, v in results[server]["hold-1000"]
                .items()), flush=True)
        results[server]["syscalls"] = count_syscalls(server, pin)
        print(f"{server:16} {'syscalls':14} " + "  ".join(
            f"{k}={fmt(v)}" for k, v in
            (results[server]["syscalls"] or {}).items()), flush=True)

    extras = {}
    if "select_server" in servers:
        extras["idle"] = idle_wakeups()
        print(f"idle wake-ups: {extras['idle']}", flush=True)
        extras["shutdown"] = shutdown_latency()
        for line in extras["shutdown"]:
            print(line, flush=True)
    if args.client_runs > 0:
        extras["clients"] = client_pipeline(args.client_runs,
                                            args.client_mib, pin)

    elapsed = time.monotonic() - started
    extras["steal"] = steal_share(cpu_before, cpu_ticks())
    report = render(results, spread, servers, extras, args, pin, elapsed)
    with open(args.out, "w") as f:
        f.write(report)
    print(f"\nwritten to {os.path.relpath(args.out, ROOT)}"
          f" ({elapsed:.0f} s)\n")
    print(table(results, servers))


# --------------------------------------------------------------------------
# Running servers and the load generator
# --------------------------------------------------------------------------

class Server:
    """A server started on port 0, its console on a pipe, its output in a
    file; stop() ends it and every process it forked."""

    def __init__(self, name, pin, extra_args=()):
        cmd = SERVERS[name][0] + list(extra_args)
        if pin:
            cmd = ["taskset", "-c", "0"] + cmd
        self.log = tempfile.NamedTemporaryFile(prefix="bench-", mode="w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE,
                                     stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        self.pid = self.proc.pid
        self.port = self._wait_port()

    def _wait_port(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.log.seek(0)
            m = re.search(r"listening on (?:AF=\d+ )?\S*:(\d+)",
                          self.log.read())
            if m:
                return m.group(1)
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"server {self.proc.args} printed no port")

    def console(self, line):
        """Type a console command; return what the server printed for it."""
        self.log.seek(0, os.SEEK_END)
        start = self.log.tell()
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            self.log.seek(start)
            out = self.log.read()
            if out.endswith("\n"):
                return out
            time.sleep(0.01)
        return ""

    def stop(self):
        # The whole process group: forking servers leave children behind.
        try:
            os.killpg(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait()
        for pid in tree(self.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()


def loadgen_cmd(server, args, pin):
    cmd = [LOADGEN] + args + ["--pid", str(server.pid), HOST, server.port]
    return (["taskset", "-c", "1"] + cmd) if pin else cmd


def parse_summary(line):
    return {k: v for k, v in (f.split("=", 1) for f in line.split()[1:])}


def run_loadgen(name, lg_args, timed, seconds, pin):
    server = Server(name, pin)
    try:
        args = lg_args + (["-d", str(seconds)] if timed else [])
        p = subprocess.run(loadgen_cmd(server, args, pin),
                           capture_output=True, text=True, timeout=180)
    finally:
        server.stop()
    lines = [l for l in p.stdout.splitlines() if l.startswith("loadgen ")]
    if p.returncode != 0 or not lines:
        print(f"  {name} {' '.join(lg_args)}: loadgen failed ({p.returncode}):"
              f" {p.stderr.strip()[:300]}", flush=True)
        return {}
    return parse_summary(lines[-1])


def hold_memory(name, conns, pin):
    """Memory, descriptors and processes of the server's whole tree while
    `conns` idle clients are connected."""
    server = Server(name, pin)
    try:
        lg = subprocess.Popen(loadgen_cmd(server, ["hold", "-c", str(conns),
                                                   "-d", "60"], pin),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
        line = lg.stdout.readline()
        time.sleep(0.2)         # let the last children settle
        mem = {"rss_mib": 0.0, "pss_mib": 0.0, "procs": 0, "fds": 0}
        for pid in tree_of_server(server):
            mem["rss_mib"] += proc_kib(f"/proc/{pid}/status", "VmRSS") / 1024
            mem["pss_mib"] += proc_kib(f"/proc/{pid}/smaps_rollup",
                                       "Pss") / 1024
            mem["fds"] += len(os.listdir(f"/proc/{pid}/fd"))
            mem["procs"] += 1
        lg.stdin.close()
        lg.wait(timeout=30)
        if "held=%d" % conns not in line:
            print(f"  {name} hold: {line.strip()}", flush=True)
            return {}
        return mem
    finally:
        server.stop()


def tree_of_server(server):
    """The server process and its descendants.  Under taskset the Popen pid
    is taskset itself, which execs the server: the same pid."""
    return [server.pid] + tree(server.pid)


def tree(root):
    """Descendants of root, from /proc."""
    parent = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        parent[int(d)] = int(stat[stat.rindex(")") + 2:].split()[1])
    found, frontier = [], [root]
    while frontier:
        kids = [p for p, pp in parent.items() if pp in frontier]
        found += kids
        frontier = kids
    return found


def proc_kib(path, field):
    """The "Field:   N kB" line of a /proc file, in KiB (0 if gone)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def count_syscalls(name, pin):
    """System calls the server (tree) makes per round trip, 100 busy
    connections (1 for a server that serves one at a time), counted by
    strace -c.  strace slows the server several times over, so this run
    only counts; it is never timed."""
    if shutil.which("strace") is None:
        return None
    conns = "1" if "pingpong-100" in SERVERS[name][2] else "100"
    server = Server(name, pin)
    out = tempfile.NamedTemporaryFile(prefix="bench-strace-")
    try:
        st = subprocess.Popen(["strace", "-f", "-c", "-o", out.name, "-p",
                               str(server.pid)], stderr=subprocess.DEVNULL)
        time.sleep(0.5)         # strace attaches
        p = subprocess.run(loadgen_cmd(server, ["pingpong", "-c", conns,
                                                "-d", "1"], pin),
                           capture_output=True, text=True, timeout=120)
        st.send_signal(signal.SIGINT)
        st.wait(timeout=10)
        lines = [l for l in p.stdout.splitlines() if l.startswith("loadgen ")]
        if not lines:
            return None
        rts = int(parse_summary(lines[-1]).get("round_trips", 0))
        with open(out.name) as f:
            rows = [l.split() for l in f if re.match(r"\s*[\d.]+\s", l)]
        # Each row: % time, seconds, usecs/call, calls, [errors,] name.
        calls = {r[-1]: int(r[3]) for r in rows}
        total = calls.pop("total", 0)
        waits = sum(n for name, n in calls.items()
                    if name in ("select", "pselect6", "poll", "ppoll",
                                "epoll_wait", "epoll_pwait"))
        # A forking server's set-up (fork, close...) happens outside the
        # measured phase but inside strace's count: small against the
        # round trips.
        if not rts:
            return None
        return {"per_rt": total / rts, "wait_per_rt": waits / rts}
    finally:
        out.close()
        server.stop()


# name: the client command; HOST and PORT are filled in.  Each reads the
# file on stdin, half-closes at its end and exits once the echo is over.
CLIENTS = {
    "select_client": [os.path.join(ROOT, "select_client"), "-q", "HOST",
                      "PORT"],
    "nc": ["nc", "-N", "HOST", "PORT"],
    "socat": ["socat", "-t", "60", "STDIO", "TCP:HOST:PORT"],
}
SINKS = {"pipe": "| cat >/dev/null", "devnull": ">/dev/null"}


def client_pipeline(runs, mib, pin):
    """Wall time of `CLIENT HOST PORT <file | cat >/dev/null` (and with
    stdout on /dev/null) through one select_server, for select_client,
    netcat (nc -N) and socat: medians of `runs` runs, the clients taking
    turns.  The server is on CPU 0, the pipeline on CPU 1.  Every client
    must first echo the whole file (wc -c), or it is left out."""
    clients = [c for c in CLIENTS if shutil.which(CLIENTS[c][0])]
    for c in set(CLIENTS) - set(clients):
        print(f"{c} is not installed: left out of the client pipeline",
              flush=True)
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    data = tempfile.NamedTemporaryFile(prefix="bench-client-", dir=shm)
    with open("/dev/urandom", "rb") as rnd:
        for _ in range(mib):
            data.write(rnd.read(1 << 20))
    data.flush()
    server = Server("select_server", pin)
    times = {(c, sink): [] for c in clients for sink in SINKS}
    try:
        def pipeline(client, tail):
            cmd = " ".join(a.replace("HOST", HOST).replace("PORT", server.port)
                           for a in CLIENTS[client])
            shell = f"{cmd} <{data.name} {tail}"
            return (["taskset", "-c", "1", "sh", "-c", shell] if pin
                    else ["sh", "-c", shell])

        for c in list(clients):
            p = subprocess.run(pipeline(c, "| wc -c"), capture_output=True,
                               text=True, timeout=300)
            if p.stdout.strip() != str(mib << 20):
                print(f"  {c}: echoed {p.stdout.strip() or 'nothing'} of"
                      f" {mib << 20} bytes: left out", flush=True)
                clients.remove(c)
        for _ in range(runs):
            for sink, tail in SINKS.items():
                for c in clients:
                    t = time.monotonic()
                    subprocess.run(pipeline(c, tail), timeout=300, check=True)
                    times[(c, sink)].append(time.monotonic() - t)
    finally:
        server.stop()
        data.close()
    result = {}
    for c in clients:
        result[c] = {sink: sorted(times[(c, sink)]) for sink in SINKS}
        print(f"{c:16} client pipe={statistics.median(result[c]['pipe']):.3f}s"
              f" devnull={statistics.median(result[c]['devnull']):.3f}s",
              flush=True)
    return {"runs": runs, "mib": mib, "times": result}


def client_table(clients):
    """The client pipeline's medians, and each as a multiple of nc's."""
    times = clients["times"]
    base = times.get("nc")
    lines = ["| client | into a pipe, s | vs nc | into /dev/null, s | vs nc |"
             " every run, pipe | every run, /dev/null |",
             "|---|---:|---:|---:|---:|---|---|"]
    for c, t in times.items():
        cells = [c]
        for sink in SINKS:
            med = statistics.median(t[sink])
            cells.append(f"{med:.3f}")
            cells.append(f"{med / statistics.median(base[sink]):.2f}"
                         if base else "-")
        cells += [" ".join(f"{v:.2f}" for v in t[sink]) for sink in SINKS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def idle_wakeups():
    """select() calls select_server makes in 5 s with 100 quiet clients:
    with no idle timeout (expected: none) and with -t 2 (expected: about
    one per deadline)."""
    result = {}
    for label, extra in (("no_timeout", []), ("timeout_2s", ["-t", "2"])):
        server = Server("select_server", False, extra)
        try:
            lg = subprocess.Popen([LOADGEN, "hold", "-c", "100", "-d", "30",
                                   HOST, server.port], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True,
                                  stderr=subprocess.DEVNULL)
            lg.stdout.readline()
            before = select_calls(server.console("stats"))
            time.sleep(5)
            after = select_calls(server.console("stats"))
            lg.stdin.close()
            lg.wait(timeout=30)
            # The stats command itself wakes the loop once.
            result[label] = after - before - 1
        finally:
            server.stop()
    return result


def select_calls(stats_line):
    m = re.search(r"select\(\) calls: (\d+)", stats_line)
    return int(m.group(1)) if m else -1


def shutdown_latency():
    prog = os.path.join(ROOT, "bench", "shutdown_latency")
    p = subprocess.run([prog, "-n", "20", "--server",
                        os.path.join(ROOT, "select_server"), "--client",
                        os.path.join(ROOT, "select_client")],
                       capture_output=True, text=True, timeout=300)
    return [l for l in p.stdout.splitlines() if l.startswith("shutdown_")]


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------

def median(runs, column):
    values = [float(r[column]) for r in runs if column in r]
    return statistics.median(values) if values else None


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, int) or v >= 100:
        return f"{v:.0f}"
    if v >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


COLUMNS = [
    ("bulk", "mib_per_s", "bulk MiB/s"),
    ("bulk", "cpu_s_per_gib", "CPU-s/GiB"),
    ("pingpong-1", "rt_per_s", "1 conn rt/s"),
    ("pingpong-1", "cpu_us_per_rt", "µs/rt"),
    ("pingpong-100", "rt_per_s", "100 conns rt/s"),
    ("pingpong-100", "cpu_us_per_rt", "µs/rt"),
    ("pingpong-1000", "rt_per_s", "1000 conns rt/s"),
    ("pingpong-1000", "cpu_us_per_rt", "µs/rt"),
    ("sparse", "rt_per_s", "sparse 10/1000 rt/s"),
    ("sparse", "cpu_us_per_rt", "µs/rt"),
    ("connrate", "conn_per_s", "conn/s"),
    ("connrate", "cpu_us_per_conn", "µs/conn"),
    ("hold-1000", "rss_mib", "1000 idle: RSS MiB"),
    ("hold-1000", "pss_mib", "PSS MiB"),
    ("hold-1000", "procs", "procs"),
    ("hold-1000", "fds", "fds"),
    ("syscalls", "per_rt", "syscalls/rt"),
    ("syscalls", "wait_per_rt", "of which select/poll/epoll"),
]


def table(results, servers):
    head = ["server"] + [c[2] for c in COLUMNS]
    rows = []
    for s in servers:
        row = [s]
        for scen, col, _ in COLUMNS:
            row.append(fmt((results[s].get(scen) or {}).get(col)))
        rows.append(row)
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---" if i == 0 else "---:"
                            for i in range(len(head))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def ratio(results, a, b, scen, col):
    try:
        return results[a][scen][col] / results[b][scen][col]
    except (KeyError, TypeError, ZeroDivisionError):
        return None


def targets(results):
    """The design targets, as ratios of server cost in this same run."""
    rows = []
    for scen in ("pingpong-1000", "sparse"):
        rows.append((f"cost per round trip vs textbook select ({scen})",
                     ratio(results, "select_server", "textbook_select", scen,
                           "cpu_us_per_rt"), "≤ 1.15"))
    rows.append(("cost per round trip vs fork (pingpong-1000)",
                 ratio(results, "select_server", "fork", "pingpong-1000",
                       "cpu_us_per_rt"), "≤ 0.35"))
    rows.append(("cost per round trip vs asyncio (pingpong-1000)",
                 ratio(results, "select_server", "asyncio", "pingpong-1000",
                       "cpu_us_per_rt"), "≤ 0.2"))
    bulk = results.get("select_server", {}).get("bulk", {})
    rows.append(("bulk: server CPU-seconds per GiB echoed",
                 bulk.get("cpu_s_per_gib"), "≤ 0.6"))
    hold = results.get("select_server", {}).get("hold-1000", {})
    rows.append(("RSS with 1000 idle clients, MiB", hold.get("rss_mib"),
                 "< 2"))
    calls = results.get("select_server", {}).get("syscalls") or {}
    rows.append(("system calls per round trip, select() aside",
                 calls["per_rt"] - calls["wait_per_rt"] if calls else None,
                 "about 2"))
    return rows


def cpu_ticks():
    """The machine's CPU time so far, per kind, from /proc/stat's cpu line:
    user nice system idle iowait irq softirq steal ..."""
    with open("/proc/stat") as f:
        return [int(v) for v in f.readline().split()[1:]]


def steal_share(before, after):
    """Of all CPU time during the run, the part a hypervisor gave to other
    machines (steal): a measure of how noisy the run was."""
    delta = [b - a for a, b in zip(before, after)]
    return delta[7] / sum(delta[:8]) if len(delta) > 7 and sum(delta) else 0


def machine():
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = proc_kib("/proc/meminfo", "MemTotal") / 1048576
    return (f"{cpu}, {os.cpu_count()} CPUs, {mem:.0f} GiB, Linux "
            f"{platform.release()}, {platform.libc_ver()[0]} "
            f"{platform.libc_ver()[1]}")


def spread_table(spread, servers):
    """Every run's cost, lowest first: how far one run is from another."""
    scens = list(SCENARIOS)
    lines = ["| server | " + " | ".join(
                 f"{s} ({SCENARIOS[s][1][1]})" for s in scens) + " |",
             "|---|" + "---:|" * len(scens)]
    for srv in servers:
        cells = [" ".join(fmt(v) for v in spread.get((srv, s), [])) or "-"
                 for s in scens]
        lines.append(f"| {srv} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def render(results, spread, servers, extras, args, pin, elapsed):
    out = ["# Benchmark results", "",
           f"Made by `make bench` (`bench/run.py --runs {args.runs}"
           f" --seconds {args.seconds:g}`) on {time.strftime('%Y-%m-%d')},"
           f" in {elapsed:.0f} s.", "",
           f"Machine: {machine()}.",
           "Server pinned to CPU 0, load generator to CPU 1." if pin else
           "Not pinned (fewer than two CPUs, or no taskset).",
           f"CPU time stolen by the hypervisor during the run:"
           f" {extras.get('steal', 0) * 100:.1f} % (the higher, the noisier"
           " the figures).",
           f"Each figure is the median of {args.runs} runs, each against a"
           " fresh server; the servers take turns, run by run.", "",
           "Servers:", ""]
    for s in servers:
        out.append(f"- **{s}**: {SERVERS[s][1]}")
    out += ["", "Throughput and the server's cost (its CPU time, children"
            " included, over the measured phase, divided by the work done):",
            "", table(results, servers),
            "The cost of each run, lowest first (the table shows the"
            " median):", "", spread_table(spread, servers),
            "Targets:", "",
            "| measure | this run | target |", "|---|---:|---:|"]
    for what, value, target in targets(results):
        out.append(f"| {what} | {fmt(value)} | {target} |")
    if "idle" in extras:
        out += ["", "select() wake-ups of select_server in 5 s with 100 quiet"
                " clients:"
                f" {extras['idle']['no_timeout']} with no idle timeout,"
                f" {extras['idle']['timeout_2s']} with `-t 2` (the clients"
                " expire after 2 s)."]
    if extras.get("clients"):
        cl = extras["clients"]
        out += ["", f"select_client as a client in a pipeline, against nc"
                f" and socat: {cl['mib']} MiB of random bytes through"
                " select_server's echo, `CLIENT 127.0.0.1 PORT <file |"
                " cat >/dev/null` and `... >/dev/null`, wall time, median of"
                f" {cl['runs']} runs (the clients take turns; server on CPU 0,"
                " pipeline on CPU 1 when pinned). nc is `nc -N` (OpenBSD"
                " netcat), socat `socat -t 60 STDIO TCP:...`:", "",
                client_table(cl)]
    if extras.get("shutdown"):
        out += ["", "select_client's time to exit after the server goes"
                " away (bench/shutdown_latency -n 20):", "", "```"]
        out += extras["shutdown"] + ["```"]
    out += ["", "Scenarios: bulk streams 256 MiB through one connection;"
            " pingpong-N keeps N connections doing 64-byte round trips;"
            " sparse opens 1000 connections of which 10 do round trips;"
            " connrate runs 8 parallel loops of connect, 32-byte echo, close;"
            " hold-1000 holds 1000 idle connections and sums RSS, PSS and"
            " open descriptors over the server's processes. syscalls/rt: strace -f -c over"
            " 1 s of pingpong-100, divided by its round trips.", ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
