#!/bin/bash
# valgrind-report.sh LOG...: one TAP-ish summary of the server logs of
# `make check-valgrind`; fails if any shows a memory error or a definite leak.
logs=0 bad=0
for f in "$@"; do
    [ -s "$f" ] || { [ -e "$f" ] && logs=$((logs + 1)); continue; }
    logs=$((logs + 1))
    if grep -qE "ERROR SUMMARY: [1-9]|definitely lost: [1-9]|Invalid (read|write)|uninitialised" "$f"; then
        bad=$((bad + 1))
        echo "== $f"
        head -n 60 "$f"
    fi
done
echo "valgrind: $logs server logs, $bad with errors or leaks"
echo "$((logs > 0 && bad == 0 ? 1 : 0)) passed, $((logs == 0 || bad > 0 ? 1 : 0)) failed"
[ "$logs" -gt 0 ] && [ "$bad" -eq 0 ]
