/*
 * runner.cpp — see runner.h.
 *
 * After fork() the job child only sets up its context and execs; on failure
 * it writes task-spooler's message to its stderr (the output file) and
 * calls _exit(255), which the list shows as E-Level -1.
 */
#include "runner.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <algorithm>
#include <ctime>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "context.h"
#include "frame.h"
#include "gpu.h"
#include "util.h"

namespace {

volatile sig_atomic_t g_job_pid = 0;

/* -f: Ctrl-C reaches the runner; pass it on to the job, as task-spooler does. */
void forward_signal(int sig) {
    if (g_job_pid > 0) kill(g_job_pid, sig);
}

/* NULL-terminated pointer arrays into a vector of strings. */
std::vector<char*> c_array(const std::vector<std::string>& v) {
    std::vector<char*> out;
    out.reserve(v.size() + 1);
    for (const auto& s : v) out.push_back(const_cast<char*>(s.c_str()));
    out.push_back(nullptr);
    return out;
}

int64_t to_us(double s) { return static_cast<int64_t>(s * 1e6); }
double tv_seconds(const struct timeval& tv) { return double(tv.tv_sec) + double(tv.tv_usec) / 1e6; }

pid_t wait_for(pid_t pid, int* status, struct rusage* ru) {
    for (;;) {
        pid_t r = wait4(pid, status, 0, ru);
        if (r >= 0 || errno != EINTR) return r;
    }
}

/* Wait for a helper process and add its CPU times to *total. */
void wait_adding(pid_t pid, struct rusage* total) {
    int st;
    struct rusage ru {};
    if (wait_for(pid, &st, &ru) != pid) return;
    timeradd(&total->ru_utime, &ru.ru_utime, &total->ru_utime);
    timeradd(&total->ru_stime, &ru.ru_stime, &total->ru_stime);
}

/* TS_ONFINISH: prog jobid errorlevel outfile command (only the first two with -n). */
void run_onfinish(const JobSpec& spec, JobId id, int errorlevel, const std::string& out,
                  struct rusage* total) {
    std::string prog = env_value(spec.env, "TS_ONFINISH");
    if (prog.empty()) return;
    std::vector<std::string> args = {prog, format("%d", id), format("%d", errorlevel)};
    if (spec.stores_output()) {   // with -n, task-spooler passes only the first two
        args.push_back(out);
        args.push_back(spec.command());
    }
    auto argv = c_array(args);
    auto envp = c_array(spec.env);
    pid_t pid = fork();
    if (pid < 0) return;
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        exec_job(spec, argv.data(), envp.data(), null, -1, -1);
    }
    wait_adding(pid, total);
}

/* -m: mail the output through sendmail (a missing sendmail is ignored). */
void send_mail(const JobSpec& spec, JobId id, int errorlevel, const std::string& out,
               struct rusage* total) {
    std::string to = env_value(spec.env, "TS_MAILTO");
    if (to.empty() || to.size() > 100) to = env_value(spec.env, "USER");
    if (to.empty()) to = "nobody";
    std::string msg = format("From: Task Spooler <taskspooler>\nTo: %s\n"
                             "Subject: the task %d finished with error %d. \n\nCommand: %s\nOutput:\n",
                             to.c_str(), id, errorlevel, spec.command().c_str());
    std::string body;
    if (read_file(out, &body)) msg += body;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return;
    Fd rd(p[0]), wr(p[1]);
    std::vector<std::string> args = {"/usr/sbin/sendmail", "-oi", to};
    auto argv = c_array(args);
    auto envp = c_array(spec.env);
    pid_t pid = fork();
    if (pid < 0) return;
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        JobSpec ctx = spec;
        ctx.cwd.clear();
        exec_job(ctx, argv.data(), envp.data(), rd.get(), null, null);
    }
    rd.reset();
    signal(SIGPIPE, SIG_IGN);
    (void)write_all(wr.get(), msg.data(), msg.size());
    wr.reset();
    wait_adding(pid, total);
}

/* The output file, and -g's gzip between the job and it. */
struct Output {
    std::string path;
    Fd file, err_file, gzip_in;
    pid_t gzip_pid = -1;
};

/* Give a file made ahead (unnamed) its name: $DIR/ts-out.XXXXXX, as mkstemp
 * would choose it. False if it cannot be linked (then it is dropped). */
bool name_output(OutputFile* f) {
    static const char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    std::string proc = format("/proc/self/fd/%d", f->fd.get());
    uint64_t r = 0;
    for (int attempt = 0; attempt < 100; ++attempt) {
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != sizeof r)
            r = (r ^ uint64_t(getpid())) * 6364136223846793005ull + uint64_t(wall_now() * 1e6);
        std::string path = f->dir + "/ts-out.";
        for (int i = 0; i < 6; ++i, r /= 62) path += kChars[r % 62];
        if (linkat(AT_FDCWD, proc.c_str(), AT_FDCWD, path.c_str(), AT_SYMLINK_FOLLOW) == 0) {
            f->path = path;
            return true;
        }
        if (errno != EEXIST) break;
    }
    f->fd.reset();
    return false;
}

/* The output file, and with -E its ".e" beside it, both made exclusively:
 * nothing that already exists at either name is ever opened (someone may
 * have put it there to read the job's output). */
bool open_output(const JobSpec& spec, const char* const* envp, Output* o, std::string* why,
                 OutputFile* ready) {
    std::string dir = output_dir(env_value(spec.env, "TMPDIR").c_str());
    for (int attempt = 0; attempt < 20; ++attempt) {
        if (ready && ready->fd && ready->dir == dir && name_output(ready)) {
            o->path = ready->path;
            o->file = std::move(ready->fd);
        } else {
            OutputFile f;
            int err = 0;
            if (!make_output_file(dir, &f, &err)) {
                *why = format("cannot create the output file in %s: %s", dir.c_str(), strerror(err));
                return false;
            }
            o->path = f.path;
            o->file = std::move(f.fd);
        }
        if (!(spec.flags & proto::kStderrApart)) break;
        std::string e = o->path + ".e";
        o->err_file.reset(open(e.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (o->err_file) break;
        int err = errno;
        unlink(o->path.c_str());   // ours, made just now: try another name
        o->file.reset();
        o->path.clear();
        if (err != EEXIST) {
            *why = format("cannot create the output file %s: %s", e.c_str(), strerror(err));
            return false;
        }
    }
    if (!o->file) {
        *why = format("cannot create the output files in %s: every name tried was taken", dir.c_str());
        return false;
    }
    if (spec.flags & proto::kGzip) {
        int p[2];
        if (pipe2(p, O_CLOEXEC) != 0) {
            *why = format("cannot create a pipe for gzip: %s", strerror(errno));
            return false;
        }
        Fd rd(p[0]);
        o->gzip_in.reset(p[1]);
        static char gz[] = "gzip";
        char* argv[] = {gz, nullptr};
        pid_t pid = fork();
        if (pid < 0) {
            *why = format("cannot start gzip: %s", strerror(errno));
            return false;
        }
        if (pid == 0) {
            int null = open("/dev/null", O_WRONLY);
            JobSpec ctx = spec;
            ctx.cwd.clear();
            exec_job(ctx, argv, const_cast<char* const*>(envp), rd.get(), o->file.get(), null);
        }
        o->gzip_pid = pid;
    }
    return true;
}

}  // namespace

std::string output_dir(const char* tmpdir) { return tmpdir && *tmpdir ? tmpdir : "/tmp"; }

bool make_unnamed_output_file(const std::string& dir, OutputFile* o) {
#ifdef O_TMPFILE
    int fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    o->dir = dir;
    o->path.clear();
    o->fd.reset(fd);
    return true;
#else
    (void)dir;
    (void)o;
    return false;
#endif
}

bool make_output_file(const std::string& dir, OutputFile* o, int* err) {
    std::string templ = dir + "/ts-out.XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    int fd = mkostemp(buf.data(), O_CLOEXEC);
    if (fd < 0) {
        *err = errno;
        return false;
    }
    o->dir = dir;
    o->path = buf.data();
    o->fd.reset(fd);
    return true;
}

/* Frames the old connection still holds: a Bye (or another version's answer)
 * in there means we must not reconnect. */
void ServerLink::drain() {
    if (!fd_) return;
    set_nonblock(fd_.get());
    Frame f;
    while (!gone_ && recv_frame(fd_.get(), &f)) note(f);
    fd_.reset();
}

/* Frames that end the link for good. */
void ServerLink::note(const Frame& f) {
    if (f.type == proto::MsgType::Bye || f.type == proto::MsgType::Version ||
        f.version != proto::kVersion)
        gone_ = true;
}

/* A line in the queue's log (<socket>.error): the server cannot be reached. */
void ServerLink::log_failure(const std::string& why) {
    double now = mono_now();
    // The first failure, the one that reaches the longest delay, then one a minute.
    if (logged_ != 0 && !(delay_ >= 5 && logged_ < failing_since_ + 5) && now - logged_ < 60) return;
    logged_ = now;
    if (log_path_.empty()) return;
    std::string w;
    Fd fd = open_private(log_path_, O_WRONLY | O_APPEND | O_CREAT, &w);
    if (!fd) return;
    time_t t = time(nullptr);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
    std::string line = format("%s ts runner %d: job %d: cannot reach the server (%s); trying again "
                              "in %.2g s\n",
                              when, int(getpid()), id_, why.empty() ? "it does not answer" : why.c_str(),
                              delay_);
    (void)write_all(fd.get(), line.data(), line.size());
}

bool ServerLink::try_reattach() {
    if (gone_) return false;
    double now = mono_now();
    if (now < next_try_) return false;
    drain();
    std::string why;
    fd_ = connect_(&why);
    if (!fd_) {
        delay_ = delay_ == 0 ? 0.05 : std::min(delay_ * 2, 5.0);
        next_try_ = mono_now() + delay_;
        if (failing_since_ == 0) failing_since_ = now;
        log_failure(why);
        return false;
    }
    delay_ = 0;
    next_try_ = 0;
    failing_since_ = 0;
    logged_ = 0;
    proto::AttachBody a{};
    a.id = id_;
    a.runner_pid = getpid();
    a.started = started_.empty() ? 0 : 1;
    a.run = run_;
    if (send_frame(fd_.get(), encode(proto::MsgType::Attach, a)) &&
        (started_.empty() || send_frame(fd_.get(), started_)))
        return true;
    fd_.reset();
    return false;
}

bool ServerLink::reattach() {
    double give_up = mono_now() + patience_ms_ / 1000.0;
    while (!gone_ && mono_now() < give_up) {
        if (try_reattach()) return true;
        sleep_seconds(std::max(0.001, next_try_ - mono_now()));
    }
    gone_ = true;
    return false;
}

bool ServerLink::send(const std::string& frame) {
    for (int tries = 0; tries < 3 && !gone_; ++tries) {
        if (fd_ && send_frame(fd_.get(), frame)) return true;
        if (!reattach()) return false;
    }
    return false;
}

bool ServerLink::send_final(const std::string& frame) {
    again_ = false;
    for (int tries = 0; tries < 10 && !gone_; ++tries) {
        if (!send(frame)) return false;
        Frame f;
        while (fd_ && recv_frame(fd_.get(), &f)) {
            if (f.type == proto::MsgType::Done) return true;
            if (f.type == proto::MsgType::Again && f.version == proto::kVersion) {
                again_ = true;       // that run was an attempt: the next one is the job's now,
                ++run_;              // and one that re-attaches waits for its Run
                started_.clear();
                return true;
            }
            note(f);
            if (gone_) return false;
        }
        if (!reattach()) return false;   // sends Started again; Finished follows
    }
    return false;
}

bool ServerLink::receive(Frame* f) {
    if (!gone_ && fd_ && recv_frame(fd_.get(), f)) {
        note(*f);
        if (gone_) fd_.reset();   // a Bye: nothing more will come, and the caller must not poll it
        return true;
    }
    fd_.reset();   // the server went away: the caller decides when to come back
    return false;
}

namespace {
/* The runner's ends of the job child's pipes (context.h: JobPipes): the
 * gate it opens once the server knows the job starts, and the report of a
 * start that failed. Without pipes (no descriptors left), the job starts at
 * once and a failure is told by its stderr only, as before. */
class StartPipes {
public:
    StartPipes() {
        int g[2], r[2];
        if (pipe2(g, O_CLOEXEC) == 0) {
            gate_r_.reset(g[0]);
            gate_w_.reset(g[1]);
        }
        if (pipe2(r, O_CLOEXEC | O_NONBLOCK) == 0) {
            report_r_.reset(r[0]);
            report_w_.reset(r[1]);
        }
        had_gate_ = bool(gate_w_);
    }
    /* In the child: the ends it uses (link: the connection on which it says
     * not_run if it never gets its go). */
    JobPipes child_ends(int link, const std::string& not_run) const {
        JobPipes p;
        p.gate = gate_r_.get();
        p.report = report_w_.get();
        if (gate_r_) {
            p.link = link;
            p.not_run = not_run.data();
            p.not_run_len = not_run.size();
        }
        return p;
    }
    /* In the runner, after fork: the child's ends are its own. */
    void forked() {
        gate_r_.reset();
        report_w_.reset();
    }
    void go() {
        if (gate_w_) released_ = write(gate_w_.get(), "g", 1) == 1;
        gate_w_.reset();
    }
    void no_go() { gate_w_.reset(); }
    /* Whether the child was let go (true without a gate: it never waited). */
    bool released() const { return released_ || !had_gate_; }
    bool gated() const { return had_gate_; }
    /* After the child ended: what it could not do, if it said. */
    bool failure(StartFailure* f) {
        return report_r_ && read(report_r_.get(), f, sizeof *f) == ssize_t(sizeof *f);
    }

private:
    Fd gate_r_, gate_w_, report_r_, report_w_;
    bool had_gate_ = false;
    bool released_ = false;
};

int g_child_pipe = -1;
void on_child(int) {
    int saved = errno;
    char c = 0;
    (void)!write(g_child_pipe, &c, 1);
    errno = saved;
}

/* The job's end by its deadline (--timeout) or a cancel (--cancel): when
 * its process group gets SIGTERM, and SIGKILL after the grace. Kept by the
 * runner, on its own clock, so a server that restarts changes nothing. */
struct JobTimer {
    double term_at = 0;   // mono_now: the deadline (0: none)
    double grace = 30;    // --kill-after
    double kill_at = 0;   // mono_now: SIGKILL then (0: not due)
    EndHow how = EndHow::Normal;

    JobTimer(const JobSettings& s, double start_mono) : grace(s.kill_after()) {
        if (s.timeout() > 0) term_at = start_mono + s.timeout();
    }
    /* End the job now (SIGTERM, SIGKILL after the grace), as `why` says. */
    void end(pid_t pid, EndHow why) {
        if (how != EndHow::Normal) return;   // ending already: its first reason stays
        how = why;
        term_at = 0;
        kill(-pid, SIGTERM);
        kill_at = mono_now() + grace;
    }
    /* Do what is due; the milliseconds until the next thing is (at most max_ms). */
    int tick(pid_t pid, int max_ms) {
        double now = mono_now();
        if (term_at != 0 && now >= term_at) end(pid, EndHow::TimedOut);
        if (kill_at != 0 && now >= kill_at) {
            kill(-pid, SIGKILL);
            kill_at = 0;
        }
        double next = kill_at != 0 ? kill_at : term_at;
        if (next == 0) return max_ms;
        return int(std::clamp((next - now) * 1000 + 1, 0.0, double(max_ms)));
    }
};

/* What the server asks of a running job: `ts -k` (Signal: sent to its process
 * group, as the job's owner) or --cancel (CancelJob). */
void on_server_frame(ServerLink& link, pid_t pid, JobTimer* timer) {
    Frame f;
    proto::Slots sig;
    if (!link.receive(&f)) return;   // EOF: come back later; Bye: stop reporting
    if (f.type == proto::MsgType::Signal && decode_body(f, &sig) && sig.n > 0 && sig.n < 65) kill(-pid, sig.n);
    if (f.type == proto::MsgType::CancelJob) timer->end(pid, EndHow::Cancelled);
}

/* Wait for the job while watching the server link: a server that goes away
 * is reconnected to at once, so the new server learns that we are alive. */
int wait_job(pid_t pid, ServerLink& link, int child_pipe, struct rusage* ru, JobTimer* timer) {
    for (;;) {
        int st = 0;
        pid_t r = wait4(pid, &st, WNOHANG, ru);
        if (r == pid) return st;
        if (r < 0 && errno != EINTR) return -1;
        // Without a server, try to come back every half second, and keep reaping.
        bool away = !link.gone() && link.fd() < 0;
        if (away && link.try_reattach()) away = false;
        int wait_ms = timer->tick(pid, away ? 500 : 1000);
        struct pollfd p[2] = {{child_pipe, POLLIN, 0}, {link.fd(), POLLIN, 0}};
        if (poll(p, 2, wait_ms) < 0) continue;
        if (p[0].revents) {
            char buf[64];
            while (read(child_pipe, buf, sizeof buf) > 0) {
            }
        }
        if (p[1].revents) on_server_frame(link, pid, timer);
    }
}

/* Where the job's stdin, stdout and stderr go: the caller's terminal (-f),
 * the output file (through gzip with -g), or /dev/null. */
struct JobIo {
    Output out;
    Fd null;
    int in = 0, o1 = 1, o2 = 2;
    bool ok = true;     // the output file could be made
    std::string why;    // ...and why not
};

void open_io(const JobSpec& spec, const char* const* envp, bool foreground, OutputFile* ready, JobIo* io) {
    io->null.reset(open("/dev/null", O_RDWR | O_CLOEXEC));
    io->in = foreground ? 0 : io->null.get();
    io->o1 = foreground ? 1 : io->null.get();
    io->o2 = foreground ? 2 : io->null.get();
    if (spec.stores_output()) {
        io->ok = open_output(spec, envp, &io->out, &io->why, ready);
        io->o1 = io->out.gzip_in ? io->out.gzip_in.get() : io->out.file.get();
        io->o2 = io->out.err_file ? io->out.err_file.get() : io->o1;
    }
    if (ready) ready->fd.reset();   // made for nothing (no file, another directory): it vanishes
}

/* SIGCHLD wakes the wait for the job (wait_job) through this pipe. */
void watch_children(Fd* r, Fd* w) {
    int cp[2];
    if (pipe2(cp, O_CLOEXEC | O_NONBLOCK) == 0) {
        r->reset(cp[0]);
        w->reset(cp[1]);
    }
    g_child_pipe = w->get();
    struct sigaction sa {};
    sa.sa_handler = on_child;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, nullptr);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);   // a closing terminal must not cost the job its result (the job gets SIG_DFL)
}

/* No process or memory for the job now: the server's runner gives the job
 * back (it is queued again and starts when there are some). Whatever the
 * server answers, this runner never runs the job (the server queues it
 * again, or its next server finds it queued). */
void give_back(ServerLink& link, Output& out, int err, RunOutcome* outcome) {
    proto::Slots e{};
    e.n = err;
    outcome->reported = link.send_final(encode(proto::MsgType::Unstarted, e));
    if (!out.path.empty()) unlink(out.path.c_str());
    if (out.err_file) unlink((out.path + ".e").c_str());
    out.gzip_in.reset();
    if (out.gzip_pid > 0) (void)wait_for(out.gzip_pid, nullptr, nullptr);
    outcome->result.errorlevel = -1;
}

/* Fork the job, held at its gate (sp) until the server has its start: its
 * pid, or -1 (errno: no process). A client's runner waits for a process
 * (growing delays, up to an hour); the server's own gives the job back
 * instead (*given_back). */
pid_t fork_job(const JobSpec& spec, char* const* argv, char* const* envp, const JobIo& io, ServerLink& link,
               StartPipes& sp, const std::string& not_run, bool* given_back) {
    pid_t pid = -1;
    *given_back = false;
    for (double delay = 0.01, waited = 0;; waited += delay, delay = std::min(delay * 2, 1.0)) {
        pid = fork();
        if (pid >= 0 || (errno != EAGAIN && errno != ENOMEM) || waited > 3600) break;
        if (link.may_unstart()) {
            *given_back = true;
            return -1;
        }
        sleep_seconds(delay);
    }
    if (pid == 0) {
        JobPipes p = sp.child_ends(link.fd(), not_run);
        exec_job(spec, argv, envp, io.in, io.o1, io.o2, &p);
    }
    int saved = errno;
    sp.forked();
    errno = saved;
    return pid;
}

/* Wait for the job and make its result (times in *ru). told: the server
 * has its start, so the job was let go. */
void wait_result(pid_t pid, bool told, StartPipes& sp, const JobSpec& spec, ServerLink& link, int child_pipe,
                 const JobIo& io, bool foreground, double start_mono, JobResult* r, struct rusage* ru) {
    g_job_pid = pid;
    JobTimer timer(spec.settings, start_mono);
    int st = wait_job(pid, link, child_pipe, ru, &timer);
    if (st >= 0 && WIFEXITED(st)) {
        r->errorlevel = static_cast<signed char>(WEXITSTATUS(st));
    } else {
        r->errorlevel = -1;
        r->signal = st >= 0 && WIFSIGNALED(st) ? WTERMSIG(st) : 0;
    }
    r->how = timer.how;
    if (timer.how != EndHow::Normal) {   // ended by us: E-Level -1, as any job ended by a signal
        r->errorlevel = -1;
        if (r->signal == 0) r->signal = SIGTERM;
    }
    g_job_pid = 0;
    if (foreground) signal(SIGINT, SIG_DFL);   // the job is over: Ctrl-C now stops us
    if (!told && !sp.released()) r->note = "the server could not be told that the job starts: it did not run";
    StartFailure f{};
    if (sp.failure(&f)) {   // the child could not start the job: why, in -i and the output
        r->note = start_failure_text(f, spec);
        if (f.step == kStepChdir) {
            std::string line = "ts: " + r->note + "\n";
            (void)write_all(io.o2, line.data(), line.size());
        }
    }
}

/* The job's end is its own process's exit: gzip finishes when the last
 * writer (maybe a child left in the background) closes the pipe. Usually
 * at once (its input just closed): its times add to the job's; else it is
 * waited for only after the result is reported (finish_gzip). */
void reap_gzip(Output& out, struct rusage* ru) {
    out.gzip_in.reset();
    if (out.gzip_pid <= 0) return;
    int st;
    struct rusage gru {};
    for (int i = 0; i < 20; ++i) {
        if (wait4(out.gzip_pid, &st, WNOHANG, &gru) == out.gzip_pid) {
            out.gzip_pid = -1;
            timeradd(&ru->ru_utime, &gru.ru_utime, &ru->ru_utime);
            timeradd(&ru->ru_stime, &gru.ru_stime, &ru->ru_stime);
            return;
        }
        sleep_seconds(0.005);
    }
}

/* Tell the server the job starts, then let it go: the job begins only once
 * the server has its Started (in its socket, so it reads it even if we die
 * now): a runner killed before this point leaves a job that never ran,
 * which the server queues again. True if the server was told. */
bool report_start(ServerLink& link, pid_t pid, double start, const std::string& path, StartPipes& sp) {
    proto::StartedBody sb{};
    sb.pid = pid > 0 ? pid : 0;
    sb.start_us = to_us(start);
    std::string started = encode(proto::MsgType::Started, sb, path);
    link.set_started(started);
    bool told = link.send(started);
    if (pid > 0 && told) sp.go();
    sp.no_go();   // not told: the child ends at the gate, and the job does not run unknown
    return told;
}
}  // namespace

RunOutcome run_job(const JobSpec& spec, JobId id, ServerLink& link, bool foreground, OutputFile* ready) {
    RunOutcome outcome;
    auto argv = c_array(spec.argv);
    auto envp = c_array(spec.env);
    JobIo io;
    open_io(spec, envp.data(), foreground, ready, &io);
    Fd child_r, child_w;
    watch_children(&child_r, &child_w);
    double start = wall_now(), start_mono = mono_now();   // reported; measured
    pid_t pid = -1;
    StartPipes sp;
    std::string why = io.why;
    if (io.ok) {
        if (foreground) {
            struct sigaction si {};
            si.sa_handler = forward_signal;
            sigaction(SIGINT, &si, nullptr);   // no SA_RESTART: the wait loop retries
        }
        // Without its gate the job would begin before the server has its
        // start, and a runner killed meanwhile would leave it to run twice.
        bool given_back = !sp.gated() && link.may_unstart();
        int err = EMFILE;
        if (!given_back) {
            pid = fork_job(spec, argv.data(), envp.data(), io, link, sp, encode_empty(proto::MsgType::NotRun),
                           &given_back);
            err = errno;
        }
        if (given_back) {
            give_back(link, io.out, err, &outcome);
            return outcome;
        }
        if (pid < 0) why = format("cannot fork: %s", strerror(err));
    }
    bool told = report_start(link, pid, start, io.out.path, sp);
    JobResult& r = outcome.result;
    struct rusage ru {};
    if (pid > 0) {
        wait_result(pid, told, sp, spec, link, child_r.get(), io, foreground, start_mono, &r, &ru);
    } else {
        r.errorlevel = -1;   // no output file or no fork: the job could not start
        r.note = why;
    }
    reap_gzip(io.out, &ru);
    if (pid > 0 && (spec.flags & proto::kMail) && !io.out.path.empty())
        send_mail(spec, id, r.errorlevel, io.out.path, &ru);
    if (pid > 0) run_onfinish(spec, id, r.errorlevel, io.out.path, &ru);
    double end = std::max(start, wall_now());   // reported (a clock set back meanwhile: no end before the start)
    r.real = mono_now() - start_mono;
    r.user = tv_seconds(ru.ru_utime);
    r.sys = tv_seconds(ru.ru_stime);
    outcome.reported = link.send_final(encode(proto::MsgType::Finished, finished_body(r, end), r.note));
    outcome.again = outcome.reported && link.again();
    if (io.out.gzip_pid > 0) {   // not a zombie while the background child lives
        int st;
        (void)wait_for(io.out.gzip_pid, &st, nullptr);
    }
    return outcome;
}

namespace {
/* The deadline the server gives a job its client runs: only a timeout, and its grace. */
void take_timing(const JobSettings& from, JobSettings* to) {
    if (from.timeout() > 0) to->set_timeout(from.timeout());
    if (from.bytes(kSettingKillAfter)) to->set_kill_after(from.kill_after());
}

/* A job run by its client waits for the server's Run; false if it will never
 * come (skipped, removed, or the server was stopped). Run may carry
 * NAME=value settings of the job's environment (its GPUs): *env gets them. */
bool wait_for_run(ServerLink& link, const std::string& socket, std::vector<std::string>* env,
                  JobSettings* settings) {
    env->clear();
    for (;;) {
        Frame f;
        if (!link.receive(&f)) {   // the server went away: come back to the next one
            if (link.gone() || !link.reattach()) return false;
            continue;
        }
        if (f.type == proto::MsgType::Bye) return false;
        proto::RunBody rb{};
        std::string_view tail;
        if (f.type == proto::MsgType::Run && decode_body(f, &rb, &tail)) {
            link.set_run(rb.run);   // which run of the job it is (--retry): said again after a restart
            TailReader t(tail);
            std::string var;
            while (!t.at_end() && t.next(&var)) {
                if (is_gpu_environment(var)) env->push_back(var);   // nothing else, whoever the server is
                JobSettings timing;   // the job's deadline (the queue's TS_TIMEOUT): only that
                if (!var.empty() && var[0] == '\0' && decode_settings(std::string_view(var).substr(1), &timing))
                    take_timing(timing, settings);
            }
            return !rb.skip;
        }
        std::string line;
        TailReader t(f.payload);
        if (f.type == proto::MsgType::Error && t.next(&line))
            fprintf(stderr, "Error in the request: %s", line.c_str());
        else
            fprintf(stderr, "ts: unexpected answer (type %u) from the server at %s.\n", unsigned(f.type),
                    socket.c_str());
        return false;
    }
}
}  // namespace

RunnerEnd run_runner(RunnerStart s) {
    RunnerEnd end;
    ServerLink link(std::move(s.fd), std::move(s.reconnect), s.id);
    link.set_log(s.log);
    if (s.patience_ms > 0) link.set_patience(s.patience_ms);
    if (s.server_runner) link.set_may_unstart();
    link.set_run(s.run);
    std::vector<std::string> vars;
    for (;;) {
        JobSpec spec = s.spec;   // each run: what its own Run gives (its GPUs, its deadline)
        if (s.wait_for_run && !wait_for_run(link, s.socket, &vars, &spec.settings)) {
            end.ran = false;   // (after Again: its next run will not come)
            return end;
        }
        set_environment(&spec.env, vars);
        end.ran = true;
        end.outcome = run_job(spec, s.id, link, s.foreground, s.ready);
        if (!end.outcome.again || !s.wait_for_run) return end;
        s.ready = nullptr;   // (a spare's file: for its first run only)
    }
}
