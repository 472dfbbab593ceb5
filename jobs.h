/*
 * jobs.h — the queue model: jobs, their states and order, slots,
 * dependencies, the finished list and task-spooler's "last job" rules.
 *
 * It knows nothing about sockets, files or processes: the server feeds it
 * events (a job was submitted, started, finished, its runner vanished) and
 * asks it what to start next; unit tests drive it directly.
 *
 * Every job lives in one map keyed by id. Two orderings refer to it: the
 * active list (queued and running jobs, in queue order, which -u and -U can
 * change) and the finished list (finished and skipped jobs, in the order they
 * ended). Job::state says which list a job is on. A third, the overflow list,
 * keeps jobs submitted while the queue was full (only when a limit is set,
 * TS_MAXCONN): their submitters wait until there is room, as in task-spooler.
 *
 * A job's lifecycle is one table (kTransitions in jobs.cpp), and one private
 * function, Queue::move, makes every move in it: it takes the job off its old
 * list and puts it on the new one, and keeps the busy slots and its owner's
 * Usage right. "out" is outside the queue (not added yet, or gone for good):
 *
 *            add                  start
 *   out ------------> Queued  ------------>  Running
 *    |                 ^  |   <------------    |
 *    | add (full)      |  |   unstart, retry   |
 *    v                 |  | skip, end          | end
 *   Overflow --admit---+  v                    |
 *    '------- end ---> Finished | Skipped <----'
 *                             |
 *                             '-- forget (-nf), evict, clear (-C), remove (-r) --> out
 *
 *   also: restore     out -> any state (from the journal, as it was)
 *         remove      Queued (never the head, but by --cancel) -> out
 *         cancel_add  Queued | Overflow -> out (its record could not be written)
 *
 * end takes a job that never ran too (lost, or refused by -B), and makes it
 * Skipped for a skip's result (a replayed skip). start, unstart and retry keep
 * the job's place in the active list; every other move puts it at the end of its
 * new list; -u and -U only reorder the active list. A public operation checks
 * what only it knows (remove: not the head; admit_overflow: room, in order)
 * and leaves the rest to move(): a move the table does not allow changes
 * nothing, and the operation answers false (or, if void, does nothing).
 */
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <sys/types.h>

#include "protocol.h"
#include "settings.h"

using JobId = int;

/* Overflow: submitted while the queue was full (TS_MAXCONN); the job waits
 * outside the queue, its submitter blocked, until there is room (shown as
 * "skipped", as task-spooler shows its waiting clients). */
enum class JobState { Queued, Running, Finished, Skipped, Overflow };

/* The resource limits the client read, shared by the jobs that have the
 * same ones (a queue of 100,000 jobs from one shell keeps one copy). */
struct Limits {
    uint32_t valid = 0;   // bit i set: v[i] was read on the client
    uint32_t pad = 0;
    proto::RLimit v[proto::kNumLimits] = {};
};
using LimitsPtr = std::shared_ptr<const Limits>;

/* Everything the submitter sent: what to run and in which context. */
struct JobSpec {
    std::vector<std::string> argv;
    std::vector<std::string> env;
    std::string cwd;
    std::optional<std::string> label;
    std::optional<std::string> env_info;   // TS_ENV output
    uint32_t flags = proto::kStoreOutput | proto::kKeepFinished;
    int num_slots = 1;
    bool depends = false;
    int depend_on = -1;                    // -1 with depends: "the job before" (-d)
    uint32_t umask = 022;
    int nice = 0;
    LimitsPtr limits;                      // nullptr: none were read
    uid_t uid = 0;
    std::string token;                     // the submit's own id: a retried submit is not queued twice
    JobSettings settings;                  // optional settings (GPUs, timeouts, ...: settings.h)

    bool stores_output() const { return flags & proto::kStoreOutput; }
    bool foreground() const { return flags & proto::kForeground; }
    /* A client runs it (-f, or a submitter of another uid), not a runner of the server's. */
    bool run_by_client() const { return flags & (proto::kForeground | proto::kRunByClient); }
    std::string command() const;           // argv joined by spaces, as the list shows it
};

/* An environment shared by the jobs that have the same one: most jobs of a
 * queue come from the same shell, so a queue of 100,000 jobs keeps a few. */
using Env = std::vector<std::string>;
using EnvPtr = std::shared_ptr<const Env>;

/* How a job's process was ended, beyond its exit status. */
enum class EndHow : uint8_t {
    Normal = 0,     // it ended by itself (or by -k)
    TimedOut = 1,   // its runner ended it at its --timeout deadline
    Cancelled = 2,  // --cancel ended it (never retried)
};

struct JobResult {
    EndHow how = EndHow::Normal;
    int errorlevel = 0;    // (signed char) exit status; -1 for a signal, a skip or a lost runner
    int signal = 0;        // 0 unless killed by a signal
    bool skipped = false;
    double real = 0, user = 0, sys = 0;   // seconds
    std::string note;      // why the job could not start, shown by -i
    std::string lost;      // why its end is unknown (its runner went away, ...), shown by -i
};

/* Whether a result is a failure that --retry runs again after: a non-zero
 * exit, a signal or a timeout; not a cancel, a skip, a start that failed
 * (note) or a lost runner. */
bool retryable(const JobResult& r);

/* --retry: what a runner that comes back after a restart carries, for job
 * j: run, which run of the job it was given (Assign, Run), and whether that
 * run started. Current: the job's run now. Attempt: a job its client runs,
 * whose run ended as an attempt before the runner heard so (Again): that
 * runner is the job's only one, and runs its next run. Over: a run that is
 * not the job's (a runner of ours of an earlier run: another runs the job). */
enum class RunOf { Current, Attempt, Over };
struct Job;
RunOf run_of(const Job& j, uint16_t run, bool started);

/* One run of a job that was retried (--retry): what it ended with, and when. */
struct Attempt {
    double start = 0, end = 0;
    int errorlevel = 0, signal = 0;
    EndHow how = EndHow::Normal;
    std::string output;
};

/* The result of a job skipped because its dependency failed. */
JobResult skipped_result();

/* A value held through a pointer, copied with its owner: for the fields
 * most jobs do not have. */
template <class T>
class CopyBox {
public:
    CopyBox() = default;
    CopyBox(const CopyBox& o) : p_(o.p_ ? std::make_unique<T>(*o.p_) : nullptr) {}
    CopyBox& operator=(const CopyBox& o) {
        if (this != &o) p_ = o.p_ ? std::make_unique<T>(*o.p_) : nullptr;
        return *this;
    }
    CopyBox(CopyBox&&) noexcept = default;
    CopyBox& operator=(CopyBox&&) noexcept = default;
    explicit operator bool() const { return p_ != nullptr; }
    const T* operator->() const { return p_.get(); }
    T& make() {
        if (!p_) p_ = std::make_unique<T>();
        return *p_;
    }
    void reset() { p_.reset(); }

private:
    std::unique_ptr<T> p_;
};

/* What a job holds of the GPUs, saved (a restarted server keeps a running
 * job's cards, and what they put in its environment). */
struct JobGpus {
    std::vector<std::string> cards;   // the UUIDs of the cards it was given, from its start on
    std::vector<std::string> env;     // NAME=value its runner adds to the job's environment
};

struct Job {
    JobId id = 0;
    JobState state = JobState::Queued;
    JobSpec spec;
    // Dependency as resolved at submit time (task-spooler §4.6).
    bool depends = false;
    int depend_on = -1;                    // shown as "[N]&& "; -1: shown as "&& "
    std::optional<int> dep_result;         // known at submit: the errorlevel that decides
    std::string output;                    // path of the output file once started
    EnvPtr env;                            // the environment (spec.env is moved here)
    pid_t pid = 0;
    pid_t runner_pid = 0;                  // of a server-spawned runner
    double enqueue_time = 0, start_time = 0, end_time = 0;   // wall clock (util.h: wall_now), shown and saved
    // Not saved: when it was queued on this server's monotonic clock (mono_now;
    // 0: before this server started). Only a GPU probe begun since may place it.
    double queued_mono = 0;
    JobResult result;
    // Not saved: a restored -f job whose client has not come back yet is
    // not started (its client must run it).
    bool awaiting_client = false;
    // GPUs (gpu.h), for the jobs that have any (others hold one null pointer).
    const std::vector<std::string>& gpus() const { return gpu_ ? gpu_->cards : kNone; }
    const std::vector<std::string>& start_env() const { return gpu_ ? gpu_->env : kNone; }
    JobGpus& gpu() { return gpu_.make(); }
    void drop_gpus() { gpu_.reset(); }


    // The dependencies beyond task-spooler's one (settings.h: -D A,B,C and
    // --after), and the results of those that ended, learned when they did
    // (a dependency may be forgotten right after, -nf): (id, errorlevel), saved.
    bool has_more_deps() const;
    const std::vector<std::pair<JobId, int>>& more_results() const;
    void learn_result(JobId dep, int errorlevel);   // once per dependency
    const int* learned(JobId dep) const;             // nullptr: not learned

    /* -l's prefix: "", "&& " (a -d that found no job: only when
     * show_unresolved), "[N]&& ", "[N,M]&& "; and "[A,B]; " first for --after. */
    std::string dep_prefix(bool show_unresolved = true) const;

    /* --retry: the runs that failed and were retried, oldest first (the
     * current or last run is the job's own fields); saved. */
    const std::vector<Attempt>& attempts() const { return attempts_ ? *attempts_.operator->() : kNoAttempts; }
    std::vector<Attempt>& attempts_mut() { return attempts_.make(); }

private:
    CopyBox<std::vector<Attempt>> attempts_;
    static const std::vector<Attempt> kNoAttempts;
    CopyBox<std::vector<std::pair<JobId, int>>> results_;
    static const std::vector<std::pair<JobId, int>> kNoResults;
    CopyBox<JobGpus> gpu_;
    static const std::vector<std::string> kNone;
};

/* What one scheduling pass decided. */
struct Decisions {
    std::vector<JobId> start;     // now Running: start their runners
    std::vector<JobId> skipped;   // now Skipped: a dependency failed
    bool gpu_waiting = false;     // a GPU job could start but for its GPUs
};

class GpuPlan;

class Queue {
public:
    Queue();

    /* A new job: Queued, or Overflow when the queue is full. wall: its
     * enqueue time; mono: the same moment on the monotonic clock. */
    JobId add(JobSpec spec, double wall, double mono = 0);
    /* Put back a job exactly as it was (from the journal), at the end of
     * the list its state belongs to. */
    void restore(Job j);
    /* After restoring: link every waiting job to the dependency it waits for
     * (a dependency may come later in a snapshot than its dependent). */
    void relink_dependencies();
    /* Mark a queued job running (the journal's record of a scheduling decision). */
    bool start(JobId id);
    void set_runner(JobId id, pid_t runner_pid);
    /* A Running job that never started after all goes back to Queued. */
    bool unstart(JobId id);
    /* --retry: a Running job that failed goes back to Queued, in its place,
     * its run kept as an attempt (result r, ended at end). */
    bool retry(JobId id, const JobResult& r, double end);
    /* Whether a running job that ends with r runs again (--retry). */
    bool will_retry(JobId id, const JobResult& r) const;

    /* The little state besides the jobs, for the journal. */
    struct Meta {
        JobId next_id = 0;
        int last_errorlevel = 0;
        JobId last_finished_id = -1;
        int max_slots = 1;
    };
    Meta meta() const { return {next_id_, last_errorlevel_, last_finished_id_, max_slots_}; }
    void set_meta(const Meta& m);
    std::vector<JobId> overflow() const { return {overflow_.begin(), overflow_.end()}; }

    /* An overflow job let in (the journal's record of admit_overflow). */
    bool admit(JobId id);
    /* Overflow jobs that now fit, moved to the end of the active list. */
    std::vector<JobId> admit_overflow();
    /* 0: no limit. Otherwise at most limit-1 jobs queued or running. */
    void set_max_jobs(size_t n) { max_jobs_ = n; }
    Job* find(JobId id);
    const Job* find(JobId id) const;

    /* The dependencies a queued job still waits for (not ended yet), in the
     * order given: -D's (or -d's) first, then --after's. */
    std::vector<JobId> waiting_for(const Job& j) const;

    /* Start every job that fits in the free slots, in queue order, and skip
     * the jobs whose dependency failed (with several, once all have ended and
     * any of -D's did not end well; --after's may end as they like); while
     * drained, nothing (a skip waits for the resume too). A GPU job (-G) needs its GPUs, which
     * gpus places (nullptr: none can be placed now), and slots only when it
     * asked for some (-N). A held job (--hold) and one whose start time
     * (--delay, --at) is after now (wall clock; 0: read it) is passed over
     * but keeps its place, and its dependents wait for it. */
    Decisions schedule(GpuPlan* gpus = nullptr, double now = 0);
    /* The earliest start time after now of the delayed jobs the last pass
     * looked at (0: none): the server wakes then. A pass that stopped for want
     * of room did not look further; the end that makes room brings another. */
    double next_due() const { return next_due_; }
    /* The wall clock reached next_due(): what a pass decides by has changed
     * (changes() grows), though nothing in the queue did. */
    void note_time(double now);
    /* Whether a queued job waits for a time: held, or delayed until after now. */
    static bool waits_for_time(const Job& j, double now);
    /* --hold=ID (on) of a queued job, --release=ID (off): a held job is
     * released and a delayed one forgets its start time. False (nothing
     * changed) for a job that is not queued, or one already so. */
    [[nodiscard]] bool hold(JobId id, bool on);
    /* A queued job that a dependency (-d, -D) which ended badly or was
     * removed dooms: it is skipped, never run, once it may be decided. */
    bool doomed(JobId id) const;
    /* GPU jobs queued, and the running ones. */
    size_t gpu_jobs_queued() const { return gpu_queued_; }
    size_t gpu_jobs_running() const { return gpu_running_.size(); }
    const std::set<JobId>& gpu_running() const { return gpu_running_; }
    /* A count that grows with every change schedule() decides by (a job
     * added, moved, started, ended or reordered, a dependency decided, the
     * slots, a client back): while it stays, a pass decides as the last did. */
    uint64_t changes() const { return changes_; }
    /* A restored job whose client (-f, or another user's ts) came back: it may start. */
    void client_back(JobId id);

    /* The runner of a Running job reported its pid and output file. */
    void started(JobId id, pid_t pid, const std::string& output, double start);
    /* A Running job ended (or its runner vanished: pass lost_result()).
     * It moves to the finished list, or is forgotten if not kept (-nf). */
    void end(JobId id, const JobResult& r, double end);
    /* A job that ended without a result: why, for -i. */
    static JobResult lost_result(std::string why = std::string());
    /* Undo the add() of the newest job (its record could not be written). */
    void cancel_add(JobId id);
    /* --unique: the first job of uid, queued, running or waiting for room
     * (overflow), whose command line is argv (byte for byte); nullptr: none.
     * A scan of those jobs: it is asked once per --unique submit. */
    const Job* same_command(uid_t uid, const std::vector<std::string>& argv) const;
    /* The job queued by the submit with this token, if any is still known. */
    Job* by_token(const std::string& token);

    /* task-spooler's "last job" rules (ts-spec §1.5); nullptr if none. Held
     * and delayed jobs, which task-spooler had not, change them (README). */
    Job* last_added();   // -s -w -r -u: tail of the active list, else of the finished list;
                         // when that tail is held or delayed, the newest job by id
    Job* last_run();     // -o -p -t -c -k -i: head of the active list if a slot is busy
                         // (or a GPU job runs), passing over held and delayed jobs,
                         // else tail of the finished list
    /* The same rules among the jobs of one user (a shared queue: "the last
     * job" of a user's command is never another user's). */
    Job* last_added(uid_t uid);
    Job* last_run(uid_t uid);

    int busy_slots() const { return busy_; }
    int max_slots() const { return max_slots_; }
    void set_max_slots(int n) { max_slots_ = n; ++changes_; }
    /* Drained (--drain): schedule() starts nothing and skips nothing until
     * resumed (--resume); running jobs go on. A state of the whole queue,
     * journaled apart from Meta (its own record). */
    bool drained() const { return drained_; }
    void set_drained(bool on) { drained_ = on; ++changes_; }
    void set_max_finished(size_t n) { max_finished_ = n; }

    /* -r: a queued job that is not the head, or a finished one; with
     * head_too (--cancel, and a replay), the head too. */
    [[nodiscard]] bool remove(JobId id, bool head_too = false);
    /* -u: a queued job (not the head) moves right after the head. */
    [[nodiscard]] bool urgent(JobId id);
    /* -u of another user than the queue's owner: the job moves ahead of its
     * owner's own queued jobs only (*before: the job it now precedes, or -1
     * when it was already first of them). */
    [[nodiscard]] bool urgent_among_own(JobId id, JobId* before);
    /* A queued job moves to just before another queued job (the journal's
     * record of urgent_among_own). */
    bool move_before(JobId id, JobId before);

    /* What one user's jobs hold of the queue: queued, running and overflow
     * jobs, and the bytes of every job of theirs it keeps (finished too). */
    struct Usage {
        size_t waiting = 0;
        size_t bytes = 0;
        size_t finished = 0;   // on the finished list
    };
    const Usage& usage(uid_t uid) const;
    /* The bytes a job's spec holds in memory (argv, cwd, label, TS_ENV text). */
    static size_t spec_bytes(const JobSpec& spec);
    /* -U: two jobs of the active list, neither of them the head. */
    [[nodiscard]] bool swap(JobId a, JobId b);
    /* -C: forget every finished and skipped job. */
    void clear_finished();

    const std::list<JobId>& active() const { return active_; }
    const std::list<JobId>& finished_list() const { return finished_; }
    size_t size() const { return jobs_.size(); }

    /* The shared copy of an environment (nullptr for an empty one). */
    EnvPtr intern(Env env);
    /* The shared copy of a set of limits (nullptr for none). */
    LimitsPtr intern(const LimitsPtr& limits);

private:
    struct Entry {
        Job job;
        bool listed = false;              // on the list of job.state (false: not in the queue yet)
        std::list<JobId>::iterator pos;   // in active_, finished_ or overflow_, per job.state
        size_t bytes = 0;                 // spec_bytes, counted in usage_
    };
    /* last_added() among the jobs of uid (any when none). */
    Job* pick_last_added(std::optional<uid_t> uid);
    /* The lifecycle (jobs.cpp): the operations that move a job, one row of
     * the transition table each, and the one function that moves a job. The
     * table is defined constexpr there; it is a member because Op is private. */
    enum class Op : unsigned char;
    struct Transition;
    static const Transition kTransitions[];
    static constexpr bool table_is_sound();
    using Place = std::optional<JobState>;   // std::nullopt: out of the queue
    [[nodiscard]] bool move(Entry& e, Op op, Place to);
    std::list<JobId>& list_of(JobState s);
    Entry* entry(JobId id);

    void resolve_dependency(Job& j);
    void link_more_deps(const Job& j);
    void unlink_deps(const Job& j);
    /* How dependency dep of j ended: nullopt while it may still run; -1 for one gone. */
    std::optional<int> dep_end(const Job& j, JobId dep, bool first) const;
    // schedule(), one job at a time (jobs.cpp).
    enum class DependencySays { Start, Skip, Wait };
    bool room_for_any(const GpuPlan* gpus, Decisions* d) const;
    DependencySays dependency_says(const Job& j, bool gpu) const;
    bool schedule_one(Entry& e, GpuPlan* gpus, Decisions* d);
    void tell_dependents(JobId id, int errorlevel);
    void retire(Entry& e, Op op, const JobResult& r, double end);
    void evict_finished();

    std::unordered_map<uid_t, Usage> usage_;
    std::unordered_map<JobId, Entry> jobs_;
    std::unordered_map<std::string, JobId> tokens_;
    std::list<JobId> active_;
    std::list<JobId> finished_;
    std::list<JobId> overflow_;
    // Jobs waiting for the end of a job still in the queue; they learn its
    // result when it ends, even if it is forgotten right after.
    std::unordered_map<JobId, std::vector<JobId>> dependents_;
    // Shared copies by content; one no job uses any more is forgotten now and then.
    template <class T>
    struct Pool {
        std::unordered_map<std::string, std::weak_ptr<const T>> by_content;
        size_t lookups = 0;
        template <class Make>
        std::shared_ptr<const T> get(const std::string& key, Make make);
    };
    Pool<Env> envs_;
    Pool<Limits> limits_;
    bool relinked_ = true;        // false after restore(): dependents_ is rebuilt when next used
    size_t max_jobs_ = 0;
    JobId next_id_ = 0;
    int busy_ = 0;
    size_t queued_ = 0;             // jobs Queued
    size_t gpu_queued_ = 0;         // of them, GPU jobs
    std::set<JobId> gpu_running_;   // GPU jobs Running
    int max_slots_ = 1;
    bool drained_ = false;
    double next_due_ = 0;           // schedule(): the next start time it passed over
    uint64_t changes_ = 0;
    uint64_t idle_at_ = ~uint64_t(0);   // schedule(): changes() after a pass that decided nothing
    size_t max_finished_ = 1000;
    int last_errorlevel_ = 0;        // of the job that ended last (for -d)
    JobId last_finished_id_ = -1;
};
