/*
 * settings.h — a job's optional settings (today the GPUs it needs; the
 * place for any later one): tagged values that travel with the job in its Submit
 * (and so through Assign to a spare runner) and in its journal record, in one
 * encoding: fields `uint16 tag, uint32 length, bytes`, in tag order, each tag
 * at most once. A job with no settings carries nothing extra, so its Submit is
 * byte for byte the one ts sent before settings existed, and a server of the
 * same protocol version that predates a setting still serves every client
 * that does not use it.
 *
 * Tags 1..0x7fff are settings a server must understand: they change how or
 * when a job runs, so a server that does not know one refuses the job rather
 * than run it without it. Tags 0x8000..0xffff are settings a server may
 * ignore (it keeps them with the job). Tag 0 is never a setting.
 *
 * Adding a setting is one change here, and the protocol version and the
 * journal's format stay as they are:
 *   1. a tag constant in SettingTag (a new number: numbers are never reused);
 *   2. its row in kSettings (settings.cpp): tag, name, a validator for its
 *      value (size, range), which the server applies to every Submit;
 *   3. a typed accessor in JobSettings for the feature's code, built on the
 *      generic ones, e.g.
 *        std::optional<uint32_t> gpus() const { return u32(kSettingGpus); }
 *        void set_gpus(uint32_t n) { set_u32(kSettingGpus, n); }
 */
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

/* The settings this binary knows. */
enum SettingTag : uint16_t {
    kSettingGpus = 1,                // -G N: the job needs N GPUs (uint32)
    kSettingGpuMem = 2,              // --gpu-mem: bytes of GPU memory it needs on each (uint64)
    kSettingDepends = 16,            // -D A,B,C: B and C, which must end well too (int32 ids)
    kSettingAfter = 17,              // --after=A,B: jobs to wait for, whatever their end (int32 ids)
    kSettingHold = 18,               // --hold: held until --release (uint32 1); absent once released
    kSettingNotBefore = 19,          // --delay, --at: not started before (uint64 ms since the epoch)
    kSettingTimeout = 20,            // --timeout: milliseconds from its start to SIGTERM (uint64)
    kSettingKillAfter = 21,          // --kill-after: milliseconds from SIGTERM to SIGKILL (uint64)
    kSettingRetry = 22,              // --retry=N: runs again after a failure, N more times at most (uint32)
    kSettingUnique = 24,             // --unique: not queued if the same command of the same user is (uint32 1);
                                     // the server decides at the submit and keeps nothing
    kSettingRequeueOf = 25,          // --requeue: the job this one runs again (int32 id, one)
    kLastMustKnowSetting = 0x7fff,   // above: settings a server may ignore
    kSettingClientTimeout = 0x8017,  // the client's TS_TIMEOUT (uint64 ms), sent when it sets one and no
                                     // --timeout: the server warns if the queue's differs, and keeps nothing
};

/* A job's optional settings: tag -> value bytes, kept sorted by tag. Numbers
 * are stored in the host's byte order, like everything else on the wire. */
class JobSettings {
public:
    using Field = std::pair<uint16_t, std::string>;

    bool empty() const { return fields_.empty(); }
    const std::vector<Field>& fields() const { return fields_; }   // in tag order

    /* The value of tag; nullptr when it is not set. */
    const std::string* bytes(uint16_t tag) const;
    void set_bytes(uint16_t tag, std::string value);
    /* A number; nullopt when it is not set or is not a number of that size. */
    std::optional<uint32_t> u32(uint16_t tag) const;
    void set_u32(uint16_t tag, uint32_t v);
    std::optional<uint64_t> u64(uint16_t tag) const;
    void set_u64(uint16_t tag, uint64_t v);
    void erase(uint16_t tag);

    /* -G N: the GPUs the job needs (0: none, a CPU job). */
    uint32_t gpus() const { return u32(kSettingGpus).value_or(0); }
    void set_gpus(uint32_t n) { set_u32(kSettingGpus, n); }
    /* --gpu-mem: the memory it needs on each of them (0: not said). */
    uint64_t gpu_mem() const { return u64(kSettingGpuMem).value_or(0); }
    void set_gpu_mem(uint64_t bytes) { set_u64(kSettingGpuMem, bytes); }

    /* A list of job ids (int32 each); empty when it is not set or not such a list. */
    std::vector<int32_t> ids(uint16_t tag) const;
    void set_ids(uint16_t tag, const std::vector<int32_t>& ids);   // empty: erased
    /* -D A,B,C: the ids after the first (the first is the Submit's own
     * depend_on, so a job with one -D is sent as task-spooler's). */
    std::vector<int32_t> more_depends() const { return ids(kSettingDepends); }
    /* --after=A,B: jobs it waits for, whatever their result. */
    std::vector<int32_t> after() const { return ids(kSettingAfter); }
    /* --unique: the submit is refused if the same command is queued or running. */
    bool unique() const { return u32(kSettingUnique).value_or(0) != 0; }
    /* --requeue: the job it runs again; nullopt for a job submitted as usual. */
    std::optional<int32_t> requeue_of() const {
        std::vector<int32_t> v = ids(kSettingRequeueOf);
        return v.size() == 1 ? std::optional<int32_t>(v[0]) : std::nullopt;
    }
    /* Both lists together: every job it waits for beyond the first -D. */
    std::vector<int32_t> further_deps() const;

    /* --hold: it does not start until released (--release). */
    bool held() const { return bytes(kSettingHold) != nullptr; }
    void set_held(bool on);
    /* --delay, --at: not started before this wall-clock time (seconds since
     * the epoch, kept to the millisecond; 0: no such time). */
    double not_before() const { return double(u64(kSettingNotBefore).value_or(0)) / 1000; }
    void set_not_before(double t);   // 0: erased
    /* --timeout: seconds from the job's start to its SIGTERM (0: none). */
    double timeout() const { return double(u64(kSettingTimeout).value_or(0)) / 1000; }
    void set_timeout(double s) { set_u64(kSettingTimeout, uint64_t(s * 1000 + 0.5)); }
    /* --kill-after: seconds from that SIGTERM (or --cancel's) to SIGKILL. */
    double kill_after() const {
        return double(u64(kSettingKillAfter).value_or(kDefaultKillAfterMs)) / 1000;
    }
    void set_kill_after(double s) { set_u64(kSettingKillAfter, uint64_t(s * 1000 + 0.5)); }
    /* --retry=N: how many times a failed job runs again (0: never). */
    uint32_t retries() const { return u32(kSettingRetry).value_or(0); }
    void set_retries(uint32_t n) { set_u32(kSettingRetry, n); }
    static constexpr uint64_t kDefaultKillAfterMs = 30000;   // as Slurm's KillWait

    /* What the settings cost in memory (Queue::spec_bytes counts it). */
    size_t memory() const;
    bool operator==(const JobSettings& o) const { return fields_ == o.fields_; }
    bool operator!=(const JobSettings& o) const { return !(*this == o); }

private:
    std::vector<Field> fields_;
};

/* A decoder refuses more than this (a job has a few settings, not hundreds). */
constexpr size_t kMaxSettings = 64;
constexpr size_t kMaxSettingsBytes = 64 * 1024;   // the encoded fields together

/* The fields, in tag order (empty for no settings). */
std::string encode_settings(const JobSettings& s);
/* Read fields back; false (and *out empty) for a truncated field, tag 0, a
 * tag not greater than the one before (twice, or out of order), or more than
 * the limits above. No bytes at all are no settings. */
[[nodiscard]] bool decode_settings(std::string_view bytes, JobSettings* out);

/* One row of the table of known settings. */
struct SettingDef {
    uint16_t tag;
    const char* name;   // for messages
    // Whether value is one this setting can take; if not, *why says why.
    bool (*valid)(std::string_view value, std::string* why);
};

/* The row of tag, or nullptr when this binary does not know that setting. */
const SettingDef* find_setting(uint16_t tag);
/* Whether a server may queue a job with these settings: it knows every tag
 * it must understand, and every value it knows is valid. If not, *err is a
 * sentence for the submitter, without a final period. */
[[nodiscard]] bool check_settings(const JobSettings& s, std::string* err);

/* Validators for rows: a 4-byte (8-byte) number in [lo, hi]. */
bool valid_u32_in(std::string_view v, uint32_t lo, uint32_t hi, std::string* why);
bool valid_u64_in(std::string_view v, uint64_t lo, uint64_t hi, std::string* why);

/* The most ids in one list of dependencies (-D, --after). */
constexpr size_t kMaxJobDeps = 1024;

/* The most retries of a job (--retry). */
constexpr uint32_t kMaxRetries = 1000;

/* The most GPUs a job may ask for. */
constexpr uint32_t kMaxJobGpus = 64;

/* For tests: while this lives, find_setting() knows its row as well (a
 * setting that this binary does not have yet). */
class TestSetting {
public:
    explicit TestSetting(const SettingDef& row);
    ~TestSetting();
    TestSetting(const TestSetting&) = delete;
    TestSetting& operator=(const TestSetting&) = delete;

private:
    uint16_t tag_;
};
