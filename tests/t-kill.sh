#!/bin/bash
# -K (ts-spec.md §1.2, §4.9): kill the server; restart from scratch.
. "$(dirname "$0")/lib.sh"

socket_gone() { [ ! -e "$TS_SOCKET" ]; }

check "-K on a queue that never ran: rc 0" 0 '' '' -- "$TS" -K
eventually "no server left for the socket" -- no_server
eventually "no socket file left" -- socket_gone

check "job 0" 0 $'0\n' '' -- "$TS" true
check "job 1" 0 $'1\n' '' -- "$TS" true
check "-w" 0 '' '' -- "$TS" -w
ok "$([ -S "$TS_SOCKET" ]; echo $?)" "socket file exists while the server runs"
pids=$(server_pids)
is "$(echo "$pids" | wc -w)" 1 "exactly one server process holds the socket"
check "-K: rc 0, no output" 0 '' '' -- "$TS" -K
eventually "socket file removed" -- socket_gone
eventually "server gone" -- no_server
server_dead() { local p; for p in $pids; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
eventually "server process exited" -- server_dead
check "-K on a dead queue: rc 0" 0 '' '' -- "$TS" -K
check "-K again" 0 '' '' -- "$TS" -K
check_norm "new server: empty list" 0 "$(HDR 0 1)"$'\n' '' -- "$TS"
check "new server: ids restart at 0" 0 $'0\n' '' -- "$TS" true
check "-w" 0 '' '' -- "$TS" -w
check "slots back to default after -K" 0 '' '' -- "$TS" -S 3
check "-K" 0 '' '' -- "$TS" -K
check "-S after restart is 1" 0 $'1\n' '' -- "$TS" -S

# -K with a running and a queued job: the running job finishes normally, the queued one never runs,
# the next server starts empty
check "-K" 0 '' '' -- "$TS" -K
check "job 0 (running)" 0 $'0\n' '' -- "$TS" sh -c 'waitfor go0; echo done >marker0'
check "job 1 (queued)" 0 $'1\n' '' -- "$TS" sh -c 'echo ran >marker1'
wait_running 0
runner=$(sed 's/.*) //' "/proc/$("$TS" -p 0)/stat" | cut -d' ' -f2)
check "-K" 0 '' '' -- "$TS" -K
eventually "socket file removed" -- socket_gone
# The job's runner (tsp: its client) waits for the job without a server, and quietly: CPU it uses in half
# a second (schedstat, ns). A runner that polled its closed connection used all of a CPU.
cpu_ns() { cut -d' ' -f1 "/proc/$1/schedstat" 2>/dev/null || echo 0; }
a=$(cpu_ns "$runner") t0=$(date +%s%N)
while [ $(( $(date +%s%N) - t0 )) -lt 500000000 ]; do sleep 0.05; done
used=$(( ($(cpu_ns "$runner") - a) / 1000000 ))
ok "$([ "$used" -lt 50 ]; echo $?)" "the running job's runner ($runner) waits quietly: ${used} ms of CPU in 0.5 s"
release go0
marker0() { [ -s "$T/marker0" ]; }
eventually "the running job went on and finished" -- marker0
check_norm "new server starts empty" 0 "$(HDR 0 1)"$'\n' '' -- "$TS"
check "ids from 0" 0 $'0\n' '' -- "$TS" true
check "-w" 0 '' '' -- "$TS" -w
ok "$([ ! -e "$T/marker1" ]; echo $?)" "the queued job never ran"

# a server killed hard leaves a stale socket; the next client starts a fresh server
check "-K" 0 '' '' -- "$TS" -K
eventually "no server" -- no_server
check "job 0" 0 $'0\n' '' -- "$TS" true
check "-w" 0 '' '' -- "$TS" -w
pids=$(server_pids)
is "$(echo "$pids" | wc -w)" 1 "one server"
kill -9 $pids
eventually "server killed" -- no_server
ok "$([ -S "$TS_SOCKET" ]; echo $?)" "stale socket file left behind"
if ts_only; then
    # ts keeps a journal: a crashed server's queue comes back (README "The queue survives its server")
    check "next client works; the queue survived the crash (id 1)" 0 $'1\n' '' -- "$TS" true
    check "-w" 0 '' '' -- "$TS" -w
    check_norm "list after the crash" 0 "$(HDR 0 1; LF 0 OUT 0 true; LF 1 OUT 0 true)"$'\n' '' -- "$TS"
else
    check "next client starts a fresh server (id 0)" 0 $'0\n' '' -- "$TS" true
    check "-w" 0 '' '' -- "$TS" -w
    check_norm "list after the crash" 0 "$(HDR 0 1; LF 0 OUT 0 true)"$'\n' '' -- "$TS"
fi
is "$(server_pids | wc -w)" 1 "one server again"

done_testing
