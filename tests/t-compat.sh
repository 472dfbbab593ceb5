#!/bin/bash
# tests/t-compat.sh — the task-spooler compatibility suite (ts-spec.md §1–§4).
#
#   bash tests/t-compat.sh [-j N] [-v] [NAME-SUBSTRING...]          run the cases against $TS (default ./ts)
#   TS=/usr/bin/tsp bash tests/t-compat.sh                          run them against Debian's tsp
#   bash tests/t-compat.sh --record [NAME-SUBSTRING...]             (re)write the .out files from /usr/bin/tsp
#
# One case = tests/compat/NNN-name.case, a bash snippet using `ts` as the command, and its expected
# transcript tests/compat/NNN-name.out. Every case runs on a fresh private queue: a new directory $T
# (mktemp -d /tmp/tsc.XXXXXX), TS_SOCKET=$T/s, TMPDIR=$T, cwd $T, no other TS_* variable set; at the end the
# runner stops the server (-K), kills what is left of the case's processes (every process whose environment
# points into $T: servers on other sockets, runners, jobs) and removes $T. Cases run -j N at a time (default
# 8, or $COMPAT_JOBS), each under a 60 s limit; the TAP report comes out in case order.
#
# Transcript: for every `ts ARGS` (and `run CMD ARGS`, `tsbg`/`tsjoin`) of the snippet:
#     $ ts ARGS                      the arguments, shell-quoted where needed
#     <stdout, verbatim>             followed by a line "\ No newline at end of stdout" if it lacks one
#     ! <stderr line>                each stderr line prefixed "! " ("! \ No newline at end of stderr" idem)
#     rc=N
# Anything else the snippet prints (e.g. helper diagnostics, `note TEXT`) appears verbatim.
# Normalisation (same length as what it replaces, so the columns of the list stay honest):
#     the private directory $T       -> /tmp/tsc.XXXXXX    (mktemp's template; $T always has this length)
#     ts-out.<6 random chars>        -> ts-out.XXXXXX
#     list times 0.00/0.00/0.00      -> T.TT/T.TT/T.TT     (any N.NN/N.NN/N.NN)
#     ctime() dates (-i)             -> DATE
#     "Time run: 0.001234s"          -> "Time run: Xs"     (and "Time running: Xs")
#     stdout of `ts -p...` that is a positive number -> PID
# The binary is called through a symlink $T/bin/ts, so argv[0] is "ts" for ts and tsp alike (help text).
#
# Cases whose first line is "# differs: <why>" are documented differences (ts.1 DIFFERENCES FROM
# TASK-SPOOLER 1.0, ts-spec.md §5): their expected ts transcript is NNN-name.ts.out, written by hand; they
# are skipped against tsp ("ok N - name # SKIP differs") and in record mode.
#
# Helpers available in a case (all synchronisation is on state, never on sleep):
#   ts ARGS...            run the binary under test, record (stdin: $STDIN, default /dev/null)
#   run CMD ARGS...       run any command, record the same way
#   cat_out ID / gz_out ID    record the content of job ID's output file (plain / through gzip -dc)
#   tsbg NAME ARGS...     start `ts ARGS` in the background (stdin $STDIN); tsjoin NAME waits (10 s) and records it;
#                         bgpid NAME is the pid of that ts process
#   wait_state ID STATE   poll `ts -s ID` until it prints STATE (10 s); prints a diagnostic on timeout
#   wait_running ID       wait until ID runs and its runner reported pid (and output file)
#   wait_file FILE        wait until FILE exists and is not empty
#   release NAME          let a job `waitfor NAME [EXIT]` end (waitfor is on PATH)
#   server_pid            pid of the server listening on $TS_SOCKET (from /proc/net/unix)
#   wait_no_server        wait until no server listens on $TS_SOCKET
#   kill_server SIG       send SIG to that server (recorded as "$ kill -SIG $(server_pid)"), wait until that
#                         process is gone
#   note TEXT             print "# TEXT" into the transcript
#   XTS                   path of the binary under test (unrecorded use: "$XTS" -w 3 >/dev/null)
#   IS_TSP                non-empty when the binary under test is task-spooler
# A case may define `cleanup` (run before the runner's own clean-up), e.g. to stop servers on other sockets.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
compat=$here/compat

# ---------------------------------------------------------------------------------------------------------
# Internal mode: run one case.  t-compat.sh --one CASEFILE T BINARY
# ---------------------------------------------------------------------------------------------------------
if [ "${1-}" = --one ]; then
    case_file=$2
    T=$3
    XTS=$4
    export T XTS
    IS_TSP=
    [ "$(basename "$XTS")" = tsp ] && IS_TSP=1
    unset TS_SLOTS TS_MAXFINISHED TS_MAXCONN TS_ONFINISH TS_ENV TS_SAVELIST TS_MAILTO POSIXLY_CORRECT STDIN
    export TS_SOCKET="$T/s" TMPDIR="$T"
    mkdir -p "$T/bin" "$T/.r"
    ln -s "$XTS" "$T/bin/ts"
    cat >"$T/bin/waitfor" <<EOF
#!/bin/sh
# waitfor NAME [EXIT]: wait until $T/NAME exists (see release) or $T is gone (at most ~60 s), then exit EXIT.
i=0
while [ ! -e "$T/\$1" ] && [ -d "$T" ] && [ "\$i" -lt 1200 ]; do sleep 0.05; i=\$((i + 1)); done
exit "\${2:-0}"
EOF
    chmod +x "$T/bin/waitfor"
    export PATH="$T/bin:$PATH"
    cd "$T" || exit 1

    # _q WORD: shell-quote a word for the transcript, only where needed
    _q() {
        if [[ $1 =~ ^[-A-Za-z0-9_./=:,+%@^]+$ ]]; then
            printf '%s' "$1"
        else
            printf "'%s'" "${1//\'/\'\\\'\'}"
        fi
    }
    _cmdline() {
        local w sep=''
        for w in "$@"; do printf '%s' "$sep"; _q "$w"; sep=' '; done
    }
    # _emit OUTFILE ERRFILE RC: the recorded result of one command
    _emit() {
        if [ -s "$1" ]; then
            cat "$1"
            [ -n "$(tail -c 1 "$1")" ] && printf '\n\\ No newline at end of stdout\n'
        fi
        if [ -s "$2" ]; then
            sed 's/^/! /' "$2"
            [ -n "$(tail -c 1 "$2")" ] && printf '\n! \\ No newline at end of stderr\n'
        fi
        echo "rc=$3"
    }
    _pidnorm() {   # stdout of ts -p: a positive number -> PID
        if grep -qx '[1-9][0-9]*' "$1" && [ "$(wc -l <"$1")" = 1 ]; then echo PID >"$1"; fi
    }
    ts() {
        local rc
        echo "\$ ts${1+ }$(_cmdline "$@")"
        command ts "$@" >"$T/.r/o" 2>"$T/.r/e" <"${STDIN:-/dev/null}"
        rc=$?
        case ${1-} in -p*) _pidnorm "$T/.r/o" ;; esac
        _emit "$T/.r/o" "$T/.r/e" "$rc"
    }
    run() {
        local rc
        echo "\$ $(_cmdline "$@")"
        "$@" >"$T/.r/o" 2>"$T/.r/e" <"${STDIN:-/dev/null}"
        rc=$?
        _emit "$T/.r/o" "$T/.r/e" "$rc"
    }
    tsbg() {
        local name=$1
        shift
        _cmdline "$@" >"$T/.r/bg.$name.cmd"
        ( command ts "$@" >"$T/.r/bg.$name.o" 2>"$T/.r/bg.$name.e" <"${STDIN:-/dev/null}" &
          echo $! >"$T/.r/bg.$name.pid"
          wait $!
          echo $? >"$T/.r/bg.$name.rc.tmp"; mv "$T/.r/bg.$name.rc.tmp" "$T/.r/bg.$name.rc" ) 2>/dev/null &
        while [ ! -s "$T/.r/bg.$name.pid" ]; do sleep 0.01; done
    }
    # bgpid NAME: pid of the ts process started by tsbg NAME
    bgpid() { cat "$T/.r/bg.$1.pid"; }
    tsjoin() {
        local name=$1 i=0
        while [ ! -e "$T/.r/bg.$name.rc" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
        echo "\$ ts$(sed 's/^./ &/' "$T/.r/bg.$name.cmd")   (background $name)"
        if [ ! -e "$T/.r/bg.$name.rc" ]; then
            echo "# tsjoin $name: still running after 10 s"
            kill "$(cat "$T/.r/bg.$name.pid")" 2>/dev/null
            return 1
        fi
        case $(cat "$T/.r/bg.$name.cmd") in -p*) _pidnorm "$T/.r/bg.$name.o" ;; esac
        _emit "$T/.r/bg.$name.o" "$T/.r/bg.$name.e" "$(cat "$T/.r/bg.$name.rc")"
    }
    note() { echo "# $*"; }
    # cat_out ID / gz_out ID: the content of job ID's output file (plain / through gzip -dc)
    cat_out() {
        local f rc
        echo "\$ cat \$(ts -o $1)"
        f=$("$XTS" -o "$1" 2>/dev/null </dev/null)
        cat "$f" >"$T/.r/o" 2>"$T/.r/e"; rc=$?
        _emit "$T/.r/o" "$T/.r/e" "$rc"
    }
    gz_out() {
        local f rc
        echo "\$ gzip -dc \$(ts -o $1)"
        f=$("$XTS" -o "$1" 2>/dev/null </dev/null)
        gzip -dc <"$f" >"$T/.r/o" 2>"$T/.r/e"; rc=$?
        _emit "$T/.r/o" "$T/.r/e" "$rc"
    }
    release() { : >"$T/$1"; }
    wait_state() {
        local id=$1 want=$2 i=0 s
        while :; do
            s=$("$XTS" -s "$id" 2>&1 </dev/null)
            [ "$s" = "$want" ] && return 0
            if [ $i -ge 200 ]; then echo "# wait_state $id $want: timed out, last: $s"; return 1; fi
            sleep 0.05; i=$((i + 1))
        done
    }
    wait_running() {
        local id=$1 i=0 s p o orc
        while :; do
            s=$("$XTS" -s "$id" 2>&1 </dev/null)
            if [ "$s" = running ]; then
                p=$("$XTS" -p "$id" 2>&1 </dev/null)
                o=$("$XTS" -o "$id" 2>&1 </dev/null); orc=$?
                if [[ $p =~ ^[1-9][0-9]*$ ]] && { [ $orc -eq 0 ] || [ "$o" = "The output is not stored." ]; }; then
                    return 0
                fi
            fi
            if [ $i -ge 200 ]; then echo "# wait_running $id: timed out, last: -s $s -p ${p-} -o ${o-}"; return 1; fi
            sleep 0.05; i=$((i + 1))
        done
    }
    wait_file() {
        local i=0
        until [ -s "$1" ]; do
            if [ $i -ge 200 ]; then echo "# wait_file $1: timed out"; return 1; fi
            sleep 0.05; i=$((i + 1))
        done
    }
    _listen_inodes() {
        local num ref proto flags type st inode path k
        for k in 1 2 3; do
            while read -r num ref proto flags type st inode path; do
                if [ "$path" = "$TS_SOCKET" ] && [ "$flags" = 00010000 ]; then echo "$inode"; fi
            done </proc/net/unix
        done | sort -u
    }
    server_pid() {
        local i
        for i in $(_listen_inodes); do
            find /proc/[0-9]*/fd -maxdepth 1 -lname "socket:\[$i\]" 2>/dev/null
        done | sed -n 's|^/proc/\([0-9]*\)/fd/.*|\1|p' | sort -un
    }
    # kill_server SIG: send SIG to the server of $TS_SOCKET (recorded), then wait until it is gone
    kill_server() {
        local p rc
        p=$(server_pid)
        echo "\$ kill -$1 \$(server_pid)"
        if [ -z "$p" ]; then echo "# kill_server: no server"; return 1; fi
        kill "-$1" $p >"$T/.r/o" 2>"$T/.r/e"; rc=$?
        _emit "$T/.r/o" "$T/.r/e" "$rc"
        local i=0
        while kill -0 $p 2>/dev/null; do
            if [ $i -ge 200 ]; then echo "# kill_server: server $p still there after 10 s"; return 1; fi
            sleep 0.05; i=$((i + 1))
        done
    }
    wait_no_server() {
        local i=0
        while [ -n "$(_listen_inodes)" ]; do
            if [ $i -ge 200 ]; then echo "# wait_no_server: timed out"; return 1; fi
            sleep 0.05; i=$((i + 1))
        done
    }
    # the snippet; its stdin is /dev/null, everything it prints goes to the transcript
    . "$case_file" </dev/null 2>&1
    if declare -F cleanup >/dev/null; then cleanup >/dev/null 2>&1 </dev/null; fi
    exit 0
fi

# ---------------------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------------------
record=
jobs=${COMPAT_JOBS:-8}
verbose=
filters=()
while [ $# -gt 0 ]; do
    case $1 in
        --record) record=1 ;;
        -j) jobs=$2; shift ;;
        -j*) jobs=${1#-j} ;;
        -v) verbose=1 ;;
        *) filters+=("$1") ;;
    esac
    shift
done

if [ -n "$record" ]; then
    TS=/usr/bin/tsp
fi
TS=${TS:-$repo/ts}
case $TS in
    /*) ;;
    */*) TS=$(cd "$(dirname "$TS")" && pwd)/$(basename "$TS") ;;
    *) TS=$(command -v "$TS" || echo "$TS") ;;
esac
is_tsp=
[ "$(basename "$TS")" = tsp ] && is_tsp=1
if [ ! -x "$TS" ]; then
    echo "1..0 # SKIP $TS not found"
    exit 0
fi

cases=()
for f in "$compat"/*.case; do
    [ -e "$f" ] || continue
    n=$(basename "$f" .case)
    if [ ${#filters[@]} -gt 0 ]; then
        m=
        for p in "${filters[@]}"; do case $n in *"$p"*) m=1 ;; esac; done
        [ -n "$m" ] || continue
    fi
    cases+=("$n")
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

differs() { head -n 1 "$compat/$1.case" | grep -q '^# differs:'; }

# procs_of_case T: pids whose initial environment has a variable whose value starts with T (TS_SOCKET, TMPDIR,
# PATH=$T/bin:...): the case's servers, runners, clients and jobs, whatever socket they used (pure bash)
procs_of_case() {
    local p e
    for p in /proc/[0-9]*; do
        [ -r "$p/environ" ] || continue
        { while IFS= read -r -d '' e; do
            case $e in *="$1"*) echo "${p#/proc/}"; break ;; esac
        done <"$p/environ"; } 2>/dev/null
    done
}

# run_case NAME: writes $work/NAME.got (normalised transcript)
run_case() {
    local name=$1 T tre p
    T=$(mktemp -d /tmp/tsc.XXXXXX)
    timeout -k 5 60 bash "$here/t-compat.sh" --one "$compat/$name.case" "$T" "$TS" >"$work/$name.raw" 2>&1 </dev/null
    local rc=$?
    [ $rc -ne 0 ] && echo "# case script exited with status $rc" >>"$work/$name.raw"
    # clean-up: stop the server, kill what is left of the case's processes, remove $T
    TS_SOCKET="$T/s" "$TS" -K >/dev/null 2>&1 </dev/null
    for p in $(procs_of_case "$T"); do kill -9 "$p" 2>/dev/null; done
    rm -rf "$T" 2>/dev/null
    if [ -e "$T" ]; then
        sleep 0.2
        for p in $(procs_of_case "$T"); do kill -9 "$p" 2>/dev/null; done
        rm -rf "$T"
    fi
    tre=$(printf '%s' "$T" | sed 's/[][\.*^$/]/\\&/g')
    sed -E -e "s/${tre}/\/tmp\/tsc.XXXXXX/g" \
           -e 's/ts-out\.[A-Za-z0-9]{6}/ts-out.XXXXXX/g' \
           -e 's/[0-9]+\.[0-9]{2}\/[0-9]+\.[0-9]{2}\/[0-9]+\.[0-9]{2}/T.TT\/T.TT\/T.TT/g' \
           -e 's/(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}/DATE/g' \
           -e 's/^Time run: [0-9.]+s$/Time run: Xs/' \
           -e 's/^Time running: [0-9.]+s$/Time running: Xs/' \
           "$work/$name.raw" >"$work/$name.got"
}

# Under valgrind (make check-valgrind) every third case runs: the others'
# server paths are the same ones, and each case's server start costs seconds there.
sample=1
[ -n "${TS_VALGRIND-}" ] && [ ${#filters[@]} -eq 0 ] && sample=${COMPAT_VALGRIND_SAMPLE:-3}
sampled_out() { [ "$sample" -gt 1 ] && [ $(($1 % sample)) -ne 0 ]; }

# run the cases, $jobs at a time
todo=()
k=0
for n in "${cases[@]}"; do
    k=$((k + 1))
    if differs "$n" && { [ -n "$is_tsp" ] || [ -n "$record" ]; }; then continue; fi
    sampled_out "$k" && continue
    todo+=("$n")
done
running=0
for n in "${todo[@]}"; do
    run_case "$n" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

# report
i=0
nfail=0
for n in "${cases[@]}"; do
    i=$((i + 1))
    if sampled_out "$i"; then
        echo "ok $i - $n # SKIP under valgrind only every ${sample}th case runs"
        continue
    fi
    if differs "$n"; then
        if [ -n "$record" ]; then
            echo "ok $i - $n # SKIP differs (expected ts transcript is $n.ts.out, written by hand)"
            continue
        elif [ -n "$is_tsp" ]; then
            echo "ok $i - $n # SKIP differs"
            continue
        fi
        exp=$compat/$n.ts.out
    else
        exp=$compat/$n.out
    fi
    if [ -n "$record" ]; then
        cp "$work/$n.got" "$compat/$n.out"
        echo "ok $i - $n # recorded"
        [ -n "$verbose" ] && sed 's/^/#   /' "$compat/$n.out"
        continue
    fi
    if [ -e "$exp" ] && cmp -s "$exp" "$work/$n.got"; then
        echo "ok $i - $n"
    else
        nfail=$((nfail + 1))
        echo "not ok $i - $n"
        if [ -e "$exp" ]; then
            diff -u --label "expected ($(basename "$exp"))" --label got "$exp" "$work/$n.got" | sed 's/^/# /'
        else
            echo "# missing $(basename "$exp"); got:"
            sed 's/^/#   /' "$work/$n.got"
        fi
    fi
done
echo "1..$i"
[ "$nfail" -eq 0 ]
