#!/bin/bash
# Several dependencies (README "Differences", ts.1 -D and --after): -D A,B waits for all of them and runs
# only if every one ended well; --after=A,B waits for them to end whatever their result; -i says which it
# still waits for; a server killed with SIGKILL in the middle comes back with what the jobs learned; a
# removed or skipped dependency fails -D and ends --after; a malformed list is refused. ts-only.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler 1.0 has no dependency lists"

# kill9 DESC: SIGKILL the server and wait until that process is gone (a runner may start the next one).
pid_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" = Z ]; }
kill9() {
    local p
    p=$(server_pids | head -n 1)
    if [ -z "$p" ]; then fail "$1" "no server was up"; return; fi
    kill -KILL "$p"
    eventually "$1" -- pid_gone "$p"
}
info_has() { "$TS" -i "$1" | grep -qxF "$2"; }

check "-S 4" 0 '' '' -- "$TS" -S 4
check "job 0" 0 $'0\n' '' -- "$TS" waitfor a
check "job 1 (will fail)" 0 $'1\n' '' -- "$TS" waitfor b 3
check "job 2: -D 0,1" 0 $'2\n' '' -- "$TS" -D 0,1 true
check "job 3: --after=0,1" 0 $'3\n' '' -- "$TS" --after=0,1 echo after
check "job 4: --after=1 -D 0" 0 $'4\n' '' -- "$TS" --after=1 -D 0 echo mixed
wait_running 0
wait_running 1
check_norm "-l shows each list" 0 "$(HDR 2 4)"$'\n'"$(LQ 0 running OUT 'waitfor a')
$(LQ 1 running OUT 'waitfor b 3')
$(LQ 2 queued '(file)' '[0,1]&& true')
$(LQ 3 queued '(file)' '[0,1]; echo after')
$(LQ 4 queued '(file)' '[1]; [0]&& echo mixed')
" '' -- "$TS" -l
ok "$(info_has 2 'Waiting for jobs 0, 1 to end'; echo $?)" "-i 2 says it waits for jobs 0 and 1"
release a
check "-w 0" 0 '' '' -- "$TS" -w 0
ok "$(info_has 2 'Waiting for job 1 to end'; echo $?)" "-i 2 now waits for job 1 only"
check "job 2 is still queued" 0 $'queued\n' '' -- "$TS" -s 2

kill9 "the server is killed (SIGKILL) while job 1 runs"
check "a new server: job 2 still queued" 0 $'queued\n' '' -- "$TS" -s 2
ok "$(info_has 3 'Waiting for job 1 to end'; echo $?)" "after the restart, -i 3 waits for job 1 only"
release b
check "-w 1: it failed" 3 '' '' -- "$TS" -w 1
check "-w 3: --after ran all the same" 0 '' '' -- "$TS" -w 3
check "-w 4: 0 ended well, 1 ended" 0 '' '' -- "$TS" -w 4
wait_state 2 skipped
check "-c 3" 0 $'after\n' '' -- "$TS" -c 3

# ---- a removed dependency: -D is skipped, --after runs ----
check "-S 1" 0 '' '' -- "$TS" -S 1
check "job 5 (head)" 0 $'5\n' '' -- "$TS" waitfor h
check "job 6 (to be removed)" 0 $'6\n' '' -- "$TS" true
check "job 7: -D 5,6" 0 $'7\n' '' -- "$TS" -D 5,6 true
check "job 8: --after=5,6" 0 $'8\n' '' -- "$TS" --after=5,6 true
check "-r 6" 0 '' '' -- "$TS" -r 6
release h
check "-w 8: --after of a removed job runs" 0 '' '' -- "$TS" -w 8
wait_state 7 skipped
check "job 9: -D 7,5 (7 was skipped)" 0 $'9\n' '' -- "$TS" -D 7,5 true
check "job 10: --after=7,5" 0 $'10\n' '' -- "$TS" --after=7,5 true
check "-w 10" 0 '' '' -- "$TS" -w 10
wait_state 9 skipped

# ---- malformed lists: an error, exit 255, nothing queued ----
for bad in 1, 1,,2 1,x 0,-1 ' 1,2'; do
    check "-D '$bad' is refused" 255 '' "-D needs a job id or a list of job ids such as 3,4,5 (at most 1024), not '$bad'."$'\n' -- "$TS" -D "$bad" true
done
for bad in '' x -1 3,; do
    check "--after='$bad' is refused" 255 '' "--after needs a list of job ids such as 3,4 (at most 1024), not '$bad'."$'\n' -- "$TS" --after="$bad" true
done
check "nothing was queued: the next job is 11" 0 $'11\n' '' -- "$TS" true
check "-D 7 alone is task-spooler's -D" 0 $'12\n' '' -- "$TS" -D 7 true
wait_state 12 skipped
done_testing
