#!/bin/bash
# -h / -V (ts-spec.md §2.5): exact help text with argv[0] as invoked; neither starts a server.
. "$(dirname "$0")/lib.sh"

help_text() {
cat <<EOF
usage: $1 [action] [-ngfmdE] [-L <lab>] [-D <id>] [cmd...]
Env vars:
  TS_SOCKET  the path to the unix socket used by the ts command.
  TS_MAILTO  where to mail the result (on -m). Local user by default.
  TS_MAXFINISHED  maximum finished jobs in the queue.
  TS_MAXCONN  maximum number of ts connections at once.
  TS_ONFINISH  binary called on job end (passes jobid, error, outfile, command).
  TS_ENV  command called on enqueue. Its output determines the job information.
  TS_SAVELIST  filename which will store the list, if the server dies.
  TS_SLOTS   amount of jobs which can run at once, read on server start.
  TMPDIR     directory where to place the output files and the default socket.
Actions:
  -K       kill the task spooler server, and empty its queue
  --restart  restart the server with this ts binary, keeping the queue
  --reconfigure  restart the server, and take the queue's settings from this environment
  -C       clear the list of finished jobs
  -l       show the job list (default action)
  --gpu-list  list the GPUs, their memory and use, and the jobs on them.
  -S [num] get/set the number of max simultaneous jobs of the server.
  --drain  start no new job until --resume; running jobs go on.
  --resume start queued jobs again after --drain.
  --release=<id|all>  let a held job start (all: every held job of yours).
  -t [id]  "tail -n 10 -f" the output of the job. Last run if not specified.
  -c [id]  like -t, but shows all the lines. Last run if not specified.
  -p [id]  show the pid of the job. Last run if not specified.
  -o [id]  show the output file. Of last job run, if not specified.
  -i [id]  show job information. Of last job run, if not specified.
  -s [id]  show the job state. Of the last added, if not specified.
  -r [id]  remove a job. The last added, if not specified.
  -w [id]  wait for a job. The last added, if not specified.
  --wait-all  wait for all of one's queued and running jobs (-w 3,4,5: for those).
  --wait-start=<id>  wait until the job starts running.
  --requeue=<id>  queue a finished job again, as a new job (failed: all of one's failed jobs).
  -k [id]  send SIGTERM to the job process group. The last run, if not specified.
  --signal=<sig>  the signal -k sends instead of SIGTERM (INT, USR1, 9...).
  --cancel=<id>  remove a queued job, or end a running one (SIGTERM, then SIGKILL).
  -u [id]  put that job first. The last added, if not specified.
  -U <id-id>  swap two jobs in the queue.
  -B       in case of full queue on the server, quit (2) instead of waiting.
  -h       show this help
  -V       show the program version
Options adding jobs:
  -n       don't store the output of the command.
  -E       Keep stderr apart, in a name like the output file, but adding '.e'.
  -g       gzip the stored output (if not -n).
  -f       don't fork into background.
  -m       send the output by e-mail (uses sendmail).
  -d       the job will be run only if the job before ends well
  -D <id>  the job will be run only if the job of given id ends well.
  --after=<ids>  run after these jobs (3,4) end, whatever their result.
  --timeout=<duration>  end the job after this long (90, 30s, 5m, 1h30m).
  --kill-after=<duration>  SIGKILL this long after the SIGTERM of a timeout or --cancel (30s).
  --retry=<num>  run a failed job again, up to num more times.
  --unique queue nothing if the same command of one's own is queued or running (exit 3).
  -L <lab> name this task with a label, to be distinguished on listing.
  -N <num> number of slots required by the job (1 default).
  -G <num> number of GPUs required by the job (takes no slot unless -N).
  --gpus=<num>  the same as -G.
  --gpu-mem=<size>  GPU memory the job needs on each GPU (8G; implies -G 1).
  --hold[=<id>]  queue the job held, until --release; =ID holds a queued job.
  --delay=<duration>  start the job no sooner than after this long (90, 30s, 5m, 1h30m).
  --at=<time>  start the job no sooner than then (HH:MM[:SS], YYYY-MM-DD HH:MM).
EOF
}

check "-h prints the help with argv[0]" 0 "$(help_text "$TS")"$'\n' '' -- "$TS" -h
ok "$([ ! -e "$TS_SOCKET" ]; echo $?)" "-h did not start a server (no socket file)"

# argv[0] verbatim: through a symlink on PATH and through a relative path
ln -s "$TS" "$T/bin/myqueue"
check "-h via a symlink on PATH shows its name" 0 "$(help_text myqueue)"$'\n' '' -- myqueue -h
mkdir -p "$T/sub"
ln -s "$TS" "$T/sub/q"
check "-h via a relative path shows it verbatim" 0 "$(help_text ./sub/q)"$'\n' '' -- ./sub/q -h
check "-h after other flags" 0 "$(help_text "$TS")"$'\n' '' -- "$TS" -n -L x -h
check "-h with trailing words" 0 "$(help_text "$TS")"$'\n' '' -- "$TS" -h echo hi
ok "$([ ! -e "$TS_SOCKET" ]; echo $?)" "still no socket file"

run_cmd "$TS" -V
is "$RC" 0 "-V exits 0"
first=${OUT%%$'\n'*}
case $first in
    "ts "*|*"Task Spooler"*) pass "-V first line names the program ($first)" ;;
    *) fail "-V first line names the program" "got: $first" ;;
esac
is "$ERR" "" "-V prints nothing on stderr"
run_cmd "$TS" -K -V
is "$RC" 0 "-K -V: last action -V wins, rc 0"
ok "$([ ! -e "$TS_SOCKET" ]; echo $?)" "-V did not start a server (no socket file)"
ok "$([ ! -e "$TS_SOCKET.error" ]; echo $?)" "no error log written either"

done_testing
