/*
 * spawner.h — the Launcher (how a job's runner comes to be: the seam tests
 * and other executors replace), a job's runner order, and the real
 * launcher of a server, with its spawner.
 *
 * The server could fork each runner itself, but fork() copies the page
 * tables of the forking process: a server that holds 100,000 queued jobs
 * would spend about a millisecond per job start, and every runner would
 * start as a copy of that large process. So the process launcher forks,
 * once and while the server is still small, a spawner: it forks "spare"
 * runners when asked (one byte on a pipe per spare). A spare connects to
 * the server's socket like any client, says it is one (MsgType::Spare),
 * and waits; to start a job, the server journals the spare's pid as the
 * job's runner and sends it the job's order (MsgType::Assign). The spare
 * then is that job's runner, exactly like one forked here (runner.h).
 * When the server ends (its pipe closes), the spawner ends too; an idle
 * spare ends when its connection closes. If the spawner is gone, runners
 * are forked by the server again. Which job waits for which runner, and
 * for how long, is the RunnerSupply's business (runner_supply.h).
 */
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>

#include "jobs.h"
#include "util.h"

/* What a runner needs to run one job: its id, and its spec with the
 * environment it runs in (the submitter's, plus its GPUs). Made by
 * runner_order() alone, so that a forked runner and a spare get the same.
 * On the wire (to a spare) it is an Assign frame (frame.h: encode_assign),
 * the owner in the body: a runner refuses an order of another uid. */
struct RunnerOrder {
    JobId id = 0;
    JobSpec spec;       // spec.uid is the owner
    uint16_t run = 0;   // which run of the job (--retry): a runner of an earlier one that comes back is sent away
};
RunnerOrder runner_order(const Job& j);
std::string encode_order(const RunnerOrder& o);

/* A runner made here: the server's end of its connection, and its pid
 * (journaled as the job's runner, so a restarted server waits for it). */
struct LocalRunner {
    Fd conn;
    pid_t pid = 0;
};

/* Why no runner could be made now: the call that failed and its errno
 * (EAGAIN, EMFILE, ENOMEM: the job waits in the queue and is tried again). */
struct LaunchError {
    const char* what = "fork";
    int err = 0;
};

/* What became of asking for a runner ahead of any order. */
enum class Ahead : uint8_t {
    Asked,    // one is on its way: it connects and says Spare
    Enough,   // enough are on their way already: ask again later
    None,     // this launcher makes none: every runner comes from start()
    Lost,     // it made some, and can no more (errno set): from now on, start()
};

/* How the server gets runners: the seam between the queue and whatever
 * runs its jobs, in the spirit of ninja's CommandRunner. Two ways exist:
 * start() makes a job's runner now and hands back its connection; and
 * runners asked for ahead (ask_ahead) connect to the socket on their own,
 * say Spare, and are sent the oldest order that waits (RunnerSupply).
 *
 * The process launcher (process_launcher) forks in start() and asks its
 * spawner in ask_ahead(). A launcher must implement start() only: without
 * runners ahead (ask_ahead answers None), every job's runner comes from
 * start(), at once, or the job waits in the queue (LaunchError) and is
 * tried again, never run twice.
 *
 * Another executor keeps the runner: a runner is the job's agent on the
 * server's socket (it reports the start and the end, carries out -k, and
 * re-attaches after a restart), and an AF_UNIX socket reaches no other
 * machine. So an executor that runs jobs on a cluster (Slurm) implements
 * start() as a runner made here whose job is the cluster's (srun, or
 * sbatch --wait): the journal, -k (the runner signals its child, which
 * scancel-s), re-attach and every rule of the queue stay as they are, and
 * cancelling a job is the runner's business, not the launcher's. */
class Launcher {
public:
    virtual ~Launcher() = default;
    /* This order's runner, made now and connected (*out); false (*why) when
     * it cannot be made now. */
    virtual bool start(const RunnerOrder& order, LocalRunner* out, LaunchError* why) = 0;
    /* One runner more ahead of orders (see Ahead). */
    virtual Ahead ask_ahead() { return Ahead::None; }
    /* Runners asked ahead that have not left the launcher yet, so that they
     * still come (the others may have died young): -1 if not known. */
    virtual int unread_asks() const { return -1; }
    /* A child process of the server ended: true if it was what made the
     * runners ahead (none comes any more: ask_ahead says Lost from now on). */
    virtual bool reaped(pid_t) { return false; }
};

/* The launcher of a real server: it forks the spawner now (call it while
 * the process is small: before the journal is read); without one (*why
 * says why), runners are forked by the server. */
std::unique_ptr<Launcher> process_launcher(const std::string& socket_path, std::string* why);
