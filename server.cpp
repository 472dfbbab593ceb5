/*
 * server.cpp — the queue server.
 *
 * One thread, one poll() over: the listening socket, a self-pipe fed by the
 * signal handlers (SIGCHLD, SIGTERM, SIGINT, SIGHUP), and every connection.
 * Each connection is non-blocking with an input and an output buffer; only
 * complete frames are dispatched, through kHandlers, which also checks each
 * body's size. A malformed or oversized frame marks that connection dead and
 * nothing else; dead connections are erased after the round, never during it.
 * After the round's messages, one scheduling pass starts every job that fits.
 *
 * A connection is a plain client (one request, one reply, then closed by the
 * server), a waiter (-w: the reply comes when the job ends), or a runner: a
 * socketpair to a runner process the server forked, or a `ts -f` client that
 * runs its own job when the server sends Run.
 */
#include "server.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <unordered_map>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "connect.h"
#include "frame.h"
#include "jobs.h"
#include "journal.h"
#include "listing.h"
#include "runner.h"
#include "spawner.h"

namespace {

using proto::MsgType;

int g_sig_fd = -1;

void on_signal(int sig) {
    int saved = errno;
    unsigned char c = static_cast<unsigned char>(sig);
    (void)!write(g_sig_fd, &c, 1);
    errno = saved;
}

/* A long answer (-l, -i) made as its reader takes it: at most about
 * kStreamHigh bytes of it wait in the connection's buffer, whatever the
 * size of the queue and however slowly (or never) the reader reads. */
struct TextStream {
    std::string text;            // made; text[sent..] is not sent yet
    size_t sent = 0;
    std::vector<JobId> ids;      // list lines still to make (jobs gone meanwhile are left out)
    size_t next = 0;
};

struct Conn {
    Fd fd;
    std::string in, out;
    bool dead = false;
    bool lost = false;                  // conn_lost has run for it
    bool close_after_flush = false;
    uid_t uid = static_cast<uid_t>(-1);
    bool trusted = false;               // the server's uid or root: no per-user bounds
    double idle_deadline = 0;           // another user's connection that has not asked anything yet
    double partial_deadline = 0;        // half a frame is buffered: the rest must come by then
    std::unique_ptr<TextStream> stream;
    size_t pending = 0;                 // bytes of the stream counted in user_pending_
    std::optional<JobId> runner_of;     // runs (or will run) this job
    bool spawned = false;               // a runner of the server's (not a job run by its client)
    pid_t pid = 0;                      // of the connecting process (SO_PEERCRED)
    std::optional<JobId> waiting_for;   // -w
    std::optional<JobId> awaiting_room;          // submitted while the queue was full: no id yet
    uint16_t version = proto::kVersion; // of its frames: an older runner gets answers in its own
    bool ack_pending = false;           // its job's end is not on disk yet: Done comes once it is
};

class Server {
public:
    Server(Fd listener, std::string path, bool harness = false);
    [[noreturn]] void run();
    void round(int timeout);
    /* For ServerHarness: a connection from a client of this uid. */
    void add_conn(Fd fd, uid_t uid);
    bool stopped() const { return stopped_; }
    std::string list() const { return list_text(queue_); }
    const std::string& startup_error() const { return startup_error_; }

    void on_kill_server(Conn& c, const Frame& f);
    void on_list(Conn& c, const Frame& f);
    void on_submit(Conn& c, const Frame& f);
    void on_state(Conn& c, const Frame& f);
    void on_output(Conn& c, const Frame& f);
    void on_wait(Conn& c, const Frame& f);
    void on_set_slots(Conn& c, const Frame& f);
    void on_get_slots(Conn& c, const Frame& f);
    void submitted(Conn& c, JobId id);
    void resubmitted(Conn& c, Job& j);
    void restored();
    void check_detached();
    void end_job(JobId id, const JobResult& r, double end);
    Conn* runner_conn(JobId id);
    bool may_manage(Conn& c, const Job& j, const char* what);
    bool may_admin(Conn& c, const char* what);
    void on_remove(Conn& c, const Frame& f);
    void on_urgent(Conn& c, const Frame& f);
    void on_swap(Conn& c, const Frame& f);
    void on_info(Conn& c, const Frame& f);
    void on_clear(Conn& c, const Frame& f);
    void on_kill(Conn& c, const Frame& f);
    void on_attach(Conn& c, const Frame& f);
    void on_started(Conn& c, const Frame& f);
    void on_finished(Conn& c, const Frame& f);
    void on_spare(Conn& c, const Frame& f);
    void on_unstarted(Conn& c, const Frame& f);
    Conn* idle_spare() const { return idle_spare_ && !idle_spare_->dead ? idle_spare_ : nullptr; }
    void configure();
    bool open_log();
    bool may_serve();
    bool admit(Conn& c);
    bool may_queue(Conn& c, const JobSpec& spec);
    void check_deadlines(double now, int* timeout);
    void reply_text(Conn& c, std::string text, std::vector<JobId> ids = {});
    void pump(Conn& c);
    void refused(uid_t uid, const char* why);
    void log_other(uid_t uid, const std::string& line);
    void end_stream(Conn& c);
    bool charge_unread(Conn& c, size_t bytes);
    bool writable(Conn& c, const char* outcome = "nothing was changed");
    void recover_journal(double now);
    void resources_short(JobId id, const char* what, int err);

private:
    void accept_all();
    void read_conn(Conn& c);
    void dispatch(Conn& c, const Frame& f);
    void flush(Conn& c);
    void reply(Conn& c, const std::string& bytes, bool last = true);
    void error(Conn& c, const std::string& line);
    void drain_signals();
    void schedule();
    void spawn_runner(Job& j);
    void fork_runner(Job& j);
    void assign(Conn& spare, Job& j);
    void top_up_spares();
    void spawner_gone(const char* why);
    void check_unassigned();
    void wake_waiters(JobId id, const JobResult& r);
    void conn_lost(Conn& c);
    Job* lookup(const Conn& c, int id, bool last_added);
    Job* lookup_run(Conn& c, int id);
    void log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
    void shutdown(int code);   // exits, except in a harness
    void save_list();

    Queue queue_;
    Fd listener_;
    Fd sig_r_, sig_w_;
    std::string path_;
    std::vector<std::unique_ptr<Conn>> conns_;
    bool accepting_ = true;
    double accept_logged_ = -60;  // accept failed for lack of descriptors: logged then
    std::string startup_error_;
    std::optional<Journal> journal_;
    uid_t uid_ = getuid();
    bool unlinked_ = false;   // -K removed the socket already
    // A harness (fuzzer, tests) has no listener, forks nothing, signals nothing and never exits.
    bool harness_ = false;
    bool stopped_ = false;
    std::vector<pollfd> pfds_;
    double reattach_deadline_ = 0;   // until then, runners of restored jobs may come back
    Spawner spawner_;                  // forks spare runners (spawner.h); none: fork them here
    int spares_asked_ = 0;             // spares asked of the spawner that have not come yet
    Conn* idle_spare_ = nullptr;       // the one spare runner waiting for Assign
    std::deque<JobId> unassigned_;     // started jobs waiting for a spare runner
    double unassigned_since_ = 0;
    Fd log_fd_;                        // opened once: the log works when descriptors run out
    int slots_ = 0;                    // TS_SLOTS, for a queue that the journal does not give
    // Bounds on what other users may hold (the owner's queue is bounded by memory only).
    size_t user_max_jobs_ = 1000;                // TS_USER_MAXJOBS: queued and running jobs
    size_t user_max_size_ = size_t(64) << 20;    // TS_USER_MAXSIZE: bytes of their jobs
    size_t others_conns_ = 0;                    // connections of other users, all together
    size_t others_max_conns_ = 1000;             // leaves descriptors for the owner and runners
    std::unordered_map<uid_t, size_t> user_input_;   // bytes buffered, per other user
    std::unordered_map<uid_t, size_t> user_pending_; // bytes of answers not read yet, per other user
    double other_logged_ = 0;        // log_other: when, and how many lines left out since
    size_t others_unlogged_ = 0;
    std::deque<std::string> log_backlog_;   // lines the log could not take (a full disk), kept a while
    size_t log_dropped_ = 0;
    double next_recover_ = 0;        // the journal is failing: when to try writing again
    double recover_delay_ = 0.25;
    double start_after_ = 0;         // no descriptors or processes: no job starts before then
    double start_delay_ = 0;
    std::string short_of_;           // what was missing (logged once per shortage)
    double short_logged_ = -60;      // ... and at most once a minute
    bool short_said_ = false;        // this shortage was logged
    std::string crash_after_submit_; // TS_TEST_CRASH_AFTER_SUBMIT: a test's fault, one-shot
    size_t acks_pending_ = 0;        // runners waiting for Done until the journal works
};

// Bounds on another user's connections (design.md "Trust").
constexpr size_t kUserMaxConns = 32;            // plain connections (not a job's runner) per uid
constexpr uint32_t kUserMaxFrame = 4u << 20;    // a request of another user
constexpr uint32_t kRunnerMaxFrame = 64u << 10; // what another user's runner reports
constexpr size_t kUserMaxInput = 16u << 20;     // buffered input of one uid, all connections
constexpr double kIdleLimit = 10.0;             // to send a first request, or the rest of a frame
constexpr size_t kFdReserve = 128;              // descriptors kept for the owner and runners
constexpr size_t kStreamHigh = 256u << 10;      // a long answer is made in pieces of this size
constexpr size_t kUserMaxPending = 64u << 20;   // answers (-i text, list ids) one uid has not read

// What a connection is: a client asking once (request), or a runner
// reporting on its job (runner; Attach makes one, Spare is the spawner's).
enum Role : uint8_t { kRequest, kChange, kRunner, kOther };

struct Handler {
    MsgType type;
    size_t body;      // exact size, or minimum size when tail
    bool tail;
    Role role;        // kChange: a request that changes the queue (refused while the journal fails)
    bool old_ok;      // also served to peers of kOldestRunnerVersion (runners and waiters of the release before)
    void (Server::*fn)(Conn&, const Frame&);
};

const Handler kHandlers[] = {
    {MsgType::KillServer, 0, false, kRequest, true, &Server::on_kill_server},
    {MsgType::List, 0, false, kRequest, false, &Server::on_list},
    {MsgType::Submit, sizeof(proto::Submit), true, kChange, false, &Server::on_submit},
    {MsgType::State, sizeof(proto::JobRef), false, kRequest, false, &Server::on_state},
    {MsgType::Output, sizeof(proto::JobRef), false, kRequest, false, &Server::on_output},
    {MsgType::Wait, sizeof(proto::JobRef), false, kRequest, true, &Server::on_wait},
    {MsgType::SetSlots, sizeof(proto::Slots), false, kChange, false, &Server::on_set_slots},
    {MsgType::GetSlots, 0, false, kRequest, false, &Server::on_get_slots},
    {MsgType::Remove, sizeof(proto::JobRef), false, kChange, false, &Server::on_remove},
    {MsgType::Urgent, sizeof(proto::JobRef), false, kChange, false, &Server::on_urgent},
    {MsgType::Swap, sizeof(proto::JobPair), false, kChange, false, &Server::on_swap},
    {MsgType::Info, sizeof(proto::JobRef), false, kRequest, false, &Server::on_info},
    {MsgType::Clear, 0, false, kChange, false, &Server::on_clear},
    {MsgType::Kill, sizeof(proto::JobRef), false, kRequest, false, &Server::on_kill},
    {MsgType::Attach, sizeof(proto::AttachBody), false, kOther, true, &Server::on_attach},
    {MsgType::Started, sizeof(proto::StartedBody), true, kRunner, true, &Server::on_started},
    {MsgType::Finished, sizeof(proto::FinishedBody), true, kRunner, true, &Server::on_finished},
    {MsgType::Spare, 0, false, kOther, false, &Server::on_spare},
    {MsgType::Unstarted, sizeof(proto::Slots), false, kRunner, false, &Server::on_unstarted},
};

const Handler* handler_of(MsgType t) {
    for (const Handler& h : kHandlers)
        if (h.type == t) return &h;
    return nullptr;
}

double us_to_s(int64_t us) { return double(us) / 1e6; }

// How long restored jobs wait for their runner or -f client to come back
// (a live server-spawned runner is waited for as long as it lives).
constexpr double kReattachGrace = 5.0;
// How long a started job waits for a spare runner before the server forks one.
constexpr double kSpareWait = 2.0;

Server::Server(Fd listener, std::string path, bool harness)
    : listener_(std::move(listener)), path_(std::move(path)), harness_(harness) {
    if (!open_log() || !may_serve()) return;
    // Then, while this process is small (before the journal is read), the spawner.
    if (!harness_ && !start_spawner(path_, &spawner_))
        log("cannot start the spawner (%s): runners are forked by the server", strerror(errno));
    int p[2];
    if (pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) die("ts: cannot create a pipe: %s", strerror(errno));
    sig_r_.reset(p[0]);
    sig_w_.reset(p[1]);
    if (!harness_) {
        g_sig_fd = sig_w_.get();
        struct sigaction sa {};
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
        sigemptyset(&sa.sa_mask);
        for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaction(s, &sa, nullptr);
        set_nonblock(listener_.get());
        set_cloexec(listener_.get());
    }
    signal(SIGPIPE, SIG_IGN);
    configure();
    if (!startup_error_.empty()) return;
    const char* use_journal = getenv("TS_JOURNAL");   // 0: keep the queue in memory only
    bool journal_off = harness_ || (use_journal && std::string(use_journal) == "0");
    const char* sync = getenv("TS_FSYNC");   // 1: every record is on disk before the answer
    journal_.emplace(journal_off ? std::string() : path_ + ".journal", &queue_,
                     [this](const std::string& m) { log("%s", printable(m).c_str()); },
                     sync && std::string(sync) == "1");
    if (!journal_->refused().empty()) {
        startup_error_ = format("cannot use the journal: %s", journal_->refused().c_str());
        return;
    }
    if (journal_->replayed_anything()) {
        restored();   // the journal's slot count wins over TS_SLOTS
    } else if (slots_ > 0) {
        queue_.set_max_slots(slots_);
        journal_->slots(slots_);
    }
    top_up_spares();   // a spare ready for the first job
}

/* The log, <socket>.error: opened once, and only if it is a file of ours
 * (never a link, a FIFO or another user's file planted next to the socket). */
bool Server::open_log() {
    std::string why;
    log_fd_ = open_private(path_ + ".error", O_WRONLY | O_APPEND | O_CREAT, &why);
    if (!log_fd_) startup_error_ = format("cannot use the log: %s", why.c_str());
    return bool(log_fd_);
}

/* No server runs over a queue of another uid, root's included. */
bool Server::may_serve() {
    if (harness_) return true;
    std::string why;
    if (!check_socket_dir(path_, &why)) {
        startup_error_ = why;
        return false;
    }
    QueueOwner owner = queue_owner(path_);
    if (owner.known && owner.uid != uid_) {
        startup_error_ = format("the queue at %s belongs to uid %u (%s): only that user may start "
                                "its server",
                                path_.c_str(), unsigned(owner.uid), owner.why.c_str());
        return false;
    }
    return true;
}

/* Size with an optional K, M or G; 0 when it is not one. */
static size_t parse_size(const char* s) {
    char* end = nullptr;
    unsigned long long n = strtoull(s, &end, 10);
    if (end == s) return 0;
    switch (*end) {
    case 'k': case 'K': n <<= 10; ++end; break;
    case 'm': case 'M': n <<= 20; ++end; break;
    case 'g': case 'G': n <<= 30; ++end; break;
    default: break;
    }
    return *end ? 0 : static_cast<size_t>(n);
}

/* The server's settings from its environment, read once. */
void Server::configure() {
    if (const char* s = getenv("TS_SLOTS")) {
        slots_ = std::abs(atoi(s));
        if (slots_ < 1) log("TS_SLOTS=%s ignored: it must be a number of at least 1", s);
    }
    struct rlimit rl;
    if (const char* s = getenv("TS_MAXCONN")) {
        // task-spooler's limit: max_conn connections, max_conn - 5 queued jobs.
        long n = std::min(1000, std::abs(atoi(s)));
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            static_cast<rlim_t>(n) > rl.rlim_cur)
            n = static_cast<long>(rl.rlim_cur) - 5;
        if (n < 1) {
            startup_error_ = format("TS_MAXCONN=%s: it must be at least 1", s);
            return;
        }
        queue_.set_max_jobs(static_cast<size_t>(std::max(1L, n - 5)));
    }
    if (const char* s = getenv("TS_TEST_CRASH_AFTER_SUBMIT")) crash_after_submit_ = s;
    if (const char* s = getenv("TS_MAXFINISHED"))
        queue_.set_max_finished(static_cast<size_t>(std::abs(atoi(s))));
    if (const char* s = getenv("TS_USER_MAXJOBS")) {
        char* end = nullptr;
        long n = strtol(s, &end, 10);
        if (*s && !*end && n >= 0) user_max_jobs_ = static_cast<size_t>(n);
        else log("TS_USER_MAXJOBS=%s ignored: it must be a number", s);
    }
    if (const char* s = getenv("TS_USER_MAXSIZE")) {
        if (size_t n = parse_size(s)) user_max_size_ = n;
        else log("TS_USER_MAXSIZE=%s ignored: it must be a size such as 64M", s);
    }
    // Descriptors: as many as allowed, and some always kept for the owner and runners.
    if (!harness_ && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t want = std::min<rlim_t>(rl.rlim_max, 65536);
        if (rl.rlim_cur < want) {
            rl.rlim_cur = want;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
        size_t n = rl.rlim_cur == RLIM_INFINITY ? 65536 : size_t(rl.rlim_cur);
        others_max_conns_ = n > 2 * kFdReserve ? n - kFdReserve : n / 2;
    }
}

/* After a restart: jobs that were running wait for their runners to come
 * back; -f jobs wait for their clients; overflow submitters are gone. */
void Server::restored() {
    reattach_deadline_ = now_seconds() + kReattachGrace;
    // Overflow jobs wait, like running ones, for their submitters to ask again
    // (the same submit: see resubmitted); check_detached ends the others.
    for (JobId id : queue_.active()) {
        Job* j = queue_.find(id);
        // Another user's job runs in that user's own process, whatever the file says.
        if (j->spec.uid != uid_) j->spec.flags |= proto::kRunByClient;
        if (j->state == JobState::Queued && j->spec.run_by_client()) j->awaiting_client = true;
    }
    for (JobId id : queue_.overflow()) {   // an overflow -f or other user's job: not let in before its client is back
        Job* j = queue_.find(id);
        if (j->spec.uid != uid_) j->spec.flags |= proto::kRunByClient;
        if (j->spec.run_by_client()) j->awaiting_client = true;
    }
    log("queue restored from the journal: %zu jobs", queue_.size());
}

void Server::log(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string msg = vformat(fmt, ap);
    va_end(ap);
    time_t t = time(nullptr);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
    std::string line = format("%s ts server %d: %s\n", when, int(getpid()), msg.c_str());
    if (!log_fd_) return;
    // A full disk takes the log too: keep the last lines, and write them when it has room again.
    while (!log_backlog_.empty()) {
        std::string& old = log_backlog_.front();
        if (log_dropped_) {
            std::string gap = format("(%zu earlier lines of the log were lost: the disk was full)\n",
                                     log_dropped_);
            if (!write_all(log_fd_.get(), gap.data(), gap.size())) break;
            log_dropped_ = 0;
        }
        if (!write_all(log_fd_.get(), old.data(), old.size())) break;
        log_backlog_.pop_front();
    }
    if (log_backlog_.empty() && write_all(log_fd_.get(), line.data(), line.size())) return;
    log_backlog_.push_back(std::move(line));
    if (log_backlog_.size() > 200) {
        log_backlog_.pop_front();
        ++log_dropped_;
    }
}

void Server::run() {
    for (;;) {
        int timeout = accepting_ ? -1 : 100;   // after EMFILE, retry accept shortly
        if (reattach_deadline_ != 0 || !unassigned_.empty()) timeout = timeout < 0 ? 500 : std::min(timeout, 500);
        // A failing journal is tried again at next_recover_; else a start put
        // off for lack of resources waits until start_after_ (never a wait of
        // 0: a time already past is taken care of by this round).
        double wake = !journal_->ok() || journal_->pending() ? next_recover_ : start_after_;
        if (wake != 0) {
            int ms = std::max(1, static_cast<int>((wake - now_seconds()) * 1000) + 1);
            timeout = timeout < 0 ? ms : std::min(timeout, ms);
        }
        round(timeout);
    }
}

/* One turn of the loop: poll, read and dispatch, drop dead connections,
 * then schedule once. */
void Server::round(int timeout) {
    std::vector<pollfd>& pfds = pfds_;
    {
        check_deadlines(now_seconds(), &timeout);
        pfds.clear();
        pfds.push_back({sig_r_.get(), POLLIN, 0});
        pfds.push_back({listener_.get(), short(accepting_ ? POLLIN : 0), 0});
        for (auto& c : conns_)
            pfds.push_back({c->fd.get(), short(POLLIN | (c->out.empty() ? 0 : POLLOUT)), 0});
        int n = poll(pfds.data(), pfds.size(), timeout);
        if (n < 0 && errno != EINTR) {
            log("poll: %s", strerror(errno));
            shutdown(1);
        }
        accepting_ = true;
        if (pfds[0].revents) drain_signals();
        if (pfds[1].revents & POLLIN) accept_all();
        for (size_t i = 2; i < pfds.size(); ++i) {
            Conn& c = *conns_[i - 2];
            if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) read_conn(c);
            if (!c.dead && (pfds[i].revents & POLLOUT)) flush(c);
        }
        // A lost runner wakes its waiters, which then die too: sweep until every
        // dead connection has been seen, so that none leaves uncounted.
        for (bool again = true; again;) {
            again = false;
            for (size_t i = 0; i < conns_.size(); ++i)   // by index: conn_lost may add a runner's
                if (Conn& c = *conns_[i]; c.dead && !c.lost) {
                    c.lost = true;
                    conn_lost(c);
                    again = true;
                }
        }
        conns_.erase(std::remove_if(conns_.begin(), conns_.end(),
                                    [](const std::unique_ptr<Conn>& c) { return c->dead; }),
                     conns_.end());
        check_detached();
        check_unassigned();
        recover_journal(now_seconds());
        schedule();
        journal_->maybe_compact(queue_, now_seconds());
    }
}

/* A failing journal is tried again now and then (sooner after a client's
 * change was refused: see writable); once it works, the runners whose
 * results it now holds hear Done. */
void Server::recover_journal(double now) {
    bool failing = !journal_->ok() || journal_->pending();
    if (failing) {
        if (now < next_recover_) return;
        if (!journal_->recover(queue_)) {
            next_recover_ = now + recover_delay_;
            recover_delay_ = std::min(recover_delay_ * 2, 2.0);
            return;
        }
    }
    recover_delay_ = 0.25;
    next_recover_ = 0;
    if (acks_pending_ == 0) return;
    acks_pending_ = 0;
    for (auto& c : conns_)
        if (c->ack_pending && !c->dead) {
            c->ack_pending = false;
            reply(*c, encode_empty(MsgType::Done));
        }
}

/* A change may be made only if the journal can record it: else the client
 * hears why, and nothing changes. */
bool Server::writable(Conn& c, const char* outcome) {
    bool ok = (journal_->ok() && !journal_->pending()) || journal_->recover(queue_);
    if (ok && journal_->room()) return true;
    error(c, format("the queue's journal cannot be written: %s; %s.\n", journal_->why().c_str(), outcome));
    return false;
}

void Server::accept_all() {
    for (int i = 0; i < 64; ++i) {
        int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                accepting_ = false;   // back off; poll again in a moment
                double now = now_seconds();   // at most once a minute, not every 100 ms
                if (now - accept_logged_ >= 60) {
                    log("accept: %s: new connections wait until descriptors are free", strerror(errno));
                    accept_logged_ = now;
                }
            }
            return;
        }
        auto c = std::make_unique<Conn>();
        c->fd.reset(fd);
        struct ucred cred {};
        socklen_t len = sizeof cred;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            c->uid = cred.uid;
            c->pid = cred.pid;
        }
        if (admit(*c)) conns_.push_back(std::move(c));
    }
}

/* Another user may hold only so many connections that are not a job's
 * runner, and all other users together leave descriptors for the owner. */
bool Server::admit(Conn& c) {
    c.trusted = c.uid == uid_ || c.uid == 0;
    if (c.trusted) return true;
    size_t plain = 0;
    for (const auto& o : conns_)
        if (o->uid == c.uid && !o->runner_of && !o->dead) ++plain;
    if (plain >= kUserMaxConns || others_conns_ >= others_max_conns_) {
        refused(c.uid, plain >= kUserMaxConns ? "too many connections of this user"
                                              : "too many connections of other users");
        return false;   // closed: it never waits in the backlog
    }
    ++others_conns_;
    c.idle_deadline = now_seconds() + kIdleLimit;
    return true;
}

/* Connections of other users that sent nothing, or half a frame, for too
 * long are closed; the poll timeout wakes the loop for the next deadline. */
void Server::check_deadlines(double now, int* timeout) {
    double next = 0;
    for (auto& c : conns_) {
        for (double d : {c->idle_deadline, c->partial_deadline}) {
            if (d == 0 || c->dead) continue;
            if (now >= d) {
                c->dead = true;
                next = now;   // closed at the end of this round: do not wait in poll first
                if (!c->trusted) refused(c->uid, "no whole request within 10 s");
            } else if (next == 0 || d < next) {
                next = d;
            }
        }
    }
    if (next == 0) return;
    int ms = next <= now ? 0 : static_cast<int>((next - now) * 1000) + 1;
    if (*timeout < 0 || ms < *timeout) *timeout = ms;
}

/* A request or connection of another user refused. */
void Server::refused(uid_t uid, const char* why) {
    log_other(uid, format("uid %u: connection closed: %s", unsigned(uid), why));
}

/* A line about what another user did: at most one every 10 s (a hostile
 * user must not fill the owner's disk), with the count of those left out. */
void Server::log_other(uid_t uid, const std::string& line) {
    if (uid == uid_ || uid == 0) {
        log("%s", line.c_str());
        return;
    }
    double now = now_seconds();
    if (now - other_logged_ < 10) {
        ++others_unlogged_;
        return;
    }
    if (others_unlogged_) log("%s (and %zu lines about other users left out)", line.c_str(), others_unlogged_);
    else log("%s", line.c_str());
    other_logged_ = now;
    others_unlogged_ = 0;
}

void Server::read_conn(Conn& c) {
    char buf[65536];
    for (int round = 0; round < 16 && !c.dead; ++round) {
        ssize_t n = ::read(c.fd.get(), buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) c.dead = true;
            break;
        }
        if (n == 0) {
            c.dead = true;
            break;
        }
        if (!c.trusted) {   // what one other user may have buffered, all connections together
            size_t& mine = user_input_[c.uid];
            if (mine + size_t(n) > kUserMaxInput) {
                refused(c.uid, "more than 16 MiB of requests buffered");
                c.dead = true;
                break;
            }
            mine += size_t(n);
        }
        c.in.append(buf, static_cast<size_t>(n));
        size_t off = 0;
        while (!c.dead) {
            // Another user's frame must be small; a runner reports only a little.
            uint32_t limit = c.trusted ? proto::kMaxFrame : c.runner_of ? kRunnerMaxFrame : kUserMaxFrame;
            Frame f;
            size_t used = 0;
            ParseStatus st = parse_frame(std::string_view(c.in).substr(off), &f, &used, limit);
            if (st == ParseStatus::Incomplete) break;
            if (st == ParseStatus::TooBig) {
                c.dead = true;
                break;
            }
            off += used;
            dispatch(c, f);
        }
        c.in.erase(0, off);
        if (!c.trusted) user_input_[c.uid] -= off;
    }
    // Half a frame: the rest must come soon (a stalled sender holds nothing for long).
    if (c.in.empty()) c.partial_deadline = 0;
    else if (!c.trusted && c.partial_deadline == 0) c.partial_deadline = now_seconds() + kIdleLimit;
}

void Server::dispatch(Conn& c, const Frame& f) {
    if (c.close_after_flush || c.stream) return;   // one request per connection: ignore extra frames
    const Handler* h = handler_of(f.type);
    // A runner or waiter of an older ts (its messages have not changed) is
    // served in its own version; anything else of another version is told ours.
    if (f.version != proto::kVersion && f.type != MsgType::KillServer &&
        !(f.version == proto::kOldestRunnerVersion && h && h->old_ok)) {
        proto::VersionBody v{};
        v.version = proto::kVersion;
        reply(c, encode(MsgType::Version, v));
        return;
    }
    if (!h || (h->tail ? f.payload.size() < h->body : f.payload.size() != h->body) ||
        (h->role == kRunner) != c.runner_of.has_value() ||   // runner messages on runner connections only
        c.waiting_for || c.awaiting_room) {
        c.dead = true;   // unknown type, wrong size or out of place
        return;
    }
    if (f.type != MsgType::KillServer) c.version = f.version;
    // While the journal cannot be written, every client hears it on stderr
    // (a change it asks for is refused with the reason instead).
    if (h->role == kRequest && !journal_->ok() && c.version == proto::kVersion) {
        TailWriter t;
        t.add(format("the queue's journal cannot be written: %s; changes to the queue are refused "
                     "until it can be written again",
                     journal_->why().c_str()));
        c.out += encode_empty(MsgType::Warning, t.str());
    }
    (this->*h->fn)(c, f);
    c.idle_deadline = 0;   // it asked: what it waits for now has its own bounds
}

void Server::flush(Conn& c) {
    for (;;) {
        while (!c.out.empty()) {
            ssize_t n = ::send(c.fd.get(), c.out.data(), c.out.size(), MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK) c.dead = true;
                return;
            }
            c.out.erase(0, static_cast<size_t>(n));
        }
        if (!c.stream) break;
        pump(c);   // the reader took what there was: make the next piece of a long answer
    }
    if (c.close_after_flush) c.dead = true;
}

/* Answer with a text (-l, -i) of any length: one Text frame when it is
 * short, else TextPart frames made as the reader takes them, then Text. */
void Server::reply_text(Conn& c, std::string text, std::vector<JobId> ids) {
    if (!c.trusted && !charge_unread(c, text.size() + ids.size() * sizeof(JobId))) {
        flush(c);
        return;
    }
    c.stream = std::make_unique<TextStream>();
    c.stream->text = std::move(text);
    c.stream->ids = std::move(ids);
    pump(c);
    flush(c);
}

/* Another user's answer now holds this many bytes (its text, its list of
 * ids): counted against what that user may leave unread. False, and the
 * connection closed, past it. */
bool Server::charge_unread(Conn& c, size_t bytes) {
    size_t& pending = user_pending_[c.uid];
    pending -= c.pending;
    c.pending = 0;
    if (pending + bytes > kUserMaxPending) {
        refused(c.uid, "too many unread answers");
        c.stream.reset();
        TailWriter t;
        t.add(format("uid %u has too many answers it has not read yet.\n", unsigned(c.uid)));
        c.out += encode_empty(MsgType::Error, t.str());   // sent by the flush that is under way
        c.close_after_flush = true;
        return false;
    }
    pending += bytes;
    c.pending = bytes;
    return true;
}

/* The end of a connection's long answer (sent, or the connection gone). */
void Server::end_stream(Conn& c) {
    c.stream.reset();
    if (c.pending) user_pending_[c.uid] -= c.pending;
    c.pending = 0;
}

void Server::pump(Conn& c) {
    while (c.stream && c.out.size() < kStreamHigh) {
        TextStream& st = *c.stream;
        if (st.sent > 0 && st.sent >= st.text.size() / 2) {   // amortised: each byte moves once at most
            st.text.erase(0, st.sent);
            st.sent = 0;
        }
        while (st.next < st.ids.size() && st.text.size() - st.sent < kStreamHigh)
            if (const Job* j = queue_.find(st.ids[st.next++])) st.text += list_line(*j);
        if (!c.trusted && !charge_unread(c, st.text.size() + st.ids.size() * sizeof(JobId))) return;
        size_t left = st.text.size() - st.sent;
        bool last = st.next >= st.ids.size() && left <= kStreamHigh;
        size_t n = std::min(left, kStreamHigh);
        TailWriter t;
        t.add(std::string_view(st.text).substr(st.sent, n));
        c.out += encode_empty(last ? MsgType::Text : MsgType::TextPart, t.str());
        st.sent += n;
        if (last) {
            end_stream(c);
            c.close_after_flush = true;
        }
    }
}

void Server::reply(Conn& c, const std::string& bytes, bool last) {
    size_t at = c.out.size();
    c.out += bytes;
    if (c.version != proto::kVersion && bytes.size() >= sizeof(proto::Header))   // an older runner
        std::memcpy(&c.out[at], &c.version, sizeof c.version);
    if (last) c.close_after_flush = true;
    flush(c);
}

void Server::error(Conn& c, const std::string& line) {
    TailWriter t;
    t.add(line);
    reply(c, encode_empty(MsgType::Error, t.str()));
}

void Server::drain_signals() {
    unsigned char sigs[64];
    bool child = false;
    for (;;) {
        ssize_t n = ::read(sig_r_.get(), sigs, sizeof sigs);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; ++i) {
            if (sigs[i] == SIGCHLD) child = true;
            else if (sigs[i] == SIGTERM || sigs[i] == SIGINT) {
                log("got signal %d, exiting", sigs[i]);
                if (journal_->pending() && !journal_->compact(queue_))
                    log("changes held in memory could not be written: the journal has the queue as "
                        "it was before them (%s)", strerror(errno));
                if (sigs[i] == SIGTERM) save_list();
                shutdown(1);
            }
        }
    }
    // Runners report over their connection; reaping only clears the zombies.
    if (child) {
        pid_t pid;
        while ((pid = waitpid(-1, nullptr, WNOHANG)) > 0)
            if (pid == spawner_.pid) spawner_gone("it ended");
    }
}

/* TS_SAVELIST: on SIGTERM, append the list as a shell script. */
void Server::save_list() {
    const char* path = getenv("TS_SAVELIST");
    if (!path || !*path) return;
    std::string why;
    Fd fd = open_private(path, O_WRONLY | O_APPEND | O_CREAT, &why);
    std::string text = savelist_text(queue_, uid_);
    if (!fd) log("cannot write TS_SAVELIST: %s", why.c_str());
    else if (!write_all(fd.get(), text.data(), text.size()))
        log("cannot write TS_SAVELIST %s: %s", path, strerror(errno));
}

void Server::shutdown(int code) {
    if (harness_) {   // the fuzzer and the tests go on with the next input
        stopped_ = true;
        return;
    }
    if (!unlinked_) unlink(path_.c_str());
    _exit(code);
}

/* Confirm with Done, in our version's header: the client accepts it from any version. */
void Server::on_kill_server(Conn& c, const Frame&) {
    if (!may_admin(c, "stop the server")) return;
    // Hold the start lock until we exit: a client that finds no server waits for
    // it, and then starts a fresh one that finds no journal.
    // (Not for long: the loop must not wait on a lock someone keeps.)
    std::string why;
    Fd lock = lock_file(path_ + ".lock", &why, 200);
    journal_->remove_file();   // -K means a fresh, empty queue
    unlink(path_.c_str());     // no new client reaches us from now on
    unlinked_ = true;
    // Runners, -f clients and waiters must not bring a server back for this queue.
    std::string bye = encode_empty(MsgType::Bye);
    for (auto& o : conns_)
        if (o.get() != &c && (o->runner_of || o->waiting_for || o->awaiting_room)) {
            o->out += bye;
            flush(*o);
        }
    std::string done = encode_empty(MsgType::Done);
    int fl = fcntl(c.fd.get(), F_GETFL);
    if (fl >= 0) fcntl(c.fd.get(), F_SETFL, fl & ~O_NONBLOCK);
    (void)send_frame(c.fd.get(), done);
    if (fl >= 0) fcntl(c.fd.get(), F_SETFL, fl);
    c.dead = true;
    shutdown(0);
}

void Server::on_list(Conn& c, const Frame&) {
    std::vector<JobId> ids(queue_.active().begin(), queue_.active().end());
    ids.insert(ids.end(), queue_.finished_list().begin(), queue_.finished_list().end());
    reply_text(c, list_header(queue_.busy_slots(), queue_.max_slots()), std::move(ids));
}

void Server::on_submit(Conn& c, const Frame& f) {
    JobSpec spec;
    if (!decode_submit(f, &spec)) {
        c.dead = true;
        return;
    }
    // How the job runs is ours to say, from the peer's credentials: a job of
    // another uid runs only in its submitter's own process (run by its client), and
    // its environment, which it never needs here, is not kept.
    spec.uid = c.uid;
    spec.flags &= ~proto::kRunByClient;
    if (c.uid != uid_) {
        spec.flags |= proto::kRunByClient;
        spec.env.clear();
        spec.num_slots = std::max(1, spec.num_slots);   // -N 0 takes a slot all the same
    }
    // The same submit again (its client lost the answer, say to a crash):
    // the job it queued, never a second one.
    if (Job* j = queue_.by_token(spec.token); j && j->spec.uid == c.uid) {
        resubmitted(c, *j);
        return;
    }
    // A setting this server must understand but does not, or a bad value: refused, never ignored.
    if (std::string why; !check_settings(spec.settings, &why)) {
        error(c, why + "; the job was not queued.\n");
        return;
    }
    if (!may_queue(c, spec) || !writable(c, "the job was not queued")) return;
    bool no_block = spec.flags & proto::kNoBlock;
    JobId id = queue_.add(std::move(spec), now_seconds());
    if (!journal_->job(*queue_.find(id), false)) {   // on disk, or not queued at all
        queue_.cancel_add(id);
        error(c, format("the queue's journal cannot be written: %s; the job was not queued.\n",
                        journal_->why().c_str()));
        return;
    }
    if (!crash_after_submit_.empty() && unlink(crash_after_submit_.c_str()) == 0)
        _exit(9);   // a test's fault: journaled, not answered
    if (queue_.find(id)->state == JobState::Overflow) {
        if (no_block) {   // -B: refused; recorded as a job whose runner vanished, as in task-spooler
            end_job(id, Queue::lost_result(), now_seconds());
            reply(c, encode_empty(MsgType::QueueFull));
        } else {
            c.awaiting_room = id;   // answered when there is room (admit_overflow)
        }
        return;
    }
    submitted(c, id);
}

/* A submit sent again: answer as the first time would have. */
void Server::resubmitted(Conn& c, Job& j) {
    log_other(c.uid, format("job %d: its submit came again; answered with the same id", j.id));
    if (j.spec.run_by_client()) {
        if (runner_conn(j.id) || (j.state != JobState::Queued && j.state != JobState::Overflow)) {
            error(c, format("The job %i was queued already, and its client is gone.\n", j.id));
            return;
        }
        j.awaiting_client = false;
    }
    if (j.state == JobState::Overflow) {
        if (j.spec.flags & proto::kNoBlock) {   // -B: refused, as the first time would have
            end_job(j.id, Queue::lost_result(), now_seconds());
            reply(c, encode_empty(MsgType::QueueFull));
            return;
        }
        c.awaiting_room = j.id;
        return;
    }
    bool never_ran = (j.state == JobState::Finished || j.state == JobState::Skipped) && j.start_time == 0;
    if (never_ran && (j.spec.flags & proto::kNoBlock) && j.result.lost.empty()) {   // -B, refused
        reply(c, encode_empty(MsgType::QueueFull));
        return;
    }
    if (never_ran && !j.result.lost.empty()) {   // lost before it ever ran: the submit failed after all
        error(c, format("The job %i was lost before it ran: %s.\n", j.id, j.result.lost.c_str()));
        return;
    }
    submitted(c, j.id);
}

/* Tell the submitter its job's id; a -f client stays for its Run. */
void Server::submitted(Conn& c, JobId id) {
    Job* j = queue_.find(id);
    bool foreground = j && j->spec.run_by_client();
    proto::JobRef r{};
    r.id = id;
    if (foreground) {
        c.runner_of = id;   // the client waits for Run on this connection
        reply(c, encode(MsgType::SubmitOk, r), false);
    } else {
        reply(c, encode(MsgType::SubmitOk, r));
    }
}

/* An id from the command line: -1 means "the last job" (either rule). */
Job* Server::lookup(const Conn& c, int id, bool last_added) {
    if (id == -1 && c.uid == 0) return last_added ? queue_.last_added() : queue_.last_run();
    if (id == -1) return last_added ? queue_.last_added(c.uid) : queue_.last_run(c.uid);
    return queue_.find(id);
}

void Server::on_state(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = lookup(c, r.id, true);
    if (!j) {
        error(c, r.id == -1 ? "The last job cannot be stated.\n"
                            : format("The job %i cannot be stated.\n", r.id));
        return;
    }
    proto::StateBody s{};
    s.state = static_cast<uint8_t>(j->state);
    reply(c, encode(MsgType::StateReply, s));
}

/* The job of -o -p -t -c -k -i (the "last run" rule), or an error reply. */
Job* Server::lookup_run(Conn& c, int id) {
    Job* j = lookup(c, id, false);
    if (!j || (id != -1 && j->state == JobState::Queued)) {
        error(c, id == -1 ? "No jobs.\n" : format("Job %i not finished or not running.\n", id));
        return nullptr;
    }
    if (j->state == JobState::Skipped) {
        error(c, id == -1 ? "The last job was skipped due to a dependency.\n"
                          : format("Job %i was skipped due to a dependency.\n", id));
        return nullptr;
    }
    return j;
}

void Server::on_output(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = lookup_run(c, r.id);
    if (!j) return;
    proto::OutputBody o{};
    o.id = j->id;
    o.pid = j->pid;
    o.stored = j->spec.stores_output() ? 1 : 0;
    o.state = static_cast<uint8_t>(j->state);
    reply(c, encode(MsgType::OutputReply, o, j->output));
}

void Server::on_kill(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = lookup_run(c, r.id);
    if (!j) return;
    if (j->pid <= 0) {   // not started (yet): the client reports the strange pid
        proto::OutputBody o{};
        o.id = j->id;
        o.pid = j->pid;
        reply(c, encode(MsgType::OutputReply, o));
        return;
    }
    if (!may_manage(c, *j, "kill")) return;
    // Only a running job: a finished job's process group may belong to someone else now.
    // Its runner sends the signal, to its own child: the server never signals a
    // pid that a message named (a runner of another user could name any).
    if (j->state == JobState::Running) {
        Conn* r = runner_conn(j->id);
        if (!r) {
            error(c, format("The runner of job %i is not connected (the server restarted): try again "
                            "in a moment.\n", j->id));
            return;
        }
        proto::Slots sig{};
        sig.n = SIGTERM;
        reply(*r, encode(MsgType::Signal, sig), false);
    }
    reply(c, encode_empty(MsgType::Done));
}

void Server::on_info(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = lookup(c, r.id, false);   // any state, when an id is given
    if (!j) {
        error(c, r.id == -1 ? "No jobs.\n" : format("Job %i not finished or not running.\n", r.id));
        return;
    }
    reply_text(c, info_text(*j, now_seconds(), uid_, c.uid));
}

void Server::on_remove(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = lookup(c, r.id, true);
    JobId id = j ? j->id : r.id;
    if (j && !may_manage(c, *j, "remove")) return;
    if (j && !writable(c)) return;
    if (!j || !queue_.remove(id)) {
        error(c, r.id == -1 ? "The last job cannot be removed.\n"
                            : format("The job %i cannot be removed.\n", r.id));
        return;
    }
    journal_->removed(id);
    if (Conn* o = runner_conn(id)) {   // a job run by its client that will never run
        o->runner_of.reset();
        reply(*o, encode_empty(MsgType::Bye));
    }
    JobResult gone;
    gone.errorlevel = -1;
    wake_waiters(id, gone);   // waiters return at once (task-spooler leaves them hanging)
    reply(c, encode_empty(MsgType::Done));
}

void Server::on_urgent(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    JobId id = r.id;
    if (id == -1)   // the caller's newest job (for one user: the tail of the queue)
        if (Job* l = lookup(c, -1, true)) id = l->id;
    Job* j = queue_.find(id);
    if (j && !may_manage(c, *j, "urge")) return;
    if (j && !writable(c)) return;
    // Another user's -u moves their job ahead of their own jobs only.
    bool own_only = !c.trusted;
    JobId before = -1;
    if (!j || !(own_only ? queue_.urgent_among_own(id, &before) : queue_.urgent(id))) {
        error(c, r.id == -1 ? "The last job cannot be urged.\n"
                            : format("The job %i cannot be urged.\n", r.id));
        return;
    }
    if (!own_only) journal_->urgent(id);
    else if (before >= 0) journal_->moved_before(id, before);
    reply(c, encode_empty(MsgType::Done));
}

void Server::on_swap(Conn& c, const Frame& f) {
    proto::JobPair p;
    (void)decode_body(f, &p);
    for (int id : {p.a, p.b})
        if (Job* j = queue_.find(id); j && !may_manage(c, *j, "move")) return;
    if (!writable(c)) return;
    if (!queue_.swap(p.a, p.b)) {
        error(c, format("The jobs %i and %i cannot be swapped.\n", p.a, p.b));
        return;
    }
    journal_->swapped(p.a, p.b);
    reply(c, encode_empty(MsgType::Done));
}

/* Another user's jobs are bounded in number and size (the owner's are not). */
bool Server::may_queue(Conn& c, const JobSpec& spec) {
    if (c.trusted) return true;
    const Queue::Usage& u = queue_.usage(c.uid);
    if (u.waiting >= user_max_jobs_) {
        error(c, format("uid %u has %zu jobs queued or running here, the most that the queue's owner "
                        "allows another user (TS_USER_MAXJOBS=%zu).\n",
                        unsigned(c.uid), u.waiting, user_max_jobs_));
        return false;
    }
    size_t bytes = Queue::spec_bytes(spec);
    if (u.bytes + bytes > user_max_size_) {
        error(c, format("this job (%zu bytes) would take the jobs of uid %u in this queue past %zu "
                        "bytes, the most that the queue's owner allows another user "
                        "(TS_USER_MAXSIZE).\n",
                        bytes, unsigned(c.uid), user_max_size_));
        return false;
    }
    return true;
}

/* Shared queues: a job's owner, the server's owner and root may change a job. */
bool Server::may_manage(Conn& c, const Job& j, const char* what) {
    if (c.uid == j.spec.uid || c.uid == uid_ || c.uid == 0) return true;
    error(c, format("Job %i belongs to uid %u: only its owner, the server's owner (uid %u) or root "
                    "may %s it.\n",
                    j.id, unsigned(j.spec.uid), unsigned(uid_), what));
    return false;
}

/* Only the server's owner and root may change the server itself. */
bool Server::may_admin(Conn& c, const char* what) {
    if (c.uid == uid_ || c.uid == 0) return true;
    error(c, format("Only the server's owner (uid %u) or root may %s.\n", unsigned(uid_), what));
    return false;
}

Conn* Server::runner_conn(JobId id) {
    for (auto& c : conns_)
        if (c->runner_of == id && !c->dead) return c.get();
    return nullptr;
}

/* A runner or -f client is back after a server restart. */
void Server::on_attach(Conn& c, const Frame& f) {
    proto::AttachBody a;
    (void)decode_body(f, &a);
    Job* j = queue_.find(a.id);
    // A runner of ours whose job the journal shows as still queued (the
    // record of its start was lost with a damaged record): it runs, so it is
    // running, rather than started a second time.
    if (j && j->state == JobState::Queued && !j->spec.run_by_client() && a.started && c.uid == uid_ &&
        queue_.start(a.id)) {
        log("job %d: its runner is back, but the journal had it queued: it runs", a.id);
        journal_->start(a.id);
    }
    bool ok = j && (j->state == JobState::Running ||
                    (j->state == JobState::Queued && j->spec.run_by_client() && !a.started));
    // A job run by its client belongs to its submitter; a spawned runner runs as the server's uid.
    if (ok) ok = c.uid == (j->spec.run_by_client() ? j->spec.uid : uid_);
    if (!ok || runner_conn(a.id)) {   // not ours (any more): stop reporting
        reply(c, encode_empty(MsgType::Bye));
        return;
    }
    c.runner_of = a.id;
    c.spawned = !j->spec.run_by_client();
    j->awaiting_client = false;
    // The pid the kernel gives (SO_PEERCRED), not the one the message claims.
    if (c.spawned && c.pid > 0) queue_.set_runner(a.id, c.pid);
    log_other(c.uid, format("job %d: its %s is back", a.id, c.spawned ? "runner" : "client"));
    if (j->state == JobState::Running && !a.started) {   // its Run was lost with the old server
        proto::RunBody rb{};
        rb.id = a.id;
        reply(c, encode(MsgType::Run, rb), false);
    }
}

/* Whether pid may be the job of a runner of uid: the process runs as that
 * user. One already gone cannot be checked, and is taken as one. */
static bool process_of(pid_t pid, uid_t uid) {
    struct stat st;
    if (::stat(format("/proc/%d", int(pid)).c_str(), &st) != 0) return errno == ENOENT;
    return st.st_uid == uid;
}

/* Whether a restored job's runner may still live: the process exists, is
 * ours, and is not a zombie (a runner whose parent died may linger as one). */
static bool runner_alive(pid_t pid) {
    if (pid <= 0 || kill(pid, 0) != 0 || is_zombie(pid)) return false;   // EPERM: someone else's process
    struct stat st;
    if (::stat(format("/proc/%d", int(pid)).c_str(), &st) == 0 && st.st_uid != getuid()) return false;
    return true;
}

/* Restored jobs whose runner or client did not come back. */
void Server::check_detached() {
    if (reattach_deadline_ == 0) return;
    double now = now_seconds();
    bool waiting = false;
    for (JobId id : queue_.overflow()) {
        bool back = false;
        for (auto& c : conns_) back = back || (c->awaiting_room == id && !c->dead);
        if (back) continue;
        if (now < reattach_deadline_) {
            waiting = true;
            continue;
        }
        end_job(id, Queue::lost_result("its submitter was waiting for room in the queue when the server "
                                      "stopped, and did not come back"),
               now);
    }
    std::vector<JobId> ids(queue_.active().begin(), queue_.active().end());
    for (JobId id : ids) {
        Job* j = queue_.find(id);
        if (!j || runner_conn(id)) continue;
        bool restored_running = j->state == JobState::Running;
        if (!restored_running && !j->awaiting_client) continue;
        if (restored_running && !j->spec.run_by_client() && runner_alive(j->runner_pid)) {
            waiting = true;   // alive: it will come back (or we see it die)
            continue;
        }
        if (now < reattach_deadline_) {
            waiting = true;
            continue;
        }
        // Recorded as started, with no runner recorded: wait a while longer
        // (a live runner may be coming back, with its delay of up to 5 s),
        // then it is taken as one that never ran.
        if (restored_running && !j->spec.run_by_client() && j->runner_pid == 0 &&
            now < reattach_deadline_ + 10) {
            waiting = true;
            continue;
        }
        if (restored_running && !j->spec.run_by_client() && j->runner_pid == 0) {
            // Recorded as started, but no runner was ever forked: it never ran.
            log("job %d: never started before the restart; queued again", id);
            (void)queue_.unstart(id);
            journal_->unstarted(id);
            continue;
        }
        log("job %d: its %s did not come back; marked lost", id,
            j->spec.run_by_client() ? "client" : "runner");
        end_job(id,
               Queue::lost_result(j->spec.run_by_client()
                                      ? "the server restarted, and the job's client did not come back"
                                      : "the server restarted, and the job's runner was gone"),
               now);
    }
    if (!waiting) reattach_deadline_ = 0;
}

void Server::on_clear(Conn& c, const Frame&) {
    if (!writable(c)) return;
    if (c.uid == uid_ || c.uid == 0) {
        queue_.clear_finished();
        journal_->cleared();
    } else {   // another user's -C clears that user's finished jobs only
        std::vector<JobId> mine;
        for (JobId id : queue_.finished_list())
            if (queue_.find(id)->spec.uid == c.uid) mine.push_back(id);
        for (JobId id : mine)
            if (queue_.remove(id)) journal_->removed(id);
    }
    reply(c, encode_empty(MsgType::Done));
}

void Server::on_wait(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = lookup(c, r.id, true);
    if (!j) {
        error(c, r.id == -1 ? "The last job cannot be waited.\n"
                            : format("The job %i cannot be waited.\n", r.id));
        return;
    }
    if (j->state == JobState::Finished || j->state == JobState::Skipped) {
        proto::WaitBody w{};
        w.errorlevel = j->result.errorlevel;
        reply(c, encode(MsgType::WaitDone, w));
        return;
    }
    c.waiting_for = j->id;
    proto::JobRef w{};
    w.id = j->id;
    reply(c, encode(MsgType::Waiting, w), false);   // so the client can ask again after a restart
}

void Server::on_set_slots(Conn& c, const Frame& f) {
    proto::Slots s;
    (void)decode_body(f, &s);
    if (!may_admin(c, "change the slots")) return;
    if (!writable(c)) return;
    if (s.n >= 1) {
        queue_.set_max_slots(s.n);
        journal_->slots(s.n);
    }
    reply(c, encode_empty(MsgType::Done));
}

void Server::on_get_slots(Conn& c, const Frame&) {
    proto::Slots s{};
    s.n = queue_.max_slots();
    reply(c, encode(MsgType::Slots, s));
}

void Server::on_started(Conn& c, const Frame& f) {
    proto::StartedBody s;
    std::string_view path;
    (void)decode_body(f, &s, &path);
    Job* j = queue_.find(*c.runner_of);
    if (!j || j->state != JobState::Running) return;
    std::string out(path);
    pid_t pid = s.pid;
    if (c.uid != uid_) {
        // Another user's runner says what it likes: keep only a plain path, and
        // a pid of its own (shown by -p; never signalled by us).
        // (no spaces either: the list's columns are separated by them)
        if (out.size() > 4096 || (!out.empty() && out[0] != '/') || printable(out) != out ||
            out.find(' ') != std::string::npos)
            out.clear();
        if (pid < 0 || (pid > 0 && !process_of(pid, c.uid))) pid = 0;
    }
    queue_.started(j->id, pid, out, us_to_s(s.start_us));
    journal_->started(j->id, pid, out, us_to_s(s.start_us));
    if (pid > 0 && c.spawned && !short_of_.empty()) {   // the end of a shortage
        if (short_said_) log("job %d started: %s is available again", j->id, short_of_.c_str());
        short_of_.clear();
        short_said_ = false;
        start_delay_ = 0;
    }
    // The spare that became this runner is replaced now, not while it was starting the job.
    if (c.spawned) top_up_spares();
}

void Server::on_finished(Conn& c, const Frame& f) {
    proto::FinishedBody b;
    std::string_view note;
    (void)decode_body(f, &b, &note);
    JobId id = *c.runner_of;
    c.runner_of.reset();
    Job* j = queue_.find(id);
    if (!j || j->state != JobState::Running) {
        reply(c, encode_empty(MsgType::Bye));
        return;
    }
    JobResult r = result_of(b);
    r.note.assign(note.substr(0, c.uid == uid_ ? 1000 : 200));   // another user's: shorter
    if (!r.note.empty()) log_other(c.uid, format("job %d: %s", id, printable(r.note).c_str()));
    end_job(id, r, us_to_s(b.end_us));
    schedule();   // the freed slot's next job first: this runner only has to exit
    // Acknowledged once journaled: the runner exits only now, so a result is never lost.
    // (A journal that cannot be written holds it back until it can.)
    if (journal_->pending()) {
        c.ack_pending = true;
        ++acks_pending_;
        return;
    }
    reply(c, encode_empty(MsgType::Done));
}

/* A job ended (or never will run): record it and wake its waiters. */
void Server::end_job(JobId id, const JobResult& r, double end) {
    queue_.end(id, r, end);
    journal_->ended(id, r, end);
    wake_waiters(id, r);
}

/* Wake the job's waiters. */
void Server::wake_waiters(JobId id, const JobResult& r) {
    proto::WaitBody w{};
    w.errorlevel = r.errorlevel;
    std::string bytes = encode(MsgType::WaitDone, w);
    for (auto& c : conns_) {
        if (c->waiting_for == id && !c->dead) {
            c->waiting_for.reset();
            reply(*c, bytes);
        }
    }
}

/* A connection is going away: a runner that did not report loses its job. */
void Server::conn_lost(Conn& c) {
    if (!c.trusted) {
        --others_conns_;
        user_input_[c.uid] -= c.in.size();
        c.in.clear();
        end_stream(c);
    }
    if (&c == idle_spare_) {   // the idle spare ended: have another made
        idle_spare_ = nullptr;
        top_up_spares();
        return;
    }
    if (!c.runner_of && !c.awaiting_room) return;
    JobId id = c.runner_of ? *c.runner_of : *c.awaiting_room;
    c.runner_of.reset();
    c.awaiting_room.reset();
    Job* j = queue_.find(id);
    if (!j || (j->state != JobState::Running && j->state != JobState::Queued)) return;
    log_other(j->spec.uid, format("job %d: its runner quit before reporting the end", id));
    end_job(id,
           Queue::lost_result(j->spec.run_by_client()
                                  ? "its client (the ts that submitted it) went away before "
                                    "reporting the end"
                                  : "its runner ended before reporting the end (it was killed, "
                                    "or could not reach the server)"),
           now_seconds());
}

void Server::schedule() {
    // Nothing starts that the journal cannot record (it could run twice after
    // a crash), nor while descriptors or processes are short.
    if (!journal_->ok() || journal_->pending() || (queue_.busy_slots() < queue_.max_slots() && !queue_.active().empty() && !journal_->room())) return;
    if (start_after_ != 0) {
        if (now_seconds() < start_after_) return;
        start_after_ = 0;
    }
    for (JobId id : queue_.admit_overflow()) {
        journal_->admitted(id);
        for (auto& c : conns_) {
            if (c->awaiting_room == id && !c->dead) {
                c->awaiting_room.reset();
                submitted(*c, id);
            }
        }
    }
    Decisions d = queue_.schedule();
    for (JobId id : d.skipped) {
        journal_->ended(id, skipped_result(), now_seconds());
        if (Conn* c = runner_conn(id)) {   // a job run by its client: tell it to give up
            c->runner_of.reset();
            proto::RunBody rb{};
            rb.id = id;
            rb.skip = 1;
            reply(*c, encode(MsgType::Run, rb));
        }
        wake_waiters(id, skipped_result());
    }
    bool unrecorded = false;
    for (JobId id : d.start) {
        // Recorded before the runner exists: a crash now cannot run it twice.
        // A start that cannot be recorded does not happen.
        if (unrecorded || !journal_->start(id, false)) {
            unrecorded = true;
            (void)queue_.unstart(id);
            continue;
        }
        Job* j = queue_.find(id);
        if (!j->spec.run_by_client() && j->spec.uid == uid_) {   // only our own jobs run here
            spawn_runner(*j);
            continue;
        }
        if (Conn* c = runner_conn(id)) {
            proto::RunBody rb{};
            rb.id = id;
            reply(*c, encode(MsgType::Run, rb), false);
        }
    }
}

/* Start a job's runner: a spare one when there is one (the usual way), else
 * wait for the spare asked of the spawner, else fork it here. */
void Server::spawn_runner(Job& j) {
    if (Conn* spare = idle_spare()) {
        idle_spare_ = nullptr;
        assign(*spare, j);   // its replacement is asked for once the job runs (on_started)
        return;
    }
    if (spawner_.requests) {
        if (unassigned_.empty()) unassigned_since_ = now_seconds();
        unassigned_.push_back(j.id);
        top_up_spares();   // if the spawner turns out to be gone, its runner is forked here then
        return;
    }
    fork_runner(j);
}

/* Hand a started job to an idle spare: its pid is journaled as the job's
 * runner before the job is sent, so a restart waits for that process. */
void Server::assign(Conn& spare, Job& j) {
    spare.runner_of = j.id;
    spare.spawned = true;
    queue_.set_runner(j.id, spare.pid);
    journal_->runner(j.id, spare.pid);
    JobSpec spec = j.spec;
    if (j.env) spec.env = *j.env;
    reply(spare, encode_assign(j.id, spec), false);
}

/* Keep one idle spare, plus one for every job waiting for a spare. */
void Server::top_up_spares() {
    if (!spawner_.requests) return;
    size_t have = static_cast<size_t>(spares_asked_) + (idle_spare() ? 1 : 0);
    size_t want = 1 + unassigned_.size();
    while (have < want) {
        char one = 1;
        ssize_t n = write(spawner_.requests.get(), &one, 1);
        if (n == 1) {
            ++have;
            ++spares_asked_;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;   // it has plenty to do already
        spawner_gone(strerror(errno));
        return;
    }
}

/* A runner of ours could not fork its job (no process or memory now): the
 * job goes back to the queue, and the scheduler waits a while. */
void Server::on_unstarted(Conn& c, const Frame& f) {
    proto::Slots e;
    (void)decode_body(f, &e);
    JobId id = *c.runner_of;
    Job* j = queue_.find(id);
    // Only a runner of ours, before its job started: anything else is a
    // protocol error (the connection closes, and its job is lost as usual).
    if (!c.spawned || c.uid != uid_ || !j || j->state != JobState::Running || j->pid != 0) {
        c.dead = true;
        return;
    }
    c.runner_of.reset();
    resources_short(id, "fork", e.n > 0 ? e.n : EAGAIN);
    reply(c, encode_empty(MsgType::Done));
    top_up_spares();
}

/* A spare runner connected: give it the oldest job waiting for one. */
void Server::on_spare(Conn& c, const Frame&) {
    if (c.uid != uid_ || &c == idle_spare_) {   // only the spawner's children, which run as us
        c.dead = true;
        return;
    }
    if (spares_asked_ > 0) --spares_asked_;
    while (!unassigned_.empty()) {
        JobId id = unassigned_.front();
        unassigned_.pop_front();
        unassigned_since_ = now_seconds();
        Job* j = queue_.find(id);
        if (j && j->state == JobState::Running && !runner_conn(id)) {
            assign(c, *j);
            top_up_spares();
            return;
        }
    }
    // One idle spare is enough: a late one (its job got a runner forked here
    // meanwhile) is sent away, and ends without a job.
    if (idle_spare()) {
        c.dead = true;
        return;
    }
    idle_spare_ = &c;
    top_up_spares();
}

/* The spawner ended or cannot be reached: fork runners here from now on. */
void Server::spawner_gone(const char* why) {
    if (!spawner_.requests) return;
    log("the spawner is gone (%s): runners are forked by the server from now on", why);
    spawner_.requests.reset();
    spares_asked_ = 0;
    check_unassigned();
}

/* Jobs that waited too long for a spare (or whose spawner is gone) get a runner forked here. */
void Server::check_unassigned() {
    if (unassigned_.empty()) return;
    if (spawner_.requests && now_seconds() - unassigned_since_ < kSpareWait) return;
    if (spawner_.requests) log("no spare runner came for %.0f s: forking runners here", kSpareWait);
    std::deque<JobId> ids;
    ids.swap(unassigned_);
    // Spares the spawner was asked for and has forked, but which never came
    // (one died young), are asked for again; requests it has not read yet
    // (it is stopped, or slow) still count, so that they do not pile up.
    int unread = 0;
    if (spawner_.requests && ioctl(spawner_.requests.get(), FIONREAD, &unread) == 0)
        spares_asked_ = std::min(spares_asked_, unread);
    for (JobId id : ids) {
        Job* j = queue_.find(id);
        if (j && j->state == JobState::Running && !runner_conn(id)) fork_runner(*j);
    }
}

/* The runner forked here (harness: no process, the job is lost next round). */
void Server::fork_runner(Job& j) {
    if (start_after_ != 0) {   // short of resources in this very pass: not again now
        resources_short(j.id, nullptr, 0);
        return;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        resources_short(j.id, "socketpair", errno);
        return;
    }
    Fd mine(sv[0]), theirs(sv[1]);
    pid_t pid = harness_ ? 0 : fork();
    if (harness_) {   // no runner: its end closes, and the job is lost at the next round
        theirs.reset();
        pid = 1 << 30;
    }
    if (pid < 0) {
        resources_short(j.id, "fork", errno);
        return;
    }
    if (pid == 0 && !harness_) {
        for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) signal(s, SIG_DFL);
        set_process_name("ts-runner");
        close_other_fds({theirs.get()});
        if (j.env) j.spec.env = *j.env;   // this process's own copy of the job
        std::string path = path_;
        ServerLink link(std::move(theirs),
                        [path](std::string* why) { return connect_or_start(path, true, getuid(), why); },
                        j.id);
        link.set_log(path + ".error");
        link.set_may_unstart();
        (void)run_job(j.spec, j.id, link, false);
        _exit(0);
    }
    queue_.set_runner(j.id, pid);
    journal_->runner(j.id, pid);
    set_nonblock(mine.get());
    auto c = std::make_unique<Conn>();
    c->fd = std::move(mine);
    c->runner_of = j.id;
    c->spawned = true;
    c->uid = getuid();
    c->trusted = true;
    c->pid = pid;
    conns_.push_back(std::move(c));
}

/* A started job whose runner cannot be made now (no descriptors, no
 * processes, no memory) goes back to the queue, in its place, and the
 * scheduler waits a little (longer each time) before it tries again. The log
 * says so once a shortage. */
void Server::resources_short(JobId id, const char* what, int err) {
    if (what) {
        std::string missing = err == EMFILE || err == ENFILE ? "a file descriptor"
                              : err == EAGAIN             ? "a process"
                                                          : "memory";
        double now = now_seconds();
        if (short_of_.empty() && now - short_logged_ >= 60) {   // once a shortage, once a minute at most
            log("job %d cannot start yet (%s: %s): it stays queued, and starts when %s is available "
                "again",
                id, what, strerror(err), missing.c_str());
            short_logged_ = now;
            short_said_ = true;
        }
        short_of_ = missing;
        start_delay_ = start_delay_ == 0 ? 0.05 : std::min(start_delay_ * 2, 2.0);
        start_after_ = now_seconds() + start_delay_;
    }
    if (queue_.unstart(id)) journal_->unstarted(id);
}

void Server::add_conn(Fd fd, uid_t uid) {
    set_nonblock(fd.get());
    auto c = std::make_unique<Conn>();
    c->fd = std::move(fd);
    c->uid = uid;
    if (admit(*c)) conns_.push_back(std::move(c));
}

}  // namespace

struct ServerHarness::Impl {
    Server server;
    explicit Impl(const std::string& path) : server(Fd(), path, true) {}
};

ServerHarness::ServerHarness(const std::string& socket_path) : impl_(new Impl(socket_path)) {}
ServerHarness::~ServerHarness() = default;

Fd ServerHarness::connect(uid_t uid) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Fd();
    impl_->server.add_conn(Fd(sv[0]), uid);
    return Fd(sv[1]);
}

void ServerHarness::round() { impl_->server.round(0); }
bool ServerHarness::stopped() const { return impl_->server.stopped(); }
std::string ServerHarness::list() const { return impl_->server.list(); }

void run_server(Fd listener, Fd err_pipe, const std::string& socket_path) {
    set_process_name("ts-server");
    Server s(std::move(listener), socket_path);
    if (!s.startup_error().empty()) {
        (void)write_all(err_pipe.get(), s.startup_error().data(), s.startup_error().size());
        unlink(socket_path.c_str());
        _exit(1);
    }
    err_pipe.reset();   // ready: the starting client may go on
    s.run();
}
