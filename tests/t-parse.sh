#!/bin/bash
# Command-line parsing rules (ts-spec.md §1.1).
. "$(dirname "$0")/lib.sh"

# --- options stop at the first non-option word ---
check "first non-option word starts the command" 0 $'0\n' '' -- "$TS" echo -n hi
check "-w waits for it" 0 '' '' -- "$TS" -w
check "output of 'echo -n hi' (the -n belongs to echo)" 0 'hi' '' -- cat "$("$TS" -o 0)"
check "-- ends the options" 0 $'1\n' '' -- "$TS" -- -x
check "-- job: -x is the command (not runnable: rc 255)" 255 '' '' -- "$TS" -w 1
check "options after the command belong to it" 0 $'2\n' '' -- "$TS" echo -K -S 5
check "-w 2" 0 '' '' -- "$TS" -w 2
check_norm "list shows the commands verbatim" 0 \
    "$(HDR 0 1; LF 0 OUT 0 'echo -n hi'; LF 1 OUT -1 '-x'; LF 2 OUT 0 'echo -K -S 5')"$'\n' '' -- "$TS"
check "the -K inside the command was not executed (slots unchanged)" 0 $'1\n' '' -- "$TS" -S
check "POSIXLY_CORRECT is not passed to the job" 0 $'3\n' '' -- "$TS" sh -c 'echo "${POSIXLY_CORRECT-unset}"'
"$TS" -w 3 >/dev/null 2>&1
check "job saw no POSIXLY_CORRECT" 0 $'unset\n' '' -- cat "$("$TS" -o 3)"

# --- clustered flags and attached arguments ---
check "clustered -nf runs in the foreground without id" 0 $'a\n' '' -- "$TS" -nf echo a
check "clustered -fn" 0 $'b\n' '' -- "$TS" -fn echo b
check "clustered -nfL with attached label arg" 0 $'c\n' '' -- "$TS" -nfLlab echo c
check "attached id: -s3" 0 $'finished\n' '' -- "$TS" -s3
check "attached id: -w3" 0 '' '' -- "$TS" -w3
check "attached id: -w1 returns the job's rc" 255 '' '' -- "$TS" -w1
check "-S3 attached sets" 0 '' '' -- "$TS" -S3
check "-S reads it back" 0 $'3\n' '' -- "$TS" -S
check "-S 1" 0 '' '' -- "$TS" -S 1

# --- "optional" ids ---
# ids so far: 0..3 stored jobs, 4,5,6 the -nf jobs (not kept)
check "-s as last word = last job" 0 $'finished\n' '' -- "$TS" -s
check "-s -l takes -l as the id (atoi = 0)" 0 $'finished\n' '' -- "$TS" -s -l
check "-o -l is job 0's output" 0 "$("$TS" -o 0)"$'\n' '' -- "$TS" -o -l
check "-s -w takes -w as the id (no wait)" 0 $'finished\n' '' -- "$TS" -s -w
check "-s garbage = job 0" 0 $'finished\n' '' -- "$TS" -s abc
check "-w -1 is the same as -w" 0 '' '' -- "$TS" -w -1
check "-s 99 error" 255 '' $'Error in the request: The job 99 cannot be stated.\n' -- "$TS" -s 99
check "-s -5 (negative id) error" 255 '' $'Error in the request: The job -5 cannot be stated.\n' -- "$TS" -s -5
check "-D abc depends on job 0" 0 $'7\n' '' -- "$TS" -D abc true
"$TS" -w 7 >/dev/null 2>&1
check "-D 1 -d: last wins (-d)" 0 $'8\n' '' -- "$TS" -D 1 -d true
"$TS" -w 8 >/dev/null 2>&1
check "-d -D 1: last wins (-D 1, which failed => skipped)" 0 $'9\n' '' -- "$TS" -d -D 1 true
check "-w on the skipped job" 255 '' '' -- "$TS" -w 9
check_norm "dependency display" 0 \
    "$(LF 7 OUT 0 '[0]&& true'; LF 8 OUT 0 '[7]&& true'; printf '%-4i %-10s %-20s %-8s %14s %s\n' 9 skipped '(no output)' '' '' '[1]&& true')"$'\n' '' \
    -- sh -c '"$TS" | tail -n 3'

# --- last action wins ---
check "-S 2 -S prints and does not set" 0 $'1\n' '' -- "$TS" -S 2 -S
check "slots still 1" 0 $'1\n' '' -- "$TS" -S
check "-S -S 2: -S taken as the id of the first => slot error" 255 '' $'You should set at minimum 1 slot.\n' -- "$TS" -S -S 2
check "-S 0 error fires even if a later action wins" 255 '' $'You should set at minimum 1 slot.\n' -- "$TS" -S 0 -s 0
check "-s 0 -S 2 sets slots" 0 '' '' -- "$TS" -s 0 -S 2
check "slots now 2" 0 $'2\n' '' -- "$TS" -S
check "-K -C clears (not kills)" 0 '' '' -- "$TS" -K -C
check_norm "finished list empty after -C, server alive (slots 2)" 0 "$(HDR 0 2)"$'\n' '' -- "$TS"

# --- -l cmd queues ---
check "-l true queues true" 0 $'10\n' '' -- "$TS" -l true
check "-w" 0 '' '' -- "$TS" -w
check_norm "-l list" 0 "$(HDR 0 2; LF 10 OUT 0 true)"$'\n' '' -- "$TS" -l
check "-h extra words: help only" 0 "$("$TS" -h)"$'\n' '' -- "$TS" -h echo hi
check "-s 10 extra words ignored" 0 $'finished\n' '' -- "$TS" -s 10 echo hi
check "nothing was queued by those" 0 $'finished\n' '' -- "$TS" -s

# --- errors ---
check "unknown option" 255 '' $'Wrong option X.\n' -- "$TS" -X
check "unknown option after valid ones" 255 '' $'Wrong option Z.\n' -- "$TS" -n -Z true
check "-L missing argument" 255 '' $'Option L missing argument.\n' -- "$TS" -L
check "-N missing argument" 255 '' $'Option N missing argument.\n' -- "$TS" -N
check "-D missing argument" 255 '' $'Option D missing argument.\n' -- "$TS" -D
check "-U missing argument" 255 '' $'Option U missing argument.\n' -- "$TS" -U
check "-S 0" 255 '' $'You should set at minimum 1 slot.\n' -- "$TS" -S 0
check "-S -3" 255 '' $'You should set at minimum 1 slot.\n' -- "$TS" -S -3
check "-S abc" 255 '' $'You should set at minimum 1 slot.\n' -- "$TS" -S abc
check "-m -n" 255 '' $'For e-mail, you should store the output (not through gzip)\n' -- "$TS" -m -n true
check "-m -g" 255 '' $'For e-mail, you should store the output (not through gzip)\n' -- "$TS" -g -m true
check "-nm clustered" 255 '' $'For e-mail, you should store the output (not through gzip)\n' -- "$TS" -nm true
check "-U without dash" 255 '' $'Wrong <id-id> for -U.\n' -- "$TS" -U 12
check "-U too long" 255 '' $'Wrong <id-id> for -U.\n' -- "$TS" -U 1-000000000000000000000000000000000000000000000000000000001
check "-U equal ids" 255 '' $'Wrong <id-id> for -U. Use different ids.\n' -- "$TS" -U 4-4
check "-U equal after atoi (x-0)" 255 '' $'Wrong <id-id> for -U. Use different ids.\n' -- "$TS" -U x-0
check "-U 3-x is 3 and 0" 255 '' $'Error in the request: The jobs 3 and 0 cannot be swapped.\n' -- "$TS" -U 3-x
check "-U -3 is 0 and 3" 255 '' $'Error in the request: The jobs 0 and 3 cannot be swapped.\n' -- "$TS" -U -3
check "-U 1-2-3 splits at the first dash" 255 '' $'Error in the request: The jobs 1 and 2 cannot be swapped.\n' -- "$TS" -U 1-2-3

# --- -C -K: last action wins => kill ---
check "-C -K kills" 0 '' '' -- "$TS" -C -K
check "-K echo hi: just kills (dead queue ok)" 0 '' '' -- "$TS" -K echo hi
check "new server: ids restart at 0" 0 $'0\n' '' -- "$TS" true
"$TS" -w >/dev/null 2>&1

done_testing
