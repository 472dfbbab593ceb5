#!/bin/bash
# Journal compatibility: a journal of format 1, written by a real server of the release aa7d2c9 and
# left by its crash (tests/fixtures/journal-v1-aa7d2c9.bin, made by tests/fixtures/make-journal-v1.sh,
# whose header lists the queue it holds), is restored by the ts under test with nothing lost: ids,
# order (-u, -U), states, E-Levels, times, labels, -n/-E, the dependency that skipped a job and one
# still pending, the slot count, the next id, and the environment of the queued jobs, which then run.
# What the old binary showed right before the crash is in journal-v1-aa7d2c9.list (`ts -l`) and
# journal-v1-aa7d2c9.info (-i, -s, -p, -S); the new binary must show the same.
#
# TS_FIXTURE_V1=FILE replays another journal instead (e.g. a truncated copy, to see this fail).
#
# The fixture's jobs run with their recorded environment (TMPDIR=/tmp, cwd /): their output files
# are made in /tmp, and removed at the end.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "task-spooler has no journal"

FX=$_repo_root/tests/fixtures
BIN=${TS_FIXTURE_V1:-$FX/journal-v1-aa7d2c9.bin}
LIST=$FX/journal-v1-aa7d2c9.list
INFO=$FX/journal-v1-aa7d2c9.info
J="$T/s.journal"
unset FIXTURE_VAR      # only the jobs have it: from the journal
export TZ=UTC          # the .info times were shown in UTC (the server formats them)

skip_all() {
    echo "1..0 # SKIP $1"
    trap - EXIT
    cd / && rm -rf "$T"
    exit 0
}

# The jobs' uid is the one that made the fixture (root). A server runs its own user's jobs only:
# when we are another user, set it to ours in our copy (JobRec.uid, body offset 24 of every job
# record, type 2; each record's CRC-32 recomputed). Nothing else changes.
cp "$BIN" "$J"
chmod 600 "$J"
me=$(id -u)
fx_uid=$(od -An -tu4 -j72 -N4 "$BIN" | tr -d ' ')   # the first job record's (after the meta record)
if [ "$fx_uid" != "$me" ]; then
    command -v python3 >/dev/null || skip_all "the fixture's jobs are uid $fx_uid's; python3 is needed to make them uid $me's"
    python3 - "$J" "$me" <<'EOF' || skip_all "cannot set the fixture's uid"
import struct, sys, zlib
path, uid = sys.argv[1], int(sys.argv[2])
data = open(path, 'rb').read()
out, off = bytearray(data[:8]), 8
while off + 12 <= len(data):
    ln, crc, typ, pad = struct.unpack_from('<IIHH', data, off)
    body = bytearray(data[off + 12:off + 12 + ln])
    if len(body) != ln or zlib.crc32(data[off + 8:off + 12 + ln]) != crc:
        break   # a torn or damaged end: copied as it is, for the server to judge
    if typ == 2:
        struct.pack_into('<I', body, 24, uid)
        crc = zlib.crc32(data[off + 8:off + 12] + bytes(body))
    out += struct.pack('<II', ln, crc) + data[off + 8:off + 12] + body
    off += 12 + ln
out += data[off:]
open(path, 'wb').write(out)
EOF
    echo "# the fixture's jobs set from uid $fx_uid to uid $me"
fi

# The output files of the fixture's jobs that run here (in /tmp), removed at the end.
extra_cleanup() {
    local i p
    if ! no_server; then
        for i in 8 9 10 11; do
            p=$("$TS" -o "$i" 2>/dev/null) && echo "$p" >>"$T/outputs"
        done
    fi
    [ -e "$T/outputs" ] || return 0
    while IFS= read -r p; do
        case $p in /tmp/ts-out.*) rm -f "$p" "$p.e" ;; esac
    done <"$T/outputs"
}

# ---- the first view: what the old binary showed right before its crash -------------------------------
# (within the 5 s reattach grace, job 8 is still shown running, as it was)
_read_file "$LIST" old_list
check "the restored list is the old binary's, byte for byte (ids, order, states, E-Levels, times, labels)" \
    0 "$old_list" '' -- "$TS" -l
check "the slot count came back" 0 $'2\n' '' -- "$TS" -S
ok "$(grep -q 'queue restored from the journal: 13 jobs' "$T/s.error"; echo $?)" "the server restored 13 jobs"

# -i, -s, -p, -S of the old binary, section by section ("==> ts -X [ID] <=="). -s, -p and -S must
# print the same; every line -i printed must be among the lines -i prints now (lines may be added).
# Not -s of the jobs that were queued: once the grace has passed they run (the list above showed
# them queued).
declare -a sec_cmd sec_text
n=-1
while IFS= read -r line; do
    if [[ $line =~ ^'==> ts '(-[a-zA-Z])( ([0-9]+))?' <=='$ ]]; then
        n=$((n + 1))
        sec_cmd[n]="${BASH_REMATCH[1]} ${BASH_REMATCH[3]}"
        sec_text[n]=""
    elif [ "$n" -ge 0 ]; then
        sec_text[n]+="$line"$'\n'
    fi
done <"$INFO"
ok "$([ "$n" -ge 30 ]; echo $?)" "the .info file has the old binary's views ($((n + 1)) sections)"
for k in $(seq 0 "$n"); do
    read -r opt id <<<"${sec_cmd[$k]}"
    if [ "$opt" = -s ] && [ "${sec_text[$k]}" = $'queued\n' ]; then continue; fi
    if [ "$opt" = -i ]; then
        run_cmd "$TS" -i "$id"
        missing=""
        while IFS= read -r line; do
            [ -n "$line" ] || continue
            printf '%s' "$OUT" | grep -qFx -- "$line" || missing+="$line"$'\n'
        done <<<"${sec_text[$k]}"
        if [ "$RC" = 0 ] && [ -z "$missing" ]; then
            pass "ts -i $id shows all the old binary showed"
        else
            fail "ts -i $id shows all the old binary showed" "exit status $RC; lines missing:"
            _show "$missing"
            echo "#   got:"; _show "$OUT$ERR"
        fi
    else
        # shellcheck disable=SC2086
        check "ts $opt${id:+ $id} prints what the old binary printed" 0 "${sec_text[$k]}" '' -- "$TS" $opt $id
    fi
done

# The finished jobs' exit statuses, through -w.
check "-w 0: the job's exit status 0" 0 '' '' -- "$TS" -w 0
check "-w 1: the job's exit status 1" 1 '' '' -- "$TS" -w 1
check "-w 2: the job's exit status 3" 3 '' '' -- "$TS" -w 2
check "-w 4: the job's exit status 1" 1 '' '' -- "$TS" -w 4

# ---- the running job: its runner (pid 0 in the fixture) never comes back -------------------------------
eventually "job 8 is queued again after the reattach grace" 20 -- \
    grep -q 'job 8: never started before the restart; queued again' "$T/s.error"
# It runs again (its block file, on the machine that made the fixture, is not here: it ends at
# once), then the queued jobs run in their order, with their recorded environment.
wait_state 8 finished 15
wait_state 10 finished 15
wait_state 11 finished 15
wait_state 9 finished 15
wait_state 12 skipped 15
for i in 8 9 10 11; do "$TS" -o "$i" >>"$T/outputs" 2>/dev/null; done

list=$("$TS" -l)
elevels=$(printf '%s\n' "$list" | awk '$1 ~ /^(8|9|10|11|12)$/ {print $1, $2, ($2 == "finished" ? $4 : "-")}' | sort -n)
is "$elevels" "$(printf '%s\n' '8 finished 0' '9 finished 0' '10 finished 0' '11 finished 4' '12 skipped -')" \
    "the jobs queued in the fixture ran to the right E-Levels (12 skipped: it depends on 11, which exits 4)"
check "job 9 printed FIXTURE_VAR from its recorded environment" 0 $'FIXTURE_VAR=fixture-value\n' '' -- \
    sh -c 'cat "$("$TS" -o 9)"'
check "job 10's output" 0 $'second\n' '' -- sh -c 'cat "$("$TS" -o 10)"'
check "job 12's line" 0 "$(LQ 12 skipped '(no output)' '[11]&& [dep]echo after-11')"$'\n' '' -- \
    sh -c '"$TS" -l | awk "\$1 == 12"'

# The jobs that had finished under the old binary are still listed as it listed them.
old_done=$(printf '%s' "$old_list" | awk '$1 ~ /^[0-7]$/')
is "$(printf '%s\n' "$list" | awk '$1 ~ /^[0-7]$/')" "$old_done" "jobs 0-7 are still listed as the old binary listed them"
ok "$([ "$(printf '%s\n' "$old_done" | grep -c .)" = 8 ]; echo $?)" "(the old list has 8 ended jobs)"

# The queue goes on where it was: the next id, the slots.
check "a new job gets the next id, 13" 0 $'13\n' '' -- "$TS" true
check "-w 13" 0 '' '' -- "$TS" -w 13
check "the slot count is still 2" 0 $'2\n' '' -- "$TS" -S

done_testing
