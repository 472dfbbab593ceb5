#!/bin/bash
# The journal (<socket>.journal): it stays small, and a damaged one never stops a server.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler has no journal"

J="$T/s.journal"
size() { stat -c %s "$1"; }
server_pid() { server_pids | head -n 1; }
pid_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" = Z ]; }
# restart: stop the server with SIGTERM (the queue is kept) and start a new one.
restart() {
    local p
    p=$(server_pid)
    kill -TERM "$p"
    eventually "server $p stopped" -- pid_gone "$p"
    "$TS" -S >/dev/null
}

ok "$([ ! -e "$J" ]; echo $?)" "no journal before the first server"
check "first job" 0 $'0\n' '' -- "$TS" true
check "-w" 0 '' '' -- "$TS" -w
# The log counts what came back, in the singular for one job.
restart
check "the log says the queue restored 1 job" 0 $'1\n' '' -- grep -c 'queue restored from the journal: 1 job$' "$T/s.error"
m=$(stat -c %a "$J")
is "$m" 600 "the journal is mode 0600"

# Growth: 10 rounds of 1,000 jobs, each round cleared with -C, then 50 jobs left in the list
# (2 rounds of 200 under valgrind or the sanitizers: make check-valgrind, make check SANITIZE=1).
rounds=10 per=1000
if [ -n "${TS_VALGRIND-}" ] || [ "${TS_TEST_LIGHT-0}" = 1 ]; then rounds=2 per=200; fi
"$TS" -S 4 >/dev/null
total=0
for round in $(seq $rounds); do
    for i in $(seq $per); do "$TS" -n -L "r$round" true; done
    "$TS" -w "$(( round * per ))" >/dev/null
    for i in $(seq 1 4); do "$TS" -w "$(( round * per - i ))" >/dev/null 2>&1; done
    total=$(( total + $(size "$J") ))
    "$TS" -C
done
for i in $(seq 50); do "$TS" -L keep true >/dev/null; done
"$TS" -w >/dev/null
for i in $(seq $((rounds * per + 1)) $((rounds * per + 50))); do "$TS" -w "$i" >/dev/null 2>&1; done
"$TS" -l >/dev/null
grown=$(size "$J")
restart
live=$(size "$J")
echo "# journal after $((rounds * per)) jobs: $grown bytes; a fresh snapshot of the same queue: $live bytes"
ok "$([ "$grown" -le $(( 4 * live )) ]; echo $?)" "the journal is at most 4 times the live state ($grown <= 4 * $live)"
check "the 50 jobs are still listed after the restart" 0 $'50\n' '' -- sh -c '"$TS" | grep -c "\[keep\]true"'
check "the slot count too" 0 $'4\n' '' -- "$TS" -S
"$TS" -K

# A torn last record: cut the journal at every byte offset of its last record.
export TS_SOCKET="$T/t/s"
mkdir -p "$T/t"
env -i PATH="$PATH" TS_SOCKET="$TS_SOCKET" TMPDIR="$T" "$TS" -L a true >/dev/null
env -i PATH="$PATH" TS_SOCKET="$TS_SOCKET" TMPDIR="$T" "$TS" -L b false >/dev/null
"$TS" -w 1 >/dev/null
cp "$T/t/s.journal" "$T/j.before"
# needs 5 slots of 1: it stays queued, so the journal gets exactly one record for it
env -i PATH="$PATH" TS_SOCKET="$TS_SOCKET" TMPDIR="$T" "$TS" -N 5 -L c echo last >/dev/null
cp "$T/t/s.journal" "$T/j.after"
"$TS" -K
a=$(size "$T/j.before") b=$(size "$T/j.after")
echo "# last record: bytes $a to $b"
ok "$([ "$b" -gt "$a" ]; echo $?)" "the last job added one record"
bad=0
step=1   # every offset; every 23rd under valgrind, where each server start takes a second
if [ -n "${TS_VALGRIND-}" ]; then step=23; fi
for cut in $(seq "$a" "$step" $((b - 1))); do
    head -c "$cut" "$T/j.after" >"$T/t/s.journal"
    rm -f "$T/t/s.error"
    got=$("$TS" 2>&1 | sed 1d | awk '{print $1, $2, $NF}' | tr '\n' ,)
    if [ "$got" != "0 finished [a]true,1 finished [b]false," ]; then
        bad=$((bad + 1)); echo "# cut at $cut: $got"
    fi
    if [ "$cut" -gt "$a" ] && ! grep -Eq "dropped $((cut - a)) bytes? after" "$T/t/s.error" 2>/dev/null; then
        bad=$((bad + 1)); echo "# cut at $cut: nothing logged"
    fi
    "$TS" -K
done
is "$bad" 0 "cut at the offsets of the last record ($((b - a)) bytes, step $step): the two intact jobs come back, the cut is logged"

# The whole journal intact: all three come back (the check above is not vacuous).
cp "$T/j.after" "$T/t/s.journal"
check "the intact journal restores all three" 0 $'2 last\n0 [a]true\n1 [b]false\n' '' -- sh -c '"$TS" | sed 1d | awk "{print \$1, \$NF}"'
"$TS" -K

# Garbage after the intact records: restored, the rest dropped and logged.
cp "$T/j.after" "$T/t/s.journal"
head -c 300 /dev/urandom >>"$T/t/s.journal"
rm -f "$T/t/s.error"
check "garbage at the end: the three jobs come back" 0 $'3\n' '' -- sh -c '"$TS" | sed 1d | wc -l'
check "and the garbage is logged" 0 $'1\n' '' -- sh -c 'grep -c "dropped 300 bytes" "$TS_SOCKET.error"'
"$TS" -K

# A damaged byte in the middle: what comes before it is restored.
cp "$T/j.after" "$T/t/s.journal"
printf 'X' | dd of="$T/t/s.journal" bs=1 seek=$((a + 20)) conv=notrunc 2>/dev/null
check "a damaged last record: the two before it come back" 0 $'2\n' '' -- sh -c '"$TS" | sed 1d | wc -l'
"$TS" -K

# (Every damaged journal above was kept aside before it was rewritten.)
n=$(ls "$T/t/s.journal.bad."* 2>/dev/null | wc -l)
ok "$([ "$n" -ge 10 ]; echo $?)" "the damaged journals were kept aside ($n copies)"
rm -f "$T/t/s.journal.bad."*

# A file that is no journal at all: moved aside, logged, and the server starts empty.
head -c 5000 /dev/urandom >"$T/t/s.journal"
rm -f "$T/t/s.error"
check "garbage journal: the server starts, empty" 0 "$(HDR 0 1)"$'\n' '' -- "$TS"
check "it was moved aside" 0 $'1\n' '' -- sh -c 'ls "$TS_SOCKET".journal.bad.* | wc -l'
check "and logged" 0 $'1\n' '' -- sh -c 'grep -c "not a ts journal; moved aside" "$TS_SOCKET.error"'
check "the queue works" 0 $'0\n' '' -- "$TS" true
"$TS" -K

rm -f "$T/t/s.journal.bad."*
# A journal of a newer format is left untouched, and the server refuses to start, saying why.
printf 'TSJ\0\x09\0\0\0' >"$T/t/s.journal"
cp "$T/t/s.journal" "$T/newer.copy"
rm -f "$T/t/s.error"
run_cmd "$TS"
is "$RC" 255 "newer format: the server does not start"
case $ERR in *"has format 9, newer than this ts reads"*) pass "and says why" ;; *) fail "and says why" "$ERR" ;; esac
ok "$(cmp -s "$T/t/s.journal" "$T/newer.copy"; echo $?)" "the journal is left untouched"
ok "$(ls "$TS_SOCKET".journal.bad.* >/dev/null 2>&1; [ $? != 0 ]; echo $?)" "and not moved aside"
rm -f "$T/t/s.journal"
export TS_SOCKET="$T/s"

done_testing
