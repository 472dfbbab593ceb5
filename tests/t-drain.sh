#!/bin/bash
# Drain and resume (README "A short tour", ts.1 --drain): a drained queue
# starts nothing new while its running jobs finish, says so in -l's header and
# -i, keeps the state across a SIGKILL of its server, and starts again on
# --resume. Only the server's owner or root may drain or resume (the part with
# another user needs root and setpriv, and is skipped without them).
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler has no --drain"

pid_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" = Z ]; }
DRAINED_HDR=$(printf '%-4s %-10s %-20s %-8s %-14s %s [run=%i/%i drained]' ID State Output E-Level 'Times(r/u/s)' Command 1 1)

check "-S 0 stays task-spooler's error" 255 '' $'You should set at minimum 1 slot.\n' -- "$TS" -S 0
check "resume a queue that is not drained" 0 $'The queue was not drained: nothing to resume (0 running, 0 queued).\n' '' -- "$TS" --resume
check "job 0 queued" 0 $'0\n' '' -- "$TS" waitfor a
wait_running 0
check "drain" 0 $'The queue is drained: no job starts until ts --resume (1 running, 0 queued).\n' '' -- "$TS" --drain
check "drain again: nothing changes, and it says so" 0 \
    $'The queue was drained already: no job starts until ts --resume (1 running, 0 queued).\n' '' -- "$TS" --drain
check "a job queued while drained: 1" 0 $'1\n' '' -- "$TS" true
check_norm "-l's header says drained" 0 "$DRAINED_HDR
$(LQ 0 running OUT 'waitfor a')
$(LQ 1 queued '(file)' true)
" '' -- "$TS" -l
run_cmd "$TS" -i 1
[[ $RC == 0 && $OUT == *$'\nWaiting: the queue is drained: ts --resume starts it\n'* ]] \
    && pass "-i of the queued job says why it waits" || fail "-i of the queued job says why it waits" "$RC: $OUT"

# The running job finishes; its free slot starts nothing.
release a
check "the running job finishes" 0 '' '' -- "$TS" -w 0
check "the queued job did not start on the free slot" 0 $'queued\n' '' -- "$TS" -s 1
check "-S 2: still nothing starts" 0 '' '' -- "$TS" -S 2
check "job 2 queued" 0 $'2\n' '' -- "$TS" true
check "jobs 1 and 2 stay queued" 0 $'queued\nqueued\n' '' -- sh -c '"$0" -s 1; "$0" -s 2' "$TS"

# SIGKILL the server while drained: the next one is drained too.
p=$(server_pids | head -n 1)
ok "$([ -n "$p" ]; echo $?)" "the server's pid is found"
[ -n "$p" ] && kill -KILL "$p"
eventually "the server is gone after SIGKILL" -- pid_gone "${p:-0}"
run_cmd "$TS" -l
is "$(printf '%s' "$OUT" | head -n 1)" "$(printf '%-4s %-10s %-20s %-8s %-14s %s [run=0/2 drained]' ID State Output E-Level 'Times(r/u/s)' Command)" \
    "a new server (started by -l) reads the queue back drained"
check "after the restart, jobs 1 and 2 are still queued" 0 $'queued\nqueued\n' '' -- sh -c '"$0" -s 1; "$0" -s 2' "$TS"

check "resume" 0 $'The queue is resumed: queued jobs start again (0 running, 2 queued).\n' '' -- "$TS" --resume
check "job 1 runs and ends" 0 '' '' -- "$TS" -w 1
check "job 2 runs and ends" 0 '' '' -- "$TS" -w 2
run_cmd "$TS" -l
is "$(printf '%s' "$OUT" | head -n 1)" "$(HDR 0 2 | head -n 1)" "resumed: -l's header is task-spooler's again"
check "resume again: nothing changes, and it says so" 0 \
    $'The queue was not drained: nothing to resume (0 running, 0 queued).\n' '' -- "$TS" --resume
check "-K" 0 '' '' -- "$TS" -K

# Another user: refused, and nothing changes; the server's owner and root may.
two_users "another user may not drain or resume"
extra_cleanup() { TS_SOCKET="$Q" "$TS" -K; }
check "a starts the shared queue: job 0" 0 $'0\n' '' -- as $A "$T/ta" "$TS" true
as $A "$T/ta" "$TS" -w 0
refuse_b() {   # ARG: b's ts ARG is refused with rc 255
    run_cmd as $B "$T/tb" "$TS" "$1"
    is "$RC/$OUT/$ERR" "255//Error in the request: Only the server's owner (uid $A) or root may drain or resume the queue."$'\n' \
        "b $1: refused, rc 255"
}
refuse_b --drain
run_cmd as $B "$T/tb" "$TS" -l
is "$(printf '%s' "$OUT" | head -n 1)" "$(HDR 0 1 | head -n 1)" "b's --drain changed nothing"
check "a (the server's owner) may drain" 0 $'The queue is drained: no job starts until ts --resume (0 running, 0 queued).\n' '' \
    -- as $A "$T/ta" "$TS" --drain
check "a queues job 1 while drained" 0 $'1\n' '' -- as $A "$T/ta" "$TS" true
refuse_b --resume
check "b's --resume changed nothing" 0 $'queued\n' '' -- as $A "$T/ta" "$TS" -s 1
check "root may resume" 0 $'The queue is resumed: queued jobs start again (0 running, 1 queued).\n' '' \
    -- env TS_SOCKET="$Q" "$TS" --resume
check "job 1 runs and ends" 0 '' '' -- as $A "$T/ta" "$TS" -w 1
done_testing
