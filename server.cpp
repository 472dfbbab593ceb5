/*
 * server.cpp — the queue server's loop, its connections and their roles,
 * restart and re-attach.
 *
 * One thread, one poll() over: the listening socket, a self-pipe fed by the
 * signal handlers (SIGCHLD, SIGTERM, SIGINT, SIGHUP), and every connection.
 * Each connection is non-blocking with an input and an output buffer; only
 * complete frames are dispatched (handlers.cpp). A malformed or oversized
 * frame marks that connection dead and nothing else; dead connections are
 * erased after the round, never during it. After the round's messages, one
 * scheduling pass starts every job that fits; the runner supply
 * (runner_supply.h) gives each of our own jobs its runner. next_wakeup() is
 * the one list of timers the loop waits for.
 *
 * A connection has one role (server_impl.h: Role), set by set_role, which
 * keeps the indexes from a job to its runner and its overflow submitter.
 * What the server owns besides (server_impl.h: Server's fields) are objects
 * of their own files: the ledger, the waits, the runner supply, the GPU
 * broker, the bounds on other users, the queue's files and the log.
 */
#include "server.h"
#include "server_impl.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <unordered_map>
#include <fcntl.h>
#include <memory>
#include <optional>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "config.h"
#include "frame.h"
#include "jobs.h"
#include "journal.h"
#include "listing.h"
#include "place.h"
#include "spawner.h"

using proto::MsgType;

namespace {

int g_sig_fd = -1;

void on_signal(int sig) {
    int saved = errno;
    unsigned char c = static_cast<unsigned char>(sig);
    (void)!write(g_sig_fd, &c, 1);
    errno = saved;
}

}  // namespace

Server::Server(Fd listener, std::string path, ServerConfig cfg, std::unique_ptr<Launcher> harness_launcher)
    : listener_(std::move(listener)), path_(std::move(path)), log_(path_ + ".error"), files_(path_, getuid(), &log_),
      harness_(harness_launcher != nullptr),
      supply_(this, std::move(harness_launcher)), cfg_(std::move(cfg)),
      gpus_(cfg_, queue_, GpuBroker::process_probe(cfg_), [this](const std::string& line) { log("%s", line.c_str()); }) {
    if (!harness_) files_.socket_made();   // the socket the starting client just made for us
    std::string why;
    if (!log_.open(&why)) {
        startup_error_ = format("cannot use the log: %s", why.c_str());
        return;
    }
    if (!may_serve()) return;
    // Then, while this process is small (before the journal is read), the spawner.
    if (!supply_.has_launcher()) {
        std::string why;
        supply_.use(process_launcher(path_, &why));
        if (!why.empty()) log("cannot start the spawner (%s): runners are forked by the server", why.c_str());
    }
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
    bool journal_off = harness_ || !cfg_.journal;
    if (journal_off) configure();   // else once the journal has said what the queue's settings are
    if (!startup_error_.empty()) return;
    journal_.emplace(journal_off ? std::string() : path_ + ".journal", &queue_,
                     [this](const std::string& m) { log("%s", printable(m).c_str()); }, journal_off && cfg_.fsync);
    if (!journal_->refused().empty()) {
        startup_error_ = format("cannot use the journal: %s", journal_->refused().c_str());
        return;
    }
    ledger_.emplace(&queue_, &*journal_);
    ledger_->listen(&waits_);
    ledger_->listen(&supply_);
    if (!journal_off && !settle_settings()) return;
    if (journal_->replayed_anything()) {
        restored();   // the journal's slot count wins over TS_SLOTS
    } else if (cfg_.slots > 0) {
        ledger_->slots(cfg_.slots);
    }
    supply_.top_up();   // a spare ready for the first job
}

/* The guard keeps this queue to one server for as long as this one lives
 * (connect.cpp); without it (another user holds its name) clients find this
 * server through /proc (queue_server). The socket's mode, for when it must
 * be made again. */
void Server::hold_guard(Fd guard) {
    guard_ = std::move(guard);
    if (guard_) set_nonblock(guard_.get());
    else log("this queue's guard (the abstract socket @%s) is held by another process: clients find this "
             "server by its listening socket instead (in /proc), and it makes its socket again within a "
             "second if it is removed", guard_name(path_).c_str());
    files_.read_mode();
}

/* Now and then (and at once when a client finds the socket gone and knocks
 * on the guard): are the socket, journal and log still there (queue_files.h)? */
void Server::check_files(double now) {
    if (!harness_) files_.check(now, &*journal_, queue_, &listener_);
}

/* No server runs over a queue of another uid, root's included. */
bool Server::may_serve() {
    if (harness_) return true;
    std::string why;
    if (!check_socket_dir(path_, &why, uid_)) {
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

/* The queue's settings are its journal's (config.h): what this environment
 * says otherwise is ignored, in the log and on the starting client's stderr
 * (never silently). A journal without them (a new queue, or one of a ts
 * before them), and ts --reconfigure, take this environment's and journal
 * them. Then they are applied (configure); false when the server cannot
 * start with them. */
bool Server::settle_settings() {
    const std::optional<QueueSettings>& journaled = journal_->settings();
    std::vector<SettingChange> changes;
    if (journaled) {
        ServerConfig kept = keep_journaled(cfg_, *journaled, &changes);
        if (!cfg_.take_settings) cfg_ = std::move(kept);
    }
    if (!changes.empty() && !cfg_.take_settings) {
        std::string msg = format("the queue keeps its settings from its journal: %s. To change them, run "
                                 "ts --reconfigure as the queue's owner with the new values in its "
                                 "environment (it restarts the server, keeping the jobs)",
                                 describe_changes(changes).c_str());
        log("%s", msg.c_str());
        startup_notes_.push_back("warning: " + msg + ".");
    }
    configure();
    if (!startup_error_.empty()) return false;
    if (!journaled || cfg_.take_settings) {   // the queue's first start, or ts --reconfigure
        QueueSettings mine = queue_settings(cfg_);
        log("the queue's settings, journaled with it: %s", describe_settings(mine).c_str());
        if (!changes.empty()) {   // said once the server can start with them
            std::string msg = format("the queue's settings were changed by ts --reconfigure: %s",
                                     describe_changes(changes, true).c_str());
            log("%s", msg.c_str());
            startup_notes_.push_back(msg);
        }
        (void)ledger_->settings(mine);   // on failure, the next snapshot has them
    }
    journal_->set_sync(cfg_.fsync);
    return true;
}

/* The settings read at start (config.h): notes to the log, bounds to the queue. */
void Server::configure() {
    // The probe again, with the settings that hold now (the journal's may
    // differ from the environment's); the one made at construction serves a
    // server that stops before this.
    gpus_.set_probe(GpuBroker::process_probe(cfg_));
    for (const std::string& n : cfg_.notes) log("%s", n.c_str());
    if (!cfg_.error.empty()) {
        startup_error_ = cfg_.error;
        return;
    }
    if (cfg_.max_jobs) queue_.set_max_jobs(cfg_.max_jobs);
    queue_.set_max_finished(cfg_.max_finished);
    bounds_.set_job_caps(cfg_.user_max_jobs, cfg_.user_max_size);
    struct rlimit rl;
    // Descriptors: as many as allowed, and some always kept for the owner and runners.
    if (!harness_ && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t want = std::min<rlim_t>(rl.rlim_max, 65536);
        if (rl.rlim_cur < want) {
            rl.rlim_cur = want;
            (void)setrlimit(RLIMIT_NOFILE, &rl);
            (void)getrlimit(RLIMIT_NOFILE, &rl);
        }
        size_t n = rl.rlim_cur == RLIM_INFINITY ? 65536 : size_t(rl.rlim_cur);
        bounds_.set_descriptors(n);
    }
}

/* After a restart: jobs that were running wait for their runners to come
 * back; -f jobs wait for their clients; overflow submitters are gone. */
void Server::restored() {
    reattach_deadline_ = mono_now() + kReattachGrace;
    // Overflow jobs wait, like running ones, for their submitters to ask again
    // (the same submit: see resubmitted); check_detached ends the others.
    for (JobId id : queue_.active()) {
        Job* j = queue_.find(id);
        // Another user's job runs in that user's own process, whatever the file says.
        if (j->spec.uid != uid_) j->spec.flags |= proto::kRunByClient;
        if (j->state == JobState::Queued && j->spec.run_by_client()) j->awaiting_client = true;
        // A running job keeps its GPUs; what they measure settles as after a start.
        if (j->state == JobState::Running)
            gpus_.started_on(j->gpus(), mono_now());
    }
    for (JobId id : queue_.overflow()) {   // an overflow -f or other user's job: not let in before its client is back
        Job* j = queue_.find(id);
        if (j->spec.uid != uid_) j->spec.flags |= proto::kRunByClient;
        if (j->spec.run_by_client()) j->awaiting_client = true;
    }
    log("queue restored from the journal: %s", counted(queue_.size(), "job", "jobs").c_str());
}

void Server::log(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string msg = vformat(fmt, ap);
    va_end(ap);
    log_.write(msg);
}

void Server::run() {
    for (;;) {
        double now = mono_now();
        double wake = next_wakeup(now);
        // (never a wait of 0 for a time already past: this round sees to it)
        // (at most a day: a start time years away must not overflow poll's int)
        round(wake == 0 ? -1 : std::max(1, static_cast<int>(std::min(wake - now, 86400.0) * 1000) + 1));
    }
}

/* The one list of what the loop must wake up for when nothing else happens
 * (0: nothing; poll waits for an event). The deadlines of connections come
 * in round() itself (check_deadlines). */
double Server::next_wakeup(double now) const {
    double wake = 0;
    auto at = [&wake](double t) {
        if (t != 0 && (wake == 0 || t < wake)) wake = t;
    };
    if (!accepting_) at(now + 0.1);                                       // accept failed for lack of descriptors
    if (reattach_deadline_ != 0) at(now + 0.5);                           // restored jobs wait for their runners
    if (supply_.waiting()) at(now + 0.5);                                 // started jobs wait for a spare
    if (ledger_->failing()) at(ledger_->recover_at());                    // a failing journal is tried again
    else at(supply_.start_after());                                       // starts put off for lack of resources
    at(gpus_.wakeup(now));                                                // a probe, settling GPUs, the next probe
    at(waits_.next_deadline());                                           // a deferred answer's deadline (--gpu-list)
    if (double due = queue_.next_due(); due != 0)                         // a delayed job's start time (wall clock)
        at(now + std::max(0.0, due - wall_now()));
    if (waits_.has_ready()) at(now);                                      // a held request is ready to run again
    if (!harness_) at(files_.next_check());                               // the socket, journal and log files
    return wake;
}

// poll()'s entries: the signal pipe, the listener, the GPU probe's pipe, the guard, then the connections.
constexpr size_t kFirstConn = 4;

/* One turn of the loop: poll, read and dispatch, drop dead connections,
 * then schedule once. */
void Server::round(int timeout) {
    std::vector<pollfd>& pfds = pfds_;
    {
        check_deadlines(mono_now(), &timeout);
        pfds.clear();
        pfds.push_back({sig_r_.get(), POLLIN, 0});
        pfds.push_back({listener_.get(), short(accepting_ ? POLLIN : 0), 0});
        pfds.push_back({gpus_.fd(), POLLIN, 0});   // -1 (ignored by poll) when no probe runs
        pfds.push_back({guard_.get(), POLLIN, 0}); // a client found no socket: look for it now
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
        if (pfds[3].revents & POLLIN) {
            for (int fd; (fd = accept4(guard_.get(), nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) close(fd);
            files_.check_soon();
        }
        for (size_t i = kFirstConn; i < pfds.size(); ++i) {
            Conn& c = *conns_[i - kFirstConn];
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
        check_files(mono_now());
        check_detached();
        supply_.check_waiting();
        recover_journal(mono_now());
        waits_.expire(mono_now());
        gpu_take(mono_now());
        dispatch_ready();
        schedule();
        journal_->maybe_compact(queue_, mono_now());
    }
}

/* A failing journal is tried again now and then (sooner after a client's
 * change was refused: see writable); once it works, the runners whose
 * results it now holds hear Done. */
void Server::recover_journal(double now) {
    if (!ledger_->recover(now)) return;
    if (acks_pending_ == 0) return;
    acks_pending_ = 0;
    for (auto& c : conns_)
        if (c->ack_pending && !c->dead) answer_end(*c);
}

/* A change may be made only if the journal can record it: else the client
 * hears why, and nothing changes. */
bool Server::writable(Conn& c, const char* outcome) {
    if (ledger_->writable()) return true;
    error(c, format("the queue's journal cannot be written: %s; %s.\n", journal_->why().c_str(), outcome));
    return false;
}

/* Read from c, with the sender's credentials (SO_PASSCRED): the pid of
 * the process that wrote what was read, which may not be the one that
 * connected (a ts that submitted, then runs its job in the background). The
 * kernel never returns bytes of two senders in one read. */
static ssize_t read_from(int fd, char* buf, size_t size, pid_t* sender) {
    struct iovec iov = {buf, size};
    alignas(struct cmsghdr) char control[CMSG_SPACE(sizeof(struct ucred))];
    struct msghdr m {};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);
    if (n <= 0) return n;
    *sender = 0;   // unknown unless this read says (a writer in a pid namespace we cannot see: 0)
    for (struct cmsghdr* h = CMSG_FIRSTHDR(&m); h; h = CMSG_NXTHDR(&m, h))
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_CREDENTIALS &&
            h->cmsg_len == CMSG_LEN(sizeof(struct ucred))) {
            struct ucred cred;
            memcpy(&cred, CMSG_DATA(h), sizeof cred);
            if (cred.pid > 0) *sender = cred.pid;
        }
    return n;
}

/* Ask the kernel for the sender's credentials with whatever is read on fd. */
static void pass_credentials(int fd) {
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof one);
}

void Server::accept_all() {
    for (int i = 0; i < 64; ++i) {
        int fd = accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                accepting_ = false;   // back off; poll again in a moment
                double now = mono_now();   // at most once a minute, not every 100 ms
                if (now - accept_logged_ >= 60) {
                    log("accept: %s: new connections wait until descriptors are free", strerror(errno));
                    accept_logged_ = now;
                }
            }
            return;
        }
        auto c = std::make_unique<Conn>();
        c->fd.reset(fd);
        pass_credentials(fd);
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
    c.trusted = bounds_.trusted(c.uid);
    size_t plain = 0;
    if (!c.trusted)
        for (const auto& o : conns_)
            if (o->uid == c.uid && !o->runs_job() && !o->dead) ++plain;
    std::string why;
    if (!bounds_.admit(&c.charges, c.uid, plain, &why)) {
        refused(c.uid, why.c_str());
        return false;   // closed: it never waits in the backlog
    }
    if (!c.trusted) c.idle_deadline = mono_now() + kIdleLimit;
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

/* What one other user may have buffered, all connections together: bytes
 * read and not dispatched yet, and submits held for the first GPU probe.
 * False (the connection dies) past the bound. */
bool Server::charge_input(Conn& c, size_t bytes) {
    std::string why;
    if (bounds_.charge_input(&c.charges, bytes, &why)) return true;
    refused(c.uid, why.c_str());
    c.dead = true;
    return false;
}

/* A request or connection of another user refused. */
void Server::refused(uid_t uid, const char* why) {
    log_other(uid, format("uid %u: connection closed: %s", unsigned(uid), why));
}

/* A line about what another user did: at most one every 10 s (a hostile
 * user must not fill the owner's disk), with the count of those left out. */
void Server::log_other(uid_t uid, const std::string& line) {
    size_t left_out = 0;
    if (!bounds_.trusted(uid) && !bounds_.may_log(mono_now(), &left_out)) return;
    if (left_out)
        log("%s (and %s about other users left out)", line.c_str(), counted(left_out, "line", "lines").c_str());
    else log("%s", line.c_str());
}

void Server::read_conn(Conn& c) {
    char buf[65536];
    for (int round = 0; round < 16 && !c.dead; ++round) {
        ssize_t n = read_from(c.fd.get(), buf, sizeof buf, &c.sender);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) c.dead = true;
            break;
        }
        if (n == 0) {
            c.dead = true;
            break;
        }
        if (!charge_input(c, size_t(n))) break;
        c.in.append(buf, static_cast<size_t>(n));
        size_t off = 0;
        while (!c.dead) {
            // Another user's frame must be small; a runner reports only a little.
            uint32_t limit = c.trusted ? proto::kMaxFrame : c.runs_job() ? kRunnerMaxFrame : kUserMaxFrame;
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
        bounds_.release_input(&c.charges, off);
    }
    // Half a frame: the rest must come soon (a stalled sender holds nothing for long).
    if (c.in.empty()) c.partial_deadline = 0;
    else if (!c.trusted && c.partial_deadline == 0) c.partial_deadline = mono_now() + kIdleLimit;
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
    std::string why;
    if (!bounds_.charge_unread(&c.charges, bytes, &why)) {
        refused(c.uid, why.c_str());
        c.stream.reset();
        TailWriter t;
        t.add(format("uid %u has too many answers it has not read yet.\n", unsigned(c.uid)));
        c.out += encode_empty(MsgType::Error, t.str());   // sent by the flush that is under way
        c.close_after_flush = true;
        return false;
    }
    return true;
}

/* The end of a connection's long answer (sent, or the connection gone). */
void Server::end_stream(Conn& c) {
    c.stream.reset();
    bounds_.release_unread(&c.charges);
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
        int st = 0;
        while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
            supply_.reaped(pid);
            (void)gpus_.reaped(pid, st, mono_now());
        }
    }
}

/* TS_SAVELIST: on SIGTERM, append the list as a shell script. */
void Server::save_list() {
    if (cfg_.savelist.empty()) return;
    const char* path = cfg_.savelist.c_str();
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
    if (!unlinked_) unlink_socket();
    _exit(code);
}

/* The connection that runs (or will run) a job, and those waiting for room
 * (its submit, and the same submit sent again). */
Conn* Server::runner_conn(JobId id) {
    auto it = runners_.find(id);
    return it != runners_.end() && !it->second->dead ? it->second : nullptr;
}

std::vector<Conn*> Server::overflow_conns(JobId id) {
    std::vector<Conn*> out;
    auto range = overflow_.equal_range(id);
    for (auto it = range.first; it != range.second; ++it)
        if (!it->second->dead) out.push_back(it->second);
    return out;
}

/* The one place a connection changes role: the indexes follow. */
void Server::set_role(Conn& c, Role r, JobId id) {
    auto drop = [&c](auto& index) {
        auto range = index.equal_range(c.job);
        for (auto it = range.first; it != range.second; ++it)
            if (it->second == &c) {
                index.erase(it);
                return;
            }
    };
    switch (c.role) {
    case Role::Runner:
    case Role::ClientRunner: drop(runners_); break;
    case Role::Waiter: (void)waits_.drop(c); break;   // a role change ends its wait
    case Role::Overflow: drop(overflow_); break;
    case Role::Client:
    case Role::Spare: break;
    }
    c.role = r;
    c.job = r == Role::Client || r == Role::Spare || r == Role::Waiter ? -1 : id;
    switch (r) {
    case Role::Runner:
    case Role::ClientRunner: runners_[id] = &c; break;
    case Role::Overflow: overflow_.emplace(id, &c); break;
    case Role::Waiter:   // what it waits for: on_wait
    case Role::Client:
    case Role::Spare: break;
    }
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
    double now = mono_now(), wall = wall_now();
    bool waiting = false;
    for (JobId id : queue_.overflow()) {
        if (!overflow_conns(id).empty()) continue;
        if (now < reattach_deadline_) {
            waiting = true;
            continue;
        }
        end_job(id, Queue::lost_result("its submitter was waiting for room in the queue when the server "
                                      "stopped, and did not come back"),
               wall);
    }
    std::vector<JobId> ids(queue_.active().begin(), queue_.active().end());
    for (JobId id : ids) {
        Job* j = queue_.find(id);
        if (j && !runner_conn(id) && detached_waits(*j, now, wall)) waiting = true;
    }
    if (!waiting) reattach_deadline_ = 0;
}

/* A restored job with no runner or client connected: still waited for
 * (true), or settled now: queued again when it never ran, else lost. */
bool Server::detached_waits(Job& j, double now, double wall) {
    JobId id = j.id;
    bool restored_running = j.state == JobState::Running;
    if (!restored_running && !j.awaiting_client) return false;
    if (restored_running && !j.spec.run_by_client() && runner_alive(j.runner_pid))
        return true;   // alive: it will come back (or we see it die)
    if (now < reattach_deadline_) return true;
    // Recorded as started, with no runner recorded: wait a while longer
    // (a live runner may be coming back, with its delay of up to 5 s),
    // then it is taken as one that never ran.
    if (restored_running && !j.spec.run_by_client() && j.runner_pid == 0 && now < reattach_deadline_ + 10)
        return true;
    if (restored_running && !j.spec.run_by_client() && j.runner_pid == 0) {
        // Recorded as started, but no runner was ever forked: it never ran.
        log("job %d: never started before the restart; queued again", id);
        (void)ledger_->unstart(id);
        return false;
    }
    if (restored_running && !j.spec.run_by_client() && j.start_time == 0) {
        // Given to a runner that is gone now, which never reported the
        // job's start: a job's child waits for its runner's go, sent only
        // once the start is reported, so it never ran (the server died
        // before the runner read its job, say).
        log("job %d: its runner (pid %d) is gone and never reported the job's start: it never ran; "
            "queued again", id, int(j.runner_pid));
        (void)ledger_->unstart(id);
        return false;
    }
    log("job %d: its %s did not come back; marked lost", id,
        j.spec.run_by_client() ? "client" : "runner");
    end_job(id,
           Queue::lost_result(j.spec.run_by_client()
                                  ? "the server restarted, and the job's client did not come back"
                                  : "the server restarted, and the job's runner was gone"),
           wall);
    return false;
}

/* A connection is going away: a runner that did not report loses its job. */
void Server::conn_lost(Conn& c) {
    (void)waits_.drop(c);   // whatever it waited for goes now (what it held: bounds_.release below)
    if (!c.trusted) {   // what it held is let go at once, not when the round ends
        c.in.clear();
        end_stream(c);
    }
    bounds_.release(&c.charges);
    if (supply_.spare_lost(c)) return;   // the idle spare ended: another is made
    bool had_job = c.runs_job() || c.role == Role::Overflow;
    bool runner = c.runs_job();
    JobId id = c.job;
    set_role(c, Role::Client);
    if (!had_job) return;
    Job* j = queue_.find(id);
    if (j && j->state == JobState::Overflow) {
        // Its ts went away while it waited for room (Ctrl-C): the job goes with it, as in task-spooler,
        // unless another connection of its submitter still waits for it, or a restart's grace runs.
        if (reattach_deadline_ == 0 && overflow_conns(id).empty()) {
            JobResult r = Queue::lost_result("its ts went away while it waited for room in the queue: it never ran");
            r.signal = 0;   // nothing ran, nothing was killed
            end_job(id, r, wall_now());
        }
        return;
    }
    if (!j || (j->state != JobState::Running && j->state != JobState::Queued)) return;
    if (runner && j->state == JobState::Running && j->start_time == 0) {
        never_started(*j, c);
        return;
    }
    log_other(j->spec.uid, format("job %d: its runner quit before reporting the end", id));
    end_job(id,
           Queue::lost_result(j->spec.run_by_client()
                                  ? "its client (the ts that submitted it) went away before "
                                    "reporting the end"
                                  : "its runner ended before reporting the end (it was killed, "
                                    "or could not reach the server)"),
           wall_now());
}

/* A job's runner went away before it reported the start: the job never
 * ran (runner.cpp lets the job's child exec only once Started is on its way
 * to us). A runner of ours is replaced: the job goes back to the queue, in
 * its place, as one that could not fork does, up to kStartTries runners in
 * a row (then something kills them all, and the job is marked lost rather
 * than started for ever). A client-held job has no other runner than its
 * client: it ends, never run, and -i says so. */
void Server::never_started(Job& j, const Conn& c) {
    JobId id = j.id;
    if (j.spec.run_by_client()) {
        log_other(c.uid, format("job %d: its client went away before the job started", id));
        JobResult r = Queue::lost_result("its client (the ts that was to run it) went away before the job "
                                         "started; it never ran");
        r.signal = 0;   // nothing was killed: it never started
        end_job(id, r, wall_now());
        return;
    }
    int tries = supply_.ended_before_start(id);
    if (tries >= kStartTries) {
        log("job %d: its runner ended before the job started, %d times in a row: marked lost", id, tries);
        JobResult r = Queue::lost_result(format("its runner ended before the job started, %d times in a row "
                                                "(killed?); it never ran", tries));
        r.signal = 0;
        end_job(id, r, wall_now());
        return;
    }
    log("job %d: its runner (pid %d) ended before the job started: queued again", id, int(c.pid));
    (void)ledger_->unstart(id);
    supply_.top_up();   // the spare that took it is gone, and was not replaced yet
}

void Server::schedule() {
    // Nothing starts that the journal cannot record (it could run twice after
    // a crash), nor while descriptors or processes are short.
    if (!journal_->ok() || journal_->pending() || (queue_.busy_slots() < queue_.max_slots() && !queue_.active().empty() && !journal_->room())) return;
    if (!supply_.may_start()) return;
    for (JobId id : ledger_->admit_overflow()) {
        for (Conn* c : overflow_conns(id)) {
            set_role(*c, Role::Client);
            submitted(*c, id);
        }
    }
    double now = mono_now(), wall = wall_now();
    queue_.note_time(wall);   // a delayed job's time came: the pass cannot be the last one again
    std::unique_ptr<GpuPlan> plan;
    bool placing = !queue_.drained() && queue_.gpu_jobs_queued() > 0 && gpus_.pass_due(now);   // else as the last pass decided
    if (placing) plan = gpus_.plan(now);   // nullptr: the GPUs are not known well enough now
    Decisions d = ledger_->schedule(plan.get(), wall);   // ends the skipped jobs, and wakes their waiters
    for (JobId id : d.skipped) {
        if (Conn* c = runner_conn(id)) {   // a job run by its client: tell it to give up
            set_role(*c, Role::Client);
            if (const Job* j = queue_.find(id)) send_run(*c, *j, true, true);
            else {
                proto::RunBody rb{};
                rb.id = id;
                rb.skip = 1;
                reply(*c, encode(MsgType::Run, rb));
            }
        }
    }
    bool unrecorded = false;
    for (JobId id : d.start) {
        // Recorded before the runner exists: a crash now cannot run it twice.
        // A start that cannot be recorded does not happen.
        Job* j = queue_.find(id);
        gpus_started(*j);
        if (unrecorded) ledger_->cancel_start(id);   // its GPUs go back too
        else unrecorded = !ledger_->start(id);      // undone when it cannot be recorded
        if (unrecorded) continue;
        gpus_.started_on(j->gpus(), now);   // its cards settle from now
        if (!j->spec.run_by_client() && j->spec.uid == uid_) {   // only our own jobs run here
            supply_.start(*j);
            continue;
        }
        if (Conn* c = runner_conn(id)) {
            send_run(*c, *j, false, false);
        } else {   // no client holds it (never so; but a job started with no runner would hold its slot for good)
            log_other(j->spec.uid, format("job %d: no client holds it: it cannot run", id));
            JobResult r = Queue::lost_result("its client (the ts that submitted it) is not connected: it cannot run");
            r.signal = 0;   // nothing ran
            end_job(id, r, wall_now());
        }
    }
    if (gpus_.passed(now, placing, plan.get(), d)) want_probe(now);   // a probe, if one is wanted
}

/* The supply's questions (runner_supply.h). */
const Job* Server::wants_runner(JobId id) {
    const Job* j = queue_.find(id);
    return j && j->state == JobState::Running && !runner_conn(id) ? j : nullptr;
}

/* A runner made here: its pid is journaled as the job's runner, then its connection is served. */
void Server::add_runner(JobId id, LocalRunner r) {
    ledger_->runner(id, r.pid);
    set_nonblock(r.conn.get());
    auto c = std::make_unique<Conn>();
    c->fd = std::move(r.conn);
    set_role(*c, Role::Runner, id);
    c->uid = getuid();
    c->trusted = true;
    c->pid = r.pid;
    conns_.push_back(std::move(c));
}

/* Hand a started job to an idle spare: its pid is journaled as the job's
 * runner before the order is sent, so a restart waits for that process. */
void Server::assign(Conn& spare, JobId id, const std::string& order) {
    set_role(spare, Role::Runner, id);
    ledger_->runner(id, spare.pid);
    reply(spare, order, false);
}

void Server::unstart(JobId id) {
    (void)ledger_->unstart(id);
}

void Server::add_conn(Fd fd, uid_t uid) {
    set_nonblock(fd.get());
    auto c = std::make_unique<Conn>();
    c->fd = std::move(fd);
    c->uid = uid;
    pass_credentials(c->fd.get());   // the uid is the test's word; the pids are the kernel's (the test process)
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (getsockopt(c->fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) c->pid = cred.pid;
    if (admit(*c)) conns_.push_back(std::move(c));
}

// ---- GPUs: the connections that wait for the broker's probe (gpu_broker.h decides) ----

/* Start a probe unless one runs (or failed a moment ago). */
void Server::want_probe(double now) {
    switch (gpus_.want_probe(now)) {
    case GpuBroker::Begun::Failed:
        gpu_probed();   // whoever waits for it hears why
        break;
    case GpuBroker::Begun::Started:
        gpu_take(now);   // one with nothing to run has ended already
        break;
    case GpuBroker::Begun::No:
        break;
    }
}

/* From the loop, once a round, and when a probe starts: the probe's pipe,
 * deadline and child, and its result once it ends. */
void Server::gpu_take(double now) {
    gpus_.poll(now);
    if (gpus_.take(now)) gpu_probed();
}

/* A probe has ended (or could not start): what waited for one is answered
 * (--gpu-list) or made ready to run again (a GPU job's submit, dispatched by
 * the loop, not from inside another handler). */
void Server::gpu_probed() {
    waits_.probed();
}

/* A job is starting: its runner's environment (journaled with the start). */
void Server::gpus_started(Job& j) {
    std::vector<std::string> env = gpus_.start_env(j);
    if (!env.empty()) j.gpu().env = std::move(env);
}

/* Run for a job its client runs, with the environment its GPUs gave it at
 * its start (journaled with it: the same after a restart), for a client
 * that reads it. */
void Server::send_run(Conn& c, const Job& j, bool skip, bool last) {
    answer_end(c);   // its last run's Again comes first
    proto::RunBody rb{};
    rb.id = j.id;
    rb.skip = skip ? 1 : 0;
    rb.run = uint16_t(j.attempts().size());
    c.run = rb.run;
    std::string tail;
    if (!skip && (j.spec.flags & proto::kTakesRunEnv) && c.version == proto::kVersion) {
        TailWriter t;
        for (const std::string& v : j.start_env()) t.add(v);
        // Its deadline (--timeout, or the queue's TS_TIMEOUT), which its runner enforces: settings
        // after a NUL, which no NAME=value starts with.
        JobSettings timing;
        if (j.spec.settings.timeout() > 0) timing.set_timeout(j.spec.settings.timeout());
        if (j.spec.settings.bytes(kSettingKillAfter)) timing.set_kill_after(j.spec.settings.kill_after());
        if (!timing.empty()) t.add(std::string(1, '\0') + encode_settings(timing));
        tail = t.str();
    }
    reply(c, encode(MsgType::Run, rb, tail), last);
}

namespace {
/* The harness's launcher: no spawner, and a "runner" whose end of the
 * socketpair is closed at once (the job is lost at the next round), unless
 * a test gives its own. */
class NoRunners : public Launcher {
public:
    bool start(const RunnerOrder&, LocalRunner* out, LaunchError* why) override {
        int sv[2];
        why->what = "socketpair";
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
            why->err = errno;
            return false;
        }
        out->conn.reset(sv[0]);
        close(sv[1]);
        out->pid = 1 << 30;
        return true;
    }
};
}  // namespace

struct ServerHarness::Impl {
    Server server;
    Impl(const std::string& path, ServerConfig cfg, std::unique_ptr<Launcher> l)
        : server(Fd(), path, std::move(cfg), l ? std::move(l) : std::make_unique<NoRunners>()) {}
};

namespace {
/* A harness probes no GPU unless its test gives a config that does. */
ServerConfig harness_config() {
    ServerConfig c = read_server_config(getenv, 0);
    c.nvidia_smi.clear();
    c.gpu_sysfs.clear();
    return c;
}
}  // namespace

ServerHarness::ServerHarness(const std::string& socket_path)
    : impl_(new Impl(socket_path, harness_config(), nullptr)) {}
ServerHarness::ServerHarness(const std::string& socket_path, ServerConfig cfg,
                             std::unique_ptr<Launcher> launcher)
    : impl_(new Impl(socket_path, std::move(cfg), std::move(launcher))) {}
ServerHarness::~ServerHarness() = default;

Fd ServerHarness::connect(uid_t uid) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Fd();
    impl_->server.add_conn(Fd(sv[0]), uid);
    return Fd(sv[1]);
}

void ServerHarness::round() { impl_->server.round(0); }
size_t ServerHarness::gpu_placements() const { return impl_->server.gpu_asked(); }
bool ServerHarness::stopped() const { return impl_->server.stopped(); }
std::string ServerHarness::list() const { return impl_->server.list(); }

void run_server(Fd listener, Fd guard, Fd err_pipe, const std::string& socket_path, bool take_settings) {
    set_process_name("ts-server");
    struct rlimit rl;
    size_t nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY ? size_t(rl.rlim_cur) : 0;
    ServerConfig cfg = read_server_config(getenv, nofile);
    cfg.take_settings = take_settings;
    Server s(std::move(listener), socket_path, std::move(cfg));
    if (s.startup_error().empty()) s.hold_guard(std::move(guard));
    for (const std::string& note : s.startup_notes()) {   // before the error, or before "ready"
        std::string framed = start_note(note);
        (void)write_all(err_pipe.get(), framed.data(), framed.size());
    }
    if (!s.startup_error().empty()) {
        (void)write_all(err_pipe.get(), s.startup_error().data(), s.startup_error().size());
        s.unlink_socket();
        _exit(1);
    }
    err_pipe.reset();   // ready: the starting client may go on
    s.run();
}
