/*
 * jobs.cpp — the queue model; see jobs.h. It opens with a job's lifecycle:
 * the transition table, and Queue::move, the one function that moves a job.
 */
#include "jobs.h"

#include <algorithm>
#include <array>
#include <ctime>
#include <iterator>

#include "gpu.h"
#include "util.h"

std::string JobSpec::command() const {
    std::string s;
    for (size_t i = 0; i < argv.size(); ++i) {
        if (i) s += ' ';
        s += argv[i];
    }
    return s;
}

/* "3,4,5" */
static std::string id_list(const std::vector<int32_t>& ids) {
    std::string s;
    for (int32_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
    return s;
}

std::string Job::dep_prefix(bool show_unresolved) const {
    std::string s;
    std::vector<int32_t> after = spec.settings.after();
    if (!after.empty()) s = "[" + id_list(after) + "]; ";
    std::vector<int32_t> must = spec.settings.more_depends();
    if (depends && depend_on != -1) must.insert(must.begin(), depend_on);
    if (!must.empty()) return s + "[" + id_list(must) + "]&& ";
    if (depends && show_unresolved) s += "&& ";
    return s;
}

bool Job::has_more_deps() const {
    return spec.settings.bytes(kSettingDepends) || spec.settings.bytes(kSettingAfter);
}

const std::vector<std::pair<JobId, int>> Job::kNoResults;

const std::vector<std::pair<JobId, int>>& Job::more_results() const {
    return results_ ? *results_.operator->() : kNoResults;
}

void Job::learn_result(JobId dep, int errorlevel) {
    if (!learned(dep)) results_.make().emplace_back(dep, errorlevel);
}

const int* Job::learned(JobId dep) const {
    for (const auto& r : more_results())
        if (r.first == dep) return &r.second;
    return nullptr;
}

// ------------------------------------------------------------ lifecycle

/* The operations that move a job: one row of kTransitions each, in this order. */
enum class Queue::Op : unsigned char {
    Add, Restore, Start, Unstart, Retry, Admit, End, Skip, Forget, Remove, Evict, Clear, CancelAdd,
};

/* A row: the places a job may come from and go to by one operation, as sets
 * (bit s for JobState s, kOut for outside the queue). */
struct Queue::Transition {
    Op op;
    unsigned from, to;
    const char* name;
};

static constexpr unsigned bit(JobState s) {
    auto i = static_cast<unsigned>(s);
    return i <= static_cast<unsigned>(JobState::Overflow) ? 1u << i : 0;
}
static constexpr unsigned kOut = bit(JobState::Overflow) << 1;
static constexpr unsigned kQueued = bit(JobState::Queued), kRunning = bit(JobState::Running),
                          kFinished = bit(JobState::Finished), kSkipped = bit(JobState::Skipped),
                          kOverflow = bit(JobState::Overflow);
static constexpr unsigned kEnded = kFinished | kSkipped;

/* Every move a job can make (the diagram in jobs.h). */
constexpr Queue::Transition Queue::kTransitions[] = {
    {Op::Add, kOut, kQueued | kOverflow, "add"},   // Overflow: the queue is full (TS_MAXCONN)
    {Op::Restore, kOut, kQueued | kRunning | kOverflow | kEnded, "restore"},   // as the journal had it
    {Op::Start, kQueued, kRunning, "start"},       // schedule(), and the journal's record of it
    {Op::Unstart, kRunning, kQueued, "unstart"},   // started, but it never ran
    {Op::Retry, kRunning, kQueued, "retry"},       // it failed, and runs again (--retry)
    {Op::Admit, kOverflow, kQueued, "admit"},      // admit(), admit_overflow(): there is room
    // Queued and Overflow: it never ran (lost, or refused by -B); Skipped: a replayed skip.
    {Op::End, kQueued | kRunning | kOverflow, kEnded, "end"},
    {Op::Skip, kQueued, kSkipped, "skip"},         // its dependency failed
    {Op::Forget, kEnded, kOut, "forget"},          // ended, and not kept (-nf)
    {Op::Remove, kQueued | kEnded, kOut, "remove"},   // -r (a queued job: not the head)
    {Op::Evict, kEnded, kOut, "evict"},            // over TS_MAXFINISHED
    {Op::Clear, kEnded, kOut, "clear"},            // -C
    {Op::CancelAdd, kQueued | kOverflow, kOut, "cancel_add"},   // its record could not be written
};

/* Row i is the row of Op i (move() finds its row by index), every Op has
 * one, and no row moves a job from outside the queue to outside it. */
constexpr bool Queue::table_is_sound() {
    constexpr size_t n = sizeof kTransitions / sizeof kTransitions[0];
    for (size_t i = 0; i < n; ++i) {
        const Transition& t = kTransitions[i];
        if (t.op != static_cast<Op>(i) || !t.from || !t.to || (t.from & t.to & kOut)) return false;
    }
    return kTransitions[n - 1].op == Op::CancelAdd;
}

/* Queued, running and overflow jobs wait (Usage::waiting); the others are on the finished list. */
static bool waiting(JobState s) {
    return s == JobState::Queued || s == JobState::Running || s == JobState::Overflow;
}

std::list<JobId>& Queue::list_of(JobState s) {
    if (s == JobState::Overflow) return overflow_;
    return waiting(s) ? active_ : finished_;
}

/* The one place where a job changes state, joins the queue or leaves it.
 * A move the table does not allow changes nothing and returns false. A move
 * within a list (start, unstart) keeps the job's place; a move to another list
 * puts it at that list's end. Moving out forgets the job: e is gone after. */
bool Queue::move(Entry& e, Op op, Place to) {
    static_assert(table_is_sound());
    ++changes_;
    Job& j = e.job;
    bool in = e.listed;   // from j.state; else from outside the queue
    const Transition& t = kTransitions[static_cast<size_t>(op)];
    if (!(t.from & (in ? bit(j.state) : kOut)) || !(t.to & (to ? bit(*to) : kOut))) return false;

    // Off its old place...
    Usage& u = usage_[j.spec.uid];
    bool same_list = in && to && &list_of(j.state) == &list_of(*to);
    bool gpu = j.spec.settings.gpus() > 0;
    if (in) {
        if (j.state == JobState::Queued) --queued_;
        if (gpu && j.state == JobState::Queued) --gpu_queued_;
        if (gpu && j.state == JobState::Running) gpu_running_.erase(j.id);
        if (j.state == JobState::Running) busy_ -= j.spec.num_slots;
        --(waiting(j.state) ? u.waiting : u.finished);
        if (!same_list) list_of(j.state).erase(e.pos);
    }
    if (!to) {   // ...and out of the queue: forgotten
        u.bytes -= e.bytes;
        if (!j.spec.token.empty()) tokens_.erase(j.spec.token);
        JobId id = j.id;
        jobs_.erase(id);
        return true;
    }
    // ...onto its new one.
    if (!in) {   // it joins the queue
        u.bytes += e.bytes;
        if (!j.spec.token.empty()) tokens_[j.spec.token] = j.id;
    }
    j.state = *to;
    e.listed = true;
    if (j.state == JobState::Running) busy_ += j.spec.num_slots;
    if (j.state == JobState::Queued) ++queued_;
    if (gpu && j.state == JobState::Queued) ++gpu_queued_;
    if (gpu && j.state == JobState::Running) gpu_running_.insert(j.id);
    ++(waiting(j.state) ? u.waiting : u.finished);
    if (!same_list) e.pos = list_of(j.state).insert(list_of(j.state).end(), j.id);
    return true;
}

Queue::Entry* Queue::entry(JobId id) {
    auto it = jobs_.find(id);
    return it == jobs_.end() ? nullptr : &it->second;
}

// ------------------------------------------------------------ the queue

const std::vector<std::string> Job::kNone;
const std::vector<Attempt> Job::kNoAttempts;

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

JobId Queue::add(JobSpec spec, double wall, double mono) {
    if (!relinked_) relink_dependencies();
    JobId id = next_id_++;
    Entry e;
    e.job.id = id;
    e.job.spec = std::move(spec);
    e.job.env = intern(std::move(e.job.spec.env));
    e.job.spec.env.clear();
    e.job.spec.limits = intern(e.job.spec.limits);
    e.job.enqueue_time = wall;
    e.job.queued_mono = mono;
    resolve_dependency(e.job);   // before the job joins the active list
    e.bytes = spec_bytes(e.job.spec);
    bool full = max_jobs_ && active_.size() + overflow_.size() + 1 >= max_jobs_;
    (void)move(jobs_.emplace(id, std::move(e)).first->second, Op::Add,
               full ? JobState::Overflow : JobState::Queued);
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
    e.bytes = spec_bytes(e.job.spec);
    JobState state = e.job.state;
    if (!move(jobs_.emplace(id, std::move(e)).first->second, Op::Restore, state))
        jobs_.erase(id);   // not a state at all: the journal checks, but no job may be on no list
    relinked_ = false;
}

void Queue::relink_dependencies() {
    ++changes_;
    dependents_.clear();
    for (const auto& [id, e] : jobs_) {
        const Job& j = e.job;
        bool waiting = j.state == JobState::Queued || j.state == JobState::Overflow;
        if (!waiting) continue;
        link_more_deps(j);
        if (!j.depends || j.dep_result) continue;
        const Job* dep = find(j.depend_on);
        if (dep && dep->state != JobState::Finished && dep->state != JobState::Skipped)
            dependents_[j.depend_on].push_back(id);
        // A dependency that is gone is decided when the job is due (as "failed").
    }
    relinked_ = true;
}

bool Queue::start(JobId id) {
    Entry* e = entry(id);
    return e && move(*e, Op::Start, JobState::Running);
}

bool Queue::unstart(JobId id) {
    Entry* e = entry(id);
    if (!e || !move(*e, Op::Unstart, JobState::Queued)) return false;
    e->job.pid = 0;
    e->job.runner_pid = 0;
    e->job.start_time = 0;   // it never ran: its start reported, maybe, but not its go
    e->job.output.clear();
    e->job.drop_gpus();
    return true;
}

bool retryable(const JobResult& r) {
    return r.how != EndHow::Cancelled && !r.skipped && r.note.empty() && r.lost.empty() &&
           (r.errorlevel != 0 || r.signal != 0 || r.how == EndHow::TimedOut);
}

bool Queue::will_retry(JobId id, const JobResult& r) const {
    const Job* j = find(id);
    // A job run by its client (-f, another user's in a shared queue) too: its
    // runner is told Again instead of Done, and waits for its next Run.
    return j && j->state == JobState::Running && retryable(r) &&
           j->attempts().size() < j->spec.settings.retries();
}

RunOf run_of(const Job& j, uint16_t run, bool started) {
    size_t now = j.attempts().size();
    if (run == now) return RunOf::Current;
    return j.spec.run_by_client() && started && run + 1u == now ? RunOf::Attempt : RunOf::Over;
}

bool Queue::retry(JobId id, const JobResult& r, double end) {
    Entry* e = entry(id);
    if (!e || !move(*e, Op::Retry, JobState::Queued)) return false;
    Job& j = e->job;
    j.attempts_mut().push_back(Attempt{j.start_time, end, r.errorlevel, r.signal, r.how, j.output});
    j.pid = 0;
    j.runner_pid = 0;
    j.start_time = 0;
    j.output.clear();
    j.drop_gpus();
    return true;
}

void Queue::client_back(JobId id) {
    if (Job* j = find(id); j && j->awaiting_client) {
        j->awaiting_client = false;
        ++changes_;
    }
}

void Queue::set_runner(JobId id, pid_t runner_pid) {
    if (Job* j = find(id)) j->runner_pid = runner_pid;
}

void Queue::set_meta(const Meta& m) {
    ++changes_;
    next_id_ = std::max(next_id_, m.next_id);
    last_errorlevel_ = m.last_errorlevel;
    last_finished_id_ = m.last_finished_id;
    if (m.max_slots >= 1) max_slots_ = m.max_slots;
}

bool Queue::admit(JobId id) {
    Entry* e = entry(id);
    return e && move(*e, Op::Admit, JobState::Queued);
}

std::vector<JobId> Queue::admit_overflow() {
    std::vector<JobId> out;
    while (!overflow_.empty() && (!max_jobs_ || active_.size() + 1 < max_jobs_)) {
        Entry& e = jobs_.at(overflow_.front());
        if (e.job.awaiting_client) break;   // its client must come back first (in order)
        if (!move(e, Op::Admit, JobState::Queued)) break;
        out.push_back(e.job.id);
    }
    return out;
}

/* task-spooler §4.6: an explicit id is looked up when the job is due; "-d"
 * means the newest job still queued or running, unless a newer one has
 * already finished, in which case the result of what finished last decides. */
void Queue::resolve_dependency(Job& j) {
    link_more_deps(j);
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

/* j waits for the end of each of its further dependencies still in the
 * queue (one that is gone is decided when j is due). */
void Queue::link_more_deps(const Job& j) {
    if (!j.has_more_deps()) return;
    std::vector<int32_t> ids = j.spec.settings.further_deps();
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    for (int32_t id : ids) {
        const Job* dep = find(id);
        if (id == j.id || !dep || j.learned(id)) continue;
        if (dep->state != JobState::Finished && dep->state != JobState::Skipped)
            dependents_[id].push_back(j.id);
    }
}

/* j no longer waits for anything (its add was undone). */
void Queue::unlink_deps(const Job& j) {
    std::vector<int32_t> ids = j.spec.settings.further_deps();
    if (j.depends) ids.push_back(j.depend_on);
    for (int32_t id : ids) {
        auto d = dependents_.find(id);
        if (d == dependents_.end()) continue;
        auto& v = d->second;
        v.erase(std::remove(v.begin(), v.end(), j.id), v.end());
        if (v.empty()) dependents_.erase(d);
    }
}

std::optional<int> Queue::dep_end(const Job& j, JobId id, bool first) const {
    if (first && j.dep_result) return j.dep_result;
    if (!first) {
        if (const int* r = j.learned(id)) return *r;
        if (id == j.id) return -1;   // itself: it cannot end before it starts
    }
    const Job* dep = find(id);
    if (dep && (dep->state == JobState::Queued || dep->state == JobState::Running)) return std::nullopt;
    return dep ? dep->result.errorlevel : -1;
}

std::vector<JobId> Queue::waiting_for(const Job& j) const {
    std::vector<JobId> out;
    if (j.state != JobState::Queued && j.state != JobState::Overflow) return out;
    if (j.depends && !dep_end(j, j.depend_on, true)) out.push_back(j.depend_on);
    if (!j.has_more_deps()) return out;
    for (int32_t id : j.spec.settings.further_deps())
        if (!dep_end(j, id, false) && std::find(out.begin(), out.end(), id) == out.end())
            out.push_back(id);
    return out;
}

Decisions Queue::schedule(GpuPlan* gpus, double now) {
    if (!relinked_) relink_dependencies();
    if (now == 0) now = wall_now();
    note_time(now);
    Decisions d;
    // The last pass (without GPUs to place) decided nothing, and nothing it
    // decides by changed since (a move, the slots, a release, a start time
    // that came: changes()): this one would decide nothing either. So a
    // queue of jobs waiting on long dependency lists costs nothing per request.
    if (!gpus && idle_at_ == changes_) return d;
    next_due_ = 0;
    bool again = !drained_;   // drained: no start, no skip, no wish for a GPU probe
    while (again) {   // a skip may unblock (and skip) dependents earlier in the list
        again = false;
        for (auto it = active_.begin(); it != active_.end();) {
            if (!room_for_any(gpus, &d)) break;
            Entry& e = jobs_.at(*it++);
            if (e.job.state != JobState::Queued || e.job.awaiting_client) continue;
            if (waits_for_time(e.job, now)) {   // keeps its place; nothing of it is decided
                double t = e.job.spec.settings.not_before();
                if (!e.job.spec.settings.held() && (next_due_ == 0 || t < next_due_)) next_due_ = t;
                continue;
            }
            if (schedule_one(e, gpus, &d)) again = true;
        }
    }
    idle_at_ = !gpus && d.start.empty() && d.skipped.empty() && !d.gpu_waiting ? changes_ : ~uint64_t(0);
    return d;
}

bool Queue::waits_for_time(const Job& j, double now) {
    if (j.spec.settings.empty()) return false;   // most jobs: no settings at all
    return j.spec.settings.held() || j.spec.settings.not_before() > now;
}

/* A job that cannot start on its own now (held, or delayed until later): the
 * "last job" rules and -r pass over it where task-spooler's queue had no such job. */
static bool waits_now(const Job& j) {
    return j.state == JobState::Queued && Queue::waits_for_time(j, wall_now());
}

void Queue::note_time(double now) {
    if (next_due_ != 0 && now >= next_due_) {
        next_due_ = 0;
        ++changes_;
    }
}

bool Queue::hold(JobId id, bool on) {
    Entry* e = entry(id);
    if (!e || e->job.state != JobState::Queued) return false;
    JobSettings& s = e->job.spec.settings;
    if (on ? s.held() : !s.held() && s.not_before() == 0) return false;
    s.set_held(on);
    if (!on) s.set_not_before(0);
    ++changes_;
    return true;
}

/* Starting and skipping a CPU job need a free slot, a GPU job room on the
 * GPUs: with neither (or no job of the kind there is room for), nothing can
 * happen, however long the queue (this keeps a full queue cheap). So a GPU
 * job whose dependency failed is skipped once it could start, as a CPU job is.
 * Without a plan (the GPUs are not known well enough), the pass looks for
 * one GPU job that waits for nothing but its GPUs: then a probe is wanted
 * (gpu_waiting), and not for jobs that wait for their dependency or for slots. */
bool Queue::room_for_any(const GpuPlan* gpus, Decisions* d) const {
    bool slots_free = max_slots_ - busy_ > 0;
    bool no_gpu_room = gpu_queued_ == 0 || (gpus ? gpus->full() : d->gpu_waiting);
    bool no_cpu_room = !slots_free || queued_ == gpu_queued_;
    if (!no_gpu_room || !no_cpu_room) return true;
    if (gpu_queued_ > 0 && gpus) d->gpu_waiting = true;
    return false;
}

/* What a queued job's dependency says now: it may start, it is skipped, or
 * it waits (its dependency is not decided yet, or a failed one is skipped
 * only with a free slot, as in task-spooler; a GPU job needs none to be). */
Queue::DependencySays Queue::dependency_says(const Job& j, bool gpu) const {
    if (!j.depends && !j.has_more_deps()) return DependencySays::Start;
    bool wait = false, failed = false;
    if (j.depends) {
        std::optional<int> r = dep_end(j, j.depend_on, true);
        wait = !r;   // not decided yet; later jobs may go first
        failed = r && *r != 0;
    }
    if (j.has_more_deps()) {
        for (int32_t id : j.spec.settings.more_depends()) {
            std::optional<int> r = dep_end(j, id, false);
            wait = wait || !r;
            failed = failed || (r && *r != 0);
        }
        for (int32_t id : j.spec.settings.after()) wait = wait || !dep_end(j, id, false);
    }
    if (wait) return DependencySays::Wait;   // all of them end first
    if (!failed) return DependencySays::Start;
    int free = max_slots_ - busy_;
    if (!gpu && (free <= 0 || free < j.spec.num_slots)) return DependencySays::Wait;
    return DependencySays::Skip;
}

bool Queue::doomed(JobId id) const {
    const Job* j = find(id);
    return j && j->state == JobState::Queued && dependency_says(*j, true) == DependencySays::Skip;
}

/* Start or skip one queued job if it can be now; true when it was skipped
 * (its dependents earlier in the list may be skipped too: another pass). */
bool Queue::schedule_one(Entry& e, GpuPlan* gpus, Decisions* d) {
    Job& j = e.job;
    GpuNeed need{int(j.spec.settings.gpus()), j.spec.settings.gpu_mem(), j.queued_mono};
    bool gpu = need.count > 0;
    switch (dependency_says(j, gpu)) {
    case DependencySays::Wait: return false;
    case DependencySays::Skip: {
        JobId id = j.id;   // retire may forget the job (not kept)
        retire(e, Op::Skip, skipped_result(), j.enqueue_time);
        d->skipped.push_back(id);
        return true;
    }
    case DependencySays::Start: break;
    }
    if (max_slots_ - busy_ < j.spec.num_slots) return false;
    if (!gpu && max_slots_ - busy_ <= 0) return false;
    if (gpu) {
        std::vector<std::string> cards;
        std::string why;   // -i works it out when asked (Server::gpu_wait_reason)
        if (!gpus || gpus->full() || !gpus->place(need, &cards, &why)) {
            d->gpu_waiting = true;
            return false;
        }
        j.gpu().cards = std::move(cards);
    }
    if (move(e, Op::Start, JobState::Running)) d->start.push_back(j.id);
    return false;
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
    if (Entry* e = entry(id)) retire(*e, Op::End, r, end);   // one that ended already stays as it is
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
    Entry* e = entry(id);
    if (!e) return;
    Job gone = e->job;   // its dependencies, to unlink once it is out
    if (!move(*e, Op::CancelAdd, std::nullopt)) return;
    unlink_deps(gone);   // it no longer waits for them (its id may be given again)
    if (id == next_id_ - 1) --next_id_;
}

Job* Queue::by_token(const std::string& token) {
    if (token.empty()) return nullptr;
    auto it = tokens_.find(token);
    return it == tokens_.end() ? nullptr : find(it->second);
}

const Job* Queue::same_command(uid_t uid, const std::vector<std::string>& argv) const {
    for (const std::list<JobId>* l : {&active_, &overflow_})
        for (JobId id : *l) {
            const Job* j = find(id);
            if (j && j->spec.uid == uid && j->spec.argv == argv) return j;
        }
    return nullptr;
}

/* A job ends (op End or Skip) with its result: onto the finished list, or
 * forgotten if not kept (-nf). Its dependents learn the result either way. */
void Queue::retire(Entry& e, Op op, const JobResult& r, double end) {
    if (!move(e, op, r.skipped ? JobState::Skipped : JobState::Finished)) return;
    Job& j = e.job;
    j.result = r;
    j.end_time = end;
    j.awaiting_client = false;
    // Its environment is kept (and journaled) while the job is: --requeue runs
    // it again with it. Finished jobs are few (TS_MAXFINISHED), and most share
    // one environment (intern).
    last_errorlevel_ = r.errorlevel;
    last_finished_id_ = j.id;
    tell_dependents(j.id, r.errorlevel);
    if (!(j.spec.flags & proto::kKeepFinished)) (void)move(e, Op::Forget, std::nullopt);
    else evict_finished();
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
        if (!move(jobs_.at(*it), Op::Evict, std::nullopt)) break;
    }
}

void Queue::tell_dependents(JobId id, int errorlevel) {
    auto it = dependents_.find(id);
    if (it == dependents_.end()) return;
    ++changes_;
    for (JobId d : it->second) {
        Job* j = find(d);
        if (!j) continue;
        if (j->depends && j->depend_on == id && !j->dep_result) j->dep_result = errorlevel;
        if (j->has_more_deps()) j->learn_result(id, errorlevel);
    }
    dependents_.erase(it);
}

bool Queue::remove(JobId id, bool head_too) {
    if (!relinked_) relink_dependencies();
    Entry* e = entry(id);
    // task-spooler's -r never takes the head of the queue, even a queued one (ts-spec §1.2).
    // A held or delayed head is no head task-spooler had: it has not started, so -r takes it.
    if (!e || (!head_too && e->job.state == JobState::Queued && e->pos == active_.begin() &&
               !waits_now(e->job)))
        return false;
    if (!move(*e, Op::Remove, std::nullopt)) return false;   // running, or overflow
    last_errorlevel_ = -1;   // a "-d" job after this one will be skipped, as in task-spooler
    tell_dependents(id, -1);
    return true;
}

bool Queue::urgent(JobId id) {
    Job* j = find(id);
    if (!j || j->state != JobState::Queued) return false;
    Entry& e = jobs_.at(id);
    if (e.pos == active_.begin()) return false;
    auto second = std::next(active_.begin());
    if (e.pos == second) return true;
    ++changes_;
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
    ++changes_;
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
    ++changes_;
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
    ++changes_;
    std::swap(*ea.pos, *eb.pos);
    std::swap(ea.pos, eb.pos);
    return true;
}

void Queue::clear_finished() {
    for (auto it = finished_.begin(); it != finished_.end();)
        (void)move(jobs_.at(*it++), Op::Clear, std::nullopt);
}

/* The newest job of uid (any uid when none) in a list, from its end. */
static Job* newest_of(Queue& q, const std::list<JobId>& l, std::optional<uid_t> uid) {
    for (auto it = l.rbegin(); it != l.rend(); ++it)
        if (Job* j = q.find(*it); !uid || j->spec.uid == *uid) return j;
    return nullptr;
}

/* task-spooler's rule: the tail of the active list, else of the finished
 * list. A held or delayed tail was added before any job that ended since (a
 * --hold true; true; -w must not wait for the held job): then the newest job
 * by id, which is that tail only when nothing was added after it. */
Job* Queue::pick_last_added(std::optional<uid_t> uid) {
    Job* tail = newest_of(*this, active_, uid);
    if (!tail) return newest_of(*this, finished_, uid);
    if (!waits_now(*tail)) return tail;
    Job* best = tail;
    for (const std::list<JobId>* l : {&active_, &finished_})
        for (JobId id : *l)
            if (Job* j = find(id); id > best->id && (!uid || j->spec.uid == *uid)) best = j;
    return best;
}

Job* Queue::last_added() { return pick_last_added(std::nullopt); }

/* task-spooler's rule: the head of the active list while a slot is busy (even
 * a queued head, ts-spec §5 #12), else the tail of the finished list. Held and
 * delayed jobs at the head are passed over: they are no head task-spooler had. */
Job* Queue::last_run() {
    if (busy_ > 0 || !gpu_running_.empty())
        for (JobId id : active_)
            if (Job* j = find(id); !waits_now(*j)) return j;
    if (!finished_.empty()) return find(finished_.back());
    return nullptr;
}

Job* Queue::last_added(uid_t uid) { return pick_last_added(uid); }

Job* Queue::last_run(uid_t uid) {
    Job* j = last_run();
    if (!j || j->spec.uid == uid) return j;
    for (JobId id : active_)
        if (Job* a = find(id); a->state == JobState::Running && a->spec.uid == uid) return a;
    return newest_of(*this, finished_, std::optional<uid_t>(uid));
}
