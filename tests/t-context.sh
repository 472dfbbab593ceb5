#!/bin/bash
# The job runs in the enqueuing client's context (environment, cwd, umask, limits, nice value, PATH),
# not the server's (ts-spec.md §4.3; README "How it works"). task-spooler gets this for free because the
# client itself runs the job; ts sends the context to a server-spawned runner, so this matters more there.
. "$(dirname "$0")/lib.sh"

# start the server from elsewhere, with a different environment, umask and PATH
(cd / && export FOO=server SRVONLY=yes PATH=/usr/bin:/bin && umask 077 && "$TS" -S 1) >/dev/null 2>&1
ok "$([ -S "$TS_SOCKET" ]; echo $?)" "server started from / with FOO=server, umask 077"

mkdir -p "$T/sub dir"
printf '#!/bin/sh\necho "hello from $0"\n' >"$T/bin/hello-ts"
chmod +x "$T/bin/hello-ts"

cd "$T/sub dir" || exit 1
umask 027
check "enqueue from a subdirectory with umask 027 and FOO=client" 0 $'0\n' '' -- \
    env FOO=client ONLYME='a b' "$TS" sh -c 'echo "FOO=$FOO"; echo "ONLYME=$ONLYME"; echo "SRVONLY=${SRVONLY-unset}"; pwd; umask; touch newfile; mkdir newdir'
check "-w" 0 '' '' -- "$TS" -w
check "job saw the client's env, cwd and umask" 0 \
    "FOO=client"$'\n'"ONLYME=a b"$'\n'"SRVONLY=unset"$'\n'"$T/sub dir"$'\n'"0027"$'\n' '' -- cat "$("$TS" -o 0)"
check "file created by the job has mode 640" 0 $'640\n' '' -- stat -c %a "$T/sub dir/newfile"
check "directory created by the job has mode 750" 0 $'750\n' '' -- stat -c %a "$T/sub dir/newdir"
umask 022
cd "$T" || exit 1

check "a variable set only for one invocation is not kept for the next" 0 $'1\n' '' -- \
    "$TS" sh -c 'echo "${ONLYME-unset} ${FOO-unset}"'
check "-w" 0 '' '' -- "$TS" -w
check "next job does not see it" 0 $'unset unset\n' '' -- cat "$("$TS" -o 1)"

check "command found through the client's PATH (server's PATH lacks it)" 0 $'2\n' '' -- "$TS" hello-ts
check "-w" 0 '' '' -- "$TS" -w
check "it ran" 0 "hello from $T/bin/hello-ts"$'\n' '' -- cat "$("$TS" -o 2)"

multi=$'line1\nline2 with  spaces\t!'
check "environment values with newlines survive" 0 $'3\n' '' -- env MULTI="$multi" "$TS" sh -c 'printf %s "$MULTI"'
check "-w" 0 '' '' -- "$TS" -w
check "value intact" 0 "$multi" '' -- cat "$("$TS" -o 3)"

check "resource limits come from the client (ulimit -n 123)" 0 $'4\n' '' -- sh -c 'ulimit -S -n 123 && exec "$TS" sh -c "ulimit -n"'
check "-w" 0 '' '' -- "$TS" -w
if [ -n "${TS_VALGRIND-}" ]; then   # valgrind keeps the descriptor limit of its processes to itself
    skip "job saw 123" "the runner runs under valgrind (make check-valgrind)"
else
    check "job saw 123" 0 $'123\n' '' -- cat "$("$TS" -o 4)"
fi

# The job gets the client's niceness, which is this script's own (nice -n 10 make check: 10) plus 7, up to 19.
base=$(nice)
inc=$(( base + 7 > 19 ? 19 - base : 7 ))
check "nice value comes from the client (nice -n $inc from $base)" 0 $'5\n' '' -- nice -n "$inc" "$TS" nice
check "-w" 0 '' '' -- "$TS" -w
if [ "$inc" -gt 0 ]; then
    check "job saw niceness $((base + inc))" 0 "$((base + inc))"$'\n' '' -- cat "$("$TS" -o 5)"
else
    skip "job saw the client's niceness" "this script runs at niceness 19 already: no higher one to give"
fi

check "empty environment variable is kept (set but empty)" 0 $'6\n' '' -- env EMPTY= "$TS" sh -c 'echo "${EMPTY-unset}|${EMPTY:-empty}"'
check "-w" 0 '' '' -- "$TS" -w
check "job saw EMPTY set to empty" 0 $'|empty\n' '' -- cat "$("$TS" -o 6)"

check "env -i: the job gets (almost) nothing" 0 $'7\n' '' -- env -i TS_SOCKET="$TS_SOCKET" TMPDIR="$TMPDIR" PATH=/usr/bin:/bin "$TS" sh -c 'echo "${FOO-unset} ${HOME-unset}"'
check "-w" 0 '' '' -- "$TS" -w
check "no server or test variables leaked" 0 $'unset unset\n' '' -- cat "$("$TS" -o 7)"

done_testing
