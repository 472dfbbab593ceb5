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
    std::string crash_after_submit;          // TS_TEST_CRASH_AFTER_SUBMIT: a test's one-shot fault
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
};

using Getenv = std::function<const char*(const char*)>;

/* The settings from env (getenv by default). nofile is the soft limit on
 * descriptors (TS_MAXCONN is bounded by it; 0: unlimited). */
ServerConfig read_server_config(const Getenv& env, size_t nofile);

/* A size with an optional K, M or G suffix ("64M"); 0 when it is not one. */
size_t parse_size(const char* s);
