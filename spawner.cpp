/*
 * spawner.cpp — see spawner.h.
 */
#include "spawner.h"

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connect.h"
#include "frame.h"
#include "jobs.h"
#include "runner.h"

namespace {

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
    JobId id = 0;
    JobSpec spec;
    uid_t owner = 0;
    if (!recv_frame(fd.get(), &f) || f.type != proto::MsgType::Assign ||
        !decode_assign(f, &id, &spec, &owner) || owner != getuid())
        _exit(0);   // a runner runs only jobs of its own uid
    ServerLink link(std::move(fd),
                    [path](std::string* why) { return connect_or_start(path, true, getuid(), why); }, id);
    link.set_log(path + ".error");
    link.set_may_unstart();
    (void)run_job(spec, id, link, false, &ready);
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
