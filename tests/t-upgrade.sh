#!/bin/bash
# Upgrade in place: `ts --restart` moves a live queue from a server of the previous release (aa7d2c9:
# journal format 1, wire protocol 1) to a server of the ts under test, with nothing lost. The job
# running under the old binary's runner goes on, and its result arrives at the new server; queued
# jobs run under the new server; the finished job stays; and nothing brings the old server back.
# Also: a client of the new ts that meets the old server tells the user about --restart, never -K
# (which empties the queue).
#
# The old binary: $TS_OLD_BINARY if set, else built from git (git archive aa7d2c9 | make ts) into
# build-old/aa7d2c9/ at the repo root, and reused from there. Without the git history (a tarball),
# the script is skipped.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler has no --restart"

REV=aa7d2c9
skip_all() {
    echo "1..0 # SKIP $1"
    trap - EXIT
    cd / && rm -rf "$T"
    exit 0
}
# fail_all DESC LINES...: one failed case, and stop here.
fail_all() {
    fail "$@"
    done_testing
    exit 1
}

if [ -n "${TS_VALGRIND-}" ]; then
    skip_all "under valgrind (make check-valgrind): the old release's server is no part of this tree, and a restart's timing does not hold there"
fi

# ---- the old binary ------------------------------------------------------------------------------------
if [ -n "${TS_OLD_BINARY-}" ]; then
    OLD=$TS_OLD_BINARY
    [ -x "$OLD" ] || fail_all "TS_OLD_BINARY is an executable" "TS_OLD_BINARY=$OLD is not executable"
else
    if ! git -C "$_repo_root" cat-file -e "$REV^{commit}" 2>/dev/null; then
        skip_all "no git history with the release $REV here to build the old ts from (set TS_OLD_BINARY to a ts built from it)"
    fi
    cache=$_repo_root/build-old/$REV
    OLD=$cache/ts
    if [ ! -x "$OLD" ]; then
        rm -rf "$cache"   # (a tree without its binary: built anew)
        # Built aside and renamed into place: a concurrent run never sees half a tree.
        mkdir -p "$_repo_root/build-old"
        tmp=$(mktemp -d "$_repo_root/build-old/.build.XXXXXX")
        chmod 755 "$tmp"
        echo "# building ts $REV into $cache"
        if ! { git -C "$_repo_root" archive "$REV" | tar -x -C "$tmp"; } >"$tmp/.build.log" 2>&1 ||
            ! make -C "$tmp" -j"$(nproc 2>/dev/null || echo 2)" ts >>"$tmp/.build.log" 2>&1 ||
            [ ! -x "$tmp/ts" ]; then
            mapfile -t log < <(tail -n 30 "$tmp/.build.log")
            rm -rf "$tmp"
            fail_all "build ts $REV (the old release) from git" "the end of the build log:" "${log[@]}"
        fi
        mv -T "$tmp" "$cache" 2>/dev/null || rm -rf "$tmp"   # lost a race: the other build is as good
    fi
fi
OLD=$(readlink -f "$OLD")
NEW=$(readlink -f "$TS")
export OLD
echo "# old: $OLD"
echo "# new: $NEW"
if [ "$OLD" = "$NEW" ]; then fail_all "the old and the new binary differ" "both are $NEW"; fi

# ---- helpers -------------------------------------------------------------------------------------------
# exe_of PID: the binary a process runs (empty once it is gone).
exe_of() { readlink "/proc/$1/exe" 2>/dev/null; }
pid_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" = Z ]; }
# old_procs: the processes of this queue (TS_SOCKET in their environment) that run the old binary,
# as "PID NAME" (ts-server, ts-spawner, ts-runner).
old_procs() {
    local p
    for p in $(procs_with_env "TS_SOCKET=$TS_SOCKET"); do
        if [ "$(exe_of "$p")" = "$OLD" ]; then echo "$p $(cat "/proc/$p/comm" 2>/dev/null)"; fi
    done
}
no_old_server() { ! old_procs | grep -q ' ts-server$'; }
old_server_up() { ! no_old_server; }
no_old_procs() { [ -z "$(old_procs)" ]; }
# old_is ID STATE: the old client sees job ID in STATE.
old_is() { [ "$("$OLD" -s "$1" 2>/dev/null)" = "$2" ]; }
old_has_pid() { [[ $("$OLD" -p "$1" 2>/dev/null) =~ ^[1-9][0-9]*$ ]]; }
# only_server PID: exactly that one server listens on the socket.
only_server() { [ "$(server_pids | tr '\n' ' ')" = "$1 " ]; }
# never_within SECS DESC -- CMD...: CMD stays false for SECS seconds (sampled every 50 ms).
never_within() {
    local secs=$1 desc=$2 start
    shift 3
    start=$(date +%s)
    while [ $(( $(date +%s) - start )) -lt "$secs" ]; do
        if "$@" >/dev/null 2>&1 </dev/null; then
            fail "$desc" "it happened: $(printf '%q ' "$@")"
            return 1
        fi
        sleep 0.05
    done
    pass "$desc"
}
extra_cleanup() {
    release go
    if ! no_old_server; then "$OLD" -K; fi
}

# ---- the queue under the old release -------------------------------------------------------------------
check "old: -S 1" 0 '' '' -- "$OLD" -S 1
check "old: job 0 (exit 3)" 0 $'0\n' '' -- "$OLD" sh -c 'exit 3'
check "old: -w 0 returns 3" 3 '' '' -- "$OLD" -w 0
blocker="while [ ! -e '$T/go' ] && [ -d '$T' ]; do sleep 0.05; done; exit 7"
check "old: job 1, the blocker" 0 $'1\n' '' -- "$OLD" sh -c "$blocker"
eventually "old: job 1 runs" -- old_is 1 running
eventually "old: job 1's runner reported its pid" -- old_has_pid 1
# job 2 prints the binary of its runner (its parent): the ts that ran it
check "old: job 2, queued, labelled" 0 $'2\n' '' -- "$OLD" -L 'after restart' sh -c 'readlink /proc/$PPID/exe'
check "old: job 3, queued" 0 $'3\n' '' -- "$OLD" sh -c 'echo three; exit 5'
run_cmd "$OLD" -l
old_list=$OUT
mapfile -t sp < <(server_pids)
is "${#sp[@]}" 1 "old: one server listens on the socket"
old_server=${sp[0]:-none}
is "$(exe_of "$old_server")" "$OLD" "old: the server (pid $old_server) runs the old binary"
old_runner=$(old_procs | awk '$2 == "ts-runner" {print $1}' | tr '\n' ' ')
echo "# old server $old_server; its runners (busy and spare): $old_runner"

# ---- a client of the new ts meets the old server ------------------------------------------------------
run_cmd "$TS" -l
ok "$([ "$RC" != 0 ]; echo $?)" "new -l against the old server fails (status $RC)"
if [[ $ERR == *--restart* ]] && [[ $ERR != *-K* ]]; then
    pass "its message suggests --restart, not -K"
else
    fail "its message suggests --restart, not -K" "stderr:"
    _show "$ERR"
fi
is "$OUT" "" "and prints nothing on stdout"
check "the old server is untouched: same list" 0 "$old_list" '' -- "$OLD" -l
ok "$(only_server "$old_server"; echo $?)" "and it is still the only server"

# ---- ts --restart --------------------------------------------------------------------------------------
run_cmd "$TS" --restart
is "$RC" 0 "ts --restart: exit status 0"
is "$OUT" "" "ts --restart: nothing on stdout"
if [ -n "$ERR" ]; then echo "# ts --restart said on stderr:"; _show "$ERR"; fi
eventually "the old server (pid $old_server) is gone" -- pid_gone "$old_server"
mapfile -t sp < <(server_pids)
is "${#sp[@]}" 1 "one server listens on the socket"
new_server=${sp[0]:-none}
ok "$([ "$new_server" != "$old_server" ]; echo $?)" "the server pid changed ($old_server -> $new_server)"
is "$(exe_of "$new_server")" "$NEW" "the new server runs the new binary"
is "$(cat "/proc/$new_server/comm" 2>/dev/null)" ts-server "and is named ts-server"
check "the new server lists every job as the old one did" 0 "$old_list" '' -- "$TS" -l
check "the slot count moved too" 0 $'1\n' '' -- "$TS" -S

# ---- the running job ends under its old runner, its result reaches the new server ---------------------
release go
check "-w 1: the blocker's exit status, 7" 7 '' '' -- "$TS" -w 1
check_norm "job 1 is listed finished with E-Level 7" 0 "$(LF 1 OUT 7 "sh -c $blocker")"$'\n' '' -- \
    sh -c '"$TS" -l | awk "\$1 == 1"'
check "-i 1: exit code 7" 0 $'Exit status: died with exit code 7\n' '' -- sh -c '"$TS" -i 1 | grep "^Exit status"'

# ---- the queued jobs run under the new server ----------------------------------------------------------
wait_state 2 finished 20
wait_state 3 finished 20
check "job 2 ran under a runner of the new binary" 0 "$NEW"$'\n' '' -- sh -c 'cat "$("$TS" -o 2)"'
check "job 3's output" 0 $'three\n' '' -- sh -c 'cat "$("$TS" -o 3)"'
check_norm "the whole list, under the new server" 0 "$(HDR 0 1
    LF 0 OUT 3 'sh -c exit 3'
    LF 1 OUT 7 "sh -c $blocker"
    LF 2 OUT 0 '[after restart]sh -c readlink /proc/$PPID/exe'
    LF 3 OUT 5 'sh -c echo three; exit 5')"$'\n' '' -- "$TS" -l
check "a new job gets the next id, 4" 0 $'4\n' '' -- "$TS" true
check "-w 4" 0 '' '' -- "$TS" -w 4

# ---- nothing of the old binary comes back ------------------------------------------------------------
eventually "every process of the old binary has ended (server, spawner, runners)" -- no_old_procs
if ! no_old_procs; then echo "# still there: $(old_procs | tr '\n' ',')"; fi
never_within 3 "for 3 s no server of the old binary appears" -- old_server_up
ok "$(only_server "$new_server"; echo $?)" "the new server is still the only one"

# ---- --restart with no server: it starts one, with the queue ------------------------------------------
run_cmd "$TS" -l
list=$OUT
kill -TERM "$new_server"
eventually "the new server stopped (SIGTERM keeps the queue)" -- pid_gone "$new_server"
check "ts --restart with no server running" 0 '' '' -- "$TS" --restart
mapfile -t sp < <(server_pids)
is "${#sp[@]}" 1 "it started one server"
is "$(exe_of "${sp[0]:-none}")" "$NEW" "of the new binary"
check "with the queue" 0 "$list" '' -- "$TS" -l

# ---- a relative TS_SOCKET: only this directory's server is restarted ------------------------------------
mkdir -p "$T/ra" "$T/rb"
(cd "$T/ra" && TS_SOCKET=sock "$TS" -l >/dev/null)
(cd "$T/rb" && TS_SOCKET=sock "$TS" -l >/dev/null)
# the server of a directory: listening on "sock", holding that directory's journal open
server_in() {
    local p
    for p in $(TS_SOCKET=sock server_pids); do
        if ls -l "/proc/$p/fd" 2>/dev/null | grep -q "$1/sock.journal"; then echo "$p"; fi
    done
}
ra=$(server_in "$T/ra") rb=$(server_in "$T/rb")
ok "$([ -n "$ra" ] && [ -n "$rb" ]; echo $?)" "two queues named sock, in two directories (servers $ra, $rb)"
check "ts --restart in one of them" 0 '' '' -- sh -c 'cd "$1" && TS_SOCKET=sock "$2" --restart' x "$T/ra" "$TS"
ra2=$(server_in "$T/ra")
ok "$([ -n "$ra2" ] && [ "$ra2" != "$ra" ]; echo $?)" "its server was replaced ($ra -> $ra2)"
ok "$(pid_gone "$rb"; [ $? != 0 ]; echo $?)" "the other directory's server was left alone"
(cd "$T/ra" && TS_SOCKET=sock "$TS" -K)
(cd "$T/rb" && TS_SOCKET=sock "$TS" -K)

done_testing
