/*
 * config.cpp — the server's settings from its environment, and which of them
 * are the queue's; see config.h.
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

ServerConfig read_server_config(const Getenv& getenv_, size_t nofile) {
    ServerConfig c;
    c.nofile = nofile;
    Getenv env = [&](const char* name) -> const char* {   // and remember what was set
        const char* v = getenv_(name);
        if (v) c.env[name] = v;
        return v;
    };
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
    if (const char* s = env("TS_TIMEOUT"); s && *s) {
        double d = 0;
        if (parse_duration(s, &d) && d >= 0.001) c.timeout = d;
        else c.notes.push_back(format("TS_TIMEOUT=%s ignored: it must be a duration such as 90, 30s, 5m or 1h30m", s));
    }
    if (const char* s = env("TS_TEST_CRASH_AFTER_SUBMIT")) c.crash_after_submit = s;
    if (const char* s = env("TS_TEST_CRASH_AFTER_END")) c.crash_after_end = s;
    read_gpu_config(env, &c);
    return c;
}

namespace {

std::string number(double d) { return format("%.17g", d); }

/* The queue's settings, each with what it means once read (two values that
 * mean the same are one setting: TS_FSYNC=0 is TS_FSYNC unset). A setting
 * that cannot be read means its error. ts.1 (ENVIRONMENT) lists these as the
 * queue's. */
struct QueueSettingRow {
    const char* name;
    std::string (*meaning)(const ServerConfig&);
};
const QueueSettingRow kQueueSettings[] = {
    {"TS_FSYNC", [](const ServerConfig& c) { return std::string(c.fsync ? "1" : "0"); }},
    {"TS_MAXCONN", [](const ServerConfig& c) {
         return c.error.rfind("TS_MAXCONN=", 0) == 0 ? c.error : std::to_string(c.max_jobs);
     }},
    {"TS_MAXFINISHED", [](const ServerConfig& c) { return std::to_string(c.max_finished); }},
    {"TS_USER_MAXJOBS", [](const ServerConfig& c) { return std::to_string(c.user_max_jobs); }},
    {"TS_USER_MAXSIZE", [](const ServerConfig& c) { return std::to_string(c.user_max_size); }},
    {"TS_SAVELIST", [](const ServerConfig& c) { return c.savelist; }},
    {"TS_TIMEOUT", [](const ServerConfig& c) { return number(c.timeout); }},
    {"TS_VISIBLE_DEVICES", [](const ServerConfig& c) {
         if (c.error.rfind("TS_VISIBLE_DEVICES=", 0) == 0) return c.error;
         std::string v;
         for (const std::string& d : c.gpu.visible) v += d + ",";
         return v;
     }},
    {"TS_GPU_SLOTS", [](const ServerConfig& c) { return std::to_string(c.gpu.jobs_per_gpu); }},
    {"TS_GPU_FOREIGN", [](const ServerConfig& c) { return std::string(c.gpu.judge_by_memory ? "memory" : "busy"); }},
    {"TS_GPU_MIN_FREE", [](const ServerConfig& c) { return std::to_string(c.gpu.min_free); }},
    {"TS_GPU_SETTLE", [](const ServerConfig& c) { return number(c.gpu.settle); }},
    {"TS_GPU_HIDE", [](const ServerConfig& c) { return std::string(c.gpu_hide ? "1" : "0"); }},
    {"TS_NVIDIA_SMI", [](const ServerConfig& c) { return c.nvidia_smi; }},
    {"TS_GPU_SYSFS", [](const ServerConfig& c) { return c.gpu_sysfs + (c.gpu_sysfs_set ? " (set)" : ""); }},
    {"TS_GPU_PROBE_INTERVAL", [](const ServerConfig& c) { return number(c.probe_interval); }},
    {"TS_GPU_PROBE_TIMEOUT", [](const ServerConfig& c) { return number(c.probe_timeout); }},
};

std::string shown(const std::string& name, const std::optional<std::string>& v) {
    return v ? name + "=" + printable(*v) : name + " unset";
}

}  // namespace

bool is_queue_setting(const std::string& name) {
    for (const QueueSettingRow& r : kQueueSettings)
        if (name == r.name) return true;
    return false;
}

QueueSettings queue_settings(const ServerConfig& c) {
    QueueSettings s;
    for (const auto& [name, value] : c.env)
        if (is_queue_setting(name)) s[name] = value;
    return s;
}

ServerConfig keep_journaled(const ServerConfig& now, const QueueSettings& journaled,
                            std::vector<SettingChange>* changes) {
    std::map<std::string, std::string> env;
    for (const auto& [name, value] : now.env)
        if (!is_queue_setting(name)) env[name] = value;
    for (const auto& [name, value] : journaled)
        if (is_queue_setting(name)) env[name] = value;   // a newer ts's setting: not read here
    ServerConfig kept = read_server_config(
        [&env](const char* name) -> const char* {
            auto it = env.find(name);
            return it == env.end() ? nullptr : it->second.c_str();
        },
        now.nofile);
    kept.take_settings = now.take_settings;
    changes->clear();
    auto value = [](const std::map<std::string, std::string>& m, const char* name) {
        auto it = m.find(name);
        return it == m.end() ? std::nullopt : std::optional<std::string>(it->second);
    };
    for (const QueueSettingRow& r : kQueueSettings)
        if (r.meaning(kept) != r.meaning(now))
            changes->push_back({r.name, value(journaled, r.name), value(now.env, r.name)});
    return kept;
}

std::string describe_changes(const std::vector<SettingChange>& changes, bool taken) {
    std::string out;
    for (const SettingChange& c : changes) {
        if (!out.empty()) out += ", ";
        if (taken)
            out += shown(c.name, c.ignored) + " (was " + (c.kept ? printable(*c.kept) : std::string("unset")) + ")";
        else
            out += shown(c.name, c.kept) + " (this environment " +
                   (c.ignored ? "has " + printable(*c.ignored) : std::string("does not set it")) + ")";
    }
    return out;
}

std::string describe_settings(const QueueSettings& s) {
    std::string out;
    for (const auto& [name, value] : s) out += (out.empty() ? "" : ", ") + name + "=" + printable(value);
    return out.empty() ? "none (the defaults)" : out;
}
