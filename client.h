/*
 * client.h — the ts command: connect to the server (starting it when none
 * answers), send one request, print the answer, exit.
 */
#pragma once

#include <string>
#include <sys/types.h>
#include <unistd.h>

#include "options.h"
#include "util.h"

/* Carry out the options' action; returns the exit status. */
int run_client(const Options& o);

/* Connect to the server at an absolute socket path, starting one when none
 * answers (runners and waiters use it after a server restart). Only a
 * server running as `expect` will do: another one at the path (an impostor
 * that bound it while the queue's server was away) is hung up on at once.
 * An invalid Fd when that fails. */
Fd connect_or_start(const std::string& abs_path, bool may_start, uid_t expect,
                    std::string* why = nullptr);

/* Who the queue at a socket path belongs to, as far as the files say:
 * the owner of the socket's directory when nobody else may write there,
 * else the owner of the queue's journal or lock file (the first user who
 * started it; one of `prefer`'s, if either is, or only the journal without
 * prefer_lock: a lock file is easier to plant). known is false for a new
 * queue in a shared directory, which belongs to whoever starts it first. */
struct QueueOwner {
    bool known = false;
    uid_t uid = 0;
    std::string why;   // "the owner of DIR", "its journal PATH", ...
};
QueueOwner queue_owner(const std::string& socket_path, uid_t prefer = geteuid(), bool prefer_lock = true);

/* The socket's directory must be one that nobody but its owner can change,
 * or sticky (like /tmp): otherwise another user could delete the queue's
 * files and put their own server there. False with *err when it is not. */
bool check_socket_dir(const std::string& socket_path, std::string* err);

/* The uid at the other end of a Unix socket (SO_PEERCRED), or -1. */
uid_t peer_uid(int fd);
