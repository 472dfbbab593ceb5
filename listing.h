/*
 * listing.h — the queue as text, byte for byte as task-spooler prints it:
 * the list (`ts -l`), a job's information (`-i`), the TS_SAVELIST dump and
 * the state names (`-s`). Later: JSON and filters. The queue model
 * (jobs.h) knows nothing of how it is shown.
 */
#pragma once

#include <string>
#include <sys/types.h>

#include "jobs.h"

/* "queued", "running", "finished", "skipped" (a job waiting for room in a
 * full queue shows as "skipped", as task-spooler shows its waiting clients);
 * and, for the wire's kHeld and kDelayed, "held" and "delayed". */
const char* state_name(JobState s);
const char* state_name(proto::WireState s);   // nullptr for a value out of range
/* A job's state as -l and -s show it at wall-clock time now: a queued job
 * that is held (--hold) is "held", one whose start time is after now
 * (--delay, --at) "delayed"; any other job its JobState's word. */
proto::WireState wire_state(const Job& j, double now);

/* The whole list, as `ts -l` prints it. */
std::string list_text(const Queue& q);
/* One line of the list, for a job in any state. */
std::string list_line(const Job& j);
/* task-spooler's header; a drained queue (--drain) shows "[run=B/M drained]"
 * instead of "[run=B/M]", and only then. */
std::string list_header(int busy, int max, bool drained = false);
/* What -i needs to know of the queue to say why a queued job waits. */
struct WaitFacts {
    bool drained = false;
    std::vector<JobId> deps;   // Queue::waiting_for: dependencies not ended yet
    int busy = 0, max = 0;     // slots (max 0: not said)
    double now = 0;            // wall clock
};
/* Why a queued job does not start, for -i: one line per reason, in this
 * order: held ("Waiting: held: ts --release=N starts it"), delayed ("Waiting:
 * delayed until YYYY-MM-DD HH:MM:SS (local time)"), a drained queue, its
 * dependencies ("Waiting for job 3 to end"), slots ("Waiting: needs 2 slots,
 * 1 of 4 free"); "" for any other job (GPUs: GpuBroker::info). */
std::string waiting_text(const Job& j, const WaitFacts& f);
/* The same with only the drained queue known (no deps, slots or time). */
std::string waiting_text(const Job& j, bool drained);
/* The -i block (ts-spec §2.2), `now` for a running job's time; a job of
 * another uid than the server's gets a "User: UID" line. The TS_ENV text
 * (it may hold secrets) is shown only to the job's owner, the server's owner
 * and root; another user's is one escaped line, so it cannot fake others. */
std::string info_text(const Job& j, double now, uid_t server_uid, uid_t viewer,
                      const std::string& gpu_lines = std::string());   // after "Slots required"
/* -i's line for a queued job's dependencies that have not ended yet
 * ("Waiting for job 3 to end", "Waiting for jobs 3, 4 to end"); "" for none. */
std::string waiting_text(const std::vector<JobId>& deps);
/* TS_SAVELIST's dump (ts-spec §2.6), with each argument quoted for sh;
 * jobs of other users than `owner` are left as comments (running the
 * dump must not run their commands as the owner). */
std::string savelist_text(const Queue& q, uid_t owner);
