/*
 * gpu.cpp — the GPU policy and allocator (gpu.h): which cards a policy
 * lets jobs use, whether a need can ever be met, one scheduling pass over
 * the cards (GpuPlan), and the environment a job's cards give it.
 *
 * What a probe could not read about a card, or about a process that may be
 * on it, makes the card busy (gpu_card_doubt): it is kept among the usable
 * cards (a job that needs it waits rather than being refused), but nothing
 * is placed on it, reserved on it, or counted as room on it.
 */
#include "gpu.h"

#include <algorithm>
#include <cctype>

#include "util.h"

namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    return out;
}

bool all_digits(std::string_view s) {
    return !s.empty() && s.size() <= 6 &&
           std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
}

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t')) --e;
    return std::string(s.substr(b, e - b));
}

std::string card_name(const GpuCard& c) { return gpu_card_name(c); }

const char* vendor_word(GpuVendor v) { return v == GpuVendor::Nvidia ? "NVIDIA" : "AMD"; }

}  // namespace

bool parse_visible_devices(std::string_view text, std::vector<std::string>* out, std::string* err) {
    out->clear();
    std::string_view rest = text;
    while (true) {
        size_t comma = rest.find(',');
        std::string item = trim(rest.substr(0, comma));
        if (item.empty()) {
            *err = "an empty entry (write indices or UUIDs separated by commas)";
            return false;
        }
        std::string low = lower(item);
        if (all_digits(item)) {
            out->push_back(std::to_string(std::stoi(item)));   // "01" is 1
        } else if (low.rfind("mig-", 0) == 0) {
            *err = "'" + printable(item) + "' is a MIG instance, and ts schedules whole GPUs only";
            return false;
        } else if ((low.rfind("gpu-", 0) == 0 || low.rfind("amd-", 0) == 0) && item.size() > 4 &&
                   item.size() <= 96 &&
                   std::all_of(item.begin(), item.end(), [](char ch) {
                       return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' || ch == ':' || ch == '.';
                   })) {
            out->push_back(item);
        } else {
            *err = "'" + printable(item) + "' is neither an index nor a GPU's UUID (GPU-...)";
            return false;
        }
        if (std::count(out->begin(), out->end(), out->back()) > 1) {
            *err = "'" + printable(item) + "' is named twice";
            return false;
        }
        if (out->size() > 1024) {
            *err = "too many entries";
            return false;
        }
        if (comma == std::string_view::npos) return true;
        rest = rest.substr(comma + 1);
    }
}

UsableCards usable_cards(const GpuSnapshot& s, const GpuPolicy& p) {
    UsableCards u;
    std::vector<const GpuCard*> order;
    if (p.visible.empty()) {
        for (const GpuCard& c : s.cards) order.push_back(&c);
    } else {
        for (const std::string& want : p.visible) {
            const GpuCard* found = nullptr;
            for (const GpuCard& c : s.cards)
                if (all_digits(want) ? c.index == std::stoi(want) : lower(c.uuid) == lower(want)) {
                    found = &c;
                    break;
                }
            if (!found) {
                u.notes.push_back("TS_VISIBLE_DEVICES names " + printable(want) + ", which no GPU here has");
                continue;
            }
            if (std::find(order.begin(), order.end(), found) == order.end()) order.push_back(found);
        }
        for (const GpuCard& c : s.cards)
            if (std::find(order.begin(), order.end(), &c) == order.end())
                u.notes.push_back(card_name(c) + " is not in TS_VISIBLE_DEVICES: not used");
    }
    for (const GpuCard* c : order) {
        if (c->mig) {
            u.notes.push_back(card_name(*c) + " is in MIG mode: not used (ts schedules whole GPUs only)");
            continue;
        }
        if (c->mode == ComputeMode::Prohibited) {
            u.notes.push_back(card_name(*c) + " is in the Prohibited compute mode: not used");
            continue;
        }
        u.cards.push_back(c);
    }
    return u;
}

bool gpu_process_on(const GpuProcess& p, const GpuCard& c) {
    return p.uuid.empty() ? c.vendor == GpuVendor::Nvidia : p.uuid == c.uuid;
}

std::string gpu_card_name(const GpuCard& c) {
    if (c.index >= 0) return format("GPU %d", c.index);
    if (!c.bus_id.empty()) return "the GPU at " + c.bus_id;
    if (!c.uuid.empty()) return "GPU " + c.uuid;
    return "a GPU";
}

std::string gpu_card_doubt(const GpuSnapshot& s, const GpuCard& c) {
    if (!c.unreadable.empty()) return gpu_card_name(c) + " cannot be read (" + c.unreadable + ")";
    const GpuProcess* first = nullptr;
    size_t more = 0;
    for (const GpuProcess& p : s.procs)
        if (!p.ours && !p.unreadable.empty() && gpu_process_on(p, c)) {
            if (first) ++more;
            else first = &p;
        }
    if (!first) return "";
    std::string what = first->unreadable;
    if (first->pid > 0) what += format("; pid %d", int(first->pid));
    if (first->mem_known) what += "; " + size_text(first->mem);
    if (!first->name.empty()) what += "; " + first->name.substr(0, 40);
    if (more) what += format("; and %zu more", more);
    return gpu_card_name(c) + " has a process ts cannot read (" + what + ")";
}

bool could_ever_fit(const GpuNeed& need, const UsableCards& u, std::string* why) {
    if (need.count <= 0) return true;
    int best = 0, with_mem = 0;
    for (GpuVendor v : {GpuVendor::Nvidia, GpuVendor::Amd}) {
        int n = 0, m = 0;
        for (const GpuCard* c : u.cards)
            if (c->vendor == v) {
                ++n;
                if (need.mem == 0 || c->mem_total >= need.mem) ++m;
            }
        best = std::max(best, n);
        with_mem = std::max(with_mem, m);
    }
    if (with_mem >= need.count) return true;
    auto gpus = [](int n) { return format("%d GPU%s", n, n == 1 ? "" : "s"); };
    if (best < need.count) {
        *why = best == 0 ? format("the job needs %s, and this machine has none that ts may use", gpus(need.count).c_str())
                         : format("the job needs %s, and this machine has %d that ts may use", gpus(need.count).c_str(), best);
    } else {
        *why = format("the job needs %s with %s each, and %s of this machine's have that much memory",
                      gpus(need.count).c_str(), size_text(need.mem).c_str(),
                      with_mem == 0 ? "none" : format("only %d", with_mem).c_str());
    }
    return false;
}

GpuPlan::GpuPlan(const GpuSnapshot& s, const GpuPolicy& p, GpuUse use, double now)
    : snap_(s), policy_(p), now_(now) {
    for (const GpuCard* c : usable_cards(s, p).cards) {
        Slot slot{c, use[c->uuid], 0, 0, false, gpu_card_doubt(s, *c)};
        slot.capacity = std::max(0, c->mode == ComputeMode::ExclusiveProcess ? std::min(1, p.jobs_per_gpu)
                                                                              : p.jobs_per_gpu);
        for (const GpuProcess& pr : s.procs)
            if (gpu_process_on(pr, *c) && !pr.ours) {
                slot.foreign = true;
                if (pr.mem_known) slot.foreign_mem = std::min(slot.foreign_mem + std::min(pr.mem, c->mem_total), uint64_t(1) << 62);
            }
        slots_.push_back(slot);
    }
}

bool GpuPlan::fits(const Slot& s, const GpuNeed& need, std::string* why) {
    if (!takes_another(s, why)) return false;
    // Measured memory counts once the card has settled since its last start,
    // and only from a probe made after that.
    double settled_at = s.use.last_start + policy_.settle;
    bool settling = now_ < settled_at;
    bool fresh = snap_.when >= settled_at;
    return need.mem > 0 ? fits_declared(s, need.mem, settling, fresh, why)
                        : fits_undeclared(s, settling, fresh, why);
}

/* Whether the card may take another job at all, whatever its memory: ts
 * reads it, it has room for one more ts job, what an ended one left behind
 * has been seen, and no other process rules it out. */
bool GpuPlan::takes_another(const Slot& s, std::string* why) {
    const GpuCard& c = *s.card;
    if (!s.doubt.empty()) {
        *why = s.doubt;
        return false;
    }
    if (s.use.jobs >= s.capacity) {
        *why = format("%s has %d ts job%s, as many as it takes", card_name(c).c_str(), s.use.jobs,
                      s.use.jobs == 1 ? "" : "s");
        return false;
    }
    if (snap_.when < s.use.last_end) {   // what a ts job left behind there is not seen yet
        wants_probe_ = true;
        *why = card_name(c) + " is probed again since a ts job on it ended";
        return false;
    }
    bool measured = c.mem_known && c.mem_total > 0;
    if (s.foreign && (!policy_.judge_by_memory || !measured)) {
        *why = card_name(c) + " has a process that is not a ts job";
        return false;
    }
    return true;
}

/* A job that declared its memory (--gpu-mem): the declarations on the card
 * must leave room for it, and, once the card has settled, what is measured. */
bool GpuPlan::fits_declared(const Slot& s, uint64_t mem, bool settling, bool fresh, std::string* why) {
    const GpuCard& c = *s.card;
    bool measured = c.mem_known && c.mem_total > 0;
    if (c.mem_total == 0) {
        *why = card_name(c) + "'s memory is not known";
        return false;
    }
    uint64_t others = policy_.judge_by_memory ? s.foreign_mem : 0;
    if (s.use.claimed + others + mem > c.mem_total) {
        uint64_t taken = std::min(c.mem_total, s.use.claimed + others);
        *why = format("%s has %s of its %s not claimed", card_name(c).c_str(),
                      size_text(c.mem_total - taken).c_str(), size_text(c.mem_total).c_str());
        return false;
    }
    if (settling || !measured) return true;   // the declarations are all there is to go by
    if (!fresh) {
        wants_probe_ = true;
        *why = card_name(c) + " has settled and is measured again";
        return false;
    }
    if (c.mem_used + mem > c.mem_total) {
        *why = format("%s has %s free", card_name(c).c_str(), size_text(c.mem_total - std::min(c.mem_total, c.mem_used)).c_str());
        return false;
    }
    return true;
}

/* A job that declared no memory: judged by memory, the card must have
 * settled, been measured since, and have the policy's minimum free. */
bool GpuPlan::fits_undeclared(const Slot& s, bool settling, bool fresh, std::string* why) {
    const GpuCard& c = *s.card;
    bool measured = c.mem_known && c.mem_total > 0;
    if (!policy_.judge_by_memory || !measured) return true;
    if (settling) {
        *why = format("%s is settling (a job started on it %.0f s ago)", card_name(c).c_str(), now_ - s.use.last_start);
        return false;
    }
    if (!fresh) {
        wants_probe_ = true;
        *why = card_name(c) + " has settled and is measured again";
        return false;
    }
    // What the declarations of its ts jobs and the processes of others take,
    // if more than what is measured (a job that said its size may not use it yet).
    uint64_t taken = std::max(c.mem_used, s.use.claimed + s.foreign_mem);
    uint64_t free = c.mem_total - std::min(c.mem_total, taken);
    if (free < policy_.min_free) {
        *why = format("%s has %s free (a job without --gpu-mem needs %s)", card_name(c).c_str(),
                      size_text(free).c_str(), size_text(policy_.min_free).c_str());
        return false;
    }
    return true;
}

bool GpuPlan::place(const GpuNeed& need, std::vector<std::string>* uuids, std::string* why) {
    uuids->clear();
    ++asked_;
    if (need.count <= 0) return true;
    if (snap_.when < need.queued) {   // the cards were looked at before the job was there: look again
        wants_probe_ = true;
        *why = "the GPUs are probed again since it was queued";
        return false;                  // waits, reserving nothing
    }
    UsableCards u;
    for (const Slot& s : slots_) u.cards.push_back(s.card);
    if (!could_ever_fit(need, u, why)) return false;   // waits, reserving nothing
    // The cards of each vendor that have room for it, in order of preference.
    std::vector<std::string> whys;   // why each card that does not fit cannot take it
    std::vector<size_t> best;
    for (GpuVendor v : {GpuVendor::Nvidia, GpuVendor::Amd}) {
        std::vector<size_t> fit;
        for (size_t i = 0; i < slots_.size(); ++i) {
            const Slot& s = slots_[i];
            if (s.card->vendor != v) continue;
            std::string w;
            if (s.reserved) w = card_name(*s.card) + " is kept for an earlier job that needs several GPUs";
            else if (fits(s, need, &w)) {
                fit.push_back(i);
                continue;
            }
            whys.push_back(w);
        }
        if (static_cast<int>(fit.size()) >= need.count) {
            fit.resize(need.count);
            for (size_t i : fit) {
                Slot& s = slots_[i];
                ++s.use.jobs;
                s.use.claimed += need.mem;
                s.use.last_start = now_;
                uuids->push_back(s.card->uuid);
            }
            return true;
        }
        if (fit.size() > best.size()) best = fit;
    }
    std::string list;
    for (size_t i = 0; i < whys.size() && i < 4; ++i) list += (i ? "; " : "") + whys[i];
    if (whys.size() > 4) list += format("; and %zu more", whys.size() - 4);
    *why = need.count > 1 ? format("%d of the %d GPUs it needs %s free", int(best.size()), need.count,
                                   best.size() == 1 ? "is" : "are")
                          : std::string("no GPU is free");
    if (!list.empty()) *why += " (" + list + ")";
    // The first job that waits keeps the cards it could use, so that jobs
    // after it cannot take each card as it frees up; but only when ts jobs are
    // what it waits for (they end): cards held by processes that are not ts
    // jobs' may stay so for good, and would stall every GPU job behind it.
    if (!reserving_done_ && !best.empty() && could_get_from_ts_jobs(need)) {
        reserving_done_ = true;
        for (size_t i : best) slots_[i].reserved = true;
    }
    return false;
}

/* Whether need could be met once the ts jobs on the cards end: enough
 * cards of one vendor that no other process makes busy, with the memory. */
bool GpuPlan::could_get_from_ts_jobs(const GpuNeed& need) const {
    for (GpuVendor v : {GpuVendor::Nvidia, GpuVendor::Amd}) {
        int n = 0;
        for (const Slot& s : slots_)
            if (s.card->vendor == v && s.capacity > 0 && s.doubt.empty() && !(s.foreign && !policy_.judge_by_memory) &&
                (need.mem == 0 || need.mem + (policy_.judge_by_memory ? s.foreign_mem : 0) <= s.card->mem_total))
                ++n;
        if (n >= need.count) return true;
    }
    return false;
}

bool GpuPlan::full() const {
    for (const Slot& s : slots_)
        if (!s.reserved && s.doubt.empty() && s.use.jobs < s.capacity && (!s.foreign || policy_.judge_by_memory))
            return false;
    return true;
}

std::vector<std::string> gpu_environment(const std::vector<const GpuCard*>& cards, bool hide) {
    std::vector<std::string> env;
    if (cards.empty()) {
        if (!hide) return env;
        // An index no card has: CUDA and HIP then see no device at all.
        for (const char* v : {"CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES"})
            env.push_back(std::string(v) + "=-1");
        env.push_back("TS_GPUS=");
        return env;
    }
    std::string physical, logical;
    for (size_t i = 0; i < cards.size(); ++i) {
        if (i) physical += ',', logical += ',';
        physical += std::to_string(cards[i]->index);
        logical += std::to_string(i);
    }
    if (cards[0]->vendor == GpuVendor::Nvidia) {
        env.push_back("CUDA_VISIBLE_DEVICES=" + physical);
        env.push_back("CUDA_DEVICE_ORDER=PCI_BUS_ID");   // nvidia-smi's order, which the indices are in
    } else {
        // ROCr narrows the devices first; HIP (which also reads
        // CUDA_VISIBLE_DEVICES) then numbers what is left from 0.
        env.push_back("ROCR_VISIBLE_DEVICES=" + physical);
        env.push_back("HIP_VISIBLE_DEVICES=" + logical);
        env.push_back("CUDA_VISIBLE_DEVICES=" + logical);
    }
    env.push_back("TS_GPUS=" + physical);
    return env;
}

bool is_gpu_environment(const std::string& var) {
    size_t eq = var.find('=');
    if (eq == std::string::npos || var.size() > 4096) return false;
    std::string name = var.substr(0, eq), value = var.substr(eq + 1);
    if (name == "CUDA_DEVICE_ORDER") return value == "PCI_BUS_ID";
    if (name != "CUDA_VISIBLE_DEVICES" && name != "HIP_VISIBLE_DEVICES" && name != "ROCR_VISIBLE_DEVICES" &&
        name != "TS_GPUS")
        return false;
    return value == "-1" || std::all_of(value.begin(), value.end(), [](char ch) { return (ch >= '0' && ch <= '9') || ch == ','; });
}

void set_environment(std::vector<std::string>* env, const std::vector<std::string>& vars) {
    for (const std::string& v : vars) {
        std::string name = v.substr(0, v.find('=') + 1);
        env->erase(std::remove_if(env->begin(), env->end(),
                                  [&](const std::string& e) { return e.compare(0, name.size(), name) == 0; }),
                   env->end());
        env->push_back(v);
    }
}

const char* gpu_vendor_name(GpuVendor v) { return vendor_word(v); }
