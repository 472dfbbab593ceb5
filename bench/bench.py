#!/usr/bin/env python3
"""bench/bench.py — the ts benchmark (`make bench`; not part of `make check`).

Runs each scenario against ./ts and, when installed, Debian's task-spooler (/usr/bin/tsp) in the same run,
interleaved round by round (ts then tsp, then tsp then ts, ...), and prints Markdown tables of the medians
with the ratio ts/tsp and the targets of the issue:

  submit   N sequential `ts true` behind a blocking job              ms per submit    ts/tsp <= 0.5
  burst    8 concurrent submitters, N jobs in all                     ms per submit    ts/tsp <= 0.5
  list     `ts -l` with N jobs queued                                 ms               ts/tsp <= 0.5
  memory   PSS of every process of the queue (server, runners and,    KB per queued    ts <= 2 KB
           for tsp, the blocked clients) / queued jobs                job
  drain    N queued `true`, one slot: from the blocker's end to the   ms per job       ts/tsp <= 0.8
           last job's end (`ts -w LAST`) / N
  scale    100,000 queued jobs (ts only): submitted without blocking, `ts -l` < 1 s, server RSS < 300 MB
  ops      -s -i -u -r, submit, submit -D, -l and a drain step with 1,000 vs 100,000 queued (ts only):
           they must not grow with the queue
  journal  the submit scenario with the journal as is, on a tmpfs, with TS_FSYNC=1, and with TS_JOURNAL=0 (ts only):
           on <= 1.10 x off
  hold     (ts only) the server's CPU and wakeups over a window with 1,000 held and 1,000 delayed jobs (the slot
           free, or behind a running job) against an empty queue; `ts -l`, `ts -s 0`; how late a --delay job starts
  gpu      (ts only, not in the default set: --only gpu, about 1 minute, --quick about 30 s) a fake nvidia-smi
           (a script in the queue's directory: two H100s; a flag file makes it hang; it logs each call) as
           TS_NVIDIA_SMI, TS_GPU_SYSFS empty: the server's CPU and wakeups with 2 GPU jobs running and 1,000
           waiting (probe interval 5 s and 1 s; 1 waiting), between probes and per probe, and per `ts -s 0`,
           vs 1,000 CPU jobs behind a blocker; `ts -l`, a submit and a
           CPU job's submit → end while a probe hangs vs while it answers, and the waiting GPU job starting
           once the fake answers again; ms per `ts -G 1 true` vs `ts true` submit; a drain of 200 GPU jobs
           on the 2 cards vs 200 CPU jobs with -S 2

task-spooler keeps one blocked client process per queued job and its server accepts about 995 clients
(a queue of ~993 jobs behind a running one; the next `tsp` blocks): so when tsp takes part, the side-by-side
scenarios use 900 jobs for both programs (--jobs / --tsp-jobs change that) and the table says so.

Every queue is private: its own directory, TS_SOCKET=DIR/s and TMPDIR=DIR (never the default socket). Every
server started is stopped with -K, and whatever is left of a queue (found by its TS_SOCKET in
/proc/PID/environ: servers, runners, blocked tsp clients, jobs) is killed, also on Ctrl-C or an error.

Wall-clock times are what the targets are about, but on a busy machine they are noisy; so the submit, list
and drain rows also give the CPU time spent (the client's, from wait4, plus the queue's processes', from
/proc/PID/schedstat; for drain the server's reaped children and, the bench being a child subreaper, the tsp
clients that ran the jobs), and the queue-operation rows give the server's own CPU time per command, which
is what grows if an operation is proportional to the queue length. The ts binary is copied at the start,
so a rebuild during the run changes nothing.

  python3 bench/bench.py [--quick] [--rounds N] [--jobs N] [--scale N] [--scale-budget S] [--ts PATH]
                         [--tsp PATH | --no-tsp] [--no-scale] [--no-journal] [--only main,burst,scale,journal,gpu,hold]
                         [--json FILE]

Progress goes to stderr, the tables to stdout. Needs Linux (/proc) and Python 3.8+; a full run takes about
5 minutes on 2 cores (most of it queueing the 100,000 jobs), --quick about 40 s.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEVNULL = os.open(os.devnull, os.O_RDWR)

SCRUB = ("TS_SOCKET", "TS_SLOTS", "TS_MAXFINISHED", "TS_MAXCONN", "TS_ONFINISH", "TS_ENV", "TS_SAVELIST",
         "TS_MAILTO", "TS_SOCKET_MODE", "TS_JOURNAL", "TS_FSYNC", "POSIXLY_CORRECT", "TS_NVIDIA_SMI",
         "TS_GPU_SYSFS", "TS_GPU_PROBE_INTERVAL", "TS_GPU_PROBE_TIMEOUT",
         "TS_GPU_SLOTS", "TS_GPU_FOREIGN", "TS_GPU_MIN_FREE", "TS_GPU_SETTLE", "TS_GPU_HIDE", "TS_VISIBLE_DEVICES")

BLOCKER = """#!/bin/sh
# bench blocker: ends when a line is written to the fifo $1 (or after 20 minutes, if the bench died)
exec timeout 1200 sh -c 'read x < "$1"' sh "$1"
"""


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Timeout(Exception):
    pass


def wait_pid(pid, timeout=None, cpu=None):
    """waitpid with a timeout (pidfd + poll: no polling delay). Returns the exit code; raises Timeout
    after killing the process. cpu: a one-element list to which the child's user+sys seconds are added."""
    if timeout is not None and hasattr(os, "pidfd_open"):
        try:
            fd = os.pidfd_open(pid)
        except OSError:
            fd = None
        if fd is not None:
            try:
                p = select.poll()
                p.register(fd, select.POLLIN)
                if not p.poll(int(timeout * 1000)):
                    os.kill(pid, signal.SIGKILL)
                    os.waitpid(pid, 0)
                    raise Timeout()
            finally:
                os.close(fd)
    _, status, ru = os.wait4(pid, 0)
    if cpu is not None:
        cpu[0] += ru.ru_utime + ru.ru_stime
    return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8


def become_subreaper():
    """Orphans of our commands (tsp's background clients, the servers) become our children, so that their
    CPU time ends in our RUSAGE_CHILDREN once reaped (see reap())."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(36, 1, 0, 0, 0) == 0  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def reap():
    """Reap every child that has ended (never called while a command or a burst submitter runs)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """(CPU seconds of the process itself from schedstat, CPU seconds of its reaped children from stat)."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            own = int(f.read().split()[0]) / 1e9
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return own, (int(fields[13]) + int(fields[14])) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0


def fs_type(path):
    try:
        return subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


class Impl:
    def __init__(self, name, path, comms):
        self.name = name
        self.path = path
        self.comms = comms  # process names counted as "the queue's processes" (server and runners)


LIVE = []  # open queues, closed by cleanup() whatever happens


class Queue:
    """A private queue of one implementation: DIR, TS_SOCKET=DIR/s, TMPDIR=DIR."""

    def __init__(self, impl, base, extra_env=None):
        self.impl = impl
        self.dir = tempfile.mkdtemp(prefix=impl.name + ".", dir=base)
        self.sock = os.path.join(self.dir, "s")
        env = {k: v for k, v in os.environ.items() if k not in SCRUB}
        env.update(TS_SOCKET=self.sock, TMPDIR=self.dir)
        env.update(extra_env or {})
        self.env = env
        self.envkey = b"TS_SOCKET=" + os.fsencode(self.sock)
        self.blocker = os.path.join(self.dir, "block")
        with open(self.blocker, "w") as f:
            f.write(BLOCKER)
        os.chmod(self.blocker, 0o755)
        self.fifos = {}
        LIVE.append(self)

    # -- running the client --------------------------------------------------------------------------
    def spawn(self, args, out=DEVNULL):
        argv = [self.impl.path] + [str(a) for a in args]
        return os.posix_spawn(argv[0], argv, self.env, file_actions=[
            (os.POSIX_SPAWN_DUP2, DEVNULL, 0), (os.POSIX_SPAWN_DUP2, out, 1), (os.POSIX_SPAWN_DUP2, DEVNULL, 2)])

    def run(self, args, timeout=30, cpu=None):
        return wait_pid(self.spawn(args), timeout, cpu)

    def output(self, args, timeout=60):
        """stdout of a command that leaves no background process (-s, -l, -i...)."""
        r = subprocess.run([self.impl.path] + [str(a) for a in args], env=self.env, stdin=DEVNULL,
                           stdout=subprocess.PIPE, stderr=DEVNULL, timeout=timeout)
        return r.returncode, r.stdout.decode(errors="replace")

    # -- blockers ------------------------------------------------------------------------------------
    def block(self, name, opts=()):
        """Queue a job that runs until release(name) (opts: ts options before the command, -G 1)."""
        fifo = os.path.join(self.dir, "fifo-" + name)
        os.mkfifo(fifo)
        self.fifos[name] = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # so the blocker's open never waits
        rc = self.run(list(opts) + [self.blocker, fifo])
        if rc != 0:
            raise RuntimeError("%s: queueing the blocker failed (rc %d)" % (self.impl.name, rc))

    def release(self, name):
        os.write(self.fifos[name], b"go\n")

    def wait_state(self, jobid, state, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            if self.output(["-s", jobid])[1].strip() == state:
                return True
            time.sleep(0.01)
        raise RuntimeError("%s: job %s not %s after %ds" % (self.impl.name, jobid, state, timeout))

    def count(self, state="queued"):
        rc, out = self.output(["-l"], timeout=120)
        return sum(1 for line in out.splitlines()[1:] if line.split()[1:2] == [state])

    # -- processes -----------------------------------------------------------------------------------
    def pids(self):
        me = os.getpid()
        found = []
        for d in os.listdir("/proc"):
            if not d.isdigit() or int(d) == me:
                continue
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    env = f.read()
            except OSError:
                continue
            if (b"\0" + env).find(b"\0" + self.envkey + b"\0") >= 0:
                found.append(int(d))
        return found

    def memory(self):
        """(total PSS in KB, number of processes) of the queue's own processes (not the jobs)."""
        total = n = 0
        for pid in self.pids():
            try:
                with open("/proc/%d/comm" % pid) as f:
                    comm = f.read().strip()
                if comm not in self.impl.comms:
                    continue
                with open("/proc/%d/smaps_rollup" % pid) as f:
                    for line in f:
                        if line.startswith("Pss:"):
                            total += int(line.split()[1])
                            n += 1
                            break
            except OSError:
                pass
        return total, n

    def cpu_snapshot(self):
        """{pid: nanoseconds on a CPU so far} of the queue's own processes (/proc/PID/schedstat)."""
        snap = {}
        for pid in self.pids():
            try:
                with open("/proc/%d/comm" % pid) as f:
                    if f.read().strip() not in self.impl.comms:
                        continue
                with open("/proc/%d/schedstat" % pid) as f:
                    snap[pid] = int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        return snap

    @staticmethod
    def cpu_delta(before, after):
        """CPU seconds the queue's processes used between two snapshots (processes that appeared in between
        count whole; ones that ended in between are lost: use it where none does)."""
        return sum(ns - before.get(pid, 0) for pid, ns in after.items()) / 1e9

    def server_pid(self, comm="ts-server"):
        """ts: the ts-server process (or the one named comm); tsp: the one listening on the socket (the
        oldest tsp of the queue)."""
        if self.impl.name != "tsp":
            for pid in self.pids():
                try:
                    with open("/proc/%d/comm" % pid) as f:
                        if f.read().strip() == comm:
                            return pid
                except OSError:
                    pass
            return None
        best = None
        for pid in self.pids():
            try:
                with open("/proc/%d/comm" % pid) as f:
                    if f.read().strip() != "tsp":
                        continue
                with open("/proc/%d/stat" % pid) as f:
                    start = int(f.read().rsplit(")", 1)[1].split()[19])
                if best is None or start < best[0]:
                    best = (start, pid)
            except (OSError, ValueError, IndexError):
                pass
        return best[1] if best else None

    def server_status(self):
        """VmRSS and VmHWM (KB) of the server (ts: the ts-server process)."""
        for pid in self.pids():
            try:
                with open("/proc/%d/comm" % pid) as f:
                    if f.read().strip() != "ts-server":
                        continue
                with open("/proc/%d/status" % pid) as f:
                    st = dict(line.split(":", 1) for line in f if ":" in line)
                return int(st["VmRSS"].split()[0]), int(st["VmHWM"].split()[0]), pid
            except (OSError, KeyError, ValueError):
                pass
        return None, None, None

    def close(self):
        if self not in LIVE:
            return
        LIVE.remove(self)
        try:
            self.run(["-K"], timeout=10)
        except (Timeout, OSError):
            pass
        for fd in self.fifos.values():
            os.close(fd)
        end = time.time() + 10
        while True:
            left = self.pids()
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL if time.time() > end - 9.5 else signal.SIGTERM)
                except OSError:
                    pass
            if time.time() > end:
                log("warning: %s: processes left behind: %s" % (self.impl.name, left))
                break
            time.sleep(0.02)
        reap()
        shutil.rmtree(self.dir, ignore_errors=True)


def cleanup():
    for q in list(LIVE):
        q.close()


# ---- scenarios ---------------------------------------------------------------------------------------

def submit_seq(q, n, args=("true",), timeout=10, cpu=None):
    """n sequential submits; returns seconds. Raises Timeout if one blocks (tsp's queue is full)."""
    args = list(args)
    t = time.perf_counter()
    for i in range(n):
        rc = q.run(args, timeout, cpu)
        if rc != 0:
            raise RuntimeError("%s: submit %d returned %d" % (q.impl.name, i, rc))
    return time.perf_counter() - t


class Deadline(Exception):
    pass


def submit_burst(q, n, workers=8, timeout=10, deadline=None, args=("true",)):
    """n submits of `args` by `workers` concurrent processes; returns seconds. With a deadline (time.time()
    value) the submitters stop there and Deadline is raised."""
    share = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
    t = time.perf_counter()
    kids = []
    for k in share:
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                for _ in range(k):
                    if deadline is not None and time.time() > deadline:
                        code = 3
                        break
                    if q.run(list(args), timeout) != 0:
                        code = 1
                        break
            except Timeout:
                code = 4
            except BaseException:
                code = 2
            os._exit(code)
        kids.append(pid)
    codes = []
    try:
        for pid in kids:
            codes.append(wait_pid(pid))
    except BaseException:
        for pid in kids[len(codes):]:  # interrupted: no submitter may outlive the bench (or restart a server)
            try:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            except OSError:
                pass
        raise
    dt = time.perf_counter() - t
    if 4 in codes:
        raise Timeout()
    if 3 in codes:
        raise Deadline()
    if any(codes):
        raise RuntimeError("%s: a burst submitter failed (%s)" % (q.impl.name, codes))
    return dt


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def scenario_main(impl, n, base):
    """submit, list, memory, drain on one queue. Returns a dict of values. Besides the wall times it
    counts CPU time: the clients' (wait4) plus what the queue's processes used meanwhile (schedstat),
    which the load of other programs on the machine disturbs much less."""
    r = {}
    q = Queue(impl, base)
    try:
        q.block("b")
        q.wait_state(0, "running")
        time.sleep(0.05)
        r["mem_base"] = q.memory()[0]
        cpu, before = [0.0], q.cpu_snapshot()
        try:
            r["submit"] = submit_seq(q, n, cpu=cpu) / n * 1e3
        except Timeout:
            r["blocked"] = "submit blocked"
            return r
        r["submit_cpu"] = (cpu[0] + q.cpu_delta(before, q.cpu_snapshot())) / n * 1e3
        got = q.count()
        if got != n:
            raise RuntimeError("%s: %d jobs queued, expected %d" % (impl.name, got, n))
        walls, cpus = [], []
        for _ in range(7):
            cpu, before = [0.0], q.cpu_snapshot()
            t = time.perf_counter()
            rc = q.run(["-l"], 60, cpu)
            walls.append((time.perf_counter() - t) * 1e3)
            cpus.append((cpu[0] + q.cpu_delta(before, q.cpu_snapshot())) * 1e3)
        r["list"], r["list_cpu"] = median(walls), median(cpus)
        time.sleep(0.1)
        kb, procs = q.memory()
        r["mem_total"], r["mem_procs"] = kb, procs
        r["mem"] = kb / n
        r["mem_marginal"] = (kb - r["mem_base"]) / n
        srv = q.server_pid()
        # ts: runners are the children of the spawner, which reaps them (their CPU time is in its stat)
        spw = q.server_pid("ts-spawner") if impl.name == "ts" else None
        reap()
        own0, kids0, ours0 = proc_cpu(srv) + (children_cpu(),)
        sown0, skids0 = proc_cpu(spw) if spw else (0.0, 0.0)
        t = time.perf_counter()
        q.release("b")
        rc = q.run(["-w", n], timeout=600)
        r["drain"] = (time.perf_counter() - t) / n * 1e3
        time.sleep(0.05)
        reap()
        own1, kids1, ours1 = proc_cpu(srv) + (children_cpu(),)
        sown1, skids1 = proc_cpu(spw) if spw else (0.0, 0.0)
        # the server, the runners it or its spawner reaped (ts), the clients we reaped (tsp: each ran its
        # job), the -w client
        r["drain_cpu"] = ((own1 - own0) + (kids1 - kids0) + (ours1 - ours0) + (sown1 - sown0) +
                          (skids1 - skids0)) / n * 1e3
        if q.output(["-s", n])[1].strip() != "finished":
            raise RuntimeError("%s: drain: job %d not finished (-w rc %d)" % (impl.name, n, rc))
    finally:
        q.close()
    return r


def scenario_burst(impl, n, base):
    q = Queue(impl, base)
    try:
        q.block("b")
        q.wait_state(0, "running")
        try:
            dt = submit_burst(q, n)
        except Timeout:
            return {"blocked": "burst blocked"}
        got = q.count()
        if got != n:
            raise RuntimeError("%s: burst: %d jobs queued, expected %d" % (impl.name, got, n))
        return {"burst": dt / n * 1e3}
    finally:
        q.close()


OPS = (("-s ID", "`ts -s ID`"), ("-i ID", "`ts -i ID`"), ("-u ID", "`ts -u ID`"), ("-r ID", "`ts -r ID`"),
       ("submit", "`ts true`"), ("submit -D ID", "`ts -D ID true`"), ("-l", "`ts -l`"),
       ("drain step", "drain step: slot freed → next job done (per job)"))


def build_scale_queue(impl, n, base, probes, budget):
    """n queued jobs: blocker b1 (id 0, running), `probes` true jobs (1..probes), blocker b2 (probes+1),
    fillers up to id n submitted by 8 concurrent submitters."""
    q = Queue(impl, base)
    r = {"n": n}
    t = time.perf_counter()
    q.block("b1")
    for _ in range(probes):
        if q.run(["true"]) != 0:
            raise RuntimeError("probe submit failed")
    q.block("b2")
    try:
        submit_burst(q, n - probes - 1, deadline=time.time() + budget)
    except Timeout:
        r["blocked"] = True
        return q, r
    except Deadline:
        r["deadline"] = budget
    r["submit_s"] = time.perf_counter() - t
    q.wait_state(0, "running")
    r["queued"] = q.count()
    time.sleep(0.2)
    r["rss"], r["hwm"], _ = q.server_status()
    kb, _ = q.memory()
    r["pss_per_job"] = kb / n
    return q, r


def scenario_scale(impl, sizes, base, reps, budget, probes=50):
    """Queue-ops scaling (ts): one queue per size, alive together, every operation alternated between
    them so that the machine's load hits both alike. Per operation: the median wall time of the client
    command and the median CPU time the server spent on it (/proc/PID/schedstat)."""
    queues = []
    try:
        for n in sizes:
            log("scale: queueing %d jobs..." % n)
            q, r = build_scale_queue(impl, n, base, probes, budget)
            queues.append((q, r))
            if r.get("blocked"):
                return [r for _, r in queues]
            if r.get("deadline"):
                log("scale: only %d of %d jobs queued in %d s: the operations run on that queue"
                    % (r["queued"], n, budget))
                r["n"] = r["queued"]
            log("scale: %d queued in %.1f s, server RSS %s KB" % (n, r["submit_s"], r["rss"]))
        srv = {id(q): q.server_pid() for q, _ in queues}

        def measure(q, r, key, args, timeout=60):
            pid = srv[id(q)]
            with open("/proc/%d/schedstat" % pid) as f:
                s0 = int(f.read().split()[0])
            t = time.perf_counter()
            rc = q.run(args, timeout)
            dt = time.perf_counter() - t
            with open("/proc/%d/schedstat" % pid) as f:
                s1 = int(f.read().split()[0])
            r.setdefault(key + " wall", []).append(dt * 1e3)
            r.setdefault(key + " cpu", []).append((s1 - s0) / 1e6)
            if rc != 0:
                r[key + " failures"] = r.get(key + " failures", 0) + 1

        for _ in range(3):
            for q, r in queues:
                measure(q, r, "-l", ["-l"], 120)
        # drain step: b1 ends, the probes run one after the other, then b2 holds the slot again
        for q, r in queues:
            pid = srv[id(q)]
            with open("/proc/%d/schedstat" % pid) as f:
                s0 = int(f.read().split()[0])
            t = time.perf_counter()
            q.release("b1")
            q.run(["-w", probes], 120)
            r["drain step wall"] = [(time.perf_counter() - t) / probes * 1e3]
            with open("/proc/%d/schedstat" % pid) as f:
                r["drain step cpu"] = [(int(f.read().split()[0]) - s0) / probes / 1e6]
            q.wait_state(probes + 1, "running")
        for key, make in (("-s ID", lambda n, i: ["-s", n - i]),
                          ("-i ID", lambda n, i: ["-i", n - i]),
                          ("-u ID", lambda n, i: ["-u", n - reps - i]),
                          ("-r ID", lambda n, i: ["-r", n - 3 * reps - i]),
                          ("submit", lambda n, i: ["true"]),
                          ("submit -D ID", lambda n, i: ["-D", n // 2, "true"])):
            for i in range(reps):
                for q, r in queues:
                    measure(q, r, key, make(r["n"], i))
        for q, r in queues:
            r["queued after"] = q.count()
            for key, _ in OPS:
                for kind in (" wall", " cpu"):
                    if key + kind in r:
                        r[key + kind] = median(r[key + kind])
    finally:
        for q, _ in queues:
            q.close()
    return [r for _, r in queues]


def scenario_journal(impl, n, base, extra_env):
    """Sequential submits behind a blocker; returns (ms per submit, CPU ms per submit of client and server,
    whether a journal file was written)."""
    q = Queue(impl, base, extra_env)
    try:
        q.block("b")
        q.wait_state(0, "running")
        cpu, before = [0.0], q.cpu_snapshot()
        dt = submit_seq(q, n, cpu=cpu) / n * 1e3
        cpu_ms = (cpu[0] + q.cpu_delta(before, q.cpu_snapshot())) / n * 1e3
        journal = os.path.exists(q.sock + ".journal")
        return dt, cpu_ms, journal
    finally:
        q.close()


def spawn_baseline(n=300):
    t = time.perf_counter()
    for _ in range(n):
        wait_pid(os.posix_spawn("/bin/true", ["/bin/true"], os.environ,
                                file_actions=[(os.POSIX_SPAWN_DUP2, DEVNULL, 1)]))
    return (time.perf_counter() - t) / n * 1e3


# ---- GPUs (ts only, --only gpu) ----------------------------------------------------------------------

FAKE_SMI = """#!/bin/sh
# bench fake nvidia-smi: two H100s and no compute process. Each call adds a line (time, pid, query) to
# smi.log beside it; while the file hang is there it hangs (a stuck driver), until killed or the file goes.
d=${0%/*}
echo "$(date +%s.%N) $$ ${1%%=*}" >> "$d/smi.log"
while [ -e "$d/hang" ]; do sleep 0.1; done
case "$1" in
--query-gpu=*)
    echo "0, GPU-aaaaaaaa-1111-2222-3333-444444444444, 00000000:17:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3"
    echo "1, GPU-bbbbbbbb-1111-2222-3333-444444444444, 00000000:65:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3";;
--query-compute-apps=*) ;;
*) echo "fake nvidia-smi: $*" >&2; exit 2;;
esac
"""


def gpu_queue(impl, base, extra_env=None):
    """A private queue whose server probes the fake nvidia-smi in its directory (TS_GPU_SYSFS empty: no
    sysfs is read)."""
    q = Queue(impl, base, extra_env)
    smi = os.path.join(q.dir, "nvidia-smi")
    with open(smi, "w") as f:
        f.write(FAKE_SMI)
    os.chmod(smi, 0o755)
    q.env.update(TS_NVIDIA_SMI=smi, TS_GPU_SYSFS="")
    q.smi_log = os.path.join(q.dir, "smi.log")
    q.hang_flag = os.path.join(q.dir, "hang")
    return q


def smi_calls(q):
    """[(time, pid, query)] of every call of the queue's fake nvidia-smi so far."""
    calls = []
    try:
        with open(q.smi_log) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 3:
                    calls.append((float(parts[0]), int(parts[1]), parts[2]))
    except (OSError, ValueError):
        pass
    return calls


def probes_in(calls, t0, t1=None):
    """(calls, probes) that began in [t0, t1): a probe is its --query-gpu step (the second step,
    --query-compute-apps, follows when that one succeeds)."""
    sel = [c for c in calls if c[0] >= t0 and (t1 is None or c[0] < t1)]
    return len(sel), sum(1 for c in sel if c[2] == "--query-gpu")


def hung_probe(q):
    """The pid of the fake nvidia-smi running now (the last one called, still alive), else None."""
    calls = smi_calls(q)
    if not calls:
        return None
    pid = calls[-1][1]
    try:
        with open("/proc/%d/stat" % pid) as f:
            st = f.read()
        with open("/proc/%d/comm" % pid) as f:
            comm = f.read().strip()
    except OSError:
        return None
    return pid if comm == "nvidia-smi" and st.rsplit(")", 1)[1].split()[0] != "Z" else None


def schedstat(pid):
    """(nanoseconds on a CPU, timeslices: about the times it woke up) of a process."""
    try:
        with open("/proc/%d/schedstat" % pid) as f:
            v = f.read().split()
        return int(v[0]), int(v[2])
    except (OSError, ValueError, IndexError):
        return None


def wait_until(what, cond, timeout, step=0.02):
    end = time.time() + timeout
    while time.time() < end:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise RuntimeError("gpu: %s: not after %g s" % (what, timeout))


def gpu_idle(impl, base, n, window, reps=20):
    """Idle cost with n GPU jobs waiting: five queues alive together, sampled in one window every 50 ms
    (the server's schedstat): two `-G 1` blockers holding the two cards and n `-G 1 true` behind them, with
    the default probe interval (5 s) and with TS_GPU_PROBE_INTERVAL=1, and 1 `-G 1 true` with the latter
    (what a probe costs without the queue); n `-G 1 --gpu-mem 30G true` behind two `-G 1 --gpu-mem 60G` blockers
    with TS_GPU_SLOTS=2 (each card has room for a job, but no waiting job fits: every pass could place them
    all again); and, as the baseline, n `true` behind a CPU blocker (no probe).
    Then the server's CPU for a trivial command (`ts -s 0`) in each. A sample interval within 10 ms before to 250 ms after a call of the
    fake counts as the probe's; the others are 'between probes'."""
    setups = [("gpu5", "%s × `-G 1 true` waiting, probe interval 5 s (default)" % format(n, ","), {}, n),
              ("gpu1", "%s × `-G 1 true` waiting, TS_GPU_PROBE_INTERVAL=1" % format(n, ","),
               {"TS_GPU_PROBE_INTERVAL": "1"}, n),
              ("gpu1-1", "1 × `-G 1 true` waiting, TS_GPU_PROBE_INTERVAL=1", {"TS_GPU_PROBE_INTERVAL": "1"}, 1),
              ("mem", "%s × `-G 1 --gpu-mem 30G true` waiting, the cards have room but not the memory "
               "(TS_GPU_SLOTS=2, `--gpu-mem 60G` blockers)" % format(n, ","), {"TS_GPU_SLOTS": "2"}, n),
              ("cpu", "baseline: %s × `true` behind a CPU blocker (no probe)" % format(n, ","), None, n)]
    queues = []
    res = []
    try:
        for key, label, env, n in setups:
            if env is None:
                q = gpu_queue(impl, base)
                q.block("b")
                q.wait_state(0, "running")
                args = ["true"]
            else:
                q = gpu_queue(impl, base, env)
                mem = key == "mem"
                q.block("g0", ["-G", 1] + (["--gpu-mem", "60G"] if mem else []))
                q.block("g1", ["-G", 1] + (["--gpu-mem", "60G"] if mem else []))
                q.wait_state(0, "running")
                q.wait_state(1, "running")
                args = ["-G", 1] + (["--gpu-mem", "30G"] if mem else []) + ["true"]
            log("gpu: idle: queueing %d jobs (%s)" % (n, key))
            submit_burst(q, n, args=args)
            got = q.count()
            if got != n:
                raise RuntimeError("gpu: idle %s: %d jobs queued, expected %d" % (key, got, n))
            queues.append((key, label, q, q.server_pid(), n))
        time.sleep(1.0)  # the last submits' passes and probes are over
        log("gpu: idle: sampling the %d servers for %g s" % (len(queues), window))
        others0 = {}
        for key, _, q, srv, _ in queues:
            snap = q.cpu_snapshot()
            snap.pop(srv, None)
            others0[key] = snap
        samples = {key: [] for key, _, _, _, _ in queues}
        t0 = time.time()
        while True:
            now = time.time()
            for key, _, q, srv, _ in queues:
                samples[key].append((now,) + (schedstat(srv) or (0, 0)))
            if now - t0 >= window:
                break
            time.sleep(0.05)
        t1 = time.time()
        other = {}
        for key, _, q, srv, _ in queues:
            snap = q.cpu_snapshot()
            snap.pop(srv, None)
            other[key] = Queue.cpu_delta(others0[key], snap)
        # what one trivial command (`ts -s 0`) costs the server in each queue: a scheduling pass follows it
        s_cost = {}
        for _ in range(reps):
            for key, _, q, srv, _ in queues:
                c0 = schedstat(srv)[0]
                t = time.perf_counter()
                q.run(["-s", 0])
                dt = time.perf_counter() - t
                s_cost.setdefault(key, []).append(((schedstat(srv)[0] - c0) / 1e6, dt * 1e3))
        for key, label, q, srv, n in queues:
            allcalls = smi_calls(q)
            ncalls, nprobes = probes_in(allcalls, t0, t1)
            calls = [c for c in allcalls if t0 - 0.3 <= c[0] <= t1]
            sm = samples[key]
            dur = sm[-1][0] - sm[0][0]
            cpu = (sm[-1][1] - sm[0][1]) / 1e9
            wakes = sm[-1][2] - sm[0][2]
            b_cpu = b_wakes = b_time = 0.0
            p_cpu = p_time = 0.0
            for (ta, ca, wa), (tb, cb, wb) in zip(sm, sm[1:]):
                # overlaps [call - 10 ms, call + 250 ms] of some call
                near = any(ta < c[0] + 0.25 and tb > c[0] - 0.01 for c in calls)
                if near:
                    p_cpu += (cb - ca) / 1e9
                    p_time += tb - ta
                else:
                    b_cpu += (cb - ca) / 1e9
                    b_wakes += wb - wa
                    b_time += tb - ta
            b_rate = b_cpu / b_time if b_time > 0 else None
            per_probe = (p_cpu - (b_rate or 0) * p_time) / nprobes if nprobes else None
            state = (q.count("running"), q.count("queued"))
            res.append({"key": key, "label": label, "window": dur, "cpu_ms_s": cpu / dur * 1e3,
                        "wakeups_s": wakes / dur, "calls": ncalls, "probes": nprobes,
                        "cpu_per_probe_ms": per_probe * 1e3 if per_probe is not None else None,
                        "between_ms_s": b_rate * 1e3 if b_rate is not None else None,
                        "between_wakeups_s": b_wakes / b_time if b_time > 0 else None,
                        "between_time": b_time, "other_ms_s": other[key] / dur * 1e3,
                        "running_after": state[0], "queued_after": state[1], "n": n,
                        "s_reps": reps, "s_cpu_ms": median([v[0] for v in s_cost[key]]),
                        "s_wall_ms": median([v[1] for v in s_cost[key]])})
            log("gpu: idle %s: %s" % (key, ", ".join("%s=%s" % (k, fmt(v) if isinstance(v, float) else v)
                                                     for k, v in res[-1].items() if k not in ("key", "label"))))
    finally:
        for _, _, q, _, _ in queues:
            q.close()
    return res


def gpu_hang(impl, base, timeout, blocks, ans_s):
    """A hung probe delays only GPU jobs. One queue (TS_GPU_PROBE_INTERVAL=1, TS_GPU_PROBE_TIMEOUT=timeout):
    two `-G 1` blockers, job W = `-G 1 true` waiting behind them. Cycles of `ts -l`, `ts true` (submit, and
    the server's CPU for it) and `ts -w` on that job (submit → end), then `ts -C` (not timed), in `blocks`
    alternations of ans_s with the fake answering and a hang: the next probe sticks in it, cycles run until
    1 s before that probe's deadline, then the fake answers (the stuck probe too). Only the cycles that began
    and ended with one same probe stuck count as 'hung'. Last, a hang that runs into the deadline: blocker 0
    is released once the probe sticks (W could take card 0), `ts --gpu-list` is sent, the cycles go on until
    the probe was killed and the next one stuck; then `ts -i W`, and the fake answers again: how long until
    W starts."""
    r = {"timeout": timeout, "base": [], "hung": [], "base_calls": 0, "stuck_probes": 0}
    q = gpu_queue(impl, base, {"TS_GPU_PROBE_INTERVAL": "1", "TS_GPU_PROBE_TIMEOUT": str(timeout)})
    try:
        q.block("g0", ["-G", 1])
        q.block("g1", ["-G", 1])
        q.wait_state(0, "running")
        q.wait_state(1, "running")
        if q.run(["-G", 1, "true"]) != 0:
            raise RuntimeError("gpu: hang: submit of W failed")
        W = 2
        nxt = [3]
        time.sleep(0.3)
        if q.output(["-s", W])[1].strip() != "queued":
            raise RuntimeError("gpu: hang: W is not waiting")
        srv = q.server_pid()

        def cycle():
            pid0 = hung_probe(q)
            t = time.perf_counter()
            q.run(["-l"])
            t_l = time.perf_counter()
            c0 = schedstat(srv)[0]
            if q.run(["true"]) != 0:
                raise RuntimeError("gpu: hang: submit failed")
            c1 = schedstat(srv)[0]
            t_s = time.perf_counter()
            jid = nxt[0]
            nxt[0] += 1
            q.run(["-w", jid], timeout=60)
            t_w = time.perf_counter()
            pid1 = hung_probe(q)
            q.run(["-C"])
            return pid0 is not None and pid0 == pid1, ((t_l - t) * 1e3, (t_s - t_l) * 1e3, (t_w - t_l) * 1e3,
                                                       (c1 - c0) / 1e6)

        def phase(until, hung):
            """Cycles until until() is true; the answering ones, or the hung ones."""
            c0 = len(smi_calls(q))
            while not until():
                stuck, v = cycle()
                if stuck or not hung:
                    r["hung" if hung else "base"].append(v)
                time.sleep(0.03)
            if not hung:
                r["base_calls"] += len(smi_calls(q)) - c0

        def stick():
            """The fake hangs from now: the time its next call began."""
            with open(q.hang_flag, "w"):
                pass
            t = time.time()
            wait_until("a hanging probe", lambda: hung_probe(q) and smi_calls(q)[-1][0] > t, 5 + timeout)
            r["stuck_probes"] += 1
            return smi_calls(q)[-1][0]

        def answer():
            os.unlink(q.hang_flag)
            wait_until("the stuck probe to answer", lambda: not hung_probe(q), 5)

        log("gpu: hang: %d × (%g s with the fake answering, %g s with a probe stuck in it)"
            % (blocks, ans_s, timeout - 1))
        for _ in range(blocks):
            end = time.time() + ans_s
            phase(lambda: time.time() >= end, False)
            t_stuck = stick()
            phase(lambda: time.time() >= t_stuck + timeout - 1, True)
            answer()
        # the hang that runs into the deadline; blocker 0 ends once the probe is stuck (W could take card 0)
        log("gpu: hang: a probe killed at its deadline (TS_GPU_PROBE_TIMEOUT=%g)" % timeout)
        t_hang = stick() - 0.001
        q.release("g0")
        q.wait_state(0, "finished")
        # `ts --gpu-list` now: answered when the stuck probe ends (killed at its deadline)
        gl_out = os.path.join(q.dir, "gpu-list.out")
        gl = {}

        def gpu_list():
            fd = os.open(gl_out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            t = time.perf_counter()
            try:
                gl["rc"] = wait_pid(q.spawn(["--gpu-list"], out=fd), timeout=timeout * 3 + 10)
            except Timeout:
                gl["rc"] = "timeout"
            gl["s"] = time.perf_counter() - t
            os.close(fd)
        import threading
        th = threading.Thread(target=gpu_list, daemon=True)
        th.start()
        limit = time.time() + 2 * timeout + 10
        phase(lambda: sum(1 for c in smi_calls(q) if c[0] >= t_hang) >= 2 and hung_probe(q)
              or time.time() > limit, True)
        calls = [c for c in smi_calls(q) if c[0] >= t_hang]
        if len(calls) < 2:
            raise RuntimeError("gpu: hang: no probe after the first was killed")
        r["retry_after"] = calls[1][0] - calls[0][0]
        r["stuck_probes"] += 1
        r["W_state"] = q.output(["-s", W])[1].strip()
        info = q.output(["-i", W])[1]
        r["W_info"] = [l for l in info.splitlines() if l.startswith("Waiting for GPUs")] or ["(no Waiting line)"]
        th.join()
        with open(gl_out) as f:
            lines = f.read().strip().splitlines()
            r["gpu_list"] = (gl.get("s"), gl.get("rc"), lines[:1] + lines[-1:] if len(lines) > 1 else lines)
        # recovery: the fake answers again, the second probe stuck in it (that probe then answers)
        os.unlink(q.hang_flag)
        t_rec = time.time()
        wait_until("W started", lambda: q.output(["-s", W])[1].strip() in ("running", "finished"), 10 + timeout * 2,
                   step=0.01)
        r["W_start_after"] = time.time() - t_rec
        q.wait_state(W, "finished")
        r["W_gpus"] = [l for l in q.output(["-i", W])[1].splitlines() if l.startswith("GPUs:")]
        r["cpu_jobs"] = nxt[0] - 3
    finally:
        q.close()
    return r


def gpu_submit(impl, base, n, chunk=50):
    """ms per submit of `ts -G 1 true` vs `ts true`, n each, in alternating chunks, behind blockers (two
    `-G 1` ones on the two cards, one CPU one): wall, and CPU of the client (wait4) and the queue's processes
    (schedstat)."""
    q = gpu_queue(impl, base)
    r = {"n": n, "gpu": [0.0, 0.0], "cpu": [0.0, 0.0]}
    try:
        q.block("g0", ["-G", 1])
        q.block("g1", ["-G", 1])
        q.block("c")
        for i in range(3):
            q.wait_state(i, "running")
        t0 = time.time()
        k = 0
        while k < n:
            m = min(chunk, n - k)
            order = (("gpu", ["-G", 1, "true"]), ("cpu", ["true"]))
            for kind, args in (order if (k // chunk) % 2 == 0 else order[::-1]):
                cpu, before = [0.0], q.cpu_snapshot()
                r[kind][0] += submit_seq(q, m, args, cpu=cpu)
                r[kind][1] += cpu[0] + q.cpu_delta(before, q.cpu_snapshot())
            k += m
        r["calls"], r["probes"] = probes_in(smi_calls(q), t0)
        r["queued"] = q.count()
        if r["queued"] != 2 * n:
            raise RuntimeError("gpu: submit: %d queued, expected %d" % (r["queued"], 2 * n))
    finally:
        q.close()
    # the same GPU submits with the CPU slot free (no CPU blocker: GPU jobs take no slot), per chunk
    q = gpu_queue(impl, base)
    r["free"], r["free_chunks"] = [0.0, 0.0], []
    try:
        q.block("g0", ["-G", 1])
        q.block("g1", ["-G", 1])
        q.wait_state(0, "running")
        q.wait_state(1, "running")
        k = 0
        while k < n:
            m = min(chunk, n - k)
            cpu, before = [0.0], q.cpu_snapshot()
            wall = submit_seq(q, m, ["-G", 1, "true"], cpu=cpu)
            c = cpu[0] + q.cpu_delta(before, q.cpu_snapshot())
            r["free"][0] += wall
            r["free"][1] += c
            r["free_chunks"].append((k + m, wall / m * 1e3, c / m * 1e3))
            k += m
    finally:
        q.close()
    for kind in ("gpu", "cpu", "free"):
        r[kind] = [v / n * 1e3 for v in r[kind]]
    return r


def gpu_drain(impl, base, n, gpu):
    """n `-G 1 true` on the two cards (TS_GPU_SLOTS=1), or n `true` with -S 2, behind two blockers
    released together: ms per job from then to the last job's end, and the server's CPU per job."""
    q = gpu_queue(impl, base, {"TS_GPU_SLOTS": "1"} if gpu else None)
    r = {}
    try:
        if not gpu:
            q.run(["-S", 2])
        opts = ["-G", 1] if gpu else []
        q.block("b0", opts)
        q.block("b1", opts)
        q.wait_state(0, "running")
        q.wait_state(1, "running")
        submit_burst(q, n, args=opts + ["true"])
        if q.count() != n:
            raise RuntimeError("gpu: drain: %d queued, expected %d" % (q.count(), n))
        time.sleep(0.2)
        srv = q.server_pid()
        c0 = schedstat(srv)[0]
        t0 = time.time()
        t = time.perf_counter()
        q.release("b0")
        q.release("b1")
        rc = q.run(["-w", n + 1], timeout=300)
        r["ms_job"] = (time.perf_counter() - t) / n * 1e3
        r["server_cpu_ms_job"] = (schedstat(srv)[0] - c0) / 1e6 / n
        r["calls"], r["probes"] = probes_in(smi_calls(q), t0)
        q.wait_state(n + 1, "finished")
        end = time.time() + 10  # the job before the last may end just after it (2 run at a time)
        while (left := q.count("queued") + q.count("running")) and time.time() < end:
            time.sleep(0.02)
        if left:
            raise RuntimeError("gpu: drain: %d jobs left (-w rc %d)" % (left, rc))
    finally:
        q.close()
    return r


def scenario_gpu(impl, base, quick):
    """The GPU scenario (ts only): idle cost, a hung probe, submit cost, drain. About a minute on two
    cores (most of it the 20 s idle window and the ~25 s of the hung-probe cycles), --quick about 30 s."""
    n_idle = 1000
    window = 8 if quick else 20
    timeout = 3 if quick else 5
    blocks, ans_s = (2, 1.5) if quick else (3, 2.5)
    n_submit = 100 if quick else 300
    n_drain = 100 if quick else 200
    drain_rounds = 1 if quick else 3
    r = {"n_idle": n_idle}
    r["idle"] = gpu_idle(impl, base, n_idle, window)
    r["hang"] = gpu_hang(impl, base, timeout, blocks, ans_s)
    log("gpu: hang: %d cycles answering, %d stuck; W %s, started %.2f s after the fake answered again"
        % (len(r["hang"]["base"]), len(r["hang"]["hung"]), r["hang"]["W_state"], r["hang"]["W_start_after"]))
    log("gpu: submit: %d × 2" % n_submit)
    r["submit"] = gpu_submit(impl, base, n_submit)
    log("gpu: submit: -G 1 %s ms, plain %s ms" % (fmt(r["submit"]["gpu"][0]), fmt(r["submit"]["cpu"][0])))
    r["drain"] = {"gpu": [], "cpu": []}
    for rnd in range(drain_rounds):
        for kind in (("gpu", "cpu") if rnd % 2 == 0 else ("cpu", "gpu")):
            v = gpu_drain(impl, base, n_drain, kind == "gpu")
            r["drain"][kind].append(v)
            log("gpu: drain [%d/%d] %s: %s ms/job, server CPU %s ms/job, %d probes" % (
                rnd + 1, drain_rounds, kind, fmt(v["ms_job"]), fmt(v["server_cpu_ms_job"]), v["probes"]))
    r["n_drain"] = n_drain
    return r


def gpu_report(r):
    out = []
    p = out.append
    p("")
    p("GPU scenario (ts only): a fake `nvidia-smi` (a shell script: two H100 cards, no compute process; "
      "a flag file makes it hang) as TS_NVIDIA_SMI, TS_GPU_SYSFS empty.")
    p("")
    p("| idle: 2 `-G 1` jobs running (the 2 cards), jobs waiting behind them | window s | server CPU ms/s | server wakeups/s | "
      "nvidia-smi calls | probes | server CPU per probe (ms) | CPU between probes (ms/s) | "
      "wakeups/s between probes | spawner + runners CPU ms/s | server CPU per `ts -s 0` (ms) |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v in r["idle"]:
        p("| %s | %.1f | %s | %s | %d | %d | %s | %s | %s | %s | %s |" % (
            v["label"], v["window"], fmt(v["cpu_ms_s"], 3), fmt(v["wakeups_s"]), v["calls"], v["probes"],
            fmt(v["cpu_per_probe_ms"]), fmt(v["between_ms_s"], 3), fmt(v["between_wakeups_s"]),
            fmt(v["other_ms_s"], 3), fmt(v["s_cpu_ms"], 3)))
    p("")
    p("Sampled every 50 ms from /proc/PID/schedstat (wakeups: its timeslice count); a sample within 250 ms after "
      "a call of the fake is the probe's, the rest is 'between probes'; per probe = the probe's samples less "
      "the between-probes rate. A probe is 2 calls (the cards, then their processes). The five queues are "
      "alive together and sampled in the same window; the last column is the median of %d, after the window."
      % r["idle"][0]["s_reps"])
    h = r["hang"]
    p("")
    p("| a probe stuck in nvidia-smi (TS_GPU_PROBE_TIMEOUT=%g, interval 1 s), GPU jobs waiting | answering: "
      "median | max | stuck: median | max | stuck / answering |" % h["timeout"])
    p("|---|---:|---:|---:|---:|---:|")
    for i, label in enumerate(("`ts -l` (ms)", "submit `ts true` (ms)", "&nbsp;&nbsp;server CPU for the submit (ms)",
                               "`ts true`: submit → end, `ts -w` (ms)")):
        i = (0, 1, 3, 2)[i]
        a = [v[i] for v in h["base"]]
        b = [v[i] for v in h["hung"]]
        ma, mb = median(a), median(b)
        p("| %s | %s | %s | %s | %s | %s |" % (label, fmt(ma), fmt(max(a) if a else None), fmt(mb),
                                                fmt(max(b) if b else None), fmt(mb / ma, 3) if ma and mb else "—"))
    p("| cycles (answering: %d nvidia-smi calls meanwhile; stuck: in %d probes, 1 of them killed) | %d | | %d | | |"
      % (h["base_calls"], h["stuck_probes"], len(h["base"]), len(h["hung"])))
    p("")
    p("Answering and stuck alternate; a cycle counts as stuck when one same probe was stuck at its start and end.")
    gl = h["gpu_list"]
    p("")
    p("The last hang ran into the deadline: the GPU job W (card 0 freed once the probe stuck) stayed %s; "
      "the next probe began %.1f s after the first; `ts -i`: \"%s\". The fake answered again (the second probe "
      "stuck in it answering) and W started %.2f s later (%s). `ts --gpu-list` sent as the hang began answered "
      "after %s s (rc %s): \"%s\"."
      % (h["W_state"], h["retry_after"], "; ".join(h["W_info"]), h["W_start_after"],
         "; ".join(h["W_gpus"]) or "no GPUs line", fmt(gl[0]), gl[1], " … ".join(gl[2])))
    s = r["submit"]
    p("")
    p("| submit, %d each behind blockers (2 GPU, 1 CPU) | ms/submit | CPU of client and queue (ms/submit) |"
      % s["n"])
    p("|---|---:|---:|")
    p("| `ts -G 1 true` | %s | %s |" % (fmt(s["gpu"][0]), fmt(s["gpu"][1])))
    p("| `ts true` | %s | %s |" % (fmt(s["cpu"][0]), fmt(s["cpu"][1])))
    p("| ratio | %s | %s |" % (fmt(s["gpu"][0] / s["cpu"][0], 3), fmt(s["gpu"][1] / s["cpu"][1], 3)))
    p("| `ts -G 1 true`, the CPU slot free (2 GPU blockers only) | %s | %s |" % (fmt(s["free"][0]),
                                                                                 fmt(s["free"][1])))
    p("| &nbsp;&nbsp;its last chunk (jobs %d–%d waiting) | %s | %s |" % (
        s["free_chunks"][-2][0] if len(s["free_chunks"]) > 1 else 0, s["free_chunks"][-1][0],
        fmt(s["free_chunks"][-1][1]), fmt(s["free_chunks"][-1][2])))
    p("")
    p("(alternating chunks of 50; %d probes during the submits)" % s["probes"])
    d = r["drain"]
    p("")
    p("| drain: %d jobs, from the two blockers' end to the last job's end (median of %d) | ms/job | "
      "server CPU ms/job | probes |" % (r["n_drain"], len(d["gpu"])))
    p("|---|---:|---:|---:|")
    for kind, label in (("gpu", "`-G 1 true`, 2 cards, TS_GPU_SLOTS=1"), ("cpu", "`true`, -S 2")):
        p("| %s | %s | %s | %s |" % (label, fmt(median([v["ms_job"] for v in d[kind]])),
                                      fmt(median([v["server_cpu_ms_job"] for v in d[kind]]), 3),
                                      "/".join(str(v["probes"]) for v in d[kind])))
    return out


# ---- formatting --------------------------------------------------------------------------------------

# ---- held and delayed jobs (ts only, --only hold) -------------------------------------------------------

def idle_and_ops(queues, window, reps):
    """The servers of queues [(key, label, q, srv)], alive together: {key: figures} of their CPU and
    wakeups over one window with nothing due (schedstat), then `ts -l`'s wall time and the server's CPU per
    `ts -s 0` (medians of reps)."""
    time.sleep(1.0)  # the last submits' passes are over
    first = {key: (time.time(),) + (schedstat(srv) or (0, 0)) for key, _, _, srv in queues}
    time.sleep(window)
    out = {}
    for key, _, q, srv in queues:
        t, c, w = (time.time(),) + (schedstat(srv) or (0, 0))
        dur = t - first[key][0]
        ls, s_cpu = [], []
        for _ in range(reps):
            a = time.perf_counter()
            q.output(["-l"], timeout=120)
            ls.append((time.perf_counter() - a) * 1e3)
            c0 = schedstat(srv)[0]
            q.run(["-s", 0])
            s_cpu.append((schedstat(srv)[0] - c0) / 1e6)
        out[key] = {"window": dur, "cpu_ms_s": (c - first[key][1]) / 1e6 / dur, "wakeups_s": (w - first[key][2]) / dur,
                    "list_ms": median(ls), "s_cpu_ms": median(s_cpu)}
    return out


def log_figures(what, r):
    log("hold: %s: %s" % (what, ", ".join("%s=%s" % (k, fmt(v) if isinstance(v, float) else v)
                                          for k, v in r.items() if k not in ("key", "label"))))


def hold_idle(impl, base, n, window):
    """The server's CPU and wakeups while nothing is due: an empty queue (the baseline: the server looks at
    its files once a second), n `--hold true` and n `--delay=1d true` with the slot free (every pass looks
    at them all), and the same behind a running blocker; then `ts -l` and the server's CPU for `ts -s 0`."""
    setups = [("empty", "empty queue (baseline)", False, 0),
              ("free", "%s held + %s delayed (1 day), the slot free" % (format(n, ","), format(n, ",")), False, n),
              ("busy", "%s held + %s delayed behind a running job" % (format(n, ","), format(n, ",")), True, n)]
    queues, res = [], []
    try:
        for key, label, busy, k in setups:
            q = Queue(impl, base)
            if busy:
                q.block("b")
                q.wait_state(0, "running")
            else:
                q.run(["-S", 1])
            log("hold: queueing %d held and %d delayed jobs (%s)" % (k, k, key))
            if k:
                submit_burst(q, k, args=["--hold", "true"])
                submit_burst(q, k, args=["--delay=1d", "true"])
                got = q.count("held") + q.count("delayed")
                if got != 2 * k:
                    raise RuntimeError("hold: %s: %d jobs held or delayed, expected %d" % (key, got, 2 * k))
            queues.append((key, label, q, q.server_pid()))
        figures = idle_and_ops(queues, window, 10)
        for key, label, q, srv in queues:
            res.append(dict(key=key, label=label, **figures[key]))
            log_figures(key, res[-1])
    finally:
        for _, _, q, _ in queues:
            q.close()
    return res


def hold_due(impl, base, delay=2.0):
    """A `--delay` job's start against its time: submit `--delay=D true`, wait for its end (`ts -w`)."""
    q = Queue(impl, base)
    try:
        a = time.time()
        q.run(["--delay=%g" % delay, "true"])
        q.run(["-w", 0], timeout=delay + 30)
        return {"delay": delay, "late_s": time.time() - a - delay}
    finally:
        q.close()


def hold_scale(impl, base, n, window, starts=5):
    """n jobs queued behind a running blocker, two queues alive together: all `sleep 3600` ("plain"), and
    the same with 500 `--hold` and 500 `--delay=1d` jobs right behind the blocker ("mixed": every pass
    walks past them first). Over a window with nothing due: the server's CPU and wakeups; then `ts -l`,
    the server's CPU per `ts -s 0`, and per scheduling pass that starts one job (`ts -S k`, k = 2, 3, ...:
    a slot more, the next startable job starts)."""
    setups = [("plain", "%s queued behind a running job" % format(n, ","), 0),
              ("mixed", "the same, 500 held and 500 delayed (1 day) of them first in the queue", 500)]
    queues, res = [], []
    try:
        for key, label, k in setups:
            q = Queue(impl, base)
            q.block("b")
            q.wait_state(0, "running")
            log("hold: scale: queueing %d jobs (%s)" % (n, key))
            if k:
                submit_burst(q, k, args=["--hold", "sleep", "3600"])
                submit_burst(q, k, args=["--delay=1d", "sleep", "3600"])
            submit_burst(q, n - 2 * k, args=["sleep", "3600"])
            got = q.count("queued") + q.count("held") + q.count("delayed")
            if got != n:
                raise RuntimeError("hold: scale %s: %d jobs queued, expected %d" % (key, got, n))
            queues.append((key, label, q, q.server_pid()))
        figures = idle_and_ops(queues, window, 5)
        for key, label, q, srv in queues:
            pass_cpu = []
            for slots in range(2, 2 + starts):
                c0 = schedstat(srv)[0]
                q.run(["-S", slots])
                pass_cpu.append((schedstat(srv)[0] - c0) / 1e6)
            res.append(dict(key=key, label=label, n=n, start_cpu_ms=median(pass_cpu), running=q.count("running"),
                            **figures[key]))
            log_figures("scale " + key, res[-1])
    finally:
        for _, _, q, _ in queues:
            q.close()
    return res


def scenario_hold(impl, base, quick):
    n = 1000
    return {"n": n, "idle": hold_idle(impl, base, n, 5 if quick else 15), "due": hold_due(impl, base),
            "scale": hold_scale(impl, base, 10000 if quick else 100000, 5 if quick else 15)}


def hold_report(r):
    out = []
    p = out.append
    p("")
    p("Held and delayed jobs (ts only): the server's CPU (/proc/PID/schedstat) over a window with nothing due, "
      "`ts -l` and the server's CPU per `ts -s 0`:")
    p("")
    p("| queue | window s | server CPU ms/s | server wakeups/s | `ts -l` ms | server CPU per `ts -s 0` (ms) |")
    p("|---|---|---|---|---|---|")
    for v in r["idle"]:
        p("| %s | %.0f | %s | %s | %s | %s |" % (v["label"], v["window"], fmt(v["cpu_ms_s"], 3), fmt(v["wakeups_s"]),
                                            fmt(v["list_ms"]), fmt(v["s_cpu_ms"], 3)))
    p("")
    p("A `--delay=%g true` job ended %.2f s after its time (`ts -w`)." % (r["due"]["delay"], r["due"]["late_s"]))
    if r.get("scale"):
        p("")
        p("A large queue (`sleep 3600` jobs behind a running job, 1 slot) with and without 1,000 held or delayed "
          "jobs at its head: the server over a window with nothing due, `ts -l`, the server's CPU per `ts -s 0`, "
          "and per `ts -S k` that frees a slot and starts the next startable job (median of %d):" % 5)
        p("")
        p("| queue | server CPU ms/s | server wakeups/s | `ts -l` ms | server CPU per `ts -s 0` (ms) | "
          "server CPU per start (ms) |")
        p("|---|---|---|---|---|---|")
        for v in r["scale"]:
            p("| %s | %s | %s | %s | %s | %s |" % (v["label"], fmt(v["cpu_ms_s"], 3), fmt(v["wakeups_s"]),
                                              fmt(v["list_ms"]), fmt(v["s_cpu_ms"], 3), fmt(v["start_cpu_ms"], 3)))
    return out


def fmt(x, nd=2):
    if x is None:
        return "—"
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return ("%%.%df" % nd) % x


def yes(ok):
    return "—" if ok is None else ("yes" if ok else "**no**")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer jobs and rounds (about a minute)")
    ap.add_argument("--rounds", type=int, help="rounds per scenario (default 5, quick 3)")
    ap.add_argument("--jobs", type=int, help="jobs in the side-by-side scenarios (default 1000, quick 200)")
    ap.add_argument("--tsp-jobs", type=int, default=900,
                    help="the most jobs tsp is asked to hold (default 900: it blocks near 993)")
    ap.add_argument("--scale", type=int, help="jobs in the scale scenario (default 100000, quick 10000)")
    ap.add_argument("--scale-budget", type=int, default=300,
                    help="seconds allowed for queueing the scale scenario's jobs (default 300)")
    ap.add_argument("--ts", default=os.path.join(REPO, "ts"), help="the ts binary (default: REPO/ts)")
    ap.add_argument("--tsp", default="/usr/bin/tsp", help="task-spooler's binary (default /usr/bin/tsp)")
    ap.add_argument("--no-tsp", action="store_true", help="ts alone")
    ap.add_argument("--no-scale", action="store_true", help="skip the scale and queue-ops scenarios")
    ap.add_argument("--no-journal", action="store_true", help="skip the journal comparison")
    ap.add_argument("--only", help="comma-separated: main,burst,scale,journal,gpu,hold (gpu: not in the default set)")
    ap.add_argument("--json", help="also write the raw per-round values to this file")
    a = ap.parse_args()

    rounds = a.rounds or (3 if a.quick else 5)
    jobs = a.jobs or (200 if a.quick else 1000)
    scale = a.scale or (10000 if a.quick else 100000)
    small = min(1000, scale)
    ops_reps = 10 if a.quick else 20
    jrounds = 3 if a.quick else 5
    jjobs = 300 if a.quick else 1000
    only = set(a.only.split(",")) if a.only else {"main", "burst", "scale", "journal", "hold"}
    if a.no_scale:
        only.discard("scale")
    if a.no_journal:
        only.discard("journal")

    tsbin = os.path.abspath(a.ts)
    if not os.access(tsbin, os.X_OK):
        sys.exit("bench: %s not found: run make first" % tsbin)
    impls = [Impl("ts", tsbin, {"ts", "ts-server", "ts-spawner", "ts-runner"})]
    tsp = None
    if not a.no_tsp and os.access(a.tsp, os.X_OK):
        tsp = Impl("tsp", os.path.abspath(a.tsp), {"tsp"})
        impls.append(tsp)
    n = min(jobs, a.tsp_jobs) if tsp else jobs

    # task-spooler: a descriptor per queued client
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))

    root = tempfile.mkdtemp(prefix="ts-bench.")
    roots = [root]
    # a copy of the binary, so that a rebuild during the run changes nothing
    os.mkdir(os.path.join(root, "bin"))
    shutil.copy2(tsbin, os.path.join(root, "bin", "ts"))
    impls[0].path = os.path.join(root, "bin", "ts")
    tsv = subprocess.run([impls[0].path, "-V"], capture_output=True, text=True).stdout.split("\n")[0].split(" - ")[0]

    def on_signal(sig, frame):
        raise KeyboardInterrupt()
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    os.chdir(root)  # the jobs' cwd (and tsp's server's): never the repository
    become_subreaper()

    raw = {"main": [], "burst": [], "scale": [], "journal": [], "gpu": None, "hold": None}
    t_start = time.time()
    load0 = os.getloadavg()[0]
    try:
        base_ms = spawn_baseline()
        log("bench: %d rounds, %d jobs side by side%s, in %s" % (rounds, n, "" if tsp else " (ts alone)", root))

        # ---- side by side, interleaved ------------------------------------------------------------
        for rnd in range(rounds):
            order = impls if rnd % 2 == 0 else impls[::-1]
            if "main" in only:
                for impl in order:
                    v = scenario_main(impl, n, root)
                    v.update(impl=impl.name, round=rnd)
                    raw["main"].append(v)
                    log("[%d/%d] %-3s submit %s ms (CPU %s), list %s ms (CPU %s), memory %s KB/job (%s KB in %s "
                        "processes, %s before), drain %s ms/job (CPU %s)" % (
                            rnd + 1, rounds, impl.name, fmt(v.get("submit")), fmt(v.get("submit_cpu")),
                            fmt(v.get("list")), fmt(v.get("list_cpu")), fmt(v.get("mem")), v.get("mem_total"),
                            v.get("mem_procs"), v.get("mem_base"), fmt(v.get("drain")), fmt(v.get("drain_cpu"))))
            if "burst" in only:
                for impl in order:
                    v = scenario_burst(impl, n, root)
                    v.update(impl=impl.name, round=rnd)
                    raw["burst"].append(v)
                    log("[%d/%d] %-3s burst %s ms/submit" % (rnd + 1, rounds, impl.name, fmt(v.get("burst"))))

        # ---- journal ------------------------------------------------------------------------------
        jvariants = []
        if "journal" in only:
            disk = None
            for cand in (os.environ.get("TMPDIR"), "/var/tmp", "/tmp"):
                if cand and os.path.isdir(cand) and os.access(cand, os.W_OK) and fs_type(cand) != "tmpfs":
                    disk = cand
                    break
            jroot_disk = tempfile.mkdtemp(prefix="ts-bench.", dir=disk) if disk else root
            roots.append(jroot_disk)
            jvariants = [("on, %s (%s)" % (os.path.dirname(jroot_disk), fs_type(jroot_disk)), jroot_disk, {}),
                         ("on, TS_FSYNC=1 (%s)" % fs_type(jroot_disk), jroot_disk, {"TS_FSYNC": "1"}),
                         ("off: TS_JOURNAL=0", jroot_disk, {"TS_JOURNAL": "0"})]
            if os.path.isdir("/dev/shm") and fs_type("/dev/shm") == "tmpfs" and os.access("/dev/shm", os.W_OK):
                jroot_shm = tempfile.mkdtemp(prefix="ts-bench.", dir="/dev/shm")
                roots.append(jroot_shm)
                jvariants.insert(1, ("on, /dev/shm (tmpfs)", jroot_shm, {}))
            for rnd in range(jrounds):
                order = jvariants if rnd % 2 == 0 else jvariants[::-1]
                for label, where, env in order:
                    ms, cpu_ms, wrote = scenario_journal(impls[0], jjobs, where, env)
                    raw["journal"].append({"variant": label, "submit": ms, "cpu": cpu_ms, "journal_written": wrote,
                                           "round": rnd})
                    log("[%d/%d] journal %-28s %s ms/submit, CPU %s ms%s" % (
                        rnd + 1, jrounds, label, fmt(ms), fmt(cpu_ms), "" if wrote else " (no journal file)"))

        # ---- scale and queue operations (ts) --------------------------------------------------------
        if "scale" in only:
            raw["scale"] = scenario_scale(impls[0], [small, scale] if small != scale else [scale], root, ops_reps,
                                          a.scale_budget)
            for v in raw["scale"]:
                log("scale: %d: %s" % (v["n"], ", ".join("%s=%s" % (k, fmt(x) if isinstance(x, float) else x)
                                                        for k, x in v.items())))

        # ---- GPUs (ts, a fake nvidia-smi) -------------------------------------------------------------
        if "gpu" in only:
            raw["gpu"] = scenario_gpu(impls[0], root, a.quick)

        # ---- held and delayed jobs (ts) -----------------------------------------------------------------
        if "hold" in only:
            raw["hold"] = scenario_hold(impls[0], root, a.quick)
    except KeyboardInterrupt:
        log("bench: interrupted")
        cleanup()
        sys.exit(130)
    finally:
        cleanup()
        os.chdir("/")
        for r in roots:
            shutil.rmtree(r, ignore_errors=True)

    elapsed = time.time() - t_start
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)

    # ---- report ------------------------------------------------------------------------------------
    def med(section, impl, key):
        return median([v.get(key) for v in raw[section] if v["impl"] == impl])

    out = []
    p = out.append
    # the memory target is per queued job at 1,000 jobs: ts alone holds them (tsp cannot), in the scale scenario
    mem1000 = None
    if raw["scale"] and len(raw["scale"]) > 1 and not raw["scale"][0].get("blocked") and raw["main"]:
        mem1000 = raw["scale"][0].get("pss_per_job")
    envsize = sum(len(k) + len(v) + 2 for k, v in os.environ.items() if k not in SCRUB) + 40
    p("### Benchmark — %s" % datetime.date.today().isoformat())
    p("")
    side = tsp and (raw["main"] or raw["burst"])
    p("%s, %d CPUs, Linux %s; temp dirs on %s (%s); `%s`%s. %sSpawning `/bin/true` costs "
      "%.2f ms here (the floor of any client command). Jobs' environment: %d bytes. Load average %.1f at the "
      "start, %.1f at the end; the run took %.0f s."
      % (platform.machine(), os.cpu_count(), platform.release(), tempfile.gettempdir(),
         fs_type(tempfile.gettempdir()), tsv, " against `%s`" % tsp.path if side else " (tsp not run)",
         "%d round%s%s, medians. " % (rounds, "" if rounds == 1 else "s", ", ts and tsp interleaved" if side else "")
         if only - {"gpu", "hold"} else "", base_ms, envsize, load0, os.getloadavg()[0], elapsed))
    p("")
    if raw["main"] or raw["burst"]:
        p("| scenario | ts | tsp | ts/tsp | target | met |")
        p("|---|---:|---:|---:|---|---|")
        rows = [("main", "submit", "submit: %d × `ts true` behind a blocker, one after another (ms/submit)" % n,
                 "ratio", 0.5),
                ("main", "submit_cpu", "&nbsp;&nbsp;CPU of client and queue (ms/submit)", None, None),
                ("burst", "burst", "burst: 8 concurrent submitters, %d jobs (ms/submit)" % n, "ratio", 0.5),
                ("main", "list", "list: `ts -l` with %d queued (ms)" % n, "ratio", 0.5),
                ("main", "list_cpu", "&nbsp;&nbsp;CPU of client and server (ms)", None, None),
                ("main", "mem", "memory: PSS of server and runners / queued job, %d queued (KB)" % n,
                 "abs" if mem1000 is None else None, 2.0),
                ("main", "mem_marginal", "&nbsp;&nbsp;the same, less the PSS before queueing (KB)", None, None),
                ("main", "mem_total", "&nbsp;&nbsp;PSS in all (KB)", None, None),
                ("scale", "mem1000", "&nbsp;&nbsp;ts alone, %s queued (KB per queued job)"
                 % (format(raw["scale"][0]["n"], ",") if raw["scale"] else ""), "abs", 2.0),
                ("main", "drain", "drain: %d `true`, 1 slot, blocker's end → last job's end (ms/job)" % n,
                 "ratio", 0.8),
                ("main", "drain_cpu", "&nbsp;&nbsp;CPU of server, runners and jobs (ms/job)", None, None)]
        for section, key, label, kind, target in rows:
            if key == "mem1000":
                if mem1000 is None:
                    continue
                a_, b_ = mem1000, None
            elif not raw[section]:
                continue
            else:
                a_ = med(section, "ts", key)
                b_ = med(section, "tsp", key) if tsp else None
            ratio = a_ / b_ if a_ is not None and b_ else None
            if kind == "ratio":
                tgt, ok = "≤ %.1f × tsp" % target, (ratio <= target if ratio is not None else None)
            elif kind == "abs":
                tgt, ok = "≤ %g KB" % target, (a_ <= target if a_ is not None else None)
            else:
                tgt, ok = "", None
            p("| %s | %s | %s | %s | %s | %s |" % (label, fmt(a_), fmt(b_) if tsp else "n/a",
                                                  fmt(ratio, 3) if ratio is not None else "—", tgt,
                                                  yes(ok) if kind else ""))
        blocked = [v for s in ("main", "burst") for v in raw[s] if v.get("blocked")]
        if blocked:
            p("")
            p("Blocked: %s." % "; ".join("%s round %d: %s" % (v["impl"], v["round"] + 1, v["blocked"]) for v in blocked))
        if tsp and n < jobs:
            p("")
            p("tsp keeps one blocked client process per queued job and its server takes about 995 clients (a queue "
              "of ~993 behind a running job, then the next `tsp` blocks), so the side-by-side scenarios use %d "
              "jobs for both programs instead of %d." % (n, jobs))

    if raw["journal"]:
        p("")
        p("| journal: %d × `ts true` behind a blocker | ms/submit | vs off | CPU ms/submit | vs off |" % jjobs)
        p("|---|---:|---:|---:|---:|")
        med_j, cpu_j, written = {}, {}, {}
        for label, _, _ in jvariants:
            vs = [v for v in raw["journal"] if v["variant"] == label]
            med_j[label] = median([v["submit"] for v in vs])
            cpu_j[label] = median([v["cpu"] for v in vs])
            written[label] = any(v["journal_written"] for v in vs)
        off = [l for l, _, e in jvariants if e.get("TS_JOURNAL") == "0"][0]
        off_ok = not written[off]
        for label, _, _ in jvariants:
            if label == off:
                p("| %s%s | %s | %s | %s | %s |" % (label, "" if off_ok else " (not honoured: the journal was written)",
                                                   fmt(med_j[label]), "1" if off_ok else "—", fmt(cpu_j[label]),
                                                   "1" if off_ok else "—"))
            else:
                p("| %s | %s | %s | %s | %s |" % (label, fmt(med_j[label]),
                                                  fmt(med_j[label] / med_j[off], 3) if off_ok else "—",
                                                  fmt(cpu_j[label]), fmt(cpu_j[label] / cpu_j[off], 3) if off_ok else "—"))
        p("")
        on = jvariants[0][0]
        if off_ok:
            ratio = med_j[on] / med_j[off]
            p("Target, submit throughput with the journal (on disk) within 10 %% of without: ×%.3f — %s."
              % (ratio, yes(ratio <= 1.10)))
        else:
            p("Target (journal within 10 %% of no journal): not measurable until the server honours TS_JOURNAL=0; "
              "the tmpfs row shows what the disk costs.")

    if raw["scale"]:
        big = raw["scale"][-1]
        sm = raw["scale"][0] if len(raw["scale"]) > 1 else None
        N = big["n"]
        if big.get("deadline"):
            p("")
            p("**The scale queue was cut short:** only %s of the %s jobs were queued within %d s "
              "(--scale-budget); the rows below are for that queue." % (format(N, ","), format(scale, ","),
                                                                        big["deadline"]))
        p("")
        p("| scale: %s queued jobs (ts) | value | target | met |" % format(N, ","))
        p("|---|---:|---|---|")
        if big.get("blocked"):
            p("| submit | blocked | accepted without blocking | **no** |")
        else:
            ok = big.get("queued") == N and not big.get("deadline")
            p("| submit %s jobs, 8 submitters | %.1f s (%.2f ms/job); %s queued | accepted without blocking | %s |"
              % (format(N, ","), big["submit_s"], big["submit_s"] / N * 1e3, format(big.get("queued", 0), ","),
                 yes(ok)))
            p("| `ts -l` | %s ms | < 1 s | %s |" % (fmt(big["-l wall"]), yes(big["-l wall"] < 1000)))
            rss = big.get("rss")
            p("| server RSS (peak) | %s MB (%s MB) | < 300 MB | %s |"
              % (fmt(rss / 1024 if rss else None, 1), fmt(big["hwm"] / 1024 if big.get("hwm") else None, 1),
                 yes(rss / 1024 < 300) if rss else "—"))
            p("| PSS of server and runners / queued job | %s KB | ≤ 2 KB | %s |"
              % (fmt(big["pss_per_job"]), yes(big["pss_per_job"] <= 2)))
        if sm and not sm.get("blocked") and not big.get("blocked"):
            n1, n2 = format(sm["n"], ","), format(N, ",")
            p("")
            p("| queue operation, ms (median of %d, the two queues alternated) | wall %s | wall %s | server CPU %s "
              "| server CPU %s | flat |" % (ops_reps, n1, n2, n1, n2))
            p("|---|---:|---:|---:|---:|---|")
            for key, label in OPS:
                fails = sm.get(key + " failures", 0) + big.get(key + " failures", 0)
                c1, c2 = sm.get(key + " cpu"), big.get(key + " cpu")
                # anything proportional to the queue costs at least ~1 ns per job: 0.1 ms at 100,000
                flat = None if c1 is None or c2 is None else (c2 - c1) < max(0.1, 1e-6 * (N - sm["n"]))
                p("| %s%s | %s | %s | %s | %s | %s |" % (
                    label, " (%d failed)" % fails if fails else "", fmt(sm.get(key + " wall")),
                    fmt(big.get(key + " wall")), fmt(c1, 3), fmt(c2, 3),
                    "n/a: the output grows" if key == "-l" else yes(flat)))
            p("")
            p("flat: the server's CPU time for the operation grows by less than 1 ns per queued job (0.1 ms "
              "from %s to %s); the server's CPU is read from /proc/PID/schedstat around each command. The drain "
              "step's CPU includes handing the job to a spare runner (the server forks one only when no "
              "spare comes)." % (n1, n2))
    if raw["gpu"]:
        out.extend(gpu_report(raw["gpu"]))
    if raw["hold"]:
        out.extend(hold_report(raw["hold"]))
    print("\n".join(out))


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
