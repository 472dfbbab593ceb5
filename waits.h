/*
 * waits.h — the one way a connection waits before it is answered: a
 * Deferred request (what it waits on, what happens then), kept by Waits
 * and woken by what it waits on. That is the end of jobs (-w, -t, -c: one
 * job each today, any number in the same way), a job's start, the end of
 * the next GPU probe (a GPU job's submit before the first probe, and
 * --gpu-list), and a deadline that answers with what is known.
 *
 * Waits hears of jobs through the ledger (it is a LedgerListener) and of
 * probes from the server. A satisfied request is handed to the server's
 * wake function at once, except a request to dispatch again (a held
 * submit): that waits in take_ready() for the loop, so a handler never runs
 * from inside another one. A connection has one deferred request at most.
 */
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "frame.h"
#include "jobs.h"
#include "ledger.h"

struct Conn;

struct Deferred {
    enum class Then : uint8_t {
        WaitDone,   // answer with the end of the jobs (WaitDone: the last one's errorlevel,
                    // or list_status() for a list)
        Started,    // answer whether the jobs of starts ran (--wait-start)
        GpuList,    // answer with the cards as known then
        Dispatch,   // run the held request (frame) again
    };
    Then then = Then::WaitDone;
    std::set<JobId> ends;           // every one of these must end (or be removed)
    std::set<JobId> starts;         // every one of these must start to run (or end: it never will)
    bool probe = false;             // the next GPU probe must end
    double deadline = 0;            // then it is satisfied with what is known (mono_now; 0: never)
    std::unique_ptr<Frame> frame;   // Dispatch: the request, held meanwhile
    std::vector<JobId> order;       // a list's ids as given (-w 3,4,5, --wait-all): see list_status()
    // What it saw while it waited.
    std::map<JobId, int> results;   // the errorlevel of each job of ends (-1: removed, or skipped)
    std::map<JobId, EndHow> hows;   // ...and how each ended, where not normally (timed out, cancelled)
    int errorlevel = 0;             // of the last job of ends that ended
    EndHow how = EndHow::Normal;    // ...and how (timed out: -w exits 124)
    bool expired = false;           // the deadline came first
    std::set<JobId> ran;            // the jobs of starts seen to start running (not just end)

    /* A list's answer: the status (as -w gives it, errorlevel & 255) of the
     * first job of order that did not end well (-1, removed or skipped: 255),
     * else 0. A job of order without a result counts as ended well. *how:
     * how that job ended (timed out: -w exits 124). */
    int list_status(EndHow* how) const;

    bool waiting() const { return !ends.empty() || !starts.empty() || probe; }
};

class Waits : public LedgerListener {
public:
    using Wake = std::function<void(Conn& c, Deferred d)>;
    explicit Waits(Wake wake) : wake_(std::move(wake)) {}

    /* c waits for d, and for nothing else (what it waited for before is
     * forgotten). One that waits for nothing is woken at once. */
    void add(Conn& c, Deferred d);
    /* What c waits for (or, satisfied, waits to be dispatched with); nullptr: nothing. */
    const Deferred* find(const Conn& c) const;
    /* c is gone: its request, if it had one, is forgotten and handed back. */
    std::optional<Deferred> drop(const Conn& c);

    void on_change(const Change& ch) override;
    /* A GPU probe ended (or could not start): whoever waited for one. */
    void probed();
    /* Deadlines that came: their requests, with expired set. */
    void expire(double now);
    /* The earliest deadline (0: none), for the loop's wake-up. */
    double next_deadline() const;
    /* Held requests whose wait is over, in the order they were made: the loop dispatches them. */
    std::vector<std::pair<Conn*, Deferred>> take_ready();
    size_t size() const { return waits_.size() + ready_.size(); }
    bool has_ready() const { return !ready_.empty(); }   // take_ready() has something

private:
    struct Entry {
        Deferred d;
        uint64_t seq = 0;   // order of add: woken together, they go in this order
    };
    void unindex(Conn* c, const Deferred& d);
    void job_news(JobId id, bool ended, int errorlevel, EndHow how = EndHow::Normal);
    void wake_all(std::vector<Conn*> cs);

    Wake wake_;
    std::unordered_map<const Conn*, Entry> waits_;
    std::unordered_multimap<JobId, Conn*> by_job_;   // a job of ends or starts
    std::vector<Conn*> probe_;                       // in the order they came
    std::multimap<double, Conn*> deadlines_;
    std::vector<std::pair<Conn*, Deferred>> ready_;
    uint64_t seq_ = 0;
};
