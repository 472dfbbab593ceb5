#!/bin/bash
# Hold and delayed start (README "A short tour", ts.1 --hold, --release, --delay,
# --at): a held job keeps its place and starts only once released, its
# dependents wait for it; a delayed job starts once its time comes; -l and -s
# say held or delayed, -i says why a job waits; a SIGKILL of the server keeps
# both, and a delay that passed while it was down starts the job at once.
# Only a job's owner, the server's owner or root may hold or release it (the
# part with another user needs root and setpriv, and is skipped without them).
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler has no --hold, --release, --delay or --at"

pid_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" = Z ]; }
info_has() {   # DESC ID TEXT: -i ID has the line TEXT
    run_cmd "$TS" -i "$2"
    [[ $RC == 0 && $'\n'$OUT == *$'\n'"$3"$'\n'* ]] && pass "$1" || fail "$1" "$RC: $OUT"
}
kill_server() {   # SIGKILL the server and wait until it is gone
    local p
    p=$(server_pids | head -n 1)
    ok "$([ -n "$p" ]; echo $?)" "the server's pid is found"
    [ -n "$p" ] && kill -KILL "$p"
    eventually "the server is gone after SIGKILL" -- pid_gone "${p:-0}"
}

# --- held at submit: it keeps its place, later jobs run, its dependents wait
check "--hold queues job 0 held" 0 $'0\n' '' -- "$TS" --hold echo zero
check "-s says held" 0 $'held\n' '' -- "$TS" -s 0
check "job 1 behind it" 0 $'1\n' '' -- "$TS" echo one
check "job 1 runs past the held job" 0 '' '' -- "$TS" -w 1
check "job 2 depends on the held job" 0 $'2\n' '' -- "$TS" -D 0 echo two
check_norm "-l: held, in its place; the dependent queued" 0 "$(HDR 0 1)
$(LQ 0 held '(file)' 'echo zero')
$(LQ 2 queued '(file)' '[0]&& echo two')
$(LF 1 OUT 0 'echo one')
" '' -- "$TS" -l
info_has "-i of the held job says how to release it" 0 "Waiting: held: ts --release=0 starts it"
info_has "-i of its dependent says it waits for it" 2 "Waiting for job 0 to end"
check "the dependent is still queued" 0 $'queued\n' '' -- "$TS" -s 2

# --- bad requests: a clear error, exit 255, nothing changed
check "releasing a job that is not held" 255 '' $'Error in the request: Job 2 is not held or delayed: nothing to release.\n' \
    -- "$TS" --release=2
check "holding a finished job" 255 '' $'Error in the request: Job 1 is finished: only a queued job can be held.\n' \
    -- "$TS" --hold=1
check "holding a job that does not exist" 255 '' $'Error in the request: There is no job 99.\n' -- "$TS" --hold=99
check "--hold=x is refused by the client" 255 '' $'--hold=ID needs a job id, not \'x\'.\n' -- "$TS" --hold=x
check "--release=some is refused" 255 '' $'--release needs a job id or \'all\', not \'some\'.\n' -- "$TS" --release=some
check "job 0 is still held" 0 $'held\n' '' -- "$TS" -s 0

# --- release: it runs, then its dependent
check "--release=0" 0 $'Job 0 is released: it starts when its turn comes.\n' '' -- "$TS" --release=0
check "job 0 ends" 0 '' '' -- "$TS" -w 0
check "its dependent ends" 0 '' '' -- "$TS" -w 2

# --- held later, held again, then --release=all
check "job 3 runs" 0 $'3\n' '' -- "$TS" waitfor a
wait_running 3
check "job 4 queued behind it" 0 $'4\n' '' -- "$TS" echo four
check "--hold=4" 0 $'Job 4 is held: it does not start until ts --release=4.\n' '' -- "$TS" --hold=4
check "--hold=4 again: said, exit 0" 0 $'Job 4 was held already: ts --release=4 starts it.\n' '' -- "$TS" --hold=4
check "holding a running job" 255 '' $'Error in the request: Job 3 is running: only a queued job can be held.\n' \
    -- "$TS" --hold=3
release a
check "job 3 ends" 0 '' '' -- "$TS" -w 3
check "job 5 queued held" 0 $'5\n' '' -- "$TS" --hold echo five
check "job 4 did not start on the free slot" 0 $'held\n' '' -- "$TS" -s 4
check "--release=all releases both" 0 $'Released 2 held jobs: 4, 5.\n' '' -- "$TS" --release=all
check "job 4 ends" 0 '' '' -- "$TS" -w 4
check "job 5 ends" 0 '' '' -- "$TS" -w 5
check "--release=all with none held" 0 $'No held job of yours to release.\n' '' -- "$TS" --release=all

# --- delay and --at
before=$(date +%s.%N)
check "--delay=2s queues job 6" 0 $'6\n' '' -- "$TS" --delay=2s echo six
check "-s says delayed" 0 $'delayed\n' '' -- "$TS" -s 6
run_cmd "$TS" -l
[[ $OUT == *"$(LQ 6 delayed '(file)' 'echo six')"* ]] && pass "-l says delayed" || fail "-l says delayed" "$OUT"
run_cmd "$TS" -i 6
until=$(sed -n 's/^Waiting: delayed until \([0-9-]* [0-9:]*\) (local time)$/\1/p' <<<"$OUT")
ok "$([ -n "$until" ] && awk -v t="$(date -d "$until" +%s)" -v b="$before" 'BEGIN { d = t - (b + 2); exit !(d > -1.5 && d < 1.5) }'; echo $?)" \
    "-i says until when, in local time ($until)"
check "job 6 ends" 0 '' '' -- "$TS" -w 6
after=$(date +%s.%N)
ok "$(awk -v a="$before" -v b="$after" 'BEGIN { exit !(b - a >= 1.9) }'; echo $?)" "job 6 did not start before its time (waited $(awk -v a="$before" -v b="$after" 'BEGIN { printf "%.2f", b - a }') s)"
check "--delay=0 is refused" 255 '' \
    $'--delay needs a duration of more than 0 such as 90, 30s, 5m or 1h30m, not \'0\'.\n' -- "$TS" --delay=0 true
check "--delay=5x is refused" 255 '' \
    $'--delay needs a duration of more than 0 such as 90, 30s, 5m or 1h30m, not \'5x\'.\n' -- "$TS" --delay=5x true
check "--at in the past is refused" 255 '' $'--at: \'2001-01-01T00:00\' is in the past.\n' -- "$TS" --at=2001-01-01T00:00 true
check "--at=25:00 is refused" 255 '' $'--at: \'25:00\' is not a time HH:MM[:SS] or YYYY-MM-DD HH:MM[:SS].\n' -- "$TS" --at=25:00 true
check "nothing was queued by them: job 7 is next" 0 $'7\n' '' -- "$TS" --at="$(date -d '+1 day' '+%Y-%m-%d %H:%M')" echo seven
check "job 7 is delayed" 0 $'delayed\n' '' -- "$TS" -s 7
check "a delayed job is released: its time is dropped" 0 \
    $'Job 7 is released (its start time is dropped): it starts when its turn comes.\n' '' -- "$TS" --release=7
check "job 7 ends" 0 '' '' -- "$TS" -w 7

# --- slots: -i says what a job needs
check "job 8 needs 3 slots of 1" 0 $'8\n' '' -- "$TS" -N 3 true
info_has "-i says the slots it needs" 8 "Waiting: needs 3 slots, 1 of 1 free"
check "-S 3 makes room" 0 '' '' -- "$TS" -S 3
check "job 8 runs and ends" 0 '' '' -- "$TS" -w 8

# --- SIGKILL of the server: held and delayed come back; a time that passed starts at once
check "job 9 held" 0 $'9\n' '' -- "$TS" --hold echo nine
check "job 10 delayed by an hour" 0 $'10\n' '' -- "$TS" --delay=1h echo ten
check "job 11 delayed by 1 s" 0 $'11\n' '' -- "$TS" --delay=1 echo eleven
due=$(date -d '+2 seconds' +%s)
kill_server
# The server stays down until job 11's time has passed (a wait on the clock, which nothing else shows).
eventually "job 11's time passes while the server is down" -- sh -c '[ "$(date +%s)" -gt "$1" ]' sh "$due"
check "a new server: job 9 still held" 0 $'held\n' '' -- "$TS" -s 9
check "job 10 still delayed" 0 $'delayed\n' '' -- "$TS" -s 10
check "job 11 starts at once and ends" 0 '' '' -- "$TS" -w 11
check "--hold=10 (held and delayed)" 0 $'Job 10 is held: it does not start until ts --release=10.\n' '' -- "$TS" --hold=10
kill_server
check "after a second SIGKILL: job 10 held" 0 $'held\n' '' -- "$TS" -s 10
check "--release=9 after the restart" 0 $'Job 9 is released: it starts when its turn comes.\n' '' -- "$TS" --release=9
check "job 9 ends" 0 '' '' -- "$TS" -w 9
kill_server
check "the release survives a SIGKILL: job 9 stays finished" 0 $'finished\n' '' -- "$TS" -s 9

# --- the "last job" rules with a held job at the head of the queue
check "job 12 held, at the head" 0 $'12\n' '' -- "$TS" --hold echo twelve
check "job 13 runs behind it" 0 $'13\n' '' -- "$TS" waitfor b
wait_running 13
run_cmd "$TS" -p 13
pid13=$OUT
check "-p without id: the running job's pid, not the held head's" 0 "$pid13" '' -- "$TS" -p
run_cmd "$TS" -o 13
check "-o without id: the running job's output" 0 "$OUT" '' -- "$TS" -o
release b
check "job 13 ends" 0 '' '' -- "$TS" -w 13
check "job 14 exits 3" 0 $'14\n' '' -- "$TS" sh -c 'exit 3'
check "-w without id: job 14 (added after the held job), at once" 3 '' '' -- timeout 20 "$TS" -w
check "-s without id: job 14's state" 0 $'finished\n' '' -- "$TS" -s
check "job 10 (held, delayed by an hour) is the head" 0 $'held\n' '' -- "$TS" -s 10
check "-r of the held head removes it" 0 '' '' -- "$TS" -r 10
check "-r 12" 0 '' '' -- "$TS" -r 12
check "job 12 is gone" 255 '' $'Error in the request: The job 12 cannot be stated.\n' -- "$TS" -s 12
check "job 15 runs" 0 $'15\n' '' -- "$TS" waitfor c
wait_running 15
check "job 16 queued (it needs 3 slots: it stays queued)" 0 $'16\n' '' -- "$TS" -N 3 true
check "job 17 held, depends on 16" 0 $'17\n' '' -- "$TS" --hold -D 16 true
check "-r 16" 0 '' '' -- "$TS" -r 16
check "--release of a job whose dependency was removed says it is skipped" 0 \
    $'Job 17 is released, but a job it depends on did not end well or was removed: it is skipped, not run.\n' '' \
    -- "$TS" --release=17
release c
check "job 15 ends" 0 '' '' -- "$TS" -w 15
wait_state 17 skipped
check "-K" 0 '' '' -- "$TS" -K

# --- another user: refused, and nothing changes; the job's owner and root may
two_users "another user may not hold or release a job"
extra_cleanup() { TS_SOCKET="$Q" "$TS" -K; }
check "a starts the shared queue: job 0" 0 $'0\n' '' -- as $A "$T/ta" "$TS" true
as $A "$T/ta" "$TS" -w 0
check "b queues job 1 held (b runs it: a client-held runner)" 0 $'1\n' '' -- as $B "$T/tb" "$TS" --hold true
check "job 1 is held" 0 $'held\n' '' -- as $A "$T/ta" "$TS" -s 1
check "a queues job 2" 0 $'2\n' '' -- as $A "$T/ta" "$TS" --hold true
refusal="Error in the request: Job 2 belongs to uid $A: only its owner, the server's owner (uid $A) or root may hold or release it."$'\n'
check "b may not release a's job" 255 '' "$refusal" -- as $B "$T/tb" "$TS" --release=2
check "b's --release=all leaves a's job held" 0 $'Released 1 held job: 1.\n' '' -- as $B "$T/tb" "$TS" --release=all
check "job 2 is still held" 0 $'held\n' '' -- as $A "$T/ta" "$TS" -s 2
check "b's own job 1 runs and ends" 0 '' '' -- as $B "$T/tb" "$TS" -w 1
check "root may release a's job" 0 $'Job 2 is released: it starts when its turn comes.\n' '' \
    -- env TS_SOCKET="$Q" "$TS" --release=2
check "job 2 runs and ends" 0 '' '' -- as $A "$T/ta" "$TS" -w 2

# b's delayed job (b's own ts runs it) across a SIGKILL of the server: b's runner comes back to the
# next server and the job starts at its time, as b.
t0=$(date +%s)
check "b queues job 3, delayed by 3 s" 0 $'3\n' '' -- as $B "$T/tb" "$TS" --delay=3 sh -c 'id -u >"$TMPDIR/ran3"'
check "job 3 is delayed" 0 $'delayed\n' '' -- as $A "$T/ta" "$TS" -s 3
p=$(TS_SOCKET="$Q" server_pids | head -n 1)
[ -n "$p" ] && kill -KILL "$p"
eventually "the server is gone after SIGKILL" -- sh -c '! kill -0 "$0" 2>/dev/null' "${p:-0}"
check "a starts the next server: job 3 is still delayed" 0 $'delayed\n' '' -- as $A "$T/ta" "$TS" -s 3
check "job 3 runs and ends" 0 '' '' -- as $B "$T/tb" "$TS" -w 3
ok "$([ $(( $(date +%s) - t0 )) -ge 3 ]; echo $?)" "not before its time"
is "$(cat "$T/tb/ran3" 2>/dev/null)" "$B" "it ran as b"
done_testing
