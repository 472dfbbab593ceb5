/*
 * queue_files.h — the files a queue's server keeps beside its socket while
 * it runs: the socket itself, the journal and the log. A /tmp cleaner
 * removes old files, `rm -rf` a whole directory; the server looks now and
 * then (every kFileCheck seconds, and at once when a client knocks on the
 * guard because it found the socket gone) and makes again what is gone,
 * but only where the place is still trusted (place.h), and never over a
 * file someone else put there: that is left alone, and the log says so
 * once. The socket is removed at exit only if it is still the one this
 * server made.
 *
 * QueueFiles owns what it knows of those files (the socket's identity and
 * mode, what it has logged); the listener, journal and log stay the
 * server's, and are handed to check().
 */
#pragma once

#include <string>
#include <sys/types.h>

#include "journal.h"
#include "place.h"
#include "server_log.h"
#include "util.h"

class Queue;

// How often the server looks for its socket, journal and log (a client that
// finds the socket gone asks at once).
constexpr double kFileCheck = 1.0;

class QueueFiles {
public:
    QueueFiles(std::string path, uid_t owner, ServerLog* log) : path_(std::move(path)), owner_(owner), log_(log) {}

    /* The socket now at the path is this server's (the starting client just made it). */
    void socket_made();
    /* The mode to make the socket again with (TS_SOCKET_MODE, else 0700). */
    void read_mode();
    /* When the next look is due (mono_now), and a look at once (the guard was knocked on). */
    double next_check() const { return next_check_; }
    void check_soon() { next_check_ = 0; }

    /* If a look is due: whatever is gone is made again (a new listening
     * socket replaces *listener; the journal is written again from q). */
    void check(double now, Journal* journal, const Queue& q, Fd* listener);
    /* The socket, journal and log are all where this server made them. */
    bool in_place(const Journal& journal);
    /* Whether the place is still one to make files in (logged when that changes). */
    bool place_trusted();
    /* Remove the socket, only if it is still the one this server made. */
    void unlink_socket();

private:
    void keep_socket(Fd* listener);
    void keep_journal(Journal* journal, const Queue& q);
    void keep_log();
    void say(const std::string& line) { log_->write(line); }

    std::string path_;
    uid_t owner_;
    ServerLog* log_;
    FileId sock_id_;               // the socket file this server made (or put back)
    mode_t sock_mode_ = 0700;      // ... and its mode (TS_SOCKET_MODE)
    double next_check_ = 0;        // when to look at the socket, journal and log files again
    bool sock_said_ = false;       // a socket that cannot be put back was logged (once, until it can)
    bool journal_said_ = false;    // ... a journal replaced by another file
    std::string place_said_;       // why the location is no longer trusted, as logged (check_socket_dir)
};
