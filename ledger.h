/*
 * ledger.h — the one way the queue changes while the server runs: each call
 * changes the model (Queue), writes the journal's record of it, and tells
 * every listener (the connections that wait, through Waits; the event stream
 * of a later feature would be one more). Nothing else in the server moves a
 * job or reorders the queue.
 *
 * The journal's rules are kept per kind of change, as before:
 * - a change a client asks for (add, remove, -u, -U, -S, -C, --drain,
 *   --resume, --hold, --release) is made only after the caller has checked that the journal
 *   can be written (Server::writable); a new job is also taken back if its record fails
 *   (add answers false, and the queue is as it was);
 * - a start the scheduler decided is on disk before its runner exists, or it
 *   is undone (start answers false): a crash can never run a job twice;
 * - the rest (a runner's pid, a start or end reported, an unstart) happened
 *   already: a record that cannot be written is kept in memory
 *   (Journal::pending) and saved by the next snapshot, and a runner is not
 *   told Done (so it keeps the job's result) until then. A waiter (-w) is
 *   told at once: what it hears is true of the job, only not on disk yet.
 * A job's end is recorded once, whichever way it ends (its runner reports
 * it, it is lost, or the scheduler skips it for a failed dependency).
 */
#pragma once

#include <string>
#include <sys/types.h>
#include <vector>

#include "config.h"
#include "jobs.h"

class Journal;

/* What changed, as listeners see it. */
enum class ChangeKind : uint8_t {
    Added,        // a job queued (or put in the overflow list)
    Removed,      // -r, or another user's -C: the job is gone
    Urgent,       // -u: moved right after the head
    MovedBefore,  // another user's -u: moved before `other`
    Swapped,      // -U: id and other swapped places
    Started,      // the scheduler started it: its runner comes next
    Runner,       // its runner's pid is known
    Running,      // its runner reported the start: the job runs
    Ended,        // finished, lost or skipped (result)
    Unstarted,    // a started job went back to the queue: it never ran
    Retried,      // a run failed and the job is queued again (--retry; result: that run's)
    Reattached,   // after a restart, its runner or client is back (nothing to journal)
    Admitted,     // an overflow job let into the queue
    Cleared,      // -C: the finished list forgotten
    Slots,        // -S
    Drained,      // --drain or --resume: Queue::drained() says which
    Held,         // --hold=ID or --release: the job's settings say which
    Settings,     // the queue's settings (config.h)
};

struct Change {
    ChangeKind kind;
    JobId id = -1;
    JobId other = -1;                  // Swapped, MovedBefore
    const JobResult* result = nullptr; // Ended
    uid_t owner = uid_t(-1);           // the job's owner (-1: a change of the whole queue)
};

/* Whoever wants to hear of every change of the queue (after it is made and
 * journaled). A listener must not change the queue from inside on_change. */
struct LedgerListener {
    virtual ~LedgerListener() = default;
    virtual void on_change(const Change& c) = 0;
};

class Ledger {
public:
    Ledger(Queue* queue, Journal* journal) : queue_(queue), journal_(journal) {}
    /* Listeners are told in the order they were added; each lives longer than the ledger. */
    void listen(LedgerListener* l) { listeners_.push_back(l); }

    // Changes a client asks for (the caller checked the journal first).
    /* A new job; false (and no job) when its record cannot be written. */
    [[nodiscard]] bool add(JobSpec spec, double wall, double mono, JobId* id);
    [[nodiscard]] bool remove(JobId id, bool head_too = false);   // head_too: --cancel
    [[nodiscard]] bool urgent(JobId id);
    /* Another user's -u: ahead of their own queued jobs only. */
    [[nodiscard]] bool urgent_among_own(JobId id);
    [[nodiscard]] bool swap(JobId a, JobId b);
    void clear();
    void slots(int n);
    /* --drain (true) or --resume (false): false when the queue was so
     * already (then nothing is written and no one is told). */
    bool drain(bool on);
    /* --hold=ID (true) or --release=ID (false) of a queued job (Queue::hold);
     * false when nothing changed (then nothing is written). */
    bool hold(JobId id, bool on);
    /* The queue's settings from now on (false: kept for the next snapshot). */
    bool settings(const QueueSettings& s);

    // The scheduler.
    /* Overflow jobs that now fit, let in. */
    std::vector<JobId> admit_overflow();
    /* A scheduling pass: the jobs it skipped (a dependency failed) are ended
     * here; the jobs it started are the caller's to record (start) or take
     * back (cancel_start). */
    Decisions schedule(GpuPlan* plan, double wall);
    /* A start the scheduler decided, with the GPUs it was given: true once on
     * disk; else it is undone and false. */
    [[nodiscard]] bool start(JobId id);
    /* A start decided but never recorded goes back (nothing is on disk). */
    void cancel_start(JobId id);
    /* A queued job whose runner turns out to run it already (after a restart). */
    [[nodiscard]] bool resume(JobId id);

    // What runners report, and what the server finds.
    void runner(JobId id, pid_t pid);
    void started(JobId id, pid_t pid, const std::string& output, double start);
    /* A job ended (or never will run). False when it had ended already: then
     * nothing is written and no one is told again. A run that failed of a job
     * with retries left (--retry) is recorded as an attempt instead, and the
     * job is queued again in its place (Retried): waiters hear only its last end. */
    bool end(JobId id, const JobResult& r, double end);
    /* A started job that never ran goes back to the queue. */
    bool unstart(JobId id);
    /* After a restart, a job's runner (pid, as the kernel says; 0: not
     * known) or client is back. Nothing is journaled: the runner is the one
     * the journal names, and waiting for it is no state a restart keeps. */
    void reattached(JobId id, pid_t pid);

    /* Whether a change a client asks for may be made now: the journal works,
     * or works again when tried now (a client waits for the answer: no
     * back-off), with room ahead. A removed journal is written again first. */
    bool writable();
    // A journal that cannot be written (a full disk, a removed directory).
    bool failing() const;
    /* Try to write it whole again, at most as often as the back-off allows
     * (0.25 s, doubling to 2 s): true once it works. */
    bool recover(double now);
    double recover_at() const { return next_recover_; }   // the next try, while failing

private:
    void tell(Change c);
    void ended(JobId id, const JobResult& r, double end);

    Queue* queue_;
    Journal* journal_;
    std::vector<LedgerListener*> listeners_;
    double next_recover_ = 0;    // mono_now
    double recover_delay_ = 0.25;
};
