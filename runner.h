/*
 * runner.h — running one job to its end and reporting it.
 *
 * A runner is the process that owns one running job. It creates the output
 * file ($TMPDIR/ts-out.XXXXXX from the job's own environment, mode 0600),
 * forks the job into its own session (so `kill -- -PID` reaches all of it)
 * with the submitter's context (argv, environment, cwd, umask, resource
 * limits, nice value), waits for it, runs TS_ONFINISH, and reports Started
 * and Finished frames to the server.
 *
 * The same code serves every kind of runner (README "How it works"): one
 * the server gets for a queued job, talking over a socketpair, and a client
 * that runs its own job: `ts -f`, in the foreground with the caller's
 * terminal, or another user's ts in a shared queue (a job runs as its
 * submitter, and a server cannot switch users).
 *
 * The connection is a ServerLink: when it breaks because the server died,
 * the runner connects again (starting a server if none answers), attaches
 * to its job id and reports again, so the job's result is never lost. Only
 * Bye (the server was stopped with -K) makes it give up reporting.
 */
#pragma once

#include <functional>

#include "jobs.h"
#include "util.h"

class ServerLink {
public:
    using Connect = std::function<Fd(std::string* why)>;   // an invalid Fd (and why) when it cannot connect

    ServerLink(Fd fd, Connect connect, JobId id) : fd_(std::move(fd)), connect_(std::move(connect)), id_(id) {}

    /* Send a frame, re-attaching after a server restart; false once the server is gone for good. */
    bool send(const std::string& frame);
    /* Send the last report and wait until the server confirms it (Done),
     * re-attaching and sending again if it went away first. A job its
     * client runs may hear Again instead (--retry: that run was an attempt):
     * again() is true then, and the link carries the job's next run. */
    bool send_final(const std::string& frame);
    bool again() const { return again_; }
    /* Read what the server sent: false on EOF (then fd() < 0 until re-attached). */
    bool receive(struct Frame* f);
    /* Connect again and attach to our job, retrying with a growing delay
     * (50 ms to 5 s) for as long as the patience lasts; false when the server
     * is gone for good. try_reattach tries once, unless the last attempt
     * failed too recently (a server that dies at start is not restarted in a
     * loop). Failures go to the queue's log (set_log), now and then. */
    bool reattach();
    bool try_reattach();
    void set_log(std::string path) { log_path_ = std::move(path); }

    int fd() const { return fd_.get(); }
    /* How long to keep trying to reach a server that went away (default a day). */
    void set_patience(int ms) { patience_ms_ = ms; }
    bool gone() const { return gone_; }
    void set_started(const std::string& started_frame) { started_ = started_frame; }
    void set_run(uint16_t run) { run_ = run; }   // which run of the job it carries (--retry)
    /* The server's own runner: a job it cannot fork for lack of processes
     * goes back to the queue (Unstarted) rather than waiting here. */
    void set_may_unstart() { may_unstart_ = true; }
    bool may_unstart() const { return may_unstart_; }

private:
    void drain();
    void note(const struct Frame& f);

    Fd fd_;
    Connect connect_;
    JobId id_;
    uint16_t run_ = 0;
    bool again_ = false;    // the last send_final was answered with Again
    std::string started_;   // our Started frame, sent again after re-attaching
    bool gone_ = false;
    int patience_ms_ = 24 * 3600 * 1000;
    bool may_unstart_ = false;
    double next_try_ = 0;       // no new attempt before then
    double delay_ = 0;          // since the last failure: 0.05 s, doubling to 5 s
    double failing_since_ = 0;  // the first failure of this spell (0: none)
    double logged_ = 0;         // when the last line went to the log
    std::string log_path_;
    void log_failure(const std::string& why);
};

struct RunOutcome {
    JobResult result;
    bool reported = false;   // Finished reached a server
    bool again = false;      // ...which answered Again: wait for Run, and run the job again (--retry)
};

/* An output file: its directory, its path, and the open file. */
struct OutputFile {
    std::string dir, path;
    Fd fd;
};
/* Create an empty $DIR/ts-out.XXXXXX (mode 0600). */
bool make_output_file(const std::string& dir, OutputFile* o, int* err);
/* Create an unnamed file in DIR (O_TMPFILE; path stays empty): a spare
 * runner makes it while it waits, since creating a file is the slow part on
 * some file systems. A job whose TMPDIR is DIR gets it, named
 * ts-out.XXXXXX then; otherwise it just vanishes. False where the system or
 * the file system cannot. */
bool make_unnamed_output_file(const std::string& dir, OutputFile* o);
/* The directory of output files for a TMPDIR value (null if unset): /tmp if empty. */
std::string output_dir(const char* tmpdir);

/* How a runner starts. Every kind of runner goes through run_runner, so
 * that each reports and re-attaches the same way: the server's own (forked
 * by the server, or a spare of the spawner's given its job), a -f client,
 * and the ts of another user, which runs its own job in a shared queue. */
struct RunnerStart {
    JobId id = 0;
    uint16_t run = 0;                 // which run of the job (RunnerOrder::run)
    JobSpec spec;                     // with its environment
    Fd fd;                            // the connection to the server
    ServerLink::Connect reconnect;    // how to reach it again after a restart
    std::string socket;               // the queue's socket
    std::string log;                  // where failures to reach it are logged ("": nowhere)
    bool server_runner = false;       // the server's own: a job it cannot fork goes back (Unstarted)
    bool wait_for_run = false;        // a job run by its client: wait for the server's Run first
    bool foreground = false;          // -f: the caller's terminal
    int patience_ms = 0;              // how long to try a server that went away (0: the default, a day)
    OutputFile* ready = nullptr;      // a file made ahead (a spare's)
};
/* The one entry point of every runner: wait for Run if need be, run the
 * job, report. ran is false when the server said it will not run (skipped,
 * removed, -K) or could not be reached. A runner that waits for Run runs
 * the job again each time the server answers its end with Again (--retry),
 * each run with its own output file; the outcome is the last run's. */
struct RunnerEnd {
    bool ran = false;
    RunOutcome outcome;
};
RunnerEnd run_runner(RunnerStart s);

/* Run the job and report to the server; returns the result.
 * foreground: stdin is the caller's, and SIGINT is forwarded to the job.
 * ready: a file made ahead (used, or removed when the job needs another). */
RunOutcome run_job(const JobSpec& spec, JobId id, ServerLink& link, bool foreground,
                   OutputFile* ready = nullptr);
