#!/bin/bash
# Durability of the queue under hostile conditions:
#  1. a full disk (root: a small tmpfs): changes are refused with the reason, nothing is lost or
#     truncated, a SIGKILLed server comes back with the whole queue, running jobs still report their
#     result, and the queue recovers by itself when space returns;
#  2. single bit flips all over a journal: a damaged record costs that record only, the log says so, and
#     the damaged file is kept aside as it was; a zeroed sector (the first one, one of a shared
#     environment) costs only the jobs with a record in it, and ids go on;
#  3. exactly-once submit across a server crash between journaling a job and answering;
#  4. -g (gzip) with a background child that holds the job's stdout: the job still ends;
#  5. exhaustion (descriptors; processes, root only): jobs that cannot start yet wait and then run;
#  6. a server that dies at start: runners back off (not hundreds of tries), and reach the next good one;
#  7. a job whose runner is SIGKILLed says why it was lost in -i;
#  8. TS_FSYNC=1 (smoke test).
# ts-only: task-spooler keeps its queue in memory.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler has no journal"

slow=0     # make check-valgrind: every server start takes a second or more
light=0    # make check SANITIZE=1
[ -n "${TS_VALGRIND-}" ] && slow=1
[ "${TS_TEST_LIGHT-0}" = 1 ] && light=1
D=10       # deadline (s) for things that take a moment
[ "$slow" = 1 ] && D=40
root=0
[ "$(id -u)" = 0 ] && root=1

FULL="$T/full"      # the tmpfs of part 1
NPDIR=""            # the private queue of uid $NPUID (part 5)
NPUID=4177      # a uid of its own (t-security uses 4101-4103, 4150)
extra_cleanup() {
    release fdgo; release bogo; release lostgo; release gbg; release fsgo
    local s
    for s in "$FULL/s" "$T/bf/s" "$T/zs/s" "$T/eo/s" "$T/ex/s" "$T/bo/s" "$T/fs/s"; do
        [ -S "$s" ] && TS_SOCKET=$s "$TS" -K
    done
    if [ -n "$NPDIR" ]; then
        (cd / && setpriv --reuid=$NPUID --regid=$NPUID --clear-groups env TS_SOCKET="$NPDIR/s" "$TS" -K)
        rm -rf "$NPDIR"
    fi
    if [ -n "${mounted-}" ]; then umount "$FULL" || umount -l "$FULL"; fi
}

server_pid() { server_pids | head -n 1; }
pid_gone() { [ ! -e "/proc/$1/stat" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" | cut -c1)" = Z ]; }
# kill_server SIG DESC: kill the live server of $TS_SOCKET and wait until that process is gone.
kill_server() {
    local p
    p=$(server_pid)
    if [ -z "$p" ]; then fail "$2" "no server was up"; return 1; fi
    kill "-$1" "$p"
    eventually "$2" "$D" -- pid_gone "$p"
}
size() { stat -c %s "$1" 2>/dev/null || echo 0; }
# has TEXT NEEDLE DESC: TEXT contains NEEDLE.
has() {
    case $1 in
        *"$2"*) pass "$3" ;;
        *) fail "$3" "expected to contain: $2" "got:"; _show "$1" ;;
    esac
}
# brief LIST: "ID STATE E-LEVEL COMMAND" per job (finished jobs), "ID STATE COMMAND" (others), no header.
brief() { printf '%s' "$1" | awk 'NR > 1 { if ($2 == "finished") print $1, $2, $4, $NF; else print $1, $2, $NF }'; }
# elevel ID: the E-Level column of job ID in the list.
elevel() { "$TS" -l 2>/dev/null | awk -v id="$1" 'NR > 1 && $1 == id {print $4}'; }

# ==== 1. a full disk ===================================================================================
FD_CASES=(
    "full disk: ts echo x is refused (255, no id)"
    "full disk: ... stderr says the journal cannot be written"
    "full disk: ... and why (No space left on device)"
    "full disk: ... and that the job was not queued"
    "full disk: ts -l works (exit 0) and lists the same jobs"
    "full disk: ... with a warning on stderr"
    "full disk: ts -r, -u, -S 3, -C are refused (255, 'nothing was changed')"
    "full disk: the list did not change"
    "full disk: the slot count did not change"
    "full disk, SIGKILL: server gone"
    "full disk, SIGKILL: a new server lists every job in the same order and state"
    "full disk: the blocked job, released, ends with its own status (ts -w)"
    "full disk: ... its E-Level 7 is in the list"
    "full disk, SIGKILL again: server gone"
    "full disk, SIGKILL again: the finished job's result was journaled"
    "full disk: the journal never shrank below its size before the fill, nor vanished"
    "space again: ts echo y is queued without a restart, with the next id"
    "space again: ... and no warning"
    "space again: ts -l has no warning"
    "space again: the same server"
    "space again: the log says 'written again'"
    "space again: every job ends"
    "100 KB free, a 200 KB job: refused (255, no id)"
    "100 KB free, a 200 KB job: ... 'the job was not queued'"
    "100 KB free, a 200 KB job: the journal did not keep its partial record"
    "100 KB free, a 200 KB job: the list did not change"
    "100 KB free: the next job gets the next id"
    "100 KB free: ... and runs"
    "space again, SIGKILL: server gone"
    "space again, SIGKILL: the whole queue comes back"
    "space again, SIGKILL: the new server found nothing damaged in the journal"
)
mkdir -p "$FULL"
if [ "$root" = 1 ] && mount -t tmpfs -o size=2m tmpfs "$FULL" 2>/dev/null; then
    mounted=1
    export TS_SOCKET="$FULL/s" TMPDIR="$FULL"
    J="$TS_SOCKET.journal"
    "$TS" -S 1
    blk=$("$TS" -L blk waitfor fdgo 7)
    wait_running "$blk"
    "$TS" -L q1 echo a >/dev/null
    "$TS" sh -c 'exit 3' >/dev/null
    "$TS" -L q3 -D "$blk" true >/dev/null
    last=$("$TS" -L q4 echo b)
    run_cmd "$TS" -l
    list0=$OUT
    jsize0=$(size "$J")
    echo "# before the fill: journal $jsize0 bytes, $(printf '%s' "$list0" | sed 1d | wc -l) jobs"
    dd if=/dev/zero of="$FULL/fill" bs=64k 2>/dev/null
    dd if=/dev/zero of="$FULL/fill2" bs=1k 2>/dev/null   # what a 64k block left over
    echo "# filled: $(df -k "$FULL" | awk 'NR == 2 {print $4}') KiB left"
    minsize=$jsize0
    track() { local s; s=$(size "$J"); [ -e "$J" ] || s=-1; [ "$s" -lt "$minsize" ] && minsize=$s; }

    run_cmd "$TS" echo x
    track
    is "$RC/$OUT" "255/" "${FD_CASES[0]}"
    fellback=0
    if [ "$RC" = 0 ]; then
        fellback=1
        # Submissions were accepted on a full disk: the records went into the room kept ahead
        # (fallocate). Go on until the journal refuses, so that the rest can still be checked.
        n=1
        while [ "$n" -lt 2000 ]; do
            run_cmd "$TS" -L filler true
            [ "$RC" = 0 ] || break
            n=$((n + 1))
        done
        track
        echo "# the first refusal came at submission $((n + 1)) after the disk was full (journal: $(size "$J") bytes)"
        run_cmd "$TS" echo x
    fi
    has "$ERR" "the queue's journal cannot be written" "${FD_CASES[1]}"
    has "$ERR" "No space left on device" "${FD_CASES[2]}"
    has "$ERR" "the job was not queued" "${FD_CASES[3]}"
    run_cmd "$TS" -l
    track
    # (the "before" list: what was queued before the first refusal)
    if [ "$fellback" = 1 ]; then
        list0=$OUT
        last=$(printf '%s' "$OUT" | awk 'NR > 1 {print $1}' | sort -n | tail -n 1)
    fi
    is "$RC/$OUT" "0/$list0" "${FD_CASES[4]}"
    if printf '%s\n' "$ERR" | grep -q "^ts: warning: the queue's journal cannot be written: "; then
        pass "${FD_CASES[5]}"
    else
        fail "${FD_CASES[5]}" "got:"; _show "$ERR"
    fi
    q1=$(printf '%s' "$list0" | awk '/\[q1\]echo a$/ {print $1}')
    q4=$(printf '%s' "$list0" | awk '/\[q4\]echo b$/ {print $1}')
    bad=""
    for a in "-r $q1" "-u $q4" "-S 3" "-C"; do
        # shellcheck disable=SC2086
        run_cmd "$TS" $a
        track
        case $RC/$OUT/$ERR in
            "255//"*"the queue's journal cannot be written"*"nothing was changed"*) ;;
            *) bad="$bad ts $a: rc $RC, stdout '$OUT', stderr '$ERR';" ;;
        esac
    done
    if [ -z "$bad" ]; then pass "${FD_CASES[6]}"; else fail "${FD_CASES[6]}" "$bad"; fi
    run_cmd "$TS" -l
    is "$OUT" "$list0" "${FD_CASES[7]}"
    check "${FD_CASES[8]}" 0 $'1\n' '' -- sh -c '"$TS" -S 2>/dev/null'
    track

    kill_server KILL "${FD_CASES[9]}"
    track
    run_cmd "$TS" -l
    track
    is "$(brief "$OUT")" "$(brief "$list0")" "${FD_CASES[10]}"

    release fdgo
    check "${FD_CASES[11]}" 7 '' '' -- sh -c '"$TS" -w "$1" 2>/dev/null' x "$blk"
    track
    is "$(elevel "$blk")" 7 "${FD_CASES[12]}"
    track
    kill_server KILL "${FD_CASES[13]}"
    track
    is "$(elevel "$blk")" 7 "${FD_CASES[14]}"
    track
    if [ "$minsize" -ge "$jsize0" ]; then pass "${FD_CASES[15]}"
    else fail "${FD_CASES[15]}" "smallest size seen: $minsize (-1: no file); before the fill: $jsize0"; fi

    # Space again.
    spid=$(server_pid)
    rm -f "$FULL/fill" "$FULL/fill2"
    run_cmd "$TS" echo y
    is "$RC/$OUT" "0/$((last + 1))"$'\n' "${FD_CASES[16]}"
    is "$ERR" "" "${FD_CASES[17]}"
    run_cmd "$TS" -l
    is "$RC/$ERR" "0/" "${FD_CASES[18]}"
    is "$(server_pid)" "$spid" "${FD_CASES[19]}"
    eventually "${FD_CASES[20]}" "$D" -- grep -q "written again" "$TS_SOCKET.error"
    bad=0
    for i in $(seq 0 $((last + 1))); do
        timeout "$((D * 3))" "$TS" -w "$i" >/dev/null 2>&1
        [ $? = 124 ] && bad=$((bad + 1))
    done
    run_cmd "$TS" -l
    listend=$OUT
    left=$(printf '%s' "$listend" | awk 'NR > 1 && ($2 == "queued" || $2 == "running")' | wc -l)
    if [ "$bad/$left" = 0/0 ]; then pass "${FD_CASES[21]}"
    else fail "${FD_CASES[21]}" "$bad -w timed out; $left jobs still queued or running:"; _show "$listend"; fi
    # A record larger than what is left (100 KB free, and the room kept ahead): its write fails
    # half-way, and the partial bytes are taken back.
    dd if=/dev/zero of="$FULL/fill" bs=64k 2>/dev/null
    dd if=/dev/zero of="$FULL/fill2" bs=1k 2>/dev/null
    truncate -s -100K "$FULL/fill"
    echo "# 100 KB free: $(df -k "$FULL" | awk 'NR == 2 {print $4}') KiB left"
    jsize1=$(size "$J")
    piece=$(head -c 100000 /dev/zero | tr '\0' a)
    run_cmd "$TS" echo "$piece" "$piece"
    unset piece
    is "$RC/$OUT" "255/" "${FD_CASES[22]}"
    has "$ERR" "the job was not queued" "${FD_CASES[23]}"
    jsize2=$(size "$J")
    if [ "$jsize2" -ge "$jsize1" ] && [ "$jsize2" -le $((jsize1 + 200)) ]; then pass "${FD_CASES[24]}"
    else fail "${FD_CASES[24]}" "journal: $jsize1 bytes before, $jsize2 after"; fi
    run_cmd "$TS" -l
    is "$OUT" "$listend" "${FD_CASES[25]}"
    check "${FD_CASES[26]}" 0 "$((last + 2))"$'\n' '' -- "$TS" true
    check "${FD_CASES[27]}" 0 '' '' -- "$TS" -w "$((last + 2))"
    rm -f "$FULL/fill" "$FULL/fill2"
    run_cmd "$TS" -l
    listend=$OUT
    nlog=$(grep -c . "$TS_SOCKET.error")
    kill_server KILL "${FD_CASES[28]}"
    run_cmd "$TS" -l
    is "$OUT" "$listend" "${FD_CASES[29]}"
    tail -n +$((nlog + 1)) "$TS_SOCKET.error" >"$T/full.log2"
    if grep -q "damaged\|dropped" "$T/full.log2"; then fail "${FD_CASES[30]}" "the log:"; sed 's/^/#     /' "$T/full.log2"
    else pass "${FD_CASES[30]}"; fi
    "$TS" -K
    export TS_SOCKET="$T/s" TMPDIR="$T"
    # (its last processes may take a moment to let go of their files there)
    for i in $(seq 100); do umount "$FULL" 2>/dev/null && break; sleep 0.1; done
    mountpoint -q "$FULL" && umount -l "$FULL"
    mounted=
else
    why="not root"
    [ "$root" = 1 ] && why="cannot mount a tmpfs here"
    skip "full disk: the blocked job runs" "$why"
    for d in "${FD_CASES[@]}"; do skip "$d" "$why"; done
fi

# ==== 2. bit flips =====================================================================================
mkdir -p "$T/bf"
export TS_SOCKET="$T/bf/s"
J="$TS_SOCKET.journal"
"$TS" -L ok true >/dev/null
"$TS" sh -c 'exit 3' >/dev/null
"$TS" -L five sh -c 'exit 5' >/dev/null
"$TS" false >/dev/null
for i in 0 1 2 3; do "$TS" -w "$i" >/dev/null 2>&1; done
"$TS" -L big -N 2 true >/dev/null             # needs 2 slots of 1: stays queued
"$TS" -L dep -D 4 echo two >/dev/null         # queued behind it
"$TS" -D 4 sh -c 'exit 9' >/dev/null
"$TS" -L late -D 4,5 echo late >/dev/null
run_cmd "$TS" -l
bflist=$OUT
nj=$(printf '%s' "$bflist" | sed 1d | wc -l)
is "$nj" 8 "bit flips: 8 jobs in the journal"
kill_server TERM "bit flips: the server stopped (SIGTERM keeps the journal)"
cp "$J" "$T/bf/orig"
run_cmd "$TS" -l
is "$OUT" "$bflist" "bit flips: the intact journal restores the same list"
"$TS" -K
jsz=$(size "$T/bf/orig")
nflip=40
[ "$light" = 1 ] && nflip=20
[ "$slow" = 1 ] && nflip=8
echo "# journal: $jsz bytes; $nflip bit flips between offset 12 and $((jsz - 1))"
lost0=0 lost1=0 worse=0 worse2=0 unlogged=0 nocopy=0
for k in $(seq 0 $((nflip - 1))); do
    off=$(( 12 + k * (jsz - 13) / (nflip - 1) ))
    bit=$(( k % 8 ))
    cp "$T/bf/orig" "$J"
    byte=$(od -An -tu1 -j "$off" -N 1 "$J" | tr -d ' ')
    printf "\\$(printf %03o $(( byte ^ (1 << bit) )))" | dd of="$J" bs=1 seek="$off" conv=notrunc 2>/dev/null
    cp "$J" "$T/bf/damaged"
    rm -f "$TS_SOCKET.error" "$J".bad.*
    got=$("$TS" -l 2>&1)
    # A job comes back when its id is listed with its command (every command here ends uniquely). It
    # comes back in its state when its state (and E-Level) are the same; a job that depends on a lost
    # one is not counted against the flip (it waits for a job that is no longer there), nor is a
    # different Output column (the record of the job's start is a record of its own).
    lost=0 changed=0 chg="" lostids=" "
    while IFS= read -r line; do
        set -- $line
        id=$1 last=${!#}
        printf '%s\n' "$got" | awk -v id="$id" -v l="$last" 'NR > 1 && $1 == id && $NF == l {f = 1} END {exit !f}' ||
            { lost=$((lost + 1)); lostids="$lostids$id "; }
    done < <(printf '%s' "$bflist" | sed 1d)
    while IFS= read -r line; do
        set -- $line
        id=$1
        case $lostids in *" $id "*) continue ;; esac
        want=$(printf '%s\n' "$line" | awk '{print $2, ($2 == "finished" ? $4 : "")}')
        have=$(printf '%s\n' "$got" | awk -v id="$id" 'NR > 1 && $1 == id {print $2, ($2 == "finished" ? $4 : "")}')
        [ "$have" = "$want" ] && continue
        deps=$(printf '%s\n' "$line" | sed -n 's/.*\[\([0-9,]*\)\]&& .*/\1/p' | tr , ' ')
        skipit=0
        for d in $deps; do case $lostids in *" $d "*) skipit=1 ;; esac; done
        [ "$skipit" = 1 ] && continue
        changed=$((changed + 1))
        chg="$chg job $id: '$want' -> '$have';"
    done < <(printf '%s' "$bflist" | sed 1d)
    if [ $((lost + changed)) -gt 1 ]; then
        worse2=$((worse2 + 1))
        echo "# offset $off bit $bit: $lost lost (ids$lostids), and $changed more came back in another state:$chg"
    fi
    case $lost in
        0) lost0=$((lost0 + 1)) ;;
        1) lost1=$((lost1 + 1)) ;;
        *) worse=$((worse + 1))
           echo "# offset $off bit $bit: $lost of $nj jobs lost; the list:"
           printf '%s\n' "$got" | sed 's/^/#     /'
           echo "#   the log:"; sed 's/^/#     /' "$TS_SOCKET.error" 2>/dev/null ;;
    esac
    if ! grep -Eq "damaged bytes? at offset|dropped [0-9]+ bytes? after offset" "$TS_SOCKET.error" 2>/dev/null; then
        unlogged=$((unlogged + 1))
        echo "# offset $off bit $bit: the log says:"; sed 's/^/#     /' "$TS_SOCKET.error" 2>/dev/null
    fi
    bads=$(ls "$J".bad.* 2>/dev/null)
    if [ "$(printf '%s' "$bads" | grep -c .)" != 1 ] || ! cmp -s "$bads" "$T/bf/damaged"; then
        nocopy=$((nocopy + 1))
        echo "# offset $off bit $bit: copies kept aside: ${bads:-none}"
    fi
    "$TS" -K
done
echo "# bit flips: $lost0 offsets lost no job, $lost1 lost one, $worse lost more"
is "$worse" 0 "bit flips: every flip cost at most one job of $nj ($lost0 none, $lost1 one)"
is "$worse2" 0 "bit flips: every flip changed the state of at most one job (its dependents aside)"
is "$unlogged" 0 "bit flips: every flip was logged ('damaged bytes at offset' / 'dropped ... bytes after offset')"
is "$nocopy" 0 "bit flips: every damaged file was kept aside as $J.bad.*, byte for byte"
rm -f "$J".bad.*

# A zeroed 512-byte sector: 42 jobs of one shell (one environment of 30 variables, ZS_END=1 last), each
# needing 2 slots of 1, so that none runs and no runner brings a server back meanwhile. Killed
# with SIGKILL; the journal's first sector zeroed (appended records), restarted. Then again, restarted once
# more before (a snapshot's records), and the sector where the first copy of the environment ends zeroed
# (where a second copy used to start).
mkdir -p "$T/zs"
export TS_SOCKET="$T/zs/s"
J="$TS_SOCKET.journal"
zqueue() {   # zqueue: the 42 jobs; their list in $zsl
    local vars=() i
    for i in $(seq 10 39); do vars+=("ZS_VAR_$i=/a/fairly/long/value/for/variable/number/$i"); done
    vars+=(ZS_END=1)
    for i in $(seq 0 40); do env -i TS_SOCKET="$TS_SOCKET" TMPDIR="$TMPDIR" "${vars[@]}" "$TS" -L "s$i" -N 2 true >/dev/null; done
    ZS_OWN=1 "$TS" -L own -N 2 true >/dev/null
    zsl=$("$TS" -l)
    is "$(brief "$zsl" | grep -c ' queued ')" 42 "zeroed sector: 42 jobs queued"
}
zsector() {   # zsector OFFSET: zero the aligned 512-byte sector that holds byte OFFSET of the journal
    dd if=/dev/zero of="$J" bs=512 seek="$(( $1 / 512 ))" count=1 conv=notrunc 2>/dev/null
}
# zcheck DESC MAX: every job that comes back is as it was; at most MAX are missing; the log names the damage.
zcheck() {
    local got missing=0 changed=0 id
    got=$("$TS" -l 2>&1)
    for id in $(brief "$zsl" | awk '{print $1}'); do
        if ! brief "$got" | grep -q "^$id "; then missing=$((missing + 1)); continue; fi
        [ "$(brief "$got" | grep "^$id ")" = "$(brief "$zsl" | grep "^$id ")" ] || changed=$((changed + 1))
    done
    echo "# $1: $missing of 42 jobs missing, $changed changed"
    ok "$([ "$missing" -le "$2" ]; echo $?)" "$1: at most $2 jobs lost ($missing)"
    is "$changed" 0 "$1: every job that came back is as it was (none marked lost for its environment)"
    ok "$(grep -q "damaged bytes at offset" "$TS_SOCKET.error"; echo $?)" "$1: the log says which bytes were damaged"
}
zqueue
kill_server KILL "zeroed sector: server killed"
zsector 0
zcheck "first sector zeroed" 2
id=$("$TS" -N 2 true)
is "$id" 42 "first sector zeroed: ids go on (the next job is 42)"
"$TS" -K
zqueue
kill_server KILL "zeroed sector: server killed"
"$TS" -l >/dev/null   # a new server: its snapshot
kill_server KILL "zeroed sector: server killed again"
env_end=$(grep -obUa 'ZS_END=1' "$J" | head -n 1 | cut -d: -f1)
ok "$([ -n "$env_end" ]; echo $?)" "zeroed sector: the environment is in the journal (its end at ${env_end:-none})"
zsector "$(( ${env_end:-0} + 7 ))"
zcheck "the sector where the environment ends zeroed" 4
"$TS" -K
export TS_SOCKET="$T/bf/s"

# ==== 3. exactly-once submit ===========================================================================
mkdir -p "$T/eo"
export TS_SOCKET="$T/eo/s"
F="$T/eo/runs"
check "crash after submit: a server with the test fault" 0 "$(HDR 0 1)"$'\n' '' \
    -- env TS_TEST_CRASH_AFTER_SUBMIT="$T/eo/crash" "$TS" -l
p0=$(server_pid)
: >"$T/eo/crash"
run_cmd "$TS" sh -c "echo run >>'$F'"
is "$RC/$OUT/$ERR" "0/0"$'\n/' "crash after submit: ts succeeds with the id (0)"
ok "$([ ! -e "$T/eo/crash" ]; echo $?)" "crash after submit: the fault happened (its file is gone)"
ok "$(pid_gone "$p0"; echo $?)" "crash after submit: the first server is gone"
p1=$(server_pid)
ok "$([ -n "$p1" ] && [ "$p1" != "$p0" ]; echo $?)" "crash after submit: a new server is up (pids $p0 -> ${p1:-none})"
check "crash after submit: the job ran once, with its status" 0 '' '' -- "$TS" -w 0
run_cmd "$TS" -l
is "$(printf '%s' "$OUT" | sed 1d | wc -l)/$(printf '%s' "$OUT" | awk '$1 == 0 {print $2}')" "1/finished" \
    "crash after submit: the list has the job once"
check "crash after submit: it ran exactly once" 0 $'run\n' '' -- cat "$F"
check "crash after submit: the next id is 1" 0 $'1\n' '' -- "$TS" true
"$TS" -K

# ==== 4. -g with a background child holding the job's stdout ===========================================
export TS_SOCKET="$T/s"
gid=$("$TS" -g sh -c 'waitfor gbg & echo hi')
a=$(date +%s)
run_cmd timeout "$D" "$TS" -w "$gid"
secs=$(( $(date +%s) - a ))
is "$RC" 0 "-g, background child: ts -w returns with the job's status ($secs s; deadline ${D} s)"
check "-g, background child: the job is finished" 0 $'finished\n' '' -- "$TS" -s "$gid"
bgpid=$(pgrep -f -- "$T/bin/waitfor gbg" | head -n 1)
ok "$([ -n "$bgpid" ]; echo $?)" "-g, background child: it still runs (pid ${bgpid:-none})"
release gbg
if [ -n "$bgpid" ]; then eventually "-g, background child: it ended when released" "$D" -- pid_gone "$bgpid"
else skip "-g, background child: it ended when released" "it was not found"; fi
gout=$("$TS" -o "$gid")
eventually "-g: the output is complete once the child is gone" "$D" -- sh -c '[ "$(gzip -dc <"$1" 2>/dev/null)" = hi ]' x "$gout"
bgpid=$(pgrep -f -- "$T/bin/waitfor gbg" | head -n 1)
[ -n "$bgpid" ] && kill "$bgpid"

# ==== 5. exhaustion ====================================================================================
# Descriptors: a server under `ulimit -n 40` and 30 slots runs out of them; jobs wait, then run.
mkdir -p "$T/ex"
export TS_SOCKET="$T/ex/s"
nex=40
[ "$light" = 1 ] && nex=20
(ulimit -n 40; "$TS" -S 30)
for i in $(seq "$nex"); do "$TS" sleep 0.2 >/dev/null; done
bad=0
for i in $(seq 0 $((nex - 1))); do timeout "$((D * 3))" "$TS" -w "$i" >/dev/null 2>&1; [ $? = 124 ] && bad=$((bad + 1)); done
run_cmd "$TS" -l
left=$(printf '%s' "$OUT" | awk 'NR > 1 && !($2 == "finished" && $4 == 0)' | wc -l)
if [ "$bad/$left" = 0/0 ]; then pass "ulimit -n 40: all $nex jobs end with E-Level 0"
else fail "ulimit -n 40: all $nex jobs end with E-Level 0" "$bad -w timed out; $left jobs did not end with 0:"; _show "$OUT"; fi
n1=$(grep -c "cannot start yet" "$TS_SOCKET.error" 2>/dev/null)
n2=$(grep -c "Too many open files" "$TS_SOCKET.error" 2>/dev/null)
echo "# ulimit -n 40: the log has ${n1:-0} 'cannot start yet' and ${n2:-0} 'Too many open files' lines"
ok "$([ "${n1:-0}" -le 3 ]; echo $?)" "ulimit -n 40: the log says 'cannot start yet' at most a few times (${n1:-0})"
if [ "${n2:-0}" -le 3 ]; then pass "ulimit -n 40: the log says 'Too many open files' at most a few times (${n2:-0})"
else
    fail "ulimit -n 40: the log says 'Too many open files' at most a few times (${n2:-0})" "the log, counted:"
    sed 's/^.* ts \(server\|runner\) [0-9]*: //' "$TS_SOCKET.error" | sort | uniq -c | sed 's/^/#     /' | head -n 5
fi
"$TS" -K

# Processes (root): uid $NPUID's own queue, its server under `ulimit -u 30`, 40 jobs in 30 slots.
NP_CASES=("ulimit -u 30: all jobs end with exit status 0" "ulimit -u 30: the log says 'cannot start yet', but only a few times")
if [ "$root" = 1 ] && [ "$light" = 0 ] && [ "$slow" = 0 ] && command -v setpriv >/dev/null &&
   ! ps -u "$NPUID" -o pid= | grep -q . && NPDIR=$(mktemp -d /tmp/ts-durability-np.XXXXXX) &&
   chmod 755 "$NPDIR" && chown "$NPUID:$NPUID" "$NPDIR" &&
   setpriv --reuid=$NPUID --regid=$NPUID --clear-groups test -x "$TS"; then
    # (in its own directory: $T is root's, mode 700)
    asu() { (cd "$NPDIR" && ${ASU_TIMEOUT:+timeout "$ASU_TIMEOUT"} setpriv --reuid=$NPUID --regid=$NPUID --clear-groups env TS_SOCKET="$NPDIR/s" TMPDIR="$NPDIR" "$@"); }
    # (only the server is limited: the clients, another process of the same uid each, are not)
    asu bash -c 'ulimit -u 30 && "$1" -S 30' x "$TS"
    asu bash -c 'for i in $(seq 40); do "$1" sleep 1 >/dev/null; done' x "$TS"
    bad=0
    for i in $(seq 0 39); do ASU_TIMEOUT=30 asu "$TS" -w "$i" >/dev/null 2>&1; [ $? = 124 ] && bad=$((bad + 1)); done
    run_cmd asu "$TS" -l
    left=$(printf '%s' "$OUT" | awk 'NR > 1 && !($2 == "finished" && $4 == 0)' | wc -l)
    if [ "$bad/$left" = 0/0 ]; then pass "${NP_CASES[0]}"
    else fail "${NP_CASES[0]}" "$bad -w timed out; $left jobs did not end with 0:"; _show "$OUT"; fi
    n1=$(grep -c "cannot start yet" "$NPDIR/s.error" 2>/dev/null)
    echo "# ulimit -u 30: $(grep -c . "$NPDIR/s.error" 2>/dev/null) lines in the log, ${n1:-0} 'cannot start yet':"
    sed 's/^/#     /' "$NPDIR/s.error" | head -n 10
    ok "$([ "${n1:-0}" -ge 1 ] && [ "${n1:-0}" -le 3 ]; echo $?)" "${NP_CASES[1]} (${n1:-0})"
    asu "$TS" -K
else
    why="not root"
    [ "$root" = 1 ] && why="setpriv, uid $NPUID (has processes?) or $TS not usable by it"
    [ "$light" = 1 ] || [ "$slow" = 1 ] && why="too slow under the sanitizers / valgrind"
    for d in "${NP_CASES[@]}"; do skip "$d" "$why"; done
fi

# ==== 6. a server that dies at start; the runner backs off ==============================================
mkdir -p "$T/bo"
export TS_SOCKET="$T/bo/s"
J="$TS_SOCKET.journal"
bid=$("$TS" -L bo waitfor bogo 4)
wait_running "$bid"
cp "$J" "$T/bo/saved"
# The newer format goes in while the server runs (its runner would start a new server the moment it
# is gone), by rename: the server keeps writing to the old file.
printf 'TSJ\0\x09\0\0\0' >"$T/bo/newer"
mv "$T/bo/newer" "$J"
kill_server KILL "back-off: server gone"
release bogo
eventually "back-off: the runner cannot reach a server" "$D" -- grep -q "cannot reach the server" "$TS_SOCKET.error"
win=3
[ "$slow" = 1 ] && win=6
sleep "$win"   # the window measured, not a synchronisation
nreach=$(grep -c "ts runner .*cannot reach the server" "$TS_SOCKET.error")
nstart=$(grep -c "ts server .*newer than this ts reads" "$TS_SOCKET.error")
echo "# in ~$win s: $nreach 'cannot reach the server' lines, $nstart servers that refused the journal"
ok "$([ "$nreach" -le 3 ]; echo $?)" "back-off: the runner logged 'cannot reach the server' only a few times ($nreach)"
ok "$([ "$nstart" -ge 2 ] && [ "$nstart" -le 10 ]; echo $?)" "back-off: it kept trying, but started only a handful of servers ($nstart)"
check "back-off: the journal of the newer format is untouched" 0 '' '' -- sh -c 'printf "TSJ\0\011\0\0\0" | cmp -s - "$1"' x "$J"
cp "$T/bo/saved" "$J"
eventually "back-off: with the journal back, the runner reaches a new server and the job's result shows" \
    "$((D + 5))" -- sh -c '[ "$("$TS" -l 2>/dev/null | awk -v id="$1" '"'"'$1 == id {print $2, $4}'"'"')" = "finished 4" ]' x "$bid"
check "back-off: ts -w has the job's status" 4 '' '' -- "$TS" -w "$bid"
"$TS" -K

# ==== 7. a job whose runner is SIGKILLed says why ======================================================
export TS_SOCKET="$T/s"
stat_field() { sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | awk -v n="$2" '{print $n}'; }
lid=$("$TS" waitfor lostgo)
wait_running "$lid"
jp=$("$TS" -p "$lid")
rp=$(stat_field "$jp" 2)
is "$(cat "/proc/$rp/comm" 2>/dev/null)" ts-runner "lost: the job's parent is its runner (pid $rp)"
kill -9 "$rp"
eventually "lost: the job is finished" "$D" -- sh -c '[ "$("$TS" -s "$1")" = finished ]' x "$lid"
run_cmd "$TS" -i "$lid"
if printf '%s\n' "$OUT" | grep -q '^Lost: '; then pass "lost: ts -i says why ('Lost: ...')"
else fail "lost: ts -i says why ('Lost: ...')" "got:"; _show "$OUT"; fi
release lostgo

# ==== 8. TS_FSYNC=1 ====================================================================================
mkdir -p "$T/fs"
export TS_SOCKET="$T/fs/s"
check "TS_FSYNC=1: a server" 0 "$(HDR 0 1)"$'\n' '' -- env TS_FSYNC=1 "$TS" -l
fp=$(server_pid)
ok "$(tr '\0' '\n' <"/proc/$fp/environ" | grep -qx TS_FSYNC=1; echo $?)" "TS_FSYNC=1: the server has it"
check "TS_FSYNC=1: job 0" 0 $'0\n' '' -- "$TS" echo synced
check "TS_FSYNC=1: job 1" 0 $'1\n' '' -- "$TS" -L two sh -c 'exit 2'
check "TS_FSYNC=1: job 2 (blocks)" 0 $'2\n' '' -- "$TS" waitfor fsgo
check "TS_FSYNC=1: job 3 (queued)" 0 $'3\n' '' -- "$TS" true
check "TS_FSYNC=1: -w 0" 0 '' '' -- "$TS" -w 0
check "TS_FSYNC=1: -w 1" 2 '' '' -- "$TS" -w 1
check "TS_FSYNC=1: the output" 0 $'synced\n' '' -- sh -c 'cat "$("$TS" -o 0)"'
run_cmd "$TS" -l
fl=$OUT
kill_server KILL "TS_FSYNC=1: server gone"
run_cmd "$TS" -l
is "$(brief "$OUT")" "$(brief "$fl")" "TS_FSYNC=1: the queue comes back"
release fsgo
check "TS_FSYNC=1: the queued job runs" 0 '' '' -- "$TS" -w 3
"$TS" -K
export TS_SOCKET="$T/s"

# ---- the server killed while it carries out -K ---------------------------------------------------------
# strace kills it as it removes its journal: -K cannot say the queue is gone, and must not call it a
# task-spooler 1.x server (it said so). The queue comes back whole; a second -K empties it.
if command -v strace >/dev/null; then
    export TS_SOCKET="$T/kk/s"
    mkdir -p "$T/kk"
    "$TS" waitfor kkgo >/dev/null
    for i in 1 2 3; do "$TS" true >/dev/null; done
    run_cmd "$TS" -l
    kl=$OUT
    kpid=$(server_pids)
    strace -qq -o /dev/null -p "$kpid" -e trace=unlink -e inject=unlink:signal=KILL:when=1 & ktr=$!
    eventually "strace holds the server ($kpid)" -- sh -c '[ "$(awk "/^TracerPid:/ {print \$2}" /proc/$1/status)" = "$2" ]' x "$kpid" "$ktr"
    run_cmd "$TS" -K
    is "$RC" 255 "-K, the server killed meanwhile: exit 255"
    [[ $ERR == *"ended before it confirmed that it stopped (was it killed?)"*"run ts -K again"* ]] \
        && pass "... it says the server ended, not that it is no ts server" || fail "... it says the server ended" "$ERR"
    wait "$ktr"
    run_cmd "$TS" -l
    is "$(brief "$OUT")" "$(brief "$kl")" "... the queue comes back whole"
    check "a second -K" 0 '' '' -- "$TS" -K
    check "... empties it" 0 'ID   State      Output               E-Level  Times(r/u/s)   Command [run=0/1]'$'\n' '' -- "$TS" -l
    "$TS" -K
    export TS_SOCKET="$T/s"
else
    skip "the server killed while it carries out -K" "strace is not installed"
fi

done_testing
