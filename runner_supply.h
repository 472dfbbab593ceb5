/*
 * runner_supply.h — where the runners of the server's own jobs come from,
 * and what happens while none can be had.
 *
 * The RunnerSupply owns the Launcher (spawner.h) and the state around it:
 * the runners asked for ahead (spares) that have not come yet, the one
 * idle spare that waits for an order, the started jobs that wait for a
 * spare (oldest first; after kSpareWait they get a runner forked here),
 * and the back-off when descriptors or processes run out (a job that
 * cannot get a runner goes back to the queue, and no job starts for a
 * while, longer each time; the log says so once a shortage), and how many
 * of a job's runners ended before it started.
 *
 * It never sees the queue, the journal or a connection's insides (it hears
 * of jobs that end as a listener of the ledger): what it needs of the
 * server goes through SupplyHost, so that tests drive it with
 * a fake launcher and a fake host. Spares are the server's connections
 * (Conn), which the supply only points at.
 */
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <sys/types.h>

#include "jobs.h"
#include "ledger.h"
#include "spawner.h"
#include "util.h"

struct Conn;

/* What the supply asks of the server. */
class SupplyHost {
public:
    virtual ~SupplyHost() = default;
    /* The job if it still wants a runner (it is running, and has none). */
    virtual const Job* wants_runner(JobId id) = 0;
    /* A runner made here: journal pid as the job's runner, then serve conn as its connection. */
    virtual void add_runner(JobId id, LocalRunner r) = 0;
    /* The spare becomes the job's runner: journal its pid, then send it order (an Assign frame). */
    virtual void assign(Conn& spare, JobId id, const std::string& order) = 0;
    /* Whether a spare's connection is closing (it cannot take an order). */
    virtual bool closing(const Conn& spare) const = 0;
    /* The job goes back to the queue, in its place: it cannot get a runner now. */
    virtual void unstart(JobId id) = 0;
    virtual void log(const std::string& line) = 0;
};

// How long a started job waits for a spare runner before the server forks one.
constexpr double kSpareWait = 2.0;
// Runners of one job that may end before it starts, in a row, before the job is marked lost.
constexpr int kStartTries = 3;

class RunnerSupply : public LedgerListener {
public:
    using Clock = std::function<double()>;   // mono_now, or a test's
    explicit RunnerSupply(SupplyHost* host, std::unique_ptr<Launcher> launcher = nullptr,
                          Clock clock = mono_now);
    void use(std::unique_ptr<Launcher> launcher) { launcher_ = std::move(launcher); }
    bool has_launcher() const { return launcher_ != nullptr; }

    /* Whether jobs may start now (not while a shortage's back-off lasts). */
    bool may_start();
    /* Give a started job its runner: the idle spare, else a spare asked
     * for (when the launcher makes them), else one made now. */
    void start(const Job& j);
    /* A spare connected: it took a waiting job's order, it is the idle
     * spare now, or (one is idle already) it is to be sent away. */
    enum class SpareIs { Assigned, Idle, Surplus };
    SpareIs spare_came(Conn& c);
    /* A connection is going away: true if it was the idle spare (replaced). */
    bool spare_lost(const Conn& c);
    /* A runner of ours reported its job's start (pid 0: the job could not
     * be forked): the end of a shortage, and the spare it was is replaced. */
    void runner_started(JobId id, pid_t pid);
    /* A runner of ours could not fork its job (err): back to the queue, and back off. */
    void unstarted(JobId id, int err);
    /* Keep one idle spare, plus one for every job waiting for a spare. */
    void top_up();
    /* A child process of the server ended (it may be the spawner). */
    void reaped(pid_t pid);
    /* Jobs that waited too long for a spare (or whose spawner is gone) get a runner made now. */
    void check_waiting();

    Conn* idle_spare() const;
    bool waiting() const { return !waiting_.empty(); }
    double start_after() const { return start_after_; }   // 0: no back-off
    /* A runner of job id ended before the job started: how many have, in a
     * row (the count goes when the job ends or is removed: on_change). */
    int ended_before_start(JobId id) { return ++start_tries_[id]; }
    void on_change(const Change& c) override;

private:
    void make_now(const Job& j);
    void short_of(JobId id, const char* what, int err);
    void ahead_gone(const char* why);

    SupplyHost* host_;
    std::unique_ptr<Launcher> launcher_;
    Clock now_;
    bool ahead_ = true;                // the launcher makes runners ahead (until it says otherwise)
    int asked_ = 0;                    // runners asked ahead that have not come yet
    Conn* idle_ = nullptr;             // the one spare runner waiting for an order
    std::deque<JobId> waiting_;        // started jobs waiting for a spare, oldest first
    double waiting_since_ = 0;         // the oldest waits since then (or the last spare came then)
    double start_after_ = 0;           // no descriptors or processes: no job starts before then
    double start_delay_ = 0;
    std::string short_of_;             // what was missing (logged once per shortage)
    double short_logged_ = -60;        // ... and at most once a minute
    bool short_said_ = false;          // this shortage was logged
    std::unordered_map<JobId, int> start_tries_;   // runners that ended before their job started, in a row
};
