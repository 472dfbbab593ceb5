/*
 * client.cpp — the ts command's side of every action: one request, its
 * answer printed, the exit status task-spooler gives. Reaching the server
 * (and starting it) is connect.cpp's; a job's context is captured by
 * context.cpp.
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
#include <sys/wait.h>
#include <unistd.h>

#include "connect.h"
#include "context.h"
#include "frame.h"
#include "jobs.h"
#include "listing.h"
#include "runner.h"
#include "util.h"


namespace {

using proto::MsgType;

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
    bool wait_step(std::string* again, int* errorlevel);
    int wait_for(const std::string& request, bool names_jobs);
    [[noreturn]] void request_failed(const Frame& f);
    proto::JobRef job_ref() const;

    int print_text(const std::string& request);
    int enqueue();
    int kill_server();
    int slots();
    int state();
    int output();
    int wait();
    int requeue();
    int foreground(JobId id, const JobSpec& spec);
    int background(JobId id, const JobSpec& spec);
    RunnerStart runner_start(JobId id, const JobSpec& spec);
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
    const char* closed_hint_ = nullptr;   // why a server may close without answering this request
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
        if (attempt > 3 && closed_hint_)
            die("The server at %s closed the connection without answering: %s", sock_.path.c_str(), closed_hint_);
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
    // Only a ts server holds the queue's guard: one that holds it and then
    // ends without an answer was killed while it stopped, and is no 1.x server.
    bool ours = guard_holder(sock_.abs_path).held;
    send(encode_empty(MsgType::KillServer));
    Frame f;
    bool answered = try_receive(&f);
    if (answered && f.type == MsgType::Error) request_failed(f);
    if (!answered && ours)
        die("The server at %s ended before it confirmed that it stopped (was it killed?): its queue may "
            "still be in its journal; run ts -K again to empty it.",
            sock_.path.c_str());
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
    const char* name = nullptr;
    if (f.type == MsgType::StateReply && decode_body(f, &s)) name = state_name(proto::WireState(s.state));
    if (!name) request_failed(f);
    printf("%s\n", name);
    return kExitOk;
}

int Client::output() {
    Frame f = ask(encode(MsgType::Output, job_ref()));
    proto::OutputBody b;
    std::string_view path;
    if (f.type != MsgType::OutputReply || !decode_body(f, &b, &path)) request_failed(f);
    if (o_.action == Action::Pid) {
        if (b.pid <= 0 && b.pid_unknown)   // started, but the pid its runner reported was not kept
            die("The pid of job %i is not known (the queue's log says why).", b.id);
        printf("%i\n", b.pid);
        return kExitOk;
    }
    if (!b.stored || path.empty()) die("The output is not stored.");
    printf("%.*s\n", int(path.size()), path.data());
    return kExitOk;
}

/* One step of waiting for a job's end (or start, or several jobs): read the
 * next frame on fd_. Returns true with *errorlevel once the wait is over.
 * Waiting or WaitingFor says what to ask again (*again) if the server goes
 * away (crash, SIGTERM): it is reconnected to, starting a new one, and asked
 * again: the queue survives it. Bye (-K) or repeated failures end with
 * task-spooler's error. */
bool Client::wait_step(std::string* again, int* errorlevel) {
    Frame f;
    if (try_receive(&f)) {
        if (f.version != proto::kVersion || f.type == MsgType::Version) receive_checked(f);
        proto::JobRef r;
        proto::WaitBody w;
        std::vector<int32_t> ids;
        if (f.type == MsgType::Waiting && decode_body(f, &r)) {
            *again = encode(o_.action == Action::WaitStart ? MsgType::WaitStart : MsgType::Wait, r);
            reconnects_ = 0;
            return false;
        }
        if (f.type == MsgType::WaitingFor && decode_ids(f.payload, &ids, SIZE_MAX)) {
            *again = encode_empty(MsgType::WaitList, encode_ids(ids));
            reconnects_ = 0;
            return false;
        }
        if (f.type == MsgType::WaitDone && decode_body(f, &w)) {
            // A job that timed out: 124, as timeout(1) exits.
            *errorlevel = w.how == uint8_t(EndHow::TimedOut) ? kExitTimedOut : w.errorlevel;
            return true;
        }
        if (f.type == MsgType::Bye) die("Error in wait_job");
        request_failed(f);
    }
    // Back off (0.1 s doubling to 5 s, about two minutes in all): a server
    // that dies at start is not restarted in a loop.
    if (again->empty() || ++reconnects_ > 30) die("Error in wait_job");
    sleep_seconds(std::min(5.0, 0.1 * double(1 << std::min(reconnects_ - 1, 6))));
    std::string why;
    fd_ = reconnector()(&why);
    if (!fd_ && !why.empty() && (reconnects_ == 1 || reconnects_ % 10 == 0))
        fprintf(stderr, "ts: waiting for the server to come back: %s\n", why.c_str());
    if (!fd_ || !send_frame(fd_.get(), *again)) fd_.reset(open("/dev/null", O_RDONLY));
    return false;
}

/* Send a waiting request, and wait until it is answered: the exit status.
 * A request that names its jobs is asked again as it is after a lost
 * connection; "the last job" and --wait-all only once the server said what
 * they mean (Waiting, WaitingFor). */
int Client::wait_for(const std::string& request, bool names_jobs) {
    send(request);
    std::string again = names_jobs ? request : std::string();
    int errorlevel = 0;
    while (!wait_step(&again, &errorlevel)) {
    }
    return errorlevel & 255;
}

/* -w [id], -w 3,4,5, --wait-all, --wait-start=ID. */
int Client::wait() {
    if (o_.action == Action::WaitAll) return wait_for(encode_empty(MsgType::WaitAll), false);
    if (o_.action == Action::WaitStart) return wait_for(encode(MsgType::WaitStart, job_ref()), true);
    if (o_.wait_ids.empty()) return wait_for(encode(MsgType::Wait, job_ref()), o_.id != -1);
    std::vector<int32_t> ids(o_.wait_ids.begin(), o_.wait_ids.end());
    return wait_for(encode_empty(MsgType::WaitList, encode_ids(ids)), true);
}

/* --requeue=ID, --requeue=failed: the new ids, one a line. */
int Client::requeue() {
    closed_hint_ = "it runs an older ts, without --requeue (`ts --restart` moves the queue to this ts), "
                   "or it stopped.";
    proto::JobPair p{};
    p.a = o_.requeue_failed ? -1 : o_.id;
    p.b = o_.requeue_failed ? 1 : 0;
    send(encode(MsgType::Requeue, p));   // a change: never sent twice
    Frame f = receive();
    std::string text;
    TailReader r(f.payload);
    if (f.type != MsgType::Text || !r.next(&text) || !r.at_end()) request_failed(f);
    fputs(text.c_str(), stdout);
    return kExitOk;
}

/* The job the options describe, in the caller's context. */
JobSpec job_spec(const Options& o, bool send_env) {
    JobSpec s;
    s.argv = o.command;
    s.label = o.label;
    s.flags = 0;
    if (o.store_output) s.flags |= proto::kStoreOutput;
    if (o.gzip) s.flags |= proto::kGzip;
    if (o.stderr_apart) s.flags |= proto::kStderrApart;
    if (o.mail) s.flags |= proto::kMail;
    if (o.foreground) s.flags |= proto::kForeground;
    if (o.store_output || !o.foreground) s.flags |= proto::kKeepFinished;
    if (o.no_block) s.flags |= proto::kNoBlock;
    s.num_slots = o.num_slots;
    if (o.gpus > 0) {
        s.settings.set_gpus(o.gpus);
        if (o.gpu_mem) s.settings.set_gpu_mem(o.gpu_mem);
        if (!o.num_slots_given) s.num_slots = 0;   // a GPU job takes GPUs, and slots only if asked
    }
    s.depends = o.depends;
    s.depend_on = o.depend_on;
    s.settings.set_ids(kSettingDepends, {o.more_depends.begin(), o.more_depends.end()});
    s.settings.set_ids(kSettingAfter, {o.after.begin(), o.after.end()});
    s.settings.set_held(o.hold);
    if (o.delay > 0) s.settings.set_not_before(wall_now() + o.delay);   // the wall clock, as the server reads it
    else if (o.at > 0) s.settings.set_not_before(o.at);
    if (o.timeout > 0) s.settings.set_timeout(o.timeout);
    // TS_TIMEOUT is the queue's: told to the server, which warns if the queue's differs.
    if (double d = 0; o.timeout == 0 && getenv("TS_TIMEOUT") && parse_duration(getenv("TS_TIMEOUT"), &d) &&
                      d >= 0.001)
        s.settings.set_u64(kSettingClientTimeout, uint64_t(d * 1000 + 0.5));
    if (o.kill_after > 0) s.settings.set_kill_after(o.kill_after);
    if (o.retries > 0) s.settings.set_retries(o.retries);
    if (o.unique) s.settings.set_u32(kSettingUnique, 1);
    capture_context(&s, send_env);
    return s;
}

int Client::enqueue() {
    // A server of another uid cannot run our job as us: we run it ourselves
    // (in the background, as task-spooler does), and it never gets our environment.
    const JobSpec& spec = spec_;
    JobSpec sent = spec;
    if (foreign_) {
        sent.env.clear();
        if (!o_.foreground) sent.flags |= proto::kRunByClient;
    }
    if (foreign_ || o_.foreground) sent.flags |= proto::kTakesRunEnv;   // we run it: Run may give it GPUs
    // The submit's own name: sent again after a lost connection, it finds
    // the job it queued instead of queueing a second one.
    unsigned char rnd[16];
    if (getrandom(rnd, sizeof rnd, 0) != ssize_t(sizeof rnd)) {
        uint64_t x = uint64_t(getpid()) * 0x9E3779B97F4A7C15ull ^ uint64_t(wall_now() * 1e9);
        for (unsigned char& c : rnd) c = static_cast<unsigned char>(x >>= 3);
    }
    for (unsigned char c : rnd) sent.token += format("%02x", c);
    std::string frame = encode_submit(sent);
    send(frame);
    Frame f;
    for (int attempt = 1; !try_receive(&f); ++attempt) {
        // No answer: the server died, maybe with the job journaled. Ask the
        // next one (started if need be) for the same submit.
        if (attempt > 12 && !sent.settings.empty())   // a server of an older ts drops a job with settings
            die("Error getting the newjob_ok: the server went away before answering (a server of "
                "an older ts closes the connection on -G and --gpu-mem: `ts --restart` moves the queue "
                "to this ts)");
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
    if (f.type == MsgType::Duplicate && decode_body(f, &r)) {   // --unique
        printf("%i\n", r.id);
        fflush(stdout);
        fprintf(stderr, "ts: job %i of yours has the same command and is queued or running: nothing was "
                        "queued.\n", r.id);
        return kExitDuplicate;
    }
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
    RunnerEnd end = run_runner(runner_start(id, spec));
    _exit(end.ran ? kExitOk : kExitError);
}

/* -f: wait for our turn, then run the job here with the caller's terminal. */
int Client::foreground(JobId id, const JobSpec& spec) {
    RunnerStart s = runner_start(id, spec);
    s.foreground = true;
    s.log.clear();
    RunnerEnd end = run_runner(std::move(s));
    if (end.ran && end.outcome.result.how == EndHow::TimedOut) return kExitTimedOut;
    return end.ran ? end.outcome.result.errorlevel & 255 : kExitError;
}

/* This client as the runner of its job (it waits for the server's Run). */
RunnerStart Client::runner_start(JobId id, const JobSpec& spec) {
    RunnerStart s;
    s.id = id;
    s.spec = spec;
    s.fd = std::move(fd_);
    s.reconnect = reconnector();
    s.socket = sock_.abs_path;
    s.log = sock_.abs_path + ".error";
    s.wait_for_run = true;
    if (foreign_) s.patience_ms = kForeignPatienceMs;
    return s;
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
    proto::JobRef r = job_ref();
    r.pad = uint32_t(o_.signal);   // --signal (0: SIGTERM)
    send(encode(MsgType::Kill, r));
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
    int errorlevel = 0;
    proto::JobRef r{};
    r.id = b.id;
    std::string again = encode(MsgType::Wait, r);
    send(again);
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
        if (!wait_step(&again, &errorlevel)) continue;
        if (!copy_new(in.get(), &pos)) return kExitError;
        return errorlevel & 255;
    }
}

int Client::run() {
    if (o_.signal && o_.action != Action::Kill) die("--signal goes with -k: ts -k ID --signal=SIG.");
    switch (o_.action) {
    case Action::List: return print_text(encode_empty(MsgType::List));
    case Action::Enqueue: return enqueue();
    case Action::KillServer: return kill_server();
    case Action::GetSlots:
    case Action::SetSlots: return slots();
    case Action::State: return state();
    case Action::Output:
    case Action::Pid: return output();
    case Action::Wait:
    case Action::WaitAll:
    case Action::WaitStart: return wait();
    case Action::Requeue: return requeue();
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
    case Action::GpuList:
        closed_hint_ = "it runs an older ts, without --gpu-list (`ts --restart` moves the queue to this ts), "
                       "or it stopped.";
        return print_text(encode_empty(MsgType::GpuList));
    case Action::Drain:
    case Action::Resume: {
        closed_hint_ = "it runs an older ts, without --drain (`ts --restart` moves the queue to this ts), "
                       "or it stopped.";
        proto::Slots b{};
        b.n = o_.action == Action::Drain ? 1 : 0;
        return print_text(encode(MsgType::Drain, b));
    }
    case Action::Hold:
    case Action::Release: {
        closed_hint_ = "it runs an older ts, without --hold (`ts --restart` moves the queue to this ts), "
                       "or it stopped.";
        proto::HoldBody b{};
        b.id = o_.id;
        b.hold = o_.action == Action::Hold ? 1 : 0;
        b.all = o_.release_all ? 1 : 0;
        return print_text(encode(MsgType::Hold, b));
    }
    case Action::Kill: return kill_job();
    case Action::Cancel:
        closed_hint_ = "it runs an older ts, without --cancel (`ts --restart` moves the queue to this ts), "
                       "or it stopped.";
        return print_text(encode(MsgType::Cancel, job_ref()));
    case Action::Tail:
    case Action::Cat: return follow();
    default: break;
    }
    die("ts: this action is not available yet.");
}

}  // namespace

int run_client(const Options& o) {
    signal(SIGPIPE, SIG_IGN);
    Socket s = socket_location();
    Fd fd;
    if (o.action == Action::Restart || o.action == Action::Reconfigure)
        return restart_server(s, o.action == Action::Reconfigure);
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
