/*
 * jobs.cpp — the queue model; see jobs.h.
 */
#include "jobs.h"

#include <algorithm>
#include <array>
#include <ctime>
#include <iterator>

#include "frame.h"
#include "util.h"

std::string JobSpec::command() const {
    std::string s;
    for (size_t i = 0; i < argv.size(); ++i) {
        if (i) s += ' ';
        s += argv[i];
    }
    return s;
}

std::string Job::dep_prefix() const {
    if (!depends) return std::string();
    if (depend_on == -1) return "&& ";
    return format("[%d]&& ", depend_on);
}

Queue::Queue() = default;

Job* Queue::find(JobId id) {
    auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : &it->second.job;
}

const Job* Queue::find(JobId id) const {
    auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : &it->second.job;
}

template <class T>
template <class Make>
std::shared_ptr<const T> Queue::Pool<T>::get(const std::string& key, Make make) {
    if (++lookups % 1024 == 0) {
        for (auto it = by_content.begin(); it != by_content.end();)
            it = it->second.expired() ? by_content.erase(it) : std::next(it);
    }
    auto& slot = by_content[key];
    if (std::shared_ptr<const T> p = slot.lock()) return p;
    std::shared_ptr<const T> p = make();
    slot = p;
    return p;
}

EnvPtr Queue::intern(Env env) {
    if (env.empty()) return nullptr;
    std::string key;
    for (const auto& v : env) {
        key += v;
        key += '\0';
    }
    return envs_.get(key, [&env] { return std::make_shared<const Env>(std::move(env)); });
}

LimitsPtr Queue::intern(const LimitsPtr& limits) {
    if (!limits || !limits->valid) return nullptr;
    std::string key(reinterpret_cast<const char*>(limits.get()), sizeof(Limits));
    return limits_.get(key, [&limits] { return limits; });
}

JobId Queue::add(JobSpec spec, double now) {
    if (!relinked_) relink_dependencies();
    JobId id = next_id_++;
    Entry e;
    e.job.id = id;
    e.job.spec = std::move(spec);
    e.job.env = intern(std::move(e.job.spec.env));
    e.job.spec.env.clear();
    e.job.spec.limits = intern(e.job.spec.limits);
    e.job.enqueue_time = now;
    resolve_dependency(e.job);   // before the job joins the active list
    if (max_jobs_ && active_.size() + overflow_.size() + 1 >= max_jobs_) {
        e.job.state = JobState::Overflow;
        e.pos = overflow_.insert(overflow_.end(), id);
    } else {
        e.pos = active_.insert(active_.end(), id);
    }
    e.bytes = spec_bytes(e.job.spec);
    count(e.job, e.bytes);
    if (!e.job.spec.token.empty()) tokens_[e.job.spec.token] = id;
    jobs_.emplace(id, std::move(e));
    return id;
}

size_t Queue::spec_bytes(const JobSpec& s) {
    // What the strings cost in memory, not on the wire: an empty argument is a
    // 4-byte length there and a whole std::string here.
    constexpr size_t kString = sizeof(std::string);
    size_t n = sizeof(Job) + kString + s.cwd.size();
    if (s.label) n += kString + s.label->size();
    if (s.env_info) n += kString + s.env_info->size();
    for (const auto& a : s.argv) n += kString + a.size();
    for (const auto& e : s.env) n += kString + e.size();
    return n + s.settings.memory();
}

static bool waiting(JobState s) {
    return s == JobState::Queued || s == JobState::Running || s == JobState::Overflow;
}

/* A job joins the queue: its owner's usage grows. */
void Queue::count(const Job& j, size_t bytes) {
    Usage& u = usage_[j.spec.uid];
    u.bytes += bytes;
    if (waiting(j.state)) ++u.waiting;
    else ++u.finished;
}

/* Drop a job from the map (it is on no list any more), and from its owner's usage. */
void Queue::forget(JobId id) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Usage& u = usage_[it->second.job.spec.uid];
    u.bytes -= it->second.bytes;
    if (waiting(it->second.job.state)) --u.waiting;
    else --u.finished;
    if (!it->second.job.spec.token.empty()) tokens_.erase(it->second.job.spec.token);
    jobs_.erase(it);
}

const Queue::Usage& Queue::usage(uid_t uid) const {
    static const Usage kNone;
    auto it = usage_.find(uid);
    return it == usage_.end() ? kNone : it->second;
}

void Queue::restore(Job j) {
    JobId id = j.id;
    if (!j.spec.env.empty()) j.env = intern(std::move(j.spec.env));
    else if (j.env) j.env = intern(*j.env);
    j.spec.env.clear();
    j.spec.limits = intern(j.spec.limits);
    next_id_ = std::max(next_id_, id + 1);
    if (jobs_.count(id)) return;   // a journal never holds one id twice; ignore if it does
    Entry e;
    e.job = std::move(j);
    Job& job = e.job;
    switch (job.state) {
    case JobState::Queued: e.pos = active_.insert(active_.end(), id); break;
    case JobState::Running:
        e.pos = active_.insert(active_.end(), id);
        busy_ += job.spec.num_slots;
        break;
    case JobState::Overflow: e.pos = overflow_.insert(overflow_.end(), id); break;
    case JobState::Finished:
    case JobState::Skipped: e.pos = finished_.insert(finished_.end(), id); break;
    }
    e.bytes = spec_bytes(job.spec);
    count(job, e.bytes);
    if (!job.spec.token.empty()) tokens_[job.spec.token] = id;
    jobs_.emplace(id, std::move(e));
    relinked_ = false;
}

void Queue::relink_dependencies() {
    dependents_.clear();
    for (const auto& [id, e] : jobs_) {
        const Job& j = e.job;
        bool waiting = j.state == JobState::Queued || j.state == JobState::Overflow;
        if (!waiting || !j.depends || j.dep_result) continue;
        const Job* dep = find(j.depend_on);
        if (dep && dep->state != JobState::Finished && dep->state != JobState::Skipped)
            dependents_[j.depend_on].push_back(id);
        // A dependency that is gone is decided when the job is due (as "failed").
    }
    relinked_ = true;
}

bool Queue::start(JobId id) {
    Job* j = find(id);
    if (!j || j->state != JobState::Queued) return false;
    j->state = JobState::Running;
    busy_ += j->spec.num_slots;
    return true;
}

bool Queue::unstart(JobId id) {
    Job* j = find(id);
    if (!j || j->state != JobState::Running) return false;
    j->state = JobState::Queued;
    busy_ -= j->spec.num_slots;
    j->pid = 0;
    j->runner_pid = 0;
    return true;
}

void Queue::set_runner(JobId id, pid_t runner_pid) {
    if (Job* j = find(id)) j->runner_pid = runner_pid;
}

void Queue::set_meta(const Meta& m) {
    next_id_ = std::max(next_id_, m.next_id);
    last_errorlevel_ = m.last_errorlevel;
    last_finished_id_ = m.last_finished_id;
    if (m.max_slots >= 1) max_slots_ = m.max_slots;
}

bool Queue::admit(JobId id) {
    Job* j = find(id);
    if (!j || j->state != JobState::Overflow) return false;
    Entry& e = jobs_.at(id);
    overflow_.erase(e.pos);
    j->state = JobState::Queued;
    e.pos = active_.insert(active_.end(), id);
    return true;
}

std::vector<JobId> Queue::admit_overflow() {
    std::vector<JobId> out;
    while (!overflow_.empty() && (!max_jobs_ || active_.size() + 1 < max_jobs_)) {
        JobId id = overflow_.front();
        if (jobs_.at(id).job.awaiting_client) break;   // its client must come back first (in order)
        overflow_.pop_front();
        Entry& e = jobs_.at(id);
        e.job.state = JobState::Queued;
        e.pos = active_.insert(active_.end(), id);
        out.push_back(id);
    }
    return out;
}

/* task-spooler §4.6: an explicit id is looked up when the job is due; "-d"
 * means the newest job still queued or running, unless a newer one has
 * already finished, in which case the result of what finished last decides. */
void Queue::resolve_dependency(Job& j) {
    if (!j.spec.depends) return;
    j.depends = true;
    if (j.spec.depend_on != -1) {
        j.depend_on = j.spec.depend_on;
        const Job* dep = find(j.depend_on);
        if (dep && dep->state != JobState::Finished && dep->state != JobState::Skipped)
            dependents_[j.depend_on].push_back(j.id);
        return;
    }
    int d = -1;
    for (JobId id : active_) d = std::max(d, id);
    if (last_finished_id_ > d) d = -1;
    if (d != -1) {
        j.depend_on = d;
        dependents_[d].push_back(j.id);
        return;
    }
    int newest = -1;
    for (JobId id : finished_) newest = std::max(newest, id);
    j.depend_on = newest;
    const Job* f = newest >= 0 ? find(newest) : nullptr;
    j.dep_result = (f && newest > last_finished_id_) ? f->result.errorlevel : last_errorlevel_;
}

Decisions Queue::schedule() {
    if (!relinked_) relink_dependencies();
    Decisions d;
    bool again = true;
    while (again) {   // a skip may unblock (and skip) dependents earlier in the list
        again = false;
        for (auto it = active_.begin(); it != active_.end();) {
            // Starting and skipping both need a free slot: with none, nothing can
            // happen, however long the queue (this keeps a full queue cheap).
            if (max_slots_ - busy_ <= 0) break;
            Job& j = jobs_.at(*it++).job;
            if (j.state != JobState::Queued || j.awaiting_client) continue;
            if (j.depends) {
                std::optional<int> result = j.dep_result;
                if (!result) {
                    const Job* dep = find(j.depend_on);
                    if (dep && (dep->state == JobState::Queued || dep->state == JobState::Running))
                        continue;   // not decided yet; later jobs may go first
                    result = dep ? dep->result.errorlevel : -1;
                }
                // Skipped when it would start, as in task-spooler: with a free slot.
                int free = max_slots_ - busy_;
                if (*result != 0 && (free <= 0 || free < j.spec.num_slots)) continue;
                if (*result != 0) {
                    JobId id = j.id;   // retire may forget the job (not kept)
                    retire(j, skipped_result(), j.enqueue_time);
                    d.skipped.push_back(id);
                    again = true;
                    continue;
                }
            }
            if (max_slots_ - busy_ < j.spec.num_slots) continue;
            j.state = JobState::Running;
            busy_ += j.spec.num_slots;
            d.start.push_back(j.id);
        }
    }
    return d;
}

void Queue::started(JobId id, pid_t pid, const std::string& output, double start) {
    Job* j = find(id);
    if (!j || j->state != JobState::Running) return;
    j->pid = pid;
    j->output = output;
    j->start_time = start;
}

void Queue::end(JobId id, const JobResult& r, double end) {
    if (!relinked_) relink_dependencies();
    Job* j = find(id);
    if (!j || j->state == JobState::Finished || j->state == JobState::Skipped) return;
    if (j->state == JobState::Running) busy_ -= j->spec.num_slots;
    retire(*j, r, end);
}

JobResult skipped_result() {
    JobResult r;
    r.errorlevel = -1;
    r.skipped = true;
    return r;
}

JobResult Queue::lost_result(std::string why) {
    JobResult r;
    r.errorlevel = -1;
    r.signal = 9;   // what task-spooler records when a runner vanishes
    r.lost = std::move(why);
    return r;
}

void Queue::cancel_add(JobId id) {
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return;
    Entry& e = it->second;
    if (e.job.state == JobState::Overflow) overflow_.erase(e.pos);
    else active_.erase(e.pos);
    if (e.job.depends) {   // it no longer waits for its dependency
        auto d = dependents_.find(e.job.depend_on);
        if (d != dependents_.end()) {
            auto& v = d->second;
            v.erase(std::remove(v.begin(), v.end(), id), v.end());
        }
    }
    forget(id);
    if (id == next_id_ - 1) --next_id_;
}

Job* Queue::by_token(const std::string& token) {
    if (token.empty()) return nullptr;
    auto it = tokens_.find(token);
    return it == tokens_.end() ? nullptr : find(it->second);
}

/* Move a job from the active list to the finished list (or drop it). */
void Queue::retire(Job& j, const JobResult& r, double end) {
    Entry& e = jobs_.at(j.id);
    (j.state == JobState::Overflow ? overflow_ : active_).erase(e.pos);
    Usage& u = usage_[j.spec.uid];
    --u.waiting;
    ++u.finished;
    j.state = r.skipped ? JobState::Skipped : JobState::Finished;
    j.result = r;
    j.end_time = end;
    j.awaiting_client = false;
    j.env.reset();   // not needed any more: save the memory
    last_errorlevel_ = r.errorlevel;
    last_finished_id_ = j.id;
    tell_dependents(j.id, r.errorlevel);
    if (!(j.spec.flags & proto::kKeepFinished)) {
        forget(j.id);
        return;
    }
    e.pos = finished_.insert(finished_.end(), j.id);
    evict_finished();
}

/* Over TS_MAXFINISHED: the oldest finished job of the user who has the most
 * goes (so another user's stream of jobs cannot push the owner's results
 * out); with one user, simply the oldest. Ties are broken the same way in a
 * replay: the oldest job's user, else the smallest uid. */
void Queue::evict_finished() {
    while (finished_.size() > max_finished_) {
        uid_t most = jobs_.at(finished_.front()).job.spec.uid;
        size_t top = 0;
        for (const auto& [uid, u] : usage_) top = std::max(top, u.finished);
        if (usage_[most].finished < top) {
            bool found = false;
            for (const auto& [uid, u] : usage_)
                if (u.finished == top && (!found || uid < most)) {
                    most = uid;
                    found = true;
                }
        }
        auto it = finished_.begin();
        while (jobs_.at(*it).job.spec.uid != most) ++it;
        JobId id = *it;
        finished_.erase(it);
        forget(id);
    }
}

void Queue::tell_dependents(JobId id, int errorlevel) {
    auto it = dependents_.find(id);
    if (it == dependents_.end()) return;
    for (JobId d : it->second) {
        Job* j = find(d);
        if (j && !j->dep_result) j->dep_result = errorlevel;
    }
    dependents_.erase(it);
}

bool Queue::remove(JobId id) {
    if (!relinked_) relink_dependencies();
    auto it = jobs_.find(id);
    if (it == jobs_.end()) return false;
    Entry& e = it->second;
    if (e.job.state == JobState::Running || e.job.state == JobState::Overflow) return false;
    if (e.job.state == JobState::Queued) {
        if (e.pos == active_.begin()) return false;
        active_.erase(e.pos);
    } else {
        finished_.erase(e.pos);
    }
    last_errorlevel_ = -1;   // a "-d" job after this one will be skipped, as in task-spooler
    tell_dependents(id, -1);
    forget(id);
    return true;
}

bool Queue::urgent(JobId id) {
    Job* j = find(id);
    if (!j || j->state != JobState::Queued) return false;
    Entry& e = jobs_.at(id);
    if (e.pos == active_.begin()) return false;
    auto second = std::next(active_.begin());
    if (e.pos == second) return true;
    active_.splice(second, active_, e.pos);
    return true;
}

bool Queue::urgent_among_own(JobId id, JobId* before) {
    *before = -1;
    Job* j = find(id);
    if (!j || j->state != JobState::Queued) return false;
    Entry& e = jobs_.at(id);
    if (e.pos == active_.begin()) return false;
    auto to = std::next(active_.begin());
    for (; to != e.pos; ++to) {
        const Job& o = jobs_.at(*to).job;
        if (o.state == JobState::Queued && o.spec.uid == j->spec.uid) break;
    }
    if (to == e.pos) return true;   // first of its owner's already
    *before = *to;
    active_.splice(to, active_, e.pos);
    return true;
}

bool Queue::move_before(JobId id, JobId before) {
    Job* j = find(id);
    Job* b = find(before);
    if (!j || !b || id == before || j->state != JobState::Queued || b->state != JobState::Queued)
        return false;
    Entry& e = jobs_.at(id);
    if (e.pos == active_.begin()) return false;
    active_.splice(jobs_.at(before).pos, active_, e.pos);
    return true;
}

bool Queue::swap(JobId a, JobId b) {
    Job* ja = find(a);
    Job* jb = find(b);
    auto in_queue = [this](Job* j) {
        return j && (j->state == JobState::Queued || j->state == JobState::Running) &&
               jobs_.at(j->id).pos != active_.begin();
    };
    if (a == b || !in_queue(ja) || !in_queue(jb)) return false;
    Entry& ea = jobs_.at(a);
    Entry& eb = jobs_.at(b);
    std::swap(*ea.pos, *eb.pos);
    std::swap(ea.pos, eb.pos);
    return true;
}

void Queue::clear_finished() {
    for (JobId id : finished_) forget(id);
    finished_.clear();
}

Job* Queue::last_added() {
    if (!active_.empty()) return find(active_.back());
    if (!finished_.empty()) return find(finished_.back());
    return nullptr;
}

Job* Queue::last_run() {
    if (busy_ > 0 && !active_.empty()) return find(active_.front());
    if (!finished_.empty()) return find(finished_.back());
    return nullptr;
}

/* The newest job of uid in a list, from its end. */
static Job* newest_of(Queue& q, const std::list<JobId>& l, uid_t uid) {
    for (auto it = l.rbegin(); it != l.rend(); ++it)
        if (Job* j = q.find(*it); j->spec.uid == uid) return j;
    return nullptr;
}

Job* Queue::last_added(uid_t uid) {
    Job* j = last_added();
    if (!j || j->spec.uid == uid) return j;   // one user's queue: as ever, and at once
    if (Job* a = newest_of(*this, active_, uid)) return a;
    return newest_of(*this, finished_, uid);
}

Job* Queue::last_run(uid_t uid) {
    Job* j = last_run();
    if (!j || j->spec.uid == uid) return j;
    for (JobId id : active_)
        if (Job* a = find(id); a->state == JobState::Running && a->spec.uid == uid) return a;
    return newest_of(*this, finished_, uid);
}
