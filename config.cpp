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

namespace {

/* A number of seconds in [lo, hi]; false when it is not one. */
bool seconds_in(const char* s, double lo, double hi, double* out) {
    char* end = nullptr;
    double d = strtod(s, &end);
    if (end == s || *end || !(d >= lo && d <= hi)) return false;
    *out = d;
    return true;
}

void read_gpu_config(const Getenv& env, ServerConfig* c) {
    GpuPolicy& g = c->gpu;
    if (const char* s = env("TS_GPU_SLOTS")) {
        char* end = nullptr;
        long n = strtol(s, &end, 10);
        if (*s && !*end && n >= 1 && n <= 1024) g.jobs_per_gpu = int(n);
        else c->notes.push_back(format("TS_GPU_SLOTS=%s ignored: it must be a number from 1 to 1024", s));
    }
    if (const char* s = env("TS_GPU_FOREIGN")) {
        std::string v = s;
        if (v == "memory") g.judge_by_memory = true;
        else if (v != "busy")
            c->notes.push_back(format("TS_GPU_FOREIGN=%s ignored: it must be busy or memory", s));
    }
    if (const char* s = env("TS_GPU_MIN_FREE")) {
        if (uint64_t n = parse_gpu_mem(s)) g.min_free = n;
        else c->notes.push_back(format("TS_GPU_MIN_FREE=%s ignored: it must be a size such as 2G", s));
    }
    if (const char* s = env("TS_GPU_SETTLE")) {
        if (!seconds_in(s, 0, 3600, &g.settle))
            c->notes.push_back(format("TS_GPU_SETTLE=%s ignored: it must be seconds, from 0 to 3600", s));
    }
    // A restriction that cannot be read stops the server: running jobs on
    // every GPU when its owner meant some would trample the others.
    if (const char* s = env("TS_VISIBLE_DEVICES"); s && *s) {
        std::string why;
        if (!parse_visible_devices(s, &g.visible, &why))
            c->error = format("TS_VISIBLE_DEVICES=%s: %s", printable(s).c_str(), why.c_str());
    }
    if (const char* s = env("TS_GPU_HIDE")) c->gpu_hide = std::string(s) == "1";
    if (const char* s = env("TS_NVIDIA_SMI")) c->nvidia_smi = s;
    if (const char* s = env("TS_GPU_SYSFS")) {
        c->gpu_sysfs = s;
        c->gpu_sysfs_set = true;
    }
    if (const char* s = env("TS_GPU_PROBE_INTERVAL")) {
        if (!seconds_in(s, 0.05, 3600, &c->probe_interval))
            c->notes.push_back(format("TS_GPU_PROBE_INTERVAL=%s ignored: it must be seconds, from 0.05 to 3600", s));
    }
    if (const char* s = env("TS_GPU_PROBE_TIMEOUT")) {
        if (!seconds_in(s, 0.05, 600, &c->probe_timeout))
            c->notes.push_back(format("TS_GPU_PROBE_TIMEOUT=%s ignored: it must be seconds, from 0.05 to 600", s));
    }
}

}  // namespace

ServerConfig read_server_config(const Getenv& env, size_t nofile) {
    ServerConfig c;
    if (const char* s = env("TS_SLOTS")) {
        c.slots = std::abs(atoi(s));
        if (c.slots < 1) c.notes.push_back(format("TS_SLOTS=%s ignored: it must be a number of at least 1", s));
    }
    if (const char* s = env("TS_MAXCONN")) {
        // task-spooler's limit: max_conn connections, max_conn - 6 jobs queued or running
        // (max_jobs - 1, see Queue): below 7, none, as in task-spooler (said in the log).
        long n = std::min(1000, std::abs(atoi(s)));
        if (n >= 1 && n < 7)
            c.notes.push_back(format("TS_MAXCONN=%s: the queue holds TS_MAXCONN - 6 jobs, so none: every job waits "
                                     "for room (or fails with -B)", s));
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
    read_gpu_config(env, &c);
    return c;
}
