#!/bin/bash
# Enqueueing (ts-spec.md §1.3): ids, -n, output files, errorlevels, exec failure.
. "$(dirname "$0")/lib.sh"

check "first job gets id 0" 0 $'0\n' '' -- "$TS" echo hello
check "second job gets id 1" 0 $'1\n' '' -- "$TS" sh -c 'echo out; echo err >&2; exit 3'
check "third job gets id 2" 0 $'2\n' '' -- "$TS" sh -c 'exit 200'
check "-n prints no id" 0 '' '' -- "$TS" -n true
check "-l cmd enqueues too (id 4)" 0 $'4\n' '' -- "$TS" -l nonexistent-command-xyz
check "-w 0" 0 '' '' -- "$TS" -w 0
check "-w 1 (exit 3)" 3 '' '' -- "$TS" -w 1
check "-w 2 (exit 200)" 200 '' '' -- "$TS" -w 2
check "-w 3 (-n job)" 0 '' '' -- "$TS" -w 3
check "-w 4 (exec failure)" 255 '' '' -- "$TS" -w 4
check "output of job 0" 0 $'hello\n' '' -- cat "$("$TS" -o 0)"
check "output of job 1 has stdout and stderr" 0 $'out\nerr\n' '' -- cat "$("$TS" -o 1)"
check "output of job 2 is empty" 0 '' '' -- cat "$("$TS" -o 2)"
check "exec failure message in the output file" 0 $'ts could not run the command\n' '' -- cat "$("$TS" -o 4)"
check_norm "list: E-Levels 0, 3, -56, stdout, -1" 0 "$(HDR 0 1
    LF 0 OUT 0 'echo hello'
    LF 1 OUT 3 'sh -c echo out; echo err >&2; exit 3'
    LF 2 OUT -56 'sh -c exit 200'
    LF 3 stdout 0 true
    LF 4 OUT -1 nonexistent-command-xyz)"$'\n' '' -- "$TS"

# -nf jobs consume ids but are not listed
check "-nf runs in the foreground, no id" 0 $'fg\n' '' -- "$TS" -nf echo fg
check "-f prints the id first" 0 $'6\n' '' -- "$TS" -f true
check "next background id is 7" 0 $'7\n' '' -- "$TS" true
check "-w 7" 0 '' '' -- "$TS" -w 7
check_norm "list: -nf job 5 not kept; 6 and 7 are" 0 "$(HDR 0 1
    LF 0 OUT 0 'echo hello'
    LF 1 OUT 3 'sh -c echo out; echo err >&2; exit 3'
    LF 2 OUT -56 'sh -c exit 200'
    LF 3 stdout 0 true
    LF 4 OUT -1 nonexistent-command-xyz
    LF 6 OUT 0 true
    LF 7 OUT 0 true)"$'\n' '' -- "$TS"

# each stored job has its own output file in $TMPDIR
n=$(ls "$T" | grep -c '^ts-out\.')
is "$n" 6 "one output file per stored job (6)"
o0=$("$TS" -o 0); o7=$("$TS" -o 7)
ok "$([ "$o0" != "$o7" ]; echo $?)" "distinct output files"
case $o0 in
    "$T"/ts-out.??????) pass "output file is \$TMPDIR/ts-out.XXXXXX" ;;
    *) fail "output file is \$TMPDIR/ts-out.XXXXXX" "got $o0" ;;
esac

# arguments are passed as a vector (no shell re-splitting), display joins them with spaces
check "argument with spaces" 0 $'8\n' '' -- "$TS" printf '%s|' 'a b' '' c
check "-w 8" 0 '' '' -- "$TS" -w 8
check "argv passed verbatim" 0 'a b||c|' '' -- cat "$("$TS" -o 8)"
check_norm "display joins argv with single spaces" 0 "$(LF 8 OUT 0 'printf %s| a b  c')"$'\n' '' -- sh -c '"$TS" | tail -n 1'

# a command with glob characters and quotes is not interpreted
check "glob characters are not expanded" 0 $'9\n' '' -- "$TS" echo '*' '$HOME' '`x`'
check "-w 9" 0 '' '' -- "$TS" -w 9
check "no expansion happened" 0 $'* $HOME `x`\n' '' -- cat "$("$TS" -o 9)"

done_testing
