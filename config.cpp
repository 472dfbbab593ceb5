/*
 * config.cpp — the server's settings from its environment; see config.h.
 */
#include "config.h"

#include <algorithm>
#include <cstdlib>
#include <string>

#include "util.h"

size_t parse_size(const char* s) {
    char* end = nullptr;
    unsigned long long n = strtoull(s, &end, 10);
    if (end == s) return 0;
    switch (*end) {
    case 'k': case 'K': n <<= 10; ++end; break;
    case 'm': case 'M': n <<= 20; ++end; break;
    case 'g': case 'G': n <<= 30; ++end; break;
    default: break;
    }
    return *end ? 0 : static_cast<size_t>(n);
}

ServerConfig read_server_config(const Getenv& env, size_t nofile) {
    ServerConfig c;
    if (const char* s = env("TS_SLOTS")) {
        c.slots = std::abs(atoi(s));
        if (c.slots < 1) c.notes.push_back(format("TS_SLOTS=%s ignored: it must be a number of at least 1", s));
    }
    if (const char* s = env("TS_MAXCONN")) {
        // task-spooler's limit: max_conn connections, max_conn - 5 queued jobs.
        long n = std::min(1000, std::abs(atoi(s)));
        if (nofile && static_cast<size_t>(n) > nofile) n = static_cast<long>(nofile) - 5;
        if (n < 1) c.error = format("TS_MAXCONN=%s: it must be at least 1", s);
        else c.max_jobs = static_cast<size_t>(std::max(1L, n - 5));
    }
    if (const char* s = env("TS_MAXFINISHED")) c.max_finished = static_cast<size_t>(std::abs(atoi(s)));
    if (const char* s = env("TS_USER_MAXJOBS")) {
        char* end = nullptr;
        long n = strtol(s, &end, 10);
        if (*s && !*end && n >= 0) c.user_max_jobs = static_cast<size_t>(n);
        else c.notes.push_back(format("TS_USER_MAXJOBS=%s ignored: it must be a number", s));
    }
    if (const char* s = env("TS_USER_MAXSIZE")) {
        if (size_t n = parse_size(s)) c.user_max_size = n;
        else c.notes.push_back(format("TS_USER_MAXSIZE=%s ignored: it must be a size such as 64M", s));
    }
    if (const char* s = env("TS_JOURNAL")) c.journal = std::string(s) != "0";
    if (const char* s = env("TS_FSYNC")) c.fsync = std::string(s) == "1";
    if (const char* s = env("TS_SAVELIST")) c.savelist = s;
    if (const char* s = env("TS_TEST_CRASH_AFTER_SUBMIT")) c.crash_after_submit = s;
    return c;
}
