/*
 * config.h — the server's settings, read from its environment once, at
 * start, into one value (the server never calls getenv itself). Settings
 * that are wrong but harmless are ignored with a note for the log; one that
 * cannot be honoured stops the server with an error (the starting client
 * prints it). ts.1 (ENVIRONMENT) documents each variable.
 */
#pragma once

#include <cstddef>
#include <functional>
#include <string>
#include <vector>

struct ServerConfig {
    int slots = 0;                           // TS_SLOTS, for a queue the journal does not give; 0: 1
    size_t max_jobs = 0;                     // TS_MAXCONN: at most max_jobs-1 queued or running; 0: no bound
    size_t max_finished = 1000;              // TS_MAXFINISHED
    size_t user_max_jobs = 1000;             // TS_USER_MAXJOBS: another user's queued and running jobs
    size_t user_max_size = size_t(64) << 20; // TS_USER_MAXSIZE: bytes of another user's jobs
    bool journal = true;                     // TS_JOURNAL=0: the queue in memory only
    bool fsync = false;                      // TS_FSYNC=1: every record on disk before the answer
    std::string savelist;                    // TS_SAVELIST: the list appended there on SIGTERM
    std::string crash_after_submit;          // TS_TEST_CRASH_AFTER_SUBMIT: a test's one-shot fault
    std::vector<std::string> notes;          // settings ignored, and why (for the log)
    std::string error;                       // a setting the server cannot start with
};

using Getenv = std::function<const char*(const char*)>;

/* The settings from env (getenv by default). nofile is the soft limit on
 * descriptors (TS_MAXCONN is bounded by it; 0: unlimited). */
ServerConfig read_server_config(const Getenv& env, size_t nofile);

/* A size with an optional K, M or G suffix ("64M"); 0 when it is not one. */
size_t parse_size(const char* s);
