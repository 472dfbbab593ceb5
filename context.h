/*
 * context.h — a job's context: what the submitter's process was (its
 * environment, working directory, umask, resource limits, nice value, and
 * the TS_ENV text shown by -i), captured by the client at submit time and
 * applied in the job's own child just before exec, wherever the runner is.
 * The limits travel by wire index (protocol.h: kNumLimits); limit_resource
 * is the one table from index to RLIMIT_*.
 */
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "jobs.h"

/* The caller's context into *spec (the environment only with send_env). */
void capture_context(JobSpec* spec, bool send_env);

/* The local RLIMIT_* for wire index i of Submit::limits, or -1. */
int limit_resource(int i);

/* A variable of the job's own environment ("" when unset). */
std::string env_value(const std::vector<std::string>& env, const char* name);

/* Pipes between a runner and its job's child (-1: none).
 * gate: the child reads one byte from it before it changes anything the job
 * would see, and ends at once on EOF: a runner that dies before it has told
 * the server the job starts leaves a job that never ran (queued again), not
 * one that runs unknown to the server.
 * report: close-on-exec; a child that cannot start the job writes a
 * StartFailure to it, so that the runner can say why (-i's Error line).
 * link: the runner's connection to the server, held by the child until the
 * go (closed before the job begins): on EOF at the gate the child sends the
 * server not_run (a NotRun frame) there, so that a runner that died after
 * reporting the start, before its go, leaves a job queued again, not lost. */
struct JobPipes {
    int gate = -1;
    int report = -1;
    int link = -1;
    const char* not_run = nullptr;
    size_t not_run_len = 0;
};
struct StartFailure {
    int32_t step;   // kStepChdir or kStepExec
    int32_t err;    // its errno
};
constexpr int32_t kStepChdir = 1;
constexpr int32_t kStepExec = 2;
/* Why a job could not start, for -i's Error line and the output file, e.g.
 * "cannot run 'x': No such file or directory"; "" for a failure it does not know. */
std::string start_failure_text(const StartFailure& f, const JobSpec& spec);

/* In the job's child: stdin/stdout/stderr (-1 leaves one as it is), a new
 * session, default signals, the go from the runner (pipes->gate), then the
 * spec's umask, limits, nice value and working directory, and exec with envp
 * (execvp searches the job's own PATH). On failure the child exits 255 after
 * writing a StartFailure to pipes->report; when exec fails, task-spooler's
 * message goes to stderr too (and, without a report pipe, a line saying
 * which step failed). Never returns. */
[[noreturn]] void exec_job(const JobSpec& spec, char* const* argv, char* const* envp, int in,
                           int out, int err, const JobPipes* pipes = nullptr);
