/*
 * server_impl.h — the inside of the server, shared by its two files and by
 * nothing else: server.cpp (the loop, connections and their roles, the
 * runner supply, restart and re-attach, the log) and handlers.cpp (the
 * handler table with each message's access rule, and every handler).
 * The queue changes only through the ledger (ledger.h); what connections
 * wait for is kept by waits (waits.h). Outside, server.h is all there is.
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

#include "config.h"
#include "connect.h"
#include "frame.h"
#include "jobs.h"
#include "journal.h"
#include "ledger.h"
#include "listing.h"
#include "probe.h"
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

/* What a connection is. A plain Client asks once and is answered; every
 * other role belongs to one job (Conn::job), except Spare. */
enum class Role : uint8_t {
    Client,        // one request, one answer, closed by the server
    Waiter,        // -w (and -t, -c): answered when its job ends (its Deferred in Server::waits_)
    Overflow,      // submitted while the queue was full: its id comes when there is room
    Runner,        // a runner of the server's (forked here, or a spare given its job)
    ClientRunner,  // a -f client, or another user's ts: it runs its own job when told Run
    Spare,         // a spare runner from the spawner, waiting for Assign
};

struct Conn {
    Fd fd;
    Role role = Role::Client;
    JobId job = -1;                     // the job of every role but Client and Spare
    std::string in, out;
    bool dead = false;
    bool lost = false;                  // conn_lost has run for it
    bool close_after_flush = false;
    uid_t uid = static_cast<uid_t>(-1);
    bool trusted = false;               // the server's uid or root: no per-user bounds
    double idle_deadline = 0;           // another user's connection that has not asked anything yet (mono_now)
    double partial_deadline = 0;        // half a frame is buffered: the rest must come by then
    std::unique_ptr<TextStream> stream;
    size_t pending = 0;                 // bytes of the stream counted in user_pending_
    pid_t pid = 0;                      // of the connecting process (SO_PEERCRED)
    pid_t sender = 0;                   // of the process that sent the last bytes read (SO_PASSCRED; 0: not known)
    uint16_t version = proto::kVersion; // of its frames: an older runner gets answers in its own
    bool ack_pending = false;           // its job's end is not on disk yet: Done comes once it is
    double submit_at = 0;               // when a GPU job's submit first came (mono_now): its job's queue time

    bool runs_job() const { return role == Role::Runner || role == Role::ClientRunner; }
};

class Server {
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
    void on_started(Conn& c, const Frame& f);
    void on_finished(Conn& c, const Frame& f);
    void on_spare(Conn& c, const Frame& f);
    void on_unstarted(Conn& c, const Frame& f);
    void on_not_run(Conn& c, const Frame& f);
    void on_gpu_list(Conn& c, const Frame& f);
    Conn* idle_spare() const { return idle_spare_ && !idle_spare_->dead ? idle_spare_ : nullptr; }
    const struct Handler* handling_ = nullptr;   // the handler dispatch is running (its access rule)
    void configure();
    void hold_guard(Fd guard);
    void check_files(double now);
    bool files_in_place();
    void keep_socket();
    void keep_journal();
    void keep_log();
    bool place_trusted();
    void unlink_socket();
    bool settle_settings();
    bool open_log();
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
    void resources_short(JobId id, const char* what, int err);
    void never_started(Job& j, const Conn& c);
    pid_t checked_pid(const Conn& c, const Job& j, pid_t pid);
    // GPUs (server_gpus.cpp).
    void gpu_round(double now);
    void gpu_take(double now);
    std::unique_ptr<GpuPlan> gpu_plan(double now);
    bool gpu_pass_due(double now);
    void gpu_passed(double now, bool placed, const GpuPlan* plan, const Decisions& d);
    void gpu_note_ends(double now);
    size_t gpu_asked() const { return gpu_asked_; }
    bool gpu_fresh(double now) const;
    void want_probe(double now);
    void gpu_probed(double now);
    void log_gpu_doubts();
    double gpu_wakeup(double now) const;
    bool gpu_check_submit(Conn& c, const Frame& f, const JobSpec& spec);
    std::vector<std::string> job_start_env(const Job& j);
    void gpus_started(Job& j);
    std::string gpu_info(const Job& j) const;
    bool waits_for_other_than_gpus(const Job& j) const;
    std::string gpu_wait_reason(const Job& j, double now) const;
    GpuUse gpu_use() const;
    std::string gpu_list_text(double now) const;
    const GpuCard* known_card(const std::string& uuid) const;
    void probe_failed(double now, const std::string& why);
    void send_run(Conn& c, const Job& j, bool skip, bool last);
    int probe_fd() const { return probe_.fd(); }

private:
    void accept_all();
    void read_conn(Conn& c);
    void dispatch(Conn& c, const Frame& f);
    void flush(Conn& c);
    void reply(Conn& c, const std::string& bytes, bool last = true);
    void error(Conn& c, const std::string& line);
    void cannot(Conn& c, int id, const char* verb);
    void drain_signals();
    void schedule();
    void spawn_runner(Job& j);
    void fork_runner(Job& j);
    void assign(Conn& spare, Job& j);
    void top_up_spares();
    void spawner_gone(const char* why);
    void check_unassigned();
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
    FileId sock_id_;               // the socket file this server made (or put back)
    mode_t sock_mode_ = 0700;      // ... and its mode (TS_SOCKET_MODE)
    double next_file_check_ = 0;   // when to look at the socket, journal and log files again
    bool sock_said_ = false;       // a socket that cannot be put back was logged (once, until it can)
    bool journal_said_ = false;    // ... a journal replaced by another file
    std::string place_said_;       // why the location is no longer trusted, as logged (check_socket_dir)
    Fd sig_r_, sig_w_;
    std::string path_;
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
    std::unique_ptr<Launcher> launcher_;   // runner processes: spares of the spawner, else forked here
    int spares_asked_ = 0;             // spares asked of the spawner that have not come yet
    Conn* idle_spare_ = nullptr;       // the one spare runner waiting for Assign
    std::deque<JobId> unassigned_;     // started jobs waiting for a spare runner
    double unassigned_since_ = 0;
    Fd log_fd_;                        // opened once: the log works when descriptors run out
    ServerConfig cfg_;                 // read once, at start; the queue's settings from the journal (config.h)
    // Bounds on what other users may hold (the owner's queue is bounded by memory only).
    size_t others_conns_ = 0;                    // connections of other users, all together
    size_t others_max_conns_ = 1000;             // leaves descriptors for the owner and runners
    std::unordered_map<uid_t, size_t> user_input_;   // bytes buffered, per other user
    std::unordered_map<uid_t, size_t> user_pending_; // bytes of answers not read yet, per other user
    double other_logged_ = -60;       // log_other: when, and how many lines left out since
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
    size_t acks_pending_ = 0;        // runners waiting for Done until the journal works
    std::unordered_map<JobId, int> start_tries_;   // runners that ended before the job started, in a row
    // GPUs (server_gpus.cpp): the probe, its last result, and what ts jobs hold.
    GpuProbe probe_;
    GpuSnapshot gpu_snap_;                        // the last probe's result (when == 0: none yet)
    bool gpu_probed_ = false;                     // a probe has ended since the server started
    std::string gpu_status_;                      // why no GPU job can be placed now ("": they can)
    std::map<std::string, GpuCard> gpu_known_;    // every card seen, by UUID
    std::map<std::string, double> gpu_last_start_;// when a job last started on a card (mono_now, as every time here)
    std::map<std::string, double> gpu_last_end_;  // when a ts job on a card last ended
    std::map<JobId, std::vector<std::string>> gpu_held_;   // the running GPU jobs' cards (gpu_note_ends)
    uint64_t gpu_held_seen_ = ~uint64_t(0);       // queue_.changes() when gpu_held_ was last brought up to date
    uint64_t gpu_snaps_ = 0;                      // probe results taken: each may change every placement
    // What the last pass that placed GPU jobs decided by, and decided: while
    // none of it changes, a pass places nothing again (gpu_pass_due).
    struct GpuPass {
        bool valid = false;       // it started nothing (one that did is followed by another)
        uint64_t snaps = 0;       // gpu_snaps_ then
        uint64_t changes = 0;     // queue_.changes() then
        double until = 0;         // a card settles, or the probe gets too old, then
        bool waiting = false;     // a GPU job waited for its GPUs only
        bool wants_probe = false; // ...and a newer probe may place it
    } gpu_pass_;
    size_t gpu_asked_ = 0;                        // placements tried by every pass together
    double gpu_retry_at_ = 0;                     // a probe that failed or could not start: again then
    double gpu_failed_at_ = 0;                    // when the last probe failed (gpu_status_ says why)
    std::set<std::string> gpu_doubted_;           // cards the last probe could not read (logged once)
    std::set<std::string> gpu_unread_;            // lines the last probe could not read (logged once)
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

// What a message is: a request of a Client (one that changes the queue is
// refused while the journal fails), a runner's report on its job (only on a
// connection that runs one), or a connection saying what it is.
enum Kind : uint8_t { kRequest, kChange, kReport, kHello };

// Who may send it (design.md "Access"), checked before the handler runs,
// except kJobOwner, which the handler checks once it has found the job
// (may_manage). Every refusal says why, with the table's verb.
enum Access : uint8_t {
    kAnyone,      // every user (other users' requests are bounded: design.md "Trust")
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


inline double us_to_s(int64_t us) { return double(us) / 1e6; }

// How long restored jobs wait for their runner or -f client to come back
// (a live server-spawned runner is waited for as long as it lives).
constexpr double kReattachGrace = 5.0;
// Runners that may end before their job starts, in a row, before the job is marked lost.
constexpr int kStartTries = 3;
// How long a started job waits for a spare runner before the server forks one.
constexpr double kSpareWait = 2.0;
// How often the server looks for its socket, journal and log (a /tmp cleaner
// may remove them; a client that finds the socket gone asks at once).
constexpr double kFileCheck = 1.0;

/* The row of kHandlers (handlers.cpp) for a message type, or nullptr. */
const Handler* handler_of(proto::MsgType t);
