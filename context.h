/*
 * context.h — a job's context: what the submitter's process was (its
 * environment, working directory, umask, resource limits, nice value, and
 * the TS_ENV text shown by -i), captured by the client at submit time and
 * applied in the job's own child just before exec, wherever the runner is.
 * The limits travel by wire index (protocol.h: kNumLimits); limit_resource
 * is the one table from index to RLIMIT_*.
 */
#pragma once

#include <string>
#include <vector>

#include "jobs.h"

/* The caller's context into *spec (the environment only with send_env). */
void capture_context(JobSpec* spec, bool send_env);

/* The local RLIMIT_* for wire index i of Submit::limits, or -1. */
int limit_resource(int i);

/* A variable of the job's own environment ("" when unset). */
std::string env_value(const std::vector<std::string>& env, const char* name);

/* In the job's child: stdin/stdout/stderr (-1 leaves one as it is), a new
 * session, default signals, then the spec's umask, limits, nice value and
 * working directory, and exec with envp (execvp searches the job's own
 * PATH). On failure task-spooler's message goes to stderr and the child
 * exits 255. Never returns. */
[[noreturn]] void exec_job(const JobSpec& spec, char* const* argv, char* const* envp, int in,
                           int out, int err);
