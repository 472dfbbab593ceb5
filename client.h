/*
 * client.h — the ts command: connect to the server (starting it when none
 * answers), send one request, print the answer, exit.
 */
#pragma once

#include <string>
#include <sys/types.h>

#include "options.h"
#include "util.h"

/* Carry out the options' action; returns the exit status. */
int run_client(const Options& o);

/* Connect to the server at an absolute socket path, starting one when none
 * answers (runners and waiters use it after a server restart). An invalid
 * Fd when that fails. */
Fd connect_or_start(const std::string& abs_path, bool may_start = true);

/* The uid at the other end of a Unix socket (SO_PEERCRED), or -1. */
uid_t peer_uid(int fd);
