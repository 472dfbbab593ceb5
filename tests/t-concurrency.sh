#!/bin/bash
# Concurrency: racing clients start exactly one server (it binds and listens before it forks: README
# "How it works"); queued jobs cost no processes (a runner per running job only).
. "$(dirname "$0")/lib.sh"

# ---- 50 clients at once against a fresh socket ----
# Counting servers: a server is a process holding a *listening* unix socket bound to $TS_SOCKET.
# /proc/net/unix lists every bound socket with its path and flags (00010000 = listening), even after its
# file was unlinked or replaced, so an orphaned second server would still be counted; /proc/PID/fd links
# ("socket:[INODE]") give the processes holding it. See listen_inodes / server_pids in lib.sh.
ok "$([ ! -e "$TS_SOCKET" ]; echo $?)" "fresh socket path"
for i in $(seq 50); do
    "$TS" true >"$T/c.$i" 2>&1 </dev/null &
done
wait
ids=$(cat "$T"/c.* | sort -n | tr '\n' ' ')
is "$ids" "$(seq 0 49 | tr '\n' ' ')" "50 racing clients got the distinct ids 0..49 and printed nothing else"
run_cmd "$TS"
is "$(printf '%s' "$OUT" | wc -l)" 51 "the list has the header and 50 jobs"
for i in $(seq 0 49); do "$TS" -w "$i" >/dev/null 2>&1; done
check "all 50 finished" 0 "$(for i in $(seq 50); do echo finished; done)"$'\n' '' \
    -- sh -c 'for i in $(seq 0 49); do "$TS" -s $i; done'
is "$(listen_inodes | wc -l)" 1 "exactly one listening socket bound to the path"
is "$(server_pids | wc -l)" 1 "exactly one server process"

# ---- 200 jobs queued behind a running job cost no processes ----
if ts_only; then
    check "-C" 0 '' '' -- "$TS" -C
    check "blocker job 50" 0 $'50\n' '' -- "$TS" sleep 300
    wait_running 50
    for i in $(seq 200); do "$TS" true >/dev/null 2>&1 </dev/null; done
    check "200 jobs queued (last is 250)" 0 $'queued\n' '' -- "$TS" -s 250
    pids=$(procs_with_env "TS_SOCKET=$TS_SOCKET")
    n=$(echo $pids | wc -w)
    names=$(for p in $pids; do cat "/proc/$p/comm" 2>/dev/null; done | sort | uniq -c | awk '{printf " %s %s", $1, $2}')
    if [ "$n" -le 5 ]; then
        pass "processes with this TS_SOCKET in their environment: $n ($names)"
    else
        fail "at most 5 processes (server, spawner, spare runner, runner, job) with this TS_SOCKET in their environment" \
            "found $n:" "$(for p in $pids; do echo "  $p: $(cat /proc/$p/comm 2>/dev/null): $(tr '\0' ' ' </proc/$p/cmdline 2>/dev/null)"; done)"
    fi
    run_cmd "$TS"
    is "$(printf '%s' "$OUT" | grep -c ' queued ')" 200 "the list shows 200 queued jobs"
    check "kill the blocker" 0 '' '' -- "$TS" -k 50
    check "-w 50 (terminated)" 255 '' '' -- "$TS" -w 50
    check "the 200 jobs run through (-w 250)" 0 '' '' -- timeout 120 "$TS" -w 250
    is "$(server_pids | wc -l)" 1 "still exactly one server"
else
    for d in "-C" "blocker job 50" "job 50 is running" "200 jobs queued (last is 250)" \
             "at most 5 processes (server, spawner, spare runner, runner, job) with this TS_SOCKET in their environment" \
             "the list shows 200 queued jobs" "kill the blocker" "-w 50 (terminated)" \
             "the 200 jobs run through (-w 250)" "still exactly one server"; do
        skip "$d" "tsp keeps one client process per queued job"
    done
fi

done_testing
