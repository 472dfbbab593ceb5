/*
 * jobs.cpp — the queue model; see jobs.h.
 */
#include "jobs.h"

#include <algorithm>
#include <array>

#include "frame.h"
#include "util.h"

namespace {
constexpr std::array<const char*, 4> kStateNames = {"queued", "running", "finished", "skipped"};
static_assert(kStateNames.size() == static_cast<size_t>(JobState::Skipped) + 1);
}  // namespace

const char* to_string(JobState s) { return kStateNames[static_cast<size_t>(s)]; }

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

JobId Queue::add(JobSpec spec, double now) {
    JobId id = next_id_++;
    Entry e;
    e.job.id = id;
    e.job.spec = std::move(spec);
    e.job.enqueue_time = now;
    resolve_dependency(e.job);   // before the job joins the active list
    e.pos = active_.insert(active_.end(), id);
    jobs_.emplace(id, std::move(e));
    return id;
}

/* task-spooler §4.6: an explicit id is looked up when the job is due; "-d"
 * means the newest job still queued or running, unless a newer one has
 * already finished, in which case the result of what finished last decides. */
void Queue::resolve_dependency(Job& j) {
    if (!j.spec.depends) return;
    j.depends = true;
    if (j.spec.depend_on != -1) {
        j.depend_on = j.spec.depend_on;
        return;
    }
    int d = -1;
    for (JobId id : active_) d = std::max(d, id);
    if (last_finished_id_ > d) d = -1;
    if (d != -1) {
        j.depend_on = d;
        return;
    }
    int newest = -1;
    for (JobId id : finished_) newest = std::max(newest, id);
    j.depend_on = newest;
    const Job* f = newest >= 0 ? find(newest) : nullptr;
    j.dep_result = (f && newest > last_finished_id_) ? f->result.errorlevel : last_errorlevel_;
}

Decisions Queue::schedule() {
    Decisions d;
    bool again = true;
    while (again) {   // a skip may unblock (and skip) dependents earlier in the list
        again = false;
        for (auto it = active_.begin(); it != active_.end();) {
            Job& j = jobs_.at(*it++).job;
            if (j.state != JobState::Queued) continue;
            if (j.depends) {
                std::optional<int> result = j.dep_result;
                if (!result) {
                    const Job* dep = find(j.depend_on);
                    if (dep && (dep->state == JobState::Queued || dep->state == JobState::Running))
                        continue;   // not decided yet; later jobs may go first
                    result = dep ? dep->result.errorlevel : -1;
                }
                if (*result != 0) {
                    JobResult r;
                    r.errorlevel = -1;
                    r.skipped = true;
                    end_job(j, r, j.enqueue_time);
                    d.skipped.push_back(j.id);
                    again = true;
                    continue;
                }
            }
            if (max_slots_ - busy_ <= 0) continue;   // a later skip may still happen
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

void Queue::finished(JobId id, const JobResult& r, double end) {
    Job* j = find(id);
    if (!j || (j->state != JobState::Running && j->state != JobState::Queued)) return;
    if (j->state == JobState::Running) busy_ -= j->spec.num_slots;
    end_job(*j, r, end);
}

JobResult Queue::lost_result() {
    JobResult r;
    r.errorlevel = -1;
    r.signal = 9;   // what task-spooler records when a runner vanishes
    return r;
}

/* Move a job from the active list to the finished list (or drop it). */
void Queue::end_job(Job& j, const JobResult& r, double end) {
    Entry& e = jobs_.at(j.id);
    active_.erase(e.pos);
    j.state = r.skipped ? JobState::Skipped : JobState::Finished;
    j.result = r;
    j.end_time = end;
    last_errorlevel_ = r.errorlevel;
    last_finished_id_ = j.id;
    if (!(j.spec.flags & proto::kKeepFinished)) {
        jobs_.erase(j.id);
        return;
    }
    e.pos = finished_.insert(finished_.end(), j.id);
    evict_finished();
}

void Queue::evict_finished() {
    while (finished_.size() > max_finished_) {
        JobId id = finished_.front();
        finished_.pop_front();
        jobs_.erase(id);
    }
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

std::string list_header(int busy, int max) {
    return format("%-4s %-10s %-20s %-8s %-14s %s [run=%i/%i]\n", "ID", "State", "Output",
                  "E-Level", "Times(r/u/s)", "Command", busy, max);
}

static std::string output_shown(const Job& j) {
    if (j.state == JobState::Skipped) return "(no output)";
    if (!j.spec.stores_output()) return "stdout";
    if (j.state == JobState::Queued) return "(file)";
    return j.output.empty() ? "(...)" : j.output;
}

std::string list_line(const Job& j) {
    std::string cmd = j.dep_prefix();
    if (j.spec.label) cmd += "[" + *j.spec.label + "]";
    cmd += j.spec.command();
    std::string out = output_shown(j);
    if (j.state == JobState::Finished)
        return format("%-4i %-10s %-20s %-8i %0.2f/%0.2f/%0.2f %s\n", j.id, to_string(j.state),
                      out.c_str(), j.result.errorlevel, j.result.real, j.result.user,
                      j.result.sys, cmd.c_str());
    return format("%-4i %-10s %-20s %-8s %14s %s\n", j.id, to_string(j.state), out.c_str(), "",
                  "", cmd.c_str());
}

std::string Queue::list_text() const {
    std::string s = list_header(busy_, max_slots_);
    for (JobId id : active_) s += list_line(*find(id));
    for (JobId id : finished_) s += list_line(*find(id));
    return s;
}

std::string encode_submit(const JobSpec& s) {
    proto::Submit b{};
    b.flags = s.flags;
    if (s.label) b.flags |= proto::kHasLabel;
    if (s.env_info) b.flags |= proto::kHasEnvInfo;
    if (s.depends) b.flags |= proto::kDepend;
    b.num_slots = s.num_slots;
    b.depend_on = s.depend_on;
    b.umask = s.umask;
    b.nice = s.nice;
    b.argc = static_cast<uint32_t>(s.argv.size());
    b.envc = static_cast<uint32_t>(s.env.size());
    b.limits_valid = s.limits_valid;
    for (int i = 0; i < proto::kNumLimits; ++i) b.limits[i] = s.limits[i];
    TailWriter t;
    for (const auto& a : s.argv) t.add(a);
    for (const auto& e : s.env) t.add(e);
    t.add(s.cwd);
    if (s.label) t.add(*s.label);
    if (s.env_info) t.add(*s.env_info);
    return encode(proto::MsgType::Submit, b, t.str());
}

bool decode_submit(const Frame& f, JobSpec* s) {
    proto::Submit b;
    std::string_view tail;
    if (!decode_body(f, &b, &tail)) return false;
    // Each string costs at least its 4-byte length: refuse counts the tail cannot hold
    // before reserving anything.
    if (b.argc == 0 || b.argc > tail.size() / 4 || b.envc > tail.size() / 4) return false;
    TailReader r(tail);
    s->argv.resize(b.argc);
    for (auto& a : s->argv)
        if (!r.next(&a)) return false;
    s->env.resize(b.envc);
    for (auto& e : s->env)
        if (!r.next(&e)) return false;
    if (!r.next(&s->cwd)) return false;
    std::string x;
    if (b.flags & proto::kHasLabel) {
        if (!r.next(&x)) return false;
        s->label = x;
    }
    if (b.flags & proto::kHasEnvInfo) {
        if (!r.next(&x)) return false;
        s->env_info = x;
    }
    if (!r.at_end()) return false;
    s->flags = b.flags & ~(proto::kHasLabel | proto::kHasEnvInfo | proto::kDepend);
    s->depends = b.flags & proto::kDepend;
    s->num_slots = std::max(0, b.num_slots);
    s->depend_on = b.depend_on;
    s->umask = b.umask & 0777;
    s->nice = b.nice;
    s->limits_valid = b.limits_valid;
    for (int i = 0; i < proto::kNumLimits; ++i) s->limits[i] = b.limits[i];
    return true;
}
