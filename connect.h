/*
 * connect.h — reaching a queue's server, and starting one when none answers:
 * where the socket is, the start lock, bind-before-fork, connect-or-start,
 * the queue's guard, the peer's credentials, and --restart (a server of
 * this binary takes over the queue). The client, runners, waiters and the
 * spawner's spares all reach the server through here. Who a queue belongs
 * to and where it may lie are place.h's (the server asks them too).
 */
#pragma once

#include <string>
#include <vector>
#include <sys/types.h>
#include <unistd.h>

#include "util.h"

/* Where the queue's socket is: $TS_SOCKET, else $TMPDIR/socket-ts.UID, else
 * /tmp/socket-ts.UID. Dies with task-spooler's message when it cannot be used. */
struct Socket {
    std::string path;       // as used for connect/bind (maybe relative)
    std::string abs_path;   // for the server, which runs in /
    bool is_default = false;
};
Socket socket_location();

/* connect(); an invalid Fd with errno set on failure. */
Fd try_connect(const std::string& path);

/* Take the queue's guard, bind and listen, then fork the server. False with
 * *err if it cannot come up (a server that holds the guard is running).
 * What the new server says to the client that started it (that it keeps the
 * queue's settings from its journal, say) is added to *notes, one line each
 * (the caller prints them, with "ts: "; without notes, only the log has them).
 * take_settings (ts --reconfigure): the server journals this environment's
 * queue settings instead of keeping the journal's (config.h). */
bool start_server(const Socket& s, std::string* err, std::vector<std::string>* notes = nullptr,
                  bool take_settings = false);

/* The queue's guard (connect.cpp's comment; its name: guard_name, place.h). */
struct GuardHolder {
    bool held = false;
    uid_t uid = static_cast<uid_t>(-1);   // who bound it
    pid_t pid = 0;                        // the server holding it, if /proc shows it (0: unknown)
    bool by_guard = true;                 // false: a server of ours found by /proc (queue_server)
};
/* Bind and listen on the guard; an invalid Fd if it cannot, with *holder
 * saying who holds it when someone does. */
Fd take_guard(const std::string& abs_path, GuardHolder* holder);
/* Who holds the guard, if anyone (connecting to it asks a ts server to put
 * its socket back, if it is gone); guard_held only whether someone does
 * (without looking through /proc for the holder's pid). */
GuardHolder guard_holder(const std::string& abs_path);
bool guard_held(const std::string& abs_path);
/* The queue's running server: the guard's holder if that is us or the
 * queue's owner, else (another user bound the guard's name, and the server
 * runs without it) a process of ours listening on the socket's path, which
 * the kernel's table keeps after the file is removed. held is false when
 * there is none. */
GuardHolder queue_server(const Socket& s, uid_t owner);

/* Connect, starting a server when none answers (under the start lock). Only
 * the queue's own server will do (the answer is checked before anything is
 * sent). kill_only (-K): no server is started; with none, the queue's files
 * are removed and *dead set. An invalid Fd with *err otherwise. */
Fd open_server(const Socket& s, std::string* err, bool kill_only = false, bool* dead = nullptr,
               std::vector<std::string>* notes = nullptr);
/* open_server, or die with its message; a server it starts has its notes
 * printed on stderr. */
Fd connect_server(const Socket& s);

/* Connect to the server at an absolute socket path, starting one when none
 * answers (runners and waiters use it after a server restart). Only a
 * server running as `expect` will do: another one at the path (an impostor
 * that bound it while the queue's server was away) is hung up on at once.
 * An invalid Fd when that fails. */
Fd connect_or_start(const std::string& abs_path, bool may_start, uid_t expect,
                    std::string* why = nullptr);

/* --restart: stop the queue's server, whatever ts binary it is, keeping its
 * queue, and start a server of this binary (--reconfigure: take_settings,
 * see start_server). Returns the exit status. */
int restart_server(const Socket& s, bool take_settings = false);

/* The uid at the other end of a Unix socket (SO_PEERCRED), or -1. */
uid_t peer_uid(int fd);
