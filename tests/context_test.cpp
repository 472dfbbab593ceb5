/*
 * context_test.cpp — a job's context (context.h): the wire index of each
 * resource limit, a variable of a job's environment, what capture_context
 * reads from this process, and exec_job applying it in a forked child (the
 * child's stdout and stderr are a pipe the test reads; the job reports what
 * it got with a little shell).
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <set>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "context.h"
#include "scratch.h"
#include "util.h"

extern char** environ;

namespace {

using scratch::ChildResult;
using scratch::Env;
using scratch::TempDir;

const std::string kPath = "PATH=/usr/local/bin:/usr/bin:/bin";

// -------------------------------------------------------------- limit_resource

TEST(LimitResource, EveryWireIndexHasItsLimit) {
    const int want[proto::kNumLimits] = {
        RLIMIT_CPU,     RLIMIT_FSIZE,      RLIMIT_DATA,     RLIMIT_STACK, RLIMIT_CORE,  RLIMIT_NOFILE,
        RLIMIT_AS,      RLIMIT_RSS,        RLIMIT_NPROC,    RLIMIT_MEMLOCK, RLIMIT_LOCKS, RLIMIT_SIGPENDING,
        RLIMIT_MSGQUEUE, RLIMIT_NICE,      RLIMIT_RTPRIO,   RLIMIT_RTTIME};
    std::set<int> seen;
    for (int i = 0; i < proto::kNumLimits; ++i) {
        EXPECT_EQ(limit_resource(i), want[i]) << "wire index " << i;
        seen.insert(limit_resource(i));
    }
    EXPECT_EQ(seen.size(), size_t(proto::kNumLimits)) << "two indices name one limit";
}

TEST(LimitResource, OutOfRangeIsMinusOne) {
    for (int i : {-1, -2, proto::kNumLimits, proto::kNumLimits + 1, INT_MIN, INT_MAX})
        EXPECT_EQ(limit_resource(i), -1) << i;
}

// ------------------------------------------------------------------- env_value

TEST(EnvValue, FindsTheVariableByItsWholeName) {
    const std::vector<std::string> env = {"PATHX=no", "PATH=/bin", "EMPTY=", "NOEQUALS", "EQ=a=b=c", "PATH=/second"};
    EXPECT_EQ(env_value(env, "PATH"), "/bin");   // the first one, not PATHX's
    EXPECT_EQ(env_value(env, "PATHX"), "no");
    EXPECT_EQ(env_value(env, "EQ"), "a=b=c");
    EXPECT_EQ(env_value(env, "EMPTY"), "");
    EXPECT_EQ(env_value(env, "NOEQUALS"), "");
    EXPECT_EQ(env_value(env, "PAT"), "");
    EXPECT_EQ(env_value(env, "MISSING"), "");
    EXPECT_EQ(env_value({}, "PATH"), "");
}

// -------------------------------------------------------------- capture_context

class CaptureContext : public ::testing::Test {
protected:
    void SetUp() override { env_.unset("TS_ENV"); }
    Env env_;
};

TEST_F(CaptureContext, ReadsThisProcess) {
    mode_t old = umask(027);
    JobSpec s;
    s.argv = {"keep", "me"};
    s.limits = std::make_shared<Limits>();   // replaced
    capture_context(&s, false);
    umask(old);

    char buf[4096];
    ASSERT_NE(getcwd(buf, sizeof buf), nullptr);
    EXPECT_EQ(s.cwd, buf);
    EXPECT_EQ(s.umask, 027u);
    errno = 0;
    EXPECT_EQ(s.nice, getpriority(PRIO_PROCESS, 0));
    EXPECT_TRUE(s.env.empty()) << "the environment without send_env";
    EXPECT_FALSE(s.env_info) << "TS_ENV is not set";
    EXPECT_EQ(s.argv, (std::vector<std::string>{"keep", "me"}));
    ASSERT_TRUE(s.limits);
    for (int i = 0; i < proto::kNumLimits; ++i) {
        struct rlimit rl;
        ASSERT_EQ(getrlimit(limit_resource(i), &rl), 0);
        EXPECT_TRUE(s.limits->valid & (1u << i)) << i;
        EXPECT_EQ(s.limits->v[i].cur, uint64_t(rl.rlim_cur)) << i;
        EXPECT_EQ(s.limits->v[i].max, uint64_t(rl.rlim_max)) << i;
    }
}

TEST_F(CaptureContext, ReadsTheLimitsAndNiceValueAsTheyAreNow) {
    // In a child, which may change its own.
    ChildResult r = scratch::run_child([](int out) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 2;
        rl.rlim_cur = 123;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 3;
        errno = 0;
        int nice = getpriority(PRIO_PROCESS, 0);
        if (setpriority(PRIO_PROCESS, 0, std::min(nice + 4, 19)) != 0) return 4;
        JobSpec s;
        capture_context(&s, false);
        std::string text = format("%llu %d", (unsigned long long)s.limits->v[5].cur, s.nice - nice);
        (void)!write(out, text.data(), text.size());
        return 0;
    });
    ASSERT_TRUE(r.exited(0)) << r.status;
    errno = 0;
    EXPECT_EQ(r.out, format("123 %d", std::min(getpriority(PRIO_PROCESS, 0) + 4, 19) - getpriority(PRIO_PROCESS, 0)));
}

TEST_F(CaptureContext, TheEnvironmentOnlyWithSendEnv) {
    env_.set("TS_CONTEXT_TEST", "a value with = and spaces");
    JobSpec s;
    capture_context(&s, true);
    std::vector<std::string> all;
    for (char** e = environ; *e; ++e) all.emplace_back(*e);
    EXPECT_EQ(s.env, all);
    EXPECT_EQ(env_value(s.env, "TS_CONTEXT_TEST"), "a value with = and spaces");
    JobSpec none;
    capture_context(&none, false);
    EXPECT_TRUE(none.env.empty());
}

TEST_F(CaptureContext, TsEnvOutputIsKept) {
    env_.set("TS_ENV", "echo hello");
    JobSpec s;
    capture_context(&s, false);
    ASSERT_TRUE(s.env_info);
    EXPECT_EQ(*s.env_info, "hello\n");
}

TEST_F(CaptureContext, TsEnvGetsBothOutputsAndNoInput) {
    // Its stdin is /dev/null, not the client's: a TS_ENV that reads it ends at once.
    env_.set("TS_ENV", "echo out; echo err >&2; cat; printf 'no newline'");
    ChildResult r = scratch::run_child([](int out) {
        int p[2];
        if (pipe(p) != 0 || !write_all(p[1], "the client's input", 18) || dup2(p[0], 0) != 0) return 90;
        close(p[1]);
        JobSpec s;
        capture_context(&s, false);
        if (!s.env_info) return 91;
        return write_all(out, s.env_info->data(), s.env_info->size()) ? 0 : 92;
    });
    EXPECT_TRUE(r.exited(0)) << r.status;
    EXPECT_EQ(r.out, "out\nerr\nno newline");
}

TEST_F(CaptureContext, TsEnvThatSaysNothingOrFailsIsEmptyText) {
    for (const char* cmd : {"", "true", "exit 3"}) {
        env_.set("TS_ENV", cmd);
        JobSpec s;
        capture_context(&s, false);
        ASSERT_TRUE(s.env_info) << "'" << cmd << "': set, so shown (empty)";
        EXPECT_EQ(*s.env_info, "") << cmd;
    }
}

// --------------------------------------------------------------------- exec_job

/* Run argv with exec_job in a child, its stdout and stderr on one pipe;
 * `before` runs in the child first (it may change the child's state). */
ChildResult run_job(const JobSpec& spec, const std::vector<std::string>& argv,
                    const std::vector<std::string>& env, const std::function<int()>& before = nullptr,
                    const std::string& input = "") {
    return scratch::run_child([&](int out) {
        if (before)
            if (int rc = before()) return rc;
        int p[2];
        if (pipe(p) != 0) return 90;
        if (!write_all(p[1], input.data(), input.size())) return 91;
        close(p[1]);
        std::vector<char*> a, e;
        for (const auto& s : argv) a.push_back(const_cast<char*>(s.c_str()));
        a.push_back(nullptr);
        for (const auto& s : env) e.push_back(const_cast<char*>(s.c_str()));
        e.push_back(nullptr);
        exec_job(spec, a.data(), e.data(), p[0], out, out);
    });
}

JobSpec spec_in(const std::string& cwd) {
    JobSpec s;
    s.cwd = cwd;
    return s;
}

int current_nice() {
    errno = 0;
    return getpriority(PRIO_PROCESS, 0);
}

TEST(ExecJob, AppliesUmaskNiceWorkingDirectoryAndEnvironment) {
    TempDir d;
    JobSpec s = spec_in(d.path());
    s.umask = 027;
    s.nice = std::min(current_nice() + 3, 19);
    ChildResult r = run_job(s, {"/bin/sh", "-c", "pwd; umask; nice; echo \"$FOO\"; echo \"${HOME-unset}\""},
                            {"FOO=bar  baz", kPath});
    EXPECT_TRUE(r.exited(0)) << r.out;
    EXPECT_EQ(r.out, d.path() + "\n0027\n" + std::to_string(s.nice) + "\nbar  baz\nunset\n");
}

TEST(ExecJob, KeepsTheWorkingDirectoryWhenTheSpecHasNone) {
    TempDir d;
    ChildResult r = run_job(spec_in(""), {"/bin/sh", "-c", "pwd"}, {kPath},
                            [&] { return chdir(d.path().c_str()) == 0 ? 0 : 95; });
    EXPECT_TRUE(r.exited(0)) << r.out;
    EXPECT_EQ(r.out, d.path() + "\n");
}

TEST(ExecJob, LowersTheLimitsItWasGiven) {
    struct rlimit hard;
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &hard), 0);
    ASSERT_GT(hard.rlim_max, 77u);
    auto l = std::make_shared<Limits>();
    l->valid = 1u << 5;   // RLIMIT_NOFILE
    l->v[5] = {77, uint64_t(hard.rlim_max)};
    l->v[3] = {4096 * 1024, 4096 * 1024};   // RLIMIT_STACK, not valid: left alone
    JobSpec s = spec_in("/");
    s.limits = l;
    ChildResult stack = run_job(spec_in("/"), {"/bin/sh", "-c", "ulimit -s"}, {kPath});   // as it is
    ASSERT_TRUE(stack.exited(0));
    ASSERT_NE(stack.out, "4096\n") << "cannot tell RLIMIT_STACK was left alone";
    ChildResult r = run_job(s, {"/bin/sh", "-c", "ulimit -n; ulimit -Hn; ulimit -s"}, {kPath});
    EXPECT_TRUE(r.exited(0)) << r.out;
    EXPECT_EQ(r.out, "77\n" + std::to_string(hard.rlim_max) + "\n" + stack.out);
}

TEST(ExecJob, AHardLimitItMayNotRaiseStaysAndTheSoftOneFollows) {
    // The job's process may not raise its hard limit: it keeps its own hard
    // limit, and a soft limit no higher than that.
    auto job_with = [](uint64_t cur, uint64_t max) {
        auto l = std::make_shared<Limits>();
        l->valid = 1u << 5;
        l->v[5] = {cur, max};
        JobSpec s = spec_in("/");
        s.limits = l;
        return run_job(s, {"/bin/sh", "-c", "ulimit -n; ulimit -Hn"}, {kPath}, [] {
            struct rlimit rl = {100, 200};
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return 96;
            if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) return 97;   // no privilege
            return 0;
        });
    };
    ChildResult r = job_with(150, 1000);
    EXPECT_TRUE(r.exited(0)) << r.status << r.out;
    EXPECT_EQ(r.out, "150\n200\n");
    r = job_with(500, 1000);
    EXPECT_TRUE(r.exited(0)) << r.status << r.out;
    EXPECT_EQ(r.out, "200\n200\n");
}

/* A child with signals ignored and blocked, and a descriptor that is not close-on-exec. */
int messy_child() {
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, nullptr);
    return dup2(2, 9) == 9 ? 0 : 98;
}

TEST(ExecJob, RunsInASessionOfItsOwn) {
    ChildResult r = run_job(spec_in("/"), {"cut", "-d", " ", "-f1,5,6", "/proc/self/stat"}, {kPath}, messy_child);
    ASSERT_TRUE(r.exited(0)) << r.out;
    int pid = 0, pgrp = 0, sid = 0;
    ASSERT_EQ(sscanf(r.out.c_str(), "%d %d %d", &pid, &pgrp, &sid), 3) << r.out;
    EXPECT_EQ(sid, pid) << "not a session of its own";
    EXPECT_EQ(pgrp, pid);
}

TEST(ExecJob, SignalsAreDefaultAndUnblocked) {
    // The job itself reads its status (a shell would block signals of its own while it waits).
    ChildResult r = run_job(spec_in("/"), {"grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"}, {kPath}, messy_child);
    ASSERT_TRUE(r.exited(0)) << r.out;
    unsigned long long blk = 1, ign = ~0ull;
    ASSERT_EQ(sscanf(r.out.c_str(), "SigBlk: %llx\nSigIgn: %llx", &blk, &ign), 2) << r.out;
    EXPECT_EQ(blk, 0u) << "signals left blocked: " << r.out;
    for (int sig : {SIGINT, SIGPIPE, SIGTERM}) EXPECT_FALSE(ign & (1ull << (sig - 1))) << strsignal(sig);
}

TEST(ExecJob, InheritsNoOtherDescriptors) {
    ChildResult r = run_job(spec_in("/"), {"/bin/sh", "-c", "[ -e /proc/$$/fd/9 ] && echo open || echo closed"},
                            {kPath}, messy_child);
    ASSERT_TRUE(r.exited(0)) << r.out;
    EXPECT_EQ(r.out, "closed\n");
    // Seen from the child before the exec: fd 9 is there.
    r = scratch::run_child([](int out) {
        if (messy_child()) return 98;
        return fcntl(9, F_GETFD) >= 0 && write(out, "open", 4) == 4 ? 0 : 99;
    });
    EXPECT_EQ(r.out, "open");
}

TEST(ExecJob, StdinComesFromTheDescriptorGiven) {
    ChildResult r = run_job(spec_in("/"), {"cat"}, {kPath}, nullptr, "line one\nline two\n");
    EXPECT_TRUE(r.exited(0)) << r.out;
    EXPECT_EQ(r.out, "line one\nline two\n");
}

TEST(ExecJob, MinusOneLeavesADescriptorAsItIs) {
    ChildResult r = scratch::run_child([](int out) {
        if (dup2(out, 1) != 1 || dup2(out, 2) != 2) return 90;
        close(out);
        char sh[] = "/bin/sh", c[] = "-c", cmd[] = "echo to-stdout; echo to-stderr >&2";
        char* argv[] = {sh, c, cmd, nullptr};
        char* envp[] = {nullptr};
        exec_job(spec_in("/"), argv, envp, -1, -1, -1);
    });
    EXPECT_TRUE(r.exited(0)) << r.out;
    EXPECT_EQ(r.out, "to-stdout\nto-stderr\n");
}

TEST(ExecJob, SearchesTheJobsOwnPath) {
    TempDir d;
    std::string bin = d / "bin";
    ASSERT_EQ(mkdir(bin.c_str(), 0755), 0);
    {
        Fd f(open((bin + "/ts-context-test-job").c_str(), O_WRONLY | O_CREAT, 0755));
        std::string script = "#!/bin/sh\necho \"ran $0 $1\"\n";
        ASSERT_TRUE(write_all(f.get(), script.data(), script.size()));
    }
    ChildResult r = run_job(spec_in("/"), {"ts-context-test-job", "arg"}, {"PATH=" + bin});
    EXPECT_TRUE(r.exited(0)) << r.out;
    EXPECT_EQ(r.out, "ran " + bin + "/ts-context-test-job arg\n");
    // With the test's PATH (which lacks bin) it would not be found; with the job's, cat is not.
    r = run_job(spec_in("/"), {"cat"}, {"PATH=" + bin});
    EXPECT_TRUE(r.exited(255));
    EXPECT_EQ(r.out, "ts could not run the command\n");
}

TEST(ExecJob, MissingCommandExits255WithTaskSpoolersMessage) {
    TempDir d;
    ChildResult r = run_job(spec_in("/"), {d / "no-such-command", "x"}, {kPath});
    EXPECT_TRUE(r.exited(255)) << r.status;
    EXPECT_EQ(r.out, "ts could not run the command\n");
    std::string file = d / "not-executable";
    ASSERT_TRUE(write_all(Fd(open(file.c_str(), O_WRONLY | O_CREAT, 0644)).get(), "echo x\n", 7));
    r = run_job(spec_in("/"), {file}, {kPath});
    EXPECT_TRUE(r.exited(255)) << r.status;
    EXPECT_EQ(r.out, "ts could not run the command\n");
}

TEST(ExecJob, MissingWorkingDirectoryExits255AndRunsNothing) {
    TempDir d;
    std::string marker = d / "ran";
    ChildResult r = run_job(spec_in(d / "gone"), {"/bin/sh", "-c", "echo ran; touch " + marker}, {kPath});
    EXPECT_TRUE(r.exited(255)) << r.status;
    EXPECT_EQ(r.out, "ts: cannot change to the job's working directory\n");
    EXPECT_NE(access(marker.c_str(), F_OK), 0);
}

/* exec_job with a runner's pipes (context.h: JobPipes): gate_byte is what
 * the runner wrote to the gate before closing it ("" : it died first);
 * *failure gets what the child reported, if it did. */
ChildResult run_gated(const JobSpec& spec, const std::vector<std::string>& argv, const std::string& gate_byte,
                      StartFailure* failure, bool* reported) {
    int g[2], r[2];
    EXPECT_EQ(pipe2(g, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(r, O_CLOEXEC), 0);
    Fd gate_r(g[0]), report_r(r[0]), report_w(r[1]);
    {
        Fd gate_w(g[1]);
        EXPECT_TRUE(write_all(gate_w.get(), gate_byte.data(), gate_byte.size()));
    }   // closed: the child sees EOF after the byte (or at once)
    ChildResult res = scratch::run_child([&](int out) -> int {
        std::vector<char*> a;
        for (const auto& x : argv) a.push_back(const_cast<char*>(x.c_str()));
        a.push_back(nullptr);
        std::string path = kPath;
        char* e[] = {&path[0], nullptr};
        JobPipes p{gate_r.get(), report_w.get()};
        exec_job(spec, a.data(), e, -1, out, out, &p);
    });
    report_w.reset();
    *reported = read(report_r.get(), failure, sizeof *failure) == ssize_t(sizeof *failure);
    return res;
}

TEST(ExecJob, WithoutTheRunnersGoNothingRuns) {
    TempDir d;
    std::string marker = d / "ran";
    StartFailure f{};
    bool reported = false;
    ChildResult r = run_gated(spec_in("/"), {"/bin/sh", "-c", "touch " + marker}, "", &f, &reported);
    EXPECT_TRUE(r.exited(255)) << r.status;
    EXPECT_NE(access(marker.c_str(), F_OK), 0) << "the job ran without the go";
    EXPECT_FALSE(reported) << "a runner that died is told nothing";
    EXPECT_EQ(r.out, "");
    r = run_gated(spec_in("/"), {"/bin/sh", "-c", "touch " + marker}, "g", &f, &reported);
    EXPECT_TRUE(r.exited(0)) << r.status;
    EXPECT_EQ(access(marker.c_str(), F_OK), 0) << "the job did not run with the go";
    EXPECT_FALSE(reported) << "a job that started reported a failure";
}

TEST(ExecJob, AFailedExecIsReportedWithItsErrno) {
    TempDir d;
    StartFailure f{};
    bool reported = false;
    JobSpec spec = spec_in("/");
    spec.argv = {"no-such-command", "x"};
    ChildResult r = run_gated(spec, {d / "no-such-command", "x"}, "g", &f, &reported);
    EXPECT_TRUE(r.exited(255)) << r.status;
    EXPECT_EQ(r.out, "ts could not run the command\n") << "task-spooler's line stays in the output";
    ASSERT_TRUE(reported);
    EXPECT_EQ(f.step, kStepExec);
    EXPECT_EQ(f.err, ENOENT);
    EXPECT_EQ(start_failure_text(f, spec), "cannot run 'no-such-command': No such file or directory");
    std::string file = d / "not-executable";
    ASSERT_TRUE(write_all(Fd(open(file.c_str(), O_WRONLY | O_CREAT, 0644)).get(), "echo x\n", 7));
    spec.argv = {file};
    r = run_gated(spec, {file}, "g", &f, &reported);
    ASSERT_TRUE(reported);
    EXPECT_EQ(f.err, EACCES);
    EXPECT_EQ(start_failure_text(f, spec), "cannot run '" + file + "': Permission denied");
}

TEST(ExecJob, AMissingWorkingDirectoryIsReportedWithItsPathAndRunsNothing) {
    TempDir d;
    std::string marker = d / "ran";
    StartFailure f{};
    bool reported = false;
    JobSpec spec = spec_in(d / "gone");
    ChildResult r = run_gated(spec, {"/bin/sh", "-c", "touch " + marker}, "g", &f, &reported);
    EXPECT_TRUE(r.exited(255)) << r.status;
    EXPECT_NE(access(marker.c_str(), F_OK), 0);
    EXPECT_EQ(r.out, "") << "the runner writes the line, with the path";
    ASSERT_TRUE(reported);
    EXPECT_EQ(f.step, kStepChdir);
    EXPECT_EQ(f.err, ENOENT);
    EXPECT_EQ(start_failure_text(f, spec),
              "cannot change to the working directory '" + (d / "gone") + "': No such file or directory");
}

}  // namespace
