#!/bin/bash
# Load: 8 concurrent clients doing 1,000 mixed requests each (enqueue, -w on the job just queued, -l, -s,
# -i, -o, -p on finished jobs, -S) all succeed, and afterwards the server's descriptors are back to their
# baseline exactly and its resident memory nearly so (one poll() loop, every connection closed
# after its reply; no leak per request or per job). ts-only: task-spooler keeps a process per queued job.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "ts's server resource use"

# Full size with a plain build; under `make check SANITIZE=1` (every ts command costs ~10 ms) and
# `make check-valgrind` (the server runs ~50 times slower) 200 requests per client. Resident memory is
# only checked with a plain build: ASan's quarantine and valgrind keep freed memory by design.
ROUNDS=125 CHECK_RSS=1
if [ -n "${TS_VALGRIND-}" ]; then ROUNDS=25 CHECK_RSS=0; echo "# server under valgrind: $ROUNDS rounds";
elif grep -qa -e __asan_init -e AddressSanitizer "$TS"; then ROUNDS=25 CHECK_RSS=0; echo "# sanitizer build: $ROUNDS rounds"; fi
NREQ=$((ROUNDS * 8))

nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
sockets() { find "/proc/$1/fd" -mindepth 1 -lname 'socket:*' 2>/dev/null | wc -l; }
# dump_fds PID: the process's descriptors, as diagnostics (after a failed count).
dump_fds() { ls -l "/proc/$1/fd" 2>&1 | awk 'NR > 1 {print "#     " $(NF - 2), $(NF - 1), $NF}' | head -n 40; }
# fds_are PID OP N / sockets_are PID OP N: the count compares (test's -eq, -ge...) with N, evaluated afresh
# at each call (for eventually).
fds_are() { test "$(nfds "$1")" "$2" "$3"; }
sockets_are() { test "$(sockets "$1")" "$2" "$3"; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

check "-S 4" 0 '' '' -- "$TS" -S 4
check "a first job" 0 $'0\n' '' -- "$TS" true
check "-w 0" 0 '' '' -- "$TS" -w 0
spid=$(server_pids)
is "$(echo $spid | wc -w)" 1 "one server (pid $spid)"
# warm up (the first list, info, output replies and a few runners) before taking the baseline
for _ in 1 2 3 4; do "$TS" -l >/dev/null; "$TS" -i 0 >/dev/null; id=$("$TS" true); "$TS" -w "$id"; done
# the last runners may still be saying goodbye: wait until only the listener, the guard and the idle spare
# are left
eventually "at rest, the server holds 3 sockets (its listener, its guard, the spare runner)" 10 -- \
    sockets_are "$spid" -eq 3 || dump_fds "$spid"
fd0=$(nfds "$spid")
rss0=$(rss_kb "$spid")
echo "# baseline: $fd0 descriptors, VmRSS $rss0 kB"

# One client: $ROUNDS rounds of 8 requests. Its environment is small and fixed, so that the jobs' stored
# environments do not depend on the CI's. Failures are counted, the first ones described.
cat >"$T/client.sh" <<'EOF'
c=$1 rounds=$2 fails=0 n=0
bad() { fails=$((fails + 1)); [ $fails -le 5 ] && echo "client $c request $n: $*" >>"$T/why.$c"; }
for r in $(seq "$rounds"); do
    n=$((n + 1)); id=$("$TS" true 2>&1); [ $? = 0 ] && [ -n "$id" ] && [ -z "${id//[0-9]/}" ] || { bad "enqueue: $id"; continue; }
    n=$((n + 1)); o=$("$TS" -w "$id" 2>&1) || bad "-w $id: $o"
    n=$((n + 1)); o=$("$TS" -l 2>&1) || bad "-l failed"
    case $o in "ID   State"*) ;; *) bad "-l: $(printf '%s' "$o" | head -n 1)" ;; esac
    n=$((n + 1)); o=$("$TS" -s "$id" 2>&1); [ $? = 0 ] && [ "$o" = finished ] || bad "-s $id: $o"
    n=$((n + 1)); o=$("$TS" -i "$id" 2>&1) || bad "-i $id: $o"
    n=$((n + 1)); o=$("$TS" -o "$id" 2>&1); [ $? = 0 ] && [ -f "$o" ] || bad "-o $id: $o"
    n=$((n + 1)); o=$("$TS" -p "$id" 2>&1); [ $? = 0 ] && [ -n "$o" ] && [ -z "${o//[0-9]/}" ] || bad "-p $id: $o"
    n=$((n + 1)); o=$("$TS" -S 2>&1); [ $? = 0 ] && [ "$o" = 4 ] || bad "-S: $o"
done
echo "$fails $n" >"$T/result.$c"
EOF
start=$(date +%s)
for c in 1 2 3 4 5 6 7 8; do
    env -i PATH="$PATH" HOME="$T" LANG=C TS="$TS" T="$T" TS_SOCKET="$TS_SOCKET" TMPDIR="$TMPDIR" \
        bash "$T/client.sh" "$c" "$ROUNDS" >/dev/null 2>"$T/err.$c" </dev/null &
done
wait
echo "# 8 clients x $NREQ requests: $(( $(date +%s) - start )) s"
total=0 reqs=0
for c in 1 2 3 4 5 6 7 8; do
    read -r f n <"$T/result.$c" || { f=$NREQ; n=0; }
    total=$((total + f)) reqs=$((reqs + n))
done
if [ "$total" = 0 ] && [ "$reqs" = $((8 * NREQ)) ]; then
    pass "8 clients x $NREQ mixed requests: 0 failures"
else
    fail "8 clients x $NREQ mixed requests: 0 failures" "$total failures in $reqs requests" \
        "$(cat "$T"/why.* "$T"/err.* 2>/dev/null | head -n 20)"
fi
is "$(server_pids)" "$spid" "the same server throughout"
run_cmd "$TS" -l
njobs=$((5 + 8 * ROUNDS))
nlisted=$((njobs > 1000 ? 1000 : njobs))
is "$(printf '%s' "$OUT" | grep -c ' finished ')" "$nlisted" "$nlisted finished jobs listed (of $njobs; TS_MAXFINISHED is 1000)"
is "$(printf '%s' "$OUT" | grep -vc ' finished ')" 1 "... and nothing else (no job lost or stuck)"
eventually "the descriptors are back to the baseline ($fd0)" 10 -- fds_are "$spid" -eq "$fd0" || dump_fds "$spid"
fd1=$(nfds "$spid")
[ "$fd1" -ne "$fd0" ] && ls -l "/proc/$spid/fd" | sed 's/^/# /'
rss1=$(rss_kb "$spid")
if [ "$CHECK_RSS" = 0 ]; then
    skip "VmRSS back near the baseline: $rss0 kB -> $rss1 kB" "sanitizer or valgrind"
elif [ $((rss1 - rss0)) -le 20480 ]; then
    pass "VmRSS back near the baseline: $rss0 kB -> $rss1 kB (margin 20 MiB)"
else
    fail "VmRSS back near the baseline (within 20 MiB)" "$rss0 kB -> $rss1 kB"
fi
check "-C" 0 '' '' -- "$TS" -C
check "the queue still works" 0 "$njobs"$'\n' '' -- "$TS" echo end
check "-w" 0 '' '' -- "$TS" -w "$njobs"
eventually "descriptors at the baseline again" 10 -- fds_are "$spid" -eq "$fd0" || dump_fds "$spid"

done_testing
