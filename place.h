/*
 * place.h — where a queue lives, and whether it may live there: the
 * directory checks (who owns each directory and link on the way), who a
 * queue belongs to, the socket file's name and mode, the guard's name, and
 * what a starting server tells the client that started it. Both sides use
 * these: the client before it connects or starts a server (connect.cpp),
 * the server at start and whenever it makes a removed file again
 * (queue_files.cpp). So they lie below both, and need neither.
 */
#pragma once

#include <string>
#include <vector>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "util.h"

/* A Unix socket's address for a path (that fits sun_path: socket_location checks). */
sockaddr_un unix_address(const std::string& path);

/* The queue's guard (connect.cpp's comment): an abstract socket name, one per
 * canonical socket path, held by the queue's server for its whole life. */
std::string guard_name(const std::string& abs_path);

/* Which file a path named when it was made. */
struct FileId {
    dev_t dev = 0;
    ino_t ino = 0;
};
/* Whether path still names that file (never follows a link). */
bool same_file(const std::string& path, const FileId& id);
/* TS_SOCKET_MODE (octal), else 0700; false with *err if it is not a mode. */
bool parse_socket_mode(mode_t* mode, std::string* err);
/* A listening socket bound at path with the given mode (set at creation,
 * never through the path afterwards); *id is the file made. */
bool bind_socket(const std::string& path, mode_t mode, Fd* out, FileId* id, std::string* err);

/* The error pipe of a server start carries notes as well as an error: a
 * note is framed by NUL bytes (no error has one), so that a note is never
 * taken for a failure to start. start_note frames one; split_start_reply
 * takes what the pipe carried apart (the rest, outside notes, is the error). */
std::string start_note(const std::string& text);
void split_start_reply(const std::string& reply, std::vector<std::string>* notes, std::string* error);

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

/* The socket's directory and every directory above it must belong to root
 * or the queue's owner, and none that others can write may lack the sticky
 * bit (like /tmp): otherwise another user could delete or move the queue's
 * files and put their own server there. False with *err (naming the
 * directory and what to change) when they do not. */
bool check_socket_dir(const std::string& socket_path, std::string* err, uid_t owner);
