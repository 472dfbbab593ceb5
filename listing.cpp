/*
 * listing.cpp — the queue as text: `ts -l`, `-i`, the TS_SAVELIST dump and
 * the state names; see listing.h.
 */
#include "listing.h"

#include <algorithm>

#include <array>
#include <ctime>
#include <vector>

#include "util.h"

namespace {
// An overflow job shows as "skipped", as task-spooler shows its holding clients.
// The last two are no JobState: queued jobs that wait for --release or a time.
constexpr std::array<const char*, 7> kStateNames = {"queued", "running", "finished", "skipped",
                                                    "skipped", "held", "delayed"};
static_assert(kStateNames.size() == size_t(proto::kDelayed) + 1);
static_assert(size_t(proto::kOverflow) == static_cast<size_t>(JobState::Overflow));
}  // namespace

const char* state_name(JobState s) { return kStateNames[static_cast<size_t>(s)]; }

const char* state_name(proto::WireState s) {
    return s <= proto::kDelayed ? kStateNames[static_cast<size_t>(s)] : nullptr;
}

proto::WireState wire_state(const Job& j, double now) {
    if (j.state == JobState::Queued && Queue::waits_for_time(j, now))
        return j.spec.settings.held() ? proto::kHeld : proto::kDelayed;
    return proto::WireState(static_cast<uint8_t>(j.state));
}

std::string list_header(int busy, int max, bool drained) {
    return format("%-4s %-10s %-20s %-8s %-14s %s [run=%i/%i%s]\n", "ID", "State", "Output",
                  "E-Level", "Times(r/u/s)", "Command", busy, max, drained ? " drained" : "");
}

std::string waiting_text(const Job& j, const WaitFacts& f) {
    if (j.state != JobState::Queued) return "";
    std::string s;
    if (j.spec.settings.held()) s += format("Waiting: held: ts --release=%i starts it\n", j.id);
    if (double t = j.spec.settings.not_before(); t > f.now)
        s += "Waiting: delayed until " + local_time_text(t) + " (local time)\n";
    if (f.drained) s += "Waiting: the queue is drained: ts --resume starts it\n";
    s += waiting_text(f.deps);
    int free = f.max - f.busy, need = j.spec.num_slots;
    if (f.max > 0 && need > 0 && free < need)
        s += format("Waiting: needs %s, %i of %i free\n", counted(size_t(need), "slot", "slots").c_str(),
                    std::max(0, free), f.max);
    return s;
}

std::string waiting_text(const Job& j, bool drained) {
    WaitFacts f;
    f.drained = drained;
    f.now = wall_now();
    return waiting_text(j, f);
}

static std::string output_shown(const Job& j) {
    if (j.state == JobState::Skipped) return "(no output)";
    if (!j.spec.stores_output()) return "stdout";
    if (j.state == JobState::Queued) return "(file)";
    return j.output.empty() ? "(...)" : j.output;
}

std::string list_line(const Job& j) {
    const char* state = state_name(j.state);
    if (j.state == JobState::Queued && !j.spec.settings.empty()) state = state_name(wire_state(j, wall_now()));
    std::string cmd = j.dep_prefix();
    if (j.spec.label) cmd += "[" + printable(*j.spec.label) + "]";
    cmd += printable(j.spec.command());
    std::string out = printable(output_shown(j));
    if (j.state == JobState::Finished)
        return format("%-4i %-10s %-20s %-8i %0.2f/%0.2f/%0.2f %s\n", j.id, state_name(j.state),
                      out.c_str(), j.result.errorlevel, j.result.real, j.result.user,
                      j.result.sys, cmd.c_str());
    return format("%-4i %-10s %-20s %-8s %14s %s\n", j.id, state, out.c_str(), "",
                  "", cmd.c_str());
}

static std::string ctime_text(double t) {
    time_t tt = static_cast<time_t>(t);
    char buf[64];
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(buf, sizeof buf, "%a %b %e %H:%M:%S %Y\n", &tm);
    return buf;
}

/* How a run ended, as -i says it: "died with exit code 1", "timed out after 2s (killed by signal 15)". */
static std::string run_end_text(int errorlevel, int signal, EndHow how, double timeout) {
    std::string base = signal ? format("killed by signal %i", signal) : format("died with exit code %i", errorlevel);
    if (how == EndHow::TimedOut) return format("timed out after %s (%s)", format_duration(timeout).c_str(), base.c_str());
    if (how == EndHow::Cancelled) return "cancelled (" + base + ")";
    return base;
}

/* A moment as "2026-12-08 00:01:02" (local time). */
static std::string short_time(double t) {
    time_t tt = time_t(t);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", localtime(&tt));
    return buf;
}

/* --timeout and --retry: the job's own lines in -i, with each retried run. */
static std::string timing_text(const Job& j) {
    const JobSettings& st = j.spec.settings;
    std::string s;
    if (st.timeout() > 0)
        s += format("Timeout: %s, then SIGTERM, and SIGKILL %s later\n", format_duration(st.timeout()).c_str(),
                    format_duration(st.kill_after()).c_str());
    if (j.result.how == EndHow::TimedOut && (j.state == JobState::Finished))
        s += format("Ended: timed out after %s\n", format_duration(st.timeout()).c_str());
    if (j.result.how == EndHow::Cancelled && j.state == JobState::Finished) s += "Ended: cancelled (ts --cancel)\n";
    if (st.retries() == 0) return s;
    unsigned total = st.retries() + 1, n = 0;
    for (const Attempt& a : j.attempts()) {
        // A run whose start was never reported has no start time: only its end.
        std::string when = a.start > 0 ? "from " + short_time(a.start) + " to " + short_time(a.end)
                                       : "before its start was reported, at " + short_time(a.end);
        s += format("Attempt %u of %u: %s, %s%s\n", ++n, total,
                    run_end_text(a.errorlevel, a.signal, a.how, st.timeout()).c_str(), when.c_str(),
                    a.output.empty() ? "" : (", output " + printable(a.output)).c_str());
    }
    const char* now = j.state == JobState::Running ? "running"
                      : j.state == JobState::Queued ? "queued" : nullptr;
    if (now) s += format("Attempt %u of %u: %s\n", n + 1, total, now);
    else if (j.state == JobState::Finished && j.start_time > 0)
        s += format("Attempt %u of %u: %s, the last\n", n + 1, total,
                    run_end_text(j.result.errorlevel, j.result.signal, j.result.how, st.timeout()).c_str());
    return s;
}

std::string info_text(const Job& j, double now, uid_t server_uid, uid_t viewer, const std::string& gpu_lines) {
    std::string s;
    bool may_see = viewer == j.spec.uid || viewer == server_uid || viewer == 0;
    if (j.spec.env_info && may_see)
        s += "Environment:\n" + (j.spec.uid == server_uid ? printable(*j.spec.env_info, true)
                                                         : printable(*j.spec.env_info) + "\n");
    if (j.state == JobState::Finished || j.state == JobState::Skipped) {
        if (j.result.signal)
            s += format("Exit status: killed by signal %i\n", j.result.signal);
        else
            s += format("Exit status: died with exit code %i\n", j.result.errorlevel);
        if (!j.result.note.empty()) s += "Error: " + printable(j.result.note) + "\n";
        if (!j.result.lost.empty()) s += "Lost: " + printable(j.result.lost) + "\n";
    }
    s += "Command: ";
    s += j.dep_prefix(false);
    s += printable(j.spec.command()) + "\n";
    s += format("Slots required: %i\n", j.spec.num_slots);
    s += gpu_lines;
    if (j.spec.uid != server_uid) s += format("User: %u\n", unsigned(j.spec.uid));
    s += "Enqueue time: " + ctime_text(j.enqueue_time);
    // Only what is known: a job that never started (lost before its runner
    // reported it, or still being started) has no start time, and so no time run.
    bool started = j.start_time > 0;
    if (j.state == JobState::Running && started) {
        s += "Start time: " + ctime_text(j.start_time);
        s += format("Time running: %fs\n", std::max(0.0, now - j.start_time));   // the clock set back: not negative
    } else if (j.state == JobState::Finished) {
        if (started) s += "Start time: " + ctime_text(j.start_time);
        if (j.end_time > 0) s += "End time: " + ctime_text(j.end_time);
        if (started && j.end_time > 0) s += format("Time run: %fs\n", std::max(0.0, j.end_time - j.start_time));
    }
    return s + timing_text(j);
}

std::string waiting_text(const std::vector<JobId>& deps) {
    if (deps.empty()) return std::string();
    std::string ids;
    for (JobId id : deps) ids += (ids.empty() ? "" : ", ") + std::to_string(id);
    return format("Waiting for job%s %s to end\n", deps.size() > 1 ? "s" : "", ids.c_str());
}

std::string list_text(const Queue& q) {
    std::string s = list_header(q.busy_slots(), q.max_slots(), q.drained());
    for (JobId id : q.active()) s += list_line(*q.find(id));
    for (JobId id : q.finished_list()) s += list_line(*q.find(id));
    return s;
}

std::string savelist_text(const Queue& q, uid_t owner) {
    std::string s =
        "#!/bin/sh\n"
        "# - task spooler (ts) job dump\n"
        "# This file has been created because a SIGTERM killed\n"
        "# your queue server.\n"
        "# The finished commands are listed first.\n"
        "# The commands running or to be run are stored as you would\n"
        "# probably run them. Take care - some quotes may have got broken\n"
        "\n";
    s += "# " + list_header(q.busy_slots(), q.max_slots(), q.drained());
    for (JobId id : q.finished_list()) s += "# " + list_line(*q.find(id));
    s += "\n";
    std::vector<JobId> waiting(q.active().begin(), q.active().end());
    for (JobId id : q.overflow()) waiting.push_back(id);   // waiting for room, as task-spooler's holding jobs
    for (JobId id : waiting) {
        const Job& j = *q.find(id);
        std::string cmd = "ts";
        for (const auto& a : j.spec.argv) cmd += " " + shell_quote(a);
        if (j.spec.uid == owner)
            s += cmd + "\n";
        else   // another user's command must not run as the owner: a comment, one line
            s += format("# job %d of uid %u, not queued again: ", j.id, unsigned(j.spec.uid)) +
                 printable(cmd) + "\n";
    }
    return s;
}

