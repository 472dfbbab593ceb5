/*
 * server_log.h — the server's log, <socket>.error: its stderr is closed, so
 * whatever the server has to say goes here, with the time and its pid.
 *
 * The file is opened once, at start, and only if it is a file of ours
 * (never a link, a FIFO or another user's file planted next to the
 * socket), and kept open: the log works when descriptors run out. A full
 * disk takes the log too: the last lines wait in memory (at most
 * kLogBacklog of them) and are written, with a count of those lost, once
 * it has room again. A log removed while the server runs is made again
 * (keep(), asked by QueueFiles).
 */
#pragma once

#include <cstddef>
#include <deque>
#include <string>

#include "util.h"

constexpr size_t kLogBacklog = 200;   // lines kept while the log cannot be written

class ServerLog {
public:
    explicit ServerLog(std::string path) : path_(std::move(path)) {}

    /* Open (or make) the file; false with *why when it is not one of ours. */
    bool open(std::string* why);
    bool is_open() const { return bool(fd_); }
    /* One line, with the time and the server's pid (nothing without a file). */
    void write(const std::string& msg);
    /* The file at the log's path is still the one written to (or none is open). */
    bool in_place() const;
    /* A log removed (or renamed away) is made again: true when it was (the
     * old file keeps being written when another file took its place). */
    bool keep();

    const std::string& path() const { return path_; }
    int fd() const { return fd_.get(); }   // for tests: to make its disk full
    size_t backlog() const { return backlog_.size(); }

private:
    bool flush_backlog();

    std::string path_;
    Fd fd_;
    std::deque<std::string> backlog_;   // lines the log could not take (a full disk), kept a while
    size_t dropped_ = 0;                // lines left out of the backlog since it was last written
};
