#!/bin/bash
# Waiting on many jobs, on a job's start, --unique and --requeue (README "A short tour", ts.1):
# -w 3,4,5 exits with the first listed job that did not end well; --wait-all waits for the jobs of
# one's own queued or running at the call only; --wait-start returns when the job runs (255 if it never
# will); --unique queues nothing when the same command is queued or running (its id, exit 3), even for
# two clients at once; --requeue=ID and --requeue=failed queue finished jobs again with their context;
# a SIGKILL of the server while a client waits on a list: the client waits on. The part with another
# user needs root and setpriv, and is skipped without them.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler has no -w lists, --wait-all, --wait-start, --unique or --requeue"

pid_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" = Z ]; }
# blocked_reading PID: the client sent its request and waits for the answer (blocked in read(2)). The
# server reads a connection's request before it accepts a later connection, so what the next client
# does comes after that request.
blocked_reading() {
    local s
    s=$(cut -d' ' -f1 "/proc/$1/syscall" 2>/dev/null) || return 1
    [ "$(uname -m)" != x86_64 ] && [ -n "$s" ] && return 0
    [ "$s" = 0 ]
}
# bg_ts NAME ARGS...: run ts ARGS in the background, stdout and stderr to $T/NAME.out and $T/NAME.err;
# $BG is its pid, and `bg_rc PID` its exit status once it ends.
bg_ts() {
    local name=$1
    shift
    "$TS" "$@" >"$T/$name.out" 2>"$T/$name.err" </dev/null &
    BG=$!
}
bg_rc() {
    wait "$1"
    RC=$?
}

check "-S 3" 0 '' '' -- "$TS" -S 3

# -w with a list: waits for all, and exits with the first listed job that did not end well.
check "job 0 exits 3" 0 $'0\n' '' -- "$TS" sh -c 'exit 3'
check "job 1 ends well" 0 $'1\n' '' -- "$TS" true
check "job 2 waits for a, then exits 5" 0 $'2\n' '' -- "$TS" waitfor a 5
check "-w 0,1 of ended jobs: 3" 3 '' '' -- "$TS" -w 1,0
bg_ts w12 -w 1,2,0
W=$BG
eventually "-w 1,2,0 sent its request" -- blocked_reading "$W"
ok "$(pid_gone "$W"; [ $? != 0 ]; echo $?)" "-w 1,2,0 still waits while job 2 runs"
release a
bg_rc "$W"
is "$RC" 5 "-w 1,2,0 exits 5: job 2, the first listed that did not end well"
check "-w 1,0,2 exits 3" 3 '' '' -- "$TS" -w 1,0,2
check "-w 1 exits 0 as before" 0 '' '' -- "$TS" -w 1
check "-w 1,x: a clear error, 255" 255 '' \
    $'-w needs a job id or a list of job ids such as 3,4,5 (at most 1024), not \'1,x\'.\n' -- "$TS" -w 1,x
check "-w 1,,2: 255" 255 '' \
    $'-w needs a job id or a list of job ids such as 3,4,5 (at most 1024), not \'1,,2\'.\n' -- "$TS" -w 1,,2
check "-w 1,99: an unknown job, 255" 255 '' $'Error in the request: The job 99 cannot be waited.\n' -- "$TS" -w 1,99

# --wait-all: the jobs queued or running at the call, not those added later.
check "job 3 waits for b" 0 $'3\n' '' -- "$TS" waitfor b
check "job 4 waits for c, then exits 7" 0 $'4\n' '' -- "$TS" waitfor c 7
bg_ts all --wait-all
W=$BG
eventually "--wait-all sent its request" -- blocked_reading "$W"
check "job 5, queued after --wait-all, waits for d" 0 $'5\n' '' -- "$TS" waitfor d
release b
release c
bg_rc "$W"
is "$RC" 7 "--wait-all exits 7 (job 4) while job 5, added later, still runs"
check "job 5 still runs" 0 $'running\n' '' -- "$TS" -s 5
release d
check "job 5 ends" 0 '' '' -- "$TS" -w 5
check "--wait-all with no job queued or running: 0 at once, and it says so" 0 '' \
    $'ts: warning: no job of yours is queued or running: nothing to wait for\n' -- "$TS" --wait-all

# --wait-start: when the job runs; 255 when it ends without running.
check "-S 1" 0 '' '' -- "$TS" -S 1
check "job 6 waits for e" 0 $'6\n' '' -- "$TS" waitfor e
check "job 7 waits for f (queued behind 6)" 0 $'7\n' '' -- "$TS" waitfor f
bg_ts ws --wait-start=7
W=$BG
eventually "--wait-start=7 sent its request" -- blocked_reading "$W"
ok "$(pid_gone "$W"; [ $? != 0 ]; echo $?)" "--wait-start=7 still waits while job 7 is queued"
release e
bg_rc "$W"
is "$RC" 0 "--wait-start=7 exits 0 once job 7 starts"
check "job 7 runs (its start was waited for, not its end)" 0 $'running\n' '' -- "$TS" -s 7
check "--wait-start of a running job: 0 at once" 0 '' '' -- "$TS" --wait-start=7
release f
check "--wait-start of a finished job that ran: 0" 0 '' '' -- "$TS" --wait-start=6
check "job 8 fails" 0 $'8\n' '' -- "$TS" sh -c 'exit 1'
check "job 9 depends on 8" 0 $'9\n' '' -- "$TS" -D 8 true
check "job 9 is skipped" 255 '' '' -- "$TS" -w 9
check "--wait-start of a skipped job: 255, and why" 255 '' \
    $'Error in the request: The job 9 ended without running (skipped: a dependency failed).\n' -- "$TS" --wait-start=9
check "--wait-start=x: 255" 255 '' $'--wait-start needs a job id, not \'x\'.\n' -- "$TS" --wait-start=x
check "--wait-start of an unknown job: 255" 255 '' $'Error in the request: The job 99 cannot be waited.\n' \
    -- "$TS" --wait-start=99

# --unique: the same command line of one's own, queued or running: its id, exit 3.
check "-S 2" 0 '' '' -- "$TS" -S 2
check "job 10 waits for g" 0 $'10\n' '' -- "$TS" waitfor g
wait_running 10
check "--unique of the same command: its id, exit 3" 3 $'10\n' \
    $'ts: job 10 of yours has the same command and is queued or running: nothing was queued.\n' \
    -- "$TS" --unique waitfor g
check "--unique -n prints the id too" 3 $'10\n' \
    $'ts: job 10 of yours has the same command and is queued or running: nothing was queued.\n' \
    -- "$TS" -n --unique waitfor g
check "--unique of another command line (one word more): queued" 0 $'11\n' '' -- "$TS" --unique waitfor g 0
check "--unique of 'waitfor  g' as one word: queued" 0 $'12\n' '' -- "$TS" --unique 'waitfor g'
bg_ts u1 --unique waitfor h
U1=$BG
bg_ts u2 --unique waitfor h
U2=$BG
bg_rc "$U1"
r1=$RC
bg_rc "$U2"
r2=$RC
is "$(printf '%s\n' "$r1" "$r2" | sort | tr '\n' ' ')" "0 3 " "two --unique at once: one queues (0), the other finds it (3)"
is "$(cat "$T/u1.out")" "$(cat "$T/u2.out")" "both print the same id"
release g
release h
check "nothing was queued twice" 0 '' '' -- "$TS" -w 10,11,13
check "job 10 finished: not 'the same' any more; job 14 queued" 0 $'14\n' '' -- "$TS" --unique waitfor g
check "job 14 ends" 0 '' '' -- "$TS" -w 14
# (job 12 'waitfor g' as one word fails to start: 127)

# --requeue: a new id, the same command, directory, environment, label and settings.
mkdir "$T/work"
check "job 15 prints its context, and fails" 0 $'15\n' '' -- \
    env -C "$T/work" FOO=bar "$TS" -L lab -N 2 sh -c 'echo "$FOO $PWD"; exit 4'
check "job 15 exits 4" 4 '' '' -- "$TS" -w 15
check "--requeue=15: the new id" 0 $'16\n' '' -- "$TS" --requeue=15
check "job 16 exits 4 too" 4 '' '' -- "$TS" -w 16
run_cmd "$TS" -o 16
is "$(cat "${OUT%$'\n'}" 2>/dev/null)" "bar $T/work" "job 16 ran in job 15's directory, with its environment"
run_cmd "$TS" -l
is "$(printf '%s\n' "$OUT" | grep -c '^16 .*\[lab\]sh -c echo')" 1 "job 16 has job 15's label and command"
run_cmd "$TS" -i 16
[[ $OUT == *"Slots required: 2"* ]] && pass "job 16 takes 2 slots, as job 15" || fail "job 16 takes 2 slots" "$OUT"
check "--requeue of a queued or running job: 255" 255 '' \
    $'Error in the request: The job 17 is running: only a finished or skipped job can be requeued.\n' \
    -- sh -c '"$0" waitfor i >/dev/null; "$0" --requeue=17' "$TS"
release i
check "--requeue of an unknown job: 255" 255 '' \
    $'Error in the request: There is no job 99.\n' -- "$TS" --requeue=99
check "--requeue=x: 255" 255 '' $'--requeue needs a job id or \'failed\', not \'x\'.\n' -- "$TS" --requeue=x
check "-w 17" 0 '' '' -- "$TS" -w 17
# failed: 0 (exit 3), 2 (5), 4 (7), 8 (1), 9 (skipped), 12 (127), 15 and 16 (4); 15 is requeued (16).
check "--requeue=failed: every failed job of ours not requeued yet, in id order" 0 \
    $'18\n19\n20\n21\n22\n23\n24\n' '' -- "$TS" --requeue=failed
run_cmd "$TS" -l
is "$(printf '%s\n' "$OUT" | grep -c '^22 .*\[21\]&& true')" 1 \
    "job 9 (-D 8), requeued as 22 with job 8's requeue (21): it depends on 21"
check "the requeued jobs end as the first did: job 21 exits 1" 1 '' '' -- "$TS" -w 21
check "all of them end: -w 18,...,24 exits 3 (job 18, job 0 again)" 3 '' '' -- "$TS" -w 18,19,20,21,22,23,24
check "--requeue=failed again: the new failures only" 0 \
    $'25\n26\n27\n28\n29\n30\n31\n' '' -- "$TS" --requeue=failed
check "-w of all of them: 3, job 25 (job 0 again)" 3 '' '' -- "$TS" -w 25,26,27,28,29,30,31

# SIGKILL of the server while a client waits on a list: it waits on, and gets the right status.
check "-C" 0 '' '' -- "$TS" -C
check "job 32 waits for k, then exits 6" 0 $'32\n' '' -- "$TS" waitfor k 6
check "job 33 ends well" 0 $'33\n' '' -- "$TS" true
check "-w 33 first" 0 '' '' -- "$TS" -w 33
wait_running 32
bg_ts kw -w 33,32
W=$BG
eventually "-w 33,32 sent its request" -- blocked_reading "$W"
p=$(server_pids | head -n 1)
ok "$([ -n "$p" ]; echo $?)" "the server's pid is found"
[ -n "$p" ] && kill -KILL "$p"
eventually "the server is gone after SIGKILL" -- pid_gone "${p:-0}"
release k
bg_rc "$W"
is "$RC" 6 "-w 33,32 waited across the SIGKILL: exit 6 (job 32)"
check "job 32 finished" 0 $'finished\n' '' -- "$TS" -s 32
check "--requeue=32 after the restart: its environment (PATH to waitfor) was kept" 0 $'34\n' '' -- "$TS" --requeue=32
check "job 34 exits 6, as job 32" 6 '' '' -- "$TS" -w 34
check "-K" 0 '' '' -- "$TS" -K

# Another user: may not requeue our job; a job that their own ts ran cannot be requeued by anyone.
two_users "another user's requeue"
extra_cleanup() { TS_SOCKET="$Q" "$TS" -K; }
check "a starts the shared queue: job 0 fails" 0 $'0\n' '' -- as $A "$T/ta" "$TS" false
check "b's job 1 fails" 0 $'1\n' '' -- as $B "$T/tb" "$TS" false
as $A "$T/ta" "$TS" -w 0,1
check "b may not requeue a's job" 255 '' \
    "Error in the request: Job 0 belongs to uid $A: only its owner, the server's owner (uid $A) or root may requeue it."$'\n' \
    -- as $B "$T/tb" "$TS" --requeue=0
check "b's job, run by b's ts, cannot be requeued by a (the server's owner)" 255 '' \
    "Error in the request: The job 1 was run by its submitter's own ts (uid $B), not by this server: the server cannot run it again. Submit it again instead."$'\n' \
    -- as $A "$T/ta" "$TS" --requeue=1
check "nor by b, who is shown how to queue it again" 255 '' \
    "Error in the request: The job 1 was run by its submitter's own ts (uid $B), not by this server: the server cannot run it again. Submit it again instead (with the options it had: cd $T && ts false)."$'\n' \
    -- as $B "$T/tb" "$TS" --requeue=1
check "b's --requeue=failed finds nothing the server can run, and says why" 0 '' \
    $'ts: warning: 1 failed job of yours ran in your own ts, not in this server: it cannot run it again (ts --requeue=ID of each says how to queue it again)\n' \
    -- as $B "$T/tb" "$TS" --requeue=failed
check "root may requeue a's job: it runs as a" 0 $'2\n' '' -- env TS_SOCKET="$Q" "$TS" --requeue=0
check "job 2 fails as job 0 did" 1 '' '' -- as $A "$T/ta" "$TS" -w 2
check "b's --unique of a's command: b's own jobs only, queued" 0 $'3\n' '' -- as $B "$T/tb" "$TS" --unique waitfor z
check "a's --unique of the same: queued too" 0 $'4\n' '' -- as $A "$T/ta" "$TS" --unique waitfor z
check "b's --unique again: b's job 3" 3 $'3\n' \
    $'ts: job 3 of yours has the same command and is queued or running: nothing was queued.\n' \
    -- as $B "$T/tb" "$TS" --unique waitfor z
check "a holds its job 4" 0 $'Job 4 is held: it does not start until ts --release=4.\n' '' -- as $A "$T/ta" "$TS" --hold=4
release z
# (b's job 3 may end before b asks, or after: either way b's --wait-all returns, never waiting for a's job)
run_cmd timeout 20 setsid bash -c "$(declare -f as); T='$T' Q='$Q' as $B '$T/tb' '$TS' --wait-all"
is "$RC/$OUT" "0/" "b's --wait-all: b's jobs only (a's held job 4 is not waited for)"
check "a releases job 4" 0 $'Job 4 is released: it starts when its turn comes.\n' '' -- as $A "$T/ta" "$TS" --release=4
check "a's job 4 ends" 0 '' '' -- as $A "$T/ta" "$TS" -w 4

# b claims, in a forged Submit, that a job of b's runs a's failed job 2 again (the setting only
# --requeue sets): the server drops the claim, and a's --requeue=failed still requeues job 2.
mkdir -m 755 "$T/fbin"
cc -O1 -o "$T/fbin/forge" "$_lib_dir/forge.c" || fail "forge.c builds"
check "b's forged job 5, claiming to run job 2 again" 0 $'ok 5\nrun\n' '' -- \
    as $B "$T/tb" env FORGE_SETTING=25:2 "$T/fbin/forge" "$Q" submit true
check "a's --requeue=failed: job 2 (job 0 is run again by job 2)" 0 $'6\n' '' \
    -- as $A "$T/ta" "$TS" --requeue=failed
done_testing
