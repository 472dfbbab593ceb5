#!/bin/bash
# Signals and pipes: `ts -c ID | head -1` and `ts -t ID | head -1` on a running job that prints many lines
# return at once (SIGPIPE ends the client, as it ends cat and tail), and the server never dies of SIGPIPE;
# SIGHUP sent to a running job's runner process group kills neither the runner (the job's result is
# still reported) nor the server, and SIGHUP sent to the server leaves it running with its queue.
# ts-only: the runner process (ts-runner) is ts's own.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "ts's runner processes"

# stat_field PID N: field N of /proc/PID/stat counting from the state (1: state, 2: ppid, 3: pgrp).
stat_field() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk -v n="$2" '{print $n}'; }
# piped DESC EXPECTED_FIRST_LINE CMD...: `CMD | head -n 1` ends within a second and prints that line
# (EXPECTED "*" accepts any non-empty line).
piped() {
    local desc=$1 want=$2 a b ms line
    shift 2
    a=$(date +%s%N)
    line=$(timeout 5 bash -c '"$@" | head -n 1' x "$@" 2>"$T/.err")
    b=$(date +%s%N)
    ms=$(( (b - a) / 1000000 ))
    if [ "$ms" -lt 1000 ]; then pass "$desc: returns at once (${ms} ms)"
    else fail "$desc: returns at once" "it took ${ms} ms (limit 1000 ms); stderr: $(head -c 200 "$T/.err")"; fi
    if [ "$want" = "*" ] && [ -n "$line" ] || [ "$line" = "$want" ]; then pass "$desc: prints '$line'"
    else fail "$desc: prints '$want'" "got '$line'"; fi
}

check "job 0" 0 $'0\n' '' -- "$TS" true
check "-w 0" 0 '' '' -- "$TS" -w 0
spid=$(server_pids)
is "$(echo $spid | wc -w)" 1 "one server (pid $spid)"
check "-S 3" 0 '' '' -- "$TS" -S 3

# ---- -c and -t into head -------------------------------------------------------------------------------
# Job 1 prints 200,000 lines at once, then a line every 50 ms until released.
check "job 1: many lines" 0 $'1\n' '' \
    -- "$TS" sh -c 'seq 1 200000; while [ ! -e "$1" ]; do echo tick; sleep 0.05; done; exit 4' x "$T/stop1"
wait_running 1
out1=$("$TS" -o 1)
eventually "job 1 has printed its 200,000 lines" 20 -- grep -qx 200000 "$out1"
piped "ts -c 1 | head -1" 1 "$TS" -c 1
piped "ts -t 1 | head -1" "*" "$TS" -t 1
check "job 1 still runs" 0 $'running\n' '' -- "$TS" -s 1
is "$(server_pids)" "$spid" "the server is the same"
release stop1
check "job 1 ends with its own status" 4 '' '' -- "$TS" -w 1

# Job 2 prints 1,000 lines (they fit in a pipe), then nothing more until released: the client must still
# notice that its reader is gone (as `tail -f | head -1` does) rather than wait for the job to end.
check "job 2: 1,000 lines, then quiet" 0 $'2\n' '' -- "$TS" sh -c 'seq 1 1000; waitfor stop2; exit 4'
wait_running 2
eventually "job 2 has printed its 1,000 lines" 20 -- grep -qx 1000 "$("$TS" -o 2)"
piped "quiet job: ts -c 2 | head -1" 1 "$TS" -c 2
piped "quiet job: ts -t 2 | head -1" 991 "$TS" -t 2
check "job 2 still runs" 0 $'running\n' '' -- "$TS" -s 2
release stop2
check "job 2 ends with its own status" 4 '' '' -- "$TS" -w 2

# ---- SIGHUP to a runner's process group -----------------------------------------------------------------
check "job 3 (ends with 7 when released)" 0 $'3\n' '' -- "$TS" waitfor hup2 7
wait_running 3
jpid=$("$TS" -p 3)
runner=$(stat_field "$jpid" 2)
is "$(cat "/proc/$runner/comm" 2>/dev/null)" ts-runner "the job's parent is a ts-runner process ($runner)"
spawner=$(stat_field "$runner" 2)
is "$(cat "/proc/$spawner/comm" 2>/dev/null)" ts-spawner "... a child of the ts-spawner process ($spawner)"
is "$(stat_field "$spawner" 2)" "$spid" "... which is a child of the server"
rpgrp=$(stat_field "$runner" 3)
echo "# job $jpid (process group $(stat_field "$jpid" 3)), runner $runner (process group $rpgrp), server $spid"
kill -HUP -- "-$rpgrp"
ok $? "SIGHUP sent to the runner's process group ($rpgrp)"
run_cmd "$TS" -l
is "$RC" 0 "the server still answers"
is "$(server_pids)" "$spid" "... and is the same process"
check "job 3 is still running (not marked lost)" 0 $'running\n' '' -- "$TS" -s 3
release hup2
check "the runner survived: job 3 ends with its own status" 7 '' '' -- "$TS" -w 3
run_cmd "$TS" -i 3
is "$(printf '%s\n' "$OUT" | sed -n 1p)" "Exit status: died with exit code 7" "... -i says exit code 7"

# ---- SIGHUP to the server -----------------------------------------------------------------------------
check "job 4 (runs until released)" 0 $'4\n' '' -- "$TS" waitfor hup3
wait_running 4
kill -HUP "$spid"
ok $? "SIGHUP sent to the server"
check "the server still answers" 0 $'running\n' '' -- "$TS" -s 4
is "$(server_pids)" "$spid" "... and is the same process"
kill -HUP "$spid"; kill -HUP "$spid"; kill -HUP "$spid"
check "three more SIGHUPs: a new job runs" 0 $'5\n' '' -- "$TS" echo after
check "-w 5" 0 '' '' -- "$TS" -w 5
check "... with its output" 0 $'after\n' '' -- sh -c 'cat "$("$TS" -o 5)"'
release hup3
check "job 4 ends normally" 0 '' '' -- "$TS" -w 4
is "$(server_pids)" "$spid" "the same server throughout"
check "-S still 3" 0 $'3\n' '' -- "$TS" -S

done_testing
