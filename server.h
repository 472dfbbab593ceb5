/*
 * server.h — the queue server: one thread around poll().
 */
#pragma once

#include <string>

#include "util.h"

/* Run the server on a socket that is already bound and listening. Startup
 * problems are written to err_pipe (the starting client prints them); the
 * pipe is closed once the server is ready. Never returns. */
[[noreturn]] void run_server(Fd listener, Fd err_pipe, const std::string& socket_path);
