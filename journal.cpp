/*
 * journal.cpp — see journal.h.
 */
#include "journal.h"

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "frame.h"

namespace {

constexpr char kMagic[4] = {'T', 'S', 'J', '\0'};
constexpr uint32_t kFormat = 1;
constexpr uint32_t kMaxRecord = 64u << 20;
constexpr size_t kMinCompact = 16 * 1024;

enum RecType : uint16_t {
    kMeta = 1, kJob = 2, kStart = 3, kRunner = 4, kStarted = 5, kFinished = 6,
    kRemoved = 7, kUrgent = 8, kSwap = 9, kSlots = 10, kClear = 11, kReleased = 12,
    kEnv = 13,   // uint32 id, then the strings: an environment shared by later job records
    kMoveBefore = 14,   // IdRec {id, before}: another user's -u
};

struct RecHeader {
    uint32_t len;    // body bytes
    uint32_t crc;    // of type, pad and body
    uint16_t type;
    uint16_t pad;
};
static_assert(sizeof(RecHeader) == 12);

struct MetaRec {
    int32_t next_id, last_errorlevel, last_finished_id, max_slots;
};
static_assert(sizeof(MetaRec) == 16);

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

struct FinishedRec {
    int32_t id;
    uint32_t pad;
    proto::FinishedBody result;   // as the runner reported it
};
static_assert(sizeof(FinishedRec) == 56);

int64_t us(double s) { return static_cast<int64_t>(s * 1e6); }
double sec(int64_t u) { return double(u) / 1e6; }

template <class T>
std::string bytes_of(const T& v, std::string_view tail = {}) {
    static_assert(std::is_trivially_copyable_v<T>);
    std::string s(reinterpret_cast<const char*>(&v), sizeof v);
    s.append(tail);
    return s;
}

/* Copy a fixed record out of body; with tail, what follows goes there. */
template <class T>
bool take(std::string_view body, T* v, std::string_view* tail = nullptr) {
    if (body.size() < sizeof(T) || (!tail && body.size() != sizeof(T))) return false;
    std::memcpy(v, body.data(), sizeof(T));
    if (tail) *tail = body.substr(sizeof(T));
    return true;
}

}  // namespace

uint32_t crc32(std::string_view data) {
    static uint32_t table[256];
    static bool ready = false;
    if (!ready) {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        ready = true;
    }
    uint32_t c = 0xFFFFFFFFu;
    for (unsigned char b : data) c = table[(c ^ b) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

std::string encode_job(const Job& j, uint32_t env_id) {
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
    if (j.env && !env_id) {   // the environment inline, unless a kEnv record holds it
        JobSpec spec = j.spec;
        spec.env = *j.env;
        t.add(encode_submit(spec));
    } else {
        t.add(encode_submit(j.spec));
    }
    t.add(j.result.note);
    return bytes_of(r, t.str());
}

bool decode_job(std::string_view bytes, Job* j, const EnvTable* envs) {
    JobRec r;
    std::string_view tail;
    if (!take(bytes, &r, &tail) || r.state > static_cast<uint8_t>(JobState::Held)) return false;
    TailReader t(tail);
    std::string submit;
    if (!t.next(&j->output) || !t.next(&submit) || !t.next(&j->result.note) || !t.at_end())
        return false;
    Frame f;
    size_t used = 0;
    if (parse_frame(submit, &f, &used) != ParseStatus::Ok || used != submit.size() ||
        f.type != proto::MsgType::Submit || !decode_submit(f, &j->spec))
        return false;
    if (r.env_id) {
        auto it = envs ? envs->find(r.env_id) : EnvTable::const_iterator();
        if (!envs || it == envs->end()) return false;
        j->env = it->second;
    }
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

Journal::Journal(std::string path, Queue* q, Log log) : path_(std::move(path)), log_(std::move(log)) {
    if (!path_.empty()) replay(q);   // an empty path: no journal (TS_JOURNAL=0)
}

/* Read the whole file, apply every intact record, cut off a torn tail. */
void Journal::replay(Queue* q) {
    std::string data, why;
    Fd in = open_private(path_, O_RDONLY, &why);
    if (!in && errno != ENOENT) {
        // There, but not a file of ours, or unreadable: never read it, never write over it.
        refused_ = why;
        log_(format("journal %s: not used: %s", path_.c_str(), why.c_str()));
        path_.clear();
        return;
    }
    bool exists = bool(in);
    if (in) {
        (void)read_all(in.get(), &data);
        in.reset();
    }
    if (exists && !data.empty()) {
        uint32_t version = 0;
        if (data.size() >= 8) std::memcpy(&version, data.data() + 4, 4);
        if (data.size() < 8 || std::memcmp(data.data(), kMagic, 4) != 0) {
            set_aside("it is not a ts journal");
            data.clear();
        } else if (version != kFormat) {
            set_aside(format("it has format %u; this ts reads format %u", version, kFormat));
            data.clear();
        }
    }
    size_t good = 8, off = 8, records = 0, bad = 0;
    while (data.size() >= 8 && off < data.size()) {
        RecHeader h;
        if (data.size() - off < sizeof h) break;
        std::memcpy(&h, data.data() + off, sizeof h);
        if (h.len > kMaxRecord || data.size() - off - sizeof h < h.len) break;
        std::string_view rest(data.data() + off + 8, 4 + h.len);
        if (crc32(rest) != h.crc) break;
        std::string_view body(data.data() + off + sizeof h, h.len);
        if (apply(h.type, body, q)) ++records;
        else ++bad;
        off += sizeof h + h.len;
        good = off;
    }
    if (bad) log_(format("journal %s: %zu records could not be applied", path_.c_str(), bad));
    if (data.size() > 8 && good < data.size())
        log_(format("journal %s: dropped %zu bytes after offset %zu (a torn or damaged end)",
                    path_.c_str(), data.size() - good, good));
    replayed_ = records > 0;
    q->relink_dependencies();
    // Start from a clean snapshot of what came back (this also cuts a torn tail);
    // if that fails, maybe_compact tries again.
    if (!write_snapshot(*q)) {
        unlink(path_.c_str());
        broken_ = true;
    }
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

bool Journal::apply(uint16_t type, std::string_view b, Queue* q) {
    IdRec id;
    switch (type) {
    case kMeta: {
        MetaRec m;
        if (!take(b, &m)) return false;
        q->set_meta({m.next_id, m.last_errorlevel, m.last_finished_id, m.max_slots});
        return true;
    }
    case kJob: {
        Job j;
        if (!decode_job(b, &j, &env_table_)) return false;
        q->restore(std::move(j));
        return true;
    }
    case kEnv: {
        uint32_t id;
        std::string_view rest;
        if (!take(b, &id, &rest) || id == 0) return false;
        TailReader t(rest);
        Env env;
        std::string v;
        while (!t.at_end()) {
            if (!t.next(&v)) return false;
            env.push_back(v);
        }
        env_table_[id] = q->intern(std::move(env));
        return true;
    }
    case kStart: return take(b, &id) && q->start(id.id);
    case kRunner:
        if (!take(b, &id)) return false;
        q->set_runner(id.id, id.x);
        return true;
    case kStarted: {
        StartedRec s;
        std::string_view path;
        if (!take(b, &s, &path)) return false;
        q->started(s.id, s.pid, std::string(path), sec(s.start_us));
        return true;
    }
    case kFinished: {
        FinishedRec f;
        std::string_view note;
        if (!take(b, &f, &note)) return false;
        JobResult r = result_of(f.result);
        r.note = std::string(note);
        q->finished(f.id, r, sec(f.result.end_us));
        return true;
    }
    case kRemoved: return take(b, &id) && q->remove(id.id);
    case kUrgent: return take(b, &id) && q->urgent(id.id);
    case kSwap: return take(b, &id) && q->swap(id.id, id.x);
    case kSlots:
        if (!take(b, &id) || id.id < 1) return false;
        q->set_max_slots(id.id);
        return true;
    case kClear:
        q->clear_finished();
        return b.empty();
    case kReleased: return take(b, &id) && q->release(id.id);
    case kMoveBefore: return take(b, &id) && q->move_before(id.id, id.x);
    default: return false;
    }
}

void Journal::append(uint16_t type, const std::string& body) {
    if (!fd_) return;
    RecHeader h{};
    h.len = static_cast<uint32_t>(body.size());
    h.type = type;
    std::string rec(reinterpret_cast<const char*>(&h), sizeof h);
    rec += body;
    h.crc = crc32(std::string_view(rec).substr(8));
    std::memcpy(&rec[0], &h, sizeof h);
    if (!write_all(fd_.get(), rec.data(), rec.size())) {
        // A journal that missed a change must never be replayed: remove it, and
        // write a whole snapshot as soon as that works again (maybe_compact).
        log_(format("journal %s: write: %s; it is written anew when it can be", path_.c_str(),
                    strerror(errno)));
        fd_.reset();
        unlink(path_.c_str());
        broken_ = true;
        return;
    }
    size_ += rec.size();
}

/* The id of a kEnv record holding this environment, written if needed. */
uint32_t Journal::env_id(const EnvPtr& env) {
    if (!env) return 0;
    auto it = env_ids_.find(env.get());
    if (it != env_ids_.end()) return it->second.first;
    uint32_t id = ++next_env_id_;
    TailWriter t;
    for (const auto& v : *env) t.add(v);
    append(kEnv, bytes_of(id, t.str()));
    env_ids_[env.get()] = {id, env};   // keeps it alive: the pointer stays unique
    return id;
}

void Journal::job(const Job& j) {
    std::string rec = encode_job(j, env_id(j.env));
    job_bytes_ = 0.9 * job_bytes_ + 0.1 * double(rec.size());
    append(kJob, rec);
}
void Journal::start(JobId id) { append(kStart, bytes_of(IdRec{id, 0})); }
void Journal::runner(JobId id, pid_t pid) { append(kRunner, bytes_of(IdRec{id, pid})); }
void Journal::started(JobId id, pid_t pid, const std::string& output, double start) {
    append(kStarted, bytes_of(StartedRec{id, pid, us(start)}, output));
}
void Journal::finished(JobId id, const JobResult& r, double end) {
    FinishedRec f{};
    f.id = id;
    f.result = finished_body(r, end);
    append(kFinished, bytes_of(f, r.note));
}
void Journal::removed(JobId id) { append(kRemoved, bytes_of(IdRec{id, 0})); }
void Journal::urgent(JobId id) { append(kUrgent, bytes_of(IdRec{id, 0})); }
void Journal::swapped(JobId a, JobId b) { append(kSwap, bytes_of(IdRec{a, b})); }
void Journal::slots(int n) { append(kSlots, bytes_of(IdRec{n, 0})); }
void Journal::cleared() { append(kClear, std::string()); }
void Journal::released(JobId id) { append(kReleased, bytes_of(IdRec{id, 0})); }
void Journal::moved_before(JobId id, JobId before) { append(kMoveBefore, bytes_of(IdRec{id, before})); }

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

/* The live state as a fresh journal, renamed over the old one. */
bool Journal::write_snapshot(const Queue& q) {
    if (path_.empty()) return true;   // no journal (TS_JOURNAL=0, or refused)
    std::string tmp;
    Fd fd = make_temp(path_, &tmp);
    if (!fd) {
        log_(format("journal %s: %s", tmp.c_str(), strerror(errno)));
        return false;
    }
    Fd old = std::move(fd_);
    fd_ = std::move(fd);
    size_ = 0;
    env_ids_.clear();   // a snapshot writes the environments it needs again
    next_env_id_ = 0;
    std::string head(kMagic, 4);
    head.append(reinterpret_cast<const char*>(&kFormat), 4);
    bool ok = write_all(fd_.get(), head.data(), head.size());
    size_ = head.size();
    Queue::Meta m = q.meta();
    append(kMeta, bytes_of(MetaRec{m.next_id, m.last_errorlevel, m.last_finished_id, m.max_slots}));
    size_t waiting = 0, start = size_;
    for (JobId id : q.active()) {
        const Job& j = *q.find(id);
        append(kJob, encode_job(j, env_id(j.env)));
        ++waiting;
    }
    for (JobId id : q.held()) {
        const Job& j = *q.find(id);
        append(kJob, encode_job(j, env_id(j.env)));
        ++waiting;
    }
    if (waiting) job_bytes_ = double(size_ - start) / double(waiting);
    size_t done = 0, before = size_;
    for (JobId id : q.finished_list()) {
        append(kJob, encode_job(*q.find(id)));
        ++done;
    }
    if (done) done_bytes_ = double(size_ - before) / double(done);
    ok = ok && fd_ && fsync(fd_.get()) == 0 && rename(tmp.c_str(), path_.c_str()) == 0;
    if (!ok) {
        log_(format("journal %s: cannot write a snapshot: %s", path_.c_str(), strerror(errno)));
        unlink(tmp.c_str());
        fd_ = std::move(old);
        size_ = fd_ ? static_cast<size_t>(lseek(fd_.get(), 0, SEEK_END)) : 0;
        return false;
    }
    return true;
}

/* The live state is estimated (jobs times their average record size), so
 * that deciding costs nothing; a snapshot is written when the file is three
 * times larger than that. After -C the estimate drops and the file follows. */
void Journal::maybe_compact(const Queue& q) {
    if (broken_) {
        if (write_snapshot(q)) {
            broken_ = false;
            log_(format("journal %s: written again", path_.c_str()));
        }
        return;
    }
    double ended = double(q.finished_list().size());
    double live = 64 + (double(q.size()) - ended) * job_bytes_ + ended * done_bytes_;
    if (fd_ && size_ > kMinCompact && double(size_) > 3 * live) write_snapshot(q);
}

void Journal::remove_file() {
    fd_.reset();
    if (!path_.empty()) unlink(path_.c_str());
}
