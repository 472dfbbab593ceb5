#!/bin/bash
# -o / -p (ts-spec.md §1.2, §1.5 "last-R"), output files (§3, §4.3).
. "$(dirname "$0")/lib.sh"

check "-o with no jobs" 255 '' $'Error in the request: No jobs.\n' -- "$TS" -o
check "-p with no jobs" 255 '' $'Error in the request: No jobs.\n' -- "$TS" -p
check "-o 5 unknown" 255 '' $'Error in the request: Job 5 not finished or not running.\n' -- "$TS" -o 5
check "-p 5 unknown" 255 '' $'Error in the request: Job 5 not finished or not running.\n' -- "$TS" -p 5

check "job 0 writes stdout and stderr, then blocks" 0 $'0\n' '' -- "$TS" sh -c 'echo to-out; echo to-err >&2; exec waitfor go0'
check "job 1 queued" 0 $'1\n' '' -- "$TS" sh -c 'echo one; exit 1'
wait_running 0
o0=$("$TS" -o 0)
p0=$("$TS" -p 0)
check "-o (no id) = the running job" 0 "$o0"$'\n' '' -- "$TS" -o
check "-p (no id) = the running job" 0 "$p0"$'\n' '' -- "$TS" -p
case $o0 in
    "$T"/ts-out.??????) pass "output file is \$TMPDIR/ts-out.XXXXXX ($o0)" ;;
    *) fail "output file is \$TMPDIR/ts-out.XXXXXX" "got $o0" ;;
esac
ok "$([[ $p0 =~ ^[1-9][0-9]*$ ]] && kill -0 "$p0"; echo $?)" "-p prints the pid of a live process ($p0)"
check "-o 1 (queued)" 255 '' $'Error in the request: Job 1 not finished or not running.\n' -- "$TS" -o 1
check "-p 1 (queued)" 255 '' $'Error in the request: Job 1 not finished or not running.\n' -- "$TS" -p 1
check "running job's output file mode 0600" 0 $'600\n' '' -- stat -c %a "$o0"
release go0
check "-w 0" 0 '' '' -- "$TS" -w 0
check "-w 1" 1 '' '' -- "$TS" -w 1
o1=$("$TS" -o 1)
check "output holds stdout and stderr" 0 $'to-out\nto-err\n' '' -- cat "$o0"
check "-o 0 after finishing" 0 "$o0"$'\n' '' -- "$TS" -o 0
check "-p 0 after finishing (same pid)" 0 "$p0"$'\n' '' -- "$TS" -p 0
check "-o (no id, nothing running) = last finished (1)" 0 "$o1"$'\n' '' -- "$TS" -o
check "-o -1 is the same" 0 "$o1"$'\n' '' -- "$TS" -o -1
check "job 1 output" 0 $'one\n' '' -- cat "$o1"
check "finished output file mode 0600" 0 $'600\n' '' -- stat -c %a "$o1"

# -o picks the most recently *finished* job, not the highest id (2 slots)
check "-S 2" 0 '' '' -- "$TS" -S 2
check "job 2" 0 $'2\n' '' -- "$TS" waitfor go2
check "job 3" 0 $'3\n' '' -- "$TS" waitfor go3
wait_running 2
wait_running 3
check "-o (no id, two running) = head of the queue (2)" 0 "$("$TS" -o 2)"$'\n' '' -- "$TS" -o
release go3
check "-w 3" 0 '' '' -- "$TS" -w 3
release go2
check "-w 2" 0 '' '' -- "$TS" -w 2
check "-o = last finished = job 2" 0 "$("$TS" -o 2)"$'\n' '' -- "$TS" -o
check "-p = job 2's pid" 0 "$("$TS" -p 2)"$'\n' '' -- "$TS" -p

# the head of the queue is used even if it is only queued (-N 2 job waiting while job 5 runs)
check "job 4 blocker" 0 $'4\n' '' -- "$TS" waitfor go4
check "job 5 (-N 2) waits" 0 $'5\n' '' -- "$TS" -N 2 true
check "job 6 overtakes it" 0 $'6\n' '' -- "$TS" waitfor go6
wait_running 6
release go4
check "-w 4" 0 '' '' -- "$TS" -w 4
check "-s 5 queued" 0 $'queued\n' '' -- "$TS" -s 5
check "-o (no id): queued head has no output" 255 '' $'The output is not stored.\n' -- "$TS" -o
check "-p (no id): queued head has pid 0" 0 $'0\n' '' -- "$TS" -p
release go6
check "-w 5" 0 '' '' -- "$TS" -w 5

# -n jobs: output not stored
check "-n job" 0 '' '' -- "$TS" -n sh -c 'echo lost'
check "-w 7" 0 '' '' -- "$TS" -w 7
check "-o 7 (-n)" 255 '' $'The output is not stored.\n' -- "$TS" -o 7
check "-o (no id, last finished is -n)" 255 '' $'The output is not stored.\n' -- "$TS" -o
run_cmd "$TS" -p 7
ok "$([ "$RC" = 0 ] && [[ $OUT =~ ^[1-9][0-9]*$'\n'$ ]] && [ -z "$ERR" ]; echo $?)" "-p 7 (-n) prints a pid"

# skipped jobs
check "job 8 fails" 0 $'8\n' '' -- "$TS" false
check "job 9 depends on it" 0 $'9\n' '' -- "$TS" -d true
check "-w 9 skipped" 255 '' '' -- "$TS" -w 9
check "-o 9 (skipped)" 255 '' $'Error in the request: Job 9 was skipped due to a dependency.\n' -- "$TS" -o 9
check "-p 9 (skipped)" 255 '' $'Error in the request: Job 9 was skipped due to a dependency.\n' -- "$TS" -p 9
check "-o (no id, last is skipped)" 255 '' $'Error in the request: The last job was skipped due to a dependency.\n' -- "$TS" -o
check "-p (no id, last is skipped)" 255 '' $'Error in the request: The last job was skipped due to a dependency.\n' -- "$TS" -p

# the job's stdin is empty: cat ends at once
check "job 10: cat" 0 $'10\n' '' -- "$TS" cat
check "-w 10 (cat sees EOF at once)" 0 '' '' -- timeout 20 "$TS" -w 10
check "cat printed nothing" 0 '' '' -- cat "$("$TS" -o 10)"
check "job 11: read from stdin" 0 $'11\n' '' -- "$TS" sh -c 'if read x; then echo "read: $x"; else echo eof; fi'
check "-w 11" 0 '' '' -- timeout 20 "$TS" -w 11
check "job saw EOF" 0 $'eof\n' '' -- cat "$("$TS" -o 11)"

# output file mode is 0600 whatever the umask; it is created in the enqueuer's TMPDIR
mkdir "$T/other"
check "job 12 with umask 000 and TMPDIR=\$T/other" 0 $'12\n' '' -- sh -c 'umask 000; TMPDIR="$1" exec "$TS" echo x' sh "$T/other"
check "-w 12" 0 '' '' -- "$TS" -w 12
o12=$("$TS" -o 12)
case $o12 in
    "$T"/other/ts-out.??????) pass "output file in the enqueuer's TMPDIR" ;;
    *) fail "output file in the enqueuer's TMPDIR" "got $o12" ;;
esac
check "mode 0600 despite umask 000" 0 $'600\n' '' -- stat -c %a "$o12"
check "content" 0 $'x\n' '' -- cat "$o12"

# large output arrives complete
check "job 13: 100000 lines" 0 $'13\n' '' -- "$TS" seq 100000
check "-w 13" 0 '' '' -- "$TS" -w 13
check "complete output" 0 "$(seq 100000 | md5sum)"$'\n' '' -- sh -c 'md5sum < "$("$TS" -o 13)"'

done_testing
