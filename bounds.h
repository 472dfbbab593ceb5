/*
 * bounds.h — what other users may hold of a queue's server. Every local
 * user who can reach a shared queue's socket may be hostile (README,
 * "Security"), so each other user's connections, buffered requests and
 * unread answers are counted here and refused past a bound, and the log
 * takes at most one line about other users every few seconds. The owner
 * and root are bounded by memory only.
 *
 * A connection carries its Charges (what it holds: counted or not, bytes
 * of input, bytes of unread answers); only Bounds changes them, and
 * release() gives all of it back when the connection goes, so a count
 * can never be left behind by an error path. Per-user totals live in one
 * Usage per uid: a new per-user bound (a cap on queued jobs, a fair share)
 * is one more field there and one more charge method here. The caps on
 * another user's jobs in the queue are checked here too (may_queue), from
 * the counts the queue keeps (Queue::usage).
 *
 * Bounds knows no sockets and no connections list: the server says how many
 * plain connections a user has (a connection that becomes a job's runner
 * stops counting, which only the server sees), and logs or sends the
 * reasons these methods give.
 */
#pragma once

#include <cstddef>
#include <string>
#include <unordered_map>
#include <sys/types.h>

constexpr size_t kUserMaxConns = 32;            // plain connections (not a job's runner) per uid
constexpr size_t kUserMaxInput = 16u << 20;     // buffered input of one uid, all connections
constexpr size_t kUserMaxPending = 64u << 20;   // answers (-i text, list ids) one uid has not read
constexpr size_t kFdReserve = 128;              // descriptors kept for the owner and runners
constexpr double kOtherLogEvery = 10.0;         // seconds between two log lines about other users

/* The bounds themselves (tests give smaller ones). */
struct BoundLimits {
    size_t user_conns = kUserMaxConns;
    size_t others_conns = 1000;   // all other users together (set_descriptors)
    size_t user_input = kUserMaxInput;
    size_t user_unread = kUserMaxPending;
    double log_every = kOtherLogEvery;
    size_t user_jobs = 1000;              // queued and running jobs (TS_USER_MAXJOBS)
    size_t user_bytes = size_t(64) << 20; // bytes of those jobs (TS_USER_MAXSIZE)
};

/* What one connection holds against its user's bounds. Written by Bounds only. */
class Charges {
public:
    bool bounded() const { return bounded_; }
    size_t input() const { return input_; }
    size_t unread() const { return unread_; }

private:
    friend class Bounds;
    uid_t uid_ = static_cast<uid_t>(-1);
    bool bounded_ = false;   // another user's connection, counted by admit
    size_t input_ = 0;       // bytes read and not dispatched yet (or held for a GPU probe)
    size_t unread_ = 0;      // bytes of its long answer not sent yet
};

class Bounds {
public:
    explicit Bounds(uid_t owner, BoundLimits limits = BoundLimits()) : owner_(owner), limits_(limits) {}

    /* The owner and root: never bounded. */
    bool trusted(uid_t uid) const { return uid == owner_ || uid == 0; }
    /* The server may hold n descriptors: other users together get all but
     * kFdReserve of them (half, when there are few). */
    void set_descriptors(size_t n);
    /* The caps on another user's jobs in the queue (the queue's settings). */
    void set_job_caps(size_t jobs, size_t bytes);

    /* A new connection of uid, whose user holds `plain` other connections
     * that are not a job's runner. True (and counted, for another user)
     * when it may stay; false with *why when it must be closed. */
    bool admit(Charges* c, uid_t uid, size_t plain, std::string* why);
    /* Bytes read on a connection, until dispatched (release_input). False
     * with *why past the user's bound: the connection is to be closed. */
    bool charge_input(Charges* c, size_t bytes, std::string* why);
    void release_input(Charges* c, size_t bytes);
    /* The connection's unread answer now holds `bytes` (replacing what it
     * held before). False with *why past the user's bound (it then holds
     * nothing). */
    bool charge_unread(Charges* c, size_t bytes, std::string* why);
    void release_unread(Charges* c);
    /* The connection is gone: everything it held is given back. */
    void release(Charges* c);

    /* A job of `bytes` of uid's, who has `jobs` queued or running holding
     * `held` bytes (Queue::usage): true when it may be queued; else false
     * with *why, which names the cap and who may raise it. */
    bool may_queue(uid_t uid, size_t jobs, size_t held, size_t bytes, std::string* why) const;

    /* A line about another user is to be logged now: true, with *left_out
     * the lines left out since the last one; false (and counted) when one
     * was logged less than log_every seconds ago. */
    bool may_log(double now, size_t* left_out);

    /* What other users hold, for tests and -i of later issues. */
    size_t others_conns() const { return others_conns_; }
    size_t user_input(uid_t uid) const;
    size_t user_unread(uid_t uid) const;

private:
    struct Usage {
        size_t input = 0;
        size_t unread = 0;
        bool empty() const { return input == 0 && unread == 0; }
    };
    void forget_if_empty(uid_t uid);

    uid_t owner_;
    BoundLimits limits_;
    size_t others_conns_ = 0;                   // connections of other users, all together
    std::unordered_map<uid_t, Usage> users_;    // what each other user holds now
    double logged_at_ = -1e9;                   // may_log: the last line about another user...
    size_t unlogged_ = 0;                       // ...and how many were left out since
};
