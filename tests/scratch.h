/*
 * scratch.h — throwaway state for unit tests that touch the system: a
 * private temporary directory (removed with everything in it), environment
 * variables set or unset for one test and put back after it, and a child
 * process run to the end with what it wrote collected.
 */
#pragma once

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ftw.h>
#include <functional>
#include <optional>
#include <string>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <utility>
#include <vector>

#include "util.h"

namespace scratch {

/* A new directory under /tmp, mode 0700; removed, contents and all, at the end. */
class TempDir {
public:
    TempDir() {
        char templ[] = "/tmp/ts-unit.XXXXXX";
        if (mkdtemp(templ)) path_ = templ;
        EXPECT_FALSE(path_.empty()) << "mkdtemp: " << strerror(errno);
    }
    ~TempDir() {
        if (path_.empty()) return;
        chmod(path_.c_str(), 0700);   // a test may have made it sticky or someone else's
        nftw(path_.c_str(), remove_one, 16, FTW_DEPTH | FTW_PHYS);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }
    std::string operator/(const std::string& name) const { return path_ + "/" + name; }

private:
    static int remove_one(const char* p, const struct stat*, int, struct FTW*) {
        remove(p);
        return 0;
    }
    std::string path_;
};

/* Environment variables changed for one scope, and put back as they were. */
class Env {
public:
    Env() = default;
    Env(const Env&) = delete;
    Env& operator=(const Env&) = delete;
    ~Env() { restore(); }
    /* Put back what was changed (the last change first), now. */
    void restore() {
        for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
            if (it->second) setenv(it->first.c_str(), it->second->c_str(), 1);
            else unsetenv(it->first.c_str());
        }
        saved_.clear();
    }
    void set(const std::string& name, const std::string& value) {
        save(name);
        setenv(name.c_str(), value.c_str(), 1);
    }
    void unset(const std::string& name) {
        save(name);
        unsetenv(name.c_str());
    }

private:
    void save(const std::string& name) {
        const char* v = getenv(name.c_str());
        saved_.emplace_back(name, v ? std::optional<std::string>(v) : std::nullopt);
    }
    std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

/* What a child wrote to its stdout and stderr (one pipe), and how it ended. */
struct ChildResult {
    int status = -1;   // waitpid's
    std::string out;
    bool exited(int code) const { return WIFEXITED(status) && WEXITSTATUS(status) == code; }
};

/* Fork; the child runs body with its stdout and stderr on a pipe (or passes
 * the pipe's write end to body, which puts it where it wants) and _exits
 * with what body returns. The parent reads the pipe to EOF and reaps it. */
inline ChildResult run_child(const std::function<int(int out_fd)>& body) {
    ChildResult r;
    int p[2];
    if (pipe(p) != 0) {
        ADD_FAILURE() << "pipe: " << strerror(errno);
        return r;
    }
    pid_t pid = fork();
    if (pid < 0) {
        ADD_FAILURE() << "fork: " << strerror(errno);
        close(p[0]);
        close(p[1]);
        return r;
    }
    if (pid == 0) {
        close(p[0]);
        _exit(body(p[1]));
    }
    close(p[1]);
    Fd rd(p[0]);
    EXPECT_TRUE(read_all(rd.get(), &r.out));
    while (waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
    }
    return r;
}

}  // namespace scratch
