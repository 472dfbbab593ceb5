/*
 * runner.h — running one job to its end and reporting it.
 *
 * A runner is the process that owns one running job. It creates the output
 * file ($TMPDIR/ts-out.XXXXXX from the job's own environment, mode 0600),
 * forks the job into its own session (so `kill -- -PID` reaches all of it)
 * with the submitter's context (argv, environment, cwd, umask, resource
 * limits, nice value), waits for it with wait4, runs TS_ONFINISH, and reports
 * Started and Finished frames over its connection to the server.
 *
 * The same code serves both kinds of runner (design.md): one the server
 * forks for a queued job, talking over a socketpair, and the `ts -f` client
 * itself, which runs the job in the foreground with the caller's terminal.
 */
#pragma once

#include "jobs.h"

/* The local RLIMIT_* for wire index i of Submit::limits, or -1. */
int limit_resource(int i);

struct RunOutcome {
    JobResult result;
    bool reported = false;   // Finished reached the server
};

/* Run the job and report to the server over fd; returns the result.
 * foreground: stdin is the caller's, and SIGINT is forwarded to the job. */
RunOutcome run_job(const JobSpec& spec, JobId id, int fd, bool foreground);

/* The skipped-job report of a client-held runner (a dependency failed). */
void report_skipped(int fd);
