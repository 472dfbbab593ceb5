/*
 * settings.cpp — see settings.h: a job's settings, their encoding, and the
 * one table of the settings this binary knows.
 */
#include "settings.h"

#include <algorithm>
#include <cstring>
#include <initializer_list>

#include "util.h"

namespace {

bool valid_gpus(std::string_view v, std::string* why) { return valid_u32_in(v, 1, kMaxJobGpus, why); }
// At least 1 MiB, at most 1 PiB: a card's memory is in between.
bool valid_gpu_mem(std::string_view v, std::string* why) {
    return valid_u64_in(v, uint64_t(1) << 20, uint64_t(1) << 50, why);
}

/* A list of 1..kMaxJobDeps job ids, none negative. */
bool valid_ids(std::string_view v, std::string* why) {
    if (v.empty() || v.size() % sizeof(int32_t) || v.size() / sizeof(int32_t) > kMaxJobDeps) {
        *why = format("%zu bytes, not a list of 1 to %zu job ids", v.size(), kMaxJobDeps);
        return false;
    }
    std::vector<int32_t> ids(v.size() / sizeof(int32_t));
    std::memcpy(ids.data(), v.data(), v.size());
    for (int32_t id : ids)
        if (id < 0) {
            *why = format("%d is not a job id", int(id));
            return false;
        }
    std::sort(ids.begin(), ids.end());
    if (std::adjacent_find(ids.begin(), ids.end()) != ids.end()) {
        *why = format("job %d is in the list twice", int(*std::adjacent_find(ids.begin(), ids.end())));
        return false;
    }
    return true;
}

bool valid_hold(std::string_view v, std::string* why) { return valid_u32_in(v, 1, 1, why); }
// From 1 s after the epoch to the year 9999: a time, in milliseconds.
bool valid_not_before(std::string_view v, std::string* why) {
    return valid_u64_in(v, 1000, uint64_t(253402300799) * 1000, why);
}
/* --timeout, --kill-after: 1 ms to 10 years. */
bool valid_ms(std::string_view v, std::string* why) {
    return valid_u64_in(v, 1, uint64_t(10) * 365 * 86400 * 1000, why);
}
bool valid_retries(std::string_view v, std::string* why) { return valid_u32_in(v, 1, kMaxRetries, why); }
bool valid_unique(std::string_view v, std::string* why) { return valid_u32_in(v, 1, 1, why); }
/* One job id. */
bool valid_one_id(std::string_view v, std::string* why) {
    if (v.size() != sizeof(int32_t)) {
        *why = format("%zu bytes, not one job id", v.size());
        return false;
    }
    return valid_ids(v, why);
}

/* The settings this binary knows, one row each (settings.h says how to add
 * one). */
constexpr std::initializer_list<SettingDef> kSettings = {
    {kSettingGpus, "GPUs (-G)", valid_gpus},
    {kSettingGpuMem, "GPU memory (--gpu-mem)", valid_gpu_mem},
    {kSettingDepends, "dependencies (-D)", valid_ids},
    {kSettingAfter, "dependencies (--after)", valid_ids},
    {kSettingHold, "hold (--hold)", valid_hold},
    {kSettingNotBefore, "start time (--delay, --at)", valid_not_before},
    {kSettingTimeout, "timeout (--timeout)", valid_ms},
    {kSettingKillAfter, "grace before SIGKILL (--kill-after)", valid_ms},
    {kSettingRetry, "retries (--retry)", valid_retries},
    {kSettingUnique, "--unique", valid_unique},
    {kSettingRequeueOf, "the job run again (--requeue)", valid_one_id},
};

/* Rows that tests add (TestSetting). */
std::vector<SettingDef>& test_rows() {
    static std::vector<SettingDef> rows;
    return rows;
}

/* Where tag is, or would go, in fields kept sorted by tag. */
template <class Fields>
auto lower(Fields& v, uint16_t tag) {
    return std::lower_bound(v.begin(), v.end(), tag,
                            [](const JobSettings::Field& f, uint16_t t) { return f.first < t; });
}

template <class T>
std::optional<T> number(const std::string* v) {
    if (!v || v->size() != sizeof(T)) return std::nullopt;
    T n;
    std::memcpy(&n, v->data(), sizeof n);
    return n;
}

template <class T>
std::string bytes_of(T n) {
    return std::string(reinterpret_cast<const char*>(&n), sizeof n);
}

}  // namespace

std::vector<int32_t> JobSettings::further_deps() const {
    std::vector<int32_t> all = more_depends();
    for (int32_t id : after()) all.push_back(id);
    return all;
}

void JobSettings::set_held(bool on) {
    if (on) set_u32(kSettingHold, 1);
    else erase(kSettingHold);
}

void JobSettings::set_not_before(double t) {
    if (t <= 0) erase(kSettingNotBefore);
    else set_u64(kSettingNotBefore, static_cast<uint64_t>(t * 1000 + 0.5));
}

const std::string* JobSettings::bytes(uint16_t tag) const {
    auto it = lower(fields_, tag);
    return it != fields_.end() && it->first == tag ? &it->second : nullptr;
}

void JobSettings::set_bytes(uint16_t tag, std::string value) {
    auto it = lower(fields_, tag);
    if (it != fields_.end() && it->first == tag) it->second = std::move(value);
    else fields_.emplace(it, tag, std::move(value));
}

std::optional<uint32_t> JobSettings::u32(uint16_t tag) const { return number<uint32_t>(bytes(tag)); }
void JobSettings::set_u32(uint16_t tag, uint32_t v) { set_bytes(tag, bytes_of(v)); }
std::optional<uint64_t> JobSettings::u64(uint16_t tag) const { return number<uint64_t>(bytes(tag)); }
void JobSettings::set_u64(uint16_t tag, uint64_t v) { set_bytes(tag, bytes_of(v)); }

std::vector<int32_t> JobSettings::ids(uint16_t tag) const {
    std::vector<int32_t> out;
    const std::string* v = bytes(tag);
    if (!v || v->size() % sizeof(int32_t)) return out;
    out.resize(v->size() / sizeof(int32_t));
    if (!out.empty()) std::memcpy(out.data(), v->data(), v->size());
    return out;
}

void JobSettings::set_ids(uint16_t tag, const std::vector<int32_t>& ids) {
    if (ids.empty()) return erase(tag);
    set_bytes(tag, std::string(reinterpret_cast<const char*>(ids.data()), ids.size() * sizeof(int32_t)));
}

void JobSettings::erase(uint16_t tag) {
    auto it = lower(fields_, tag);
    if (it != fields_.end() && it->first == tag) fields_.erase(it);
}

size_t JobSettings::memory() const {
    size_t n = fields_.size() * sizeof(Field);
    for (const Field& f : fields_) n += f.second.size();
    return n;
}

std::string encode_settings(const JobSettings& s) {
    std::string out;
    for (const auto& [tag, value] : s.fields()) {
        uint32_t n = static_cast<uint32_t>(value.size());
        out.append(reinterpret_cast<const char*>(&tag), sizeof tag);
        out.append(reinterpret_cast<const char*>(&n), sizeof n);
        out.append(value);
    }
    return out;
}

bool decode_settings(std::string_view b, JobSettings* out) {
    *out = JobSettings();
    if (b.size() > kMaxSettingsBytes) return false;
    JobSettings s;
    size_t count = 0;
    uint16_t prev = 0;   // tag 0 is never a setting, so the first tag is above it
    while (!b.empty()) {
        uint16_t tag;
        uint32_t n;
        if (b.size() < sizeof tag + sizeof n || ++count > kMaxSettings) return false;
        std::memcpy(&tag, b.data(), sizeof tag);
        std::memcpy(&n, b.data() + sizeof tag, sizeof n);
        b.remove_prefix(sizeof tag + sizeof n);
        if (tag <= prev || b.size() < n) return false;
        s.set_bytes(tag, std::string(b.substr(0, n)));   // appends: tags come in order
        b.remove_prefix(n);
        prev = tag;
    }
    *out = std::move(s);
    return true;
}

const SettingDef* find_setting(uint16_t tag) {
    for (const SettingDef& d : kSettings)
        if (d.tag == tag) return &d;
    for (const SettingDef& d : test_rows())
        if (d.tag == tag) return &d;
    return nullptr;
}

bool check_settings(const JobSettings& s, std::string* err) {
    for (const auto& [tag, value] : s.fields()) {
        const SettingDef* d = find_setting(tag);
        if (!d) {
            if (tag > kLastMustKnowSetting) continue;   // one it may ignore: kept, unused
            *err = format("The server does not know the job setting %u (it runs an older ts: see "
                          "ts --restart)",
                          unsigned(tag));
            return false;
        }
        std::string why;
        if (!d->valid(value, &why)) {
            *err = format("The job setting %u (%s) is not valid: %s", unsigned(tag), d->name,
                          why.c_str());
            return false;
        }
    }
    return true;
}

namespace {
template <class T>
bool valid_in(std::string_view v, T lo, T hi, std::string* why) {
    T n;
    if (v.size() != sizeof n) {
        *why = format("%s, not a %zu-byte number", counted(v.size(), "byte", "bytes").c_str(), sizeof n);
        return false;
    }
    std::memcpy(&n, v.data(), sizeof n);
    if (n < lo || n > hi) {
        *why = format("%llu is not in %llu..%llu", (unsigned long long)n, (unsigned long long)lo,
                      (unsigned long long)hi);
        return false;
    }
    return true;
}
}  // namespace

bool valid_u32_in(std::string_view v, uint32_t lo, uint32_t hi, std::string* why) { return valid_in(v, lo, hi, why); }
bool valid_u64_in(std::string_view v, uint64_t lo, uint64_t hi, std::string* why) { return valid_in(v, lo, hi, why); }

TestSetting::TestSetting(const SettingDef& row) : tag_(row.tag) { test_rows().push_back(row); }

TestSetting::~TestSetting() {
    auto& rows = test_rows();
    rows.erase(std::remove_if(rows.begin(), rows.end(),
                              [this](const SettingDef& d) { return d.tag == tag_; }),
               rows.end());
}
