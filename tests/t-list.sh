#!/bin/bash
# List format (ts-spec.md §2.1): header, queued/running/finished/skipped lines, labels, ordering.
. "$(dirname "$0")/lib.sh"

check "empty list is just the header" 0 $'ID   State      Output               E-Level  Times(r/u/s)   Command [run=0/1]\n' '' -- "$TS"
check "-l is the same" 0 $'ID   State      Output               E-Level  Times(r/u/s)   Command [run=0/1]\n' '' -- "$TS" -l

check "job 0: blocker" 0 $'0\n' '' -- "$TS" waitfor go0
wait_running 0
check "job 1: labelled" 0 $'1\n' '' -- "$TS" -L lab echo q
check "job 2: -n" 0 '' '' -- "$TS" -n true
check "job 3: empty label, -n" 0 '' '' -- "$TS" -L '' -n echo x
check "job 4: -d" 0 $'4\n' '' -- "$TS" -d true
check "job 5: -D 0 with label" 0 $'5\n' '' -- "$TS" -D 0 -L l2 true
check "job 6: -D 1, label with spaces" 0 $'6\n' '' -- "$TS" -D 1 -L 'a b' echo x

# exact bytes: the running path is followed by 1+8+1+14+1 = 25 spaces, "(file)"/"stdout" by 39
o0=$("$TS" -o 0)
expected="ID   State      Output               E-Level  Times(r/u/s)   Command [run=1/1]
0    running    $o0                         waitfor go0
1    queued     (file)                                       [lab]echo q
2    queued     stdout                                       true
3    queued     stdout                                       []echo x
4    queued     (file)                                       [3]&& true
5    queued     (file)                                       [0]&& [l2]true
6    queued     (file)                                       [1]&& [a b]echo x
"
check "list with running and queued jobs (exact)" 0 "$expected" '' -- "$TS"

release go0
check "-w 6" 0 '' '' -- "$TS" -w 6
expected="$(HDR 0 1
LF 0 OUT 0 'waitfor go0'
LF 1 OUT 0 '[lab]echo q'
LF 2 stdout 0 true
LF 3 stdout 0 '[]echo x'
LF 4 OUT 0 '[3]&& true'
LF 5 OUT 0 '[0]&& [l2]true'
LF 6 OUT 0 '[1]&& [a b]echo x')
"
check_norm "all finished" 0 "$expected" '' -- "$TS"
run_cmd "$TS"
case $OUT in
    *"0    finished   $o0 0        "[0-9]*.[0-9][0-9]/[0-9]*.[0-9][0-9]/[0-9]*.[0-9][0-9]" waitfor go0"$'\n'*) pass "finished line with real path and times" ;;
    *) fail "finished line with real path and times"; _show "$OUT" ;;
esac

check "-C clears the finished list" 0 '' '' -- "$TS" -C
check "list empty again" 0 "$(HDR 0 1)"$'\n' '' -- "$TS"
ok "$([ -e "$o0" ]; echo $?)" "-C leaves output files on disk"

# finished list is in finishing order, not id order (2 slots, jobs released in reverse order)
check "-S 2" 0 '' '' -- "$TS" -S 2
check "job 7" 0 $'7\n' '' -- "$TS" waitfor go7
check "job 8" 0 $'8\n' '' -- "$TS" waitfor go8 3
check "job 9 (queued behind)" 0 $'9\n' '' -- "$TS" waitfor go9 200
wait_running 7
wait_running 8
check_norm "two running, one queued, [run=2/2]" 0 "$(HDR 2 2
LQ 7 running OUT 'waitfor go7'
LQ 8 running OUT 'waitfor go8 3'
LQ 9 queued '(file)' 'waitfor go9 200')
" '' -- "$TS"
release go8
check "-w 8 (exit 3)" 3 '' '' -- "$TS" -w 8
wait_running 9
check_norm "job 8 finished first; 9 started" 0 "$(HDR 2 2
LQ 7 running OUT 'waitfor go7'
LQ 9 running OUT 'waitfor go9 200'
LF 8 OUT 3 'waitfor go8 3')
" '' -- "$TS"
release go9
check "-w 9 (exit 200)" 200 '' '' -- "$TS" -w 9
release go7
check "-w 7" 0 '' '' -- "$TS" -w 7
check_norm "finished in order 8, 9, 7" 0 "$(HDR 0 2
LF 8 OUT 3 'waitfor go8 3'
LF 9 OUT -56 'waitfor go9 200'
LF 7 OUT 0 'waitfor go7')
" '' -- "$TS"

# skipped job line, '&& ' for a -d with nothing before it, -l cmd
check "-C" 0 '' '' -- "$TS" -C
check "-d with an empty finished list (after a success)" 0 $'10\n' '' -- "$TS" -d true
check "-w 10" 0 '' '' -- "$TS" -w 10
check "job 11 fails" 0 $'11\n' '' -- "$TS" false
check "-w 11" 1 '' '' -- "$TS" -w 11
check "job 12 depends on 11" 0 $'12\n' '' -- "$TS" -d echo never
check "-w 12 (skipped)" 255 '' '' -- "$TS" -w 12
check "-s 12" 0 $'skipped\n' '' -- "$TS" -s 12
check "-l cmd queues (13)" 0 $'13\n' '' -- "$TS" -l -L z true
check "-w 13" 0 '' '' -- "$TS" -w 13
check_norm "skipped line and && line" 0 "$(HDR 0 2
LF 10 OUT 0 '&& true'
LF 11 OUT 1 false
LQ 12 skipped '(no output)' '[11]&& echo never'
LF 13 OUT 0 '[z]true')
" '' -- "$TS"

done_testing
