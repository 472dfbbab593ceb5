#!/bin/bash
# Slots (ts-spec.md §1.2 -S, §1.3 -N, §3 TS_SLOTS, §4.5 scheduling).
. "$(dirname "$0")/lib.sh"

check "-S prints 1 by default" 0 $'1\n' '' -- "$TS" -S
check "-S 3 sets silently" 0 '' '' -- "$TS" -S 3
check "-S prints 3" 0 $'3\n' '' -- "$TS" -S
check "header shows [run=0/3]" 0 "$(HDR 0 3)"$'\n' '' -- "$TS"
check "-K" 0 '' '' -- "$TS" -K

check "TS_SLOTS=4 at server start" 0 $'4\n' '' -- env TS_SLOTS=4 "$TS" -S
check "TS_SLOTS is read only at server start" 0 $'4\n' '' -- env TS_SLOTS=7 "$TS" -S
check "-K" 0 '' '' -- "$TS" -K
check "TS_SLOTS=-4 means 4" 0 $'4\n' '' -- env TS_SLOTS=-4 "$TS" -S
check "-K" 0 '' '' -- "$TS" -K
check "TS_SLOTS=0 is ignored (1)" 0 $'1\n' '' -- env TS_SLOTS=0 "$TS" -S
check "-K" 0 '' '' -- "$TS" -K
check "TS_SLOTS=2x is atoi'd (2)" 0 $'2\n' '' -- env TS_SLOTS=2x "$TS" -S
check "-K" 0 '' '' -- "$TS" -K

# ---- -N: a job that needs more slots than are free is overtaken by smaller ones ----
check "-S 2" 0 '' '' -- "$TS" -S 2
check "job 0 (1 slot)" 0 $'0\n' '' -- "$TS" waitfor go0
wait_running 0
check "job 1 needs 2 slots" 0 $'1\n' '' -- "$TS" -N 2 waitfor go1
check "job 2 needs 1 slot" 0 $'2\n' '' -- "$TS" -N 1 waitfor go2
wait_running 2
check "-s 1: the -N 2 job still waits" 0 $'queued\n' '' -- "$TS" -s 1
check_norm "job 2 overtook job 1, [run=2/2]" 0 "$(HDR 2 2
LQ 0 running OUT 'waitfor go0'
LQ 1 queued '(file)' 'waitfor go1'
LQ 2 running OUT 'waitfor go2')
" '' -- "$TS"
release go0
check "-w 0" 0 '' '' -- "$TS" -w 0
check "-s 1: one slot free is not enough" 0 $'queued\n' '' -- "$TS" -s 1
release go2
check "-w 2" 0 '' '' -- "$TS" -w 2
wait_running 1
check_norm "job 1 runs alone using both slots" 0 "$(HDR 2 2
LQ 1 running OUT 'waitfor go1'
LF 0 OUT 0 'waitfor go0'
LF 2 OUT 0 'waitfor go2')
" '' -- "$TS"
release go1
check "-w 1" 0 '' '' -- "$TS" -w 1
check "-C" 0 '' '' -- "$TS" -C

# ---- -N greater than the slot count waits but does not block later jobs ----
check "job 3 needs 3 slots (max 2)" 0 $'3\n' '' -- "$TS" -N 3 true
check "job 4" 0 $'4\n' '' -- "$TS" true
check "-w 4 (not blocked by job 3)" 0 '' '' -- "$TS" -w 4
check "-s 3 still queued" 0 $'queued\n' '' -- "$TS" -s 3
check "-S 3 lets it run" 0 '' '' -- "$TS" -S 3
check "-w 3" 0 '' '' -- "$TS" -w 3
check "-C" 0 '' '' -- "$TS" -C

# ---- -N 0: needs a free slot to start, occupies none ----
check "-S 1" 0 '' '' -- "$TS" -S 1
check "job 5 blocker" 0 $'5\n' '' -- "$TS" waitfor go5
wait_running 5
check "job 6 -N 0" 0 $'6\n' '' -- "$TS" -N 0 waitfor go6
check "job 7 -N -3 (negative = 0)" 0 $'7\n' '' -- "$TS" -N -3 waitfor go7
check "-s 6: no free slot, queued" 0 $'queued\n' '' -- "$TS" -s 6
check "-S 2" 0 '' '' -- "$TS" -S 2
wait_running 6
wait_running 7
check_norm "three running, [run=1/2]" 0 "$(HDR 1 2
LQ 5 running OUT 'waitfor go5'
LQ 6 running OUT 'waitfor go6'
LQ 7 running OUT 'waitfor go7')
" '' -- "$TS"
check "job 8 (1 slot) also fits" 0 $'8\n' '' -- "$TS" waitfor go8
wait_running 8
check "-S 1: lowering kills nothing" 0 '' '' -- "$TS" -S 1
check_norm "[run=2/1] after lowering" 0 "$(HDR 2 1
LQ 5 running OUT 'waitfor go5'
LQ 6 running OUT 'waitfor go6'
LQ 7 running OUT 'waitfor go7'
LQ 8 running OUT 'waitfor go8')
" '' -- "$TS"
check "job 9 (-N 0) cannot start while busy >= max" 0 $'9\n' '' -- "$TS" -N 0 true
release go5
check "-w 5" 0 '' '' -- "$TS" -w 5
release go6
check "-w 6" 0 '' '' -- "$TS" -w 6
release go7
check "-w 7" 0 '' '' -- "$TS" -w 7
check "-s 9: still queued ([run=1/1])" 0 $'queued\n' '' -- "$TS" -s 9
release go8
check "-w 8" 0 '' '' -- "$TS" -w 8
# tsp 1.0.1's server dies when a -N 0 job ends while no other job is running ("Wrong state in the
# server. busy_slots = 0 instead of greater than 0" in the .error log; waiters get "Error in wait_job").
if ts_only; then
    check "-w 9 (-N 0 job running alone)" 0 '' '' -- "$TS" -w 9
    check_norm "all finished, [run=0/1]" 0 "$(HDR 0 1
LF 5 OUT 0 'waitfor go5'
LF 6 OUT 0 'waitfor go6'
LF 7 OUT 0 'waitfor go7'
LF 8 OUT 0 'waitfor go8'
LF 9 OUT 0 true)
" '' -- "$TS"
    check "-S still 1" 0 $'1\n' '' -- "$TS" -S
else
    skip "-w 9 (-N 0 job running alone)" "tsp 1.0.1 server aborts (busy_slots = 0)"
    skip "all finished, [run=0/1]" "tsp 1.0.1 server aborts (busy_slots = 0)"
    skip "-S still 1" "tsp 1.0.1 server aborts (busy_slots = 0)"
fi

done_testing
