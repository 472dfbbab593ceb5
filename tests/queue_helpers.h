/*
 * queue_helpers.h — jobs and results for the tests that drive the queue
 * model directly (jobs_test.cpp, listing_test.cpp).
 */
#pragma once

#include <initializer_list>
#include <list>
#include <vector>

#include "jobs.h"

inline constexpr uint32_t kDefaultFlags = proto::kStoreOutput | proto::kKeepFinished;

inline JobSpec cmd(std::initializer_list<const char*> argv, int slots = 1) {
    JobSpec s;
    for (const char* a : argv) s.argv.push_back(a);
    s.cwd = "/tmp";
    s.num_slots = slots;
    return s;
}

inline JobSpec dep_on(int id, std::initializer_list<const char*> argv = {"true"}) {
    JobSpec s = cmd(argv);
    s.depends = true;
    s.depend_on = id;   // -1: "-d"
    return s;
}

inline JobResult exit_with(int errorlevel, double real = 0, double user = 0, double sys = 0) {
    JobResult r;
    r.errorlevel = errorlevel;
    r.real = real;
    r.user = user;
    r.sys = sys;
    return r;
}

inline std::vector<JobId> ids(const std::list<JobId>& l) { return std::vector<JobId>(l.begin(), l.end()); }

using V = std::vector<JobId>;

inline const char* const kHeader01 =
    "ID   State      Output               E-Level  Times(r/u/s)   Command [run=0/1]\n";

