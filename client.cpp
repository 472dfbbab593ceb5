/*
 * client.cpp — the ts command's side of every action.
 *
 * Connecting: the socket is $TS_SOCKET, else $TMPDIR/socket-ts.UID, else
 * /tmp/socket-ts.UID. When nothing answers there, the client takes a lock on
 * <socket>.lock, tries once more (another client may have just started a
 * server), and otherwise binds and listens on the socket itself and only then
 * forks the server (twice, so that init adopts it), handing it the listening
 * socket and a close-on-exec pipe. The server closes the pipe when it is
 * ready, or writes why it could not start. Binding before forking, under the
 * lock, means that any number of clients racing to start a server end with
 * exactly one.
 *
 * Enqueueing sends the whole job (argv, environment, cwd, umask, limits, nice
 * value) and exits once the server has given it an id: a queued job costs no
 * process. Only `-f` stays, to run its job in the foreground when the server
 * says so.
 */
#include "client.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include "frame.h"
#include "jobs.h"
#include "runner.h"
#include "server.h"
#include "util.h"

extern char** environ;

namespace {

using proto::MsgType;

struct Socket {
    std::string path;       // as used for connect/bind (maybe relative)
    std::string abs_path;   // for the server, which runs in /
    bool is_default = false;
};

Socket socket_location() {
    Socket s;
    const char* env = getenv("TS_SOCKET");
    if (env) {
        s.path = env;
    } else {
        const char* tmp = getenv("TMPDIR");
        s.path = format("%s/socket-ts.%u", tmp && *tmp ? tmp : "/tmp", unsigned(getuid()));
        s.is_default = true;
    }
    if (s.path.empty()) die("The server didn't come up.");
    if (s.path.size() >= sizeof(sockaddr_un{}.sun_path))
        die("Cannot create the socket '%s'. Probably, the name is too long.", s.path.c_str());
    s.abs_path = s.path;
    if (s.path[0] != '/') {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd)) s.abs_path = std::string(cwd) + "/" + s.path;
    }
    return s;
}

sockaddr_un address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

/* connect(); an invalid Fd with errno set on failure. */
Fd try_connect(const std::string& path) {
    Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fd;
    sockaddr_un a = address(path);
    int r;
    do {
        r = connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    } while (r != 0 && errno == EINTR);
    if (r != 0) {
        int e = errno;
        fd.reset();
        errno = e;
    }
    return fd;
}

/* make check-valgrind: the server runs under valgrind, which needs an exec:
 * ts --internal-serve LISTEN_FD ERROR_FD SOCKET (see main). Logs go to
 * TS_VALGRIND.PID. Falls back to running the server here if that fails. */
void exec_under_valgrind(const char* log_prefix, const Fd& lfd, const Fd& err_w, const std::string& path) {
    fcntl(lfd.get(), F_SETFD, 0);   // both must survive the exec
    fcntl(err_w.get(), F_SETFD, 0);
    std::string log = format("--log-file=%s.%%p", log_prefix);
    std::string l = format("%d", lfd.get()), e = format("%d", err_w.get());
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return;
    self[n] = '\0';
    // valgrind's own files. The server never uses TMPDIR; its spare runners
    // make their output files there ahead, which then fit no job's TMPDIR:
    // under valgrind every job makes its own file, the slower way.
    setenv("TMPDIR", "/tmp", 1);
    execlp("valgrind", "valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
           "--child-silent-after-fork=no", log.c_str(), self, "--internal-serve", l.c_str(),
           e.c_str(), path.c_str(), static_cast<char*>(nullptr));
    set_cloexec(lfd.get());
    set_cloexec(err_w.get());
}

/* Bind and listen, then fork the server. False with *err if it cannot come up. */
bool start_server(const Socket& s, std::string* err) {
    struct stat st;
    if (lstat(s.path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            *err = format("The socket path exists and it is not a unix socket: %s", s.path.c_str());
            return false;
        }
        if (unlink(s.path.c_str()) != 0 && st.st_uid != getuid()) {   // stale: nobody answered on it
            *err = format("The server didn't come up. (the socket %s belongs to uid %u and nobody "
                          "answers on it: only that user may start its server)",
                          s.path.c_str(), unsigned(st.st_uid));
            return false;
        }
    }
    auto fail = [err](const char* what, int e) {
        *err = format("The server didn't come up. (%s: %s)", what, strerror(e));
        return false;
    };
    Fd lfd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!lfd) return fail("socket", errno);
    sockaddr_un a = address(s.path);
    mode_t old = umask(077);
    int r = bind(lfd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    int e = errno;
    umask(old);
    if (r != 0) return fail("bind", e);
    if (const char* m = getenv("TS_SOCKET_MODE")) {   // a shared queue: e.g. 0660 or 0666
        char* end = nullptr;
        long mode = strtol(m, &end, 8);
        if (!*m || *end || mode < 0 || mode > 0777) {
            unlink(s.path.c_str());
            *err = format("TS_SOCKET_MODE=%s: it must be an octal mode such as 0660", m);
            return false;
        }
        if (chmod(s.path.c_str(), static_cast<mode_t>(mode)) != 0) return fail("chmod", errno);
    }
    if (listen(lfd.get(), SOMAXCONN) != 0) return fail("listen", errno);
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return fail("pipe", errno);
    Fd err_r(p[0]), err_w(p[1]);
    pid_t pid = fork();
    if (pid < 0) return fail("fork", errno);
    if (pid == 0) {
        err_r.reset();
        if (fork() != 0) _exit(0);   // the server is the grandchild, adopted by init
        setsid();
        if (chdir("/") != 0) {
        }
        stdio_to_dev_null();
        close_other_fds({lfd.get(), err_w.get()});
        if (const char* vg = getenv("TS_VALGRIND")) exec_under_valgrind(vg, lfd, err_w, s.abs_path);
        run_server(std::move(lfd), std::move(err_w), s.abs_path);
    }
    err_w.reset();
    lfd.reset();
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::string why, chunk(256, '\0');
    for (;;) {
        ssize_t n = read(err_r.get(), &chunk[0], chunk.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        why.append(chunk.data(), static_cast<size_t>(n));
    }
    if (!why.empty()) {
        *err = format("The server didn't come up. (%s)", why.c_str());
        return false;
    }
    return true;
}

/* -K and nobody answers: empty the queue without starting a server for it
 * (under the lock, so no server can be starting meanwhile). */
bool forget_dead_queue(const Socket& s, std::string* err) {
    struct stat st;
    if (lstat(s.path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
        *err = format("The socket path exists and it is not a unix socket: %s", s.path.c_str());
        return false;
    }
    QueueOwner owner = queue_owner(s.abs_path);
    if (owner.known && owner.uid != getuid() && getuid() != 0) {
        *err = format("The queue at %s belongs to uid %u (%s): only that user or root may empty it.",
                      s.path.c_str(), unsigned(owner.uid), owner.why.c_str());
        return false;
    }
    unlink(s.path.c_str());
    unlink((s.path + ".journal").c_str());
    return true;
}

/* The answer to "who serves this queue" must be its owner: anyone else at
 * the path gets nothing from us, not even the request. */
bool check_server(const Socket& s, int fd, std::string* err) {
    uid_t peer = peer_uid(fd);
    struct stat st;
    if (s.is_default && (peer != getuid() || (stat(s.path.c_str(), &st) == 0 && st.st_uid != getuid()))) {
        *err = format("The uid %u does not own the socket %s.", unsigned(getuid()), s.path.c_str());
        return false;
    }
    // Seen from the peer's side: a server whose uid owns the directory, or
    // else the journal or the lock, is the queue's (a stale file of our own
    // there must not make us refuse the real one).
    QueueOwner owner = queue_owner(s.abs_path, peer, false);
    if (owner.known && peer != owner.uid) {
        *err = format("The server at %s runs as uid %u, but the queue belongs to uid %u (%s): it is "
                      "not the queue's server, and nothing was sent to it.",
                      s.path.c_str(), unsigned(peer), unsigned(owner.uid), owner.why.c_str());
        return false;
    }
    return true;
}

/* Connect, starting a server when none answers (see the file comment). */
Fd open_server(const Socket& s, std::string* err, bool kill_only = false, bool* dead = nullptr) {
    if (!check_socket_dir(s.abs_path, err)) return Fd();
    Fd fd = try_connect(s.path);
    if (!fd && (errno == ENOENT || errno == ECONNREFUSED)) {
        QueueOwner owner = queue_owner(s.abs_path);
        if (owner.known && owner.uid != getuid() && !kill_only) {
            // Nobody else's server may run over this queue, root's included.
            *err = format("The server didn't come up. (the queue at %s belongs to uid %u (%s): only "
                          "that user may start its server)",
                          s.path.c_str(), unsigned(owner.uid), owner.why.c_str());
            return Fd();
        }
        std::string lock_path = s.path + ".lock", why;
        Fd lock = lock_file(lock_path, &why);
        if (!lock) {
            *err = format("The server didn't come up. (%s)", why.c_str());
            return Fd();
        }
        fd = try_connect(s.path);
        if (!fd && (errno == ENOENT || errno == ECONNREFUSED) && kill_only) {
            *dead = forget_dead_queue(s, err);
            return Fd();
        }
        if (!fd && (errno == ENOENT || errno == ECONNREFUSED)) {
            if (!start_server(s, err)) return Fd();
            fd = try_connect(s.path);
            if (!fd) {
                *err = "The server didn't come up.";
                return Fd();
            }
        }
    }
    if (!fd) {
        *err = format("c: cannot connect to the server at '%s': %s", s.path.c_str(), strerror(errno));
        return Fd();
    }
    if (!check_server(s, fd.get(), err)) return Fd();
    return fd;
}

Fd connect_server(const Socket& s) {
    std::string err;
    Fd fd = open_server(s, &err);
    if (!fd) die("%s", err.c_str());
    return fd;
}

}  // namespace
uid_t peer_uid(int fd) {
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return static_cast<uid_t>(-1);
    return cred.uid;
}
namespace {

class Client {
public:
    Client(const Options& o, Socket s, Fd fd, JobSpec spec)
        : o_(o), sock_(std::move(s)), fd_(std::move(fd)), server_uid_(peer_uid(fd_.get())),
          foreign_(server_uid_ != getuid()), spec_(std::move(spec)) {}

    int run();

private:
    void send(const std::string& bytes);
    /* The next frame; dies with `lost` (or a general message) when the
     * server closes first. Warnings on the way are printed on stderr. */
    Frame receive(const char* lost = nullptr);
    /* The next frame that is not a warning; false when the server closed first. */
    bool try_receive(Frame* f);
    /* Send a request that changes nothing and return the first frame of its
     * answer: a server that dies before answering is asked again (a new one
     * is started if need be), a few times, with a growing delay. */
    Frame ask(const std::string& request);
    void receive_checked(const Frame& f);
    bool wait_step(int* id, int* errorlevel);
    [[noreturn]] void request_failed(const Frame& f);
    proto::JobRef job_ref() const;

    int print_text(const std::string& request);
    int enqueue();
    int kill_server();
    int slots();
    int state();
    int output();
    int wait();
    int foreground(JobId id, const JobSpec& spec);
    int background(JobId id, const JobSpec& spec);
    bool wait_for_run(ServerLink& link);
    ServerLink::Connect reconnector() const;
    int simple(const std::string& request);
    int kill_job();
    int follow();

    const Options& o_;
    Socket sock_;
    Fd fd_;
    uid_t server_uid_;   // reconnections accept a server of this uid only
    bool foreign_;       // the server runs under another uid (a shared queue)
    JobSpec spec_;       // the job to queue, made before connecting (TS_ENV may take its time)
    int reconnects_ = 0;
};

// A runner of another user's server waits this long for it to come back.
constexpr int kForeignPatienceMs = 24 * 3600 * 1000;

void Client::send(const std::string& bytes) {
    if (!send_frame(fd_.get(), bytes)) die("Error sending the request to the server.");
}

/* The server's warning (its journal cannot be written), on stderr. */
void print_warning(const Frame& f) {
    std::string line;
    TailReader r(f.payload);
    if (r.next(&line)) fprintf(stderr, "ts: warning: %s\n", printable(line).c_str());
}

bool Client::try_receive(Frame* f) {
    while (recv_frame(fd_.get(), f)) {
        if (f->type != MsgType::Warning || f->version != proto::kVersion) return true;
        print_warning(*f);
    }
    return false;
}

Frame Client::ask(const std::string& request) {
    send(request);
    Frame f;
    std::string why;   // why the last attempt to reach a server failed
    for (int attempt = 1; !try_receive(&f); ++attempt) {
        if (attempt > 3 && !why.empty() && why.compare(0, 10, "The server") == 0) die("%s", why.c_str());
        if (attempt > 3)
            die("The server at %s closed the connection without answering: it stopped, or it is "
                "not a ts server (task-spooler 1.x?).",
                sock_.path.c_str());
        sleep_seconds(0.05 * double(1 << attempt));
        why.clear();
        fd_ = reconnector()(&why);
        if (!fd_ || !send_frame(fd_.get(), request)) fd_.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
    }
    receive_checked(f);
    return f;
}

Frame Client::receive(const char* lost) {
    Frame f;
    if (!try_receive(&f)) {
        if (lost) die("%s", lost);
        die("The server at %s closed the connection without answering: it stopped, or it is "
            "not a ts server (task-spooler 1.x?).",
            sock_.path.c_str());
    }
    receive_checked(f);
    return f;
}

void Client::receive_checked(const Frame& f) {
    if (f.version != proto::kVersion || f.type == MsgType::Version) {
        proto::VersionBody v{};
        if (f.type == MsgType::Version && decode_body(f, &v)) {}
        die("The server at %s runs another version of ts (protocol %u; this ts speaks %u). Move "
            "the queue to this ts with `ts --restart`: it keeps every job.",
            sock_.path.c_str(), unsigned(f.type == MsgType::Version ? v.version : f.version),
            unsigned(proto::kVersion));
    }
}

/* Error replies print as task-spooler's "Error in the request: ..."; anything
 * else unexpected is a protocol error. */
void Client::request_failed(const Frame& f) {
    if (f.type == MsgType::Error) {
        std::string line;
        TailReader r(f.payload);
        if (r.next(&line)) die_with(kExitError, "Error in the request: " + line);
    }
    die("ts: unexpected answer (type %u) from the server at %s.", unsigned(f.type),
        sock_.path.c_str());
}

proto::JobRef Client::job_ref() const {
    proto::JobRef r{};
    r.id = o_.id;
    return r;
}

/* A request answered by Text (the list, -i): print it. */
int Client::print_text(const std::string& request) {
    Frame f = ask(request);
    for (bool first = true;; first = false) {   // a long text comes in pieces (TextPart ... Text)
        if (!first) f = receive();
        std::string text;
        TailReader r(f.payload);
        bool part = f.type == MsgType::TextPart;
        if ((!part && f.type != MsgType::Text) || !r.next(&text) || !r.at_end()) request_failed(f);
        if (fwrite(text.data(), 1, text.size(), stdout) != text.size()) return kExitError;
        if (!part) return kExitOk;
    }
}

/* The server answers Done (whatever its version) just before it exits. */
int Client::kill_server() {
    send(encode_empty(MsgType::KillServer));
    Frame f;
    if (try_receive(&f) && f.type == MsgType::Error) request_failed(f);
    if (f.type != MsgType::Done)
        die("The server at %s did not confirm that it stopped: it is not a ts server "
            "(task-spooler 1.x?); stop it with its own -K.",
            sock_.path.c_str());
    (void)recv_frame(fd_.get(), &f);   // wait for it to close
    return kExitOk;
}

int Client::slots() {
    if (o_.action == Action::SetSlots) {
        proto::Slots s{};
        s.n = o_.slots;
        send(encode(MsgType::SetSlots, s));
        Frame f = receive();
        if (f.type != MsgType::Done) request_failed(f);
        return kExitOk;
    }
    Frame f = ask(encode_empty(MsgType::GetSlots));
    proto::Slots s;
    if (f.type != MsgType::Slots || !decode_body(f, &s)) request_failed(f);
    printf("%i\n", s.n);
    return kExitOk;
}

int Client::state() {
    Frame f = ask(encode(MsgType::State, job_ref()));
    proto::StateBody s;
    if (f.type != MsgType::StateReply || !decode_body(f, &s) || s.state > proto::kHeld)
        request_failed(f);
    static const char* const kNames[] = {"queued", "running", "finished", "skipped", "skipped"};
    printf("%s\n", kNames[s.state]);
    return kExitOk;
}

int Client::output() {
    Frame f = ask(encode(MsgType::Output, job_ref()));
    proto::OutputBody b;
    std::string_view path;
    if (f.type != MsgType::OutputReply || !decode_body(f, &b, &path)) request_failed(f);
    if (o_.action == Action::Pid) {
        printf("%i\n", b.pid);
        return kExitOk;
    }
    if (!b.stored || path.empty()) die("The output is not stored.");
    printf("%.*s\n", int(path.size()), path.data());
    return kExitOk;
}

/* One step of waiting for a job's end: read the next frame on fd_. Returns
 * true with *errorlevel once the job ended. A server that went away (crash,
 * SIGTERM) is reconnected to, starting a new one, and asked again: the queue
 * survives it. Bye (-K) or repeated failures end with task-spooler's error. */
bool Client::wait_step(int* id, int* errorlevel) {
    Frame f;
    if (try_receive(&f)) {
        if (f.version != proto::kVersion || f.type == MsgType::Version) receive_checked(f);
        proto::JobRef r;
        proto::WaitBody w;
        if (f.type == MsgType::Waiting && decode_body(f, &r)) {
            *id = r.id;
            reconnects_ = 0;
            return false;
        }
        if (f.type == MsgType::WaitDone && decode_body(f, &w)) {
            *errorlevel = w.errorlevel;
            return true;
        }
        if (f.type == MsgType::Bye) die("Error in wait_job");
        request_failed(f);
    }
    // Back off (0.1 s doubling to 5 s, about two minutes in all): a server
    // that dies at start is not restarted in a loop.
    if (*id == -1 || ++reconnects_ > 30) die("Error in wait_job");
    sleep_seconds(std::min(5.0, 0.1 * double(1 << std::min(reconnects_ - 1, 6))));
    std::string why;
    fd_ = reconnector()(&why);
    if (!fd_ && !why.empty() && (reconnects_ == 1 || reconnects_ % 10 == 0))
        fprintf(stderr, "ts: waiting for the server to come back: %s\n", why.c_str());
    proto::JobRef r{};
    r.id = *id;
    if (!fd_ || !send_frame(fd_.get(), encode(MsgType::Wait, r))) fd_.reset(open("/dev/null", O_RDONLY));
    return false;
}

int Client::wait() {
    send(encode(MsgType::Wait, job_ref()));
    int id = o_.id, errorlevel = 0;
    while (!wait_step(&id, &errorlevel)) {
    }
    return errorlevel & 255;
}

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

JobSpec job_spec(const Options& o, bool send_env) {
    JobSpec s;
    s.argv = o.command;
    if (send_env)
        for (char** e = environ; *e; ++e) s.env.emplace_back(*e);
    char cwd[4096];
    if (getcwd(cwd, sizeof cwd)) s.cwd = cwd;
    s.label = o.label;
    s.env_info = ts_env_output();
    s.flags = 0;
    if (o.store_output) s.flags |= proto::kStoreOutput;
    if (o.gzip) s.flags |= proto::kGzip;
    if (o.stderr_apart) s.flags |= proto::kStderrApart;
    if (o.mail) s.flags |= proto::kMail;
    if (o.foreground) s.flags |= proto::kForeground;
    if (o.store_output || !o.foreground) s.flags |= proto::kKeepFinished;
    if (o.no_block) s.flags |= proto::kNoBlock;
    s.num_slots = o.num_slots;
    s.depends = o.depends;
    s.depend_on = o.depend_on;
    mode_t m = umask(0);
    umask(m);
    s.umask = m;
    errno = 0;
    int prio = getpriority(PRIO_PROCESS, 0);
    s.nice = errno ? 0 : prio;
    auto limits = std::make_shared<Limits>();
    for (int i = 0; i < proto::kNumLimits; ++i) {
        int res = limit_resource(i);
        struct rlimit rl;
        if (res < 0 || getrlimit(res, &rl) != 0) continue;
        limits->v[i].cur = rl.rlim_cur;
        limits->v[i].max = rl.rlim_max;
        limits->valid |= 1u << i;
    }
    if (limits->valid) s.limits = std::move(limits);
    return s;
}

int Client::enqueue() {
    // A server of another uid cannot run our job as us: we run it ourselves
    // (in the background, as task-spooler does), and it never gets our environment.
    const JobSpec& spec = spec_;
    JobSpec sent = spec;
    if (foreign_) {
        sent.env.clear();
        if (!o_.foreground) sent.flags |= proto::kClientHeld;
    }
    // The submit's own name: sent again after a lost connection, it finds
    // the job it queued instead of queueing a second one.
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != ssize_t(sizeof rnd)) {
        uint64_t x = uint64_t(getpid()) * 0x9E3779B97F4A7C15ull ^ uint64_t(now_seconds() * 1e9);
        for (unsigned char& c : rnd) c = static_cast<unsigned char>(x >>= 3);
    }
    for (unsigned char c : rnd) sent.token += format("%02x", c);
    std::string frame = encode_submit(sent);
    send(frame);
    Frame f;
    for (int attempt = 1; !try_receive(&f); ++attempt) {
        // No answer: the server died, maybe with the job journaled. Ask the
        // next one (started if need be) for the same submit.
        if (attempt > 12) die("Error getting the newjob_ok: the server went away before answering");
        sleep_seconds(std::min(2.0, 0.05 * double(1 << std::min(attempt, 6))));
        std::string why;
        fd_ = reconnector()(&why);
        if (!fd_ || !send_frame(fd_.get(), frame)) fd_.reset(open("/dev/null", O_RDONLY | O_CLOEXEC));
    }
    receive_checked(f);
    if (f.type == MsgType::QueueFull) die_with(kExitQueueFull, "Error, queue full\n");
    if (f.type == MsgType::Bye) die("Error getting the newjob_ok");   // -K while we waited for room
    proto::JobRef r;
    if (f.type != MsgType::SubmitOk || !decode_body(f, &r)) request_failed(f);
    if (o_.store_output) {
        printf("%i\n", r.id);
        fflush(stdout);
    }
    if (o_.foreground) return foreground(r.id, spec);
    if (foreign_) return background(r.id, spec);
    return kExitOk;
}

/* The runner of a job submitted to a server of another uid: detach, wait
 * for the server's Run, run the job as ourselves, report. */
int Client::background(JobId id, const JobSpec& spec) {
    pid_t pid = fork();
    if (pid < 0) die("ts: cannot fork the job's runner: %s", strerror(errno));
    if (pid > 0) return kExitOk;
    setsid();
    set_process_name("ts-runner");
    stdio_to_dev_null();
    ServerLink link(std::move(fd_), reconnector(), id);
    link.set_patience(kForeignPatienceMs);
    link.set_log(sock_.abs_path + ".error");
    if (!wait_for_run(link)) _exit(kExitError);
    (void)run_job(spec, id, link, false);
    _exit(kExitOk);
}

/* -f: wait for our turn, then run the job here with the caller's terminal. */
int Client::foreground(JobId id, const JobSpec& spec) {
    ServerLink link(std::move(fd_), reconnector(), id);
    if (foreign_) link.set_patience(kForeignPatienceMs);
    if (!wait_for_run(link)) return kExitError;
    RunOutcome out = run_job(spec, id, link, true);
    return out.result.errorlevel & 255;
}

/* A client-held job waits for the server's Run; false if it will never come
 * (skipped, removed, or the server was stopped). */
bool Client::wait_for_run(ServerLink& link) {
    for (;;) {
        Frame f;
        if (!link.receive(&f)) {   // the server went away: come back to the next one
            if (link.gone() || !link.reattach()) return false;
            continue;
        }
        if (f.type == MsgType::Bye) return false;
        proto::RunBody rb{};
        if (f.type != MsgType::Run || !decode_body(f, &rb)) request_failed(f);
        return !rb.skip;
    }
}

/* How a runner or waiter reaches the server again after it went away: one
 * of our own uid may be started anew; another user's never is (its owner,
 * or root, starts it). */
ServerLink::Connect Client::reconnector() const {
    std::string path = sock_.abs_path;
    bool may_start = !foreign_;
    uid_t expect = server_uid_;
    return [path, may_start, expect](std::string* why) {
        return connect_or_start(path, may_start, expect, why);
    };
}

/* A request answered by Done or an error. */
int Client::simple(const std::string& request) {
    send(request);
    Frame f = receive();
    if (f.type != MsgType::Done) request_failed(f);
    return kExitOk;
}

/* -k: the server signals the job's process group (it knows whether the job
 * still runs, so a finished job's reused pid is never hit). */
int Client::kill_job() {
    send(encode(MsgType::Kill, job_ref()));
    Frame f = receive();
    proto::OutputBody b;
    if (f.type == MsgType::OutputReply && decode_body(f, &b))
        die("Error: strange PID received: %i", b.pid);
    if (f.type != MsgType::Done) request_failed(f);
    return kExitOk;
}

/* Where -t starts: just after the 11th newline from the end (the last ten
 * lines and any unterminated tail), or 0 when the file has fewer. */
off_t tail_start(int fd) {
    off_t end = lseek(fd, 0, SEEK_END);
    if (end <= 0) return 0;
    char buf[65536];
    int newlines = 0;
    off_t pos = end;
    while (pos > 0) {
        off_t n = std::min<off_t>(pos, sizeof buf);
        pos -= n;
        if (pread(fd, buf, static_cast<size_t>(n), pos) != n) return 0;
        for (off_t i = n - 1; i >= 0; --i)
            if (buf[i] == '\n' && ++newlines == 11) return pos + i + 1;
    }
    return 0;
}

/* Copy what the file has beyond *pos to stdout. False if stdout broke. */
bool copy_new(int fd, off_t* pos) {
    char buf[65536];
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, *pos);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return true;
        if (!write_all(STDOUT_FILENO, buf, static_cast<size_t>(n))) return false;
        *pos += n;
    }
}

/* -t and -c: print the output file (the last ten lines for -t), then follow
 * it until the job ends; the exit status is the job's. */
int Client::follow() {
    bool tail = o_.action == Action::Tail;
    send(encode(MsgType::Output, job_ref()));
    Frame f = receive();
    proto::OutputBody b;
    std::string_view path;
    if (f.type != MsgType::OutputReply || !decode_body(f, &b, &path)) request_failed(f);
    if (!b.stored || path.empty())
        die(tail ? "The output is not stored. Cannot tail." : "The output is not stored. Cannot cat.");
    std::string file(path);
    // Non-blocking, and only a regular file: in a shared queue the path comes
    // from another user's runner, and a FIFO there must not hang us.
    Fd in(open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    struct stat st;
    if (in && (fstat(in.get(), &st) != 0 || !S_ISREG(st.st_mode))) {
        in.reset();
        errno = EINVAL;
    }
    if (!in) {
        int e = errno;
        die("Error: cannot open the output file. errno: %d (%s)", e, strerror(e));
    }
    // Ask for the end of this very job on a second connection.
    fd_ = connect_server(sock_);
    int id = b.id, errorlevel = 0;
    proto::JobRef r{};
    r.id = id;
    send(encode(MsgType::Wait, r));
    off_t pos = tail ? tail_start(in.get()) : 0;
    signal(SIGPIPE, SIG_DFL);   // `ts -c | head` ends at once, like cat
    for (;;) {
        if (!copy_new(in.get(), &pos)) return kExitError;
        // Also watch stdout: when its reader is gone (`| head`), stop now, as a
        // write would, rather than when the job next prints something.
        struct pollfd p[2] = {{fd_.get(), POLLIN, 0}, {STDOUT_FILENO, 0, 0}};
        if (poll(p, 2, 250) <= 0) continue;
        if (p[1].revents & (POLLERR | POLLHUP)) {
            raise(SIGPIPE);
            return kExitError;
        }
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        if (!wait_step(&id, &errorlevel)) continue;
        if (!copy_new(in.get(), &pos)) return kExitError;
        return errorlevel & 255;
    }
}

int Client::run() {
    switch (o_.action) {
    case Action::List: return print_text(encode_empty(MsgType::List));
    case Action::Enqueue: return enqueue();
    case Action::KillServer: return kill_server();
    case Action::GetSlots:
    case Action::SetSlots: return slots();
    case Action::State: return state();
    case Action::Output:
    case Action::Pid: return output();
    case Action::Wait: return wait();
    case Action::Remove: return simple(encode(MsgType::Remove, job_ref()));
    case Action::Urgent: return simple(encode(MsgType::Urgent, job_ref()));
    case Action::Swap: {
        proto::JobPair p{};
        p.a = o_.swap_a;
        p.b = o_.swap_b;
        return simple(encode(MsgType::Swap, p));
    }
    case Action::Clear: return simple(encode_empty(MsgType::Clear));
    case Action::Info: return print_text(encode(MsgType::Info, job_ref()));
    case Action::Kill: return kill_job();
    case Action::Tail:
    case Action::Cat: return follow();
    default: break;
    }
    die("ts: this action is not available yet.");
}

}  // namespace

Fd connect_or_start(const std::string& abs_path, bool may_start, uid_t expect, std::string* why) {
    Socket s;
    s.path = s.abs_path = abs_path;
    std::string err;
    Fd fd = may_start ? open_server(s, &err) : try_connect(s.path);
    if (!fd && err.empty()) err = strerror(errno);
    if (fd && peer_uid(fd.get()) != expect) {   // not the server we worked for
        fd.reset();
        err = "the server there runs as another user";
    }
    if (why) *why = err;
    return fd;
}

namespace {
/* Whether a process is gone (or only a zombie). */
bool process_gone(pid_t pid) { return (kill(pid, 0) != 0 && errno == ESRCH) || is_zombie(pid); }

/* The processes of ours that listen on the queue's socket (the server; the
 * kernel's answer, whatever ts binary it is): /proc/net/unix gives the
 * listening socket bound to the path, /proc/PID/fd who holds it. (The
 * credentials of a connection name the process that called listen(), which
 * for a ts server is the client that started it, long gone.) */
std::vector<pid_t> listeners_of(const Socket& s) {
    std::vector<std::string> inodes;
    std::string net;
    for (int pass = 0; pass < 3; ++pass) {   // read page by page: entries may be skipped while others change
        if (!read_file("/proc/net/unix", &net)) break;
        size_t pos = 0;
        while (pos < net.size()) {
            size_t eol = net.find('\n', pos);
            if (eol == std::string::npos) eol = net.size();
            std::string line = net.substr(pos, eol - pos);
            pos = eol + 1;
            char flags[32] = "", path[4096] = "";
            unsigned long inode = 0;
            if (sscanf(line.c_str(), "%*s %*s %*s %31s %*s %*s %lu %4095s", flags, &inode, path) != 3)
                continue;
            // A name bound relative to a directory (TS_SOCKET=sock) may be
            // another queue's: such a listener must also hold this queue's
            // journal or log open (below).
            if (std::string(flags) == "00010000" && (s.abs_path == path || s.path == path))
                inodes.push_back(format("%c socket:[%lu]", path[0] == '/' ? 'a' : 'r', inode));
        }
    }
    std::vector<pid_t> pids;
    if (inodes.empty()) return pids;
    DIR* proc = opendir("/proc");
    if (!proc) return pids;
    while (struct dirent* e = readdir(proc)) {
        char* end = nullptr;
        long pid = strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end) continue;
        struct stat st;
        std::string dir = format("/proc/%ld/fd", pid);
        if (stat(format("/proc/%ld", pid).c_str(), &st) != 0 || st.st_uid != getuid()) continue;
        DIR* fds = opendir(dir.c_str());
        if (!fds) continue;
        bool absolute = false, relative = false, ours = false;
        while (struct dirent* f = readdir(fds)) {
            char link[4096];
            ssize_t n = readlink((dir + "/" + f->d_name).c_str(), link, sizeof link - 1);
            if (n <= 0) continue;
            link[n] = '\0';
            std::string l(link);
            absolute = absolute || std::find(inodes.begin(), inodes.end(), "a " + l) != inodes.end();
            relative = relative || std::find(inodes.begin(), inodes.end(), "r " + l) != inodes.end();
            ours = ours || l == s.abs_path + ".journal" || l == s.abs_path + ".error";
        }
        closedir(fds);
        if (absolute || (relative && ours)) pids.push_back(static_cast<pid_t>(pid));
    }
    closedir(proc);
    return pids;
}

/* --restart: stop the queue's server, whatever ts it is, keeping its queue,
 * and start a server of this binary. Under the start lock, so that nothing
 * (a runner of the old binary coming back, another client) starts an old
 * server meanwhile: they wait, and then find the new one. */
int restart_server(const Socket& s) {
    std::string err;
    if (!check_socket_dir(s.abs_path, &err)) die("%s", err.c_str());
    QueueOwner owner = queue_owner(s.abs_path);
    if (owner.known && owner.uid != getuid())
        die("The queue at %s belongs to uid %u (%s): only that user may restart its server.",
            s.path.c_str(), unsigned(owner.uid), owner.why.c_str());
    std::string why;
    Fd lock = lock_file(s.path + ".lock", &why);
    if (!lock) die("Cannot restart the server: %s", why.c_str());
    Fd fd = try_connect(s.path);
    if (fd) {
        if (!check_server(s, fd.get(), &err)) die("%s", err.c_str());
        if (peer_uid(fd.get()) != getuid())
            die("The server at %s runs as uid %u: only that user may restart it.", s.path.c_str(),
                unsigned(peer_uid(fd.get())));
        fd.reset();
        std::vector<pid_t> pids = listeners_of(s);
        if (pids.empty()) die("Cannot restart the server at %s: its process cannot be found in /proc.", s.path.c_str());
        // SIGTERM: every ts server exits keeping its journal (and writes TS_SAVELIST).
        for (pid_t p : pids) kill(p, SIGTERM);
        auto stopped = [&] {
            for (pid_t p : pids)
                if (!process_gone(p)) return false;
            return true;
        };
        double deadline = now_seconds() + 10;
        while (!stopped() && now_seconds() < deadline) {
            sleep_seconds(0.01);
        }
        if (!stopped()) {   // the journal is safe whatever happens to it
            for (pid_t p : pids) kill(p, SIGKILL);
            for (int i = 0; i < 500 && !stopped(); ++i) {
                sleep_seconds(0.01);
            }
            if (!stopped()) die("Cannot restart the server at %s: it does not stop.", s.path.c_str());
        }
    }
    if (!start_server(s, &err)) die("%s", err.c_str());
    return kExitOk;
}
}  // namespace

QueueOwner queue_owner(const std::string& socket_path, uid_t prefer, bool prefer_lock) {
    QueueOwner o;
    std::string dir = dir_name(socket_path);
    struct stat st;
    if (stat(dir.c_str(), &st) == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH))) {
        o.known = true;   // only the directory's owner can put a server there
        o.uid = st.st_uid;
        o.why = format("the owner of %s", dir.c_str());
        return o;
    }
    // A shared sticky directory: the journal's owner, else the lock file's. If
    // either belongs to `prefer` (the caller, or the server being checked), the
    // queue is theirs (a file someone else planted beside it then stops that
    // server with a message naming it, rather than taking the queue away).
    for (int pass = 0; pass < 2; ++pass) {
        for (const char* ext : {".journal", ".lock"}) {
            std::string p = socket_path + ext;
            if (lstat(p.c_str(), &st) != 0) continue;
            if (pass == 0 && (st.st_uid != prefer || (ext[1] == 'l' && !prefer_lock))) continue;
            o.known = true;
            o.uid = st.st_uid;
            o.why = format("%s %s", ext[1] == 'j' ? "its journal" : "its lock file", p.c_str());
            return o;
        }
    }
    return o;
}

bool check_socket_dir(const std::string& socket_path, std::string* err) {
    std::string dir = dir_name(socket_path);
    struct stat st;
    if (stat(dir.c_str(), &st) != 0) return true;   // bind or connect says what is wrong
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
        *err = format("The directory %s can be written by other users and is not sticky (mode %04o): "
                      "any of them could replace the queue there. Use a directory that only the "
                      "queue's owner can write (chmod g-w,o-w), or a sticky one (chmod +t).",
                      dir.c_str(), unsigned(st.st_mode & 07777));
        return false;
    }
    return true;
}

int run_client(const Options& o) {
    signal(SIGPIPE, SIG_IGN);
    Socket s = socket_location();
    Fd fd;
    if (o.action == Action::Restart) return restart_server(s);
    if (o.action == Action::KillServer) {   // -K never starts a server just to stop it
        std::string err;
        bool dead = false;
        fd = open_server(s, &err, true, &dead);
        if (dead) return kExitOk;
        if (!fd) die("%s", err.c_str());
    }
    // The job first: TS_ENV runs a command, and a server gives another user's
    // connection only a few seconds to send its request.
    JobSpec spec;
    if (o.action == Action::Enqueue) spec = job_spec(o, true);
    if (!fd) fd = connect_server(s);
    Client c(o, std::move(s), std::move(fd), std::move(spec));
    int rc = c.run();
    fflush(stdout);
    return rc;
}
