#!/bin/bash
# -w and -s (ts-spec.md §1.2, §1.4, §1.5, §2.3).
. "$(dirname "$0")/lib.sh"

# errors on an empty queue
check "-s on an empty queue" 255 '' $'Error in the request: The last job cannot be stated.\n' -- "$TS" -s
check "-w on an empty queue" 255 '' $'Error in the request: The last job cannot be waited.\n' -- "$TS" -w
check "-s 99" 255 '' $'Error in the request: The job 99 cannot be stated.\n' -- "$TS" -s 99
check "-w 99" 255 '' $'Error in the request: The job 99 cannot be waited.\n' -- "$TS" -w 99
check "-s -1 = last job" 255 '' $'Error in the request: The last job cannot be stated.\n' -- "$TS" -s -1

# states
check "job 0 (blocker, exits 3)" 0 $'0\n' '' -- "$TS" waitfor go0 3
check "job 1 (exits 200)" 0 $'1\n' '' -- "$TS" waitfor go1 200
wait_state 0 running
check "-s 0 running" 0 $'running\n' '' -- "$TS" -s 0
check "-s 1 queued" 0 $'queued\n' '' -- "$TS" -s 1
check "-s = last added (queued)" 0 $'queued\n' '' -- "$TS" -s
check "-w 99 with jobs present" 255 '' $'Error in the request: The job 99 cannot be waited.\n' -- "$TS" -w 99
release go0
check "-w 0 returns the errorlevel 3" 3 '' '' -- "$TS" -w 0
check "-s 0 finished right after -w" 0 $'finished\n' '' -- "$TS" -s 0
check "-w 0 again (already finished)" 3 '' '' -- "$TS" -w 0
wait_state 1 running
check "-s running (last added)" 0 $'running\n' '' -- "$TS" -s
release go1
check "-w (no id) waits for the last added: 200" 200 '' '' -- "$TS" -w
check "-s 1 finished" 0 $'finished\n' '' -- "$TS" -s 1
check "-s with only finished jobs = tail of finished list" 0 $'finished\n' '' -- "$TS" -s
check "-w (no id) with only finished jobs = last finished" 200 '' '' -- "$TS" -w

# signal -> 255
check "job 2 kills itself with SIGKILL" 0 $'2\n' '' -- "$TS" sh -c 'kill -9 $$'
check "-w 2 (signal) = 255" 255 '' '' -- "$TS" -w 2
check "job 3 blocker" 0 $'3\n' '' -- "$TS" waitfor go3
wait_running 3
check "-k 3 (SIGTERM to the group)" 0 '' '' -- "$TS" -k 3
check "-w 3 (terminated) = 255" 255 '' '' -- "$TS" -w 3
check "exit 255 -> 255" 0 $'4\n' '' -- "$TS" sh -c 'exit 255'
check "-w 4" 255 '' '' -- "$TS" -w 4
check "exit 1 -> 1" 0 $'5\n' '' -- "$TS" false
check "-w 5" 1 '' '' -- "$TS" -w 5
check "exit 128 -> 128" 0 $'6\n' '' -- "$TS" sh -c 'exit 128'
check "-w 6" 128 '' '' -- "$TS" -w 6

# -w without id really picks the *last added* job, not the first running one
check "-S 2" 0 '' '' -- "$TS" -S 2
check "job 7 (runs long)" 0 $'7\n' '' -- "$TS" waitfor go7 7
check "job 8" 0 $'8\n' '' -- "$TS" waitfor go8 8
wait_state 8 running
if ts_only; then
    # The waiter must reach the server while job 8 still runs, or "the last added" is 7:
    # wait until the server holds its connection, then let job 8 end.
    spid=$(server_pids | head -n 1)
    nsock() { find "/proc/$spid/fd" -lname 'socket:*' 2>/dev/null | wc -l; }
    before=$(nsock)
    ( "$TS" -w; echo "rc=$?" ) >"$T/w8" 2>&1 &
    w8=$!
    more_sockets() { [ "$(nsock)" -gt "$before" ]; }
    eventually "the waiter is connected" -- more_sockets
    release go8
    wait "$w8"
    check "-w (no id) returns job 8's 8 while 7 still runs" 0 $'rc=8\n' '' -- cat "$T/w8"
else
    release go8
    check "-w (no id) returns job 8's 8 while 7 still runs" 8 '' '' -- "$TS" -w
fi
check "-s 7 still running" 0 $'running\n' '' -- "$TS" -s 7
check "-s (no id) = tail of the queued/running list = 7" 0 $'running\n' '' -- "$TS" -s

# several waiters on the same job
( "$TS" -w 7; echo "rc=$?" ) >"$T/w1" 2>&1 &
w1=$!
( "$TS" -w 7; echo "rc=$?" ) >"$T/w2" 2>&1 &
w2=$!
release go7
wait "$w1" "$w2"
check "first waiter got 7" 0 $'rc=7\n' '' -- cat "$T/w1"
check "second waiter got 7" 0 $'rc=7\n' '' -- cat "$T/w2"

# skipped job: -s says skipped, -w gives 255
check "job 9 depends on the failed job 8" 0 $'9\n' '' -- "$TS" -D 8 true
check "-w 9 (skipped)" 255 '' '' -- "$TS" -w 9
check "-s 9" 0 $'skipped\n' '' -- "$TS" -s 9

# -n jobs can be waited too
check "-n job" 0 '' '' -- "$TS" -n sh -c 'exit 4'
check "-w (no id) on it" 4 '' '' -- "$TS" -w
check "-s 10" 0 $'finished\n' '' -- "$TS" -s 10

done_testing
