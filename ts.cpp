/*
 * ts — a job queue for the Unix command line, a drop-in replacement for
 * task-spooler 1.0 (`tsp`). This file turns argv into Options and runs the
 * action: -h and -V here, everything else through the client (client.cpp),
 * which talks to the per-user server (server.cpp) and starts it on demand.
 *
 * See design notes at the top of client.cpp, server.cpp, jobs.cpp and
 * runner.cpp, and the man page ts.1.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "client.h"
#include "options.h"
#include "server.h"
#include "util.h"

namespace {

constexpr const char* kVersionText =
    "ts 1.0.0 - a task queue system for the unix user (compatible with Task Spooler v1.0.1).\n"
    "Copyright (C) 2026  the ts authors; MIT licence.\n";

void print_help(const char* argv0) {
    printf("usage: %s [action] [-ngfmdE] [-L <lab>] [-D <id>] [cmd...]\n", argv0);
    fputs("Env vars:\n"
          "  TS_SOCKET  the path to the unix socket used by the ts command.\n"
          "  TS_MAILTO  where to mail the result (on -m). Local user by default.\n"
          "  TS_MAXFINISHED  maximum finished jobs in the queue.\n"
          "  TS_MAXCONN  maximum number of ts connections at once.\n"
          "  TS_ONFINISH  binary called on job end (passes jobid, error, outfile, command).\n"
          "  TS_ENV  command called on enqueue. Its output determines the job information.\n"
          "  TS_SAVELIST  filename which will store the list, if the server dies.\n"
          "  TS_SLOTS   amount of jobs which can run at once, read on server start.\n"
          "  TMPDIR     directory where to place the output files and the default socket.\n"
          "Actions:\n"
          "  -K       kill the task spooler server, and empty its queue\n"
          "  --restart  restart the server with this ts binary, keeping the queue\n"
          "  -C       clear the list of finished jobs\n"
          "  -l       show the job list (default action)\n"
          "  -S [num] get/set the number of max simultaneous jobs of the server.\n"
          "  -t [id]  \"tail -n 10 -f\" the output of the job. Last run if not specified.\n"
          "  -c [id]  like -t, but shows all the lines. Last run if not specified.\n"
          "  -p [id]  show the pid of the job. Last run if not specified.\n"
          "  -o [id]  show the output file. Of last job run, if not specified.\n"
          "  -i [id]  show job information. Of last job run, if not specified.\n"
          "  -s [id]  show the job state. Of the last added, if not specified.\n"
          "  -r [id]  remove a job. The last added, if not specified.\n"
          "  -w [id]  wait for a job. The last added, if not specified.\n"
          "  -k [id]  send SIGTERM to the job process group. The last run, if not specified.\n"
          "  -u [id]  put that job first. The last added, if not specified.\n"
          "  -U <id-id>  swap two jobs in the queue.\n"
          "  -B       in case of full queue on the server, quit (2) instead of waiting.\n"
          "  -h       show this help\n"
          "  -V       show the program version\n"
          "Options adding jobs:\n"
          "  -n       don't store the output of the command.\n"
          "  -E       Keep stderr apart, in a name like the output file, but adding '.e'.\n"
          "  -g       gzip the stored output (if not -n).\n"
          "  -f       don't fork into background.\n"
          "  -m       send the output by e-mail (uses sendmail).\n"
          "  -d       the job will be run only if the job before ends well\n"
          "  -D <id>  the job will be run only if the job of given id ends well.\n"
          "  -L <lab> name this task with a label, to be distinguished on listing.\n"
          "  -N <num> number of slots required by the job (1 default).\n",
          stdout);
}

}  // namespace

int main(int argc, char** argv) {
    // Internal: a server exec'd under valgrind (make check-valgrind; client.cpp).
    if (argc == 5 && std::strcmp(argv[1], "--internal-serve") == 0) {
        Fd lfd(std::atoi(argv[2])), err(std::atoi(argv[3]));
        set_cloexec(lfd.get());
        set_cloexec(err.get());
        run_server(std::move(lfd), std::move(err), argv[4]);
    }
    Options o;
    std::string err;
    if (!parse_options(argc, argv, &o, &err)) die_with(kExitError, err);
    switch (o.action) {
    case Action::Help: print_help(o.argv0.c_str()); return kExitOk;
    case Action::Version: fputs(kVersionText, stdout); return kExitOk;
    default: return run_client(o);
    }
}
