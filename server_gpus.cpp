/*
 * server_gpus.cpp — the server's side of GPUs (README "GPUs"): when to probe
 * the cards (probe.h), the plan each scheduling pass places GPU jobs with
 * (gpu.h), what a started job's cards put in its environment, the refusal
 * at submit of a job that could never get its GPUs, -i's GPU lines and
 * --gpu-list.
 *
 * The loop probes only while GPU jobs wait, or when a submit or --gpu-list
 * needs to know the cards. Decisions fail closed: a job is placed only by a
 * probe begun after it was queued, on cards no ts job has left since that
 * probe began, and no longer than probe_interval seconds after it ended
 * (GpuPlan says when it wants a newer one). One probe runs at a time, and
 * serves every job that waits when it begins. A failed probe stops GPU jobs
 * only: CPU jobs go on, and the reason is in -i, --gpu-list and the log.
 *
 * A pass costs nothing while nothing it decides by has changed (the last
 * probe's result, the queue: its GPU jobs, the running ones, slots, order)
 * and no card settles: the jobs that waited still wait (gpu_pass_due).
 *
 * Every time here is mono_now() (util.h): a step of the wall clock moves no
 * probe, settling, retry or wait.
 */
#include <algorithm>
#include <cerrno>
#include <set>
#include <sys/wait.h>

#include "server_impl.h"

using proto::MsgType;

namespace {
// How long --gpu-list waits for a probe before it answers with the last one.
constexpr double kGpuListWait = 2.0;
// What gpu_status_ starts with, the reason after it.
constexpr std::string_view kCannotProbe = "the GPUs cannot be probed: ";
}  // namespace

/* A probe's result is used for probe_interval from its end (a probe that
 * takes longer than that is used all the same). */
bool Server::gpu_fresh(double now) const {
    return gpu_snap_.ended != 0 && now - gpu_snap_.ended < cfg_.probe_interval;
}

/* Start a probe unless one runs (or failed a moment ago). */
void Server::want_probe(double now) {
    if (probe_.running() || now < gpu_retry_at_) return;
    std::string why;
    if (!probe_.start(now, &why)) {
        probe_failed(now, why);
        gpu_probed(now);   // whoever waits for it hears why
        return;
    }
    gpu_take(now);   // one with nothing to run has ended already
}

/* From the loop, once a round: the probe, and the submits that waited for
 * the first one (dispatched here, not from inside another handler). */
void Server::gpu_round(double now) {
    gpu_take(now);
}

/* A probe's pipe, deadline and child; its result, once it ends. */
void Server::gpu_take(double now) {
    if (probe_.running()) {
        probe_.readable(now);
        probe_.check(now);
    }
    probe_.reap(now);   // here too: a harness has no SIGCHLD handler
    GpuSnapshot s;
    if (!probe_.take(&s)) return;
    ++gpu_snaps_;
    if (!s.ok) {
        probe_failed(now, s.error);
        // The cards stay as the last probe that worked saw them, and so does
        // when that was (--gpu-list says both); the failure is what is fresh.
        gpu_snap_.ok = false;
        gpu_snap_.error = s.error;
        gpu_snap_.ended = s.ended;
    } else {
        if (!gpu_snap_.ok && gpu_probed_ && !gpu_status_.empty()) log("the GPUs can be probed again");
        gpu_status_.clear();
        // A process of a running -G job is a ts job's; one of a job without
        // -G uses a card that was never given to it: as foreign as any.
        std::set<pid_t> pids;
        for (JobId id : queue_.gpu_running())
            if (const Job* j = queue_.find(id); j && j->pid > 0) pids.insert(j->pid);
        mark_ts_processes(&s, pids);
        if (gpu_known_.size() > 1024) gpu_known_.clear();   // UUIDs that keep changing: keep the recent ones
        for (const GpuCard& c : s.cards)
            if (!c.uuid.empty() && c.index >= 0) gpu_known_[c.uuid] = c;
        gpu_snap_ = std::move(s);
        log_gpu_doubts();
        for (const std::string& u : gpu_snap_.unread)   // once, not once a probe
            if (!gpu_unread_.count(u)) log("%s: what it names is not used", printable(u).c_str());
        gpu_unread_ = std::set<std::string>(gpu_snap_.unread.begin(), gpu_snap_.unread.end());
        for (const std::string& note : usable_cards(gpu_snap_, cfg_.gpu).notes)
            if (!gpu_probed_) log("%s", note.c_str());   // the first time: the owner may have meant otherwise
    }
    gpu_probed(now);
}

/* Log the cards that the probe could not read (and so are busy) when that
 * starts and when it ends: once, not once a probe. A card is known by its
 * UUID, or by its name when its UUID is what cannot be read. */
void Server::log_gpu_doubts() {
    std::set<std::string> now_doubted;
    for (const GpuCard& c : gpu_snap_.cards) {
        std::string doubt = gpu_card_doubt(gpu_snap_, c);
        if (doubt.empty()) continue;
        std::string key = c.uuid.empty() ? gpu_card_name(c) : c.uuid;
        now_doubted.insert(key);
        if (!gpu_doubted_.count(key)) log("%s: it counts as busy until it can be read", doubt.c_str());
    }
    for (const std::string& key : gpu_doubted_)
        if (!now_doubted.count(key)) {
            const GpuCard* c = gpu_snap_.card(key);
            log("%s can be read again", c ? gpu_card_name(*c).c_str() : key.c_str());
        }
    gpu_doubted_ = std::move(now_doubted);
}

/* A probe failed, or could not start: GPU jobs wait, with why (logged once a
 * new reason), and the next one is tried after the interval. */
void Server::probe_failed(double now, const std::string& why) {
    gpu_failed_at_ = now;
    gpu_retry_at_ = now + cfg_.probe_interval;
    std::string status = std::string(kCannotProbe) + why;
    if (status != gpu_status_) log("%s", status.c_str());
    gpu_status_ = status;
}

/* A probe has ended (or could not start): answer the --gpu-list that waited
 * for one (the submits that waited are dispatched again by gpu_round, from
 * the loop, not from inside another handler). */
void Server::gpu_probed(double now) {
    gpu_probed_ = true;
    (void)now;
    waits_.probed();
}

/* The plan for this pass, or nullptr when the cards are not known well
 * enough to place a job (no fresh result: a probe is wanted; or a failed
 * one: gpu_status_ says why). */
std::unique_ptr<GpuPlan> Server::gpu_plan(double now) {
    if (!gpu_fresh(now) || !gpu_snap_.ok) return nullptr;   // a probe is wanted (or failing: gpu_status_)
    return std::make_unique<GpuPlan>(gpu_snap_, cfg_.gpu, gpu_use(), now);
}

/* Whether this pass must place GPU jobs: something the last one decided by
 * has changed since (a probe's result, the queue, a card's settling, the
 * probe's age), or it started a job. Else its jobs still wait as they did. */
bool Server::gpu_pass_due(double now) {
    gpu_note_ends(now);
    const GpuPass& p = gpu_pass_;
    return !p.valid || p.snaps != gpu_snaps_ || p.changes != queue_.changes() || now >= p.until;
}

/* After a pass: what it decided by (for gpu_pass_due), and a probe when the
 * jobs that wait for GPUs only want a newer one, or the last is old. */
void Server::gpu_passed(double now, bool placed, const GpuPlan* plan, const Decisions& d) {
    if (queue_.gpu_jobs_queued() == 0) {
        gpu_pass_ = GpuPass();
        return;
    }
    if (placed) {
        GpuPass& p = gpu_pass_;
        if (plan) gpu_asked_ += plan->asked();
        p.valid = d.start.empty();
        p.snaps = gpu_snaps_;
        p.changes = queue_.changes();
        p.waiting = d.gpu_waiting;
        p.wants_probe = !plan || plan->wants_probe();
        p.until = gpu_snap_.ended + cfg_.probe_interval;   // then the probe is too old to place by
        for (const auto& [uuid, t] : gpu_last_start_)
            if (t + cfg_.gpu.settle > now) p.until = std::min(p.until, t + cfg_.gpu.settle);
    }
    if (gpu_pass_.waiting && (gpu_pass_.wants_probe || !gpu_fresh(now))) want_probe(now);
}

/* The cards of GPU jobs that stopped running (ended, or never started after
 * all) are marked as left now: a probe begun before does not place on them. */
void Server::gpu_note_ends(double now) {
    if (gpu_held_seen_ == queue_.changes()) return;
    gpu_held_seen_ = queue_.changes();
    const std::set<JobId>& running = queue_.gpu_running();
    for (auto it = gpu_held_.begin(); it != gpu_held_.end();) {
        if (running.count(it->first)) {
            ++it;
            continue;
        }
        for (const std::string& u : it->second) gpu_last_end_[u] = now;
        it = gpu_held_.erase(it);
    }
    for (JobId id : running)
        if (const Job* j = queue_.find(id); j && !gpu_held_.count(id)) gpu_held_[id] = j->gpus();
}

/* What the running ts jobs hold of each card. */
GpuUse Server::gpu_use() const {
    GpuUse use;
    for (JobId id : queue_.gpu_running())
        if (const Job* j = queue_.find(id))
            for (const std::string& u : j->gpus()) {
                CardUse& cu = use[u];
                ++cu.jobs;
                cu.claimed += j->spec.settings.gpu_mem();
            }
    for (auto& [uuid, at] : gpu_last_start_) use[uuid].last_start = at;
    for (auto& [uuid, at] : gpu_last_end_) use[uuid].last_end = at;
    return use;
}

/* When the loop must look at the GPUs again: a probe's deadline, the end of
 * a card's settling, the next probe while GPU jobs wait. 0: never. */
double Server::gpu_wakeup(double now) const {
    double wake = 0;
    auto at = [&](double t) {
        if (t > 0 && (wake == 0 || t < wake)) wake = t;
    };
    at(probe_.deadline());
    if (queue_.gpu_jobs_queued() > 0) {
        // The next probe, once this one is old (one already old is wanted, or
        // not, by the next pass: no wake-up for it).
        if (double t = std::max(gpu_retry_at_, gpu_snap_.ended + cfg_.probe_interval); t > now) at(t);
        for (const auto& [uuid, t] : gpu_last_start_)
            if (t + cfg_.gpu.settle > now) at(t + cfg_.gpu.settle);
    }
    return wake;
}

/* A submit of a GPU job: refused if this machine could never give it its
 * GPUs; held (dispatched again: hold_for_probe) when the cards have not been probed yet.
 * True when on_submit may go on. */
bool Server::gpu_check_submit(Conn& c, const Frame& f, const JobSpec& spec) {
    GpuNeed need{int(spec.settings.gpus()), spec.settings.gpu_mem()};
    if (need.count == 0) return true;
    double now = mono_now();
    if (c.submit_at == 0) c.submit_at = now;   // a probe from now on is newer than the job
    if (!gpu_probed_) want_probe(now);
    if (!gpu_probed_) {   // the first probe runs: the submit is dispatched again when it ends
        if (!charge_input(c, f.payload.size())) return false;   // it holds that meanwhile
        hold_for_probe(c, f);
        return false;
    }
    if (!gpu_snap_.ok || !gpu_snap_.unread.empty()) return true;   // cannot tell: it waits, with the reason in -i
    for (const GpuCard& card : gpu_snap_.cards)
        if (!card.unreadable.empty()) return true;   // that card may be the one it needs
    std::string why;
    if (!could_ever_fit(need, usable_cards(gpu_snap_, cfg_.gpu), &why)) {
        if (gpu_snap_.cards.empty() && gpu_snap_.no_nvidia_smi)
            why += format(" (%s was not found; TS_NVIDIA_SMI names it)", printable(cfg_.nvidia_smi).c_str());
        error(c, why + "; the job was not queued (see ts --gpu-list).\n");
        return false;
    }
    return true;
}

/* What a job's runner adds to its environment: its cards, or, for a job
 * without GPUs, nothing unless the owner hides the cards (TS_GPU_HIDE). */
std::vector<std::string> Server::job_start_env(const Job& j) {
    if (j.gpus().empty()) return j.spec.settings.gpus() > 0 ? std::vector<std::string>() : gpu_environment({}, cfg_.gpu_hide);
    std::vector<const GpuCard*> cards;
    for (const std::string& u : j.gpus()) {
        if (const GpuCard* c = known_card(u)) cards.push_back(c);
        else log("job %d: its GPU %s is not known any more: its environment leaves it out", j.id, u.c_str());
    }
    return gpu_environment(cards, false);
}

/* A job is starting: its runner's environment (journaled with the start). */
void Server::gpus_started(Job& j) {
    std::vector<std::string> env = job_start_env(j);
    if (!env.empty()) j.gpu().env = std::move(env);
}

/* Run for a job its client runs, with the environment its GPUs gave it at
 * its start (journaled with it: the same after a restart), for a client
 * that reads it. */
void Server::send_run(Conn& c, const Job& j, bool skip, bool last) {
    proto::RunBody rb{};
    rb.id = j.id;
    rb.skip = skip ? 1 : 0;
    std::string tail;
    if (!skip && (j.spec.flags & proto::kTakesRunEnv) && c.version == proto::kVersion) {
        TailWriter t;
        for (const std::string& v : j.start_env()) t.add(v);
        tail = t.str();
    }
    reply(c, encode(MsgType::Run, rb, tail), last);
}

/* A card as the last probe saw it, else as an earlier one did; nullptr if none. */
const GpuCard* Server::known_card(const std::string& uuid) const {
    if (const GpuCard* c = gpu_snap_.card(uuid)) return c;
    auto it = gpu_known_.find(uuid);
    return it == gpu_known_.end() ? nullptr : &it->second;
}

/* A queued job that waits for its dependency, or for slots (-N), whatever the GPUs. */
bool Server::waits_for_other_than_gpus(const Job& j) const {
    if (j.awaiting_client) return true;
    if (j.depends && !j.dep_result) {
        const Job* dep = queue_.find(j.depend_on);
        if (dep && (dep->state == JobState::Queued || dep->state == JobState::Running)) return true;
    }
    return queue_.max_slots() - queue_.busy_slots() < j.spec.num_slots;
}

/* Why a queued GPU job waits, worked out when -i asks (the scheduler does
 * not keep it: a queue of waiting jobs costs nothing per pass): the pass
 * again on the last probe, in queue order, up to this job. */
std::string Server::gpu_wait_reason(const Job& j, double now) const {
    if (!gpu_status_.empty()) return gpu_status_;   // probing fails
    if (gpu_snap_.when == 0 || !gpu_snap_.ok)
        return probe_.running() ? "the GPUs are being probed" : "the GPUs have not been probed yet";
    GpuPlan plan(gpu_snap_, cfg_.gpu, gpu_use(), now);
    for (JobId id : queue_.active()) {
        const Job* k = queue_.find(id);
        if (k->state != JobState::Queued || k->spec.settings.gpus() == 0 || waits_for_other_than_gpus(*k)) continue;
        std::vector<std::string> cards;
        std::string why;
        bool placed = plan.place({int(k->spec.settings.gpus()), k->spec.settings.gpu_mem(), k->queued_mono}, &cards, &why);
        if (k != &j) continue;
        if (!placed && !gpu_snap_.unread.empty())   // a card ts cannot read may be the one it waits for
            why += " (and nvidia-smi listed what ts cannot read: " + printable(gpu_snap_.unread.front()) + ")";
        if (!placed) return why;
        break;
    }
    // The last probe has room for it: it starts once the cards are measured again.
    return probe_.running() ? "the GPUs are being probed" : "it starts at the next probe of the GPUs";
}

/* -i's lines of a GPU job (none for any other job). */
std::string Server::gpu_info(const Job& j) const {
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
        s += "Waiting for GPUs: " + printable(gpu_wait_reason(j, mono_now())) + "\n";
    }
    return s;
}

/* --gpu-list: the cards, as the last probe saw them, and the ts jobs on each. */
std::string Server::gpu_list_text(double now) const {
    const GpuPolicy& p = cfg_.gpu;
    std::string s;
    if (gpu_snap_.when == 0) {
        if (!gpu_status_.empty() && gpu_status_ != "the GPUs are being probed")
            return "The " + printable(gpu_status_.substr(4)) + "\n";
        return "The GPUs have not been probed yet.\n";
    }
    if (!gpu_snap_.ok && gpu_snap_.cards.empty())
        return format("The GPUs cannot be probed: %s\n", printable(gpu_snap_.error).c_str());
    // After a failure, the table is the last one that worked: say so, and how old each is, before it.
    if (!gpu_status_.empty())
        s += format("The last probe of the GPUs failed (%.1f s ago): %s\nWhat follows is what the last probe "
                    "that worked saw, %.1f s ago.\n",
                    std::max(0.0, now - gpu_failed_at_), printable(gpu_status_.substr(kCannotProbe.size())).c_str(),
                    std::max(0.0, now - gpu_snap_.when));
    std::string rule = p.judge_by_memory
                           ? format("a GPU is judged by its free memory (%s for a job without --gpu-mem)",
                                    size_text(p.min_free).c_str())
                           : std::string("a process that is not a ts job makes a GPU busy");
    s += format("GPUs (%s, %.1f s ago): %d job%s per GPU; %s.\n",
                gpu_snap_.source.empty() ? "none found" : gpu_snap_.source.c_str(), std::max(0.0, now - gpu_snap_.when),
                p.jobs_per_gpu, p.jobs_per_gpu == 1 ? "" : "s", rule.c_str());
    if (gpu_snap_.cards.empty()) {
        s += gpu_snap_.no_nvidia_smi ? format("No GPU found (%s was not found; TS_NVIDIA_SMI names it).\n",
                                             printable(cfg_.nvidia_smi).c_str())
                                     : "No GPU found.\n";
        return s;
    }
    // The ts jobs on each card.
    std::map<std::string, std::vector<JobId>> jobs;
    for (JobId id : queue_.active())
        if (const Job* j = queue_.find(id); j->state == JobState::Running)
            for (const std::string& u : j->gpus()) jobs[u].push_back(id);
    s += format("%-3s %-40s %-18s %-5s %-10s %-8s %s\n", "ID", "UUID", "MEMORY USED/TOTAL", "UTIL", "MODE",
                "TS JOBS", "OTHER PROCESSES");
    std::vector<std::string> doubts;
    for (const GpuCard& c : gpu_snap_.cards) {
        if (std::string d = gpu_card_doubt(gpu_snap_, c); !d.empty()) doubts.push_back(d);
        std::string mem = format("%s/%s MiB", c.mem_known ? std::to_string(c.mem_used >> 20).c_str() : "?",
                                 c.mem_total ? std::to_string(c.mem_total >> 20).c_str() : "?");
        std::string util = c.util >= 0 ? format("%d%%", c.util) : "-";
        const char* mode = c.mig ? "MIG" : c.mode == ComputeMode::Default ? "Default"
                                : c.mode == ComputeMode::ExclusiveProcess ? "Exclusive"
                                : c.mode == ComputeMode::Prohibited       ? "Prohibited"
                                                                          : "?";
        std::string ids;
        const std::vector<JobId>& on = jobs[c.uuid];
        for (size_t i = 0; i < on.size() && i < 8; ++i) ids += (i ? "," : "") + std::to_string(on[i]);
        if (on.size() > 8) ids += format(",+%zu", on.size() - 8);
        std::string others;
        size_t n = 0;
        for (const GpuProcess& pr : gpu_snap_.procs)
            if (gpu_process_on(pr, c) && !pr.ours) {
                if (++n > 4) continue;
                if (!others.empty()) others += "; ";
                others += (pr.pid > 0 ? std::to_string(pr.pid) : std::string("?")) + " " +
                          printable(pr.name.substr(0, 40));
                if (pr.mem_known) others += format(" (%llu MiB)", (unsigned long long)(pr.mem >> 20));
            }
        if (n > 4) others += format("; +%zu more", n - 4);
        s += format("%-3s %-40s %-18s %-5s %-10s %-8s %s\n", c.index >= 0 ? std::to_string(c.index).c_str() : "?",
                    c.uuid.empty() ? "?" : printable(c.uuid).c_str(), mem.c_str(),
                    util.c_str(), mode, ids.empty() ? "-" : ids.c_str(), others.empty() ? "-" : others.c_str());
    }
    for (const std::string& note : usable_cards(gpu_snap_, p).notes) s += "Note: " + note + ".\n";
    for (const std::string& d : doubts) s += "Note: " + printable(d) + ": it counts as busy.\n";
    for (const std::string& u : gpu_snap_.unread) s += "Note: " + printable(u) + ": what it names is not used.\n";
    return s;
}

void Server::on_gpu_list(Conn& c, const Frame&) {
    double now = mono_now();
    if (!gpu_fresh(now)) want_probe(now);
    if (gpu_fresh(now) || !probe_.running()) {
        reply_text(c, gpu_list_text(now));
        return;
    }
    // Answered when the probe ends, or after a moment with what is known (a
    // probe stuck in the driver takes until its timeout).
    list_gpus_after_probe(c, now + kGpuListWait);
}
