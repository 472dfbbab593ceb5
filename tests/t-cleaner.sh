#!/bin/bash
# t-cleaner.sh — a queue has at most one server, whatever happens to the files beside it: a /tmp
# cleaner deleting the socket, `rm -rf` of the whole directory (made again or not), a socket replaced by
# another file. The server holds the queue's guard for its whole life, puts back what is removed, and never
# removes what is not its own; a client never starts a second server.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "the queue's guard is ts's"

# Jobs that count their runs: each appends its name to $T/runs.
count_runs() { grep -c "^$1\$" "$T/runs" 2>/dev/null || echo 0; }

"$TS" -S 1 >/dev/null
blocker=$("$TS" waitfor go1)
ids=()
for i in 1 2 3 4 5; do ids+=("$("$TS" sh -c "echo job$i >>'$T/runs'")"); done
first=$(server_pids)

# 1. The socket is deleted while the server runs.
rm -f "$TS_SOCKET"
run_cmd "$TS" -l
is "$RC" 0 "ts -l after the socket was deleted: rc 0"
case $OUT in *"[run=1/1]"*) pass "the list is the running server's (1 running)" ;;
    *) fail "the list is the running server's" "$OUT" ;; esac
is "$(server_pids)" "$first" "still one server, the same one"
ok "$([ -S "$TS_SOCKET" ]; echo $?)" "the socket was put back"
grep -q "the socket $TS_SOCKET was removed while the server ran: made again" "$TS_SOCKET.error"
ok $? "the log says the socket was made again"

# 2. Everything in the directory is removed (socket, journal, lock, log).
find "$T" -maxdepth 1 -name 's*' -exec rm -f {} +
run_cmd "$TS" -l
is "$RC" 0 "ts -l after the queue's files were all removed: rc 0"
is "$(server_pids)" "$first" "still one server, the same one (files removed)"
eventually "the journal is written again" -- test -s "$TS_SOCKET.journal"

# A server killed now keeps the queue: the journal that was put back holds it.
kill -9 $first
# (the blocker's runner starts the next server when it finds its own gone)
not_first() { [ -n "$(server_pids)" ] && [ "$(server_pids)" != "$first" ]; }
eventually "the first server is gone, and a new one serves the queue" -- not_first
run_cmd "$TS" -l
n=$(printf '%s\n' "$OUT" | grep -c 'sh -c echo job')
is "$n" 5 "after a SIGKILL, the next server has the 5 queued jobs from the journal put back"
release go1
for id in "${ids[@]}"; do "$TS" -w "$id" >/dev/null 2>&1; done
twice=0
for i in 1 2 3 4 5; do [ "$(count_runs job$i)" = 1 ] || twice=$((twice + 1)); done
is "$twice" 0 "each of the 5 jobs ran exactly once"

# 3. The directory is removed and made again while the server runs.
second=$(server_pids)
save=$(mktemp -d -p /tmp)   # outside $T: waitfor ends when $T goes
cp -a "$T/bin" "$save/"
blocker=$("$TS" sh -c "i=0; while [ ! -e '$save/go2' ] && [ \$i -lt 2400 ]; do sleep 0.05; i=\$((i+1)); done")
"$TS" sh -c "echo job6 >>'$T/runs'" >/dev/null
wait_running "$blocker"
rm -rf "$T"
ERR=$("$TS" -l 2>&1 >/dev/null)
RC=$?
is "$RC" 255 "with the directory gone, a client fails"
case $ERR in *"is running, but its socket $TS_SOCKET is gone"*"no second server was started"*) pass "... and says the queue's server runs without its socket" ;;
    *) fail "... and says the queue's server runs without its socket" "$ERR" ;; esac
ok "$([ ! -e "$T" ]; echo $?)" "... and made nothing"
mkdir "$T" && cp -a "$save/bin" "$T/"
run_cmd "$TS" -l
is "$RC" 0 "the directory made again: ts -l works"
is "$(server_pids)" "$second" "still one server, the same one (directory made again)"
n=$(printf '%s\n' "$OUT" | grep -c 'echo job6')
is "$n" 1 "... and it lists the queued job"
eventually "its journal is written again" -- test -s "$TS_SOCKET.journal"
: >"$save/go2"
"$TS" -w "$blocker" >/dev/null 2>&1
rm -rf "$save"
id6=$("$TS" -l | awk "/echo job6/ {print \$1}")
"$TS" -w "$id6" >/dev/null 2>&1
is "$(count_runs job6)" 1 "the job queued before the directory went ran once"

# 4. A socket replaced by another file is left alone; the server's SIGTERM does not remove it.
other="$T/other"
mkdir -m 700 "$other"
mv "$TS_SOCKET" "$other/moved"
: >"$TS_SOCKET"
run_cmd env TS_SOCKET="$other/moved" "$TS" -l
is "$RC" 0 "the server is reached through its socket's new name"
kill -TERM "$second"
eventually "the server stopped on SIGTERM" -- no_server
ok "$([ -f "$TS_SOCKET" ] && [ ! -S "$TS_SOCKET" ]; echo $?)" "the file put in the socket's place is still there"
rm -f "$TS_SOCKET" "$other/moved"
rmdir "$other"

# 5. Racing starts with the socket gone: one server at most.
"$TS" -l >/dev/null
third=$(server_pids)
rm -f "$TS_SOCKET"
for i in 1 2 3 4 5 6 7 8; do "$TS" -l >/dev/null 2>&1 & done
wait
is "$(server_pids)" "$third" "eight clients after the socket was deleted: still the one server"

# 6. The journal removed, or replaced by another file, while the server runs (a queue of its own, one
#    job running, five queued): no change a client hears of is written only to a file that is no longer at
#    the journal's path, where a server killed a moment later would lose it.
jq="$T/jr"
mkdir "$jq"
J() { TS_SOCKET="$jq/s" "$TS" "$@"; }
jr_pid() { TS_SOCKET="$jq/s" server_pids; }
# jr_labels [MORE...]: the commands (with their labels) of the jobs not finished, and MORE, sorted.
jr_labels() { { J -l 2>/dev/null | awk 'NR > 1 && $2 != "finished" { print $NF }'; [ $# = 0 ] || printf '%s\n' "$@"; } | sort | tr '\n' ' '; }
pid_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" = Z ]; }
extra_cleanup() { : >"$T/go_jr"; J -K; }
J -S 1 >/dev/null
J waitfor go_jr >/dev/null
for i in 1 2 3 4 5; do J -L "q$i" true >/dev/null; done
before=$(J -l | awk 'NR > 1 { print $NF }')
jr_labels0() { printf '%s\n' "$before" "$@" | sort | tr '\n' ' '; }   # the queue before, and these
jp=$(jr_pid)
rm -f "$jq/s.journal"
run_cmd J -L after-rm true
is "$RC" 0 "journal removed, a job queued at once: rc 0"
kill -9 "$jp"
eventually "... the server killed at once is gone" -- pid_gone "$jp"
is "$(jr_labels)" "$(jr_labels0 '[after-rm]true')" "... the next server has the whole queue and that job"

jp=$(jr_pid)
cp "$jq/s.journal" "$jq/copy"
mv "$jq/copy" "$jq/s.journal"
run_cmd J -L after-replace true
is "$RC" 255 "journal replaced by another file: a job is refused"
case $ERR in *"another file took its place ($jq/s.journal): move that file away"*) pass "... saying why and what to do" ;;
    *) fail "... saying why and what to do" "$ERR" ;; esac
mv "$jq/s.journal" "$jq/foreign"
run_cmd J -L after-move true
is "$RC" 0 "... once that file is moved away, a job is queued again"
kill -9 "$jp"
eventually "... the server killed at once is gone" -- pid_gone "$jp"
is "$(jr_labels)" "$(jr_labels0 '[after-rm]true' '[after-move]true')" "... the next server has the whole queue, and only the jobs that were queued"
: >"$T/go_jr"
J -K >/dev/null 2>&1

# The journal removed while the disk is full (root: a small tmpfs): it cannot be written again, so a change
# is refused, saying why (the full disk, not only that the file is gone).
fm="$T/full"
mkdir "$fm"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$fm" 2>/dev/null; then
    F() { TS_SOCKET="$fm/s" "$TS" "$@"; }
    F -L first true >/dev/null
    dd if=/dev/zero of="$fm/fill" bs=4k 2>/dev/null
    rm -f "$fm/s.journal"
    run_cmd F -L during-full true
    is "$RC" 255 "journal removed on a full disk: a job is refused"
    case $ERR in *"journal cannot be written: No space left on device"*) pass "... saying the disk is full" ;;
        *) fail "... saying the disk is full" "$ERR" ;; esac
    rm -f "$fm/fill"
    eventually "... once there is room, the journal is written again" -- test -s "$fm/s.journal"
    F -K >/dev/null 2>&1
    for i in $(seq 100); do umount "$fm" 2>/dev/null && break; sleep 0.1; done
    mountpoint -q "$fm" && umount -l "$fm"
else
    skip "journal removed on a full disk" "needs root and a tmpfs"
fi

# 7. Second names for the queue's files made elsewhere (another user's hard links, where
#    protected_hardlinks is 0; here the owner's own, which has the same effect) stop no queue in a
#    directory only its owner can write.
"$TS" -K >/dev/null 2>&1
q="$T/q" elsewhere="$T/elsewhere"
mkdir -m 700 "$q" "$elsewhere"
TS_SOCKET="$q/s" "$TS" true >/dev/null
TS_SOCKET="$q/s" "$TS" -w >/dev/null 2>&1
for f in journal lock error; do ln "$q/s.$f" "$elsewhere/$f"; done
run_cmd env TS_SOCKET="$q/s" "$TS" --restart
is "$RC$ERR" 0 "--restart with second links to the journal, lock and log: the server starts"
run_cmd env TS_SOCKET="$q/s" "$TS" -l
case $OUT in *" true"*) pass "... and has the queue" ;; *) fail "... and has the queue" "$OUT" "$ERR" ;; esac
TS_SOCKET="$q/s" "$TS" -K >/dev/null 2>&1

# In a sticky directory others may write, a second name for the log is dropped and a new log made
# (appending to it could write into another file of the owner's); the lock is only locked.
st="$T/sticky"
mkdir -m 1777 "$st"
TS_SOCKET="$st/s" "$TS" true >/dev/null
TS_SOCKET="$st/s" "$TS" -w >/dev/null 2>&1
TS_SOCKET="$st/s" "$TS" -K >/dev/null 2>&1
ln "$st/s.error" "$elsewhere/error2"
ln "$st/s.lock" "$elsewhere/lock2"
run_cmd env TS_SOCKET="$st/s" "$TS" -l
is "$RC" 0 "sticky directory, second links to the log and lock: the server starts"
ok "$([ "$(stat -c %h "$st/s.error")" = 1 ] && [ "$(stat -c %h "$elsewhere/error2")" = 1 ]; echo $?)" \
    "... with a log of its own (the other name keeps the old file)"
TS_SOCKET="$st/s" "$TS" -K >/dev/null 2>&1

done_testing
