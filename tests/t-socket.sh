#!/bin/bash
# Socket path selection and errors (ts-spec.md §1.2 table, §3 TS_SOCKET/TMPDIR, §4.2, §6).
. "$(dirname "$0")/lib.sh"

extra_cleanup() {
    env -u TS_SOCKET TMPDIR="$T/d" "$TS" -K
    TS_SOCKET="$T/other" "$TS" -K
    TS_SOCKET="$T/x107" "$TS" -K
}

# TS_SOCKET names the socket
check "job on \$TS_SOCKET" 0 $'0\n' '' -- "$TS" true
check "-w" 0 '' '' -- "$TS" -w
ok "$([ -S "$TS_SOCKET" ]; echo $?)" "the socket is created at \$TS_SOCKET"
if ts_only; then
    m=$(stat -c %a "$TS_SOCKET")
    ok "$(( 0$m & 077 ))" "socket is owner-only (mode $m)"
else
    skip "socket is owner-only" "tsp creates it with the umask"
fi
check "another TS_SOCKET is another queue (ids from 0)" 0 $'0\n' '' -- env TS_SOCKET="$T/other" "$TS" true
check "-w there" 0 '' '' -- env TS_SOCKET="$T/other" "$TS" -w
ok "$([ -S "$T/other" ]; echo $?)" "second socket exists"
check "first queue unaffected (next id 1)" 0 $'1\n' '' -- "$TS" true
check "-w" 0 '' '' -- "$TS" -w
check "-K the other queue" 0 '' '' -- env TS_SOCKET="$T/other" "$TS" -K
check "first queue still alive" 0 $'finished\n' '' -- "$TS" -s 1

# default socket: $TMPDIR/socket-ts.<uid>
mkdir "$T/d"
check "without TS_SOCKET: job 0 on a new default queue" 0 $'0\n' '' -- env -u TS_SOCKET TMPDIR="$T/d" "$TS" true
check "-w" 0 '' '' -- env -u TS_SOCKET TMPDIR="$T/d" "$TS" -w
ok "$([ -S "$T/d/socket-ts.$(id -u)" ]; echo $?)" "default socket is \$TMPDIR/socket-ts.\$(id -u)"
check "same queue via an explicit TS_SOCKET" 0 $'finished\n' '' -- env TS_SOCKET="$T/d/socket-ts.$(id -u)" "$TS" -s 0
check "-K via the default path" 0 '' '' -- env -u TS_SOCKET TMPDIR="$T/d" "$TS" -K

# a default socket that belongs to someone else is refused (root can fake one with chown)
if [ "$(id -u)" = 0 ]; then
    mkdir "$T/o"
    check "server on the default path" 0 $'1\n' '' -- env -u TS_SOCKET TMPDIR="$T/o" "$TS" -S
    chown 65534 "$T/o/socket-ts.0"
    run_cmd env -u TS_SOCKET TMPDIR="$T/o" "$TS" -l
    is "$ERR" "The uid 0 does not own the socket $T/o/socket-ts.0."$'\n' "foreign default socket: message"
    is "$OUT" "" "foreign default socket: no stdout"
    if ts_only; then is "$RC" 255 "foreign default socket: rc 255"; else skip "foreign default socket: rc 255" "tsp crashes (rc 139)"; fi
    check "an explicit TS_SOCKET is not checked" 0 $'1\n' '' -- env TS_SOCKET="$T/o/socket-ts.0" "$TS" -S
    check "-K it" 0 '' '' -- env TS_SOCKET="$T/o/socket-ts.0" "$TS" -K
else
    for d in "server on the default path" "foreign default socket: message" "foreign default socket: no stdout" \
             "foreign default socket: rc 255" "an explicit TS_SOCKET is not checked" "-K it"; do
        skip "$d" "needs root to chown the socket"
    done
fi

# sun_path is 108 bytes: a 107-byte path works, 108 bytes is too long
base="$T/"
p107=$base$(printf '%*s' $((107 - ${#base})) '' | tr ' ' x)
p108=${p107}y
is "${#p107}/${#p108}" 107/108 "test paths have 107 and 108 bytes"
check "107-byte socket path works" 0 $'1\n' '' -- env TS_SOCKET="$p107" "$TS" -S
check "-K it" 0 '' '' -- env TS_SOCKET="$p107" "$TS" -K
# tsp 1.0.1 prints the message and then crashes (SIGSEGV, rc 139): a documented difference, ts exits 255.
too_long="Cannot create the socket '$p108'. Probably, the name is too long."$'\n'
run_cmd env TS_SOCKET="$p108" "$TS" -S
is "$ERR" "$too_long" "108-byte socket path: error message"
is "$OUT" "" "108-byte socket path: no stdout"
if ts_only; then is "$RC" 255 "108-byte socket path: rc 255"; else skip "108-byte socket path: rc 255" "tsp crashes (rc 139)"; fi
ok "$([ ! -S "$p108" ]; echo $?)" "no socket created at the long path"
run_cmd env TS_SOCKET="$p108" "$TS" true
is "$ERR$OUT" "$too_long" "enqueue with a too-long path: same error"
if ts_only; then is "$RC" 255 "enqueue with a too-long path: rc 255"; else skip "enqueue with a too-long path: rc 255" "tsp crashes (rc 139)"; fi

# socket in a directory that does not exist
# (tsp prints exactly "The server didn't come up."; ts may add the reason after it on the same line)
run_cmd env TS_SOCKET="$T/nodir/s" "$TS" -S
is "$RC/$OUT" "255/" "socket directory missing: rc 255, no stdout"
case $ERR in
    "The server didn't come up."*$'\n') [ "$(printf '%s' "$ERR" | wc -l)" = 1 ] && pass "socket directory missing: one-line error" \
        || fail "socket directory missing: one-line error" "got: $ERR" ;;
    *) fail "socket directory missing: error starts with \"The server didn't come up.\"" "got: $ERR" ;;
esac

# a regular file at the socket path is not ours to delete
printf 'precious\n' >"$T/file"
if ts_only; then
    check "regular file at TS_SOCKET: refused" 255 '' "The socket path exists and it is not a unix socket: $T/file"$'\n' \
        -- env TS_SOCKET="$T/file" "$TS" -S
    check "the file is untouched" 0 $'precious\n' '' -- cat "$T/file"
    check "enqueue refused too" 255 '' "The socket path exists and it is not a unix socket: $T/file"$'\n' \
        -- env TS_SOCKET="$T/file" "$TS" true
    check "-K refused too" 255 '' "The socket path exists and it is not a unix socket: $T/file"$'\n' \
        -- env TS_SOCKET="$T/file" "$TS" -K
    check "the file is still untouched" 0 $'precious\n' '' -- cat "$T/file"
else
    for d in "regular file at TS_SOCKET: refused" "the file is untouched" "enqueue refused too" \
             "-K refused too" "the file is still untouched"; do
        skip "$d" "tsp 1.0.1 deletes the file (bug, fixed in 1.0.2)"
    done
fi

done_testing
