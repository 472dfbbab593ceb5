#!/bin/bash
# A shared queue against a hostile colleague (README "Security"). Users A (the queue's
# owner), B (the attacker) and C (another victim) share a sticky 1777 directory; B speaks the protocol
# directly through tests/forge.c as well as through ts. The kernel's fs.protected_* settings are set to 0
# for the test's duration (restored after), so nothing here relies on them. Needs root (setpriv, sysctl)
# and a C compiler; skipped otherwise.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler has no access control"
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null || ! command -v cc >/dev/null; then
    echo "1..0 # SKIP needs root, setpriv and cc to act as several users"
    exit 0
fi

A=4101 B=4102 C=4103 LAB=4150
chmod 755 "$T"
chmod 777 "$T/bin"
for u in a b c; do mkdir -m 700 "$T/t$u"; done
chown $A "$T/ta"; chown $B "$T/tb"; chown $C "$T/tc"
d=$(dirname "$TS")
while [ "$d" != / ] && [ -n "$d" ]; do chmod o+x "$d" 2>/dev/null; d=$(dirname "$d"); done
cc -O1 -o "$T/bin/forge" "$_lib_dir/forge.c" || { echo "1..0 # SKIP forge.c does not build"; exit 0; }

# The kernel's own protections off: ts must not need them.
declare -A saved_sysctl
for k in protected_symlinks protected_regular protected_fifos protected_hardlinks; do
    saved_sysctl[$k]=$(cat /proc/sys/fs/$k 2>/dev/null)
    echo 0 >/proc/sys/fs/$k 2>/dev/null
done
restore_sysctl() {
    local k
    for k in "${!saved_sysctl[@]}"; do
        [ -n "${saved_sysctl[$k]}" ] && echo "${saved_sysctl[$k]}" >/proc/sys/fs/$k 2>/dev/null
    done
}

# as-user UID CMD...: run as that user (in the group LAB), with a private TMPDIR and a secret in the
# environment. A script, so that timeout and sh -c can run it too.
cat >"$T/bin/as-user" <<EOF
#!/bin/sh
uid=\$1
shift
case \$uid in $A) n=a ;; $B) n=b ;; *) n=c ;; esac
exec env -i PATH="$T/bin:/usr/bin:/bin" USER=\$n TMPDIR="$T/t\$n" SECRET=secret-of-\$n TS_SOCKET="\$Q" \\
    TS_SOCKET_MODE=0666 setpriv --reuid=\$uid --regid=\$uid --groups=$LAB "\$@"
EOF
chmod 755 "$T/bin/as-user"
as() { Q=$Q "$T/bin/as-user" "$@"; }
bg_as() { Q=$Q exec "$T/bin/as-user" "$@"; }   # bg_as UID CMD... &: $! is the command's own pid
queues=()
new_queue() {   # new_queue NAME [MODE]: a fresh shared directory; Q is its socket path
    mkdir -m "${2:-1777}" "$T/$1"
    Q=$T/$1/sock
    queues+=("$Q")
}
stop_queues() {
    local q
    for q in "${queues[@]}"; do TS_SOCKET=$q "$TS" -K >/dev/null 2>&1; done
}
extra_cleanup() {
    stop_queues
    # Other users' runners whose queue is gone wait for it to come back (for a day): stop them.
    local p
    for p in $(procs_with_env "TMPDIR=$T/ta") $(procs_with_env "TMPDIR=$T/tb") $(procs_with_env "TMPDIR=$T/tc"); do
        [ "$(head -c "${#TS}" "/proc/$p/cmdline" 2>/dev/null)" == "$TS" ] && kill -TERM "$p"
    done
    [ -n "${holder-}" ] && kill "$holder" 2>/dev/null
    [ -n "${squatter-}" ] && kill "$squatter" 2>/dev/null
    restore_sysctl
}
qts() { TS_SOCKET="$Q" "$TS" "$@"; }   # root, as an admin would
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
qserver() { TS_SOCKET="$Q" server_pids | head -n 1; }
no_server_q() { [ -z "$(TS_SOCKET="$Q" server_pids)" ]; }
qstate() { TS_SOCKET="$Q" wait_state "$@"; }
pid_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" = Z ]; }

# ---- 1. a Submit without the client-held flag never runs as the owner -------------------------------------
new_queue q1
check "A starts the queue" 0 $'0\n' '' -- as $A "$TS" true
check "A waits for job 0" 0 '' '' -- as $A "$TS" -w 0
run_cmd as $B forge "$Q" submit sh -c "id -u >$T/tb/ran-as; echo \$SECRET >>$T/tb/ran-as"
is "$OUT" $'ok 1\nrun\n' "B's forged Submit: the server sends Run to B's own connection, not to a runner of A's"
qstate 1 finished
ok "$([ ! -e "$T/tb/ran-as" ]; echo $?)" "the forged job did not run anywhere (B's connection was its only runner)"
run_cmd qts -i 1
[[ $OUT == *"User: $B"* ]] && pass "job 1 belongs to B" || fail "job 1 belongs to B" "$OUT"
is "$(grep -c secret-of-b "$Q.journal")" 0 "B's environment is not in A's journal"
check "B queues through ts: job 2" 0 $'2\n' '' -- as $B "$TS" sh -c 'id -u; echo $SECRET'
check "it runs as B (-w)" 0 '' '' -- as $B "$TS" -w 2
check "with B's own environment" 0 "$B"$'\nsecret-of-b\n' '' -- cat "$(as $B "$TS" -o 2)"
check "A's job with TS_ENV output: 3" 0 $'3\n' '' -- as $A env TS_ENV='echo token=$SECRET' "$TS" true
run_cmd as $B "$TS" -i 3
[[ $RC == 0 && $OUT != *secret-of-a* && $OUT == *"Command: true"* ]] && pass "B's -i of it: no TS_ENV text" \
    || fail "B's -i of it: no TS_ENV text" "$OUT"
run_cmd as $A "$TS" -i 3
[[ $OUT == *"token=secret-of-a"* ]] && pass "A's own -i shows it" || fail "A's own -i shows it" "$OUT"
check "B's job whose TS_ENV takes 11 s is queued all the same: 4" 0 $'4\n' '' -- \
    as $B env TS_ENV='sleep 11; echo slow' "$TS" true
# The spare runner refuses a job of another uid even if the server handed it one: unit-tested
# (AssignFrame.CarriesTheOwner); here, B cannot become a spare.
run_cmd as $B forge "$Q" attach 0
is "$OUT" $'bye\n' "B's Attach to A's finished job: Bye"

# ---- 2. root never runs the owner's queue -----------------------------------------------------------------
check "A's job that waits (needs 9 slots): 5" 0 $'5\n' '' -- as $A "$TS" -N 9 sh -c "id -u >$T/ta/job3"
p=$(qserver); kill -TERM "$p"; eventually "A's server stopped" -- pid_gone "$p"
eventually "no server for q1" -- no_server_q
run_cmd qts -l
is "$RC" 255 "root's ts on A's dead queue: rc 255"
[[ $ERR == *"belongs to uid $A"*"only that user may start its server"* ]] && pass "root is told whose queue it is" \
    || fail "root is told whose queue it is" "$ERR"
ok "$(no_server_q; echo $?)" "no server was started by root"
ok "$([ ! -e "$T/ta/job3" ]; echo $?)" "A's queued job did not run"
run_cmd as $B "$TS" -l
[[ $RC == 255 && $ERR == *"belongs to uid $A"* ]] && pass "nor does B's" || fail "nor does B's" "$RC $ERR"
check "A starts it again" 0 '' '' -- as $A "$TS" -S 9
check "job 5 runs as A" 0 '' '' -- as $A "$TS" -w 5
check "as A" 0 "$A"$'\n' '' -- cat "$T/ta/job3"
stop_queues

# ---- 3. files planted next to the socket before the server starts ----------------------------------------
echo "A's precious file" >"$T/ta/precious"; chown $A "$T/ta/precious"; chmod 644 "$T/ta/precious"
chmod 755 "$T/ta"
plant() {   # plant NAME SUFFIX HOW: B plants something at the queue's SUFFIX, A's first ts must refuse
    local name=$1 suffix=$2 how=$3
    new_queue "$name"
    as $B sh -c "$how" _ "$Q$suffix"
    local start=$SECONDS
    run_cmd timeout 20 setpriv --reuid=$A --regid=$A --clear-groups env -i PATH="$T/bin:/usr/bin:/bin" \
        TMPDIR="$T/ta" TS_SOCKET="$Q" "$TS" echo planted
    is "$RC" 255 "$name: A's first ts fails (rc 255), it does not hang"
    [ $((SECONDS - start)) -le 12 ] && pass "$name: within 12 s" || fail "$name: within 12 s" "$((SECONDS - start)) s"
    [[ $ERR == *"$Q$suffix"* || $ERR == *"belongs to uid $B"* ]] && pass "$name: the message names the file or its owner" \
        || fail "$name: the message names the file or its owner" "$ERR"
    is "$(cat "$T/ta/precious")" "A's precious file" "$name: A's file is untouched"
}
plant log-symlink .error 'ln -s '"$T/ta/precious"' "$1"'
plant log-fifo .error 'mkfifo -m 666 "$1"'
# A hard link of B's to A's file, named as the log: never appended to; the name is dropped and a log of
# A's own made in its place, so that the link stops nothing.
new_queue log-hardlink
as $B sh -c 'ln '"$T/ta/precious"' "$1"' _ "$Q.error"
check "log-hardlink: A's server starts all the same" 0 $'0\n' '' -- as $A "$TS" echo planted
is "$(cat "$T/ta/precious")" "A's precious file" "log-hardlink: A's file is untouched"
is "$(stat -c '%h %u' "$Q.error")" "1 $A" "log-hardlink: the log is a file of A's own with one name"
stop_queues
plant log-of-b .error ': >"$1"; chmod 666 "$1"'
plant journal-symlink .journal 'ln -s '"$T/ta/precious"' "$1"'
plant lock-of-b .lock ': >"$1"; chmod 666 "$1"'
# A lock that B holds (and never releases): A is not made to wait for it.
new_queue lockheld
as $B sh -c ': >"$1.lock"; chmod 666 "$1.lock"' _ "$Q"
# (one process that holds the lock: flock CMD would leave its CMD running when flock is killed)
(bg_as $B sh -c 'exec 9>>"$1" && flock 9 && exec sleep 120' _ "$Q.lock") &
holder=$!
eventually "B holds the lock" -- sh -c "grep -q FLOCK /proc/locks"
start=$SECONDS
run_cmd timeout 30 env Q="$Q" as-user $A "$TS" true
is "$RC" 255 "a lock held by B: A's ts fails (rc 255)"
[ $((SECONDS - start)) -le 15 ] && pass "and does not hang" || fail "and does not hang" "$((SECONDS - start)) s"
kill "$holder"; holder=
# A planted journal.tmp: the server starts, and writes its snapshots elsewhere.
new_queue tmp-planted
as $B sh -c ': >"$1.journal.tmp"; chmod 666 "$1.journal.tmp"' _ "$Q"
check "a planted journal.tmp of B's: A's server starts" 0 $'0\n' '' -- as $A "$TS" -N 9 echo queued
check "A's job is queued" 0 $'queued\n' '' -- as $A "$TS" -s 0
p=$(qserver); kill -TERM "$p"; eventually "stopped" -- pid_gone "$p"
check "restarted: the snapshot is written" 0 $'queued\n' '' -- as $A "$TS" -s 0
is "$(stat -c %s "$Q.journal.tmp")" 0 "B's planted file received nothing"
ok "$(grep -q secret-of-a "$Q.journal"; echo $?)" "the journal itself has A's job (with its environment)"
stop_queues

# ---- 4. the server never signals a pid on a client's word -----------------------------------------------
new_queue q4
check "A starts q4" 0 '' '' -- as $A "$TS" -S 3
(exec setpriv --reuid=$A --regid=$A --clear-groups sleep 300) &
victim=$!
mkfifo "$T/in4"; chmod 666 "$T/in4"
(bg_as $B forge "$Q" runner "$victim" /tmp/fake-output "" sleep 1 <"$T/in4" >"$T/out4") &
forger=$!
exec 7>"$T/in4"
eventually "B's forged runner has started its job" -- grep -q started "$T/out4"
run_cmd qts -p 0
is "$RC/$OUT/$ERR" "255//The pid of job 0 is not known (the queue's log says why)."$'\n' \
    "-p of B's job: the pid it claimed (one of A's processes) is not believed"
run_cmd as $B "$TS" -k 0
is "$RC" 255 "B's -k of that job: nothing to signal (rc 255)"
ok "$(kill -0 "$victim"; echo $?)" "A's process is alive"
p=$(qserver); kill -KILL "$p"; eventually "A's server killed" -- pid_gone "$p"
check "A restarts it" 0 $'3\n' '' -- as $A "$TS" -S
run_cmd as $B "$TS" -k 0
is "$RC" 255 "after the restart, B's -k is refused"
ok "$(kill -0 "$victim"; echo $?)" "A's process is still alive"
exec 7>&-
kill "$victim" "$forger" 2>/dev/null
stop_queues

# ---- 5. exhaustion -----------------------------------------------------------------------------------------
new_queue q5
check "A starts q5" 0 $'0\n' '' -- as $A "$TS" true
sp=$(qserver)
base=$(rss_kb "$sp")
run_cmd as $B forge "$Q" half 40 $((32 << 20))
is "$OUT" $'closed 40\n' "40 half-sent 32 MiB frames of B: all closed (over B's frame limit)"
run_cmd as $B forge "$Q" half 30 $((3 << 20))
is "$OUT" $'closed 30\n' "30 half-sent 3 MiB frames: all closed (input cap or deadline)"
rss_bounded() {   # DESC: the server's RSS grew by less than 64 MB (not under the sanitizers' quarantine)
    local now
    now=$(rss_kb "$sp")
    if [ "${TS_TEST_LIGHT:-0}" = 1 ]; then skip "$1" "RSS means little under ASan"; return; fi
    [ "$now" -lt $((base + 65536)) ] && pass "$1 ($base -> $now kB)" || fail "$1" "$base -> $now kB"
}
rss_bounded "server RSS stays bounded"
# B's connections: at most 32 that are not runners; A is served meanwhile.
mkfifo "$T/in5"; chmod 666 "$T/in5"
(ulimit -n 4096; bg_as $B forge "$Q" idle 1100 <"$T/in5" >"$T/out5") &
idler=$!
exec 8>"$T/in5"
eventually "B's 1100 connections are made" 20 -- grep -q open "$T/out5"
is "$(cat "$T/out5")" "open 32" "of B's 1100 idle connections, 32 stay open"
check "A queues meanwhile: 1" 0 $'1\n' '' -- as $A "$TS" sh -c 'echo ran'
check "and it runs" 0 '' '' -- as $A "$TS" -w 1
check "A's list works" 0 '' '' -- sh -c "Q=$Q as-user $A \"$TS\" -l >/dev/null"
ok "$(grep -q "uid $B: connection closed" "$Q.error"; echo $?)" "the refusals are logged (at most a line every 10 s)"
exec 8>&-
wait "$idler" 2>/dev/null
# Unread answers: 60 list requests, never read, cost bounded memory.
for i in $(seq 2 400); do as $A "$TS" -N 9 echo "$(head -c 2000 /dev/zero | tr '\0' x)" >/dev/null; done
mkfifo "$T/in5b"; chmod 666 "$T/in5b"
(bg_as $B forge "$Q" unread 60 <"$T/in5b" >/dev/null) &
unreader=$!
exec 9>"$T/in5b"
check "A's list works while B's answers wait" 0 '' '' -- sh -c "Q=$Q as-user $A \"$TS\" -l >/dev/null"
rss_bounded "unread lists: server RSS bounded"
exec 9>&-
wait "$unreader" 2>/dev/null
# A list larger than a frame: A's own jobs of 17 MB each.
# (through forge: no command line takes an argument this long)
head -c $((17 << 20)) /dev/zero | tr '\0' y >"$T/big"; chmod 644 "$T/big"
check "A's 17 MB job: 401" 0 $'ok 401\neof\n' '' -- as $A env FORGE_SLOTS=9 forge "$Q" submit echo @"$T/big"
check "A's second: 402" 0 $'ok 402\neof\n' '' -- as $A env FORGE_SLOTS=9 forge "$Q" submit echo @"$T/big"
run_cmd as $A "$TS" -l
[ "$RC" = 0 ] && [ "${#OUT}" -gt $((34 << 20)) ] && pass "-l of a list over 34 MB works (streamed)" \
    || fail "-l of a list over 34 MB works" "rc $RC, ${#OUT} bytes: ${ERR:0:200}"
run_cmd as $B "$TS" -l
[ "$RC" = 0 ] && [ "${#OUT}" -gt $((34 << 20)) ] && pass "and for B" || fail "and for B" "rc $RC"
head -c $((5 << 20)) /dev/zero | tr '\0' z >"$T/big5"; chmod 644 "$T/big5"
run_cmd as $B env FORGE_SLOTS=9 forge "$Q" submit echo @"$T/big5"
is "$OUT" $'eof\n' "B's 5 MB job: its connection is closed, nothing queued"
is "$(qts -s 403 2>&1)" "Error in the request: The job 403 cannot be stated." "no job 403"
check "A removes the big jobs" 0 '' '' -- as $A "$TS" -r 401
stop_queues
# Number and size of another user's jobs (TS_USER_MAXJOBS, TS_USER_MAXSIZE).
new_queue q5b
check "A starts q5b with small limits" 0 '' '' -- as $A env TS_USER_MAXJOBS=3 TS_USER_MAXSIZE=100K "$TS" -S 1
for i in 0 1 2; do as $B "$TS" -N 5 echo $i >/dev/null; done
run_cmd as $B "$TS" -N 5 echo 3
is "$RC" 255 "B's 4th job: refused"
[[ $ERR == "Error in the request: uid $B has 3 jobs"*"TS_USER_MAXJOBS=3"* ]] && pass "saying why" || fail "saying why" "$ERR"
check "A's own jobs are not bounded" 0 $'3\n' '' -- as $A "$TS" -N 5 echo a
check "B -r one of its jobs" 0 '' '' -- as $B "$TS" -r 2
check "then B may queue again" 0 $'4\n' '' -- as $B "$TS" -N 5 echo again
check "B -r it" 0 '' '' -- as $B "$TS" -r 4
run_cmd as $B "$TS" -N 5 echo "$(head -c 120000 /dev/zero | tr '\0' s)"
[[ $RC == 255 && $ERR == *TS_USER_MAXSIZE* ]] && pass "B's job past TS_USER_MAXSIZE: refused" || fail "TS_USER_MAXSIZE" "$RC $ERR"
stop_queues

# ---- 6. an impostor at the socket path gets nothing ----------------------------------------------------
new_queue q6
check "A starts q6" 0 '' '' -- as $A "$TS" -S 1
check "C's job waits (needs 5 slots): 0" 0 $'0\n' '' -- as $C "$TS" -N 5 sh -c 'echo $SECRET'
p=$(qserver); kill -TERM "$p"; eventually "A's server stopped (socket removed)" -- pid_gone "$p"
(bg_as $B forge "$Q" listen "$T/tb/seen") &
impostor=$!
eventually "B's impostor listens" -- test -S "$Q"
eventually "C's runner tried the impostor" -- sh -c "[ \"\$(cut -d' ' -f1 $T/tb/seen)\" -ge 2 ]"
run_cmd as $C "$TS" echo another-secret
is "$RC" 255 "C's next submit to the impostor: refused (rc 255)"
[[ $ERR == *"runs as uid $B, but the queue belongs to uid $A"* ]] && pass "saying so" || fail "saying so" "$ERR"
kill -TERM "$impostor"; wait "$impostor"
is "$(cut -d' ' -f2 "$T/tb/seen")" 0 "the impostor received not one byte (no Attach, no command line)"
check "A starts q6 again" 0 $'1\n' '' -- as $A "$TS" -S
check "C's job is still queued" 0 $'queued\n' '' -- as $C "$TS" -s 0
check "A -S 5: it runs" 0 '' '' -- as $A "$TS" -S 5
check "C's job ends (C's runner came back to A's server)" 0 '' '' -- as $C "$TS" -w 0
check "with C's secret, as C" 0 $'secret-of-c\n' '' -- cat "$(as $C "$TS" -o 0)"
stop_queues

# ---- 7. what another user's runner reports is shown escaped --------------------------------------------
new_queue q7
check "A starts q7" 0 $'0\n' '' -- as $A "$TS" true
esc=$'\e[2J\e[31m'
mkfifo "$T/in7"; chmod 666 "$T/in7"
(bg_as $B forge "$Q" runner 0 "/tmp/x${esc}"$'\n1    running    fake' $'note\n2026-01-01 00:00:00 ts server 1: forged' true <"$T/in7" >"$T/out7") &
exec 7>"$T/in7"
eventually "B's forged runner started" -- grep -q started "$T/out7"
exec 7>&-
qstate 1 finished
run_cmd as $A "$TS" -l
[[ $OUT != *$'\e'* ]] && pass "-l: no escape sequence" || fail "-l: no escape sequence" "$OUT"
is "$(printf '%s' "$OUT" | wc -l)" 3 "-l: one line per job"
run_cmd as $A "$TS" -i 1
[[ $OUT != *$'\e'* && $OUT == *'Error: note\n2026'* ]] && pass "-i: the note escaped" || fail "-i: the note escaped" "$OUT"
ok "$(! grep -q '^2026-01-01 00:00:00 ts server 1: forged' "$Q.error"; echo $?)" "the log has no forged line"
stop_queues

# ---- 8. another user's -u and -N 0 -----------------------------------------------------------------------
new_queue q8
check "A's blocker: 0" 0 $'0\n' '' -- as $A "$TS" waitfor go8
check "A: 1" 0 $'1\n' '' -- as $A "$TS" true
check "A: 2" 0 $'2\n' '' -- as $A "$TS" true
check "B: 3" 0 $'3\n' '' -- as $B "$TS" true
check "B: 4" 0 $'4\n' '' -- as $B "$TS" true
check "B -u 4" 0 '' '' -- as $B "$TS" -u 4
is "$(qts | awk 'NR > 1 {print $1}' | tr '\n' ,)" "0,1,2,4,3," "B's job moved ahead of B's own jobs only"
check "A -u 3 (the owner)" 0 '' '' -- as $A "$TS" -u 3
is "$(qts | awk 'NR > 1 {print $1}' | tr '\n' ,)" "0,3,1,2,4," "the owner's -u moves it to second place"
check "B's -N 0 job: 5" 0 $'5\n' '' -- as $B "$TS" -N 0 true
run_cmd qts -i 5
[[ $OUT == *"Slots required: 1"* ]] && pass "B's -N 0 takes one slot" || fail "B's -N 0 takes one slot" "$OUT"
p=$(qserver); kill -KILL "$p"; eventually "killed" -- pid_gone "$p"
is "$(as $A "$TS" | awk 'NR > 1 {print $1}' | tr '\n' ,)" "0,3,1,2,4,5," "after a crash, the order comes back from the journal"
release go8
check "every job runs" 0 '' '' -- as $A "$TS" -w 5
stop_queues

# ---- 9. -E: the .e file is made exclusively ---------------------------------------------------------------
new_queue q9
mkdir -m 1777 "$T/tmp9"
check "A starts q9" 0 '' '' -- as $A "$TS" -S 4
(bg_as $B sh -c 'while [ -d "$1" ]; do for f in "$1"/ts-out.??????; do [ -e "$f" ] && [ ! -e "$f.e" ] && { : >"$f.e"; chmod 666 "$f.e"; }; done; done' _ "$T/tmp9" 2>/dev/null) &
racer=$!
for i in $(seq 0 29); do as $A env TMPDIR="$T/tmp9" "$TS" -E sh -c 'echo out; echo $SECRET >&2' >/dev/null; done
for i in $(seq 0 29); do as $A "$TS" -w $i >/dev/null 2>&1; done
kill "$racer" 2>/dev/null; wait "$racer" 2>/dev/null
leaked=$(find "$T/tmp9" -name '*.e' -user $B -size +0 | wc -l)
is "$leaked" 0 "no file of B's received A's stderr"
mine=$(for i in $(seq 0 29); do f=$(as $A "$TS" -o $i).e; [ "$(stat -c %u "$f")" = $A ] && grep -q secret-of-a "$f" && echo y; done | wc -l)
is "$mine" 30 "every job's stderr is in a .e file of A's"
stop_queues

# ---- 10. TS_SAVELIST runs nothing but ts, with the exact arguments ---------------------------------------
new_queue q10
check "A's blocker: 0" 0 $'0\n' '' -- as $A env TS_SAVELIST="$T/ta/saved" "$TS" waitfor go10
check "A's job with awkward arguments: 1" 0 $'1\n' '' -- as $A "$TS" printf '%s|' "it's" 'a b' '$(touch pwned-a)' $'two\nlines'
check "B's job: 2" 0 $'2\n' '' -- as $B "$TS" sh -c "touch $T/pwned-b"
check "B's quote breaker: 3" 0 $'3\n' '' -- as $B "$TS" echo "'; touch $T/pwned-b2; '"
p=$(qserver); kill -TERM "$p"; eventually "stopped with the dump" -- pid_gone "$p"
mkdir -m 755 "$T/fake"
printf '#!/bin/sh\nfor a in "$@"; do printf "<%%s>" "$a"; done; echo\n' >"$T/fake/ts"; chmod 755 "$T/fake/ts"
run_cmd as $A sh -c "cd $T/ta && PATH=$T/fake:\$PATH sh $T/ta/saved"
want="<waitfor><go10>"$'\n'"<printf><%s|><it's><a b><\$(touch pwned-a)><two"$'\n'"lines>"$'\n'
is "$OUT" "$want" "running the dump re-queues A's jobs with their exact arguments, and B's not at all"
ok "$([ ! -e "$T/pwned-b" ] && [ ! -e "$T/pwned-b2" ] && [ ! -e "$T/ta/pwned-a" ]; echo $?)" "and runs nothing else"
release go10
stop_queues

# ---- 12. a pid from the future ----------------------------------------------------------------------------
# B's runner reports a pid that no process has: once some process of A's (or root's) gets it, -p would name
# it, and kill -- -PID would hit it. Only a pid of the runner's own child, or its own, is kept.
new_queue q12
check "A starts q12" 0 '' '' -- as $A "$TS" -S 3
future=$(( $(cat /proc/sys/kernel/pid_max) - 7 ))
while [ -e "/proc/$future" ]; do future=$((future - 1)); done
mkfifo "$T/in12"; chmod 666 "$T/in12"
(bg_as $B forge "$Q" runner "$future" "" "" true <"$T/in12" >"$T/out12") &
forger=$!
exec 7>"$T/in12"
eventually "B's runner reported a pid from the future ($future)" -- grep -q started "$T/out12"
run_cmd qts -p 0
is "$RC/$OUT/$ERR" "255//The pid of job 0 is not known (the queue's log says why)."$'\n' "-p: that pid is not known"
check "... the job runs all the same" 0 $'running\n' '' -- qts -s 0
eventually "the log says why" -- grep -qF "reported pid $future, which is not its own child (no such process)" "$Q.error"
mkfifo "$T/in12b"; chmod 666 "$T/in12b"
(bg_as $B forge "$Q" runner self "" "" true <"$T/in12b" >"$T/out12b") &
self=$!
exec 8>"$T/in12b"
eventually "B's second runner reported its own pid" -- grep -q started "$T/out12b"
check "-p: the runner's own pid is kept" 0 "$self"$'\n' '' -- qts -p 1
exec 7>&- 8>&-
qstate 0 finished
qstate 1 finished
kill "$forger" "$self" 2>/dev/null
stop_queues

# ---- 12c. a runner that never reads: signals and cancels for it are refused, not piled up in the server ----
new_queue q12c
check "A starts q12c" 0 '' '' -- as $A "$TS" -S 3
mkfifo "$T/in12c"; chmod 666 "$T/in12c"
(bg_as $B env FORGE_DEAF=1 forge "$Q" runner self "" "" true <"$T/in12c" >"$T/out12c") &
deaf=$!
exec 7>"$T/in12c"
eventually "B's runner that reads nothing has started" -- grep -q started "$T/out12c"
srv=$(TS_SOCKET="$Q" server_pids | head -n 1)
rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$srv/status")
run_cmd as $B forge "$Q" kills 0 5000
n=$(printf '%s' "$OUT" | sed -n 's/^done //p')
ok "$([ -n "$n" ] && [ "$n" -lt 5000 ]; echo $?)" "B's 5,000 signals for its deaf runner: not all carried out (${n:-?})"
[[ $OUT == *"The runner of job 0 does not read what the server sends it: nothing was sent; try again later."* ]] \
    && pass "the rest are refused, saying why" || fail "the rest are refused, saying why" "$OUT"
rss1=$(awk '/^VmRSS/ {print $2}' "/proc/$srv/status")
if [ "${TS_TEST_LIGHT:-0}" = 1 ] || [ -n "${TS_VALGRIND:-}" ]; then   # their allocators keep what is freed
    skip "the server's memory did not grow with them" "a sanitizer's or valgrind's allocator keeps freed memory"
else
    ok "$([ $((rss1 - rss0)) -lt 4096 ]; echo $?)" "the server's memory did not grow with them (${rss0} KB -> ${rss1} KB)"
fi
check "A's queue still answers" 0 $'running\n' '' -- qts -s 0
run_cmd as $B "$TS" --cancel=0
[[ $RC == 255 && $ERR == *"does not read what the server sends it"* ]] && pass "B's own --cancel is refused too" \
    || fail "B's own --cancel is refused too" "$RC: $ERR"
check "A (the server's owner) takes the slot back" 0 \
    $'Job 0\'s runner does not read what the server sends it: the job is ended here (lost), and that runner is let go; its processes are its runner\'s to end.\n' \
    '' -- qts --cancel=0
check "job 0 is finished" 0 $'finished\n' '' -- qts -s 0
exec 7>&-
kill "$deaf" 2>/dev/null
stop_queues

# ---- 13. terminal controls beyond C0 in another user's text ----------------------------------------------
# C1 controls (U+009B CSI and U+009D OSC in UTF-8, a raw 0x9b byte) and bidi overrides (U+202E) in B's label,
# command and reported output path: escaped in A's -l, -i and -o, byte by byte.
new_queue q13
check "A starts q13" 0 '' '' -- as $A "$TS" -S 3
csi=$'\xc2\x9b'  osc=$'\xc2\x9d'  raw=$'\x9b'  rlo=$'\xe2\x80\xae'
check "B's job with C1 controls and an override: 0" 0 $'0\n' '' \
    -- as $B "$TS" -L "lab${csi}2J" echo "${osc}8;;x${raw}" "${rlo}txt.exe"
check "B's job ends" 0 '' '' -- as $B "$TS" -w 0
mkfifo "$T/in13"; chmod 666 "$T/in13"
(bg_as $B forge "$Q" runner 0 "/tmp/x${csi}31m" "" true <"$T/in13" >"$T/out13") &
exec 7>"$T/in13"
eventually "B's forged runner started" -- grep -q started "$T/out13"
# has_none TEXT DESC: TEXT holds none of the controls.
has_none() {
    case $1 in
        *"$csi"* | *"$osc"* | *"$raw"* | *"$rlo"*) fail "$2" "$(printf '%s' "$1" | od -c | head -n 20)" ;;
        *) pass "$2" ;;
    esac
}
run_cmd as $A "$TS" -l
has_none "$OUT" "-l: no C1 control, no override"
[[ $OUT == *'[lab\xc2\x9b2J]echo \xc2\x9d8;;x\x9b \xe2\x80\xaetxt.exe'* ]] && pass "-l: shown escaped" \
    || fail "-l: shown escaped" "$OUT"
run_cmd as $A "$TS" -i 0
has_none "$OUT" "-i: no C1 control, no override"
run_cmd as $A "$TS" -o 1
has_none "$OUT$ERR" "-o of the forged runner's job: no C1 control"
exec 7>&-
qstate 1 finished
stop_queues

# ---- 11. the group recipe ---------------------------------------------------------------------------------
new_queue q11 2770
chgrp $LAB "$T/q11"
run_cmd as $A "$TS" true
is "$RC" 255 "a group-writable directory without the sticky bit: refused"
[[ $ERR == *"can be written by other users and is not sticky"* ]] && pass "saying why" || fail "saying why" "$ERR"
new_queue q11s 2750
chown $A "$T/q11s"; chgrp $LAB "$T/q11s"
check "the safe recipe (2750, the owner's directory): A starts it" 0 $'0\n' '' -- as $A env TS_SOCKET_MODE=0660 "$TS" true
check "B (of the group) queues" 0 $'1\n' '' -- as $B "$TS" true
check "B's job ends" 0 '' '' -- as $B "$TS" -w 1
run_cmd as $B rm -f "$Q" "$Q.journal" "$Q.lock"
ok "$([ -S "$Q" ] && [ -e "$Q.journal" ]; echo $?)" "B cannot delete the queue's files"
p=$(qserver); kill -KILL "$p"; eventually "killed" -- pid_gone "$p"
run_cmd as $B "$TS" -l
[[ $RC == 255 && $ERR == *"belongs to uid $A (the owner of $T/q11s)"* ]] && pass "B cannot start a server there" \
    || fail "B cannot start a server there" "$RC $ERR"
check "A can" 0 $'finished\n' '' -- as $A "$TS" -s 1
stop_queues

# ---- 14. where a queue may lie (StrictModes), and its socket's mode ---------------------------------------
# A sticky lab directory that belongs to B: B could rename anything over A's fresh socket, or delete A's
# files and start a server of his own there. Refused, naming the directory.
new_queue q14 1777
chown $B "$T/q14"
run_cmd as $A "$TS" true
is "$RC" 255 "A's queue in a sticky directory of B's: refused"
[[ $ERR == *"The directory $T/q14 belongs to uid $B"* ]] && pass "naming the directory and its owner" \
    || fail "naming the directory and its owner" "$ERR"
# A's own directory, owner-only, but inside one that everyone may write and that is not sticky: B can
# move A's directory aside and put his own in its place.
mkdir -m 777 "$T/open14"
mkdir -m 700 "$T/open14/q"
chown $A "$T/open14/q"
Q=$T/open14/q/sock
run_cmd as $A "$TS" true
is "$RC" 255 "A's owner-only directory below a non-sticky world-writable one: refused"
[[ $ERR == *"The directory $T/open14 can be written by other users and is not sticky"* ]] \
    && pass "naming the directory above" || fail "naming the directory above" "$ERR"
# Nothing at all in a directory of A's: B is told there is no queue there (not that one belongs to A).
mkdir -m 755 "$T/empty14"
chown $A "$T/empty14"
Q=$T/empty14/sock
run_cmd as $B "$TS" -l
is "$RC" 255 "B's ts where A's directory holds no queue: fails"
[[ $ERR == *"there is no queue at $Q, and only uid $A (the owner of $T/empty14) may start one there"* ]] \
    && pass "saying there is no queue there" || fail "saying there is no queue there" "$ERR"
# The socket gets its mode when it is made (the umask around bind), never by a chmod through its path,
# which would follow whatever B renamed over the socket meanwhile.
if command -v strace >/dev/null; then
    new_queue q14m 1777
    strace -qq -e trace=chmod,fchmodat -o "$T/strace14" \
        env TS_SOCKET="$Q" TS_SOCKET_MODE=0666 "$TS" -l >/dev/null 2>&1
    if grep -q "$Q" "$T/strace14"; then
        fail "no chmod through the socket's path" "$(grep "$Q" "$T/strace14")"
    else
        pass "no chmod through the socket's path"
    fi
    is "$(stat -c %a "$Q")" 666 "and the socket has TS_SOCKET_MODE all the same"
    stop_queues
else
    skip "no chmod through the socket's path" "strace is not installed"
    skip "and the socket has TS_SOCKET_MODE all the same" "strace is not installed"
fi

# ---- 15. another user binds the queue's guard name first ---------------------------------------------------
# Abstract socket names have no permissions: B binds the guard's name before A's first start, so A's server
# runs without one. When a cleaner then removes the socket, A's next client must still find A's server (by
# the path it listens on) and start no second server on the same journal (which would run the jobs twice).
new_queue q15
(bg_as $B forge "$Q" squat "$T/tb/held13") &
squatter=$!
eventually "B holds the guard's name" -- test -s "$T/tb/held13"
check "A starts q15 (without a guard)" 0 '' '' -- as $A "$TS" -S 1
check "A's blocker: 0" 0 $'0\n' '' -- as $A "$TS" waitfor go13
check "A's job: 1" 0 $'1\n' '' -- as $A "$TS" sh -c "echo ran >>$T/ta/ran13"
ok "$(grep -q "guard .* is held by another process" "$Q.error"; echo $?)" "the log says the guard is another's"
rm -f "$Q"   # the cleaner
run_cmd as $A "$TS" -l
is "$RC" 0 "A's next client reaches A's server (which makes its socket again)"
is "$(TS_SOCKET=$Q server_pids | wc -l)" 1 "one server on the queue, not two"
release go13
check "job 1 ends" 0 '' '' -- as $A "$TS" -w 1
is "$(cat "$T/ta/ran13")" ran "job 1 ran once"
stop_queues
kill -TERM "$squatter"; wait "$squatter"; squatter=

# ---- 16. the queue's directory removed, and another user's made in its place ------------------------------
# A cleaner removes A's queue directory from a sticky lab directory; B makes a directory of his own there, or
# a symbolic link of his to a directory of A's that he chose. The server must make nothing there (B could
# move or redirect what it makes), and A's clients must not follow B's link. Once A's own directory is back,
# so is the queue.
new_queue q16
mkdir -m 755 "$T/q16/q" "$T/q16/other"
chown $A "$T/q16/q" "$T/q16/other"
Q=$T/q16/q/sock
queues+=("$Q")
check "A starts q16" 0 '' '' -- as $A "$TS" -S 1
check "A's job waits: 0" 0 $'0\n' '' -- as $A "$TS" -N 5 true
p16=$(qserver)
server_log() {   # the log the server writes (its file may be removed: read it through /proc)
    local f
    for f in /proc/"$p16"/fd/*; do
        case $(readlink "$f") in "$Q.error"*) cat "$f" ;; esac
    done
}
rm -rf "$T/q16/q"   # the cleaner
as $B mkdir -m 777 "$T/q16/q"
eventually "the server says B's directory is not a place for the queue" -- \
    sh -c "$(declare -f server_log); p16=$p16 Q=$Q server_log | grep -q 'The directory $T/q16/q belongs to uid $B'"
is "$(ls -A "$T/q16/q")" "" "nothing of A's server is made in B's directory"
rmdir "$T/q16/q"
as $B ln -s "$T/q16/other" "$T/q16/q"
eventually "the server says B's symbolic link is not a way to the queue" -- \
    sh -c "$(declare -f server_log); p16=$p16 Q=$Q server_log | grep -q 'The symbolic link $T/q16/q belongs to uid $B'"
is "$(ls -A "$T/q16/other")" "" "nothing is made where B's link points"
run_cmd as $A "$TS" -l
[[ $RC == 255 && $ERR == *"The symbolic link $T/q16/q belongs to uid $B"* ]] \
    && pass "A's client does not follow B's link, saying why" || fail "A's client does not follow B's link" "$RC $ERR"
rm -f "$T/q16/q"
mkdir -m 755 "$T/q16/q"; chown $A "$T/q16/q"   # A's own directory again
check "A's queue is back (the server made its socket again)" 0 $'queued\n' '' -- as $A "$TS" -s 0
ok "$([ -S "$Q" ] && [ -s "$Q.journal" ]; echo $?)" "with its socket and journal"
stop_queues

done_testing
