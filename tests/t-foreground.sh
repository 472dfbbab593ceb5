#!/bin/bash
# -f / -nf (ts-spec.md §1.3, §4.3, §4.10).
. "$(dirname "$0")/lib.sh"

echo data >"$T/in"
STDIN="$T/in" check "-f cat: id on stdout, job reads the caller's stdin" 0 $'0\n' '' -- "$TS" -f cat
check "output file has the data" 0 $'data\n' '' -- cat "$("$TS" -o 0)"
check "-f exit 3 -> rc 3" 3 $'1\n' '' -- "$TS" -f sh -c 'echo x; exit 3'
check "-f exit 200 -> rc 200" 200 $'2\n' '' -- "$TS" -f sh -c 'exit 200'
check "-f signal -> rc 255" 255 $'3\n' '' -- "$TS" -f sh -c 'kill -9 $$'
check "-f nonexistent command -> rc 255" 255 $'4\n' '' -- "$TS" -f nonexistent-command-xyz
check "its output file" 0 $'ts could not run the command\n' '' -- cat "$("$TS" -o 4)"
check "-f output goes to the file, not the terminal" 0 $'5\n' '' -- "$TS" -f sh -c 'echo out; echo err >&2'
check "file content" 0 $'out\nerr\n' '' -- cat "$("$TS" -o 5)"

STDIN="$T/in" check "-nf cat: no id, output on the caller's stdout" 0 $'data\n' '' -- "$TS" -nf cat
check "-nf: stdout and stderr are the caller's" 0 $'out\n' $'err\n' -- "$TS" -nf sh -c 'echo out; echo err >&2'
check "-nf exit 5 -> rc 5" 5 '' '' -- "$TS" -nf sh -c 'exit 5'
check "-nf exit 200 -> rc 200" 200 '' '' -- "$TS" -nf sh -c 'exit 200'
check "-nf nonexistent command: message on the caller's stderr, rc 255" 255 '' $'ts could not run the command\n' -- "$TS" -nf nonexistent-command-xyz

check_norm "-f jobs are listed, -nf jobs are not kept" 0 "$(HDR 0 1
LF 0 OUT 0 cat
LF 1 OUT 3 'sh -c echo x; exit 3'
LF 2 OUT -56 'sh -c exit 200'
LF 3 OUT -1 'sh -c kill -9 $$'
LF 4 OUT -1 nonexistent-command-xyz
LF 5 OUT 0 'sh -c echo out; echo err >&2')
" '' -- "$TS"
check "ids went on counting through the -nf jobs (11)" 0 $'11\n' '' -- "$TS" true
check "-w" 0 '' '' -- "$TS" -w

# a -nf job is listed while it runs (Output "stdout")
"$TS" -nf waitfor go12 >"$T/nf.out" 2>"$T/nf.err" </dev/null &
nfpid=$!
wait_state 12 running
check_norm "running -nf job shows stdout" 0 "$(HDR 1 1; LQ 12 running stdout 'waitfor go12')
" '' -- sh -c '"$TS" | head -n 2'
release go12
wait "$nfpid"
is "$?" 0 "-nf client exit status"
check "-s 12 after it ended: gone" 255 '' $'Error in the request: The job 12 cannot be stated.\n' -- "$TS" -s 12

# a -f job waits for its turn in the queue; its id is printed at once
check "job 13 blocker" 0 $'13\n' '' -- "$TS" waitfor go13
wait_running 13
("$TS" -f sh -c 'echo fg-ran; exit 6' >"$T/f.out" 2>"$T/f.err" </dev/null; echo $? >"$T/f.rc") &
fpid=$!
wait_state 14 queued
check "the foreground job is queued behind 13" 0 $'queued\n' '' -- "$TS" -s 14
release go13
wait "$fpid"
check "-f client: rc 6" 0 $'6\n' '' -- cat "$T/f.rc"
check "-f client: printed only the id" 0 $'14\n' '' -- cat "$T/f.out"
check "-f client: no stderr" 0 '' '' -- cat "$T/f.err"
check "its output" 0 $'fg-ran\n' '' -- cat "$("$TS" -o 14)"

# SIGINT to a -f client goes to the job, and the job's real exit status is still reported
# (task-spooler 1.0.1 loses it: wait() is not restarted and it records garbage, rc 255).
if ts_only; then
    "$TS" -f sh -c 'trap "echo got-int; exit 42" INT; touch "$TMPDIR/armed"; waitfor never & wait' \
        >/dev/null 2>&1 </dev/null &
    fpid=$!
    eventually "the -f job has set its trap" -- test -e "$T/armed"
    kill -INT "$fpid"
    wait "$fpid"
    is "$?" 42 "-f client interrupted: rc is the job's (42)"
    check "its E-Level is 42" 0 $'finished\n' '' -- "$TS" -s 15
    check "-i shows the real exit" 0 $'Exit status: died with exit code 42\n' '' -- sh -c '"$TS" -i 15 | head -1'
    check "the job saw the signal" 0 $'got-int\n' '' -- cat "$("$TS" -o 15)"
else
    for d in "the -f job has set its trap" "-f client interrupted: rc" "its E-Level" "-i real exit" "saw the signal"; do
        skip "$d" "tsp 1.0.1 loses the status (bug)"
    done
fi

# A -f client killed after the server told it to run its job, before it started it (it was stopped while
# queued): the job never ran, and no other process can run it. It ends saying so, with no start time
# (task-spooler 1.0.1 waits for it for ever; ts before this showed it killed by signal 9, started in 1970).
if ts_only; then
    check "job 16 blocker" 0 $'16\n' '' -- "$TS" waitfor go16
    wait_running 16
    "$TS" -f sh -c 'touch "$TMPDIR/f17-ran"' >/dev/null 2>&1 </dev/null &
    fpid=$!
    wait_state 17 queued
    kill -STOP "$fpid"
    release go16
    wait_state 17 running
    kill -KILL "$fpid"
    { wait "$fpid"; } 2>/dev/null
    wait_state 17 finished
    run_cmd "$TS" -i 17
    [[ $OUT == "Exit status: died with exit code -1"$'\n'"Lost: its client (the ts that was to run it) went away before the job started; it never ran"$'\n'* ]] \
        && pass "-i 17: it never ran, and why" || fail "-i 17: it never ran, and why" "$OUT"
    [[ $OUT != *"Start time"* && $OUT != *"Time run"* ]] && pass "-i 17: no start time" \
        || fail "-i 17: no start time" "$OUT"
    ok "$([ ! -e "$T/f17-ran" ]; echo $?)" "the job did not run"
else
    skip "a -f client killed before its job started" "tsp 1.0.1 waits for it for ever"
fi

done_testing
