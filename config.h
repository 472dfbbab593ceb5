/*
 * config.h — the server's settings, read from its environment once, at
 * start, into one value (the server never calls getenv itself). Settings
 * that are wrong but harmless are ignored with a note for the log; one that
 * cannot be honoured stops the server with an error (the starting client
 * prints it). ts.1 (ENVIRONMENT) documents each variable.
 *
 * The queue's settings (fsync, GPUs, policy, caps: kQueueSettings in
 * config.cpp; README "The queue's settings") belong to the queue, not to
 * whichever client starts its next server, so that a server started from
 * another shell never turns fsync off or hands out cards meant for others:
 * the first server of a queue journals them as its environment has them
 * (queue_settings), and every later one uses the journal's (keep_journaled),
 * saying which values of its own environment it ignores. `ts --reconfigure` (take_settings) journals new ones. The other
 * variables (TS_SLOTS, TS_JOURNAL, ...) are read from the environment at
 * every start, as before.
 */
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gpu.h"

struct ServerConfig {
    int slots = 0;                           // TS_SLOTS, for a queue the journal does not give; 0: 1
    size_t max_jobs = 0;                     // TS_MAXCONN: at most max_jobs-1 queued or running; 0: no bound
    size_t max_finished = 1000;              // TS_MAXFINISHED
    size_t user_max_jobs = 1000;             // TS_USER_MAXJOBS: another user's queued and running jobs
    size_t user_max_size = size_t(64) << 20; // TS_USER_MAXSIZE: bytes of another user's jobs
    bool journal = true;                     // TS_JOURNAL=0: the queue in memory only
    bool fsync = false;                      // TS_FSYNC=1: every record on disk before the answer
    std::string savelist;                    // TS_SAVELIST: the list appended there on SIGTERM
    double timeout = 0;                      // TS_TIMEOUT: seconds, for a job without --timeout; 0: none
    std::string crash_after_submit;          // TS_TEST_CRASH_AFTER_SUBMIT: a test's one-shot fault
    std::string crash_after_end;             // TS_TEST_CRASH_AFTER_END: one after a run's end, before its Done
    // GPUs (README "GPUs"): the allocator's policy, and how the cards are probed.
    GpuPolicy gpu;                           // TS_GPU_SLOTS, TS_GPU_FOREIGN, TS_GPU_MIN_FREE, TS_GPU_SETTLE, TS_VISIBLE_DEVICES
    bool gpu_hide = false;                   // TS_GPU_HIDE=1: jobs without -G see no GPU
    std::string nvidia_smi = "nvidia-smi";   // TS_NVIDIA_SMI (empty: NVIDIA cards are not probed); else PATH's
    std::string gpu_sysfs = "/sys/class/drm";// TS_GPU_SYSFS: where AMD cards are looked for (empty: not)
    bool gpu_sysfs_set = false;              // ...set: AMD cards are used beside NVIDIA ones too
    double probe_interval = 5;               // TS_GPU_PROBE_INTERVAL: a probe's result is used this long
    double probe_timeout = 10;               // TS_GPU_PROBE_TIMEOUT: a probe that takes longer is killed
    std::vector<std::string> notes;          // settings ignored, and why (for the log)
    std::string error;                       // a setting the server cannot start with
    // Where the values came from (for keep_journaled): every variable read that
    // was set, NAME -> value, and the descriptor limit TS_MAXCONN was bounded by.
    std::map<std::string, std::string> env;
    size_t nofile = 0;
    bool take_settings = false;              // ts --reconfigure: this environment's, not the journal's
};

/* The queue's settings as the environment had them: NAME -> value for each
 * one that was set (an absent name: unset, the default). The journal keeps
 * this (journal.h), names this ts does not know included. */
using QueueSettings = std::map<std::string, std::string>;

/* Whether a variable is one of the queue's settings. */
bool is_queue_setting(const std::string& name);
/* The queue's settings of c's environment. */
QueueSettings queue_settings(const ServerConfig& c);

/* One of the queue's settings that an environment would change. */
struct SettingChange {
    std::string name;
    std::optional<std::string> kept;      // the journal's value; nullopt: unset
    std::optional<std::string> ignored;   // this environment's; nullopt: unset
};

/* The settings of `now` with the queue's settings replaced by the journal's
 * (read again from those values). *changes lists each setting whose meaning
 * the environment of `now` would have changed (a value spelt differently
 * that means the same is no change). */
ServerConfig keep_journaled(const ServerConfig& now, const QueueSettings& journaled,
                            std::vector<SettingChange>* changes);
/* The changes as a list for a message: "TS_FSYNC=1 (this environment has 0), ...";
 * taken (ts --reconfigure): "TS_FSYNC=0 (was 1), ...". */
std::string describe_changes(const std::vector<SettingChange>& changes, bool taken = false);
/* The settings as a list for the log: "TS_FSYNC=1, TS_GPU_SLOTS=2" ("none": all unset). */
std::string describe_settings(const QueueSettings& s);

using Getenv = std::function<const char*(const char*)>;

/* The settings from env (getenv by default). nofile is the soft limit on
 * descriptors (TS_MAXCONN is bounded by it; 0: unlimited). */
ServerConfig read_server_config(const Getenv& env, size_t nofile);

/* A size with an optional K, M or G suffix ("64M"); 0 when it is not one. */
size_t parse_size(const char* s);
