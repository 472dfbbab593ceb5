#!/bin/bash
# tests/run.sh [UNIT_TEST_BINARY...] — the test runner used by `make check`.
#
# 1. Runs each given GoogleTest binary and counts its passed/failed tests from the summary lines
#    "[  PASSED  ] N tests." / "[  FAILED  ] N tests, listed below:".
# 2. Runs every tests/t-*.sh (TAP, each under `timeout 300`, output to a log file so that no stray process
#    can hold a pipe open), counts "ok" / "not ok" lines. A script that exits non-zero, or whose plan
#    ("1..N", or "1..0 # SKIP") does not match the number of cases it reported, or that leaves a process
#    running (see left_running), counts as one extra failure.
# 3. Prints the names of the failures and ends with exactly one line "N passed, N failed".
# Exit status 0 only if nothing failed. The binary under test is $TS (default: <repo root>/ts).
# TEST_FILTER=SUBSTRING runs only the t-*.sh scripts whose name contains it.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export TS=${TS:-$(cd "$here/.." && pwd)/ts}

passed=0
failed=0
skipped=0
failures=()
logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT

# ---- GoogleTest binaries -------------------------------------------------------------------------------
for bin in "$@"; do
    name=$(basename "$bin")
    log="$logdir/gtest-$name.log"
    timeout 300 "$bin" --gtest_brief=1 >"$log" 2>&1
    rc=$?
    p=$(sed -n 's/^\[  PASSED  \] \([0-9][0-9]*\) tests\{0,1\}\..*/\1/p' "$log" | tail -n 1)
    # failed tests: "[  FAILED  ] Suite.Name (N ms)" lines (with --gtest_brief=1 there is no
    # "N tests, listed below" summary; without it each name appears twice, hence sort -u)
    fnames=$(sed -n 's/^\[  FAILED  \] \([A-Za-z_0-9/]*\.[^ ]*\).*/\1/p' "$log" | sort -u)
    f=$(printf '%s' "$fnames" | grep -c .)
    fsum=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) tests\{0,1\}, listed below.*/\1/p' "$log" | tail -n 1)
    if [ -n "$fsum" ] && [ "$fsum" -gt "$f" ]; then f=$fsum; fi
    p=${p:-0}
    passed=$((passed + p))
    failed=$((failed + f))
    while IFS= read -r line; do
        [ -n "$line" ] && failures+=("$name: $line")
    done <<<"$fnames"
    extra=""
    if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        failed=$((failed + 1))
        extra=" [exited with status $rc]"
        failures+=("$name: exited with status $rc")
    fi
    echo "$name: $p passed, $f failed$extra"
    if [ "$f" -gt 0 ] || [ -n "$extra" ]; then
        grep -v -e '^Running main' -e '^\[==========\]' -e '^\[  PASSED  \]' "$log" | tail -n 40 | sed 's/^/    /'
    fi
done

# ---- shell integration tests ---------------------------------------------------------------------------
# Each script runs with TS_TEST_SCRIPT=<its log> in its environment, which whatever it starts inherits (what
# it starts through `env -i` lib.sh's own clean-up checks). A process that still has it 10 s after the
# script ended is listed, killed, and counts as a failure: a test leaves nothing running.
left_running() {
    local p e pids deadline=$(( $(date +%s) + 10 ))
    while :; do
        pids=$(for p in /proc/[0-9]*; do
            [ -r "$p/environ" ] || continue
            { while IFS= read -r -d '' e; do
                [ "$e" == "TS_TEST_SCRIPT=$1" ] && { echo "${p#/proc/}"; break; }
            done <"$p/environ"; } 2>/dev/null
        done)
        [ -z "$pids" ] || [ "$(date +%s)" -ge "$deadline" ] && break
        sleep 0.1
    done
    for p in $pids; do
        printf '%s ' "$p ($(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-60))"
        kill -9 "$p" 2>/dev/null
    done
}
for t in "$here"/t-*.sh; do
    [ -e "$t" ] || continue
    case $(basename "$t") in *"${TEST_FILTER-}"*) ;; *) continue ;; esac
    name=$(basename "$t")
    log="$logdir/$name.log"
    start=$(date +%s)
    TS_TEST_SCRIPT="$log" timeout 300 bash "$t" >"$log" 2>&1 </dev/null
    rc=$?
    secs=$(( $(date +%s) - start ))
    left=$(left_running "$log")
    p=$(grep -c '^ok ' "$log")
    f=$(grep -c '^not ok ' "$log")
    s=$(grep -c '^ok .*# SKIP' "$log")
    plan=$(sed -n 's/^1\.\.\([0-9][0-9]*\).*/\1/p' "$log" | tail -n 1)
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
    while IFS= read -r line; do
        failures+=("$name: $line")
    done < <(grep '^not ok ' "$log")
    extra=""
    if [ -n "$left" ]; then
        extra="left processes running: $left"
    elif [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
        extra="exited with status $rc"
    elif [ -z "$plan" ]; then
        extra="no plan (script died?)"
    elif [ "$plan" -ne $((p + f)) ]; then
        extra="plan 1..$plan but $((p + f)) cases ran"
    fi
    if [ -n "$extra" ]; then
        failed=$((failed + 1))
        failures+=("$name: $extra")
    fi
    note=""
    [ "$s" -gt 0 ] && note=", $s skipped"
    grep -q '^1\.\.0 # SKIP' "$log" && note=" (skipped: $(sed -n 's/^1\.\.0 # SKIP *//p' "$log"))"
    echo "$name: $p passed, $f failed$note (${secs}s)${extra:+ [$extra]}"
    if [ "$f" -gt 0 ] || [ -n "$extra" ]; then
        # show the diagnostics of failed cases
        awk '/^not ok /{show=1; print "    " $0; next} /^ok /{show=0} /^# /{if (show) print "    " $0}' "$log"
        if [ "$rc" -ne 0 ] || [ -n "$extra" ]; then
            grep -v -e '^ok ' -e '^not ok ' -e '^# ' -e '^1\.\.' "$log" | tail -n 10 | sed 's/^/    | /'
        fi
    fi
done

if [ "${#failures[@]}" -gt 0 ]; then
    echo "Failures:"
    for x in "${failures[@]}"; do echo "  $x"; done
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
