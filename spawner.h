/*
 * spawner.h — the process that forks runners for the server.
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

#include <string>
#include <sys/types.h>

#include "util.h"

struct Spawner {
    Fd requests;     // write one byte here for each spare wanted (non-blocking)
    pid_t pid = -1;
};

/* Fork the spawner for the server at socket_path. False (errno set) if it
 * cannot. Call it while the process is small: before the journal is read. */
bool start_spawner(const std::string& socket_path, Spawner* out);
