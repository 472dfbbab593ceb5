/*
 * journal.cpp — see journal.h.
 */
#include "journal.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <dirent.h>
#include <ctime>
#include <fcntl.h>
#include <iterator>
#include <set>
#include <sys/stat.h>
#include <sys/random.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <vector>

#include "frame.h"

namespace {

constexpr char kMagic[4] = {'T', 'S', 'J', '\0'};
constexpr uint32_t kMaxRecord = 64u << 20;
constexpr size_t kMinCompact = 16 * 1024;
constexpr size_t kReserve = 64 * 1024;      // kept allocated beyond the end of the file
constexpr size_t kReserveLow = 16 * 1024;   // renewed when less than this is left

enum RecType : uint16_t {
    kMeta = 1, kJob = 2, kStart = 3, kRunner = 4, kStarted = 5, kFinished = 6,
    kRemoved = 7, kUrgent = 8, kSwap = 9, kSlots = 10, kClear = 11, kAdmitted = 12,
    kEnv = 13,          // uint32 id, then the strings: an environment shared by later job records
    kMoveBefore = 14,   // IdRec {id, before}: another user's -u
    kUnstarted = 15,    // IdRec: a started job goes back to the queue (format 2)
    kSettings = 16,     // the queue's settings: tagged fields (encode_queue_settings)
    kDrain = 17,        // IdRec {drained: 1 or 0, 0}: --drain, --resume
    kHold = 18,         // IdRec {id, held: 1 or 0}: --hold=ID, --release=ID (Queue::hold)
    kRetry = 19,        // as kFinished: a run that failed, after which the job is queued again (--retry)
    kLastType = kRetry,
};

struct RecHeader {
    uint32_t len;    // body bytes
    uint32_t crc;    // of the salt (format 2), then type, pad and body
    uint16_t type;
    uint16_t pad;    // format 2: header_check(); format 1: 0
};
static_assert(sizeof(RecHeader) == 12);

struct MetaRec {
    int32_t next_id, last_errorlevel, last_finished_id, max_slots;
};
static_assert(sizeof(MetaRec) == 16);

/* Format 1's job record: this, then a tail (output, the job's Submit frame, note). */
struct JobRec {
    int32_t id;
    uint8_t state, depends, has_dep_result, skipped;
    int32_t depend_on, dep_result, pid, runner_pid;
    uint32_t uid;
    int32_t errorlevel, signal;
    uint32_t env_id;   // 0: the environment is in the submit frame; else a kEnv record's
    int64_t enqueue_us, start_us, end_us, real_us, user_us, sys_us;
};
static_assert(sizeof(JobRec) == 88);

struct IdRec {
    int32_t id, x;
};
static_assert(sizeof(IdRec) == 8);

struct StartedRec {
    int32_t id, pid;
    int64_t start_us;
};
static_assert(sizeof(StartedRec) == 16);

/* Format 1's end of a job: the runner's wire message, as it came. */
struct FinishedRec1 {
    int32_t id;
    uint32_t pad;
    proto::FinishedBody result;
};
static_assert(sizeof(FinishedRec1) == 56);

/* Format 2's end of a job, then a tail: note, why it was lost. */
struct FinishedRec {
    int32_t id, errorlevel, signal;
    uint8_t skipped, pad[3];
    int64_t real_us, user_us, sys_us, end_us;
};
static_assert(sizeof(FinishedRec) == 48);

/* The tags of a format 2 job record. Numbers are never reused. */
enum JobTag : uint16_t {
    tId = 1, tState = 2, tUid = 3, tFlags = 4, tSlots = 5, tSpecDepends = 6, tSpecDependOn = 7,
    tUmask = 8, tNice = 9, tArgv = 10, tEnv = 11, tEnvId = 12, tCwd = 13, tLabel = 14,
    tEnvInfo = 15, tLimits = 16, tDepends = 17, tDependOn = 18, tDepResult = 19, tPid = 20,
    tRunnerPid = 21, tEnqueue = 22, tStart = 23, tEnd = 24, tOutput = 25, tErrorlevel = 26,
    tSignal = 27, tSkipped = 28, tReal = 29, tUser = 30, tSys = 31, tNote = 32, tLost = 33,
    tToken = 34,
    tSettings = 35,   // the job's settings, encoded as in its Submit (settings.h); absent: none
    tGpus = 36,       // the UUIDs of the GPUs it was given (gpu.h); absent: none
    tStartEnv = 37,   // what its GPUs put in its environment (NAME=value); absent: nothing
    tDepResults = 38, // of its further dependencies (-D A,B,C; --after) that ended: int32 id, result pairs
    tEndHow = 45,     // uint8 EndHow: timed out, cancelled; absent: it ended by itself
    tAttempts = 46,   // its retried runs (--retry): strings, each an AttemptRec and its output path
};

/* One retried run in tAttempts, followed by its output file's path. */
struct AttemptRec {
    int64_t start_us, end_us;
    int32_t errorlevel, signal;
    uint8_t how, pad[7];
};
static_assert(sizeof(AttemptRec) == 32);

int64_t us(double s) { return static_cast<int64_t>(s * 1e6); }
double sec(int64_t u) { return double(u) / 1e6; }

template <class T>
std::string bytes_of(const T& v, std::string_view tail = {}) {
    static_assert(std::is_trivially_copyable_v<T>);
    std::string s(reinterpret_cast<const char*>(&v), sizeof v);
    s.append(tail);
    return s;
}

/* Copy a fixed record out of body; with tail, what follows goes there; with
 * grow (format 2), a longer body is one of a later version: the rest is skipped. */
template <class T>
bool take(std::string_view body, T* v, std::string_view* tail = nullptr, bool grow = false) {
    if (body.size() < sizeof(T) || (!tail && !grow && body.size() != sizeof(T))) return false;
    std::memcpy(v, body.data(), sizeof(T));
    if (tail) *tail = body.substr(sizeof(T));
    return true;
}

/* Tagged fields: uint16 tag, uint32 length, bytes. */
class Fields {
public:
    void bytes(uint16_t tag, std::string_view v) {
        uint32_t n = static_cast<uint32_t>(v.size());
        s_.append(reinterpret_cast<const char*>(&tag), 2);
        s_.append(reinterpret_cast<const char*>(&n), 4);
        s_.append(v);
    }
    template <class T>
    void num(uint16_t tag, T v) {
        static_assert(std::is_integral_v<T>);
        bytes(tag, std::string_view(reinterpret_cast<const char*>(&v), sizeof v));
    }
    void strings(uint16_t tag, const std::vector<std::string>& v) {
        TailWriter t;
        for (const auto& x : v) t.add(x);
        bytes(tag, t.str());
    }
    const std::string& str() const { return s_; }

private:
    std::string s_;
};

// The tagged fields of a settings record.
constexpr uint16_t kSettingsVars = 1;   // the settings that were set, as NAME=value strings

// The tagged fields a start record may carry after its id.
constexpr uint16_t kStartGpus = 1;   // the UUIDs of the GPUs the job was given
constexpr uint16_t kStartEnv = 2;    // what they put in its environment

/* Walk tagged fields; false when they do not add up. */
template <class Fn>
bool each_field(std::string_view b, Fn fn) {
    while (!b.empty()) {
        if (b.size() < 6) return false;
        uint16_t tag;
        uint32_t n;
        std::memcpy(&tag, b.data(), 2);
        std::memcpy(&n, b.data() + 2, 4);
        if (b.size() - 6 < n) return false;
        if (!fn(tag, b.substr(6, n))) return false;
        b.remove_prefix(6 + size_t(n));
    }
    return true;
}

template <class T>
bool num_of(std::string_view v, T* out) {
    if (v.size() != sizeof(T)) return false;
    std::memcpy(out, v.data(), sizeof(T));
    return true;
}

bool strings_of(std::string_view v, std::vector<std::string>* out) {
    TailReader r(v);
    out->clear();
    std::string x;
    while (!r.at_end()) {
        if (!r.next(&x)) return false;
        out->push_back(x);
    }
    return true;
}

constexpr size_t kHeader = 32;   // format 2's header

/* The CRC register after the salt: a record's CRC covers the file's secret
 * salt first (format 1: none). A job's strings are another user's bytes:
 * without the salt, which only the queue's owner can read, no string can
 * hold a record that a reader resynchronising after damage would take. */
struct Key {
    uint32_t init = 0xFFFFFFFFu;
};

uint32_t crc_more(uint32_t reg, std::string_view data);

Key key_of(uint64_t salt) {
    Key k;
    k.init = crc_more(0xFFFFFFFFu, std::string_view(reinterpret_cast<const char*>(&salt), sizeof salt));
    return k;
}

uint32_t record_crc(const Key& k, std::string_view rest) { return ~crc_more(k.init, rest); }

/* Format 2's "pad": a 16-bit check of the length and type over the salt, so
 * that a reader looking for the next record after damage computes a whole
 * CRC only for a header of ours, not for every plausible-looking one that
 * another user's strings may hold (an unsalted key: 0, as format 1 has it). */
uint16_t header_check(const Key& k, uint32_t len, uint16_t type) {
    if (k.init == 0xFFFFFFFFu) return 0;
    char b[7] = {'H'};
    std::memcpy(b + 1, &len, 4);
    std::memcpy(b + 5, &type, 2);
    return static_cast<uint16_t>(~crc_more(k.init, std::string_view(b, sizeof b)));
}

std::string record_bytes(const Key& k, uint16_t type, const std::string& body) {
    RecHeader h{};
    h.len = static_cast<uint32_t>(body.size());
    h.type = type;
    h.pad = header_check(k, h.len, type);
    std::string rec(reinterpret_cast<const char*>(&h), sizeof h);
    rec += body;
    h.crc = record_crc(k, std::string_view(rec).substr(8));
    std::memcpy(&rec[0], &h, sizeof h);
    return rec;
}

/* Whether an intact record starts at off. */
bool record_at(const std::string& data, size_t off, const Key& k, RecHeader* h) {
    if (data.size() - off < sizeof *h) return false;
    std::memcpy(h, data.data() + off, sizeof *h);
    if (h->type == 0 || h->type > kLastType || h->pad != header_check(k, h->len, h->type))
        return false;   // cheap, before the CRC
    if (h->len > kMaxRecord || data.size() - off - sizeof *h < h->len) return false;
    return record_crc(k, std::string_view(data.data() + off + 8, 4 + h->len)) == h->crc;
}

std::string meta_body(const Queue::Meta& m) {
    return bytes_of(MetaRec{m.next_id, m.last_errorlevel, m.last_finished_id, m.max_slots});
}

/* Where records go in a file. One bad aligned 512-byte sector or 4 KiB
 * region must cost no more than the records inside it, so nothing that many
 * records need lies only inside one (a record that reaches into a region is
 * inside it):
 *  - the key. Besides the header, a meta record starts exactly at offset 512
 *    and at offset 4096 (the anchors), once the file reaches them: where only
 *    a record of ours can start, its CRC run backwards gives the key. The gap
 *    before an anchor is filled by a meta record grown by a filler field, so
 *    no file ends less than kPadMin bytes before an anchor it lacks.
 *  - the meta record (next id, slot count): at offset 32, and each anchor is
 *    one, with the queue's state when it is written (a meta record anywhere
 *    sets what the records before it set already).
 *  - an environment. Its first copy comes before the first job record that
 *    uses it; after a job record, one more copy comes unless the job record
 *    itself touches every sector and region that all the copies touch (losing
 *    those costs that job anyway). A copy after the job starts in the job's
 *    last sector or later, so then all copies share at most the sector and
 *    region where the job starts: the second such copy leaves no sector
 *    shared, the third no region. A reader takes a copy from anywhere in the
 *    file, before or after the job.
 * What it costs: a pad is shorter than the record it keeps off an anchor
 * (plus 34 bytes), and each anchor 28 bytes, twice per file at most; an
 * environment is written one to four times per file (before: twice). */
constexpr size_t kAnchors[] = {512, 4096};
constexpr size_t kUnits[] = {512, 4096};   // the damage a file must take: a sector, a 4 KiB region
constexpr size_t kAnchorBytes = sizeof(RecHeader) + sizeof(MetaRec);
constexpr size_t kPadMin = kAnchorBytes + 6;   // with an empty filler field
constexpr uint16_t kMetaFiller = 1;   // a meta record's tagged field after its fixed part: zeros

/* Whether a record of n bytes at p must wait for the anchor at a (a file
 * of an older ts that ends too close to it gets none). */
bool needs_anchor(size_t p, size_t n, size_t a) { return p < a && p + n > a - kPadMin && a - p >= kPadMin; }

/* Whether the units that every copy in `copies` touches are all touched by [a, b) too. */
bool covered(const std::vector<std::pair<size_t, size_t>>& copies, size_t a, size_t b) {
    if (copies.empty()) return false;
    for (size_t g : kUnits) {
        size_t lo = 0, hi = SIZE_MAX;
        for (const auto& c : copies) {
            lo = std::max(lo, c.first / g);
            hi = std::min(hi, (c.second - 1) / g);
        }
        if (lo <= hi && (lo < a / g || hi > (b - 1) / g)) return false;
    }
    return true;
}

/* The bytes of one write (a change, or a snapshot's records) that starts at
 * file offset `at`, laid out as above. */
class Layout {
public:
    Layout(const Key& k, size_t at, const Queue::Meta& meta) : key_(k), at_(at), meta_(meta_body(meta)) {}

    /* A record; returns its offset in the file. */
    size_t add(uint16_t type, const std::string& body) {
        std::string rec = record_bytes(key_, type, body);
        anchors_before(rec.size());
        size_t off = end();
        out_ += rec;
        return off;
    }
    /* A job record, with the copies of its environment that it needs. */
    void add_job(const Job& j, EnvCopies* env) {
        if (!env) {
            add(kJob, encode_job(j));
            return;
        }
        TailWriter t;
        for (const auto& v : *env->env) t.add(v);
        std::string copy = bytes_of(env->id, t.str());
        auto add_copy = [&] {
            size_t off = add(kEnv, copy);
            env->at.push_back({off, end()});
        };
        if (env->at.empty()) add_copy();   // the first before it (a reader of an older ts looks back only)
        size_t off = add(kJob, encode_job(j, env->id));
        // One more copy after it is always enough: it starts in the job's
        // last unit or later, so the units all copies then share are at most
        // the one where the job starts.
        if (!covered(env->at, off, end())) add_copy();
    }
    size_t end() const { return at_ + out_.size(); }
    const std::string& bytes() const { return out_; }

private:
    void anchors_before(size_t n) {
        for (size_t a : kAnchors) {
            if (!needs_anchor(end(), n, a)) continue;
            Fields filler;
            filler.bytes(kMetaFiller, std::string(a - end() - kPadMin, '\0'));
            out_ += record_bytes(key_, kMeta, meta_ + filler.str());
            out_ += record_bytes(key_, kMeta, meta_);   // at a
        }
    }

    Key key_;
    size_t at_;
    std::string meta_;
    std::string out_;
};

uint64_t new_salt() {
    uint64_t s = 0;
    if (getrandom(&s, sizeof s, 0) != ssize_t(sizeof s))
        s = (uint64_t(getpid()) << 32) ^ uint64_t(wall_now() * 1e9) ^ 0x9E3779B97F4A7C15ull;
    return s;
}

}  // namespace

/* "TSJ" 0, version, salt, CRC of the 16 bytes before; the salt again, and
 * the CRC of magic, version and that copy: either copy does. */
std::string journal_header(uint32_t version, uint64_t salt) {
    std::string h(kMagic, 4);
    h.append(reinterpret_cast<const char*>(&version), 4);
    std::string head8 = h;
    h.append(reinterpret_cast<const char*>(&salt), 8);
    uint32_t c = crc32(h);
    h.append(reinterpret_cast<const char*>(&c), 4);
    std::string copy = head8 + std::string(reinterpret_cast<const char*>(&salt), 8);
    c = crc32(copy);
    h.append(reinterpret_cast<const char*>(&salt), 8);
    h.append(reinterpret_cast<const char*>(&c), 4);
    return h;
}

std::string journal_record(uint64_t salt, uint16_t type, const std::string& body) {
    return record_bytes(key_of(salt), type, body);
}

namespace {
/* CRC-32 (reflected, 0xEDB88320), and the entry of each top byte (each
 * table entry has a top byte of its own: the CRC runs backwards too). */
struct CrcTable {
    uint32_t entry[256];
    uint8_t by_top[256];
    CrcTable() {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t x = i;
            for (int k = 0; k < 8; ++k) x = (x & 1) ? 0xEDB88320u ^ (x >> 1) : x >> 1;
            entry[i] = x;
            by_top[x >> 24] = static_cast<uint8_t>(i);
        }
    }
};
const CrcTable& crc_table() {
    static const CrcTable t;
    return t;
}

uint32_t crc_more(uint32_t c, std::string_view data) {
    const uint32_t* table = crc_table().entry;
    for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
    return c;
}
}  // namespace

uint32_t crc32(std::string_view data) { return ~crc_more(0xFFFFFFFFu, data); }

/* The CRC register before data, from the one after it. */
uint32_t crc_back(uint32_t c, std::string_view data) {
    const CrcTable& t = crc_table();
    const uint32_t* table = t.entry;
    const uint8_t* by_top = t.by_top;
    for (size_t n = data.size(); n-- > 0;) {
        uint8_t i = by_top[c >> 24];
        c = ((c ^ table[i]) << 8) | (uint8_t(i ^ uint8_t(data[n])));
    }
    return c;
}

/* tAttempts: one string per retried run. */
static std::string encode_attempts(const Job& j) {
    TailWriter t;
    for (const Attempt& a : j.attempts()) {
        AttemptRec r{};
        r.start_us = int64_t(a.start * 1e6);
        r.end_us = int64_t(a.end * 1e6);
        r.errorlevel = a.errorlevel;
        r.signal = a.signal;
        r.how = uint8_t(a.how);
        std::string one(reinterpret_cast<const char*>(&r), sizeof r);
        t.add(one + a.output);
    }
    return t.str();
}

static bool decode_attempts(std::string_view v, Job* j) {
    TailReader t(v);
    std::string one;
    std::vector<Attempt>& out = j->attempts_mut();
    out.clear();
    while (!t.at_end()) {
        AttemptRec r;
        if (!t.next(&one) || one.size() < sizeof r || out.size() >= kMaxRetries) return false;
        std::memcpy(&r, one.data(), sizeof r);
        if (r.how > uint8_t(EndHow::Cancelled)) return false;
        out.push_back(Attempt{double(r.start_us) / 1e6, double(r.end_us) / 1e6, r.errorlevel, r.signal,
                              EndHow(r.how), one.substr(sizeof r)});
    }
    return true;
}

/* tDepResults: (int32 id, int32 errorlevel) pairs. */
static std::string encode_dep_results(const Job& j) {
    std::string s;
    for (const auto& [id, el] : j.more_results()) {
        int32_t v[2] = {int32_t(id), int32_t(el)};
        s.append(reinterpret_cast<const char*>(v), sizeof v);
    }
    return s;
}

static bool decode_dep_results(std::string_view v, Job* j) {
    if (v.size() % 8 || v.size() / 8 > 2 * kMaxJobDeps) return false;
    for (size_t at = 0; at < v.size(); at += 8) {
        int32_t p[2];
        std::memcpy(p, v.data() + at, sizeof p);
        j->learn_result(p[0], p[1]);
    }
    return true;
}

std::string encode_job(const Job& j, uint32_t env_id) {
    Fields f;
    const JobSpec& s = j.spec;
    f.num(tId, int32_t(j.id));
    f.num(tState, uint8_t(j.state));
    f.num(tUid, uint32_t(s.uid));
    f.num(tFlags, uint32_t(s.flags));
    f.num(tSlots, int32_t(s.num_slots));
    f.num(tSpecDepends, uint8_t(s.depends));
    f.num(tSpecDependOn, int32_t(s.depend_on));
    f.num(tUmask, uint32_t(s.umask));
    f.num(tNice, int32_t(s.nice));
    f.strings(tArgv, s.argv);
    if (env_id) f.num(tEnvId, env_id);
    else if (j.env) f.strings(tEnv, *j.env);
    else if (!s.env.empty()) f.strings(tEnv, s.env);
    f.bytes(tCwd, s.cwd);
    if (s.label) f.bytes(tLabel, *s.label);
    if (s.env_info) f.bytes(tEnvInfo, *s.env_info);
    if (s.limits && s.limits->valid) f.bytes(tLimits, std::string_view(reinterpret_cast<const char*>(s.limits.get()), sizeof(Limits)));
    if (!s.token.empty()) f.bytes(tToken, s.token);
    if (!s.settings.empty()) f.bytes(tSettings, encode_settings(s.settings));
    if (!j.gpus().empty()) f.strings(tGpus, j.gpus());
    if (!j.start_env().empty()) f.strings(tStartEnv, j.start_env());
    f.num(tDepends, uint8_t(j.depends));
    f.num(tDependOn, int32_t(j.depend_on));
    if (j.dep_result) f.num(tDepResult, int32_t(*j.dep_result));
    if (!j.more_results().empty()) f.bytes(tDepResults, encode_dep_results(j));
    if (j.pid) f.num(tPid, int32_t(j.pid));
    if (j.runner_pid) f.num(tRunnerPid, int32_t(j.runner_pid));
    f.num(tEnqueue, us(j.enqueue_time));
    if (j.start_time) f.num(tStart, us(j.start_time));
    if (j.end_time) f.num(tEnd, us(j.end_time));
    if (!j.output.empty()) f.bytes(tOutput, j.output);
    const JobResult& r = j.result;
    f.num(tErrorlevel, int32_t(r.errorlevel));
    if (r.signal) f.num(tSignal, int32_t(r.signal));
    if (r.skipped) f.num(tSkipped, uint8_t(1));
    if (r.real) f.num(tReal, us(r.real));
    if (r.user) f.num(tUser, us(r.user));
    if (r.sys) f.num(tSys, us(r.sys));
    if (!r.note.empty()) f.bytes(tNote, r.note);
    if (!r.lost.empty()) f.bytes(tLost, r.lost);
    if (r.how != EndHow::Normal) f.num(tEndHow, uint8_t(r.how));
    if (!j.attempts().empty()) f.bytes(tAttempts, encode_attempts(j));
    return f.str();
}

namespace {

/* What a job record's field was to one of the readers below: read, damaged,
 * or not one of its fields. */
enum class FieldIs { Ok, Bad, Other };

FieldIs read_if(bool ok) { return ok ? FieldIs::Ok : FieldIs::Bad; }

/* A fixed-size number, converted to the field it goes to. */
template <class T, class U>
bool num_into(std::string_view v, U* out) {
    T x;
    if (!num_of(v, &x)) return false;
    *out = static_cast<U>(x);
    return true;
}

/* A field of what was submitted (the job's spec). */
FieldIs spec_field(uint16_t tag, std::string_view v, JobSpec& s) {
    int32_t i = 0;
    uint32_t u = 0;
    switch (tag) {
    case tUid: return read_if(num_into<uint32_t>(v, &s.uid));
    case tFlags: return read_if(num_into<uint32_t>(v, &s.flags));
    case tSlots: return read_if(num_of(v, &i) && i >= 0 && ((s.num_slots = i), true));
    case tSpecDepends: return read_if(num_into<uint8_t>(v, &s.depends));
    case tSpecDependOn: return read_if(num_into<int32_t>(v, &s.depend_on));
    case tUmask: return read_if(num_of(v, &u) && ((s.umask = u & 0777), true));
    case tNice: return read_if(num_into<int32_t>(v, &s.nice));
    case tArgv: return read_if(strings_of(v, &s.argv) && !s.argv.empty());
    case tEnv: return read_if(strings_of(v, &s.env));
    case tCwd: s.cwd.assign(v); return FieldIs::Ok;
    case tLabel: s.label = std::string(v); return FieldIs::Ok;
    case tEnvInfo: s.env_info = std::string(v); return FieldIs::Ok;
    case tLimits: {
        if (v.size() != sizeof(Limits)) return FieldIs::Bad;
        auto l = std::make_shared<Limits>();
        std::memcpy(static_cast<void*>(l.get()), v.data(), sizeof(Limits));
        s.limits = std::move(l);
        return FieldIs::Ok;
    }
    case tToken: s.token.assign(v); return FieldIs::Ok;
    case tSettings: return read_if(decode_settings(v, &s.settings) && !s.settings.empty());
    default: return FieldIs::Other;
    }
}

/* A field of the job's place in the queue: id, state, dependency, processes, times, GPUs. */
FieldIs state_field(uint16_t tag, std::string_view v, Job& j) {
    int32_t i = 0;
    uint8_t b = 0;
    int64_t t = 0;
    switch (tag) {
    case tId: return read_if(num_of(v, &i) && (j.id = i) >= 0);
    case tState:
        if (!num_of(v, &b) || b > static_cast<uint8_t>(JobState::Overflow)) return FieldIs::Bad;
        j.state = static_cast<JobState>(b);
        return FieldIs::Ok;
    case tGpus: return read_if(strings_of(v, &j.gpu().cards) && j.gpus().size() <= 1024);
    case tStartEnv: return read_if(strings_of(v, &j.gpu().env) && j.start_env().size() <= 1024);
    case tDepends: return read_if(num_into<uint8_t>(v, &j.depends));
    case tDependOn: return read_if(num_into<int32_t>(v, &j.depend_on));
    case tDepResult: return read_if(num_of(v, &i) && ((j.dep_result = i), true));
    case tDepResults: return read_if(decode_dep_results(v, &j));
    case tPid: return read_if(num_into<int32_t>(v, &j.pid));
    case tRunnerPid: return read_if(num_into<int32_t>(v, &j.runner_pid));
    case tEnqueue: return read_if(num_of(v, &t) && ((j.enqueue_time = sec(t)), true));
    case tStart: return read_if(num_of(v, &t) && ((j.start_time = sec(t)), true));
    case tEnd: return read_if(num_of(v, &t) && ((j.end_time = sec(t)), true));
    case tOutput: j.output.assign(v); return FieldIs::Ok;
    case tAttempts: return read_if(decode_attempts(v, &j));
    default: return FieldIs::Other;
    }
}

/* A field of how the job ended. */
FieldIs result_field(uint16_t tag, std::string_view v, JobResult& r) {
    int64_t t = 0;
    switch (tag) {
    case tErrorlevel: return read_if(num_into<int32_t>(v, &r.errorlevel));
    case tSignal: return read_if(num_into<int32_t>(v, &r.signal));
    case tSkipped: return read_if(num_into<uint8_t>(v, &r.skipped));
    case tReal: return read_if(num_of(v, &t) && ((r.real = sec(t)), true));
    case tUser: return read_if(num_of(v, &t) && ((r.user = sec(t)), true));
    case tSys: return read_if(num_of(v, &t) && ((r.sys = sec(t)), true));
    case tNote: r.note.assign(v); return FieldIs::Ok;
    case tLost: r.lost.assign(v); return FieldIs::Ok;
    case tEndHow: {
        uint8_t h = 0;
        if (!num_of(v, &h) || h > uint8_t(EndHow::Cancelled)) return FieldIs::Bad;
        r.how = EndHow(h);
        return FieldIs::Ok;
    }
    default: return FieldIs::Other;
    }
}

/* The environment a job record names by id (a kEnv record's): one that
 * envs lacks fails, unless env_missing is given to note it (decode_job). */
bool attach_env(uint32_t env_id, Job* j, const EnvTable* envs, uint32_t* env_missing) {
    auto it = envs ? envs->find(env_id) : EnvTable::const_iterator();
    if (envs && it != envs->end()) j->env = it->second;
    else if (env_missing) *env_missing = env_id;
    else return false;
    return true;
}

}  // namespace

bool decode_job(std::string_view bytes, Job* j, const EnvTable* envs, uint32_t* env_missing) {
    bool have_id = false, have_state = false, have_argv = false;
    uint32_t env_id = 0;
    bool ok = each_field(bytes, [&](uint16_t tag, std::string_view v) {
        have_id |= tag == tId;
        have_state |= tag == tState;
        have_argv |= tag == tArgv;
        if (tag == tEnvId) return num_of(v, &env_id) && env_id != 0;
        FieldIs f = spec_field(tag, v, j->spec);
        if (f == FieldIs::Other) f = state_field(tag, v, *j);
        if (f == FieldIs::Other) f = result_field(tag, v, j->result);
        return f != FieldIs::Bad;   // Other: a field of a later version, skipped
    });
    if (!ok || !have_id || !have_state || !have_argv) return false;
    return env_id == 0 || attach_env(env_id, j, envs, env_missing);
}

std::string encode_job_v1(const Job& j, uint32_t env_id) {
    JobRec r{};
    r.env_id = env_id;
    r.id = j.id;
    r.state = static_cast<uint8_t>(j.state);
    r.depends = j.depends;
    r.has_dep_result = j.dep_result.has_value();
    r.skipped = j.result.skipped;
    r.depend_on = j.depend_on;
    r.dep_result = j.dep_result.value_or(0);
    r.pid = j.pid;
    r.runner_pid = j.runner_pid;
    r.uid = j.spec.uid;
    r.errorlevel = j.result.errorlevel;
    r.signal = j.result.signal;
    r.enqueue_us = us(j.enqueue_time);
    r.start_us = us(j.start_time);
    r.end_us = us(j.end_time);
    r.real_us = us(j.result.real);
    r.user_us = us(j.result.user);
    r.sys_us = us(j.result.sys);
    TailWriter t;
    t.add(j.output);
    JobSpec spec = j.spec;
    spec.token.clear();   // format 1 had none
    spec.settings = JobSettings();   // nor settings
    if (j.env && !env_id) spec.env = *j.env;   // the environment inline, unless a kEnv record holds it
    t.add(encode_submit(spec));
    t.add(j.result.note);
    return bytes_of(r, t.str());
}

bool decode_job_v1(std::string_view bytes, Job* j, const EnvTable* envs, uint32_t* env_missing) {
    JobRec r;
    std::string_view tail;
    if (!take(bytes, &r, &tail) || r.state > static_cast<uint8_t>(JobState::Overflow)) return false;
    TailReader t(tail);
    std::string submit;
    if (!t.next(&j->output) || !t.next(&submit) || !t.next(&j->result.note) || !t.at_end())
        return false;
    Frame f;
    size_t used = 0;
    if (parse_frame(submit, &f, &used) != ParseStatus::Ok || used != submit.size() ||
        f.type != proto::MsgType::Submit || !decode_submit(f, &j->spec))
        return false;
    if (r.env_id && !attach_env(r.env_id, j, envs, env_missing)) return false;
    j->id = r.id;
    j->state = static_cast<JobState>(r.state);
    j->depends = r.depends;
    j->depend_on = r.depend_on;
    if (r.has_dep_result) j->dep_result = r.dep_result;
    j->pid = r.pid;
    j->runner_pid = r.runner_pid;
    j->spec.uid = r.uid;
    j->result.errorlevel = r.errorlevel;
    j->result.signal = r.signal;
    j->result.skipped = r.skipped;
    j->enqueue_time = sec(r.enqueue_us);
    j->start_time = sec(r.start_us);
    j->end_time = sec(r.end_us);
    j->result.real = sec(r.real_us);
    j->result.user = sec(r.user_us);
    j->result.sys = sec(r.sys_us);
    return true;
}

std::string encode_queue_settings(const QueueSettings& s) {
    std::vector<std::string> vars;
    for (const auto& [name, value] : s) vars.push_back(name + "=" + value);
    Fields f;
    f.strings(kSettingsVars, vars);
    return f.str();
}

bool decode_queue_settings(std::string_view bytes, QueueSettings* out) {
    QueueSettings s;
    bool ok = each_field(bytes, [&](uint16_t tag, std::string_view v) {
        if (tag != kSettingsVars) return true;   // a field of a later version
        std::vector<std::string> vars;
        if (!strings_of(v, &vars)) return false;
        for (const std::string& var : vars) {
            size_t eq = var.find('=');
            if (eq == 0 || eq == std::string::npos) return false;
            s[var.substr(0, eq)] = var.substr(eq + 1);
        }
        return true;
    });
    if (ok) *out = std::move(s);
    return ok;
}

Journal::Journal(std::string path, Queue* q, Log log, bool sync)
    : path_(std::move(path)), log_(std::move(log)), sync_(sync), live_(q) {
    if (!path_.empty()) replay(q);   // an empty path: no journal (TS_JOURNAL=0)
}

std::string Journal::why() const {
    if (err_ == 0) return dirty_ ? "changes are held in memory until a snapshot can be written" : "";
    if (err_ == EEXIST && file_state() == FileState::Replaced)
        return format("another file took its place (%s): move that file away, and the queue's journal "
                      "is written there again",
                      path_.c_str());
    return strerror(err_);
}

/* The journal stops taking records (logged once, when it starts failing). */
void Journal::fail(int err, const char* what) {
    if (err == 0) err = EIO;
    if (err_ == 0)
        log_(format("journal %s: cannot %s: %s; changes to the queue are refused until it can be "
                    "written again",
                    path_.c_str(), what, strerror(err)));
    err_ = err;
    err_what_ = what;
}

/* One way to read a file: its format, its records' key, where they start. */
struct JournalReading {
    uint32_t fmt = kJournalFormat;
    Key key;
    uint64_t salt = 0;
    size_t start = kHeader;
};

namespace {

/* How many intact records, and how many of its job records decode, a way of
 * reading finds. */
size_t score(const std::string& data, const JournalReading& r) {
    size_t n = 0;
    EnvTable envs;
    for (size_t off = r.start; off < data.size();) {
        RecHeader h;
        if (!record_at(data, off, r.key, &h)) {
            ++off;
            continue;
        }
        ++n;
        std::string_view body(data.data() + off + sizeof h, h.len);
        if (h.type == kEnv && body.size() >= 4) {
            uint32_t id;
            std::memcpy(&id, body.data(), 4);
            envs[id] = nullptr;
        } else if (h.type == kJob) {
            Job j;
            uint32_t missing = 0;
            n += r.fmt == 1 ? decode_job_v1(body, &j, &envs, &missing) : decode_job(body, &j, &envs, &missing);
        }
        off += sizeof h + h.len;
    }
    return n;
}

/* The ways a file with a damaged header may be read (format 1; format 2 with
 * either copy of the salt), best first; none that finds a record. */
std::vector<JournalReading> readings(const std::string& data) {
    // Never format 1 here: its records' CRC is one anyone can compute, so
    // another user's strings could hold records it would take.
    std::vector<std::pair<size_t, JournalReading>> found;
    std::vector<JournalReading> all;
    for (size_t at : {size_t(8), size_t(20)}) {
        if (data.size() < at + 8) continue;
        JournalReading r;
        std::memcpy(&r.salt, data.data() + at, 8);
        r.key = key_of(r.salt);
        all.push_back(r);
    }
    // Both copies of the salt gone (a zeroed sector): the first record of a
    // file of ours is its meta record, at offset 32, where no other user's
    // bytes can be. Its CRC, run backwards over its bytes, gives the key.
    // Then the anchors (Layout), only if that finds nothing: a file of an
    // older ts may hold another user's bytes at their offsets.
    auto meta_at = [&](size_t at, std::vector<JournalReading>* to) {
        RecHeader h;
        if (data.size() < at + sizeof h + sizeof(MetaRec)) return;
        std::memcpy(&h, data.data() + at, sizeof h);
        if (h.type != kMeta || h.len != sizeof(MetaRec)) return;
        JournalReading r;
        r.key.init = crc_back(~h.crc, std::string_view(data.data() + at + 8, 4 + h.len));
        to->push_back(r);
    };
    meta_at(kHeader, &all);
    std::vector<JournalReading> anchored;
    for (size_t a : kAnchors) meta_at(a, &anchored);
    std::vector<JournalReading> out;
    for (const std::vector<JournalReading>* ways : {&all, &anchored}) {
        for (const JournalReading& r : *ways)
            if (size_t n = score(data, r)) found.push_back({n, r});
        std::stable_sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
        for (auto& f : found) out.push_back(f.second);
        if (!out.empty()) break;
    }
    return out;
}
}  // namespace

/* Read the whole file and apply every intact record; a damaged one is
 * skipped (the next intact record is searched for, byte by byte). Then the
 * queue starts from a snapshot of what came back. */
void Journal::replay(Queue* q) {
    std::string data;
    if (!load(&data)) return;
    JournalReading how;
    std::string damaged;   // why the file must be kept aside before it is rewritten
    if (!read_header(&data, &how, &damaged)) return;
    size_t records = apply_records(data, how, q, &damaged);
    replayed_ = records > 0;
    bool changed = after_replay(q, &damaged);
    start_writing(*q, data, how, damaged, changed);
}

/* The file's bytes (none when it does not exist). False when the server
 * must not use it (refused()). */
bool Journal::load(std::string* data) {
    std::string why;
    Fd in = open_private(path_, O_RDONLY, &why);
    if (!in && errno == EPERM) {
        // A second link: one of ours (a damaged journal kept aside, the
        // server stopped before its snapshot replaced the journal)? Drop that one.
        struct stat st, other;
        if (lstat(path_.c_str(), &st) == 0 && st.st_nlink == 2 && S_ISREG(st.st_mode) && st.st_uid == geteuid()) {
            std::string dir = dir_name(path_), base = path_.substr(dir.size() + 1) + ".bad.";
            if (DIR* d = opendir(dir.c_str())) {
                while (struct dirent* e = readdir(d)) {
                    std::string p = dir + "/" + e->d_name;
                    if (std::strncmp(e->d_name, base.c_str(), base.size()) == 0 && lstat(p.c_str(), &other) == 0 &&
                        other.st_ino == st.st_ino && other.st_dev == st.st_dev && unlink(p.c_str()) == 0)
                        log_(format("journal %s: %s was a second link to it, left by a server stopped "
                                    "before it could replace the journal; removed",
                                    path_.c_str(), p.c_str()));
                }
                closedir(d);
            }
            in = open_private(path_, O_RDONLY, &why);
        }
    }
    if (!in && errno != ENOENT) {
        // There, but not a file of ours, or unreadable: never read it, never write over it.
        refused_ = why;
        log_(format("journal %s: not used: %s", path_.c_str(), why.c_str()));
        path_.clear();
        return false;
    }
    if (in) {
        note_file(in.get());   // the queue's journal: -K may remove it, a snapshot replace it
        if (!read_all(in.get(), data)) {
            refused_ = format("cannot read the journal %s: %s", path_.c_str(), strerror(errno));
            log_(refused_);
            path_.clear();
            return false;
        }
        in.reset();
    }
    return true;
}

/* How to read the file: its format and key, from the header (or, when the
 * header is damaged, from the records). False when it is refused (a newer
 * format); a file that is not a journal is moved aside and read as empty. */
bool Journal::read_header(std::string* file, JournalReading* out, std::string* damaged_out) {
    const std::string& data = *file;
    JournalReading& how = *out;
    std::string& damaged = *damaged_out;
    if (!data.empty()) {
        uint32_t version = 0, c1 = 0, c2 = 0;
        if (data.size() >= 8) std::memcpy(&version, data.data() + 4, 4);
        if (data.size() >= 20) std::memcpy(&c1, data.data() + 16, 4);
        if (data.size() >= 32) std::memcpy(&c2, data.data() + 28, 4);
        bool magic = data.size() >= 4 && std::memcmp(data.data(), kMagic, 4) == 0;
        bool copy1 = data.size() >= 20 && c1 == crc32(std::string_view(data.data(), 16));
        bool copy2 = data.size() >= 32 && c2 == crc32(std::string(data.data(), 8) + data.substr(20, 8));
        // A version of 1 where a format 2 header would check out with 2 is a
        // damaged format 2 file, never read as format 1 (see readings).
        auto v2_copy = [&](size_t at, size_t crc_at) {
            if (data.size() < crc_at + 4) return false;
            std::string h(kMagic, 4);
            h.append(reinterpret_cast<const char*>(&kJournalFormat), 4);
            h.append(data, at, 8);
            uint32_t c;
            std::memcpy(&c, data.data() + crc_at, 4);
            return crc32(h) == c;
        };
        bool really_v2 = v2_copy(8, 16) || v2_copy(20, 28);
        if (magic && version == 1 && !really_v2) {
            how.fmt = 1;
            how.start = 8;
        } else if (magic && (copy1 || copy2) && version == kJournalFormat) {
            std::memcpy(&how.salt, data.data() + (copy1 ? 8 : 20), 8);
            how.key = key_of(how.salt);
            if (!copy1 || !copy2) {   // nothing lost: the other copy does
                damaged = "one copy of its header is damaged";
                log_(format("journal %s: 12 damaged bytes at offset %d (a copy of the header): the "
                            "other copy is read, nothing is lost",
                            path_.c_str(), copy1 ? 20 : 8));
            }
        } else if (magic && version > kJournalFormat && ((copy1 || copy2) || readings(data).empty())) {
            refused_ = format("the journal %s has format %u, newer than this ts reads (%u); it was "
                              "left untouched. Use the ts that wrote it, or move the file away to "
                              "start with an empty queue",
                              path_.c_str(), unsigned(version), unsigned(kJournalFormat));
            log_(refused_);
            path_.clear();
            return false;
        } else {
            std::vector<JournalReading> ways = readings(data);
            if (ways.empty()) {
                set_aside("it is not a ts journal");
                file->clear();
            } else {
                how = ways[0];
                damaged = "its header is damaged";
                log_(format("journal %s: the header is damaged (format %u?); read as format %u",
                            path_.c_str(), unsigned(version), unsigned(how.fmt)));
            }
        }
    }
    return true;
}

/* Apply every intact record, searching byte by byte past damage; returns
 * how many applied. The log says which bytes and which jobs were lost. */
size_t Journal::apply_records(const std::string& data, const JournalReading& how, Queue* q,
                              std::string* damaged_out) {
    std::string& damaged = *damaged_out;
    uint32_t fmt = how.fmt;
    size_t off = how.start;
    size_t records = 0, bad = 0, bad_start = std::string::npos;
    std::set<JobId> unapplied;
    auto end_damage = [&](size_t at) {
        bool tail = at >= data.size();
        std::string n = tail ? counted(at - bad_start, "byte", "bytes") : counted(at - bad_start, "damaged byte", "damaged bytes");
        log_(format(tail ? "journal %s: dropped %s after offset %zu (a torn or damaged last record)"
                         : "journal %s: %s at offset %zu: what they held is lost; reading went on after them",
                    path_.c_str(), n.c_str(), bad_start));
        if (damaged.empty()) damaged = "it has damaged records";
        bad_start = std::string::npos;
    };
    while (!data.empty() && off < data.size()) {
        RecHeader h;
        if (!record_at(data, off, how.key, &h)) {
            if (bad_start == std::string::npos) bad_start = off;
            ++off;
            continue;
        }
        if (bad_start != std::string::npos) end_damage(off);
        std::string_view body(data.data() + off + sizeof h, h.len);
        JobId about = -1;
        if (apply(h.type, body, q, fmt, &about)) {
            ++records;
        } else {
            ++bad;
            if (about >= 0) unapplied.insert(about);
        }
        off += sizeof h + h.len;
    }
    if (bad_start != std::string::npos) end_damage(data.size());
    if (!unapplied.empty()) {   // a job whose own record was lost: its id is never given again
        Queue::Meta m = q->meta();
        m.next_id = std::max(m.next_id, *unapplied.rbegin() + 1);
        q->set_meta(m);
    }
    if (bad) {
        std::string lost;
        for (JobId id : unapplied)
            if (!q->find(id)) lost += format(" %d", id);
        log_(format("journal %s: %s could not be applied%s%s", path_.c_str(), counted(bad, "record", "records").c_str(),
                    lost.empty() ? "" : bad == 1 ? "; it is about a job whose own record was lost:"
                                                 : "; they are about jobs whose own record was lost:",
                    lost.c_str()));
        if (damaged.empty() && !lost.empty()) damaged = "it has damaged records";
    }
    return records;
}

/* After the records: a queued job whose environment was lost ends, saying
 * so; dependents of a lost job are named. True when the queue changed. */
bool Journal::after_replay(Queue* q, std::string* damaged_out) {
    std::string& damaged = *damaged_out;
    q->relink_dependencies();
    // A job whose environment's record came after it gets it now. One that
    // would still run but whose environment was lost with damaged records
    // (every copy) is not run without it: it ends, saying so.
    bool changed = false;
    for (const auto& [id, env_id] : env_missing_) {
        Job* j = q->find(id);
        auto env = env_table_.find(env_id);
        bool ended = j && (j->state == JobState::Finished || j->state == JobState::Skipped);
        if (j && !ended && env != env_table_.end()) j->env = env->second;   // (an ended job's is dropped)
        if (!j || j->env || (j->state != JobState::Queued && j->state != JobState::Overflow)) continue;
        log_(format("journal %s: job %d: its environment was in a damaged record; marked lost",
                    path_.c_str(), id));
        q->end(id, Queue::lost_result("its environment was in a damaged record of the journal: "
                                           "queue it again"),
                    wall_now());
        changed = true;
    }
    env_missing_.clear();
    if (changed && damaged.empty()) damaged = "it has damaged records";
    if (!damaged.empty()) {   // dependents of a job that was lost with the damage
        for (JobId id : q->active()) {
            const Job* j = q->find(id);
            if (j->state == JobState::Queued && j->depends && !j->dep_result && j->depend_on >= 0 &&
                !q->find(j->depend_on))
                log_(format("journal %s: job %d depends on job %d, which was lost with the damage: it "
                            "will be skipped",
                            path_.c_str(), id, j->depend_on));
        }
    }
    return changed;
}

/* The journal to append to from now on. */
void Journal::start_writing(const Queue& q, const std::string& data, const JournalReading& how,
                            const std::string& damaged, bool changed) {
    std::string why;
    // Start from a snapshot of what came back, in this format (a damaged
    // file is kept aside by then). If it cannot be written, go on with the
    // file as it is: it replays the same way, and a file of this format takes
    // new records after any damage (a reader finds them again).
    unkept_ = damaged;
    if (write_snapshot(q)) return;
    int e = errno;
    if (changed) dirty_ = true;   // what was just marked lost is in memory only
    if (how.fmt == kJournalFormat && !data.empty()) {
        fd_ = open_private(path_, O_WRONLY | O_APPEND, &why);
        if (fd_) note_file(fd_.get());
        size_ = data.size();
        key_init_ = how.key.init;
        for (const auto& e : env_table_) next_env_id_ = std::max(next_env_id_, e.first);   // never one of its ids again
        if (fd_) {
            reserve();
            if (dirty_ && err_ == 0) fail(e, "write the journal");   // the snapshot is what it needs
            return;
        }
        e = errno;
    }
    fail(e, "write the journal");
}

/* A copy of the journal as it is, before it is rewritten: a hard link (no
 * space needed), else a copy. */
bool Journal::keep_aside(const std::string& why, std::string* kept_as) {
    std::string aside = format("%s.bad.%ld", path_.c_str(), long(time(nullptr)));
    bool kept = link(path_.c_str(), aside.c_str()) == 0;
    for (int n = 0; !kept && errno == EEXIST && n < 8; ++n) {   // never over another file (maybe not ours)
        aside = format("%s.bad.%ld.%016llx", path_.c_str(), long(time(nullptr)),
                       static_cast<unsigned long long>(new_salt()));
        kept = link(path_.c_str(), aside.c_str()) == 0;
    }
    if (!kept && errno != ENOENT) {
        std::string data, w;
        Fd in = open_private(path_, O_RDONLY, &w);
        Fd out(open(aside.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        kept = in && out && read_all(in.get(), &data) && write_all(out.get(), data.data(), data.size()) &&
               fsync(out.get()) == 0;
        if (!kept && out) unlink(aside.c_str());
    }
    if (kept) *kept_as = aside;
    if (kept) log_(format("journal %s: %s; kept aside as %s", path_.c_str(), why.c_str(), aside.c_str()));
    else log_(format("journal %s: %s, and no copy can be kept aside: %s", path_.c_str(), why.c_str(),
                     strerror(errno)));
    return kept;
}

void Journal::set_aside(const std::string& why) {
    std::string aside = format("%s.bad.%ld", path_.c_str(), long(time(nullptr)));
    for (int n = 1; access(aside.c_str(), F_OK) == 0; ++n)   // never over an earlier one
        aside = format("%s.bad.%ld.%d", path_.c_str(), long(time(nullptr)), n);
    if (rename(path_.c_str(), aside.c_str()) == 0)
        log_(format("journal %s: %s; moved aside to %s", path_.c_str(), why.c_str(), aside.c_str()));
    else
        log_(format("journal %s: %s; cannot move it aside: %s", path_.c_str(), why.c_str(),
                    strerror(errno)));
}

namespace {

/* What replaying one record may change: the queue, and what the journal
 * keeps of the file it reads (its environments, the queue's settings). */
struct Replay {
    Queue* q;
    uint32_t fmt;
    bool grow;   // a record of format 2 may carry more than this ts knows
    EnvTable* envs;
    std::vector<std::pair<JobId, uint32_t>>* env_missing;
    std::optional<QueueSettings>* settings;
    JobId* about;   // the job a record is about, once read: its id is never given again
};

/* The fixed part of a record that names a job (and one more number). */
bool take_id(std::string_view b, const Replay& r, IdRec* id) {
    if (!take(b, id, nullptr, r.grow)) return false;
    *r.about = id->id;
    return true;
}

bool apply_meta(std::string_view b, Replay& r) {
    MetaRec m;
    if (!take(b, &m, nullptr, r.grow)) return false;
    r.q->set_meta({m.next_id, m.last_errorlevel, m.last_finished_id, m.max_slots});
    return true;
}

bool apply_job(std::string_view b, Replay& r) {
    Job j;
    uint32_t missing = 0;
    if (!(r.fmt == 1 ? decode_job_v1(b, &j, r.envs, &missing) : decode_job(b, &j, r.envs, &missing)))
        return false;
    if (missing) r.env_missing->push_back({j.id, missing});
    r.q->restore(std::move(j));
    return true;
}

bool apply_env(std::string_view b, Replay& r) {
    uint32_t eid;
    std::string_view rest;
    if (!take(b, &eid, &rest) || eid == 0) return false;
    TailReader t(rest);
    Env env;
    std::string v;
    while (!t.at_end()) {
        if (!t.next(&v)) return false;
        env.push_back(v);
    }
    (*r.envs)[eid] = r.q->intern(std::move(env));
    return true;
}

bool apply_start(std::string_view b, Replay& r) {
    // After the fixed part, format 2 may have tagged fields: the job's GPUs.
    IdRec id;
    std::string_view rest;
    if (!take(b, &id, &rest)) return false;
    *r.about = id.id;
    std::vector<std::string> gpus, env;
    if (r.fmt >= 2 && !each_field(rest, [&](uint16_t tag, std::string_view v) {
            if (tag == kStartGpus) return strings_of(v, &gpus) && gpus.size() <= 1024;
            if (tag == kStartEnv) return strings_of(v, &env) && env.size() <= 1024;
            return true;   // a field of a later version
        }))
        return false;
    if (!r.q->start(id.id)) return false;
    Job* j = r.q->find(id.id);
    if (!gpus.empty() || !env.empty()) {
        j->gpu().cards = std::move(gpus);
        j->gpu().env = std::move(env);
    }
    return true;
}

bool apply_runner(std::string_view b, Replay& r) {
    IdRec id;
    if (!take_id(b, r, &id) || !r.q->find(id.id)) return false;
    r.q->set_runner(id.id, id.x);
    return true;
}

bool apply_started(std::string_view b, Replay& r) {
    StartedRec s;
    std::string_view path;
    if (!take(b, &s, &path)) return false;
    *r.about = s.id;
    if (!r.q->find(s.id)) return false;
    r.q->started(s.id, s.pid, std::string(path), sec(s.start_us));
    return true;
}

/* A job's end as format 1 wrote it: the runner's wire message, then the note. */
bool finished_v1(std::string_view b, JobId* id, JobResult* r, double* end) {
    FinishedRec1 f;
    std::string_view tail;
    if (!take(b, &f, &tail)) return false;
    *r = result_of(f.result);
    r->note = std::string(tail);
    *id = f.id;
    *end = sec(f.result.end_us);
    return true;
}

/* A job's end as format 2 writes it: the fixed part, then note and why it was lost. */
bool finished_v2(std::string_view b, JobId* id, JobResult* r, double* end) {
    FinishedRec f;
    std::string_view tail;
    if (!take(b, &f, &tail)) return false;
    TailReader t(tail);
    if (!t.next(&r->note) || !t.next(&r->lost)) return false;
    std::string how;   // since --timeout and --cancel; later strings: skipped
    if (!t.at_end() && t.next(&how) && how.size() == 1 && uint8_t(how[0]) <= uint8_t(EndHow::Cancelled))
        r->how = EndHow(uint8_t(how[0]));
    r->errorlevel = f.errorlevel;
    r->signal = f.signal;
    r->skipped = f.skipped;
    r->real = sec(f.real_us);
    r->user = sec(f.user_us);
    r->sys = sec(f.sys_us);
    *id = f.id;
    *end = sec(f.end_us);
    return true;
}

bool apply_finished(std::string_view b, Replay& r) {
    JobResult res;
    JobId id;
    double end;
    if (!(r.fmt == 1 ? finished_v1(b, &id, &res, &end) : finished_v2(b, &id, &res, &end))) return false;
    *r.about = id;
    if (!r.q->find(id)) return false;
    r.q->end(id, res, end);
    return true;
}

bool apply_retry(std::string_view b, Replay& r) {
    JobResult res;
    JobId id;
    double end;
    if (!finished_v2(b, &id, &res, &end)) return false;
    *r.about = id;
    return r.q->retry(id, res, end);
}

bool apply_removed(std::string_view b, Replay& r) {
    IdRec id;
    return take_id(b, r, &id) && r.q->remove(id.id, true);   // as it was done (--cancel takes the head)
}

bool apply_urgent(std::string_view b, Replay& r) {
    IdRec id;
    return take_id(b, r, &id) && r.q->urgent(id.id);
}

bool apply_swap(std::string_view b, Replay& r) {
    IdRec id;
    return take_id(b, r, &id) && r.q->swap(id.id, id.x);
}

bool apply_slots(std::string_view b, Replay& r) {
    IdRec id;
    if (!take(b, &id, nullptr, r.grow) || id.id < 1) return false;
    r.q->set_max_slots(id.id);
    return true;
}

bool apply_clear(std::string_view b, Replay& r) {
    r.q->clear_finished();
    return r.grow || b.empty();   // (format 1 counted a body as damage, after clearing)
}

bool apply_admitted(std::string_view b, Replay& r) {
    IdRec id;
    return take_id(b, r, &id) && r.q->admit(id.id);
}

bool apply_move_before(std::string_view b, Replay& r) {
    IdRec id;
    return take_id(b, r, &id) && r.q->move_before(id.id, id.x);
}

bool apply_unstarted(std::string_view b, Replay& r) {
    IdRec id;
    return take_id(b, r, &id) && r.q->unstart(id.id);
}

bool apply_drain(std::string_view b, Replay& r) {
    IdRec d;
    if (!take(b, &d, nullptr, r.grow) || (d.id != 0 && d.id != 1)) return false;
    r.q->set_drained(d.id == 1);
    return true;
}

bool apply_hold(std::string_view b, Replay& r) {
    IdRec h;
    if (!take_id(b, r, &h) || (h.x != 0 && h.x != 1)) return false;
    (void)r.q->hold(h.id, h.x == 1);   // as it was done: a no-op changes nothing
    return true;
}

bool apply_settings(std::string_view b, Replay& r) {
    QueueSettings qs;
    if (!decode_queue_settings(b, &qs)) return false;
    *r.settings = std::move(qs);
    return true;
}

/* One row per record type: adding a type is a number in RecType and a row
 * here. A record shorter than its least body, or of a type its file's format
 * does not have, is not applied (counted as a record that could not be). */
struct RecordRow {
    RecType type;
    const char* name;
    size_t min_body;
    uint32_t since;   // the first journal format that has it
    bool (*apply)(std::string_view body, Replay& r);
};

constexpr RecordRow kRecords[] = {
    {kMeta, "meta", sizeof(MetaRec), 1, apply_meta},
    {kJob, "job", 0, 1, apply_job},   // tagged fields (format 1: JobRec): the decoder checks
    {kStart, "start", sizeof(IdRec), 1, apply_start},
    {kRunner, "runner", sizeof(IdRec), 1, apply_runner},
    {kStarted, "started", sizeof(StartedRec), 1, apply_started},
    {kFinished, "finished", sizeof(FinishedRec), 1, apply_finished},   // format 1's is longer
    {kRemoved, "removed", sizeof(IdRec), 1, apply_removed},
    {kUrgent, "urgent", sizeof(IdRec), 1, apply_urgent},
    {kSwap, "swap", sizeof(IdRec), 1, apply_swap},
    {kSlots, "slots", sizeof(IdRec), 1, apply_slots},
    {kClear, "clear", 0, 1, apply_clear},
    {kAdmitted, "admitted", sizeof(IdRec), 1, apply_admitted},
    {kEnv, "env", sizeof(uint32_t), 1, apply_env},
    {kMoveBefore, "move-before", sizeof(IdRec), 1, apply_move_before},
    {kUnstarted, "unstarted", sizeof(IdRec), 2, apply_unstarted},
    {kSettings, "settings", 0, 2, apply_settings},
    {kDrain, "drain", sizeof(IdRec), 2, apply_drain},
    {kHold, "hold", sizeof(IdRec), 2, apply_hold},
    {kRetry, "retry", sizeof(FinishedRec), 2, apply_retry},
};

constexpr bool rows_in_order() {
    for (size_t i = 0; i < std::size(kRecords); ++i)
        if (kRecords[i].type != i + 1) return false;
    return true;
}
static_assert(std::size(kRecords) == kLastType && rows_in_order(),
              "every record type has one row, at its number's place");

/* The row of a record type; nullptr for one this ts does not know (a reader
 * never gets that far: record_at takes such a record for damage). */
const RecordRow* record_row(uint16_t type) {
    return type >= 1 && type <= kLastType ? &kRecords[type - 1] : nullptr;
}

}  // namespace

const char* journal_record_name(uint16_t type) {
    const RecordRow* row = record_row(type);
    return row ? row->name : nullptr;
}

bool Journal::apply(uint16_t type, std::string_view b, Queue* q, uint32_t fmt, JobId* about) {
    const RecordRow* row = record_row(type);
    if (!row || fmt < row->since || b.size() < row->min_body) return false;
    Replay r{q, fmt, fmt >= 2, &env_table_, &env_missing_, &settings_, about};
    return row->apply(b, r);
}

/* One record at the end of the file, in one write. A write that fails takes
 * back its partial bytes; if even that fails, no record is appended to this
 * file any more (a snapshot replaces it). */
bool Journal::write_record(const std::string& rec) {
    if (!at_path()) return false;
    int e = 0;
    const char* what = "write the journal";
    if (!write_all(fd_.get(), rec.data(), rec.size())) e = errno;
    else if (sync_ && fdatasync(fd_.get()) != 0) e = errno, what = "sync the journal";
    if (e) {
        if (ftruncate(fd_.get(), static_cast<off_t>(size_)) != 0 ||
            lseek(fd_.get(), static_cast<off_t>(size_), SEEK_SET) < 0)
            fd_.reset();
        fail(e, what);
        low_ = false;
        return false;
    }
    size_ += rec.size();
    if (can_reserve_ && size_ + kReserveLow > allocated_) reserve();
    return true;
}

/* Keep room allocated ahead of the end, so that the next records fit when
 * the disk fills up. When it cannot be renewed, the journal reports failure
 * (the server refuses changes) while records still fit in what is left. */
void Journal::reserve() {
    if (!can_reserve_ || !fd_) return;
    if (fallocate(fd_.get(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(size_), kReserve) == 0) {
        allocated_ = size_ + kReserve;
        if (low_) {
            err_ = 0;
            low_ = false;
            log_(format("journal %s: written again", path_.c_str()));
        }
        return;
    }
    int e = errno;
    if (e == EOPNOTSUPP || e == ENOSYS || e == EINVAL) {
        can_reserve_ = false;
        return;
    }
    if (err_ && !low_) return;   // failing already, for a worse reason
    fail(e, "keep room for the journal");
    low_ = true;
}

bool Journal::append(uint16_t type, const std::string& body, bool kept) {
    if (path_.empty()) return true;
    // Once a change is in memory only, records after it would replay out of
    // order: nothing more is appended until a snapshot has saved it.
    if (dirty_ || !fd_ || (err_ && !low_)) {
        if (kept) dirty_ = true;
        return false;
    }
    size_t off = size_;
    Layout out(Key{key_init_}, size_, live_meta());
    out.add(type, body);
    if (!write_record(out.bytes())) {
        if (kept) dirty_ = true;
        return false;
    }
    if (type != kSettings) keep_settings_apart(off);
    return true;
}

Queue::Meta Journal::live_meta() const { return live_ ? live_->meta() : Queue::Meta(); }

bool Journal::room() {
    if (path_.empty() || !fd_ || (err_ && !low_)) return ok();
    struct statvfs sv;
    if (fstatvfs(fd_.get(), &sv) == 0) {
        unsigned long long blocks = geteuid() == 0 ? sv.f_bfree : sv.f_bavail;
        if (blocks * sv.f_frsize < kReserve) {
            if (err_ == 0) {
                fail(ENOSPC, "keep room for the journal");
                low_ = true;
            }
            return false;
        }
    }
    if (low_ && can_reserve_) {
        reserve();   // room again: renew what is kept ahead (clears the failure)
    } else if (low_) {   // nothing is kept ahead here: room is all it takes
        err_ = 0;
        low_ = false;
        log_(format("journal %s: written again", path_.c_str()));
    }
    return ok();
}

bool Journal::recover(const Queue& q) {
    if (path_.empty() || (err_ == 0 && !dirty_ && fd_)) return true;
    if (dirty_ || !fd_) {   // a whole snapshot: not on every request
        if (file_state() == FileState::Replaced) return false;   // none is tried until it is moved away
        double now = mono_now();
        if (now - snapshot_tried_ < 0.2) return false;
        snapshot_tried_ = now;
        return write_snapshot(q);
    }
    if (low_) return room();
    int was = err_;
    err_ = 0;   // try the room ahead, then one harmless record
    low_ = false;
    reserve();
    if (err_ == 0 && append(kMeta, meta_body(q.meta()), false)) {
        log_(format("journal %s: written again", path_.c_str()));
        return true;
    }
    if (err_ == 0) err_ = was;
    return false;
}

/* A job added (or its full state), with the copies of its environment it
 * needs (Layout), in one write: they stand or fall together. */
bool Journal::job(const Job& j, bool kept) {
    if (path_.empty()) return true;
    if (dirty_ || !fd_ || (err_ && !low_)) {
        if (kept) dirty_ = true;
        return false;
    }
    EnvCopies env;   // its environment in this file, with the copies this write adds
    if (j.env) {
        auto it = env_ids_.find(j.env.get());
        env = it != env_ids_.end() ? it->second : EnvCopies{next_env_id_ + 1, j.env, {}};
    }
    size_t out_at = size_;
    Layout out(Key{key_init_}, size_, live_meta());
    out.add_job(j, j.env ? &env : nullptr);
    job_bytes_ = 0.9 * job_bytes_ + 0.1 * double(out.bytes().size());
    if (!write_record(out.bytes())) {
        if (kept) dirty_ = true;
        return false;
    }
    if (j.env) {
        next_env_id_ = std::max(next_env_id_, env.id);
        env_ids_[j.env.get()] = std::move(env);
    }
    keep_settings_apart(out_at);
    return true;
}
bool Journal::start(JobId id, bool kept, const std::vector<std::string>& gpus,
                    const std::vector<std::string>& env) {
    Fields f;
    if (!gpus.empty()) f.strings(kStartGpus, gpus);
    if (!env.empty()) f.strings(kStartEnv, env);
    return append(kStart, bytes_of(IdRec{id, 0}, f.str()), kept);
}
bool Journal::runner(JobId id, pid_t pid) { return append(kRunner, bytes_of(IdRec{id, pid})); }
bool Journal::started(JobId id, pid_t pid, const std::string& output, double start) {
    return append(kStarted, bytes_of(StartedRec{id, pid, us(start)}, output));
}
/* A run's end as kFinished and kRetry hold it: the fixed part, then note,
 * why it was lost, and how it was ended (a byte; older readers skip it). */
static std::string end_body(JobId id, const JobResult& r, double end) {
    FinishedRec f{};
    f.id = id;
    f.errorlevel = r.errorlevel;
    f.signal = r.signal;
    f.skipped = r.skipped;
    f.real_us = us(r.real);
    f.user_us = us(r.user);
    f.sys_us = us(r.sys);
    f.end_us = us(end);
    TailWriter t;
    t.add(r.note);
    t.add(r.lost);
    if (r.how != EndHow::Normal) t.add(std::string(1, char(r.how)));
    return bytes_of(f, t.str());
}
bool Journal::ended(JobId id, const JobResult& r, double end) { return append(kFinished, end_body(id, r, end)); }
bool Journal::retried(JobId id, const JobResult& r, double end) { return append(kRetry, end_body(id, r, end)); }
bool Journal::removed(JobId id) { return append(kRemoved, bytes_of(IdRec{id, 0})); }
bool Journal::urgent(JobId id) { return append(kUrgent, bytes_of(IdRec{id, 0})); }
bool Journal::swapped(JobId a, JobId b) { return append(kSwap, bytes_of(IdRec{a, b})); }
bool Journal::slots(int n) { return append(kSlots, bytes_of(IdRec{n, 0})); }
bool Journal::drained(bool on) { return append(kDrain, bytes_of(IdRec{on ? 1 : 0, 0})); }
bool Journal::held(JobId id, bool on) { return append(kHold, bytes_of(IdRec{id, on ? 1 : 0})); }
bool Journal::cleared() { return append(kClear, std::string()); }
bool Journal::admitted(JobId id) { return append(kAdmitted, bytes_of(IdRec{id, 0})); }
bool Journal::moved_before(JobId id, JobId before) { return append(kMoveBefore, bytes_of(IdRec{id, before})); }
bool Journal::unstarted(JobId id) { return append(kUnstarted, bytes_of(IdRec{id, 0})); }
bool Journal::set_settings(const QueueSettings& s) {
    settings_ = s;
    // A snapshot puts the new settings in every copy (appended, the old
    // copies would still stand, and one damaged block could bring them back).
    if (live_ && !dirty_ && err_ == 0 && write_snapshot(*live_)) return true;
    size_t off = size_;
    settings_at_.clear();
    if (!append(kSettings, encode_queue_settings(s))) return false;
    settings_at_.push_back({off, size_});   // (with the anchors it may have brought: more than the record)
    return true;
}

/* The queue's settings, once more, when the record just written at [off,
 * size_) does not touch every sector and region that all their copies share
 * (as an environment's, for the jobs that need it): every job needs them, so
 * no one zeroed unit may take them all. */
void Journal::keep_settings_apart(size_t off) {
    if (!settings_ || settings_at_.empty() || covered(settings_at_, off, size_)) return;
    Layout out(Key{key_init_}, size_, live_meta());
    size_t at = out.add(kSettings, encode_queue_settings(*settings_));
    if (write_record(out.bytes())) settings_at_.push_back({at, size_});
}

void Journal::set_sync(bool on) {
    if (on && !sync_ && fd_) {   // what the start wrote: its snapshot's rename too
        (void)fdatasync(fd_.get());
        Fd dir(open(dir_name(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (dir) (void)fsync(dir.get());
    }
    sync_ = on;
}

/* A new file for a snapshot, next to the journal: <journal>.tmp, made
 * exclusively (an old one of ours is removed first); if something of another
 * user is there, a fresh name beside it. Never a file someone planted. */
static Fd make_temp(const std::string& path, std::string* tmp) {
    *tmp = path + ".tmp";
    for (int attempt = 0; attempt < 2; ++attempt) {
        Fd fd(open(tmp->c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
        if (fd || errno != EEXIST) return fd;
        struct stat st;
        if (lstat(tmp->c_str(), &st) != 0 || st.st_uid != geteuid() || unlink(tmp->c_str()) != 0) break;
    }
    std::string templ = path + ".tmp.XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    Fd fd(mkostemp(buf.data(), O_CLOEXEC));
    *tmp = buf.data();
    return fd;
}

/* A snapshot's file, made in memory, and what the journal keeps of it once
 * it is the journal: its key, where its environments and settings are, and
 * the average record of a waiting job and of an ended one. */
struct JournalSnapshot {
    std::string bytes;
    Key key;
    std::unordered_map<const Env*, EnvCopies> envs;
    uint32_t next_env = 0;
    std::vector<std::pair<size_t, size_t>> settings_at;
    size_t waiting = 0, waiting_bytes = 0, done = 0, done_bytes = 0;
};

namespace {

/* The live state as a file of its own: header (a new salt: each file its
 * own), meta record, settings, waiting jobs with their environments, ended
 * jobs without theirs, and the settings once more. */
JournalSnapshot snapshot_of(const Queue& q, const std::optional<QueueSettings>& settings) {
    JournalSnapshot s;
    uint64_t salt = new_salt();
    s.key = key_of(salt);
    Layout records(s.key, kHeader, q.meta());
    records.add(kMeta, meta_body(q.meta()));   // at offset 32 (and in the anchors)
    auto add_job = [&](const Job& j, bool with_env) {
        if (with_env && j.env) {
            auto it = s.envs.try_emplace(j.env.get(), EnvCopies{s.next_env + 1, j.env, {}}).first;
            s.next_env = std::max(s.next_env, it->second.id);
            records.add_job(j, &it->second);
        } else if (j.env) {   // an ended job never runs again: its environment is not kept
            Job copy = j;
            copy.env.reset();
            records.add_job(copy, nullptr);
        } else {
            records.add_job(j, nullptr);
        }
    };
    // The queue's settings: after the meta record, and again at the end (another region, unless the file is small).
    auto add_settings = [&] {
        size_t at = records.add(kSettings, encode_queue_settings(*settings));
        s.settings_at.push_back({at, records.end()});
    };
    if (settings) add_settings();
    // Drained: after the meta record, and again at the end (as the settings).
    if (q.drained()) records.add(kDrain, bytes_of(IdRec{1, 0}));
    size_t start = records.end();
    for (JobId id : q.active()) add_job(*q.find(id), true), ++s.waiting;
    for (JobId id : q.overflow()) add_job(*q.find(id), true), ++s.waiting;
    size_t before = records.end();
    for (JobId id : q.finished_list()) add_job(*q.find(id), false), ++s.done;
    if (settings && s.done + s.waiting > 0) add_settings();
    if (q.drained() && s.done + s.waiting > 0) records.add(kDrain, bytes_of(IdRec{1, 0}));
    s.bytes = journal_header(kJournalFormat, salt) + records.bytes();
    s.waiting_bytes = before - start;
    s.done_bytes = s.bytes.size() - before;
    return s;
}

}  // namespace

/* The live state as a new file, renamed over the journal once it is whole
 * and on disk. On failure nothing changes: the old file stays in use. */
bool Journal::write_snapshot(const Queue& q) {
    if (path_.empty()) return true;   // no journal (TS_JOURNAL=0, or refused)
    if (file_state() == FileState::Replaced) {   // not ours any more: never renamed over
        errno = EEXIST;
        if (err_ == 0 && !dirty_)
            log_(format("journal %s: another file took its place: it is left alone, and this server "
                        "writes no snapshot there", path_.c_str()));
        return false;
    }
    JournalSnapshot snap = snapshot_of(q, settings_);
    Fd fd;
    if (!install_snapshot(snap.bytes, &fd)) return false;
    use_snapshot(std::move(snap), std::move(fd));
    return true;
}

/* Write bytes to a new file and rename it over the journal; *fd is that
 * file. A damaged journal is kept aside first. On failure errno says why,
 * and the old file is left as it was. */
bool Journal::install_snapshot(const std::string& out, Fd* fd_out) {
    std::string tmp;
    Fd fd = make_temp(path_, &tmp);
    bool ok = bool(fd) && write_all(fd.get(), out.data(), out.size()) && fsync(fd.get()) == 0;
    // A damaged file is never replaced before a copy of it is kept (a
    // second link, made only now, so that a failure leaves it with one).
    std::string aside;
    if (ok && !unkept_.empty()) ok = keep_aside(unkept_, &aside);
    ok = ok && rename(tmp.c_str(), path_.c_str()) == 0;
    if (!ok) {
        int e = errno;
        if (fd) unlink(tmp.c_str());
        if (!aside.empty()) unlink(aside.c_str());
        if (err_ == 0 && !dirty_)
            log_(format("journal %s: cannot write a snapshot: %s; the journal stays as it was",
                        path_.c_str(), strerror(e)));
        if (err_ != 0) err_ = e;   // while failing, why() says what stops it now (a removed file: a full disk)
        errno = e;
        return false;
    }
    if (sync_) {   // the rename itself, too
        Fd dir(open(dir_name(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        if (dir) (void)fsync(dir.get());
    }
    *fd_out = std::move(fd);
    return true;
}

/* The snapshot just renamed into place is the journal from now on: records
 * are appended to it, and any failure before is over. */
void Journal::use_snapshot(JournalSnapshot&& s, Fd fd) {
    bool was_failing = err_ != 0 || dirty_;
    unkept_.clear();
    key_init_ = s.key.init;
    fd_ = std::move(fd);
    note_file(fd_.get());
    size_ = s.bytes.size();
    allocated_ = 0;
    env_ids_ = std::move(s.envs);
    next_env_id_ = s.next_env;
    settings_at_ = std::move(s.settings_at);
    if (s.waiting) job_bytes_ = double(s.waiting_bytes) / double(s.waiting);
    if (s.done) done_bytes_ = double(s.done_bytes) / double(s.done);
    err_ = 0;
    low_ = false;
    dirty_ = false;
    reserve();
    if (was_failing && err_ == 0) log_(format("journal %s: written again", path_.c_str()));
}

/* The live state is estimated (jobs times their average record size), so
 * that deciding costs nothing; a snapshot is written when the file is three
 * times larger than that. After -C the estimate drops and the file follows. */
void Journal::maybe_compact(const Queue& q, double now) {
    if (!fd_ || err_ || dirty_ || now < compact_after_) return;
    double ended = double(q.finished_list().size());
    double live = 64 + (double(q.size()) - ended) * job_bytes_ + ended * done_bytes_;
    if (size_ <= kMinCompact || double(size_) <= 3 * live) return;
    if (write_snapshot(q)) {
        compact_delay_ = 1;
        return;
    }
    compact_after_ = now + compact_delay_;   // not on every turn of the loop
    compact_delay_ = std::min(compact_delay_ * 2, 300.0);
}

void Journal::remove_file() {
    bool ours = file_state() == FileState::Same;
    fd_.reset();
    if (!path_.empty() && ours) unlink(path_.c_str());
}

bool Journal::at_path() {
    FileState state = file_state();
    if (state == FileState::Same) return true;
    // Gone, and failing already: why() says what stops it now (a snapshot
    // that found the disk full), not only that the file is gone.
    if (state == FileState::Gone && err_ != 0 && dirty_) return false;
    dirty_ = true;   // the file at the path lacks the queue: only a snapshot saves it
    fail(state == FileState::Gone ? ENOENT : EEXIST,
         state == FileState::Gone ? "find its file (it was removed)" : "write to it (another file took its place)");
    low_ = false;
    return false;
}

/* The file the journal is: kept when it is read or written, so that each
 * look at the path is one lstat, and holds when the descriptor is closed. */
void Journal::note_file(int fd) {
    struct stat st;
    if (fstat(fd, &st) == 0) {
        file_dev_ = st.st_dev;
        file_ino_ = st.st_ino;
    }
}

Journal::FileState Journal::file_state() const {
    struct stat there;
    if (path_.empty() || file_ino_ == 0) return FileState::Same;   // none read or written yet
    if (lstat(path_.c_str(), &there) != 0)
        return errno == ENOENT || errno == ENOTDIR ? FileState::Gone : FileState::Same;
    return there.st_dev == file_dev_ && there.st_ino == file_ino_ ? FileState::Same : FileState::Replaced;
}
