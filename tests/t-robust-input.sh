#!/bin/bash
# Bad input gets a clear error (exit 255) and nothing is lost: unusable socket paths, an output directory
# that is missing, unwritable or full, a command that does not exist, a command line at the system's
# argument limit, arguments and labels with newlines, tabs and bytes that are not UTF-8, and a `ts -w`
# client killed while it waits. Through all of it the queue goes on and keeps every job.
# ts-only: task-spooler deletes a regular file at the socket path and runs a job whose output file
# cannot be created with its output lost.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "ts's error handling differs (see ts.1 DIFFERENCES)"

extra_cleanup() {
    TS_SOCKET="$T/nl" "$TS" -K
    if [ -n "${mounted-}" ]; then umount "$T/small" || umount -l "$T/small"; fi
}

nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# sockets PID: the number of sockets the process holds (the server: its listener, one per runner, one
# per client connection).
sockets() { find "/proc/$1/fd" -mindepth 1 -lname 'socket:*' 2>/dev/null | wc -l; }
# dump_fds PID: the process's descriptors, as diagnostics (after a failed count).
dump_fds() { ls -l "/proc/$1/fd" 2>&1 | awk 'NR > 1 {print "#     " $(NF - 2), $(NF - 1), $NF}' | head -n 40; }
# fds_are PID OP N / sockets_are PID OP N: the count compares (test's -eq, -ge...) with N, evaluated afresh
# at each call (for eventually).
fds_are() { test "$(nfds "$1")" "$2" "$3"; }
sockets_are() { test "$(sockets "$1")" "$2" "$3"; }
# elevel ID: the E-Level column of job ID in the list (the Output column never has spaces).
elevel() { "$TS" -l | awk -v id="$1" 'NR > 1 && $1 == id {print $4}'; }

check "a first job" 0 $'0\n' '' -- "$TS" echo keep
check "-w 0" 0 '' '' -- "$TS" -w 0
spid=$(server_pids)
run_cmd "$TS" -l
list0=$OUT

# ---- socket paths that cannot work ---------------------------------------------------------------------
run_cmd env TS_SOCKET="$T/nodir/s" "$TS" -l
is "$RC/$OUT" "255/" "TS_SOCKET in a missing directory: exit 255, no stdout"
case $ERR in
    "The server didn't come up."*) ok 0 "... the error says the server didn't come up" ;;
    *) fail "... the error says the server didn't come up" "got: $ERR" ;;
esac
is "$(printf '%s' "$ERR" | wc -l)" 1 "... in one line"
run_cmd env TS_SOCKET="$T/nodir/s" "$TS" echo lost
is "$RC/$OUT" "255/" "... enqueueing there fails too (255, no id)"
ok "$([ ! -e "$T/nodir" ]; echo $?)" "... and creates no directory"

printf 'precious\n' >"$T/afile"
check "TS_SOCKET naming a regular file: refused" 255 '' \
    "The socket path exists and it is not a unix socket: $T/afile"$'\n' -- env TS_SOCKET="$T/afile" "$TS" -l
check "... enqueueing there too" 255 '' \
    "The socket path exists and it is not a unix socket: $T/afile"$'\n' -- env TS_SOCKET="$T/afile" "$TS" echo lost
check "... the file is left untouched" 0 $'precious\n' '' -- cat "$T/afile"
check "the real queue is untouched" 0 "$list0" '' -- "$TS" -l

# ---- the output file cannot be created: the job fails, the queue goes on ---------------------------------
# no_output NAME TMPDIR: a job run with that TMPDIR fails (E-Level -1, the reason in -i); the next job runs.
no_output() {
    local name=$1 dir=$2 id next
    id=$(env TMPDIR="$dir" "$TS" echo never)
    check "$name: -w says the job failed" 255 '' '' -- "$TS" -w "$id"
    is "$(elevel "$id")" -1 "$name: E-Level -1 in the list"
    run_cmd "$TS" -i "$id"
    if printf '%s\n' "$OUT" | grep -q '^Error: cannot create the output file'; then
        pass "$name: -i has a line 'Error: cannot create the output file...'"
    else
        fail "$name: -i has a line 'Error: cannot create the output file...'" "got:"
        _show "$OUT"
    fi
    next=$("$TS" echo next)
    check "$name: the next job runs" 0 '' '' -- "$TS" -w "$next"
    check "$name: ... with its output" 0 $'next\n' '' -- sh -c 'cat "$("$TS" -o "$1")"' x "$next"
}
no_output "missing TMPDIR" "$T/missing"
no_output "TMPDIR under a regular file" "$T/afile/sub"
if [ "$(id -u)" != 0 ]; then
    mkdir "$T/ro" && chmod 500 "$T/ro"
    no_output "TMPDIR not writable (mode 500)" "$T/ro"
else
    for d in "-w says the job failed" "E-Level -1 in the list" "-i has a line 'Error: cannot create the output file...'" \
             "the next job runs" "... with its output"; do
        skip "TMPDIR not writable (mode 500): $d" "root writes anywhere (covered by the regular-file case)"
    done
fi

# ---- a command that does not exist ---------------------------------------------------------------------
id=$("$TS" no-such-command-for-ts-robust)
check "missing command: -w says it failed" 255 '' '' -- "$TS" -w "$id"
is "$(elevel "$id")" -1 "missing command: E-Level -1"
check "missing command: the output file says so" 0 $'ts could not run the command\n' '' \
    -- sh -c 'cat "$("$TS" -o "$1")"' x "$id"
next=$("$TS" true)
check "missing command: the next job runs" 0 '' '' -- "$TS" -w "$next"
# has_error ID LINE: -i of the job has exactly that Error line.
has_error() {
    run_cmd "$TS" -i "$1"
    if printf '%s\n' "$OUT" | grep -qxF -- "$2"; then pass "$3"; else fail "$3" "wanted: $2" "got:"; _show "$OUT"; fi
}
has_error "$id" "Error: cannot run 'no-such-command-for-ts-robust': No such file or directory" \
    "missing command: -i says which command, and why"
printf 'echo x\n' >"$T/not-executable"
chmod 644 "$T/not-executable"
id=$("$TS" "$T/not-executable" arg)
check "a command that may not be run: -w says it failed" 255 '' '' -- "$TS" -w "$id"
has_error "$id" "Error: cannot run '$T/not-executable': Permission denied" "... -i says why (permission denied)"
check "... the output file has task-spooler's line" 0 $'ts could not run the command\n' '' \
    -- sh -c 'cat "$("$TS" -o "$1")"' x "$id"

# ---- the working directory is gone when the job starts ---------------------------------------------------
# task-spooler runs such a job anyway (in the directory it had, removed, or under its new name); ts does
# not run it, and says which directory and why, in -i and in the output file.
# gone_cwd NAME CMD...: queue `pwd` in $T/wd (behind a job that holds the slot), then run CMD, which takes
# the directory away, and let the job start.
gone_cwd() {
    local name=$1 id hold
    shift
    mkdir -p "$T/wd"
    hold=$("$TS" waitfor "hold-$name")
    id=$(cd "$T/wd" && "$TS" sh -c 'pwd; touch ran')
    "$@"
    release "hold-$name"
    check "$name: -w says the job failed" 255 '' '' -- "$TS" -w "$id"
    check "$name: the output file says which directory, and why" 0 \
        "ts: cannot change to the working directory '$T/wd': No such file or directory"$'\n' '' \
        -- sh -c 'cat "$("$TS" -o "$1")"' x "$id"
    has_error "$id" "Error: cannot change to the working directory '$T/wd': No such file or directory" \
        "$name: -i says which directory, and why"
    ok "$([ ! -e "$T/wd/ran" ] && [ ! -e "$T/wd2/ran" ]; echo $?)" "$name: the job did not run"
    "$TS" -w "$hold" >/dev/null
}
gone_cwd "working directory removed" rmdir "$T/wd"
gone_cwd "working directory renamed" mv "$T/wd" "$T/wd2"
next=$("$TS" true)
check "the next job runs" 0 '' '' -- "$TS" -w "$next"

# ---- a command line at the system's argument limit -----------------------------------------------------
# ARG_MAX counts the strings and pointers of argv and the environment. One string may not exceed 128 KiB
# (Linux's MAX_ARG_STRLEN), so the arguments are 100,000-byte pieces filling ARG_MAX less the environment
# and 4 KiB. The job gets the very argv and environment that this shell just passed to ts.
max=$(getconf ARG_MAX)
envsz=$(env | wc -c)
nenv=$(env | wc -l)
budget=$((max - envsz - nenv * 8 - 4096 - 200))
piece=$(printf '%*s' 100000 '' | tr ' ' a)
args=()
total=0
while [ $((budget - total)) -ge 100009 ]; do args+=("$piece"); total=$((total + 100009)); done
rest=$((budget - total - 9))
[ "$rest" -gt 0 ] && { args+=("${piece:0:rest}"); total=$((total + rest)); } || rest=0
want="${#args[@]} $(( (${#args[@]} - 1) * 100000 + (rest > 0 ? rest : 100000) ))"
echo "# ARG_MAX $max, environment $envsz bytes: ${#args[@]} arguments, $((total / 1024)) KiB"
run_cmd "$TS" sh -c 'n=0; for a do n=$((n + ${#a})); done; echo "$# $n"' x "${args[@]}"
is "$RC/$ERR" "0/" "a command line near ARG_MAX is queued"
id=${OUT%$'\n'}
check "... it runs" 0 '' '' -- "$TS" -w "$id"
check "... with every byte of its arguments" 0 "$want"$'\n' '' -- sh -c 'cat "$("$TS" -o "$1")"' x "$id"
unset args piece

# ---- newlines, tabs and bytes that are not UTF-8 -------------------------------------------------------
export TS_SOCKET="$T/nl"
check "a label and arguments with a newline, a tab, \\xff\\xfe" 0 $'0\n' '' \
    -- "$TS" -L $'lab\nel\t\xff' printf '%s|' $'a\nb' $'c\td' $'\xff\xfe'
check "-w 0" 0 '' '' -- "$TS" -w 0
check "... the job got its arguments byte for byte" 0 $'a\nb|c\td|\xff\xfe|' '' -- sh -c 'cat "$("$TS" -o 0)"'
check "a running job with a newline" 0 $'1\n' '' -- "$TS" waitfor $'nl\nrelease'
wait_running 1
check "a queued job with a carriage return and a tab" 0 $'2\n' '' -- "$TS" -L $'\r' echo $'x\ry\tz'
run_cmd "$TS" -l
is "$(printf '%s' "$OUT" | wc -l)" 4 "the list has exactly one line per job (and the header)"
is "$(printf '%s' "$OUT" | tail -n +2 | grep -Ec '^[0-9]+ +(running|queued|finished) ')" 3 "... each starting with its id"
if [ "$(printf '%s' "$OUT" | LC_ALL=C tr -d '\n\t\040-\176\200-\377' | wc -c)" = 0 ]; then
    pass "... with no control characters but the newlines (and tabs)"
else
    fail "... with no control characters but the newlines (and tabs)" "got:"
    _show "$OUT"
fi
release $'nl\nrelease'
check "the running one ends" 0 '' '' -- "$TS" -w 1
check "the queued one runs" 0 '' '' -- "$TS" -w 2
check "... with its argument" 0 $'x\ry\tz\n' '' -- sh -c 'cat "$("$TS" -o 2)"'
run_cmd "$TS" -l
is "$(printf '%s' "$OUT" | wc -l)" 4 "the list of finished jobs: one line per job"
"$TS" -K
export TS_SOCKET="$T/s"

# ---- a ts -w client killed while it waits --------------------------------------------------------------
id=$("$TS" waitfor kw 5)
wait_running "$id"
# (earlier runners may still be saying goodbye: wait until only the listener, the queue's guard, the idle
# spare runner and this job's runner are left)
eventually "the server holds 4 sockets: its listener, its guard, the spare runner and the job's runner" 10 -- \
    sockets_are "$spid" -eq 4 || dump_fds "$spid"
"$TS" -w "$id" >/dev/null 2>&1 &
wpid=$!
eventually "ts -w $id is connected and waiting" 10 -- sockets_are "$spid" -eq 5 || dump_fds "$spid"
kill -9 "$wpid"
wait "$wpid" 2>/dev/null
eventually "its connection is closed by the server" 10 -- sockets_are "$spid" -eq 4 || dump_fds "$spid"
release kw
check "the job ends with its own status" 5 '' '' -- "$TS" -w "$id"
is "$(elevel "$id")" 5 "... E-Level 5 in the list"
next=$("$TS" true)
check "the queue goes on" 0 '' '' -- "$TS" -w "$next"

# ---- a disk that fills while a job writes --------------------------------------------------------------
mkdir "$T/small"
if [ "$(id -u)" = 0 ] && mount -t tmpfs -o size=1m tmpfs "$T/small" 2>/dev/null; then
    mounted=1
    id=$(env TMPDIR="$T/small" "$TS" sh -c 'head -c 3000000 /dev/zero; echo after >&2; exit 3')
    check "disk full: the job ends with its own status" 3 '' '' -- "$TS" -w "$id"
    is "$(elevel "$id")" 3 "disk full: E-Level 3"
    out=$("$TS" -o "$id")
    sz=$(wc -c <"$out")
    ok "$([ "$sz" -le 1048576 ]; echo $?)" "disk full: its writes failed (the output file has $sz bytes)"
    next=$("$TS" echo next)
    check "disk full: the next job runs" 0 '' '' -- "$TS" -w "$next"
    check "disk full: ... with its output" 0 $'next\n' '' -- sh -c 'cat "$("$TS" -o "$1")"' x "$next"
    rm -f "$out"
else
    for d in "the job ends with its own status" "E-Level 3" "its writes failed" "the next job runs" \
             "... with its output"; do
        skip "disk full: $d" "cannot mount a small tmpfs here"
    done
fi

# ---- nothing lost ----------------------------------------------------------------------------------------
is "$(server_pids)" "$spid" "the same server throughout"
run_cmd "$TS" -l
is "$(printf '%s' "$OUT" | awk '$1 == 0 {print $2}')" finished "job 0 is still listed"
is "$(printf '%s' "$OUT" | tail -n +2 | grep -vc ' finished ')" 0 "every job finished"

done_testing
