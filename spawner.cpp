/*
 * spawner.cpp — see spawner.h.
 */
#include "spawner.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <cstring>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connect.h"
#include "frame.h"
#include "gpu.h"
#include "jobs.h"
#include "runner.h"

namespace {

/* The server's own runner of job id, on fd. */
RunnerStart server_runner(const RunnerOrder& order, JobSpec spec, Fd fd, const std::string& path,
                          OutputFile* ready) {
    RunnerStart s;
    s.id = order.id;
    s.run = order.run;
    s.spec = std::move(spec);
    s.fd = std::move(fd);
    s.reconnect = [path](std::string* why) { return connect_or_start(path, true, getuid(), why); };
    s.socket = path;
    s.log = path + ".error";
    s.server_runner = true;
    s.ready = ready;
    return s;
}

/* A spare runner: make the likely output file (in our TMPDIR, which most
 * jobs share with the server; unnamed until a job has it), offer ourselves
 * to the server, run the job it assigns. Ends without a word when the server
 * goes away first. */
[[noreturn]] void run_spare(const std::string& path) {
    set_process_name("ts-runner");
    signal(SIGCHLD, SIG_DFL);   // not the spawner's handler: run_job waits for our job
    OutputFile ready;
    (void)make_unnamed_output_file(output_dir(getenv("TMPDIR")), &ready);
    Fd fd = connect_or_start(path, false, getuid());
    if (!fd) _exit(0);   // no server, or not our server
    if (!send_frame(fd.get(), encode_empty(proto::MsgType::Spare))) _exit(0);
    Frame f;
    RunnerOrder order;
    uid_t owner = 0;
    if (!recv_frame(fd.get(), &f) || f.type != proto::MsgType::Assign ||
        !decode_assign(f, &order.id, &order.spec, &owner, &order.run) || owner != getuid())
        _exit(0);   // a runner runs only jobs of its own uid
    (void)run_runner(server_runner(order, std::move(order.spec), std::move(fd), path, &ready));
    _exit(0);
}

/* Spares and runners leave no zombies behind. They are reaped, rather than
 * left to SA_NOCLDWAIT, so that their CPU time adds up in ours (getrusage,
 * /proc/PID/stat) like that of any process's children. */
void reap(int) {
    int saved = errno;
    while (waitpid(-1, nullptr, WNOHANG) > 0) {
    }
    errno = saved;
}

[[noreturn]] void run_spawner(Fd requests, const std::string& path) {
    set_process_name("ts-spawner");
    for (int s : {SIGTERM, SIGINT}) signal(s, SIG_DFL);
    signal(SIGHUP, SIG_IGN);
    struct sigaction sa {};
    sa.sa_handler = reap;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, nullptr);
    char buf[256];
    for (;;) {
        ssize_t n = read(requests.get(), buf, sizeof buf);
        if (n == 0) _exit(0);   // the server is gone
        if (n < 0) {
            if (errno == EINTR) continue;
            _exit(1);
        }
        for (ssize_t i = 0; i < n; ++i) {
            // A failed fork is not reported: the server stops waiting for the
            // spare after a while and forks the runner itself.
            if (fork() == 0) {
                requests.reset();
                run_spare(path);
            }
        }
    }
}

}  // namespace

namespace {

struct Spawner {
    Fd requests;     // one byte here for each spare wanted (non-blocking)
    pid_t pid = -1;
};

/* Fork the spawner for the server at socket_path. False (errno set) if it cannot. */
bool start_spawner(const std::string& socket_path, Spawner* out) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return false;
    Fd r(p[0]), w(p[1]);
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
        close_other_fds({r.get()});
        (void)w.release();   // closed above
        run_spawner(std::move(r), socket_path);
    }
    set_nonblock(w.get());
    out->requests = std::move(w);
    out->pid = pid;
    return true;
}

class ProcessLauncher : public Launcher {
public:
    explicit ProcessLauncher(std::string path) : path_(std::move(path)) {}
    bool fork_spawner(std::string* why) {
        if (start_spawner(path_, &spawner_)) return true;
        *why = strerror(errno);
        return false;
    }

    /* The runner forked here, a child of the server. */
    bool start(const RunnerOrder& order, LocalRunner* out, LaunchError* why) override {
        int sv[2];
        why->what = "socketpair";
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return failed(why);
        Fd mine(sv[0]), theirs(sv[1]);
        why->what = "fork";
        pid_t p = fork();
        if (p < 0) return failed(why);
        if (p == 0) {
            for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) signal(s, SIG_DFL);
            set_process_name("ts-runner");
            close_other_fds({theirs.get()});
            (void)run_runner(server_runner(order, order.spec, std::move(theirs), path_, nullptr));
            _exit(0);
        }
        out->conn = std::move(mine);
        out->pid = p;
        return true;
    }

    /* A spare, asked of the spawner. */
    Ahead ask_ahead() override {
        if (!spawner_.requests) return lost_ ? Ahead::Lost : Ahead::None;
        for (;;) {
            char one = 1;
            ssize_t n = write(spawner_.requests.get(), &one, 1);
            if (n == 1) return Ahead::Asked;
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return Ahead::Enough;   // it has plenty to do
            int saved = errno;
            drop();
            errno = saved;
            return Ahead::Lost;
        }
    }
    int unread_asks() const override {
        int unread = 0;
        if (!spawner_.requests || ioctl(spawner_.requests.get(), FIONREAD, &unread) != 0) return -1;
        return unread;
    }
    bool reaped(pid_t pid) override {
        if (pid != spawner_.pid || !spawner_.requests) return false;
        drop();
        return true;
    }

private:
    static bool failed(LaunchError* why) {
        why->err = errno;
        return false;
    }
    void drop() {
        spawner_.requests.reset();
        lost_ = true;
    }

    std::string path_;
    Spawner spawner_;
    bool lost_ = false;   // it had a spawner, which is gone
};

}  // namespace

RunnerOrder runner_order(const Job& j) {
    RunnerOrder o;
    o.id = j.id;
    o.spec = j.spec;
    o.run = static_cast<uint16_t>(j.attempts().size());
    if (j.env) o.spec.env = *j.env;
    set_environment(&o.spec.env, j.start_env());   // its GPUs
    return o;
}

std::string encode_order(const RunnerOrder& o) { return encode_assign(o.id, o.spec, o.run); }

std::unique_ptr<Launcher> process_launcher(const std::string& socket_path, std::string* why) {
    auto l = std::make_unique<ProcessLauncher>(socket_path);
    if (!l->fork_spawner(why)) return l;   // no spawner: it forks runners here
    why->clear();
    return l;
}
