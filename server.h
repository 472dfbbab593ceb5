/*
 * server.h — the queue server: one thread around poll().
 */
#pragma once

#include <memory>
#include <string>
#include <sys/types.h>

#include "config.h"
#include "util.h"

/* Run the server on a socket that is already bound and listening, holding
 * the queue's guard (connect.h; invalid: none). Startup problems are written
 * to err_pipe (the starting client prints them), and so are its notes for
 * that client (start_note, connect.h); the pipe is closed once the server is
 * ready. take_settings: ts --reconfigure (the queue's settings from this
 * environment, config.h). Never returns. */
[[noreturn]] void run_server(Fd listener, Fd guard, Fd err_pipe, const std::string& socket_path,
                             bool take_settings = false);

/* A server with no listening socket that forks, signals and exits nothing,
 * for the fuzzer and tests: connect() gives the client end of a new
 * connection, round() runs one turn of the loop (poll, dispatch, schedule). */
class ServerHarness {
public:
    explicit ServerHarness(const std::string& socket_path);   // settings from the environment
    /* With these settings, and a launcher of the test's (none: jobs are lost
     * at the next round, as if their runners died at once). */
    ServerHarness(const std::string& socket_path, ServerConfig cfg,
                  std::unique_ptr<class Launcher> launcher = nullptr);
    ~ServerHarness();
    Fd connect(uid_t uid);
    void round();
    bool stopped() const;    // a KillServer was honoured
    std::string list() const;
    size_t gpu_placements() const;   // GPU jobs the scheduling passes tried to place, all together

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};
