/*
 * gpu_broker.h — GPUs as a subsystem of the server (README "GPUs"). The
 * broker owns everything the server knows of the cards: the probe
 * (gpu_probe.h) and when it runs, the last snapshot and every card seen
 * before, when a ts job last started and ended on each card (its settling),
 * a failing probe's status and when to retry it, the memo of the last
 * scheduling pass, and what it has logged once. It reads the queue and never
 * writes it, and it never sees a connection: the server asks it (may a job
 * with this need be queued? the plan for this pass, a started job's
 * environment, -i's lines, --gpu-list's table) and does the talking, parking
 * a submit or answering --gpu-list when it hears that a probe ended.
 *
 * The broker probes only while GPU jobs wait, or when a submit or --gpu-list
 * needs to know the cards. Decisions fail closed: a job is placed only by a
 * probe begun after it was queued, on cards no ts job has left since that
 * probe began, and no longer than probe_interval seconds after it ended
 * (GpuPlan says when it wants a newer one). One probe runs at a time, and
 * serves every job that waits when it begins. A failed probe stops GPU jobs
 * only: CPU jobs go on, and the reason is in -i, --gpu-list and the log.
 *
 * A pass costs nothing while nothing it decides by has changed (the last
 * probe's result, the queue: its GPU jobs, the running ones, slots, order)
 * and no card settles: the jobs that waited still wait (pass_due).
 *
 * Every time here is mono_now() (util.h): a step of the wall clock moves no
 * probe, settling, retry or wait.
 */
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "config.h"
#include "gpu.h"
#include "gpu_probe.h"
#include "jobs.h"

class GpuBroker {
public:
    using Log = std::function<void(const std::string&)>;
    /* cfg and queue are the server's, read as they are at each call; log
     * takes one line for the server's log. */
    GpuBroker(const ServerConfig& cfg, const Queue& queue, std::unique_ptr<CardProbe> probe, Log log);
    /* The probe the settings ask for: nvidia-smi and sysfs, as child processes. */
    static std::unique_ptr<CardProbe> process_probe(const ServerConfig& cfg);
    /* A new probe (the settings changed); none may be running. */
    void set_probe(std::unique_ptr<CardProbe> probe) { probe_ = std::move(probe); }

    // ---- the probe, driven by the loop ----
    enum class Begun { No, Started, Failed };
    /* Start a probe unless one runs (or failed a moment ago). Started: the
     * caller takes it at once (one with nothing to run has ended already);
     * Failed: it could not start, and counts as ended (probed()). */
    Begun want_probe(double now);
    /* The probe's pipe, deadline and children. */
    void poll(double now);
    /* The result of a probe that ended, if one did: true then. */
    bool take(double now);
    bool reaped(pid_t pid, int status, double now) { return probe_->reaped(pid, status, now); }
    int fd() const { return probe_->fd(); }
    /* When the loop must look at the GPUs again: a probe's deadline, the end
     * of a card's settling, the next probe while GPU jobs wait. 0: never. */
    double wakeup(double now) const;
    /* A probe's result is used for probe_interval from its end. */
    bool fresh(double now) const;
    bool probed() const { return probed_; }        // a probe has ended (or could not start) since the start
    bool probing() const { return probe_->running(); }
    double probe_began() const { return probe_->started(); }
    bool seen() const { return snap_.when != 0; }  // a probe has given cards (the table of --gpu-list)

    // ---- a submit of a GPU job ----
    /* Yes: it may be queued; No: this machine could never give it its GPUs
     * (why says so); AfterProbe: ask again once a probe has ended. */
    struct Verdict {
        enum Kind { Yes, No, AfterProbe } kind = Yes;
        std::string why;
    };
    Verdict may_queue(const GpuNeed& need) const;

    // ---- a scheduling pass ----
    /* Whether this pass must place GPU jobs: something the last one decided
     * by has changed since, or it started a job. */
    bool pass_due(double now);
    /* The plan for this pass, or nullptr when the cards are not known well
     * enough (a probe is wanted, or failing: the status says why). */
    std::unique_ptr<GpuPlan> plan(double now) const;
    /* After a pass (placed: it had a plan to place by): true when a probe is wanted. */
    bool passed(double now, bool placed, const GpuPlan* plan, const Decisions& d);
    /* What a starting job's runner adds to its environment. */
    std::vector<std::string> start_env(const Job& j) const;
    /* A job started (or was restored running) on these cards: they settle from now. */
    void started_on(const std::vector<std::string>& cards, double now);
    size_t asked() const { return asked_; }   // placements tried by every pass together

    // ---- what users are shown ----
    std::string info(const Job& j) const;          // -i's lines of a GPU job ("" for any other)
    std::string list_text(double now) const;       // --gpu-list

private:
    void failed(double now, const std::string& why);
    void took(GpuSnapshot s);
    void log_doubts();
    void note_ends(double now);
    GpuUse use() const;
    const GpuCard* known_card(const std::string& uuid) const;
    bool waits_for_other_than_gpus(const Job& j) const;
    std::string wait_reason(const Job& j, double now) const;
    std::string list_head(double now) const;
    std::string card_row(const GpuCard& c, const std::vector<JobId>& on) const;
    void say(const char* fmt, ...) const __attribute__((format(printf, 2, 3)));

    const ServerConfig& cfg_;
    const Queue& queue_;
    std::unique_ptr<CardProbe> probe_;
    Log log_;
    GpuSnapshot snap_;                            // the last probe's result (when == 0: none yet)
    bool probed_ = false;                         // a probe has ended since the server started
    std::string status_;                          // why no GPU job can be placed now ("": they can)
    std::map<std::string, GpuCard> known_;        // every card seen, by UUID
    std::map<std::string, double> last_start_;    // when a job last started on a card
    std::map<std::string, double> last_end_;      // when a ts job on a card last ended
    std::map<JobId, std::vector<std::string>> held_;   // the running GPU jobs' cards (note_ends)
    uint64_t held_seen_ = ~uint64_t(0);           // queue_.changes() when held_ was last brought up to date
    uint64_t snaps_ = 0;                          // probe results taken: each may change every placement
    // What the last pass that placed GPU jobs decided by, and decided: while
    // none of it changes, a pass places nothing again (pass_due).
    struct Pass {
        bool valid = false;       // it started nothing (one that did is followed by another)
        uint64_t snaps = 0;       // snaps_ then
        uint64_t changes = 0;     // queue_.changes() then
        double until = 0;         // a card settles, or the probe gets too old, then
        bool waiting = false;     // a GPU job waited for its GPUs only
        bool wants_probe = false; // ...and a newer probe may place it
    } pass_;
    size_t asked_ = 0;
    double retry_at_ = 0;                         // a probe that failed or could not start: again then
    double failed_at_ = 0;                        // when the last probe failed (status_ says why)
    std::set<std::string> doubted_;               // cards the last probe could not read (logged once)
    std::set<std::string> unread_;                // lines the last probe could not read (logged once)
};
