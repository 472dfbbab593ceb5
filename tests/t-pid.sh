#!/bin/bash
# The job is its own process group and session leader: pid = pgid = sid (ts-spec.md §4.1).
. "$(dirname "$0")/lib.sh"

check "job 0" 0 $'0\n' '' -- "$TS" sh -c 'waitfor go0 & wait'
wait_running 0
P=$("$TS" -p 0)
check "-p without id gives the same pid" 0 "$P"$'\n' '' -- "$TS" -p
check "pgid and sid of the job equal its pid" 0 "$P $P"$'\n' '' -- sh -c 'ps -o pgid=,sid= -p "$1" | awk "{print \$1, \$2}"' sh "$P"
check "the pid runs the job's command" 0 $'sh\n' '' -- ps -o comm= -p "$P"
ok "$([ "$(ps -o pgid= -p "$P" | tr -d ' ')" != "$(ps -o pgid= -p $$ | tr -d ' ')" ]; echo $?)" "job is not in the test's process group"
ok "$([ "$P" != "$(server_pids)" ]; echo $?)" "job pid is not the server's"
has_child() { child=$(pgrep -P "$P" | head -n 1); [ -n "$child" ]; }
eventually "the job has forked its child" -- has_child
has_child
check "the job's child is in the same group and session" 0 "$P $P"$'\n' '' -- sh -c 'ps -o pgid=,sid= -p "$1" | awk "{print \$1, \$2}"' sh "$child"
check "kill -- -PID terminates the whole job" 0 '' '' -- kill -TERM -- "-$P"
check "-w 0: killed => 255" 255 '' '' -- "$TS" -w 0
gone() { ! kill -0 "$child" 2>/dev/null; }
eventually "the job's child is gone too" -- gone

# -n job and -f job are session leaders too
check "-n job" 0 '' '' -- "$TS" -n waitfor go1
wait_running 1
P1=$("$TS" -p 1)
check "-n job: pgid and sid equal its pid" 0 "$P1 $P1"$'\n' '' -- sh -c 'ps -o pgid=,sid= -p "$1" | awk "{print \$1, \$2}"' sh "$P1"
release go1
check "-w 1" 0 '' '' -- "$TS" -w 1
check "-f job reports its own pgid/sid" 0 $'2\n' '' -- "$TS" -f sh -c 'ps -o pid=,pgid=,sid= -p $$ | awk "{print (\$1==\$2 && \$2==\$3) ? \"leader\" : \"not leader\"}"'
check "-f job output" 0 $'leader\n' '' -- cat "$("$TS" -o 2)"
run_cmd "$TS" -p 2
ok "$([ "$RC" = 0 ] && [[ $OUT =~ ^[1-9][0-9]*$'\n'$ ]]; echo $?)" "-p 2 after it finished prints its pid"

done_testing
