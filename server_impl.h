/*
 * server_impl.h — the inside of the server, shared by its two files and by
 * nothing else: server.cpp (the loop, connections and their roles,
 * restart and re-attach) and handlers.cpp (the handler table with each
 * message's access rule, and every handler). The queue changes only through
 * the ledger (ledger.h); what connections wait for is kept by waits
 * (waits.h); the other subsystems are objects the Server owns (its fields).
 * Outside, server.h is all there is.
 */
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>
#include <poll.h>
#include <sys/types.h>
#include <unistd.h>

#include "bounds.h"
#include "config.h"
#include "place.h"
#include "frame.h"
#include "jobs.h"
#include "journal.h"
#include "ledger.h"
#include "listing.h"
#include "gpu_broker.h"
#include "queue_files.h"
#include "runner_supply.h"
#include "server_log.h"
#include "spawner.h"
#include "util.h"
#include "waits.h"

/* A long answer (-l, -i) made as its reader takes it: at most about
 * kStreamHigh bytes of it wait in the connection's buffer, whatever the
 * size of the queue and however slowly (or never) the reader reads. */
struct TextStream {
    std::string text;            // made; text[sent..] is not sent yet
    size_t sent = 0;
    std::vector<JobId> ids;      // list lines still to make (jobs gone meanwhile are left out)
    size_t next = 0;
};

/* What a connection is. A plain Client asks once and is answered; a
 * Waiter waits for what its Deferred request names (Server::waits_, any
 * number of jobs); every other role belongs to one job (Conn::job), except
 * Spare. */
enum class Role : uint8_t {
    Client,        // one request, one answer, closed by the server
    Waiter,        // -w (and -t, -c): answered when its Deferred request is satisfied
    Overflow,      // submitted while the queue was full: its id comes when there is room
    Runner,        // a runner of the server's (forked here, or a spare given its job)
    ClientRunner,  // a -f client, or another user's ts: it runs its own job when told Run
    Spare,         // a spare runner from the spawner, waiting for Assign
};

struct Conn {
    Fd fd;
    Role role = Role::Client;
    JobId job = -1;                     // the job of every role but Client, Waiter and Spare
    std::string in, out;
    bool dead = false;
    bool lost = false;                  // conn_lost has run for it
    bool close_after_flush = false;
    uid_t uid = static_cast<uid_t>(-1);
    bool trusted = false;               // the server's uid or root: no per-user bounds
    double idle_deadline = 0;           // another user's connection that has not asked anything yet (mono_now)
    double partial_deadline = 0;        // half a frame is buffered: the rest must come by then
    std::unique_ptr<TextStream> stream;
    Charges charges;                    // what it holds against its user's bounds (Bounds)
    pid_t pid = 0;                      // of the connecting process (SO_PEERCRED)
    pid_t sender = 0;                   // of the process that sent the last bytes read (SO_PASSCRED; 0: not known)
    uint16_t version = proto::kVersion; // of its frames: an older runner gets answers in its own
    bool ack_pending = false;           // its job's end is not on disk yet: Done (or Again) comes once it is
    bool ack_again = false;             // ...and that answer is Again: the run was an attempt (--retry)
    uint16_t run = 0;                   // a ClientRunner's: which run of its job it was told to run (--retry)
    double submit_at = 0;               // when a GPU job's submit first came (mono_now): its job's queue time

    bool runs_job() const { return role == Role::Runner || role == Role::ClientRunner; }
};

class Server;

// What a message is: a request of a Client (one that changes the queue is
// refused while the journal fails), a runner's report on its job (only on a
// connection that runs one), or a connection saying what it is.
enum Kind : uint8_t { kRequest, kChange, kReport, kHello };

// Who may send it (README, "Security"), checked before the handler runs,
// except kJobOwner, which the handler checks once it has found the job
// (may_manage). Every refusal says why, with the table's verb.
enum Access : uint8_t {
    kAnyone,      // every user (other users' requests are bounded: bounds.h)
    kAdmin,       // the server's owner or root only
    kJobOwner,    // the job's owner, the server's owner or root
    kServerUid,   // the server's own processes only (anything else is a protocol error)
};

struct Handler {
    proto::MsgType type;
    size_t body;        // exact size, or minimum size when tail
    bool tail;
    Kind kind;
    Access access;
    const char* verb;   // for a refusal: "... may <verb>"
    bool old_ok;        // also served to peers of kOldestRunnerVersion (runners and waiters of the release before)
    void (Server::*fn)(Conn&, const Frame&);
};

class Server : private SupplyHost {
public:
    Server(Fd listener, std::string path, ServerConfig cfg, std::unique_ptr<Launcher> harness_launcher = nullptr);
    [[noreturn]] void run();
    void round(int timeout);
    /* For ServerHarness: a connection from a client of this uid. */
    void add_conn(Fd fd, uid_t uid);
    bool stopped() const { return stopped_; }
    std::string list() const { return list_text(queue_); }
    const std::string& startup_error() const { return startup_error_; }
    /* What the starting client is told even when the start works (run_server). */
    const std::vector<std::string>& startup_notes() const { return startup_notes_; }

    /* For run_server: the queue's guard, held for life; the socket removed at a refused start. */
    void hold_guard(Fd guard);
    void unlink_socket() { files_.unlink_socket(); }
    size_t gpu_asked() const { return gpus_.asked(); }   // for ServerHarness

private:
    // The handlers (handlers.cpp), each a row of kHandlers.
    static const Handler kHandlers[];
    static const Handler* handler_of(proto::MsgType t);
    const Handler* handling_ = nullptr;   // the handler dispatch is running (its access rule)
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
    bool detached_waits(Job& j, double now, double wall);
    void end_job(JobId id, const JobResult& r, double end);
    Conn* runner_conn(JobId id);
    std::vector<Conn*> overflow_conns(JobId id);
    void set_role(Conn& c, Role r, JobId id = -1);
    bool may_manage(Conn& c, const Job& j);
    void on_remove(Conn& c, const Frame& f);
    void on_urgent(Conn& c, const Frame& f);
    void on_swap(Conn& c, const Frame& f);
    void on_info(Conn& c, const Frame& f);
    void on_clear(Conn& c, const Frame& f);
    void on_kill(Conn& c, const Frame& f);
    void on_attach(Conn& c, const Frame& f);
    bool ended_run(Conn& c, const proto::AttachBody& a, const Job& j);
    void run_again(Conn& c, const Job& j);
    void answer_end(Conn& c);
    void on_started(Conn& c, const Frame& f);
    void on_finished(Conn& c, const Frame& f);
    void on_spare(Conn& c, const Frame& f);
    void on_unstarted(Conn& c, const Frame& f);
    void on_not_run(Conn& c, const Frame& f);
    void on_gpu_list(Conn& c, const Frame& f);
    void on_drain(Conn& c, const Frame& f);
    void on_hold(Conn& c, const Frame& f);
    void release_all(Conn& c);
    void on_cancel(Conn& c, const Frame& f);
    bool tell_runner(Conn& c, Conn& runner, JobId id, const std::string& frame);
    // Waiting on many, and running jobs again (handlers_waits.cpp).
    void on_wait_list(Conn& c, const Frame& f);
    void on_wait_all(Conn& c, const Frame& f);
    void on_wait_start(Conn& c, const Frame& f);
    void on_requeue(Conn& c, const Frame& f);
    void wait_on_list(Conn& c, std::vector<JobId> ids);
    bool unique_submit(Conn& c, JobSpec* spec);
    void timeout_note(Conn& c, JobSpec* spec);
    void answer_started(Conn& c, const Deferred& d);
    bool requeueable(Conn& c, const Job& j);
    std::vector<JobId> failed_of(const Conn& c, size_t* run_by_client);
    JobSpec requeue_spec(const Job& j, const std::map<JobId, JobId>& renamed);
    bool requeue_job(Conn& c, const Job& j, const std::map<JobId, JobId>& renamed, JobId* id, std::string* why);
    void configure();
    void check_files(double now);
    bool settle_settings();
    bool may_serve();
    bool admit(Conn& c);
    bool may_queue(Conn& c, const JobSpec& spec);
    void check_deadlines(double now, int* timeout);
    double next_wakeup(double now) const;
    void reply_text(Conn& c, std::string text, std::vector<JobId> ids = {});
    void pump(Conn& c);
    void refused(uid_t uid, const char* why);
    bool charge_input(Conn& c, size_t bytes);
    void log_other(uid_t uid, const std::string& line);
    void end_stream(Conn& c);
    bool charge_unread(Conn& c, size_t bytes);
    bool writable(Conn& c, const char* outcome = "nothing was changed");
    void recover_journal(double now);
    void never_started(Job& j, const Conn& c);
    pid_t checked_pid(const Conn& c, const Job& j, pid_t pid);
    // GPUs: the broker (gpus_) decides; these talk to the connections that wait for its probe.
    void gpu_take(double now);
    void want_probe(double now);
    void gpu_probed();
    bool gpu_check_submit(Conn& c, const Frame& f, const JobSpec& spec);
    void gpus_started(Job& j);
    void send_run(Conn& c, const Job& j, bool skip, bool last);

    void accept_all();
    void read_conn(Conn& c);
    void dispatch(Conn& c, const Frame& f);
    void flush(Conn& c);
    void reply(Conn& c, const std::string& bytes, bool last = true);
    void error(Conn& c, const std::string& line);
    void cannot(Conn& c, int id, const char* verb);
    void drain_signals();
    void schedule();
    // SupplyHost: what the runner supply asks of the server.
    const Job* wants_runner(JobId id) override;
    void add_runner(JobId id, LocalRunner r) override;
    void assign(Conn& spare, JobId id, const std::string& order) override;
    bool closing(const Conn& spare) const override { return spare.dead; }
    void unstart(JobId id) override;
    void log(const std::string& line) override { log("%s", line.c_str()); }
    void deferred_done(Conn& c, Deferred d);
    void dispatch_ready();
    void hold_for_probe(Conn& c, const Frame& f);
    void list_gpus_after_probe(Conn& c, double deadline);
    void answer_gpu_list(Conn& c, bool expired);
    void conn_lost(Conn& c);
    Job* lookup(const Conn& c, int id, bool last_added);
    Job* lookup_run(Conn& c, int id);
    void log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));
    void shutdown(int code);   // exits, except in a harness
    void save_list();

    // Every time kept here (deadlines, back-offs, when something was logged
    // or probed) is mono_now() (util.h); wall_now() only goes to the queue,
    // the journal and what users are shown.
    Queue queue_;
    Fd listener_;
    Fd guard_;                     // the queue's guard (connect.h): held for this server's life
    Fd sig_r_, sig_w_;
    std::string path_;
    ServerLog log_;                // <socket>.error, opened once: it works when descriptors run out
    QueueFiles files_;             // the socket, journal and log, put back when removed
    std::vector<std::unique_ptr<Conn>> conns_;
    // Indexes from a job to its connections (set_role keeps them).
    std::unordered_map<JobId, Conn*> runners_;            // Runner and ClientRunner
    std::unordered_multimap<JobId, Conn*> overflow_;      // Overflow
    bool accepting_ = true;
    double accept_logged_ = -60;  // accept failed for lack of descriptors: logged then
    std::string startup_error_;
    std::vector<std::string> startup_notes_;
    std::optional<Journal> journal_;
    std::optional<Ledger> ledger_;   // every change of queue_ (with journal_ from the start on)
    // What connections wait for before they are answered (-w, a submit held
    // for the first GPU probe, --gpu-list): woken by the ledger and the probe.
    Waits waits_{[this](Conn& c, Deferred d) { deferred_done(c, std::move(d)); }};
    uid_t uid_ = getuid();
    bool unlinked_ = false;   // -K removed the socket already
    // A harness (fuzzer, tests) has no listener, forks nothing, signals nothing and never exits.
    bool harness_ = false;
    bool stopped_ = false;
    std::vector<pollfd> pfds_;
    double reattach_deadline_ = 0;   // until then, runners of restored jobs may come back
    RunnerSupply supply_;              // runners of our jobs: the launcher, spares, back-off
    ServerConfig cfg_;                 // read once, at start; the queue's settings from the journal (config.h)
    Bounds bounds_{getuid()};          // what other users may hold (the owner: memory only)
    size_t acks_pending_ = 0;        // runners waiting for Done until the journal works
    // GPUs (gpu_broker.h): the probe, its last result, and what ts jobs hold.
    GpuBroker gpus_;
};

// Bounds on another user's frames and idle connections (README, "Security"; the
// per-user totals are bounds.h's).
constexpr uint32_t kUserMaxFrame = 4u << 20;    // a request of another user
constexpr uint32_t kRunnerMaxFrame = 64u << 10; // what another user's runner reports
constexpr double kIdleLimit = 10.0;             // to send a first request, or the rest of a frame
constexpr size_t kStreamHigh = 256u << 10;      // a long answer is made in pieces of this size



inline double us_to_s(int64_t us) { return double(us) / 1e6; }

// How long restored jobs wait for their runner or -f client to come back
// (a live server-spawned runner is waited for as long as it lives).
constexpr double kReattachGrace = 5.0;
// How long --gpu-list waits for a probe before it answers with the last one.
constexpr double kGpuListWait = 2.0;
/* The bytes a runner may leave unread (signals, cancels) before more for it are refused. */
constexpr size_t kRunnerBacklog = 4096;

