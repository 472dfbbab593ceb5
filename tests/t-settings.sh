#!/bin/bash
# The queue's settings (README "The queue's settings", ts.1 ENVIRONMENT): the first server of a queue
# journals TS_FSYNC, the GPU settings and the bounds from its environment, and a later server keeps the
# journal's, whatever the environment of the client that starts it says, saying so on that client's stderr
# and in the log; ts --reconfigure takes new ones; TS_JOURNAL=0 reads the environment as before.
# Whether the server fdatasyncs is seen with strace (the server started by a client run under strace -f):
# where strace cannot trace, those cases are skipped. ts-only: task-spooler has no journal.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler has no journal"
unset TS_FSYNC TS_JOURNAL TS_GPU_SLOTS TS_GPU_FOREIGN TS_GPU_MIN_FREE TS_GPU_SETTLE TS_VISIBLE_DEVICES TS_GPU_HIDE \
    TS_NVIDIA_SMI TS_GPU_SYSFS TS_GPU_PROBE_INTERVAL TS_GPU_PROBE_TIMEOUT TS_USER_MAXJOBS TS_USER_MAXSIZE \
    CUDA_VISIBLE_DEVICES CUDA_DEVICE_ORDER TS_GPUS

KEEP="ts: warning: the queue keeps its settings from its journal:"
HOW="To change them, run ts --reconfigure as the queue's owner with the new values in its environment (it restarts the server, keeping the jobs)."

kill9() {
    local p
    p=$(server_pids)
    [ -n "$p" ] && kill -KILL $p
    eventually "$1" -- no_server
}

# Strace: a server started by `traced CMD...` (in the background) is traced until it exits; TRACE counts
# its fdatasync calls.
STRACE_OK=0
strace -f -qq -o /dev/null true >/dev/null 2>&1 && STRACE_OK=1
# (LeakSanitizer cannot run under ptrace: make check SANITIZE=1 turns it off for the traced processes)
traced() { ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 strace -f -qq -e trace=fdatasync -o "$T/trace" "$@" >"$T/traced.out" 2>"$T/traced.err" </dev/null & TRACER=$!; }
syncs() { local n; n=$(grep -c 'fdatasync(' "$T/trace" 2>/dev/null); echo "${n:-0}"; }
traced_done() { [ -s "$T/traced.out" ]; }

# ---- TS_FSYNC=1 survives a crash and a restart from a shell without it ----
check "the first server, with TS_FSYNC=1: nothing to say" 0 "$(HDR 0 1)"$'\n' '' -- env TS_FSYNC=1 "$TS" -l
grep -q "the queue's settings, journaled with it: TS_FSYNC=1" s.error && pass "the log says what it journaled" ||
    fail "the log says what it journaled" "$(cat s.error)"
check "job 0" 0 $'0\n' '' -- "$TS" true
check "-w 0" 0 '' '' -- "$TS" -w 0
kill9 "the server is killed (SIGKILL)"
if [ $STRACE_OK = 1 ]; then
    traced "$TS" -l
    eventually "ts -l without TS_FSYNC starts a server (under strace)" -- traced_done
    ERR=$(cat "$T/traced.err")
else
    run_cmd "$TS" -l
fi
is "$ERR" "$KEEP TS_FSYNC=1 (this environment does not set it). $HOW" "the starting client is told, on stderr"
grep -q "the queue keeps its settings from its journal: TS_FSYNC=1 (this environment does not set it)" s.error &&
    pass "and the log" || fail "and the log" "$(cat s.error)"
if [ $STRACE_OK = 1 ]; then
    before=$(syncs)
    check "job 1" 0 $'1\n' '' -- "$TS" true
    check "-w 1" 0 '' '' -- "$TS" -w 1
    after=$(syncs)
    ok "$([ "$after" -gt "$before" ]; echo $?)" "the server still fdatasyncs each record ($before, then $after fdatasync calls)"
else
    skip "the server still fdatasyncs each record" "strace cannot trace here"
fi
check "a client that does not start the server says nothing" 0 $'1\n' '' -- "$TS" -S
check "--restart with the same value: nothing to say" 0 '' '' -- env TS_FSYNC=1 "$TS" --restart
[ $STRACE_OK = 1 ] && wait "$TRACER"
check "--restart with TS_FSYNC=0: kept, and said" 0 '' "$KEEP TS_FSYNC=1 (this environment has 0). $HOW"$'\n' -- \
    env TS_FSYNC=0 "$TS" --restart

# ---- ts --reconfigure ----
check "--reconfigure from a shell without it: fsync is off" 0 '' \
    $'ts: the queue\'s settings were changed by ts --reconfigure: TS_FSYNC unset (was 1)\n' -- "$TS" --reconfigure
kill9 "the server is killed again"
check "the jobs are kept" 0 $'0\n1\n' '' -- sh -c '"$TS" | sed 1d | cut -c1-4 | tr -d " "'
check "a plain start now has nothing to say" 0 $'1\n' '' -- "$TS" -S
if [ $STRACE_OK = 1 ]; then
    kill9 "and again"
    traced "$TS" -l
    eventually "a server under strace" -- traced_done
    before=$(syncs)
    check "job 2" 0 $'2\n' '' -- "$TS" true
    check "-w 2" 0 '' '' -- "$TS" -w 2
    is "$(syncs)" "$before" "the server does not fdatasync any more"
fi
check "TS_GPU_SLOTS=x is the default: no change, nothing to say" 0 '' '' -- env TS_GPU_SLOTS=x TS_FSYNC=0 "$TS" --restart

# ---- TS_JOURNAL=0: the environment, as before ----
"$TS" -K >/dev/null
check "a journaled queue with TS_FSYNC=1" 0 '' '' -- env TS_FSYNC=1 "$TS" -S 1
kill9 "its server is killed"
check "TS_JOURNAL=0: the environment's settings, nothing to say" 0 $'1\n' '' -- env TS_JOURNAL=0 "$TS" -S
kill9 "that server is killed"
check "with the journal again: its TS_FSYNC=1 is kept" 0 $'1\n' "$KEEP TS_FSYNC=1 (this environment does not set it). $HOW"$'\n' -- "$TS" -S

# ---- a bad value in a later environment does not stop the queue: the journal's is kept ----
check "TS_VISIBLE_DEVICES=0,,1 on a restart: the journal's (unset) is kept" 0 '' \
    "$KEEP TS_FSYNC=1 (this environment does not set it), TS_VISIBLE_DEVICES unset (this environment has 0,,1). $HOW"$'\n' -- \
    env TS_VISIBLE_DEVICES=0,,1 "$TS" --restart
check "a --reconfigure with it fails, saying why" 255 '' \
    $'The server didn\'t come up. (TS_VISIBLE_DEVICES=0,,1: an empty entry (write indices or UUIDs separated by commas))\n' -- \
    env TS_VISIBLE_DEVICES=0,,1 TS_FSYNC=1 "$TS" --reconfigure
check "the queue's next server keeps the journal's settings" 0 $'1\n' \
    "$KEEP TS_FSYNC=1 (this environment does not set it). $HOW"$'\n' -- "$TS" -S
"$TS" -K >/dev/null

# ---- the GPU settings survive `ts --restart` from a bare shell ----
# A fake nvidia-smi with two idle cards (not on PATH: only TS_NVIDIA_SMI names it), and a queue that may
# use card 1 only. Job 0 holds card 1; job 1 waits for it, though card 0 is free.
mkdir -p "$T/gpu"
U0=GPU-0a0a0a0a-0000-4000-8000-00000000000a
U1=GPU-1b1b1b1b-1111-4111-8111-11111111111b
cat >"$T/gpu/nvidia-smi" <<EOF
#!/bin/sh
echo "\$*" >>"$T/smi.log"
case "\$*" in
--query-gpu=*) printf '0, $U0, 00000000:17:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100\n1, $U1, 00000000:65:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100\n' ;;
--query-compute-apps=*) ;;
*) exit 2 ;;
esac
EOF
chmod 755 "$T/gpu/nvidia-smi"
: >"$T/smi.log"
calls() { wc -l <"$T/smi.log"; }
SRV=(TS_NVIDIA_SMI="$T/gpu/nvidia-smi" TS_GPU_SYSFS= TS_GPU_PROBE_INTERVAL=0.2 TS_GPU_SETTLE=0 TS_VISIBLE_DEVICES=1)
check "a GPU queue on card 1 only" 0 '' '' -- env "${SRV[@]}" "$TS" -S 1
E='echo "$CUDA_VISIBLE_DEVICES"'
check "job 0: -G 1" 0 $'0\n' '' -- "$TS" -G 1 sh -c "$E; exec waitfor g0"
check "job 1: -G 1" 0 $'1\n' '' -- "$TS" -G 1 sh -c "$E"
wait_running 0
check "--restart from a shell without the GPU settings: kept, and said" 0 '' \
    "$KEEP TS_VISIBLE_DEVICES=1 (this environment does not set it), TS_GPU_SETTLE=0 (this environment does not set it), TS_NVIDIA_SMI=$T/gpu/nvidia-smi (this environment does not set it), TS_GPU_SYSFS= (this environment does not set it), TS_GPU_PROBE_INTERVAL=0.2 (this environment does not set it). $HOW"$'\n' -- \
    "$TS" --restart
n=$(calls)
eventually "the new server probes the cards (the journal's nvidia-smi)" -- sh -c "[ \$(wc -l <'$T/smi.log') -ge $((n + 4)) ]"
check "job 1 still waits for card 1 (card 0 is not the queue's)" 0 $'queued\n' '' -- "$TS" -s 1
release g0
check "-w 0" 0 '' '' -- "$TS" -w 0
check "-w 1: job 1 runs (it does not wait forever)" 0 '' '' -- timeout 60 "$TS" -w 1
is "$(cat "$("$TS" -o 0)")/$(cat "$("$TS" -o 1)")" "1/1" "both on card 1"

done_testing
