/*
 * spawner.h — how the server gets runner processes: the Launcher (the seam
 * tests replace), and the real one, with the spawner.
 *
 * The server could fork each runner itself, but fork() copies the page
 * tables of the forking process: a server that holds 100,000 queued jobs
 * would spend about a millisecond per job start, and every runner would
 * start as a copy of that large process. So the server forks, once and
 * while it is still small, a spawner: it forks "spare" runners when the
 * server asks for them (one byte on a pipe per spare). A spare connects to
 * the server's socket like any client, says it is one (MsgType::Spare),
 * and waits; to start a job, the server journals the spare's pid as the
 * job's runner and sends it the job (MsgType::Assign). The spare then is
 * that job's runner, exactly like one the server forked (runner.h).
 *
 * One spare is kept ready, so starting a freed slot's job costs the server
 * a message and not a fork. When the server ends (its pipe closes), the
 * spawner ends too; an idle spare ends when its connection closes. If the
 * spawner is gone, the server forks runners itself again.
 */
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>

#include "jobs.h"
#include "util.h"

/* How the server gets runner processes: the seam between the queue and the
 * processes that run it. The real one (process_launcher) has the spawner
 * and forks runners here when it must; tests give ServerHarness a fake, and
 * another executor could implement it later. A runner, however made,
 * connects to the server (a spare says Spare; a forked one is on the
 * returned socketpair) and reports on its job (runner.h). */
class Launcher {
public:
    virtual ~Launcher() = default;
    /* A runner for job j, forked now and connected to the server by *conn
     * (its pid in *pid). False, errno set and *what naming the call that
     * failed, when it cannot be made now (EAGAIN, EMFILE, ENOMEM: the job
     * waits in the queue). */
    virtual bool fork_runner(const Job& j, Fd* conn, pid_t* pid, const char** what) = 0;
    /* The spawner's spares (a launcher without one keeps these defaults:
     * every runner is forked by fork_runner). ask_spare asks for one more:
     * 1 asked, 0 it has plenty to do (ask later), -1 it is gone (errno set;
     * drop_spawner follows). unread_asks: spares asked for that the spawner
     * has not read yet (they will come), or -1. */
    virtual int ask_spare() { return -1; }
    virtual bool has_spawner() const { return false; }
    virtual void drop_spawner() {}
    virtual pid_t spawner_pid() const { return -1; }   // -1 when none
    virtual int unread_asks() const { return -1; }
};

/* The launcher of a real server: it forks the spawner now (call it while
 * the process is small: before the journal is read); without one (*why
 * says why), runners are forked by the server. */
std::unique_ptr<Launcher> process_launcher(const std::string& socket_path, std::string* why);
