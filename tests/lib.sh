# tests/lib.sh — shared harness for the ts integration tests (sourced by tests/t-*.sh).
#
# Every script gets a private queue: its own temporary directory $T, TS_SOCKET=$T/s and TMPDIR=$T, so the
# user's default socket is never touched. Results are printed as TAP ("ok N - desc" / "not ok N - desc",
# diagnostics as "# " lines, plan "1..N" at the end via done_testing).
#
# The binary under test is $TS (absolute path; default: <repo root>/ts). To validate the expectations
# against task-spooler itself run:  TS=/usr/bin/tsp bash tests/t-X.sh
#
# Synchronisation rule: tests wait on job *state* ("$TS" -w, wait_state), never on sleep. Long-running jobs
# are `waitfor NAME` (a helper put on PATH below) which ends as soon as "$T/NAME" exists (see `release`) or
# $T disappears, so nothing outlives a script by more than a moment.

_lib_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_repo_root=$(cd "$_lib_dir/.." && pwd)

TS=${TS:-$_repo_root/ts}
case $TS in
    /*) ;;
    */*) TS=$(cd "$(dirname "$TS")" && pwd)/$(basename "$TS") ;;
    *) TS=$(command -v "$TS" || echo "$TS") ;;
esac
export TS

unset TS_SLOTS TS_MAXFINISHED TS_MAXCONN TS_ONFINISH TS_ENV TS_SAVELIST TS_MAILTO POSIXLY_CORRECT

T=$(mktemp -d)
T=$(cd "$T" && pwd -P)       # canonical path: the output file names are built from it
export TS_SOCKET="$T/s" TMPDIR="$T"

# Helper programs for jobs, on PATH (jobs inherit the enqueuing environment).
mkdir -p "$T/bin"
cat >"$T/bin/waitfor" <<EOF
#!/bin/sh
# waitfor NAME [EXIT]: wait until $T/NAME exists (see release) or $T is gone (at most ~2 min),
# then exit with EXIT (default 0).
i=0
while [ ! -e "$T/\$1" ] && [ -d "$T" ] && [ "\$i" -lt 2400 ]; do sleep 0.05; i=\$((i + 1)); done
exit "\${2:-0}"
EOF
chmod +x "$T/bin/waitfor"
export PATH="$T/bin:$PATH"

_ntest=0
_nfail=0

# A script may define extra_cleanup (e.g. to stop servers on other sockets); it runs first.
# A script leaves nothing running: what it started must end by itself once its queue is stopped and $T is
# gone (a `waitfor` job ends then, a server's spawner and spare end with their server, a job's runner with
# its job). Whatever is still there 10 s later is listed, killed, and fails the script (exit status 1).
_cleanup() {
    if declare -F extra_cleanup >/dev/null; then extra_cleanup >/dev/null 2>&1 </dev/null; fi
    "$TS" -K >/dev/null 2>&1 </dev/null || true
    cd / || true
    rm -rf "$T"
    local left p deadline=$(( $(date +%s) + 10 ))
    while left=$(procs_of_test); [ -n "$left" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.1; done
    [ -z "$left" ] && return
    echo "left running after the script ended (killed now):"
    for p in $left; do
        echo "  pid $p, uid $(stat -c %u "/proc/$p" 2>/dev/null): $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
    done
    for p in $left; do kill -9 "$p" 2>/dev/null; done
    exit 1
}
trap _cleanup EXIT
trap 'exit 143' TERM HUP
trap 'exit 130' INT

cd "$T" || exit 1

# ts_only: true unless the binary under test is task-spooler itself (tsp), whose behaviour deliberately
# differs in the case at hand (crash, 1.0.1 bug, our own text, or a ts-only feature).
ts_only() {
    [ "$(basename "$TS")" != tsp ]
}

# skip DESC [REASON]: report a skipped case.
skip() {
    _ntest=$((_ntest + 1))
    echo "ok $_ntest - $1 # SKIP ${2:-tsp differs}"
}

# skip_all_if_tsp REASON: for ts-specific scripts.
skip_all_if_tsp() {
    if ! ts_only; then
        echo "1..0 # SKIP ${1:-ts-specific}"
        trap - EXIT
        cd / && rm -rf "$T"
        exit 0
    fi
}

# two_users DESC: the rest of the script acts as other users, which needs root and setpriv; without
# them DESC is reported skipped and the script ends there. Sets A=4001, B=4002 and C=4003, their private
# directories $T/ta, $T/tb and $T/tc, a shared directory $T/shared whose queue's socket is Q, and makes the
# path to $TS searchable for them.
two_users() {
    if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
        skip "$1" "needs root and setpriv to act as other users"
        done_testing
        exit $?
    fi
    A=4001 B=4002 C=4003
    chmod 755 "$T"
    mkdir -m 1777 "$T/shared"
    mkdir -m 700 "$T/ta" "$T/tb" "$T/tc"
    chown "$A" "$T/ta"
    chown "$B" "$T/tb"
    chown "$C" "$T/tc"
    local d
    d=$(dirname "$TS")
    while [ "$d" != / ] && [ -n "$d" ]; do chmod o+x "$d" 2>/dev/null; d=$(dirname "$d"); done
    Q="$T/shared/TS_SOCKET"
}

# as UID DIR CMD...: run CMD as that user (two_users), on the shared queue ($AS_Q if set, else $Q),
# with TMPDIR=DIR and a bare environment.
as() {
    local u=$1 dir=$2
    shift 2
    env -i PATH="$T/bin:/usr/bin:/bin" TMPDIR="$dir" TS_SOCKET="${AS_Q:-$Q}" TS_SOCKET_MODE=0666 \
        setpriv --reuid="$u" --regid="$u" --clear-groups "$@"
}

# Visible rendering of a byte string for diagnostics (like cat -A; "(no trailing newline)" is explicit).
_show() {
    if [ -z "$1" ]; then
        echo "#     (empty)"
        return
    fi
    printf '%s' "$1" | cat -A | sed 's/^/#     /'
    case $1 in
        *$'\n') ;;
        *) echo; echo "#     (no trailing newline)" ;;
    esac
}

pass() {
    _ntest=$((_ntest + 1))
    echo "ok $_ntest - $1"
}

# fail DESC [DIAGNOSTIC LINES...]
fail() {
    _ntest=$((_ntest + 1))
    _nfail=$((_nfail + 1))
    echo "not ok $_ntest - $1"
    shift
    local l
    for l in "$@"; do echo "# $l"; done
}

# is GOT EXPECTED DESC: exact byte comparison of two strings.
is() {
    if [ "$1" == "$2" ]; then
        pass "$3"
    else
        fail "$3"
        echo "#   expected:"; _show "$2"
        echo "#   got:";      _show "$1"
    fi
}

# ok COND_RC DESC: pass when the first argument is 0 (use: ok $? "desc", or ok "$(cond; echo $?)" ...).
ok() {
    if [ "$1" = 0 ]; then pass "$2"; else fail "$2" "condition failed (status $1)"; fi
}

# _read_file FILE VAR: read a file's exact bytes (trailing newlines kept) into VAR. NUL bytes are not
# supported (none of our outputs contains any).
_read_file() {
    local _c
    _c=$(cat "$1"; printf x)
    printf -v "$2" '%s' "${_c%x}"
}

# run_cmd CMD ARGS...: run a command with stdin from $STDIN (default /dev/null); sets RC, OUT, ERR exactly.
run_cmd() {
    # (the outer 2>/dev/null silences bash's own "Segmentation fault" report for crashing commands)
    { "$@" >"$T/.out" 2>"$T/.err" <"${STDIN:-/dev/null}"; } 2>/dev/null
    RC=$?
    _read_file "$T/.out" OUT
    _read_file "$T/.err" ERR
}

# _check_result DESC EXPECTED_RC EXPECTED_STDOUT EXPECTED_STDERR (uses RC OUT ERR)
_check_result() {
    local desc=$1 erc=$2 eout=$3 eerr=$4
    if [ "$RC" == "$erc" ] && [ "$OUT" == "$eout" ] && [ "$ERR" == "$eerr" ]; then
        pass "$desc"
        return 0
    fi
    fail "$desc"
    echo "#   command: ${_cmd_shown}"
    if [ "$RC" != "$erc" ]; then echo "#   exit status: expected $erc, got $RC"; fi
    if [ "$OUT" != "$eout" ]; then
        echo "#   expected stdout:"; _show "$eout"
        echo "#   got stdout:";      _show "$OUT"
    fi
    if [ "$ERR" != "$eerr" ]; then
        echo "#   expected stderr:"; _show "$eerr"
        echo "#   got stderr:";      _show "$ERR"
    fi
    return 1
}

# check DESC EXPECTED_RC EXPECTED_STDOUT EXPECTED_STDERR -- CMD ARGS...
# Runs CMD (stdin: $STDIN or /dev/null) and compares exit status, stdout and stderr byte for byte.
check() {
    local desc=$1 erc=$2 eout=$3 eerr=$4
    shift 4
    if [ "${1-}" != -- ]; then
        fail "$desc" "check: missing -- before the command"
        return 1
    fi
    shift
    _cmd_shown=$(printf '%q ' "$@")
    run_cmd "$@"
    _check_result "$desc" "$erc" "$eout" "$eerr"
}

# check_norm: like check, but stdout and stderr go through `norm` (output paths and times) first.
check_norm() {
    local desc=$1 erc=$2 eout=$3 eerr=$4
    shift 4
    if [ "${1-}" != -- ]; then
        fail "$desc" "check_norm: missing -- before the command"
        return 1
    fi
    shift
    _cmd_shown=$(printf '%q ' "$@")
    run_cmd "$@"
    OUT=$(printf '%s' "$OUT" | norm; printf x); OUT=${OUT%x}
    ERR=$(printf '%s' "$ERR" | norm; printf x); ERR=${ERR%x}
    _check_result "$desc" "$erc" "$eout" "$eerr"
}

# norm: filter replacing variable parts of ts output.
#  * output file paths "$T/ts-out.XXXXXX" -> "OUT". Such a path is always longer than the 20-char Output
#    column (it is absolute and "/ts-out.XXXXXX" alone is 14 chars, $T is at least "/x/tmp.X" long), so
#    "%-20s" adds no padding and the text after "OUT" keeps exactly the separators ts printed.
#  * times "1.23/0.00/0.00" -> "T/T/T".
_T_re=$(printf '%s' "$T" | sed 's/[][\.*^$/]/\\&/g')
norm() {
    sed -E -e "s/${_T_re}\\/ts-out\\.[A-Za-z0-9]{6}/OUT/g" \
           -e 's/[0-9]+\.[0-9]{2}\/[0-9]+\.[0-9]{2}\/[0-9]+\.[0-9]{2}/T\/T\/T/g'
}

# HDR R M: the list header line (with newline) for [run=R/M].
HDR() {
    printf '%-4s %-10s %-20s %-8s %-14s %s [run=%i/%i]\n' ID State Output E-Level 'Times(r/u/s)' Command "$1" "$2"
}
# _ocol OUTPUT: the Output column. "OUT" stands for a real output path, which is always wider than 20
# chars, so it gets no padding; other values ("(file)", "stdout", "(no output)", "(...)") are padded.
_ocol() {
    if [ "$1" == OUT ]; then printf '%s' OUT; else printf '%-20s' "$1"; fi
}
# LQ ID STATE OUTPUT CMD: a non-finished list line (OUTPUT e.g. "(file)", "stdout", "OUT").
LQ() {
    printf '%-4i %-10s %s %-8s %14s %s\n' "$1" "$2" "$(_ocol "$3")" '' '' "$4"
}
# LF ID OUTPUT ELEVEL CMD: a finished list line, times normalised.
LF() {
    printf '%-4i %-10s %s %-8i %s %s\n' "$1" finished "$(_ocol "$2")" "$3" T/T/T "$4"
}

# wait_state ID STATE [DEADLINE_SECONDS=10]: poll "$TS" -s ID until it prints STATE. Reports one case.
wait_state() {
    local id=$1 want=$2 deadline=${3:-10} s start
    start=$(date +%s)
    while :; do
        s=$("$TS" -s "$id" 2>&1 </dev/null)
        if [ "$s" == "$want" ]; then
            pass "job $id reaches state $want"
            return 0
        fi
        if [ $(( $(date +%s) - start )) -ge "$deadline" ]; then
            fail "job $id reaches state $want" "timed out after ${deadline}s; last -s output: $s"
            return 1
        fi
        sleep 0.05
    done
}

# wait_running ID [DEADLINE_SECONDS=10]: wait until job ID is running *and* its runner has reported the
# job's pid (and, for stored output, its output file): "$TS" -p ID prints a positive number and
# "$TS" -o ID succeeds or says "The output is not stored." (-n job). Reports one case.
wait_running() {
    local id=$1 deadline=${2:-10} s p o orc start
    start=$(date +%s)
    while :; do
        s=$("$TS" -s "$id" 2>&1 </dev/null)
        if [ "$s" == running ]; then
            p=$("$TS" -p "$id" 2>&1 </dev/null)
            o=$("$TS" -o "$id" 2>&1 </dev/null); orc=$?
            if [[ $p =~ ^[1-9][0-9]*$ ]] && { [ $orc -eq 0 ] || [ "$o" == "The output is not stored." ]; }; then
                pass "job $id is running (pid $p)"
                return 0
            fi
        fi
        if [ $(( $(date +%s) - start )) -ge "$deadline" ]; then
            fail "job $id is running" "timed out after ${deadline}s; last: -s: $s, -p: ${p-}, -o: ${o-}"
            return 1
        fi
        sleep 0.05
    done
}

# eventually DESC [DEADLINE_SECONDS=10] -- CMD ARGS...: poll (every 50 ms) until CMD succeeds; one case.
# For conditions that ts does not let us wait for (e.g. the server process exiting after -K).
eventually() {
    local desc=$1 deadline=10 start
    shift
    if [ "${1-}" != -- ]; then deadline=$1; shift; fi
    shift
    start=$(date +%s)
    until "$@" >/dev/null 2>&1 </dev/null; do
        if [ $(( $(date +%s) - start )) -ge "$deadline" ]; then
            fail "$desc" "timed out after ${deadline}s waiting for: $(printf '%q ' "$@")"
            return 1
        fi
        sleep 0.05
    done
    pass "$desc"
}

# listen_inodes: inodes of the *listening* unix sockets bound to $TS_SOCKET (from /proc/net/unix: Flags
# 00010000 = __SO_ACCEPTCON). One per live server, even if its socket file was unlinked or replaced, so
# this also counts orphaned servers. /proc/net/unix is read page by page and may skip entries while other
# sockets come and go, so take the union of three reads.
listen_inodes() {
    local num ref proto flags type st inode path k
    for k in 1 2 3; do
        while read -r num ref proto flags type st inode path; do
            if [ "$path" == "$TS_SOCKET" ] && [ "$flags" == 00010000 ]; then echo "$inode"; fi
        done </proc/net/unix
    done | sort -u
}

# server_pids: pids of the processes holding a listening socket bound to $TS_SOCKET (/proc/PID/fd/N is a
# link to "socket:[INODE]"), i.e. the server(s).
server_pids() {
    local i
    for i in $(listen_inodes); do
        find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\[$i\]" 2>/dev/null
    done | sed -n 's|^/proc/\([0-9]*\)/fd/.*|\1|p' | sort -un
}
no_server() {
    [ -z "$(listen_inodes)" ]
}

# release NAME: let the job `waitfor NAME` finish.
release() {
    : >"$T/$1"
}

# procs_with_env VAR=VALUE: pids of processes whose *initial* environment (/proc/PID/environ) contains exactly
# VAR=VALUE. Pure bash (no child processes), so the scan itself never shows up: this shell's own
# /proc/PID/environ is the environment it was started with, before lib.sh exported TS_SOCKET.
procs_with_env() {
    local p e
    for p in /proc/[0-9]*; do
        [ -r "$p/environ" ] || continue
        { while IFS= read -r -d '' e; do
            if [ "$e" == "$1" ]; then
                echo "${p#/proc/}"
                break
            fi
        done <"$p/environ"; } 2>/dev/null
    done
}

# procs_of_test: pids of the processes this script started, as any user: those whose initial environment
# (/proc/PID/environ) names $T anywhere (TS_SOCKET, TMPDIR, PATH=$T/bin:..., which every process started
# here inherits, also through `env -i PATH=$T/bin:...`). Pure bash; this shell is not one of them (its
# environment is the one it was started with, before lib.sh made $T).
procs_of_test() {
    local p e
    for p in /proc/[0-9]*; do
        [ -r "$p/environ" ] || continue
        { while IFS= read -r -d '' e; do
            case $e in *"$T"*) echo "${p#/proc/}"; break ;; esac
        done <"$p/environ"; } 2>/dev/null
    done
}

# done_testing: print the plan; exit status 1 if any case failed.
done_testing() {
    echo "1..$_ntest"
    [ "$_nfail" -eq 0 ]
}
