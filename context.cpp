/*
 * context.cpp — a job's context: captured in the submitting client, applied
 * in the job's child just before exec. See context.h.
 */
#include "context.h"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

extern char** environ;

namespace {

/* Wire index -> RLIMIT_*: the one table that capture and apply share. */
constexpr int kLimitMap[proto::kNumLimits] = {
    RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_DATA, RLIMIT_STACK, RLIMIT_CORE, RLIMIT_NOFILE, RLIMIT_AS,
#ifdef RLIMIT_RSS
    RLIMIT_RSS,
#else
    -1,
#endif
#ifdef RLIMIT_NPROC
    RLIMIT_NPROC,
#else
    -1,
#endif
#ifdef RLIMIT_MEMLOCK
    RLIMIT_MEMLOCK,
#else
    -1,
#endif
#ifdef RLIMIT_LOCKS
    RLIMIT_LOCKS,
#else
    -1,
#endif
#ifdef RLIMIT_SIGPENDING
    RLIMIT_SIGPENDING,
#else
    -1,
#endif
#ifdef RLIMIT_MSGQUEUE
    RLIMIT_MSGQUEUE,
#else
    -1,
#endif
#ifdef RLIMIT_NICE
    RLIMIT_NICE,
#else
    -1,
#endif
#ifdef RLIMIT_RTPRIO
    RLIMIT_RTPRIO,
#else
    -1,
#endif
#ifdef RLIMIT_RTTIME
    RLIMIT_RTTIME,
#else
    -1,
#endif
};

/* TS_ENV: run it with /bin/sh, keep what it prints (shown by -i). */
std::optional<std::string> ts_env_output() {
    const char* cmd = getenv("TS_ENV");
    if (!cmd) return std::nullopt;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return std::string();
    Fd rd(p[0]), wr(p[1]);
    pid_t pid = fork();
    if (pid < 0) return std::string();
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(wr.get(), 1);
        dup2(wr.get(), 2);
        signal(SIGPIPE, SIG_DFL);
        execl("/bin/sh", "sh", "-c", cmd, static_cast<char*>(nullptr));
        _exit(127);
    }
    wr.reset();
    std::string out;
    (void)read_all(rd.get(), &out);
    while (waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return out;
}

void reset_signals() {
    for (int s : {SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2})
        signal(s, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
}

void apply_limits(const JobSpec& spec) {
    if (!spec.limits) return;
    for (int i = 0; i < proto::kNumLimits; ++i) {
        if (!(spec.limits->valid & (1u << i)) || kLimitMap[i] < 0) continue;
        struct rlimit rl;
        rl.rlim_cur = static_cast<rlim_t>(spec.limits->v[i].cur);
        rl.rlim_max = static_cast<rlim_t>(spec.limits->v[i].max);
        if (setrlimit(kLimitMap[i], &rl) != 0) {
            // Cannot raise a hard limit without privilege: keep ours, lower the soft one.
            struct rlimit cur;
            if (getrlimit(kLimitMap[i], &cur) == 0) {
                rl.rlim_max = cur.rlim_max;
                if (rl.rlim_cur > rl.rlim_max) rl.rlim_cur = rl.rlim_max;
                (void)setrlimit(kLimitMap[i], &rl);
            }
        }
    }
}

/* The child could not start the job: say which step failed, and how, to the
 * runner (report), and task-spooler's message for exec to the job's stderr;
 * without a report pipe, msg goes to stderr so the reason is not lost. */
[[noreturn]] void child_fail(int32_t step, const char* msg, int report) {
    StartFailure f{step, errno};
    if (step == kStepExec || report < 0) (void)!write(STDERR_FILENO, msg, std::strlen(msg));
    if (report >= 0) (void)!write(report, &f, sizeof f);
    _exit(255);
}

/* Wait for the runner's go: one byte. EOF (the runner died, or will not
 * start the job after all) ends the child before the job could begin, and
 * tells the server so on the runner's connection (JobPipes::link). */
void wait_for_go(const JobPipes& p) {
    if (p.gate < 0) return;
    char c = 0;
    ssize_t n;
    do n = read(p.gate, &c, 1);
    while (n < 0 && errno == EINTR);
    if (n != 1) {
        if (p.link >= 0 && p.not_run) (void)!send(p.link, p.not_run, p.not_run_len, MSG_NOSIGNAL);
        _exit(255);
    }
    close(p.gate);
    if (p.link >= 0) close(p.link);   // the job never holds the runner's connection
}

}  // namespace

int limit_resource(int i) { return i >= 0 && i < proto::kNumLimits ? kLimitMap[i] : -1; }

void capture_context(JobSpec* s, bool send_env) {
    if (send_env)
        for (char** e = environ; *e; ++e) s->env.emplace_back(*e);
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) s->cwd = cwd;
    s->env_info = ts_env_output();
    mode_t m = umask(0);
    umask(m);
    s->umask = m;
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, 0);
    s->nice = errno ? 0 : prio;
    auto limits = std::make_shared<Limits>();
    for (int i = 0; i < proto::kNumLimits; ++i) {
        int res = limit_resource(i);
        struct rlimit rl;
        if (res < 0 || getrlimit(res, &rl) != 0) continue;
        limits->v[i].cur = rl.rlim_cur;
        limits->v[i].max = rl.rlim_max;
        limits->valid |= 1u << i;
    }
    s->limits.reset();
    if (limits->valid) s->limits = std::move(limits);
}

std::string env_value(const std::vector<std::string>& env, const char* name) {
    size_t n = std::strlen(name);
    for (const auto& e : env)
        if (e.size() > n && e.compare(0, n, name) == 0 && e[n] == '=') return e.substr(n + 1);
    return std::string();
}


/* In the job child: the context, then exec. Never returns. */
[[noreturn]] void exec_job(const JobSpec& spec, char* const* argv, char* const* envp, int in,
                           int out, int err, const JobPipes* pipes) {
    JobPipes none;
    const JobPipes& p = pipes ? *pipes : none;
    int gate = p.gate, report = p.report;
    setsid();
    if (in >= 0 && in != 0) dup2(in, 0);
    if (out >= 0 && out != 1) dup2(out, 1);
    if (err >= 0 && err != 2) dup2(err, 2);
    close_other_fds({gate, report, p.link});
    reset_signals();
    wait_for_go(p);
    umask(static_cast<mode_t>(spec.umask));
    apply_limits(spec);
    errno = 0;
    int cur = getpriority(PRIO_PROCESS, 0);
    if (errno == 0 && spec.nice != cur) (void)setpriority(PRIO_PROCESS, 0, spec.nice);
    if (!spec.cwd.empty() && chdir(spec.cwd.c_str()) != 0)
        child_fail(kStepChdir, "ts: cannot change to the job's working directory\n", report);
    environ = const_cast<char**>(envp);   // execvp searches the job's own PATH
    execvp(argv[0], argv);
    child_fail(kStepExec, "ts could not run the command\n", report);
}

std::string start_failure_text(const StartFailure& f, const JobSpec& spec) {
    if (f.step == kStepChdir)
        return format("cannot change to the working directory '%s': %s", spec.cwd.c_str(), strerror(f.err));
    if (f.step == kStepExec)
        return format("cannot run '%s': %s", spec.argv.empty() ? "" : spec.argv[0].c_str(), strerror(f.err));
    return std::string();
}
