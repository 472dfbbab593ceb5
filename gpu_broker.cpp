/*
 * gpu_broker.cpp — the GPU broker (gpu_broker.h): probing, taking a probe's
 * result, the memo of scheduling passes, the verdict on a submit, a started
 * job's GPU environment, -i's GPU lines and --gpu-list's table.
 */
#include "gpu_broker.h"

#include <algorithm>
#include <cstdarg>
#include <string_view>

#include "util.h"

namespace {
// What status_ starts with, the reason after it.
constexpr std::string_view kCannotProbe = "the GPUs cannot be probed: ";
}  // namespace

GpuBroker::GpuBroker(const ServerConfig& cfg, const Queue& queue, std::unique_ptr<CardProbe> probe, Log log)
    : cfg_(cfg), queue_(queue), probe_(std::move(probe)), log_(std::move(log)) {}

std::unique_ptr<CardProbe> GpuBroker::process_probe(const ServerConfig& cfg) {
    return std::make_unique<GpuProbe>(
        GpuProbe::Settings{cfg.nvidia_smi, cfg.gpu_sysfs, cfg.probe_timeout, cfg.gpu_sysfs_set});
}

void GpuBroker::say(const char* fmt, ...) const {
    if (!log_) return;
    va_list ap;
    va_start(ap, fmt);
    std::string line = vformat(fmt, ap);
    va_end(ap);
    log_(line);
}

/* A probe's result is used for probe_interval from its end (a probe that
 * takes longer than that is used all the same). */
bool GpuBroker::fresh(double now) const {
    return snap_.ended != 0 && now - snap_.ended < cfg_.probe_interval;
}

GpuBroker::Begun GpuBroker::want_probe(double now) {
    if (probe_->running() || now < retry_at_) return Begun::No;
    std::string why;
    if (!probe_->start(now, &why)) {
        failed(now, why);
        probed_ = true;
        return Begun::Failed;
    }
    return Begun::Started;
}

void GpuBroker::poll(double now) {
    if (probe_->running()) {
        probe_->readable(now);
        probe_->check(now);
    }
    probe_->reap(now);   // here too: a harness has no SIGCHLD handler
}

bool GpuBroker::take(double now) {
    GpuSnapshot s;
    if (!probe_->take(&s)) return false;
    ++snaps_;
    if (!s.ok) {
        failed(now, s.error);
        // The cards stay as the last probe that worked saw them, and so does
        // when that was (--gpu-list says both); the failure is what is fresh.
        snap_.ok = false;
        snap_.error = s.error;
        snap_.ended = s.ended;
    } else {
        took(std::move(s));
    }
    probed_ = true;
    return true;
}

/* A probe that worked: its cards are the ones known from now on. */
void GpuBroker::took(GpuSnapshot s) {
    if (!snap_.ok && probed_ && !status_.empty()) say("the GPUs can be probed again");
    status_.clear();
    // A process of a running -G job is a ts job's; one of a job without
    // -G uses a card that was never given to it: as foreign as any.
    std::set<pid_t> pids;
    for (JobId id : queue_.gpu_running())
        if (const Job* j = queue_.find(id); j && j->pid > 0) pids.insert(j->pid);
    mark_ts_processes(&s, pids);
    if (known_.size() > 1024) known_.clear();   // UUIDs that keep changing: keep the recent ones
    for (const GpuCard& c : s.cards)
        if (!c.uuid.empty() && c.index >= 0) known_[c.uuid] = c;
    snap_ = std::move(s);
    log_doubts();
    for (const std::string& u : snap_.unread)   // once, not once a probe
        if (!unread_.count(u)) say("%s: what it names is not used", printable(u).c_str());
    unread_ = std::set<std::string>(snap_.unread.begin(), snap_.unread.end());
    for (const std::string& note : usable_cards(snap_, cfg_.gpu).notes)
        if (!probed_) say("%s", note.c_str());   // the first time: the owner may have meant otherwise
}

/* Log the cards that the probe could not read (and so are busy) when that
 * starts and when it ends: once, not once a probe. A card is known by its
 * UUID, or by its name when its UUID is what cannot be read. */
void GpuBroker::log_doubts() {
    std::set<std::string> now_doubted;
    for (const GpuCard& c : snap_.cards) {
        std::string doubt = gpu_card_doubt(snap_, c);
        if (doubt.empty()) continue;
        std::string key = c.uuid.empty() ? gpu_card_name(c) : c.uuid;
        now_doubted.insert(key);
        if (!doubted_.count(key)) say("%s: it counts as busy until it can be read", doubt.c_str());
    }
    for (const std::string& key : doubted_)
        if (!now_doubted.count(key)) {
            const GpuCard* c = snap_.card(key);
            say("%s can be read again", c ? gpu_card_name(*c).c_str() : key.c_str());
        }
    doubted_ = std::move(now_doubted);
}

/* A probe failed, or could not start: GPU jobs wait, with why (logged once a
 * new reason), and the next one is tried after the interval. */
void GpuBroker::failed(double now, const std::string& why) {
    failed_at_ = now;
    retry_at_ = now + cfg_.probe_interval;
    std::string status = std::string(kCannotProbe) + why;
    if (status != status_) say("%s", status.c_str());
    status_ = status;
}

double GpuBroker::wakeup(double now) const {
    double wake = 0;
    auto at = [&](double t) {
        if (t > 0 && (wake == 0 || t < wake)) wake = t;
    };
    at(probe_->deadline());
    if (queue_.gpu_jobs_queued() > 0) {
        // The next probe, once this one is old (one already old is wanted, or
        // not, by the next pass: no wake-up for it).
        if (double t = std::max(retry_at_, snap_.ended + cfg_.probe_interval); t > now) at(t);
        for (const auto& [uuid, t] : last_start_)
            if (t + cfg_.gpu.settle > now) at(t + cfg_.gpu.settle);
    }
    return wake;
}

/* Refused only when no card of this machine could ever hold it, as far as
 * the last probe can tell: while it cannot (a failed probe, a card or line
 * it could not read), the job is queued and waits, with the reason in -i. */
GpuBroker::Verdict GpuBroker::may_queue(const GpuNeed& need) const {
    if (need.count == 0) return {};
    if (!probed_) return {Verdict::AfterProbe, ""};
    if (!snap_.ok || !snap_.unread.empty()) return {};
    for (const GpuCard& card : snap_.cards)
        if (!card.unreadable.empty()) return {};   // that card may be the one it needs
    std::string why;
    if (could_ever_fit(need, usable_cards(snap_, cfg_.gpu), &why)) return {};
    if (snap_.cards.empty() && snap_.no_nvidia_smi)
        why += format(" (%s was not found; TS_NVIDIA_SMI names it)", printable(cfg_.nvidia_smi).c_str());
    return {Verdict::No, why};
}

std::unique_ptr<GpuPlan> GpuBroker::plan(double now) const {
    if (!fresh(now) || !snap_.ok) return nullptr;   // a probe is wanted (or failing: status_)
    return std::make_unique<GpuPlan>(snap_, cfg_.gpu, use(), now);
}

/* Something the last pass decided by has changed since (a probe's result,
 * the queue, a card's settling, the probe's age), or it started a job. */
bool GpuBroker::pass_due(double now) {
    note_ends(now);
    const Pass& p = pass_;
    return !p.valid || p.snaps != snaps_ || p.changes != queue_.changes() || now >= p.until;
}

/* What the pass decided by (for pass_due); a probe is wanted when the jobs
 * that wait for GPUs only want a newer one, or the last is old. */
bool GpuBroker::passed(double now, bool placed, const GpuPlan* plan, const Decisions& d) {
    if (queue_.gpu_jobs_queued() == 0) {
        pass_ = Pass();
        return false;
    }
    if (placed) {
        Pass& p = pass_;
        if (plan) asked_ += plan->asked();
        p.valid = d.start.empty();
        p.snaps = snaps_;
        p.changes = queue_.changes();
        p.waiting = d.gpu_waiting;
        p.wants_probe = !plan || plan->wants_probe();
        p.until = snap_.ended + cfg_.probe_interval;   // then the probe is too old to place by
        for (const auto& [uuid, t] : last_start_)
            if (t + cfg_.gpu.settle > now) p.until = std::min(p.until, t + cfg_.gpu.settle);
    }
    return pass_.waiting && (pass_.wants_probe || !fresh(now));
}

void GpuBroker::started_on(const std::vector<std::string>& cards, double now) {
    for (const std::string& u : cards) last_start_[u] = now;
}

/* The cards of GPU jobs that stopped running (ended, or never started after
 * all) are marked as left now: a probe begun before does not place on them. */
void GpuBroker::note_ends(double now) {
    if (held_seen_ == queue_.changes()) return;
    held_seen_ = queue_.changes();
    const std::set<JobId>& running = queue_.gpu_running();
    for (auto it = held_.begin(); it != held_.end();) {
        if (running.count(it->first)) {
            ++it;
            continue;
        }
        for (const std::string& u : it->second) last_end_[u] = now;
        it = held_.erase(it);
    }
    for (JobId id : running)
        if (const Job* j = queue_.find(id); j && !held_.count(id)) held_[id] = j->gpus();
}

/* What the running ts jobs hold of each card. */
GpuUse GpuBroker::use() const {
    GpuUse use;
    for (JobId id : queue_.gpu_running())
        if (const Job* j = queue_.find(id))
            for (const std::string& u : j->gpus()) {
                CardUse& cu = use[u];
                ++cu.jobs;
                cu.claimed += j->spec.settings.gpu_mem();
            }
    for (auto& [uuid, at] : last_start_) use[uuid].last_start = at;
    for (auto& [uuid, at] : last_end_) use[uuid].last_end = at;
    return use;
}

/* Its cards, or, for a job without GPUs, nothing unless the owner hides the
 * cards (TS_GPU_HIDE). */
std::vector<std::string> GpuBroker::start_env(const Job& j) const {
    if (j.gpus().empty()) return j.spec.settings.gpus() > 0 ? std::vector<std::string>() : gpu_environment({}, cfg_.gpu_hide);
    std::vector<const GpuCard*> cards;
    for (const std::string& u : j.gpus()) {
        if (const GpuCard* c = known_card(u)) cards.push_back(c);
        else say("job %d: its GPU %s is not known any more: its environment leaves it out", j.id, u.c_str());
    }
    return gpu_environment(cards, false);
}

/* A card as the last probe saw it, else as an earlier one did; nullptr if none. */
const GpuCard* GpuBroker::known_card(const std::string& uuid) const {
    if (const GpuCard* c = snap_.card(uuid)) return c;
    auto it = known_.find(uuid);
    return it == known_.end() ? nullptr : &it->second;
}

/* A queued job that waits for its dependency, for slots (-N), for --release or
 * its start time, whatever the GPUs. */
bool GpuBroker::waits_for_other_than_gpus(const Job& j) const {
    if (j.awaiting_client || Queue::waits_for_time(j, wall_now())) return true;
    if ((j.depends || j.has_more_deps()) && !queue_.waiting_for(j).empty()) return true;
    return queue_.max_slots() - queue_.busy_slots() < j.spec.num_slots;
}

/* Why a queued GPU job waits, worked out when -i asks (the scheduler does
 * not keep it: a queue of waiting jobs costs nothing per pass): the pass
 * again on the last probe, in queue order, up to this job. */
std::string GpuBroker::wait_reason(const Job& j, double now) const {
    if (!status_.empty()) return status_;   // probing fails
    if (snap_.when == 0 || !snap_.ok)
        return probe_->running() ? "the GPUs are being probed" : "the GPUs have not been probed yet";
    GpuPlan plan(snap_, cfg_.gpu, use(), now);
    for (JobId id : queue_.active()) {
        const Job* k = queue_.find(id);
        if (k->state != JobState::Queued || k->spec.settings.gpus() == 0 || waits_for_other_than_gpus(*k)) continue;
        std::vector<std::string> cards;
        std::string why;
        bool placed = plan.place({int(k->spec.settings.gpus()), k->spec.settings.gpu_mem(), k->queued_mono}, &cards, &why);
        if (k != &j) continue;
        if (!placed && !snap_.unread.empty())   // a card ts cannot read may be the one it waits for
            why += " (and nvidia-smi listed what ts cannot read: " + printable(snap_.unread.front()) + ")";
        if (!placed) return why;
        break;
    }
    // The last probe has room for it: it starts once the cards are measured again.
    return probe_->running() ? "the GPUs are being probed" : "it starts at the next probe of the GPUs";
}

std::string GpuBroker::info(const Job& j) const {
    uint32_t n = j.spec.settings.gpus();
    if (n == 0) return "";
    std::string s = format("GPUs required: %u", unsigned(n));
    if (uint64_t m = j.spec.settings.gpu_mem()) s += format(" (%s of memory on each)", size_text(m).c_str());
    s += "\n";
    if (!j.gpus().empty()) {
        s += "GPUs:";
        for (size_t i = 0; i < j.gpus().size(); ++i)
        {
            const GpuCard* c = known_card(j.gpus()[i]);
            std::string uuid = printable(j.gpus()[i]);
            s += (i ? ", " : " ") + (c ? format("%d (%s)", c->index, uuid.c_str()) : uuid);
        }
        s += "\n";
    } else if (j.state == JobState::Queued && !waits_for_other_than_gpus(j)) {
        s += "Waiting for GPUs: " + printable(wait_reason(j, mono_now())) + "\n";
    }
    return s;
}

/* --gpu-list before its table: a failure since the last probe that worked,
 * and the policy the table is read by. */
std::string GpuBroker::list_head(double now) const {
    const GpuPolicy& p = cfg_.gpu;
    std::string s;
    // After a failure, the table is the last one that worked: say so, and how old each is, before it.
    if (!status_.empty())
        s += format("The last probe of the GPUs failed (%.1f s ago): %s\nWhat follows is what the last probe "
                    "that worked saw, %.1f s ago.\n",
                    std::max(0.0, now - failed_at_), printable(status_.substr(kCannotProbe.size())).c_str(),
                    std::max(0.0, now - snap_.when));
    std::string rule = p.judge_by_memory
                           ? format("a GPU is judged by its free memory (%s for a job without --gpu-mem)",
                                    size_text(p.min_free).c_str())
                           : std::string("a process that is not a ts job makes a GPU busy");
    s += format("GPUs (%s, %.1f s ago): %d job%s per GPU; %s.\n",
                snap_.source.empty() ? "none found" : snap_.source.c_str(), std::max(0.0, now - snap_.when),
                p.jobs_per_gpu, p.jobs_per_gpu == 1 ? "" : "s", rule.c_str());
    return s;
}

/* One card's row of --gpu-list, with the ts jobs on it. */
std::string GpuBroker::card_row(const GpuCard& c, const std::vector<JobId>& on) const {
    std::string mem = format("%s/%s MiB", c.mem_known ? std::to_string(c.mem_used >> 20).c_str() : "?",
                             c.mem_total ? std::to_string(c.mem_total >> 20).c_str() : "?");
    std::string util = c.util >= 0 ? format("%d%%", c.util) : "-";
    const char* mode = c.mig ? "MIG" : c.mode == ComputeMode::Default ? "Default"
                            : c.mode == ComputeMode::ExclusiveProcess ? "Exclusive"
                            : c.mode == ComputeMode::Prohibited       ? "Prohibited"
                                                                      : "?";
    std::string ids;
    for (size_t i = 0; i < on.size() && i < 8; ++i) ids += (i ? "," : "") + std::to_string(on[i]);
    if (on.size() > 8) ids += format(",+%zu", on.size() - 8);
    std::string others;
    size_t n = 0;
    for (const GpuProcess& pr : snap_.procs)
        if (gpu_process_on(pr, c) && !pr.ours) {
            if (++n > 4) continue;
            if (!others.empty()) others += "; ";
            others += (pr.pid > 0 ? std::to_string(pr.pid) : std::string("?")) + " " +
                      printable(pr.name.substr(0, 40));
            if (pr.mem_known) others += format(" (%llu MiB)", (unsigned long long)(pr.mem >> 20));
        }
    if (n > 4) others += format("; +%zu more", n - 4);
    return format("%-3s %-40s %-18s %-5s %-10s %-8s %s\n", c.index >= 0 ? std::to_string(c.index).c_str() : "?",
                  c.uuid.empty() ? "?" : printable(c.uuid).c_str(), mem.c_str(),
                  util.c_str(), mode, ids.empty() ? "-" : ids.c_str(), others.empty() ? "-" : others.c_str());
}

/* The cards, as the last probe saw them, and the ts jobs on each. */
std::string GpuBroker::list_text(double now) const {
    if (snap_.when == 0) {
        if (!status_.empty() && status_ != "the GPUs are being probed")
            return "The " + printable(status_.substr(4)) + "\n";
        return "The GPUs have not been probed yet.\n";
    }
    if (!snap_.ok && snap_.cards.empty())
        return format("The GPUs cannot be probed: %s\n", printable(snap_.error).c_str());
    std::string s = list_head(now);
    if (snap_.cards.empty()) {
        s += snap_.no_nvidia_smi ? format("No GPU found (%s was not found; TS_NVIDIA_SMI names it).\n",
                                          printable(cfg_.nvidia_smi).c_str())
                                 : "No GPU found.\n";
        return s;
    }
    std::map<std::string, std::vector<JobId>> jobs;
    for (JobId id : queue_.active())
        if (const Job* j = queue_.find(id); j->state == JobState::Running)
            for (const std::string& u : j->gpus()) jobs[u].push_back(id);
    s += format("%-3s %-40s %-18s %-5s %-10s %-8s %s\n", "ID", "UUID", "MEMORY USED/TOTAL", "UTIL", "MODE",
                "TS JOBS", "OTHER PROCESSES");
    std::vector<std::string> doubts;
    for (const GpuCard& c : snap_.cards) {
        if (std::string d = gpu_card_doubt(snap_, c); !d.empty()) doubts.push_back(d);
        s += card_row(c, jobs[c.uuid]);
    }
    for (const std::string& note : usable_cards(snap_, cfg_.gpu).notes) s += "Note: " + note + ".\n";
    for (const std::string& d : doubts) s += "Note: " + printable(d) + ": it counts as busy.\n";
    for (const std::string& u : snap_.unread) s += "Note: " + printable(u) + ": what it names is not used.\n";
    return s;
}
