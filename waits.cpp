/*
 * waits.cpp — deferred requests, indexed by what they wait on (waits.h).
 */
#include "waits.h"

#include <algorithm>

int Deferred::list_status(EndHow* how) const {
    *how = EndHow::Normal;
    for (JobId id : order) {
        auto it = results.find(id);
        if (it == results.end() || it->second == 0) continue;
        auto h = hows.find(id);
        if (h != hows.end()) *how = h->second;
        return it->second & 255;
    }
    return 0;
}

void Waits::add(Conn& c, Deferred d) {
    (void)drop(c);   // one request a connection: never two indexed for it
    for (JobId id : d.ends) by_job_.emplace(id, &c);
    for (JobId id : d.starts)
        if (!d.ends.count(id)) by_job_.emplace(id, &c);
    if (d.probe) probe_.push_back(&c);
    if (d.deadline != 0) deadlines_.emplace(d.deadline, &c);
    waits_[&c] = Entry{std::move(d), ++seq_};
    if (!waits_[&c].d.waiting()) wake_all({&c});
}

const Deferred* Waits::find(const Conn& c) const {
    auto it = waits_.find(&c);
    if (it != waits_.end()) return &it->second.d;
    for (const auto& r : ready_)
        if (r.first == &c) return &r.second;
    return nullptr;
}

std::optional<Deferred> Waits::drop(const Conn& c) {
    auto it = waits_.find(&c);
    if (it != waits_.end()) {
        Deferred d = std::move(it->second.d);
        waits_.erase(it);
        unindex(const_cast<Conn*>(&c), d);
        return d;
    }
    for (auto r = ready_.begin(); r != ready_.end(); ++r)
        if (r->first == &c) {
            Deferred d = std::move(r->second);
            ready_.erase(r);
            return d;
        }
    return std::nullopt;
}

/* Off every index (its entry is gone from waits_ already). */
void Waits::unindex(Conn* c, const Deferred& d) {
    std::set<JobId> jobs = d.ends;
    jobs.insert(d.starts.begin(), d.starts.end());
    for (JobId id : jobs) {
        auto range = by_job_.equal_range(id);
        for (auto it = range.first; it != range.second; ++it)
            if (it->second == c) {
                by_job_.erase(it);
                break;
            }
    }
    if (d.probe) probe_.erase(std::remove(probe_.begin(), probe_.end(), c), probe_.end());
    if (d.deadline != 0) {
        auto range = deadlines_.equal_range(d.deadline);
        for (auto it = range.first; it != range.second; ++it)
            if (it->second == c) {
                deadlines_.erase(it);
                break;
            }
    }
}

void Waits::on_change(const Change& ch) {
    switch (ch.kind) {
    case ChangeKind::Ended:
        job_news(ch.id, true, ch.result ? ch.result->errorlevel : -1, ch.result ? ch.result->how : EndHow::Normal);
        break;
    case ChangeKind::Removed: job_news(ch.id, true, -1); break;   // gone: its waiters return at once
    case ChangeKind::Running: job_news(ch.id, false, 0); break;
    default: break;
    }
}

/* A job ended (or was removed), or started to run: the requests waiting on it. */
void Waits::job_news(JobId id, bool ended, int errorlevel, EndHow how) {
    std::vector<Conn*> done;
    auto range = by_job_.equal_range(id);
    for (auto it = range.first; it != range.second;) {
        Deferred& d = waits_.at(it->second).d;
        if (d.starts.erase(id) && !ended) d.ran.insert(id);
        if (ended && d.ends.erase(id)) {
            d.results[id] = errorlevel;
            if (how != EndHow::Normal) d.hows[id] = how;
            d.errorlevel = errorlevel;
            d.how = how;
        }
        if (d.ends.count(id)) {   // started, and still to end
            ++it;
            continue;
        }
        if (!d.waiting()) done.push_back(it->second);
        it = by_job_.erase(it);
    }
    wake_all(std::move(done));
}

void Waits::probed() {
    std::vector<Conn*> done;
    for (Conn* c : probe_) {
        Deferred& d = waits_.at(c).d;
        d.probe = false;
        if (!d.waiting()) done.push_back(c);
    }
    probe_.clear();
    wake_all(std::move(done));
}

void Waits::expire(double now) {
    std::vector<Conn*> done;
    while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
        Conn* c = deadlines_.begin()->second;
        deadlines_.erase(deadlines_.begin());
        Deferred& d = waits_.at(c).d;
        d.expired = true;
        d.deadline = 0;   // off that index already
        done.push_back(c);
    }
    wake_all(std::move(done));
}

double Waits::next_deadline() const { return deadlines_.empty() ? 0 : deadlines_.begin()->first; }

/* Satisfied requests leave every index, then are answered (in the order they
 * were made), or held for the loop when they dispatch again. */
void Waits::wake_all(std::vector<Conn*> cs) {
    std::sort(cs.begin(), cs.end(), [this](Conn* a, Conn* b) { return waits_.at(a).seq < waits_.at(b).seq; });
    std::vector<std::pair<Conn*, Deferred>> woken;
    for (Conn* c : cs) {
        auto it = waits_.find(c);
        Deferred d = std::move(it->second.d);
        waits_.erase(it);
        unindex(c, d);
        woken.emplace_back(c, std::move(d));
    }
    for (auto& [c, d] : woken) {
        if (d.then == Deferred::Then::Dispatch) ready_.emplace_back(c, std::move(d));
        else wake_(*c, std::move(d));
    }
}

std::vector<std::pair<Conn*, Deferred>> Waits::take_ready() {
    std::vector<std::pair<Conn*, Deferred>> out;
    out.swap(ready_);
    return out;
}
