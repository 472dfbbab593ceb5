#!/bin/bash
# Spare runners: the server forks a small ts-spawner process first thing, which keeps one spare ts-runner
# ready (it has made the job's output file already, unnamed); a job that starts is handed to the spare.
# Checked here: the process tree, that spare output files never show up as stray files, jobs with another
# TMPDIR or -n, a killed spare is replaced, a stopped or killed spawner makes the server fork runners
# itself (after at most 2 s, with a line in the .error log), a spare killed between taking its job and
# starting it gives the job back (it runs once), and nothing outlives the server.
# ts-only: the spawner and its spares are ts's own.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "ts's spawner and spare runners"

# stat_field PID N: field N of /proc/PID/stat counting from the state (1: state, 2: ppid, 3: pgrp).
stat_field() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk -v n="$2" '{print $n}'; }
comm_of() { cat "/proc/$1/comm" 2>/dev/null; }
# children PID [COMM]: pids of PID's children (named COMM), in order. Pure /proc, no broad pgrep.
children() {
    local p s
    for p in /proc/[0-9]*; do
        s=$(sed 's/.*) //' "$p/stat" 2>/dev/null) || continue
        set -- "$1" "${2-}" $s
        if [ "$4" == "$1" ] && { [ -z "$2" ] || [ "$(comm_of "${p#/proc/}")" == "$2" ]; }; then
            echo "${p#/proc/}"
        fi
        set -- "$1" "$2"
    done | sort -n
}
# The server's spawner; the spawner's idle spares (ts-runner children that have no job yet).
spawner_of() { children "$1" ts-spawner; }
idle_spares() {
    local r
    for r in $(children "$1" ts-runner); do
        [ -z "$(children "$r")" ] && echo "$r"
    done
}
one_idle_spare() { [ "$(idle_spares "$1" | wc -l)" -eq 1 ]; }
alive() { [ -n "$1" ] && kill -0 "$1" 2>/dev/null && [ "$(stat_field "$1" 1)" != Z ]; }
gone() { ! alive "$1"; }
count_out() { find "$1" -maxdepth 1 -name 'ts-out.*' | wc -l; }
log_has() { grep -qF -- "$1" "$TS_SOCKET.error" 2>/dev/null; }

# ---- the processes ---------------------------------------------------------------------------------------
check "-S 1" 0 '' '' -- "$TS" -S 1
spid=$(server_pids)
is "$(echo $spid | wc -w)" 1 "one server (pid $spid)"
sp=$(spawner_of "$spid")
is "$(echo $sp | wc -w)" 1 "the server has one ts-spawner child ($sp)"
eventually "the spawner has one idle spare runner" -- one_idle_spare "$sp"
spare=$(idle_spares "$sp")
is "$(stat_field "$spare" 1 | tr RSD xxx)" x "the spare sleeps or runs, it is no zombie"
is "$(count_out "$T")" 0 "the spare's output file is not visible in TMPDIR"

check "job 0" 0 $'0\n' '' -- "$TS" waitfor go0
wait_running 0
jpid=$("$TS" -p 0)
is "$(stat_field "$jpid" 2)" "$spare" "job 0 runs under the spare that was ready ($spare)"
eventually "another idle spare is ready while job 0 runs" -- one_idle_spare "$sp"
release go0
check "-w 0" 0 '' '' -- "$TS" -w 0

# ---- output files ----------------------------------------------------------------------------------------
# Eight jobs with output, one without (-n), one whose TMPDIR is elsewhere: exactly one file each where its
# TMPDIR says, and no other file.
mkdir -p "$T/other"
for i in 1 2 3 4 5 6 7 8; do "$TS" sh -c "echo out $i" >/dev/null; done
"$TS" -n echo nothing >/dev/null
TMPDIR="$T/other" "$TS" echo elsewhere >/dev/null
check "-w (all done)" 0 '' '' -- "$TS" -w
is "$(count_out "$T")" 9 "nine output files in TMPDIR (jobs 0-8), none left over by spares"
is "$(count_out "$T/other")" 1 "one in the other TMPDIR (job 10)"
o10=$("$TS" -o 10)
is "$(dirname "$o10")" "$T/other" "job 10's output file is in its own TMPDIR"
is "$(cat "$o10")" elsewhere "... and holds its output"
bad=0
for i in 1 2 3 4 5 6 7 8; do
    [ "$(cat "$("$TS" -o "$i")")" == "out $i" ] || bad=$((bad + 1))
done
is "$bad" 0 "each of jobs 1-8 has its own output in its own file"
check "-o 9 (-n)" 255 '' $'The output is not stored.\n' -- "$TS" -o 9

# ---- a killed spare --------------------------------------------------------------------------------------
eventually "one idle spare" -- one_idle_spare "$sp"
old=$(idle_spares "$sp")
kill -9 "$old"
eventually "the killed spare ($old) is gone" -- gone "$old"
eventually "a new spare replaces it" -- one_idle_spare "$sp"
new=$(idle_spares "$sp")
[ "$new" != "$old" ]; ok $? "it is another process ($new)"
check "job 11 runs" 0 $'11\n' '' -- "$TS" echo after-kill
check "-w 11" 0 '' '' -- "$TS" -w 11
is "$(cat "$("$TS" -o 11)")" after-kill "job 11's output"
is "$(count_out "$T")" 10 "the killed spare left no output file"

# ---- a stopped spawner -----------------------------------------------------------------------------------
# The idle spare still takes the next job; the one after it waits for a spare that does not come, and after
# 2 s the server forks its runner.
check "-S 2" 0 '' '' -- "$TS" -S 2
eventually "one idle spare" -- one_idle_spare "$sp"
kill -STOP "$sp"
check "job 12 (takes the idle spare)" 0 $'12\n' '' -- "$TS" waitfor go12
wait_running 12
r12=$(stat_field "$("$TS" -p 12)" 2)
is "$(stat_field "$r12" 2)" "$sp" "job 12's runner ($r12) is a child of the spawner"
a=$(date +%s%N)
check "job 13 (no spare comes)" 0 $'13\n' '' -- "$TS" sh -c 'echo fallback; waitfor go13'
wait_running 13
ms=$(( ($(date +%s%N) - a) / 1000000 ))
[ "$ms" -ge 1500 ] && [ "$ms" -lt 8000 ]; ok $? "it waited about 2 s for a spare (${ms} ms)"
r13=$(stat_field "$("$TS" -p 13)" 2)
is "$(comm_of "$r13")" ts-runner "job 13's parent is a ts-runner ($r13)"
is "$(stat_field "$r13" 2)" "$spid" "... forked by the server itself"
log_has "no spare runner came for 2 s: forking runners here"; ok $? "the .error log says why"
release go13
check "-w 13" 0 '' '' -- "$TS" -w 13
is "$(cat "$("$TS" -o 13)")" fallback "job 13 wrote its output"
kill -CONT "$sp"
release go12
check "-w 12" 0 '' '' -- "$TS" -w 12
check "job 14 after the spawner woke" 0 $'14\n' '' -- "$TS" waitfor go14
wait_running 14
r14=$(stat_field "$("$TS" -p 14)" 2)
is "$(stat_field "$r14" 2)" "$sp" "job 14's runner is a spawner's spare again"
release go14
check "-w 14" 0 '' '' -- "$TS" -w 14

# ---- a killed spawner ------------------------------------------------------------------------------------
# Its idle spare lives on (an orphan, still connected) and takes the next job; later jobs get runners
# forked by the server.
eventually "one idle spare" -- one_idle_spare "$sp"
orphan=$(idle_spares "$sp")
kill -9 "$sp"
eventually "the killed spawner ($sp) is gone" -- gone "$sp"
eventually "the server says so in its .error log" -- log_has "the spawner is gone"
check "job 15 runs" 0 $'15\n' '' -- "$TS" waitfor go15
wait_running 15
is "$(stat_field "$("$TS" -p 15)" 2)" "$orphan" "job 15 runs under the orphaned spare ($orphan)"
check "job 16 runs" 0 $'16\n' '' -- "$TS" waitfor go16
wait_running 16
r16=$(stat_field "$("$TS" -p 16)" 2)
is "$(comm_of "$r16")" ts-runner "job 16's parent is a ts-runner ($r16)"
is "$(stat_field "$r16" 2)" "$spid" "... forked by the server itself"
release go15
release go16
check "-w 15" 0 '' '' -- "$TS" -w 15
check "-w 16" 0 '' '' -- "$TS" -w 16
check "-s 16" 0 $'finished\n' '' -- "$TS" -s 16
is "$(server_pids)" "$spid" "the server is the same"

# ---- nothing outlives the server -------------------------------------------------------------------------
check "-K" 0 '' '' -- "$TS" -K
eventually "the server is gone" -- no_server

# A new server (its queue comes back from the journal), killed with SIGKILL: its spawner and spare follow.
check "job list of a new server" 0 '' '' -- "$TS" -S 1
spid=$(server_pids)
sp=$(spawner_of "$spid")
is "$(echo $sp | wc -w)" 1 "the new server has a spawner ($sp)"
eventually "... with an idle spare" -- one_idle_spare "$sp"

# ---- a spare killed after it was given its job, before the job's fork ------------------------------------
# Stopped first, the spare takes the job (the server journals it as the job's runner and sends the job)
# but can do nothing with it; killed then, it leaves a job that never ran. The job goes back to the queue,
# in its place, and runs once, under the next runner; nothing says it was lost.
victim=$(idle_spares "$sp")
kill -STOP "$victim"
id=$("$TS" sh -c 'echo ran >>"$TMPDIR/count-once"; echo once')
wait_state "$id" running
ok "$([ ! -e "$T/count-once" ]; echo $?)" "the stopped spare has not run the job"
kill -KILL "$victim"
eventually "the killed spare ($victim) is gone" -- gone "$victim"
check "-w: the job ran after all (exit 0)" 0 '' '' -- "$TS" -w "$id"
check "... exactly once" 0 $'ran\n' '' -- cat "$T/count-once"
check "... with its output" 0 $'once\n' '' -- sh -c 'cat "$("$TS" -o "$1")"' x "$id"
log_has "job $id: its runner (pid $victim) ended before the job started: queued again"; ok $? "the log says why"
run_cmd "$TS" -i "$id"
[[ $OUT == "Exit status: died with exit code 0"$'\n'"Command: "* ]] && pass "-i: a plain end, no Lost line" \
    || fail "-i: a plain end, no Lost line" "$OUT"
eventually "a new idle spare" -- one_idle_spare "$sp"

# ---- a spare killed after it reported the start, before its job's go --------------------------------------
# strace kills the spare on its first write(): the one byte that lets the job's child begin, sent only once
# Started is on its way. The server has the start, but the job never ran: the child, at its gate, says so on
# the runner's connection, and the job goes back to the queue and runs once (it was marked lost).
if command -v strace >/dev/null; then
    victim=$(idle_spares "$sp")
    strace -qq -o /dev/null -p "$victim" -e trace=write -e inject=write:signal=KILL:when=1 & tracer=$!
    eventually "strace holds the spare ($victim)" -- sh -c '[ "$(awk "/^TracerPid:/ {print \$2}" /proc/$1/status)" = "$2" ]' x "$victim" "$tracer"
    id=$("$TS" sh -c 'echo ran >>"$TMPDIR/count-go"; echo once')
    check "-w: the job ran after all (exit 0)" 0 '' '' -- "$TS" -w "$id"
    check "... exactly once" 0 $'ran\n' '' -- cat "$T/count-go"
    eventually "the killed spare ($victim) is gone" -- gone "$victim"
    wait "$tracer"
    # (under the sanitizers or valgrind their runtime may write first: the spare then dies before its start
    # report, and the job goes back to the queue by that path instead)
    log_has "job $id: its runner ended after it reported the start, before the job began" ||
        { { [ "${TS_TEST_LIGHT-0}" = 1 ] || [ -n "${TS_VALGRIND-}" ]; } &&
            log_has "job $id: its runner (pid $victim) ended before the job started"; }
    ok $? "the log says why"
    run_cmd "$TS" -i "$id"
    [[ $OUT == "Exit status: died with exit code 0"$'\n'"Command: "* ]] && pass "-i: a plain end, no Lost line" \
        || fail "-i: a plain end, no Lost line" "$OUT"
    eventually "a new idle spare" -- one_idle_spare "$sp"
else
    skip "a spare killed between its start report and the job's go" "no strace"
fi

# ---- the same, and the server killed too before the spare read its job ------------------------------------
# The journal names the spare as the job's runner, but the job never ran: the next server finds that runner
# gone with no start reported, and queues the job again (it must not mark it lost).
victim=$(idle_spares "$sp")
kill -STOP "$victim"
id=$("$TS" sh -c 'echo ran >>"$TMPDIR/count-restart"; echo once')
wait_state "$id" running
kill -KILL "$spid"
eventually "the server is gone" -- no_server
kill -KILL "$victim"
eventually "the stopped spare ($victim) is gone" -- gone "$victim"
check "a new server: -w says the job ran after all (exit 0)" 0 '' '' -- "$TS" -w "$id"
check "... exactly once" 0 $'ran\n' '' -- cat "$T/count-restart"
log_has "job $id: its runner (pid $victim) is gone and never reported the job's start"; ok $? "the log says why"
spid=$(server_pids)
sp=$(spawner_of "$spid")
eventually "... with an idle spare" -- one_idle_spare "$sp"

spare=$(idle_spares "$sp")
kill -9 "$spid"
eventually "the server is gone" -- no_server
eventually "its spawner ends" -- gone "$sp"
eventually "its spare ends" -- gone "$spare"

done_testing
