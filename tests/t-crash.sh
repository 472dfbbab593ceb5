#!/bin/bash
# Crash safety (README "The queue survives its server"): the queue outlives its server.
# 150 jobs flow through 2 slots while the server is killed six times (SIGKILL,
# then the same with SIGTERM); every job must run exactly once and end with
# its right E-Level and label, ids and order must survive, and so must the slot
# count and waiters. ts-only: task-spooler loses its queue with its server.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler keeps its queue in memory only"

# The pid of the live server (one listening socket bound to $TS_SOCKET), or nothing.
server_pid() { server_pids | head -n 1; }
# pid_gone PID: the process has exited (a zombie counts as gone).
pid_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" = Z ]; }
# kill_server SIG DESC: kill the live server and wait until that process is gone
# (runners and waiters may start a new server at once: that is the point).
kill_server() {
    local p
    p=$(server_pid)
    if [ -z "$p" ]; then pass "$2 (no server was up)"; return; fi
    kill "-$1" "$p"
    eventually "$2" -- pid_gone "$p"
}

# expected_state ID: the final state of job ID in the scenario below, by the same rules.
declare -A code dep
expect() {   # ID -> "finished E" or "skipped"
    local i=$1
    if [ -n "${dep[$i]-}" ]; then
        local d=${dep[$i]} r
        r=$(expect "$d")
        if [ "$r" != "finished 0" ]; then echo skipped; return; fi
    fi
    local c=${code[$i]}
    [ "$c" = 200 ] && c=-56
    echo "finished $c"
}

scenario() {
    local sig=$1 dir="$T/q-$sig"
    mkdir -p "$dir"
    export TS_SOCKET="$dir/s"
    local M="$dir/markers"
    : >"$M"
    "$TS" -S 2
    "$TS" -L B0 waitfor "go-$sig" >/dev/null
    "$TS" -L B1 waitfor "go-$sig" >/dev/null
    code[0]=0 code[1]=0
    local i opts
    for i in $(seq 2 149); do
        code[$i]=0
        if [ $((i % 5)) = 0 ]; then code[$i]=3; elif [ $((i % 7)) = 0 ]; then code[$i]=200; fi
        opts=(-L "L$i")
        unset "dep[$i]"
        if [ $((i % 10)) = 3 ]; then opts+=(-N 2); fi
        if [ $((i % 6)) = 0 ]; then dep[$i]=$((i - 3)); opts+=(-D "${dep[$i]}"); fi
        "$TS" "${opts[@]}" sh -c "echo $i >>'$M'; sleep 0.0\$((\$\$ % 5)); exit ${code[$i]}" >/dev/null
    done
    local before after
    before=$("$TS")
    kill_server "$sig" "$sig 1: server gone"
    after=$("$TS")
    is "$after" "$before" "$sig 1: after a restart the list is the same (ids, order, labels, running blockers)"
    check "$sig: the slot count is kept" 0 $'2\n' '' -- "$TS" -S
    # Waiters started before the crashes.
    for i in 10 21 42 60 100 149; do
        ("$TS" -w "$i"; echo $? >"$dir/w$i") &
    done
    wait_state 149 queued
    release "go-$sig"
    local k
    for k in 2 3 4 5 6; do
        sleep "0.$((RANDOM % 4 + 1))"   # a random moment, not a synchronisation
        kill_server "$sig" "$sig $k: server gone"
        "$TS" -l >/dev/null   # a new server (runners and waiters may have started one already)
    done
    for i in $(seq 0 149); do "$TS" -w "$i" >/dev/null 2>&1; done
    wait   # the waiters
    local list bad=0 ran=0 want got line why=""
    list=$("$TS")
    for i in $(seq 0 149); do
        want=$(expect "$i")
        line=$(echo "$list" | awk -v id="$i" '$1 == id')
        case $want in
            skipped) got=$(echo "$line" | awk '{print $2}') ;;
            *) got=$(echo "$line" | awk '{print $2, $4}') ;;
        esac
        local n
        n=$(grep -cx "$i" "$M")
        local label=L$i
        [ "$i" -lt 2 ] && label=B$i
        if [ "$got" != "$want" ] || [[ $line != *"[$label]"* ]]; then
            bad=$((bad + 1)); why+="# job $i: want '$want' [$label], got: $line"$'\n'
        fi
        if [ "$i" -ge 2 ]; then
            if [ "$want" = skipped ] && [ "$n" != 0 ]; then bad=$((bad + 1)); why+="# job $i skipped but ran $n times"$'\n'; fi
            if [ "$want" != skipped ] && [ "$n" != 1 ]; then bad=$((bad + 1)); why+="# job $i ran $n times"$'\n'; fi
            [ "$n" = 1 ] && ran=$((ran + 1))
        fi
    done
    is "$bad" 0 "$sig: all 150 jobs ended with the right state, E-Level and label; each ran exactly once ($ran ran)"
    # (after the result, so that the runner shows them with the failure, with what -i says of each)
    if [ -n "$why" ]; then
        printf '%s' "$why"
        for i in $(printf '%s' "$why" | sed -n 's/^# job \([0-9]*\).*/\1/p' | sort -un); do
            "$TS" -i "$i" 2>&1 | sed "s/^/#   $i: /"
        done
        grep -v '^$' "$dir/s.error" 2>/dev/null | tail -n 20 | sed 's/^/#   log: /'
    fi
    for i in 10 21 42 60 100 149; do
        want=$(expect "$i")
        case $want in skipped) want=255 ;; *) want=$(( ${want#finished } & 255 )) ;; esac
        is "$(cat "$dir/w$i")" "$want" "$sig: -w $i started before the crashes returns the job's status"
    done
    check "$sig: the slot count survived every restart" 0 $'2\n' '' -- "$TS" -S
    "$TS" -K
}

scenario KILL
scenario TERM
export TS_SOCKET="$T/s"

# A -f job keeps its terminal (stdin here) and reports its status across a crash.
check "blocker" 0 $'0\n' '' -- "$TS" waitfor gof
printf 'hello\n' >"$T/in"
("$TS" -f sh -c 'read x; echo "got $x"; waitfor gof2; exit 5' <"$T/in" >"$T/f.out" 2>&1; echo $? >"$T/f.rc") &
wait_state 1 queued
kill_server KILL "server gone while the -f job is queued"
release gof
wait_running 1
kill_server KILL "server gone while the -f job runs"
release gof2
eventually "the -f client ended" -- test -s "$T/f.rc"
check "-f rc is the job's across two crashes" 0 $'5\n' '' -- cat "$T/f.rc"
check "-f job read the caller's stdin" 0 $'got hello\n' '' -- cat "$("$TS" -o 1)"
check "-f job recorded" 0 $'finished\n' '' -- "$TS" -s 1
check_norm "-f job's E-Level" 0 "$(HDR 0 1; LF 0 OUT 0 "waitfor gof"; LF 1 OUT 5 "sh -c read x; echo \"got \$x\"; waitfor gof2; exit 5")"$'\n' '' -- "$TS"

# -K still means a fresh, empty queue: the journal goes, and nobody brings the server back.
check "-K" 0 '' '' -- "$TS" -K
ok "$([ ! -e "$T/s.journal" ]; echo $?)" "-K removes the journal"
check "fresh queue: id 0" 0 $'0\n' '' -- "$TS" true
check "-w" 0 '' '' -- "$TS" -w

done_testing
