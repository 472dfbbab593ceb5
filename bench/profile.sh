#!/bin/bash
# bench/profile.sh [TS] [N] — where ts's time goes for submit, list and drain (not part of make check).
#
# 1. callgrind (instruction counts, which the machine's load does not disturb). Three private queues, each
#    with its server started under valgrind by its first client (valgrind follows the server's fork; the
#    runners the server forks are followed too, each writes its own file; the jobs' exec leaves valgrind):
#      A: a blocker, then N `ts true`                    -> submit = A / N (plus the server's start-up)
#      B: as A, then 100 `ts -l`                         -> list   = (B - A) / 100
#      C: as A, then the blocker ends and the N jobs run -> drain  = (C - A) / N, plus one runner's file
#    The clients run natively; their start-up is measured by perf below.
# 2. perf (when `perf record` works here): the clients of a submit loop, and the server with its runners
#    during a drain, by process and symbol, kernel included (fork, exec, page faults, file creation).
#
# TS defaults to REPO/ts (a copy is profiled); N to 1000. Build with symbols for readable stacks, e.g.
#   make CXXFLAGS='-std=c++17 -O2 -g -fno-omit-frame-pointer'
# Every queue is private (TS_SOCKET and TMPDIR in a temporary directory) and stopped at the end.
set -u
here=$(cd "$(dirname "$0")" && pwd)
TS_IN=${1:-$here/../ts}
N=${2:-1000}
command -v valgrind >/dev/null || { echo "profile.sh: valgrind is not installed" >&2; exit 2; }
[ -x "$TS_IN" ] || { echo "profile.sh: $TS_IN not found: run make first" >&2; exit 2; }

W=$(mktemp -d /tmp/ts-profile.XXXXXX)
cp "$TS_IN" "$W/ts"
TS=$W/ts
unset TS_SLOTS TS_MAXFINISHED TS_MAXCONN TS_ONFINISH TS_ENV TS_SAVELIST TS_MAILTO TS_SOCKET_MODE TS_JOURNAL
queues=()
cleanup() {
    for d in "${queues[@]}"; do
        TS_SOCKET=$d/s TMPDIR=$d "$TS" -K >/dev/null 2>&1 </dev/null
        # whatever is left of that queue (found by its TS_SOCKET in the environment)
        for e in /proc/[0-9]*/environ; do
            p=${e%/environ}; p=${p#/proc/}
            [ "$p" = $$ ] && continue
            if tr '\0' '\n' 2>/dev/null <"$e" | grep -qx "TS_SOCKET=$d/s"; then kill -9 "$p" 2>/dev/null; fi
        done
    done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# new_queue NAME: a queue in $W/NAME with a blocker (job 0) that ends on `release NAME`
new_queue() {
    local d=$W/$1
    mkdir -p "$d/cg"
    queues+=("$d")
    mkfifo "$d/fifo"
    printf '#!/bin/sh\nexec timeout 1200 sh -c "read x < %s/fifo"\n' "$d" >"$d/block"
    chmod +x "$d/block"
}
release() { echo go >"$W/$1/fifo"; }
q() { local d=$W/$1; shift; TS_SOCKET=$d/s TMPDIR=$d "$TS" "$@"; }

# start_cg NAME: the queue's server under callgrind (the first client forks it)
start_cg() {
    local d=$W/$1
    # shellcheck disable=SC2086
    TS_SOCKET=$d/s TMPDIR=$d valgrind --tool=callgrind ${CG_OPTS:-} --callgrind-out-file="$d/cg/cg.%p" \
        "$TS" "$d/block" >/dev/null 2>"$d/valgrind.log" </dev/null
    for _ in $(seq 100); do [ "$(q "$1" -s 0 2>/dev/null)" = running ] && return 0; sleep 0.1; done
    echo "profile.sh: the server under callgrind did not come up" >&2
    exit 1
}
submit_n() { local i; for ((i = 0; i < N; i++)); do q "$1" true >/dev/null </dev/null; done; }
stop() { q "$1" -K >/dev/null 2>&1 </dev/null; sleep 1; }

echo "# ts profile: $(q x -V 2>/dev/null | head -n 1 || true) N=$N" | sed 's/ - .*N=/, N=/'
echo "(callgrind: instruction counts (Ir); 4 queues under valgrind, this takes two or three minutes)"

new_queue A; start_cg A; submit_n A; stop A
new_queue B; start_cg B; submit_n B; for _ in $(seq 100); do q B -l >/dev/null; done; stop B
new_queue C; start_cg C; submit_n C; release C; q C -w "$N" >/dev/null; stop C
# D: the runners' own work (collection on only inside run_job, which only a runner calls)
CG_OPTS="--collect-atstart=no --toggle-collect=run_job*"
new_queue D; start_cg D; N_SAVED=$N; N=50; submit_n D; release D; q D -w "$N" >/dev/null; stop D; N=$N_SAVED
CG_OPTS=""

python3 - "$W" "$N" <<'EOF'
import os, re, subprocess, sys, statistics
W, N = sys.argv[1], int(sys.argv[2])

def annotate(path, inclusive=False):
    """(total Ir, {function: Ir}) from callgrind_annotate's function table (exclusive unless inclusive)."""
    out = subprocess.run(["callgrind_annotate", "--inclusive=" + ("yes" if inclusive else "no"), "--auto=no",
                          "--threshold=100", path], capture_output=True, text=True).stdout
    fns, total, table = {}, None, False
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(\S.*)$", line)
        if "PROGRAM TOTALS" in line and m:
            total = int(m.group(1).replace(",", ""))
            continue
        if line.strip().endswith("file:function"):
            table = True
            continue
        if not table or not m:
            continue
        n = int(m.group(1).replace(",", ""))
        name = re.sub(r" \[[^\]]*\]$", "", m.group(2))
        name = name.split(":", 1)[1] if ":" in name.split("(")[0] else name
        fns[name] = fns.get(name, 0) + n
    return total, fns

def server(q):
    files = sorted((os.path.getsize(os.path.join(W, q, "cg", f)), f) for f in os.listdir(os.path.join(W, q, "cg")))
    return os.path.join(W, q, "cg", files[-1][1]), [os.path.join(W, q, "cg", f) for _, f in files[:-1]]

def show(title, total, fns, per, unit, top=12):
    print("\n## %s: %s Ir per %s" % (title, format(int(total / per), ","), unit))
    for name, n in sorted(fns.items(), key=lambda kv: -kv[1])[:top]:
        if n <= 0:
            break
        print("  %12s  %5.1f%%  %s" % (format(int(n / per), ","), 100.0 * n / total, name[:110]))

(a_path, _), (b_path, _), (c_path, _) = server("A"), server("B"), server("C")
ta, fa = annotate(a_path)
tb, fb = annotate(b_path)
tc, fc = annotate(c_path)
show("submit: the server (its start-up included)", ta, fa, N, "submit")
diff = lambda x, y: {k: x.get(k, 0) - y.get(k, 0) for k in set(x) | set(y)}
show("list of %d queued: the server" % N, tb - ta, diff(fb, fa), 100, "`ts -l`")
show("drain: the server", tc - ta, diff(fc, fa), N, "job")
# runners (queue D): collected only inside run_job(), the runner's work after the fork
rt = []
for f in os.listdir(os.path.join(W, "D", "cg")):
    t, fns = annotate(os.path.join(W, "D", "cg", f))
    if t:
        rt.append((t, f, fns))
if rt:
    rt.sort(key=lambda x: x[0])
    t, f, fns = rt[len(rt) // 2]
    show("drain: a runner's run_job() (the median of %d runners)" % len(rt), t, fns, 1, "runner")
EOF

# ---- perf ------------------------------------------------------------------------------------------
if command -v perf >/dev/null && perf record -o "$W/probe.data" -- true >/dev/null 2>&1; then
    echo
    echo "(perf: sampled CPU time, kernel included)"
    new_queue P
    q P "$W/P/block" >/dev/null
    sp=""
    for c in /proc/[0-9]*/comm; do
        p=${c%/comm}; p=${p#/proc/}
        [ "$(cat "$c" 2>/dev/null)" = ts-server ] || continue
        tr '\0' '\n' 2>/dev/null <"/proc/$p/environ" | grep -qx "TS_SOCKET=$W/P/s" && sp=$p
    done
    perf record -F 4999 -g -o "$W/cli.data" -- env TS_SOCKET="$W/P/s" TMPDIR="$W/P" sh -c \
        "i=0; while [ \$i -lt $N ]; do '$TS' true >/dev/null; i=\$((i+1)); done" >/dev/null 2>&1
    echo
    echo "## submit: the clients (${N} × ts true), by symbol"
    perf report -i "$W/cli.data" --comm ts --no-children --stdio --sort dso,sym -g none 2>/dev/null |
        grep -E '^ +[0-9]' | head -n 15
    if [ -n "$sp" ]; then
        perf record -F 4999 -g -p "$sp" -o "$W/drain.data" >/dev/null 2>&1 &
        pr=$!
        sleep 0.5
        release P
        q P -w "$N" >/dev/null
        kill -INT "$pr"; wait "$pr" 2>/dev/null
        echo
        echo "## drain: server, runners and jobs, by process"
        perf report -i "$W/drain.data" --no-children --stdio --sort comm,dso -g none 2>/dev/null |
            grep -E '^ +[0-9]' | head -n 8
        for c in ts-server ts-runner; do
            echo "## drain: $c by symbol"
            perf report -i "$W/drain.data" --comm "$c" --no-children --stdio --sort sym -g none 2>/dev/null |
                grep -E '^ +[0-9]' | head -n 10
        done
    fi
fi
