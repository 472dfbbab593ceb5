#!/bin/bash
# Shared queues (README "Sharing a queue"): two users feed one queue
# through the `q` wrapper. Needs root to switch uids (setpriv); skipped otherwise.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler has no access control"
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
    echo "1..0 # SKIP needs root and setpriv to act as two users"
    exit 0
fi

A=4001 B=4002
chmod 755 "$T"
mkdir -m 1777 "$T/shared"
mkdir -m 700 "$T/ta" "$T/tb"
chown "$A" "$T/ta"
chown "$B" "$T/tb"
chmod 777 "$T/bin"
Q="$T/shared/TS_SOCKET"
printf '#!/bin/sh\nTS_SOCKET=$(dirname -- "$0")/shared/TS_SOCKET TS_SOCKET_MODE=0666 exec "%s" -L "$USER" "$@"\n' "$TS" >"$T/q"
chmod 755 "$T/q"
# The binary must be reachable by the other uids.
d=$(dirname "$TS")
while [ "$d" != / ] && [ -n "$d" ]; do chmod o+x "$d" 2>/dev/null; d=$(dirname "$d"); done
as_a() { env -i PATH="$T/bin:/usr/bin:/bin" USER=a TMPDIR="$T/ta" setpriv --reuid=$A --regid=$A --clear-groups "$@"; }
as_b() { env -i PATH="$T/bin:/usr/bin:/bin" USER=b TMPDIR="$T/tb" SECRET_B=xyzzy-b-secret \
    setpriv --reuid=$B --regid=$B --clear-groups "$@"; }
as_root() { env TS_SOCKET="$Q" "$TS" "$@"; }
# The other users' runners are their own `ts` processes (client-held): one whose job was still queued when
# the queue was emptied waits for a's server to come back, as after a crash. -K, then stop them.
extra_cleanup() {
    as_root -K
    local p
    for p in $(procs_with_env "TMPDIR=$T/ta") $(procs_with_env "TMPDIR=$T/tb"); do
        [ "$(head -c "${#TS}" "/proc/$p/cmdline" 2>/dev/null)" == "$TS" ] && kill -TERM "$p"
    done
}
# The live server's pid: the process listening on $Q.
qserver() { TS_SOCKET="$Q" server_pids | head -n 1; }
pid_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" = Z ]; }

check "a starts the shared server: job 0" 0 $'0\n' '' -- as_a "$T/q" sh -c 'id -u; waitfor go'
check "the socket has TS_SOCKET_MODE" 0 $'666 4001\n' '' -- stat -c '%a %u' "$Q"
check "b queues a job: 1" 0 $'1\n' '' -- as_b "$T/q" sh -c 'id -u; echo "secret=$SECRET_B"'
check "b's second job: 2" 0 $'2\n' '' -- as_b "$T/q" sh -c 'exit 3'
check "a's third: 3" 0 $'3\n' '' -- as_a "$T/q" true
for who in as_a as_b; do
    run_cmd $who "$T/q"
    is "$(printf '%s' "$OUT" | sed 1d | awk '{print $1}' | tr '\n' ,)" "0,1,2,3," "$who sees every job"
    [[ $OUT == *"[a]sh -c id -u; waitfor go"* && $OUT == *'[b]sh -c id -u; echo "secret=$SECRET_B"'* ]] \
        && pass "$who sees the labels" || fail "$who sees the labels" "$OUT"
done

# Refusals: b may not touch a's jobs nor the server; a (the server's owner) and root may.
refuse() {   # DESC WANT -- CMD...: rc 255, "Error in the request: " and the reason
    local desc=$1 want=$2
    shift 3
    run_cmd "$@"
    is "$RC/$OUT" "255/" "$desc: refused, rc 255"
    [[ $ERR == "Error in the request: "*"$want"* ]] && pass "$desc: says why" || fail "$desc: says why" "got: $ERR"
}
refuse "b -r a's job" "Job 3 belongs to uid 4001: only its owner, the server's owner (uid 4001) or root may remove it." -- as_b "$T/q" -r 3
refuse "b -k a's job" "Job 0 belongs to uid 4001" -- as_b "$T/q" -k 0
refuse "b -u a's job" "may urge it" -- as_b "$T/q" -u 3
refuse "b -U with a's job" "may move it" -- as_b "$T/q" -U 2-3
refuse "b -S 2" "Only the server's owner (uid 4001) or root may change the slots." -- as_b "$T/q" -S 2
refuse "b -K" "Only the server's owner (uid 4001) or root may stop the server." -- as_b "$T/q" -K
check "b may read the state of a's job" 0 $'queued\n' '' -- as_b "$T/q" -s 3
check "b may urge its own job" 0 '' '' -- as_b "$T/q" -u 2
check "b may swap its own jobs" 0 '' '' -- as_b "$T/q" -U 1-2
check "a (the server's owner) may move b's jobs" 0 '' '' -- as_a "$T/q" -U 1-2
check "root may change the slots" 0 '' '' -- as_root -S 1
check "a may change the slots" 0 '' '' -- as_a "$T/q" -S 1

# The jobs run as their submitters, with output files of their own.
release go
for i in 0 1 2 3; do as_a "$T/q" -w $i >/dev/null 2>&1; done
check "b's job 1 ran as b" 0 $'4002\nsecret=xyzzy-b-secret\n' '' -- cat "$(as_b "$T/q" -o 1)"
check "a's job 0 ran as a" 0 $'4001\n' '' -- cat "$(as_a "$T/q" -o 0)"
check "b's output file belongs to b" 0 $'4002 600\n' '' -- stat -c '%u %a' "$(as_b "$T/q" -o 1)"
check "a's output file belongs to a" 0 $'4001 600\n' '' -- stat -c '%u %a' "$(as_a "$T/q" -o 0)"
is "$(as_a "$T/q" | awk '$1 == 2 {print $4}')" 3 "b's job 2 has its E-Level"
run_cmd as_b "$T/q" -i 1
[[ $OUT == *$'User: 4002\n'* ]] && pass "-i of b's job shows User: 4002" || fail "-i of b's job shows User: 4002" "$OUT"
run_cmd as_a "$T/q" -i 0
[[ $OUT != *"User:"* ]] && pass "-i of the server owner's job has no User line" || fail "-i of a's job" "$OUT"

# -k by b of its own running job: done by its own runner, although the server is a's.
check "b's long job: 4" 0 $'4\n' '' -- as_b "$T/q" sleep 30
TS_SOCKET="$Q" wait_running 4
check "b -k its own job" 0 '' '' -- as_b "$T/q" -k 4
check "b's job was killed (-w rc 255)" 255 '' '' -- as_b "$T/q" -w 4
run_cmd as_b "$T/q" -i 4
[[ $OUT == *"killed by signal 15"* ]] && pass "it died of SIGTERM" || fail "it died of SIGTERM" "$OUT"

# -C by b clears only b's finished jobs.
check "b -C" 0 '' '' -- as_b "$T/q" -C
is "$(as_a "$T/q" | sed 1d | awk '{print $1}' | tr '\n' ,)" "0,3," "only a's finished jobs are left"

# A secret in b's environment reaches no file that a's server writes.
check "b's job that waits (needs 9 slots): 5" 0 $'5\n' '' -- as_b "$T/q" -N 9 echo hidden
p=$(qserver)
kill -TERM "$p"
eventually "a's server stopped by SIGTERM" -- pid_gone "$p"
# TS_SAVELIST is one of the queue's settings: a later start takes it only with --reconfigure, and keeps it.
check "a starts it again, with TS_SAVELIST (--reconfigure)" 0 '' \
    "ts: the queue's settings were changed by ts --reconfigure: TS_SAVELIST=$T/shared/saved (was unset)"$'\n' -- \
    as_a env TS_SAVELIST="$T/shared/saved" "$T/q" --reconfigure
p=$(qserver)
kill -TERM "$p"
eventually "stopped again (the list is saved)" -- pid_gone "$p"
check "a starts it again (its TS_SAVELIST is kept, and said)" 0 $'1\n' \
    "ts: warning: the queue keeps its settings from its journal: TS_SAVELIST=$T/shared/saved (this environment does not set it). To change them, run ts --reconfigure as the queue's owner with the new values in its environment (it restarts the server, keeping the jobs)."$'\n' -- \
    as_a "$T/q" -S
ok "$([ -s "$T/shared/saved" ] && [ -s "$Q.journal" ] && [ -e "$Q.error" ]; echo $?)" "the saved list, the journal and the log exist"
is "$(grep -l -r xyzzy-b-secret "$T/shared" 2>/dev/null)" "" "b's secret is in no file of the shared directory"
check "b's job is still queued" 0 $'queued\n' '' -- as_b "$T/q" -s 5

# After the server is killed, b's queued job still runs and its result is recorded.
check "a's blocker: 6" 0 $'6\n' '' -- as_a "$T/q" waitfor go2
check "b's job behind it: 7" 0 $'7\n' '' -- as_b "$T/q" sh -c 'id -u; exit 4'
TS_SOCKET="$Q" wait_running 6
p=$(qserver)
kill -KILL "$p"
eventually "a's server killed" -- pid_gone "$p"
release go2
# (a's runner starts the next server when its job ends; b may not start a's: wait for it)
server_back() { [ -n "$(qserver)" ]; }
eventually "a's runner started the next server" -- server_back
check "b's job ran after the crash: -w rc 4" 4 '' '' -- as_b "$T/q" -w 7
check "as b" 0 $'4002\n' '' -- cat "$(as_b "$T/q" -o 7)"

# Nobody else takes a queue over: b cannot start a's server after a crash.
p=$(qserver)
kill -KILL "$p"
eventually "server killed again" -- pid_gone "$p"
run_cmd as_b "$T/q" -l
is "$RC" 255 "b cannot start the server of a's queue: rc 255"
[[ $ERR == *"belongs to uid 4001"* ]] && pass "and is told whose queue it is" || fail "and is told whose queue it is" "$ERR"
check "a can: the queue is back (with its TS_SAVELIST)" 0 $'finished\n' \
    "ts: warning: the queue keeps its settings from its journal: TS_SAVELIST=$T/shared/saved (this environment does not set it). To change them, run ts --reconfigure as the queue's owner with the new values in its environment (it restarts the server, keeping the jobs)."$'\n' -- \
    as_a "$T/q" -s 7

done_testing
