/*
 * gpu_probe.h — looking at the machine's GPUs from the server's loop, without
 * ever blocking it: nvidia-smi runs as a child process (its own process
 * group, stdout into a non-blocking pipe, a deadline after which the group
 * is killed), in two steps (the cards, then their compute processes), and
 * AMD cards are read from sysfs. The loop polls fd(), passes on the pids it
 * reaps, and calls check() at deadline(); take() hands over each result.
 *
 * Only one probe runs at a time, and a new one does not start while a
 * killed nvidia-smi has not ended (one stuck in the driver would otherwise
 * pile up). The GPU broker (gpu_broker.h) asks for probes only while GPU
 * jobs wait, or when --gpu-list or a GPU job's submit needs to know the
 * cards.
 */
#pragma once

#include <set>
#include <string>
#include <vector>

#include <sys/types.h>

#include "gpu.h"
#include "util.h"

/* What the GPU broker (gpu_broker.h) needs of a probe: GpuProbe below,
 * or a test's fake that hands over the snapshots the test made. */
class CardProbe {
public:
    virtual ~CardProbe() = default;
    /* Begin a probe; false (and *why) when it cannot. */
    virtual bool start(double now, std::string* why) = 0;
    virtual bool running() const = 0;
    /* The pipe to poll while a probe runs; -1 otherwise. */
    virtual int fd() const = 0;
    virtual void readable(double now) = 0;
    /* A child the loop reaped: true if it was the probe's. */
    virtual bool reaped(pid_t pid, int status, double now) = 0;
    virtual void check(double now) = 0;
    virtual void reap(double now) = 0;
    virtual double started() const = 0;
    /* When check() must run next; 0: never. */
    virtual double deadline() const = 0;
    /* The probe that ended since the last call, if any. */
    virtual bool take(GpuSnapshot* out) = 0;
};

class GpuProbe final : public CardProbe {
public:
    struct Settings {
        std::string nvidia_smi;   // a path, or a name looked up in PATH; empty: no NVIDIA probe
        std::string sysfs;        // the drm directory for AMD cards; empty: none
        double timeout = 10;      // seconds a step may take
        bool amd_beside_nvidia = false;   // AMD cards too when NVIDIA ones are found
    };
    explicit GpuProbe(Settings s) : s_(std::move(s)) {}

    /* Begin a probe; false (and *why) when one is still running or a
     * killed one has not ended. A probe with nothing to run ends at once. */
    bool start(double now, std::string* why) override;
    bool running() const override { return step_ != Step::Idle; }
    /* The running step's nvidia-smi, not reaped yet; 0 when none. */
    pid_t child() const { return pid_; }
    /* The pipe to poll for input while a step runs; -1 otherwise. */
    int fd() const override { return out_.get(); }
    void readable(double now) override;
    /* A child the loop reaped: true if it was the probe's. */
    bool reaped(pid_t pid, int status, double now) override;
    /* Kill a step past its deadline (the probe then fails). */
    void check(double now) override;
    /* Reap the probe's children that have ended (where no SIGCHLD handler does). */
    void reap(double now) override;
    /* When the running probe began. */
    double started() const override { return cur_.when; }
    /* When check() must run next; 0 when no step runs. */
    double deadline() const override { return step_ == Step::Idle ? 0 : deadline_; }
    /* The probe that ended since the last call, if any. */
    bool take(GpuSnapshot* out) override;

private:
    enum class Step { Idle, Gpus, GpusOld, Apps, Amd };
    bool spawn(Step step, double now);
    bool fork_amd(double now);
    void next_after_nvidia(double now);
    void kill_group();
    void step_done(double now);
    void finish(bool ok, const std::string& error);

    Settings s_;
    Step step_ = Step::Idle;
    Fd out_;
    pid_t pid_ = 0;            // the running step's nvidia-smi (0: reaped)
    pid_t pgid_ = 0;           // its process group (0: none to kill)
    bool eof_ = false;         // its output is all read
    int status_ = 0;
    std::string text_;
    double deadline_ = 0;
    std::vector<pid_t> killed_;   // killed at their deadline, not reaped yet
    GpuSnapshot cur_;
    bool have_result_ = false;
    GpuSnapshot result_;
};

/* Mark the snapshot's processes that belong to a ts job: a process whose
 * session (from /proc) is a running job's pid (every job is a session
 * leader). A process /proc does not show (gone, or in another pid
 * namespace) is not a ts job's. */
void mark_ts_processes(GpuSnapshot* s, const std::set<pid_t>& job_pids);
