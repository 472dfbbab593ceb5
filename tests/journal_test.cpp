/*
 * journal_test.cpp — the queue on disk (journal.h): job records, CRC-32,
 * replay through the Queue operations, the startup snapshot, a torn or
 * damaged file, a file that is not a journal, compaction and -K.
 *
 * Each test works in a fresh directory under /tmp, removed at the end. The
 * server is simulated the way server.cpp drives the pair: a Queue operation,
 * then the matching Journal record.
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <map>
#include <set>
#include <fcntl.h>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "frame.h"
#include "jobs.h"
#include "listing.h"
#include "journal.h"
#include "util.h"

namespace {

using V = std::vector<JobId>;

V ids(const std::list<JobId>& l) { return V(l.begin(), l.end()); }

/* A fresh directory under /tmp, removed (with what is in it) at the end. */
class TempDir {
public:
    TempDir() {
        char t[] = "/tmp/ts-journal-test.XXXXXX";
        if (mkdtemp(t)) path_ = t;
    }
    ~TempDir() {
        for (const std::string& n : names()) unlink((path_ + "/" + n).c_str());
        if (!path_.empty()) rmdir(path_.c_str());
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;

    const std::string& path() const { return path_; }
    std::string file(const std::string& name) const { return path_ + "/" + name; }
    std::vector<std::string> names() const {
        std::vector<std::string> out;
        DIR* d = opendir(path_.c_str());
        if (!d) return out;
        while (struct dirent* e = readdir(d)) {
            std::string n = e->d_name;
            if (n != "." && n != "..") out.push_back(n);
        }
        closedir(d);
        std::sort(out.begin(), out.end());
        return out;
    }

private:
    std::string path_;
};

bool exists(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0;
}

off_t file_size(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

ino_t inode(const std::string& path) {
    struct stat st;
    return stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

std::string slurp(const std::string& path) {
    std::string s;
    EXPECT_TRUE(read_file(path, &s)) << path;
    return s;
}

void spit(const std::string& path, const std::string& bytes) {
    Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(fd) << path << ": " << strerror(errno);
    ASSERT_TRUE(write_all(fd.get(), bytes.data(), bytes.size()));
}

int open_fds() {
    int n = 0;
    DIR* d = opendir("/proc/self/fd");
    if (!d) return -1;
    while (struct dirent* e = readdir(d))
        if (e->d_name[0] != '.') ++n;
    closedir(d);
    return n;
}

JobSpec cmd(std::vector<std::string> argv) {
    JobSpec s;
    s.argv = std::move(argv);
    s.cwd = "/home/u/work";
    s.env = {"HOME=/home/u", "PATH=/usr/bin:/bin", "TMPDIR=/tmp"};
    return s;
}

/* A spec with every field set to something other than its default. */
JobSpec full_spec() {
    JobSpec s = cmd({"sh", "-c", "echo 'a b' > out; exit 3", ""});
    s.env.push_back("EMPTY=");
    s.label = "my label";
    s.env_info = "X=1\nY=two words\n";
    s.flags = proto::kStoreOutput | proto::kKeepFinished | proto::kGzip | proto::kStderrApart |
              proto::kMail;
    s.num_slots = 3;
    s.depends = true;
    s.depend_on = 7;
    s.umask = 027;
    s.nice = 5;
    auto l = std::make_shared<Limits>();
    l->valid = (1u << 0) | (1u << 5) | (1u << 15);
    l->v[0] = {60, 120};
    l->v[5] = {1024, 4096};
    l->v[15] = {~0ull, ~0ull};
    s.limits = l;
    s.uid = 1234;
    return s;
}

JobResult result(int errorlevel, int signal = 0, bool skipped = false, double real = 0,
                 double user = 0, double sys = 0) {
    JobResult r;
    r.errorlevel = errorlevel;
    r.signal = signal;
    r.skipped = skipped;
    r.real = real;
    r.user = user;
    r.sys = sys;
    return r;
}

void expect_same_spec(const JobSpec& a, const JobSpec& b, const std::string& what) {
    SCOPED_TRACE(what);
    EXPECT_EQ(a.argv, b.argv);
    EXPECT_EQ(a.env, b.env);
    EXPECT_EQ(a.cwd, b.cwd);
    EXPECT_EQ(a.label, b.label);
    EXPECT_EQ(a.env_info, b.env_info);
    EXPECT_EQ(a.flags, b.flags);
    EXPECT_EQ(a.num_slots, b.num_slots);
    EXPECT_EQ(a.depends, b.depends);
    EXPECT_EQ(a.depend_on, b.depend_on);
    EXPECT_EQ(a.umask, b.umask);
    EXPECT_EQ(a.nice, b.nice);
    ASSERT_EQ(bool(a.limits), bool(b.limits));
    if (a.limits) {
        EXPECT_EQ(a.limits->valid, b.limits->valid);
        for (int i = 0; i < proto::kNumLimits; ++i) {
            EXPECT_EQ(a.limits->v[i].cur, b.limits->v[i].cur) << "limit " << i;
            EXPECT_EQ(a.limits->v[i].max, b.limits->v[i].max) << "limit " << i;
        }
    }
    EXPECT_EQ(a.uid, b.uid);
    EXPECT_TRUE(a.settings == b.settings);
}

/* Every saved field (awaiting_client is deliberately not saved). */
void expect_same_job(const Job& a, const Job& b) {
    std::string what = "job " + std::to_string(a.id);
    SCOPED_TRACE(what);
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.state, b.state);
    expect_same_spec(a.spec, b.spec, what);
    EXPECT_EQ(a.depends, b.depends);
    EXPECT_EQ(a.depend_on, b.depend_on);
    EXPECT_EQ(a.dep_result, b.dep_result);
    EXPECT_EQ(a.output, b.output);
    EXPECT_EQ(a.pid, b.pid);
    EXPECT_EQ(a.runner_pid, b.runner_pid);
    EXPECT_NEAR(a.enqueue_time, b.enqueue_time, 1e-6);
    EXPECT_NEAR(a.start_time, b.start_time, 1e-6);
    EXPECT_NEAR(a.end_time, b.end_time, 1e-6);
    EXPECT_EQ(a.result.errorlevel, b.result.errorlevel);
    EXPECT_EQ(a.result.signal, b.result.signal);
    EXPECT_EQ(a.result.skipped, b.result.skipped);
    EXPECT_NEAR(a.result.real, b.result.real, 1e-6);
    EXPECT_NEAR(a.result.user, b.result.user, 1e-6);
    EXPECT_NEAR(a.result.sys, b.result.sys, 1e-6);
}

void expect_same_queue(const Queue& a, const Queue& b) {
    EXPECT_EQ(list_text(a), list_text(b));
    Queue::Meta ma = a.meta(), mb = b.meta();
    EXPECT_EQ(ma.next_id, mb.next_id);
    EXPECT_EQ(ma.last_errorlevel, mb.last_errorlevel);
    EXPECT_EQ(ma.last_finished_id, mb.last_finished_id);
    EXPECT_EQ(ma.max_slots, mb.max_slots);
    EXPECT_EQ(a.busy_slots(), b.busy_slots());
    EXPECT_EQ(a.size(), b.size());
    EXPECT_EQ(ids(a.active()), ids(b.active()));
    EXPECT_EQ(ids(a.finished_list()), ids(b.finished_list()));
    EXPECT_EQ(a.overflow(), b.overflow());
    std::vector<JobId> all = ids(a.active());
    for (JobId id : a.finished_list()) all.push_back(id);
    for (JobId id : a.overflow()) all.push_back(id);
    for (JobId id : all) {
        const Job* ja = a.find(id);
        const Job* jb = b.find(id);
        ASSERT_NE(jb, nullptr) << "job " << id << " missing after replay";
        expect_same_job(*ja, *jb);
    }
}

/* A Queue and its Journal, driven the way server.cpp drives them. */
struct Live {
    Queue q;
    std::optional<Journal> j;

    Live(const std::string& path, Journal::Log log) { j.emplace(path, &q, std::move(log)); }

    JobId add(JobSpec s, double t) {
        JobId id = q.add(std::move(s), t);
        j->job(*q.find(id));
        return id;
    }
    /* Server::schedule: overflow jobs let in, skips recorded, starts recorded. */
    Decisions schedule(double t) {
        for (JobId id : q.admit_overflow()) j->admitted(id);
        Decisions d = q.schedule();
        for (JobId id : d.skipped) {
            const Job* sj = q.find(id);
            JobResult skip = sj ? sj->result : result(-1, 0, true);
            j->ended(id, skip, sj ? sj->end_time : t);
        }
        for (JobId id : d.start) j->start(id);
        return d;
    }
    void spawned(JobId id, pid_t runner) {
        q.set_runner(id, runner);
        j->runner(id, runner);
    }
    void started(JobId id, pid_t pid, const std::string& out, double t) {
        q.started(id, pid, out, t);
        j->started(id, pid, out, t);
    }
    void finish(JobId id, const JobResult& r, double t) {
        q.end(id, r, t);
        j->ended(id, r, t);
    }
    bool remove(JobId id) {
        if (!q.remove(id)) return false;
        j->removed(id);
        return true;
    }
    bool urgent(JobId id) {
        if (!q.urgent(id)) return false;
        j->urgent(id);
        return true;
    }
    bool swap(JobId a, JobId b) {
        if (!q.swap(a, b)) return false;
        j->swapped(a, b);
        return true;
    }
    void slots(int n) {
        q.set_max_slots(n);
        j->slots(n);
    }
    void clear() {
        q.clear_finished();
        j->cleared();
    }
};

class JournalTest : public ::testing::Test {
protected:
    void SetUp() override { ASSERT_FALSE(dir_.path().empty()) << "mkdtemp: " << strerror(errno); }

    Journal::Log logger() {
        return [this](const std::string& m) { logs_.push_back(m); };
    }
    std::unique_ptr<Live> open_live() { return std::make_unique<Live>(path_, logger()); }
    std::unique_ptr<Live> open_at(const std::string& path) {
        return std::make_unique<Live>(path, logger());
    }
    bool logged(const std::string& part) const {
        for (const auto& m : logs_)
            if (m.find(part) != std::string::npos) return true;
        return false;
    }
    std::string all_logs() const {
        std::string s;
        for (const auto& m : logs_) s += "  " + m + "\n";
        return s;
    }
    /* Files in the directory whose name starts with prefix. */
    std::vector<std::string> named(const std::string& prefix) const {
        std::vector<std::string> out;
        for (const auto& n : dir_.names())
            if (n.compare(0, prefix.size(), prefix) == 0) out.push_back(n);
        return out;
    }

    TempDir dir_;
    std::string path_ = dir_.file("s.journal");
    std::vector<std::string> logs_;
};

/* One server round: let overflow jobs in, schedule, and for every job that
 * started, its runner (none for -f) and its Started report. Then the jobs
 * with an outcome end with it; the others keep running. */
std::vector<JobId> server_round(Live& a, double t, const std::map<JobId, JobResult>& outcome,
                         const std::set<JobId>& keep_running) {
    Decisions d = a.schedule(t);
    for (JobId id : d.start) {
        const Job* j = a.q.find(id);
        if (!j->spec.foreground()) a.spawned(id, 10000 + id);
        a.started(id, 20000 + id, j->spec.stores_output() ? "/tmp/ts-out." + std::to_string(id) : "",
                  t + 0.25);
    }
    for (JobId id : d.start) {
        if (keep_running.count(id)) continue;
        auto it = outcome.find(id);
        a.finish(id, it == outcome.end() ? result(0, 0, false, 0.5, 0.25, 0.125) : it->second,
                 t + 0.5);
    }
    std::vector<JobId> changed = d.start;
    changed.insert(changed.end(), d.skipped.begin(), d.skipped.end());
    return changed;
}

/* Rounds until nothing starts or is skipped any more; returns the next time. */
double settle(Live& a, double t, const std::map<JobId, JobResult>& outcome = {},
              const std::set<JobId>& keep_running = {}) {
    for (int i = 0; i < 50 && !server_round(a, t, outcome, keep_running).empty(); ++i) t += 1;
    return t + 1;
}

// A queue with a bit of everything, built through the journal. Times are
// exact in binary, so that they survive as microseconds.
struct Scenario {
    JobId head, failed, skipped, nf, removed, urgent, swap_a, swap_b, dash_d, big, killed;
    JobId failed2, skipped2, skipped3, ok, running2, waits_on_running, big2, big3, admitted, overflowed;
};

Scenario build_everything(Live& a) {
    Scenario s{};
    double t = 1700000000.5;
    a.slots(2);
    JobSpec first = full_spec();
    first.depends = false;
    first.depend_on = -1;
    first.num_slots = 1;
    first.settings.set_u64(0x7001, 1ull << 33);
    first.settings.set_bytes(0x8001, "a hint");
    s.head = a.add(first, t);                                     // 0: keeps running
    s.failed = a.add(cmd({"false"}), t + 1);                      // 1: exits 1
    JobSpec d1 = cmd({"echo", "never"});
    d1.depends = true;
    d1.depend_on = s.failed;                                      // -D 1: skipped
    s.skipped = a.add(d1, t + 2);                                 // 2
    JobSpec nf = cmd({"true"});
    nf.flags = proto::kForeground;                                // -nf: not kept
    s.nf = a.add(nf, t + 3);                                      // 3
    s.removed = a.add(cmd({"rm", "me"}), t + 4);                  // 4
    s.urgent = a.add(cmd({"urgent"}), t + 5);                     // 5
    s.swap_a = a.add(cmd({"swap", "a"}), t + 6);                  // 6: killed by SIGTERM
    s.swap_b = a.add(cmd({"swap", "b"}), t + 7);                  // 7
    JobSpec dd = cmd({"after", "swap"});
    dd.depends = true;                                            // -d: on the newest, 7
    s.dash_d = a.add(dd, t + 8);                                  // 8
    JobSpec big = cmd({"needs", "three", "slots"});
    big.num_slots = 3;                                            // never fits in 2
    big.settings.set_u32(0x7002, 3);
    s.big = a.add(big, t + 9);                                    // 9
    s.killed = s.swap_a;
    EXPECT_TRUE(a.remove(s.removed));
    EXPECT_TRUE(a.urgent(s.urgent));
    EXPECT_TRUE(a.swap(s.swap_a, s.swap_b));
    EXPECT_EQ(ids(a.q.active()), (V{0, 5, 1, 2, 3, 7, 6, 8, 9}));
    std::map<JobId, JobResult> outcome = {
        {s.failed, result(1, 0, false, 0.5, 0.25, 0.125)},
        {s.swap_a, result(-1, 15, false, 3, 0.75, 0.5)},
    };
    t = settle(a, t + 10, outcome, {s.head});
    a.clear();   // -C

    // Another failure and its skipped dependents, kept in the finished list.
    s.failed2 = a.add(cmd({"exit", "2"}), t);                     // 10
    JobSpec d2 = cmd({"skipped", "too"});
    d2.depends = true;
    d2.depend_on = s.failed2;
    s.skipped2 = a.add(d2, t + 1);                                // 11: -D 10
    JobSpec d3 = cmd({"and", "me"});
    d3.depends = true;
    s.skipped3 = a.add(d3, t + 2);                                // 12: -d, on 11
    s.ok = a.add(cmd({"fine"}), t + 3);                           // 13
    s.running2 = a.add(cmd({"sleep", "1000"}), t + 4);            // 14: keeps running
    JobSpec d4 = cmd({"after", "the", "sleep"});
    d4.depends = true;
    d4.depend_on = s.running2;
    s.waits_on_running = a.add(d4, t + 5);                        // 15: -D 14, undecided
    t = settle(a, t + 6, {{s.failed2, result(2, 0, false, 1, 0.5, 0.25)}}, {s.running2});
    s.big2 = a.add(big, t);                                       // 16
    s.big3 = a.add(big, t + 1);                                   // 17
    EXPECT_TRUE(a.urgent(s.big3));                                // 0, 17, 9, 14, 15, 16
    EXPECT_TRUE(a.swap(s.big, s.big2));                           // 0, 17, 16, 14, 15, 9
    t += 2;

    // TS_MAXCONN: two overflow jobs, one let in.
    a.q.set_max_jobs(a.q.active().size() + 1);
    s.admitted = a.add(cmd({"held", "1"}), t);                    // 18
    s.overflowed = a.add(cmd({"held", "2"}), t + 1);                    // 19
    a.q.set_max_jobs(a.q.active().size() + 2);
    settle(a, t + 2);
    return s;
}

}  // namespace

// ------------------------------------------------------------------ records

TEST(JournalCrc, KnownVectors) {
    EXPECT_EQ(crc32(""), 0u);
    EXPECT_EQ(crc32("123456789"), 0xCBF43926u);
    EXPECT_EQ(crc32("a"), 0xE8B7BE43u);
    EXPECT_EQ(crc32("The quick brown fox jumps over the lazy dog"), 0x414FA339u);
    EXPECT_EQ(crc32(std::string(32, '\0')), 0x190A55ADu);
    EXPECT_NE(crc32("123456789"), crc32("123456788"));
}

TEST(JournalRecord, RoundTripInEveryState) {
    std::vector<Job> jobs;

    Job queued;
    queued.id = 3;
    queued.state = JobState::Queued;
    queued.spec = full_spec();
    queued.depends = true;
    queued.depend_on = 7;   // dep_result unset: decided when 7 ends
    queued.enqueue_time = 1700000000.25;
    jobs.push_back(queued);

    Job dashd = queued;     // "-d" after a finished job: shown as "&& ", result known
    dashd.id = 4;
    dashd.spec.depend_on = -1;
    dashd.depend_on = -1;
    dashd.dep_result = 0;
    dashd.spec.label = std::string();   // present but empty
    dashd.spec.env_info.reset();
    jobs.push_back(dashd);

    Job running;
    running.id = 12;
    running.state = JobState::Running;
    running.spec = cmd({"sleep", "100"});
    running.spec.uid = 1000;
    running.pid = 31337;
    running.runner_pid = 31336;
    running.output = "/tmp/ts-out.Xy12Zq";
    running.enqueue_time = 1700000001.5;
    running.start_time = 1700000002.75;
    running.depends = true;
    running.depend_on = 11;
    running.dep_result = 0;
    jobs.push_back(running);

    Job finished = running;
    finished.id = 13;
    finished.state = JobState::Finished;
    finished.spec.env.clear();   // dropped when a job ends
    finished.dep_result = -1;
    finished.end_time = 1700000010.125;
    finished.result = result(2, 0, false, 7.375, 1.5, 0.0625);
    jobs.push_back(finished);

    Job killed = finished;
    killed.id = 14;
    killed.result = result(-1, 9, false, 1, 0, 0);
    killed.spec.flags = proto::kKeepFinished;   // -n
    jobs.push_back(killed);

    Job skipped;
    skipped.id = 15;
    skipped.state = JobState::Skipped;
    skipped.spec = cmd({"echo", "skipped"});
    skipped.spec.env.clear();
    skipped.spec.depends = true;
    skipped.spec.depend_on = 13;
    skipped.depends = true;
    skipped.depend_on = 13;
    skipped.dep_result = 2;
    skipped.result = result(-1, 0, true);
    skipped.enqueue_time = skipped.end_time = 1700000003;
    jobs.push_back(skipped);

    Job waiting;
    waiting.id = 16;
    waiting.state = JobState::Overflow;
    waiting.spec = cmd({"held"});
    waiting.spec.flags = proto::kStoreOutput | proto::kKeepFinished | proto::kNoBlock;
    waiting.enqueue_time = 1700000004;
    jobs.push_back(waiting);

    Job fg;   // a -f job with a negative nice value and no limits
    fg.id = 0;
    fg.spec = cmd({"vi", "file"});
    fg.spec.flags = proto::kForeground | proto::kStoreOutput | proto::kKeepFinished;
    fg.spec.nice = -5;
    fg.spec.umask = 0;
    fg.spec.num_slots = 0;
    jobs.push_back(fg);

    for (const Job& j : jobs) {
        std::string bytes = encode_job(j);
        Job back;
        ASSERT_TRUE(decode_job(bytes, &back)) << "job " << j.id;
        expect_same_job(j, back);
        EXPECT_EQ(list_line(j), list_line(back));
        EXPECT_EQ(encode_job(back), bytes) << "job " << j.id << ": encoding is stable";
    }
}

TEST(JournalCrc, RunsBackwards) {
    // The register before the data, from the one after it: the key of a
    // file whose salt was lost comes back this way.
    for (std::string d : {std::string(), std::string("a"), std::string("123456789"), std::string(300, '\xA5')}) {
        uint32_t after = ~crc32(d);   // the register, from the initial 0xFFFFFFFF
        EXPECT_EQ(crc_back(after, d), 0xFFFFFFFFu) << d.size() << " bytes";
    }
}

TEST(JournalRecord, EveryCutInsideAFieldIsRejected) {
    Job j;
    j.id = 5;
    j.state = JobState::Running;
    j.spec = full_spec();
    j.output = "/tmp/ts-out.abcdef";
    j.pid = 10;
    j.runner_pid = 9;
    std::string bytes = encode_job(j);
    // Field boundaries: a cut there is a shorter record (the CRC of the
    // record guards against that); a cut anywhere else must fail.
    std::set<size_t> bounds;
    for (size_t off = 0; off < bytes.size();) {
        bounds.insert(off);
        uint32_t n;
        std::memcpy(&n, bytes.data() + off + 2, 4);
        off += 6 + n;
    }
    for (size_t n = 0; n < bytes.size(); ++n) {
        if (bounds.count(n)) continue;
        Job back;
        EXPECT_FALSE(decode_job(std::string_view(bytes).substr(0, n), &back)) << "cut at " << n;
    }
    Job back;
    EXPECT_FALSE(decode_job(bytes + '\0', &back)) << "a byte too many";
    EXPECT_FALSE(decode_job(std::string_view(bytes).substr(0, 6 + 4), &back)) << "the id alone";
    EXPECT_TRUE(decode_job(bytes, &back));
}

TEST(JournalRecord, UnknownFieldsOfALaterVersionAreSkipped) {
    Job j;
    j.id = 3;
    j.spec = full_spec();
    j.result.note = "a note";
    std::string bytes = encode_job(j);
    auto field = [](uint16_t tag, const std::string& v) {
        std::string f(reinterpret_cast<const char*>(&tag), 2);
        uint32_t n = static_cast<uint32_t>(v.size());
        f.append(reinterpret_cast<const char*>(&n), 4);
        return f + v;
    };
    for (uint16_t tag : {uint16_t(999), uint16_t(39), uint16_t(0xFFFF)}) {   // 35: the settings, 36-37: the GPUs, 38: dependency results
        Job back;
        std::string later = field(tag, "whatever a later ts keeps here") + bytes + field(tag, "");
        ASSERT_TRUE(decode_job(later, &back)) << "tag " << tag;
        expect_same_job(j, back);
        EXPECT_EQ(back.result.note, "a note");
    }
}

TEST(JournalRecord, SettingsAreOneFieldOfTheirWireEncoding) {
    Job j;
    j.id = 4;
    j.spec = full_spec();
    std::string plain = encode_job(j);
    j.spec.settings.set_u32(0x7001, 2);
    j.spec.settings.set_bytes(0x8001, std::string("x\0y", 3));
    std::string bytes = encode_job(j);
    // The record without settings has no settings field; with them, one more
    // field (tag 35) that holds exactly their encoding.
    std::map<uint16_t, std::string> fields, plain_fields;
    auto walk = [](const std::string& b, std::map<uint16_t, std::string>* out) {
        for (size_t off = 0; off + 6 <= b.size();) {
            uint16_t tag;
            uint32_t n;
            std::memcpy(&tag, b.data() + off, 2);
            std::memcpy(&n, b.data() + off + 2, 4);
            (*out)[tag] = b.substr(off + 6, n);
            off += 6 + n;
        }
    };
    walk(plain, &plain_fields);
    walk(bytes, &fields);
    EXPECT_EQ(plain_fields.count(35), 0u);
    ASSERT_EQ(fields.count(35), 1u);
    EXPECT_EQ(fields[35], encode_settings(j.spec.settings));
    fields.erase(35);
    EXPECT_EQ(fields, plain_fields);
    Job back;
    ASSERT_TRUE(decode_job(bytes, &back));
    expect_same_job(j, back);
    EXPECT_EQ(back.spec.settings.u32(0x7001), 2u);
    // Settings that do not decode make the record damaged: it is not read half.
    auto with = [&](const std::string& v) {
        uint16_t tag = 35;
        uint32_t n = uint32_t(v.size());
        return plain + std::string(reinterpret_cast<const char*>(&tag), 2) +
               std::string(reinterpret_cast<const char*>(&n), 4) + v;
    };
    ASSERT_TRUE(decode_job(with(encode_settings(j.spec.settings)), &back));
    std::string one = encode_settings(j.spec.settings).substr(0, 10);   // the field of tag 0x7001
    for (const std::string& bad : {std::string(), one + one, one.substr(0, 7)}) {
        Job b2;
        EXPECT_FALSE(decode_job(with(bad), &b2)) << "settings of " << bad.size() << " bytes";
    }
}

TEST(JournalRecord, BadStateIsRejected) {
    Job j;
    j.id = 1;
    j.spec = cmd({"x"});
    std::string bytes = encode_job(j);
    const size_t kState = 10 + 6;   // the id field (6 + 4 bytes), then the state's header
    for (int st = 0; st <= 4; ++st) {
        std::string b = bytes;
        b[kState] = char(st);
        Job back;
        ASSERT_TRUE(decode_job(b, &back)) << "state " << st;
        EXPECT_EQ(back.state, static_cast<JobState>(st));
    }
    for (int st : {5, 6, 0x7f, 0x80, 0xff}) {
        std::string b = bytes;
        b[kState] = char(st);
        Job back;
        EXPECT_FALSE(decode_job(b, &back)) << "state byte " << st;
    }
}

// Format 1 (the release before the tagged fields): still read.
TEST(JournalRecordV1, EveryTruncationIsRejected) {
    Job j;
    j.id = 5;
    j.state = JobState::Running;
    j.spec = full_spec();
    j.output = "/tmp/ts-out.abcdef";
    j.pid = 10;
    j.runner_pid = 9;
    std::string bytes = encode_job_v1(j);
    ASSERT_GT(bytes.size(), 88u);
    for (size_t n = 0; n < bytes.size(); ++n) {
        Job back;
        EXPECT_FALSE(decode_job_v1(std::string_view(bytes).substr(0, n), &back)) << "cut at " << n;
    }
    Job back;
    EXPECT_FALSE(decode_job_v1(bytes + '\0', &back)) << "a byte too many";
    ASSERT_TRUE(decode_job_v1(bytes, &back));
    expect_same_job(j, back);
}

TEST(JournalRecordV1, DamagedSubmitIsRejected) {
    Job j;
    j.spec = cmd({"x", "y"});
    std::string bytes = encode_job_v1(j);
    Job back;
    std::string b = bytes;
    b[88 + 4 + 4 + 2] ^= 0x01;   // after JobRec, output length (empty), submit length, version
    EXPECT_FALSE(decode_job_v1(b, &back));
    b = bytes;
    b[b.size() - 5] ^= 0x01;   // the cwd's last byte (the note, empty, comes last): still valid
    ASSERT_TRUE(decode_job_v1(b, &back));
    EXPECT_NE(back.spec.cwd, j.spec.cwd);
}

// ------------------------------------------------------------------- replay

TEST_F(JournalTest, FreshJournalIsASnapshotOfNothing) {
    auto a = open_live();
    EXPECT_TRUE(exists(path_));
    EXPECT_FALSE(a->j->replayed_anything());
    EXPECT_EQ(a->q.size(), 0u);
    std::string bytes = slurp(path_);
    ASSERT_GE(bytes.size(), 8u);
    EXPECT_EQ(bytes.substr(0, 4), std::string("TSJ\0", 4));
    EXPECT_EQ(size_t(file_size(path_)), a->j->size());
    struct stat st;
    ASSERT_EQ(stat(path_.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    EXPECT_TRUE(logs_.empty()) << all_logs();
    EXPECT_EQ(named("s.journal"), std::vector<std::string>{"s.journal"}) << "no .tmp or .bad left";
}

TEST_F(JournalTest, EmptyFileIsAnEmptyJournal) {
    spit(path_, "");
    auto a = open_live();
    EXPECT_EQ(a->q.size(), 0u);
    EXPECT_TRUE(logs_.empty()) << all_logs();
    EXPECT_TRUE(named("s.journal.bad").empty());
}

TEST_F(JournalTest, ReplayRestoresEverything) {
    auto a = open_live();
    Scenario s = build_everything(*a);
    const Queue& q = a->q;
    // The scenario reached every state it meant to.
    auto state = [&](JobId id) { return q.find(id) ? q.find(id)->state : JobState(-1); };
    EXPECT_EQ(state(s.head), JobState::Running);
    EXPECT_EQ(state(s.running2), JobState::Running);
    EXPECT_EQ(q.find(s.head)->runner_pid, 10000 + s.head);
    EXPECT_EQ(q.find(s.head)->output, "/tmp/ts-out.0");
    EXPECT_EQ(q.find(s.failed), nullptr);      // cleared
    EXPECT_EQ(q.find(s.removed), nullptr);     // removed
    EXPECT_EQ(q.find(s.nf), nullptr);          // -nf: not kept
    EXPECT_EQ(state(s.big), JobState::Queued);
    EXPECT_EQ(state(s.waits_on_running), JobState::Queued);
    EXPECT_FALSE(q.find(s.waits_on_running)->dep_result.has_value());
    EXPECT_EQ(state(s.failed2), JobState::Finished);
    EXPECT_EQ(state(s.skipped2), JobState::Skipped);
    EXPECT_EQ(state(s.skipped3), JobState::Skipped);
    EXPECT_EQ(state(s.ok), JobState::Finished);
    EXPECT_EQ(state(s.admitted), JobState::Queued);
    EXPECT_EQ(state(s.overflowed), JobState::Overflow);
    EXPECT_EQ(ids(q.active()), (V{0, 17, 16, 14, 15, 9, 18}));
    EXPECT_EQ(ids(q.finished_list()), (V{10, 11, 12, 13}));
    EXPECT_EQ(q.overflow(), V{19});
    EXPECT_EQ(q.max_slots(), 2);
    EXPECT_TRUE(logs_.empty()) << all_logs();

    auto b = open_at(path_);   // a second server on the same journal (a is "dead")
    EXPECT_TRUE(b->j->replayed_anything());
    {
        SCOPED_TRACE("replay of the log");
        expect_same_queue(a->q, b->q);
    }
    auto c = open_at(path_);   // a third one, from the second one's snapshot
    {
        SCOPED_TRACE("replay of a snapshot");
        expect_same_queue(a->q, c->q);
    }
    for (Live* l : {b.get(), c.get()}) {   // the settings came back (also in expect_same_queue)
        EXPECT_EQ(l->q.find(s.head)->spec.settings.u64(0x7001), 1ull << 33);
        EXPECT_EQ(*l->q.find(s.head)->spec.settings.bytes(0x8001), "a hint");
        EXPECT_EQ(l->q.find(s.big3)->spec.settings.u32(0x7002), 3u);
    }
    EXPECT_TRUE(logs_.empty()) << all_logs();
}

TEST_F(JournalTest, ReplayedQueueGoesOnLikeTheOriginal) {
    auto a = open_live();
    Scenario s = build_everything(*a);
    auto b = open_at(path_);
    double t = 1700005000;
    for (Live* l : {a.get(), b.get()}) {
        l->q.set_max_jobs(0);
        l->finish(s.running2, result(0), t);
        l->finish(s.head, result(3), t + 1);
        l->slots(3);
        settle(*l, t + 2, {{s.waits_on_running, result(4)}});
    }
    EXPECT_EQ(a->q.find(s.waits_on_running)->state, JobState::Finished);
    EXPECT_EQ(a->q.find(s.big)->state, JobState::Finished);
    EXPECT_EQ(a->q.find(s.overflowed)->state, JobState::Finished);
    expect_same_queue(a->q, b->q);
}

TEST_F(JournalTest, StartupWritesACompactSnapshot) {
    auto a = open_live();
    build_everything(*a);
    a->q.set_max_jobs(0);
    // Lots of history that leaves little behind.
    for (int i = 0; i < 50; ++i) {
        JobId id = a->add(cmd({"churn", std::to_string(i)}), 1700001000 + i);
        EXPECT_TRUE(a->remove(id));
    }
    off_t with_history = file_size(path_);
    EXPECT_EQ(size_t(with_history), a->j->size());

    auto b = open_live();   // replays, then writes a snapshot
    off_t snapshot = file_size(path_);
    EXPECT_LT(snapshot, with_history);
    EXPECT_EQ(size_t(snapshot), b->j->size());
    expect_same_queue(a->q, b->q);
    std::string first = slurp(path_);

    auto c = open_live();   // replaying the snapshot gives the same state and as many bytes
    expect_same_queue(a->q, c->q);   // (each file has a salt of its own: the CRCs differ)
    EXPECT_EQ(slurp(path_).size(), first.size());
    EXPECT_EQ(named("s.journal"), std::vector<std::string>{"s.journal"});
    EXPECT_TRUE(logs_.empty()) << all_logs();
}

TEST_F(JournalTest, SizeFollowsTheFile) {
    auto a = open_live();
    EXPECT_EQ(size_t(file_size(path_)), a->j->size());
    a->add(cmd({"a"}), 1);
    a->slots(3);
    a->schedule(2);
    EXPECT_EQ(size_t(file_size(path_)), a->j->size());
}

// --------------------------------------------------------- damaged journals

TEST_F(JournalTest, TornTailAtEveryOffsetOfTheLastRecord) {
    size_t before = 0, after = 0;
    std::string expected;
    {
        auto a = open_live();
        a->add(cmd({"a"}), 1700000000);
        a->add(cmd({"b"}), 1700000001);
        a->schedule(1700000002);
        a->spawned(0, 100);
        a->started(0, 101, "/tmp/ts-out.x", 1700000003);
        a->finish(0, result(0), 1700000004);
        expected = list_text(a->q);
        before = a->j->size();
        JobSpec last = full_spec();
        last.depends = false;
        last.env.clear();   // a new environment would come in a record of its own first
        a->add(last, 1700000005);   // the record that gets torn
        after = a->j->size();
    }
    ASSERT_GT(after, before + 100);
    std::string bytes = slurp(path_);
    ASSERT_EQ(bytes.size(), after);
    for (size_t cut = before; cut < after; ++cut) {
        spit(path_, bytes.substr(0, cut));
        logs_.clear();
        auto r = open_live();
        EXPECT_EQ(list_text(r->q), expected) << "cut at " << cut;
        EXPECT_EQ(r->q.size(), 2u) << "cut at " << cut;
        if (cut == before) {
            EXPECT_FALSE(logged("dropped")) << all_logs();
        } else {
            std::string want = format("dropped %s after offset %zu", counted(cut - before, "byte", "bytes").c_str(), before);
            EXPECT_TRUE(logged(want)) << "cut at " << cut << ", want \"" << want << "\", got\n"
                                      << all_logs();
        }
        // The torn tail is gone from the file: a second replay is clean.
        r.reset();
        logs_.clear();
        auto again = open_live();
        EXPECT_EQ(list_text(again->q), expected);
        EXPECT_FALSE(logged("dropped")) << "cut at " << cut << "\n" << all_logs();
    }
    spit(path_, bytes);   // and the whole file brings all three back
    auto whole = open_live();
    EXPECT_EQ(whole->q.size(), 3u);
}

TEST_F(JournalTest, GarbageAppendedIsDroppedAndLogged) {
    std::string expected;
    {
        auto a = open_live();
        a->add(cmd({"a"}), 1700000000);
        a->add(cmd({"b"}), 1700000001);
        expected = list_text(a->q);
    }
    std::string good = slurp(path_);
    struct Case {
        const char* what;
        std::string tail;
    };
    std::string plausible(12, '\0');   // a header with a small length and a wrong CRC
    plausible[0] = 4;
    plausible[8] = 2;
    plausible += "abcd";
    std::string long_len(12, '\0');    // claims more than the file holds
    long_len[0] = 100;
    long_len[8] = 2;
    std::vector<Case> cases = {
        {"0xAB bytes", std::string(37, '\xAB')},
        {"one byte", std::string(1, '\x01')},
        {"zeros", std::string(64, '\0')},
        {"bad crc", plausible},
        {"long length", long_len},
        {"text", "hello, this is not a record\n"},
    };
    for (const Case& c : cases) {
        spit(path_, good + c.tail);
        logs_.clear();
        auto r = open_live();
        EXPECT_EQ(list_text(r->q), expected) << c.what;
        std::string want = format("dropped %s after offset %zu", counted(c.tail.size(), "byte", "bytes").c_str(), good.size());
        EXPECT_TRUE(logged(want)) << c.what << ": want \"" << want << "\", got\n" << all_logs();
        std::string ref = dir_.file("ref.journal");
        spit(ref, good);
        open_at(ref);   // a snapshot of the good part
        EXPECT_EQ(slurp(path_).size(), slurp(ref).size()) << c.what << ": the tail is gone from the file";
    }
}

/* The jobs a list shows. */
size_t a_jobs(const std::string& list) {
    return size_t(std::count(list.begin(), list.end(), '\n')) - 1;
}

/* The records that one write put at [from, to) of an intact file, each as
 * [start, end): a change's own record comes last (before it, where the
 * write reaches offset 512 or 4096, the meta records that pad and anchor). */
std::vector<std::pair<size_t, size_t>> records_in(const std::string& file, size_t from, size_t to) {
    std::vector<std::pair<size_t, size_t>> out;
    for (size_t at = from; at + 12 <= to;) {
        uint32_t len = 0;
        std::memcpy(&len, file.data() + at, 4);
        out.push_back({at, at + 12 + len});
        at += 12 + size_t(len);
    }
    EXPECT_TRUE(!out.empty() && out.back().second == to) << "the records of " << from << "-" << to;
    return out;
}

TEST_F(JournalTest, FlippedByteCostsOnlyItsRecord) {
    // Ops that write one record each; the state after each. (No environments:
    // a job's new environment would be a record of its own.)
    auto cmd = [](std::vector<std::string> argv) {
        JobSpec s = ::cmd(std::move(argv));
        s.env.clear();
        return s;
    };
    std::vector<size_t> off;
    std::vector<std::string> state;
    {
        auto a = open_live();
        auto mark = [&] {
            off.push_back(a->j->size());
            state.push_back(list_text(a->q));
        };
        mark();
        a->add(cmd({"a"}), 1700000000);
        mark();
        a->add(cmd({"b"}), 1700000001);
        mark();
        JobSpec c = cmd({"c"});
        c.label = "L";
        a->add(c, 1700000002);
        mark();
        a->add(cmd({"d"}), 1700000003);
        mark();
        a->slots(3);
        mark();
        ASSERT_TRUE(a->urgent(3));
        mark();
        ASSERT_TRUE(a->remove(2));
        mark();
        ASSERT_TRUE(a->swap(1, 3));
        mark();
        a->add(cmd({"e"}), 1700000004);
        mark();
    }
    std::string bytes = slurp(path_);
    ASSERT_EQ(bytes.size(), off.back());
    auto own = [&](size_t k) { return records_in(bytes, off[k - 1], off[k]).back(); };
    auto check = [&](size_t k, size_t at) {   // flip byte `at`, inside op k's own record (1-based)
        SCOPED_TRACE(format("record %zu, byte %zu", k, at));
        // What the journal holds without record k: all that may be lost.
        std::string ref = dir_.file("ref.journal");
        spit(ref, bytes.substr(0, off[k - 1]) + bytes.substr(off[k]));
        std::string expected = list_text(open_at(ref)->q);
        unlink(ref.c_str());
        std::string b = bytes;
        b[at] = char(b[at] ^ 0x5A);
        spit(path_, b);
        std::vector<std::string> aside = named("s.journal.bad.");
        logs_.clear();
        auto r = open_live();
        EXPECT_EQ(list_text(r->q), expected);
        auto [from, to] = own(k);
        std::string want = k + 1 == off.size()
                               ? format("dropped %s after offset %zu", counted(to - from, "byte", "bytes").c_str(), from)
                               : format("%s at offset %zu", counted(to - from, "damaged byte", "damaged bytes").c_str(), from);
        EXPECT_TRUE(logged(want)) << "want \"" << want << "\", got\n" << all_logs();
        // The damaged file is kept, as it was, before it is rewritten.
        std::vector<std::string> now = named("s.journal.bad.");
        ASSERT_EQ(now.size(), aside.size() + 1) << all_logs();
        for (const auto& n : now) {
            if (std::find(aside.begin(), aside.end(), n) == aside.end()) {
                EXPECT_EQ(slurp(dir_.file(n)), b) << n;
            }
        }
        EXPECT_TRUE(logged("kept aside as")) << all_logs();
    };
    for (size_t k = 1; k < off.size(); ++k) check(k, (own(k).first + own(k).second) / 2);
    for (size_t at = own(6).first; at < own(6).second; ++at) check(6, at);   // every byte of the urgent record
    for (size_t at = own(1).first; at < own(1).second; ++at) check(1, at);   // every byte of the first job
    // A pad or an anchor (meta records) damaged: no change is lost.
    size_t pads = 0;
    for (size_t k = 1; k < off.size(); ++k) {
        auto recs = records_in(bytes, off[k - 1], off[k]);
        for (size_t i = 0; i + 1 < recs.size(); ++i, ++pads) {
            std::string b = bytes;
            b[(recs[i].first + recs[i].second) / 2] ^= 0x5A;
            spit(path_, b);
            logs_.clear();
            EXPECT_EQ(list_text(open_live()->q), state.back()) << "record at " << recs[i].first << "\n" << all_logs();
        }
    }
    EXPECT_EQ(pads, 2u) << "the pad and the anchor at offset 512";
    // A flip in the snapshot's meta record (the first record) costs the meta
    // record only: the jobs come back.
    std::string b = bytes;
    b[32 + 12 + 2] ^= 0x01;
    spit(path_, b);
    logs_.clear();
    auto r = open_live();
    EXPECT_EQ(r->q.size(), 0u + a_jobs(state.back()));
    EXPECT_TRUE(logged("damaged bytes at offset 32")) << all_logs();
}

TEST_F(JournalTest, NotAJournalIsMovedAside) {
    std::mt19937 rng(42);
    std::string junk;
    for (int i = 0; i < 300; ++i) junk += char(rng() & 0xFF);
    junk[0] = 'X';
    spit(path_, junk);
    auto a = open_live();
    EXPECT_EQ(a->q.size(), 0u);
    EXPECT_EQ(list_text(a->q), list_text(Queue()));
    EXPECT_FALSE(a->j->replayed_anything());
    std::vector<std::string> aside = named("s.journal.bad.");
    ASSERT_EQ(aside.size(), 1u) << all_logs();
    std::string suffix = aside[0].substr(std::string("s.journal.bad.").size());
    EXPECT_FALSE(suffix.empty());
    EXPECT_EQ(suffix.find_first_not_of("0123456789"), std::string::npos) << aside[0];
    EXPECT_EQ(slurp(dir_.file(aside[0])), junk) << "the original bytes are kept";
    EXPECT_TRUE(logged("not a ts journal")) << all_logs();
    EXPECT_TRUE(logged("moved aside to " + dir_.file(aside[0]))) << all_logs();
    // The journal at the path is a fresh one that works.
    a->add(cmd({"new"}), 1);
    a.reset();
    auto b = open_live();
    EXPECT_EQ(b->q.size(), 1u);
}

TEST_F(JournalTest, TooShortIsMovedAside) {
    spit(path_, "TS");
    auto a = open_live();
    EXPECT_EQ(a->q.size(), 0u);
    EXPECT_EQ(named("s.journal.bad.").size(), 1u) << all_logs();
    EXPECT_TRUE(logged("not a ts journal")) << all_logs();
}

TEST_F(JournalTest, NewerFormatIsLeftUntouchedAndRefused) {
    std::string head = journal_header(9, 0x1234);
    head += std::string(40, '\x07');
    spit(path_, head);
    ino_t ino = inode(path_);
    auto a = open_live();
    EXPECT_EQ(a->q.size(), 0u);
    EXPECT_NE(a->j->refused().find("format 9"), std::string::npos) << a->j->refused();
    EXPECT_NE(a->j->refused().find("left untouched"), std::string::npos) << a->j->refused();
    a->add(cmd({"x"}), 1);   // nothing is written
    a.reset();
    EXPECT_EQ(slurp(path_), head);
    EXPECT_EQ(inode(path_), ino);
    EXPECT_TRUE(named("s.journal.bad.").empty());
}

TEST_F(JournalTest, DamagedHeaderIsReadAsThisFormat) {
    {
        auto a = open_live();
        a->add(cmd({"a"}), 1700000000);
        a->add(cmd({"b"}), 1700000001);
    }
    std::string good = slurp(path_);
    // One byte of the header: the other copy of the salt does.
    for (size_t at = 0; at < 32; ++at) {
        std::string b = good;
        b[at] ^= 0x10;
        spit(path_, b);
        logs_.clear();
        auto r = open_live();
        EXPECT_TRUE(r->j->refused().empty()) << r->j->refused();
        EXPECT_EQ(r->q.size(), 2u) << "byte " << at << "\n" << all_logs();
        good = slurp(path_);   // a fresh file (and salt) for the next flip
    }
    // Both copies damaged, and the magic too: the records are still found.
    std::string b = good;
    b[0] ^= 0x01;
    b[5] ^= 0x01;
    b[17] ^= 0x01;
    b[29] ^= 0x01;
    spit(path_, b);
    logs_.clear();
    auto r = open_live();
    EXPECT_EQ(r->q.size(), 2u) << all_logs();
    EXPECT_TRUE(logged("header is damaged")) << all_logs();
}

TEST_F(JournalTest, FormatOneIsReadAndRewritten) {
    auto a = open_live();
    build_everything(*a);
    // Format 1 had no settings: the queue to compare with has none either.
    for (const std::list<JobId>* l : {&a->q.active(), &a->q.finished_list()})
        for (JobId id : *l) a->q.find(id)->spec.settings = JobSettings();
    for (JobId id : a->q.overflow()) a->q.find(id)->spec.settings = JobSettings();
    // The same queue as the previous release wrote it: format 1, its job records.
    auto rec = [](uint16_t type, const std::string& body) {
        std::string r(12, '\0');
        uint32_t len = static_cast<uint32_t>(body.size());
        std::memcpy(&r[0], &len, 4);
        std::memcpy(&r[8], &type, 2);
        r += body;
        uint32_t c = crc32(std::string_view(r).substr(8));
        std::memcpy(&r[4], &c, 4);
        return r;
    };
    std::string v1("TSJ\0", 4);
    uint32_t one = 1;
    v1.append(reinterpret_cast<const char*>(&one), 4);
    Queue::Meta m = a->q.meta();
    int32_t meta[4] = {m.next_id, m.last_errorlevel, m.last_finished_id, m.max_slots};
    v1 += rec(1, std::string(reinterpret_cast<const char*>(meta), sizeof meta));
    for (JobId id : a->q.active()) v1 += rec(2, encode_job_v1(*a->q.find(id)));
    for (JobId id : a->q.overflow()) v1 += rec(2, encode_job_v1(*a->q.find(id)));
    for (JobId id : a->q.finished_list()) {
        Job j = *a->q.find(id);
        j.env.reset();
        v1 += rec(2, encode_job_v1(j));
    }
    std::string old = dir_.file("old.journal");
    spit(old, v1);
    logs_.clear();
    auto b = open_at(old);
    {
        SCOPED_TRACE("format 1, read");
        expect_same_queue(a->q, b->q);
    }
    EXPECT_TRUE(logs_.empty()) << all_logs();
    std::string now = slurp(old);
    uint32_t v = 0;
    std::memcpy(&v, now.data() + 4, 4);
    EXPECT_EQ(v, kJournalFormat) << "rewritten in this format";
    b.reset();
    auto c = open_at(old);
    {
        SCOPED_TRACE("format 1, rewritten, read again");
        expect_same_queue(a->q, c->q);
    }
}

// --------------------------------------------------------------- compaction

TEST_F(JournalTest, CompactsAfterClearingFinishedJobs) {
    auto a = open_live();
    a->slots(8);
    JobSpec s = cmd({"work"});
    s.env.assign(20, std::string(40, 'e'));   // about 1 KiB per job record
    for (int i = 0; i < 300; ++i) {
        a->add(s, 1700000000 + i);
        Decisions d = a->schedule(1700000000 + i);
        for (JobId id : d.start) {
            a->spawned(id, 1000 + id);
            a->started(id, 2000 + id, "/tmp/ts-out." + std::to_string(id), 1700000000 + i);
            a->finish(id, result(0), 1700000000.5 + i);
        }
    }
    EXPECT_EQ(a->q.finished_list().size(), 300u);
    a->clear();
    a->j->maybe_compact(a->q);
    EXPECT_LT(file_size(path_), 1024) << "after -C only the meta record is left";
    EXPECT_EQ(size_t(file_size(path_)), a->j->size());
    auto b = open_at(path_);
    expect_same_queue(a->q, b->q);
    EXPECT_EQ(b->q.meta().next_id, 300);
}

TEST_F(JournalTest, StaysWithinAFewTimesTheLiveStateWithLiveJobs) {
    auto a = open_live();
    a->slots(4);
    JobSpec big = cmd({"long", "job"});
    big.env.assign(15, std::string(40, 'b'));   // ~700 bytes per job record
    // 60 jobs that never run: two of them hold the slots, the rest wait behind a 5-slot job.
    JobSpec blocker = cmd({"needs", "five"});
    blocker.num_slots = 5;
    a->add(blocker, 1700000000);
    for (int i = 0; i < 60; ++i) {
        big.env[0] = "I=" + std::to_string(i);   // sixty environments, not one shared
        a->add(big, 1700000000 + i);
    }
    a->schedule(1700000100);   // the first 4 of the 60 start; the rest wait
    size_t biggest = 0;
    JobSpec small = cmd({"quick"});
    small.env.assign(15, std::string(40, 's'));
    for (int i = 0; i < 3000; ++i) {
        JobId id = a->add(small, 1700000200 + i);
        ASSERT_TRUE(a->q.start(id));   // runs at once (past the slot count: no matter here)
        a->j->start(id);
        a->spawned(id, 100000 + id);
        a->started(id, 200000 + id, "/tmp/ts-out.q" + std::to_string(id), 1700000200 + i);
        a->finish(id, result(0), 1700000200.5 + i);
        if (i % 10 == 9) a->clear();
        a->j->maybe_compact(a->q);
        biggest = std::max(biggest, a->j->size());
    }
    a->clear();
    a->j->maybe_compact(a->q);
    size_t end_size = a->j->size();
    a.reset();
    std::string copy = dir_.file("fresh.journal");
    spit(copy, slurp(path_));
    auto fresh = open_at(copy);   // a fresh snapshot of the same queue
    size_t live = fresh->j->size();
    ASSERT_GT(live, 30000u);
    EXPECT_LE(end_size, 4 * live) << "end " << end_size << " vs a snapshot of " << live;
    EXPECT_LE(biggest, 4 * live) << "at most " << biggest << " vs a snapshot of " << live;
}

TEST_F(JournalTest, RemoveFileDeletesTheJournalForGood) {
    auto a = open_live();
    a->add(cmd({"a"}), 1);
    ASSERT_TRUE(exists(path_));
    a->j->remove_file();
    EXPECT_FALSE(exists(path_));
    // A server on its way out must not bring it back.
    a->add(cmd({"b"}), 2);
    a->slots(2);
    a->schedule(3);
    a->j->maybe_compact(a->q);
    EXPECT_FALSE(exists(path_));
    EXPECT_TRUE(named("s.journal").empty());
    a.reset();
    auto b = open_live();   // the next server: a fresh, empty queue
    EXPECT_EQ(b->q.size(), 0u);
    EXPECT_FALSE(b->j->replayed_anything());
}

TEST_F(JournalTest, NoDescriptorLeaks) {
    int before = open_fds();
    ASSERT_GT(before, 0);
    for (int i = 0; i < 20; ++i) {
        auto a = open_live();
        for (int k = 0; k < 5; ++k) a->add(cmd({"x"}), k);
        a->j->compact(a->q);
        a->j->maybe_compact(a->q);
        a.reset();
        std::string b = slurp(path_);
        spit(path_, b + "garbage");   // a torn tail
        auto r = open_live();
        r.reset();
        spit(path_, "not a journal at all");
        auto s = open_live();
        s->j->remove_file();
    }
    EXPECT_EQ(open_fds(), before);
}

// ----------------------------------------------------- problems (review)

/* A job that depends on a job further down the list (-u or -U moved it up)
 * is restored from a snapshot before its dependency, so Queue::restore()
 * does not register it as a dependent and it is never told the dependency's
 * result; if that dependency is then forgotten (-nf, -C, TS_MAXFINISHED),
 * the dependent is skipped although its dependency succeeded. (Replaying the
 * raw log is fine: the jobs were added in id order.) */
TEST_F(JournalTest, DependentMovedAheadOfItsDependencyLearnsItsResultAfterReplay) {
    auto a = open_live();
    a->add(cmd({"head"}), 1700000000);          // 0: running
    JobSpec nf = cmd({"true"});
    nf.flags = proto::kForeground;              // 1: -nf, not kept once it ends
    a->add(nf, 1700000001);
    JobSpec dep = cmd({"after", "one"});
    dep.depends = true;                         // 2: -d, on job 1
    a->add(dep, 1700000002);
    ASSERT_EQ(a->q.find(2)->depend_on, 1);
    Decisions d = a->schedule(1700000003);
    ASSERT_EQ(d.start, V{0});
    ASSERT_TRUE(a->urgent(2));                  // ts -u 2: 0, 2, 1
    ASSERT_EQ(ids(a->q.active()), (V{0, 2, 1}));
    a->j->compact(a->q);                        // a compaction (or an earlier restart) ...

    auto b = open_at(path_);                    // ... then the server restarts
    for (Live* l : {a.get(), b.get()}) {
        l->finish(0, result(0), 1700000004);
        Decisions s = l->schedule(1700000005);  // 2 waits for 1; 1 starts
        EXPECT_EQ(s.start, V{1});
        l->finish(1, result(0), 1700000006);    // succeeds and is forgotten
        l->schedule(1700000007);
    }
    ASSERT_NE(a->q.find(2), nullptr);
    EXPECT_EQ(a->q.find(2)->state, JobState::Running) << "without a restart, 2 runs";
    ASSERT_NE(b->q.find(2), nullptr);
    EXPECT_EQ(b->q.find(2)->state, JobState::Running)
        << "after the restart, 2 must run too (its dependency exited 0)\n"
        << list_text(b->q);
}

/* The same without -u: the order of the snapshot is the order of the queue,
 * and the dependent learns the result (this one passes; it shows that the
 * test above fails for the order alone). */
TEST_F(JournalTest, DependentBehindItsDependencyLearnsItsResultAfterReplay) {
    auto a = open_live();
    a->add(cmd({"head"}), 1700000000);
    JobSpec nf = cmd({"true"});
    nf.flags = proto::kForeground;
    a->add(nf, 1700000001);
    JobSpec dep = cmd({"after", "one"});
    dep.depends = true;
    a->add(dep, 1700000002);
    a->schedule(1700000003);
    a->j->compact(a->q);
    auto b = open_at(path_);
    b->finish(0, result(0), 1700000004);
    EXPECT_EQ(b->schedule(1700000005).start, V{1});
    b->finish(1, result(0), 1700000006);
    b->schedule(1700000007);
    ASSERT_NE(b->q.find(2), nullptr);
    EXPECT_EQ(b->q.find(2)->state, JobState::Running) << list_text(b->q);
}

/* -D 0,1 and --after=1 where job 1 is -nf (forgotten once it ends): what the
 * dependents learned of it is in their records, through a snapshot too. */
TEST_F(JournalTest, FurtherDependenciesKeepTheResultsTheyLearned) {
    auto a = open_live();
    a->q.set_max_slots(2);
    a->add(cmd({"head"}), 1700000000);       // 0
    JobSpec nf = cmd({"false"});
    nf.flags = proto::kForeground;           // 1: not kept once it ends
    a->add(nf, 1700000001);
    JobSpec must = cmd({"must"});            // 2: -D 0,1
    must.depends = true;
    must.depend_on = 0;
    must.settings.set_ids(kSettingDepends, {1});
    a->add(must, 1700000002);
    JobSpec after = cmd({"after"});          // 3: --after=0,1
    after.settings.set_ids(kSettingAfter, {0, 1});
    a->add(after, 1700000003);
    ASSERT_EQ(a->schedule(1700000004).start, (V{0, 1}));
    a->finish(1, result(1), 1700000005);     // fails and is forgotten
    ASSERT_EQ(a->q.find(1), nullptr);
    a->j->compact(a->q);                     // job 1's end is in no record now
    auto b = open_at(path_);
    ASSERT_NE(b->q.find(2), nullptr);
    ASSERT_NE(b->q.find(2)->learned(1), nullptr);
    EXPECT_EQ(*b->q.find(2)->learned(1), 1);
    EXPECT_EQ(b->q.find(2)->spec.settings.more_depends(), std::vector<int32_t>{1});
    b->finish(0, result(0), 1700000006);
    Decisions d = b->schedule(1700000007);
    EXPECT_EQ(d.skipped, V{2}) << list_text(b->q);
    EXPECT_EQ(d.start, V{3});
}

/* After a restart the average job record is forgotten (256 bytes assumed),
 * so with real environments (a few KiB per job) the live state is
 * underestimated and every maybe_compact() — once per server loop round —
 * rewrites and fsyncs the whole journal, though nothing changed. */
TEST_F(JournalTest, NoCompactionWithoutChangesAfterARestart) {
    {
        auto a = open_live();
        JobSpec s = cmd({"job"});
        s.env.assign(30, std::string(70, 'v'));   // ~2.3 KiB, a modest environment
        a->add(cmd({"head"}), 1700000000);
        a->schedule(1700000000);
        for (int i = 0; i < 20; ++i) {
            s.env[0] = "I=" + std::to_string(i);   // twenty environments, not one shared
            a->add(s, 1700000001 + i);
        }
    }
    auto b = open_live();   // the restart
    ASSERT_GT(b->j->size(), 16u * 1024);
    ino_t ino = inode(path_);
    for (int round = 0; round < 3; ++round) b->j->maybe_compact(b->q);   // idle rounds
    EXPECT_EQ(inode(path_), ino) << "the journal was rewritten though nothing changed";
}

/* The same without a restart: a few big jobs, then many small ones, and the
 * running average of a job record says the queue is small. */
TEST_F(JournalTest, NoCompactionWithoutChangesAfterSmallJobsFollowBigOnes) {
    auto a = open_live();
    a->add(cmd({"head"}), 1700000000);
    a->schedule(1700000000);
    JobSpec big = cmd({"big"});
    big.env.assign(100, std::string(100, 'B'));   // ~10 KiB
    for (int i = 0; i < 10; ++i) a->add(big, 1700000001 + i);
    for (int i = 0; i < 40; ++i) a->add(cmd({"small"}), 1700000100 + i);
    a->j->maybe_compact(a->q);   // may compact once
    ino_t ino = inode(path_);
    for (int round = 0; round < 3; ++round) a->j->maybe_compact(a->q);
    EXPECT_EQ(inode(path_), ino) << "the journal was rewritten though nothing changed";
}

/* One failed write (disk full for a moment, here RLIMIT_FSIZE) stops the
 * journal for good, but leaves the old file in place: the next server
 * replays a stale queue, and jobs that already ran come back queued (they
 * run twice) while newer jobs are lost and their ids given again. */
TEST_F(JournalTest, AFailedWriteNeverLeavesAStaleQueueBehind) {
    auto a = open_live();
    a->add(cmd({"first"}), 1700000000);
    a->add(cmd({"second"}), 1700000001);
    struct sigaction ign {}, old_sa {};
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    ASSERT_EQ(sigaction(SIGXFSZ, &ign, &old_sa), 0);
    struct rlimit old_rl;
    ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_rl), 0);
    struct rlimit small = old_rl;
    small.rlim_cur = static_cast<rlim_t>(file_size(path_)) + 5;
    bool limited = setrlimit(RLIMIT_FSIZE, &small) == 0;
    a->schedule(1700000002);   // "start 0" cannot be written
    setrlimit(RLIMIT_FSIZE, &old_rl);
    sigaction(SIGXFSZ, &old_sa, nullptr);
    ASSERT_TRUE(limited);
    EXPECT_TRUE(logged("write")) << all_logs();

    EXPECT_FALSE(a->j->ok());
    EXPECT_FALSE(a->j->why().empty());
    {   // Meanwhile the file still holds the queue as it was before (nothing deleted).
        std::string copy = dir_.file("copy.journal");
        spit(copy, slurp(path_));
        auto meanwhile = open_at(copy);
        EXPECT_EQ(meanwhile->q.size(), 2u);
        EXPECT_EQ(ids(meanwhile->q.active()), (V{0, 1}));
        unlink(copy.c_str());
    }
    // The disk has room again: the server recovers, then goes on for a while.
    EXPECT_TRUE(a->j->recover(a->q)) << all_logs();
    EXPECT_TRUE(a->j->ok());
    EXPECT_TRUE(logged("written again")) << all_logs();
    a->spawned(0, 300);
    a->started(0, 301, "/tmp/ts-out.0", 1700000003);
    a->finish(0, result(0), 1700000004);
    a->schedule(1700000005);
    a->add(cmd({"third"}), 1700000006);
    for (int round = 0; round < 3; ++round) a->j->maybe_compact(a->q);

    auto b = open_at(path_);   // the server is restarted
    for (JobId id : b->q.active()) {
        const Job* live = a->q.find(id);
        ASSERT_NE(live, nullptr) << "job " << id << " came back but is gone";
        EXPECT_EQ(b->q.find(id)->state, live->state)
            << "job " << id << " is " << state_name(b->q.find(id)->state) << " after the restart but "
            << state_name(live->state) << " in the server that wrote the journal";
    }
    EXPECT_TRUE(b->q.size() == 0 || b->q.meta().next_id >= a->q.meta().next_id)
        << "ids " << b->q.meta().next_id << ".. would be given again";
}

TEST_F(JournalTest, EnvironmentsAreWrittenOnceAndComeBack) {
    JobSpec s = cmd({"x"});
    s.env.assign(40, std::string(50, 'e'));   // 2 KiB
    {
        auto a = open_live();
        a->add(cmd({"head"}), 1700000000);
        a->schedule(1700000000);
        for (int i = 0; i < 100; ++i) a->add(s, 1700000001 + i);
        EXPECT_LT(a->j->size(), 100u * 700) << "the environment was written more than once";   // 2 KiB each would be 250 KiB
    }
    auto b = open_live();
    ASSERT_EQ(b->q.size(), 101u);
    ASSERT_TRUE(b->q.find(100)->env);
    EXPECT_EQ(*b->q.find(100)->env, s.env);
    EXPECT_EQ(b->q.find(1)->env.get(), b->q.find(100)->env.get());   // still one copy
    EXPECT_LT(b->j->size(), 100u * 700);   // the snapshot too
}

// ------------------------------------------------------- a disk that is full
// (RLIMIT_FSIZE stands in for it: every write past the limit fails, as
// ENOSPC would; t-durability.sh fills a real tmpfs.)

/* Writes past `bytes` fail (EFBIG) while this lives. */
class FileSizeLimit {
public:
    explicit FileSizeLimit(off_t bytes) {
        struct sigaction ign {};
        ign.sa_handler = SIG_IGN;
        sigemptyset(&ign.sa_mask);
        sigaction(SIGXFSZ, &ign, &old_sa_);
        getrlimit(RLIMIT_FSIZE, &old_);
        struct rlimit small = old_;
        small.rlim_cur = static_cast<rlim_t>(bytes);
        ok_ = setrlimit(RLIMIT_FSIZE, &small) == 0;
    }
    ~FileSizeLimit() {
        setrlimit(RLIMIT_FSIZE, &old_);
        sigaction(SIGXFSZ, &old_sa_, nullptr);
    }
    bool ok() const { return ok_; }

private:
    struct rlimit old_ {};
    struct sigaction old_sa_ {};
    bool ok_ = false;
};

TEST_F(JournalTest, AStartOnAFullDiskKeepsTheJournalItRead) {
    {
        auto a = open_live();
        a->add(cmd({"a"}), 1700000000);
        a->add(cmd({"b"}), 1700000001);
    }
    std::string before = slurp(path_);
    ino_t ino = inode(path_);
    {
        FileSizeLimit full(16);
        ASSERT_TRUE(full.ok());
        auto r = open_live();   // the start-up snapshot cannot be written
        EXPECT_EQ(r->q.size(), 2u) << all_logs();
        EXPECT_TRUE(logged("cannot write a snapshot")) << all_logs();
        EXPECT_EQ(slurp(path_), before) << "the journal it read is still there, as it was";
        EXPECT_EQ(inode(path_), ino);
        EXPECT_FALSE(r->j->job(*r->q.find(0), false));
        EXPECT_FALSE(r->j->pending()) << "an undone change is not pending";
        EXPECT_EQ(slurp(path_), before);
    }
    EXPECT_TRUE(named("s.journal.tmp").empty()) << "no temporary file is left";
    auto r = open_live();   // room again
    EXPECT_EQ(r->q.size(), 2u);
    EXPECT_TRUE(r->j->ok());
}

TEST_F(JournalTest, AFailedCompactionKeepsTheJournal) {
    auto a = open_live();
    JobSpec s = cmd({"work"});
    s.env.assign(20, std::string(40, 'e'));
    for (int i = 0; i < 100; ++i) {
        a->add(s, 1700000000 + i);
        Decisions d = a->schedule(1700000000 + i);
        for (JobId id : d.start) {
            a->spawned(id, 1000 + id);
            a->started(id, 2000 + id, "/tmp/ts-out." + std::to_string(id), 1700000000 + i);
            a->finish(id, result(0), 1700000000.5 + i);
        }
    }
    a->add(cmd({"queued"}), 1700000200);
    size_t big = a->j->size();
    ino_t ino = inode(path_);
    a->clear();
    {
        FileSizeLimit full(64);   // the snapshot cannot be written, nor anything else
        ASSERT_TRUE(full.ok());
        a->j->maybe_compact(a->q);
        EXPECT_EQ(inode(path_), ino) << "the journal was not replaced";
        EXPECT_GE(size_t(file_size(path_)), big) << "nor cut";
        EXPECT_TRUE(named("s.journal.tmp").empty()) << "the temporary file is removed";
    }
    EXPECT_TRUE(logged("cannot write a snapshot")) << all_logs();
    a->add(cmd({"after"}), 1700000300);   // the old file goes on taking records
    auto b = open_at(path_);
    expect_same_queue(a->q, b->q);
}

TEST_F(JournalTest, AFailedWriteLeavesNoPartOfItsRecord) {
    auto a = open_live();
    a->add(cmd({"a"}), 1700000000);
    std::string before = slurp(path_);
    JobSpec big = cmd({"b"});
    big.argv.push_back(std::string(4000, 'x'));
    JobId id;
    {
        FileSizeLimit full(static_cast<off_t>(before.size()) + 100);   // part of the record fits
        ASSERT_TRUE(full.ok());
        id = a->q.add(big, 1700000001);
        EXPECT_FALSE(a->j->job(*a->q.find(id), false));
        a->q.cancel_add(id);
    }
    EXPECT_EQ(slurp(path_), before) << "the partial record was taken back";
    EXPECT_FALSE(a->j->ok());
    EXPECT_TRUE(a->j->recover(a->q));
    EXPECT_EQ(a->add(cmd({"c"}), 1700000002), id) << "the id is given again: it was never used";
    auto b = open_at(path_);
    expect_same_queue(a->q, b->q);
}

TEST_F(JournalTest, RecordsHiddenInAJobsStringsAreNeverTaken) {
    // Another user's argument holds whole records, made the way a reader
    // resynchronising after damage would look for them; then that user's job
    // record is damaged. The hidden records must not be applied: their CRC
    // does not cover the file's secret salt.
    Job evil;
    evil.id = 500;
    evil.spec = cmd({"sh", "-c", "id > /tmp/pwned"});
    evil.spec.uid = 0;
    std::string plain(12, '\0');   // a CRC without the salt
    std::string body = encode_job(evil);
    uint32_t len = static_cast<uint32_t>(body.size());
    uint16_t type = 2;
    std::memcpy(&plain[0], &len, 4);
    std::memcpy(&plain[8], &type, 2);
    plain += body;
    uint32_t c = crc32(std::string_view(plain).substr(8));
    std::memcpy(&plain[4], &c, 4);
    std::string hidden = plain + journal_record(0, 2, body) + journal_record(~0ull, 2, body);
    // Many more of them (records that cost nothing to replay), so that a
    // reader choosing the way of reading that finds the most records would
    // pick the unsalted one.
    std::string clear_plain(12, '\0');
    uint16_t clear_type = 11;
    std::memcpy(&clear_plain[8], &clear_type, 2);
    uint32_t cc = crc32(std::string_view(clear_plain).substr(8));
    std::memcpy(&clear_plain[4], &cc, 4);
    for (int i = 0; i < 60; ++i) hidden += clear_plain;
    auto a = open_live();
    a->add(cmd({"first"}), 1700000000);
    size_t before = a->j->size();
    JobSpec s = cmd({"echo", hidden});
    s.uid = 4242;
    a->add(s, 1700000001);
    a->add(cmd({"last"}), 1700000002);
    a.reset();
    std::string bytes = slurp(path_);
    // The second job's record: after its environment (two copies, if new) ... find it by its id field.
    for (size_t at = before; at < before + 200 && at < bytes.size(); at += 7) {
        std::string b = bytes;
        b[at] ^= 0x55;
        spit(path_, b);
        logs_.clear();
        auto r = open_live();
        EXPECT_EQ(r->q.find(500), nullptr) << "byte " << at << ": a hidden record was taken\n" << all_logs();
        r.reset();
        for (const auto& n : named("s.journal.bad.")) unlink(dir_.file(n).c_str());
    }
    // The header damaged (the magic, the version, the version set to 1, all
    // of it zeroed): the file is read with its own key, never as format 1.
    struct Damage {
        const char* what;
        std::function<void(std::string&)> apply;
    };
    std::vector<Damage> damage = {
        {"magic", [](std::string& b) { b[0] ^= 0x01; }},
        {"version", [](std::string& b) { b[5] ^= 0x01; }},
        {"version 1", [](std::string& b) { b[4] = 1; }},
        {"zeroed header", [](std::string& b) { std::fill(b.begin(), b.begin() + 32, '\0'); }},
    };
    for (const Damage& d : damage) {
        std::string b = bytes;
        d.apply(b);
        spit(path_, b);
        logs_.clear();
        auto r = open_live();
        EXPECT_EQ(r->q.find(500), nullptr) << d.what << ": a hidden record was taken\n" << all_logs();
        EXPECT_EQ(r->q.size(), 3u) << d.what << ": the file's own records come back\n" << all_logs();
        r.reset();
        for (const auto& n : named("s.journal.bad.")) unlink(dir_.file(n).c_str());
    }
}

TEST_F(JournalTest, ResynchronisingThroughHostileStringsIsCheap) {
    // A job whose argument is 60,000 record headers that claim the rest of
    // the file; its record is damaged, so the reader walks through them.
    // Each must cost a few bytes' work, not a CRC of the rest of the file.
    std::string fake(12, '\0');
    uint32_t len = 1u << 20;
    uint16_t type = 2;
    std::memcpy(&fake[0], &len, 4);
    std::memcpy(&fake[8], &type, 2);
    std::string arg;
    for (int i = 0; i < 60000; ++i) arg += fake;
    arg += std::string(len, 'x');
    auto a = open_live();
    size_t before = a->j->size();
    JobSpec s = cmd({"echo", arg});
    s.env.clear();
    a->add(s, 1700000000);
    a->add(cmd({"after"}), 1700000001);
    a.reset();
    std::string bytes = slurp(path_);
    auto recs = records_in(bytes, before, bytes.size());
    size_t own = std::max_element(recs.begin(), recs.end(), [](const auto& a, const auto& b) {
                     return a.second - a.first < b.second - b.first;
                 })->first;   // the longest
    bytes[own + 4] ^= 0x01;   // the CRC of the hostile job's record
    spit(path_, bytes);
    double start = mono_now();
    auto r = open_live();
    double took = mono_now() - start;
    EXPECT_EQ(r->q.size(), 1u) << all_logs();
    EXPECT_LT(took, 3.0) << "replay took " << took << " s";
}

// ---- GPUs: a running job keeps its cards, and what they put in its environment ----

TEST_F(JournalTest, AStartedJobsGpusSurviveARestart) {
    JobId id;
    {
        auto a = open_live();
        JobSpec s = cmd({"train"});
        s.num_slots = 0;
        s.settings.set_gpus(2);
        id = a->add(s, 1);
        ASSERT_TRUE(a->q.start(id));
        Job* j = a->q.find(id);
        j->gpu().cards = {"GPU-a", "GPU-b"};
        j->gpu().env = {"CUDA_VISIBLE_DEVICES=0,1", "CUDA_DEVICE_ORDER=PCI_BUS_ID", "TS_GPUS=0,1"};
        ASSERT_TRUE(a->j->start(id, true, j->gpus(), j->start_env()));
        JobId queued = a->add(s, 2);   // a GPU job that waits: no cards
        (void)queued;
    }
    auto b = open_live();   // replayed from the records
    const Job* j = b->q.find(id);
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(j->state, JobState::Running);
    EXPECT_EQ(j->gpus(), (std::vector<std::string>{"GPU-a", "GPU-b"}));
    EXPECT_EQ(j->start_env().front(), "CUDA_VISIBLE_DEVICES=0,1");
    EXPECT_EQ(b->q.gpu_jobs_running(), 1u);
    EXPECT_EQ(b->q.gpu_jobs_queued(), 1u);
    EXPECT_TRUE(b->q.find(id + 1)->gpus().empty());
    // And from a snapshot (the job's own fields).
    ASSERT_TRUE(b->j->compact(b->q));
    b.reset();
    auto c = open_live();
    j = c->q.find(id);
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(j->gpus(), (std::vector<std::string>{"GPU-a", "GPU-b"}));
    EXPECT_EQ(j->start_env().size(), 3u);
    EXPECT_EQ(j->spec.settings.gpus(), 2u);
}


// ------------------------------------------------------- the queue's settings

TEST(JournalQueueSettings, RoundTrip) {
    for (const QueueSettings& s : {QueueSettings{}, QueueSettings{{"TS_FSYNC", "1"}},
                                   QueueSettings{{"TS_VISIBLE_DEVICES", "1,0"}, {"TS_NVIDIA_SMI", ""},
                                                 {"TS_SAVELIST", "/a b=c\n"}, {"TS_FROM_A_LATER_TS", "x"}}}) {
        QueueSettings back{{"TS_STALE", "1"}};
        ASSERT_TRUE(decode_queue_settings(encode_queue_settings(s), &back));
        EXPECT_EQ(back, s);
    }
}

TEST(JournalQueueSettings, UnknownFieldsAreSkippedAndBadOnesRefused) {
    auto field = [](uint16_t tag, const std::string& v) {
        std::string f(reinterpret_cast<const char*>(&tag), 2);
        uint32_t n = static_cast<uint32_t>(v.size());
        f.append(reinterpret_cast<const char*>(&n), 4);
        return f + v;
    };
    QueueSettings s{{"TS_FSYNC", "1"}, {"TS_GPU_SLOTS", "2"}};
    std::string bytes = encode_queue_settings(s);
    QueueSettings back;
    ASSERT_TRUE(decode_queue_settings(field(7, "a later field") + bytes + field(0xFFFF, ""), &back));
    EXPECT_EQ(back, s);
    // No fields at all: a record that sets nothing (every setting at its default).
    ASSERT_TRUE(decode_queue_settings("", &back));
    EXPECT_TRUE(back.empty());
    // Fields that do not add up, and values that are not NAME=value.
    back = s;
    for (size_t cut = 1; cut < bytes.size(); ++cut)
        EXPECT_FALSE(decode_queue_settings(bytes.substr(0, cut), &back)) << cut;
    TailWriter t;
    t.add("TS_FSYNC");
    EXPECT_FALSE(decode_queue_settings(field(1, t.str()), &back));
    TailWriter u;
    u.add("=1");
    EXPECT_FALSE(decode_queue_settings(field(1, u.str()), &back));
    EXPECT_EQ(back, s) << "a refused record changes nothing";
}

TEST_F(JournalTest, AJournalWithoutSettingsHasNone) {
    {
        auto a = open_live();
        EXPECT_FALSE(a->j->settings());
        a->add(cmd({"true"}), 1);
    }
    auto b = open_live();
    EXPECT_TRUE(b->j->replayed_anything());
    EXPECT_FALSE(b->j->settings()) << "a journal of a ts before settings: the queue has none yet";
}

TEST_F(JournalTest, TheQueuesSettingsComeBackFromRecordsAndSnapshots) {
    QueueSettings first{{"TS_FSYNC", "1"}, {"TS_VISIBLE_DEVICES", "1"}};
    QueueSettings second{{"TS_GPU_SLOTS", "2"}};
    {
        auto a = open_live();
        ASSERT_TRUE(a->j->set_settings(first));
        a->add(cmd({"true"}), 1);
        ASSERT_TRUE(a->j->set_settings(second));   // the last record wins
    }
    {
        auto b = open_live();   // from the records; its start writes a snapshot
        ASSERT_TRUE(b->j->settings());
        EXPECT_EQ(*b->j->settings(), second);
        ASSERT_TRUE(b->j->compact(b->q));
    }
    auto c = open_live();   // from the snapshot
    ASSERT_TRUE(c->j->settings());
    EXPECT_EQ(*c->j->settings(), second);
    EXPECT_EQ(c->q.size(), 1u);
    EXPECT_TRUE(logs_.empty()) << all_logs();
    // Settings that set nothing are settings too (all defaults), not none.
    ASSERT_TRUE(c->j->set_settings({}));
    c.reset();
    auto d = open_live();
    ASSERT_TRUE(d->j->settings());
    EXPECT_TRUE(d->j->settings()->empty());
}

// ---- one bad sector, or one bad 4 KiB region, costs only the records in it ----

namespace {

/* A record of an intact journal: where it lies, its type (the journal's
 * numbers), the jobs it is about, and the slot count it carries (a meta or
 * slots record; else 0). */
struct RecordAt {
    size_t off = 0, len = 0;
    uint16_t type = 0;
    std::vector<JobId> jobs;
    int slots = 0;
    uint32_t env = 0;   // an environment record's id
};

std::vector<RecordAt> records_of(const std::string& file) {
    std::vector<RecordAt> out;
    size_t off = 32;
    while (off + 12 <= file.size()) {
        RecordAt r;
        uint32_t len = 0;
        std::memcpy(&len, file.data() + off, 4);
        std::memcpy(&r.type, file.data() + off + 8, 2);
        r.off = off;
        r.len = 12 + size_t(len);
        if (off + r.len > file.size()) break;
        std::string_view body(file.data() + off + 12, len);
        int32_t a = 0, b = 0;
        if (body.size() >= 4) std::memcpy(&a, body.data(), 4);
        if (body.size() >= 8) std::memcpy(&b, body.data() + 4, 4);
        switch (r.type) {
        case 1:   // meta: next id, last errorlevel, last finished id, slots
            if (body.size() >= 16) std::memcpy(&r.slots, body.data() + 12, 4);
            break;
        case 2: {   // a job: its first field is its id
            uint16_t tag = 0;
            std::memcpy(&tag, body.data(), 2);
            EXPECT_EQ(tag, 1);
            std::memcpy(&a, body.data() + 6, 4);
            r.jobs = {a};
            break;
        }
        case 9: case 14: r.jobs = {a, b}; break;   // a swap, a move before
        case 10: r.slots = a; break;
        case 11: ADD_FAILURE() << "a -C record: this scenario has none"; break;
        case 13: r.env = uint32_t(a); break;
        default:
            if (r.type <= 15) r.jobs = {a};   // about one job
            break;
        }
        out.push_back(r);
        off += r.len;
    }
    EXPECT_EQ(off, file.size()) << "the records do not add up to the file";
    return out;
}

/* A queue as a busy user has it: 42 jobs of one shell (one environment of
 * 30 variables), jobs with environments of their own and without one,
 * finished, running and queued jobs, a dependent, a slot count; a snapshot,
 * then records appended after it (jobs, a start, an end, -u, -S, a job added
 * and removed). Without the snapshot, every record is appended. Returns the
 * next id at the snapshot. */
JobId build_busy_queue(Live& a, bool snapshot) {
    double t = 1700000000.5;
    a.slots(3);
    JobSpec shell = cmd({"make", "-C", "src"});
    for (int i = 0; i < 30; ++i) shell.env.push_back(format("VAR_%02d=/some/fairly/long/value/%d", i, i * 7));
    std::vector<JobId> mine;
    for (int i = 0; i < 42; ++i) {
        JobSpec s = shell;
        s.argv.push_back(std::to_string(i));
        mine.push_back(a.add(s, t + i));
    }
    for (int i = 0; i < 4; ++i) {
        JobSpec s = cmd({"own", std::to_string(i)});
        s.env.push_back(format("OWN=%d", i));
        a.add(s, t + 50 + i);
    }
    JobSpec bare = cmd({"bare"});
    bare.env.clear();
    a.add(bare, t + 60);
    JobSpec dep = shell;
    dep.argv = {"after", "five"};
    dep.depends = true;
    dep.depend_on = mine[5];
    a.add(dep, t + 61);
    // 0-2 run and end (1 fails), 3-5 keep running.
    t = settle(a, t + 70, {{mine[1], result(1, 0, false, 0.5, 0.25, 0.125)}}, {mine[3], mine[4], mine[5]});
    if (snapshot) {
        EXPECT_TRUE(a.j->compact(a.q));
    }
    JobId at_snapshot = snapshot ? a.q.meta().next_id : 0;
    for (int i = 0; i < 5; ++i) {
        JobSpec s = shell;
        s.argv.push_back(format("late %d", i));
        a.add(s, t + i);
    }
    JobSpec late = cmd({"late", "own"});
    late.env.push_back("LATE=1");
    a.add(late, t + 10);
    a.finish(mine[3], result(0, 0, false, 2, 1, 0.5), t + 11);
    EXPECT_TRUE(a.urgent(mine[40]));
    a.slots(4);
    server_round(a, t + 12, {}, {mine[6], mine[7]});   // 6 and 7 start
    JobId gone = a.add(cmd({"gone"}), t + 13);   // the highest id, removed
    EXPECT_TRUE(a.remove(gone));
    return at_snapshot;
}

std::vector<JobId> only(const std::vector<JobId>& l, const std::set<JobId>& hit) {
    std::vector<JobId> out;
    for (JobId id : l)
        if (!hit.count(id)) out.push_back(id);
    return out;
}

}  // namespace

class JournalDamageTest : public JournalTest, public ::testing::WithParamInterface<bool> {};

TEST_P(JournalDamageTest, AZeroedSectorOrRegionCostsOnlyTheRecordsInIt) {
    JobId at_snapshot;
    {
        auto a = open_live();
        at_snapshot = build_busy_queue(*a, GetParam());
    }
    const std::string bytes = slurp(path_);
    ASSERT_GT(bytes.size(), 3 * 4096u);
    const std::vector<RecordAt> recs = records_of(bytes);
    // What that costs: an environment is written four times at most (the
    // first copy, then one after each of at most three jobs), and besides
    // the meta record at 32 there are two pads and two anchors.
    std::map<uint32_t, int> copies;
    size_t metas = 0;
    for (const RecordAt& r : recs) {
        if (r.type == 13) ++copies[r.env];
        metas += r.type == 1;
    }
    ASSERT_FALSE(copies.empty());
    for (const auto& [id, n] : copies) EXPECT_LE(n, 4) << "environment " << id;
    EXPECT_EQ(metas, 5u);
    std::string ref_path = dir_.file("ref.journal");
    spit(ref_path, bytes);
    auto ref = open_at(ref_path);   // the undamaged replay
    unlink(ref_path.c_str());
    const Queue& want = ref->q;
    ASSERT_EQ(want.max_slots(), 4);
    std::vector<JobId> all = ids(want.active());
    for (JobId id : want.finished_list()) all.push_back(id);
    ASSERT_GE(all.size(), 48u);

    auto zero = [&](size_t z, size_t z_end) {
            SCOPED_TRACE(format("bytes %zu-%zu zeroed", z, z_end));
            std::string b = bytes;
            std::fill(b.begin() + long(z), b.begin() + long(z_end), '\0');
            // The jobs with a record in the zeroed bytes, and their dependents.
            std::set<JobId> hit, seen;
            int slots = 0;   // the slot count of the last intact record that carries one
            for (const RecordAt& r : recs) {
                bool in = r.off < z_end && r.off + r.len > z;
                for (JobId id : r.jobs) (in ? hit : seen).insert(id);
                if (!in && r.slots) slots = r.slots;
            }
            for (bool more = true; more;) {
                more = false;
                for (JobId id : all) {
                    const Job* j = want.find(id);
                    if (!hit.count(id) && j->depends && hit.count(j->depend_on)) more = hit.insert(id).second;
                }
            }
            for (const auto& n : named("s.journal.bad.")) unlink(dir_.file(n).c_str());
            spit(path_, b);
            logs_.clear();
            auto d = open_live();
            const Queue& got = d->q;
            size_t kept = 0;
            for (JobId id : all) {
                if (hit.count(id)) continue;
                const Job* j = got.find(id);
                ASSERT_NE(j, nullptr) << "job " << id << " is lost, but none of its records was damaged\n" << all_logs();
                expect_same_job(*want.find(id), *j);
                // A finished job's environment (kept for --requeue) may go with a
                // damaged copy of it; the job stays, and --requeue refuses it.
                bool ended = j->state == JobState::Finished || j->state == JobState::Skipped;
                if (!ended || j->env) {
                    ASSERT_EQ(bool(j->env), bool(want.find(id)->env)) << "job " << id;
                }
                if (j->env) {
                    EXPECT_EQ(*j->env, *want.find(id)->env) << "job " << id;
                }
                ++kept;
            }
            for (const std::list<JobId>* l : {&got.active(), &got.finished_list()})
                for (JobId id : *l)
                    EXPECT_TRUE(want.find(id) || hit.count(id)) << "job " << id << " came back from nowhere";
            EXPECT_EQ(only(ids(got.active()), hit), only(ids(want.active()), hit));
            EXPECT_EQ(only(ids(got.finished_list()), hit), only(ids(want.finished_list()), hit));
            // The next id never goes back: past every id an intact record names.
            JobId next = got.meta().next_id;
            EXPECT_GE(next, at_snapshot);
            for (JobId id : seen) EXPECT_GT(next, id) << "job " << id << "'s id would be given again";
            // The slot count is kept: some record that carries it is always intact.
            EXPECT_NE(slots, 0) << "every record of the slot count was in the zeroed bytes";
            EXPECT_EQ(got.max_slots(), slots);
            EXPECT_GE(kept + hit.size(), all.size());
    };
    for (size_t unit : {size_t(512), size_t(4096)})
        for (size_t z = 0; z < bytes.size(); z += unit) zero(z, std::min(z + unit, bytes.size()));
}

INSTANTIATE_TEST_SUITE_P(SnapshotOrAppended, JournalDamageTest, ::testing::Bool());

/* The queue's settings, which every job needs, survive any one zeroed sector
 * or region: journaled at a queue's first start (one record appended), with
 * jobs appended after it, or written by a snapshot. */
TEST_P(JournalDamageTest, AZeroedSectorOrRegionNeverTakesTheQueuesSettings) {
    const QueueSettings mine{{"TS_FSYNC", "1"}, {"TS_VISIBLE_DEVICES", "0,1"}};
    {
        auto a = open_live();
        ASSERT_TRUE(a->j->set_settings(mine));
        JobSpec s = cmd({"make"});
        for (int i = 0; i < 20; ++i) s.env.push_back(format("VAR_%02d=/some/value/%d", i, i));
        for (int i = 0; a->j->size() < 4 * 4096; ++i) {
            s.argv = {"make", std::to_string(i)};
            a->add(s, 1700000000 + i);
        }
        if (GetParam()) {
            ASSERT_TRUE(a->j->compact(a->q));
        }
    }
    const std::string bytes = slurp(path_);
    for (size_t unit : {size_t(512), size_t(4096)})
        for (size_t z = 0; z < bytes.size(); z += unit) {
            SCOPED_TRACE(format("bytes %zu-%zu zeroed", z, z + unit));
            std::string b = bytes;
            std::fill(b.begin() + long(z), b.begin() + long(std::min(z + unit, b.size())), '\0');
            for (const auto& n : named("s.journal.bad.")) unlink(dir_.file(n).c_str());
            spit(path_, b);
            auto d = open_live();
            ASSERT_TRUE(d->j->settings()) << "the queue's settings were lost\n" << all_logs();
            EXPECT_EQ(*d->j->settings(), mine);
        }
}

// ts --reconfigure on a queue with jobs: no zeroed block brings the old
// settings back (their copies are gone with a snapshot, not left beside the new).
TEST_F(JournalTest, ChangedSettingsNeverComeBackFromAZeroedBlock) {
    const QueueSettings old{{"TS_FSYNC", "1"}}, now{{"TS_GPU_SLOTS", "2"}};
    {
        auto a = open_live();
        ASSERT_TRUE(a->j->set_settings(old));
        JobSpec s = cmd({"make"});
        for (int i = 0; a->j->size() < 3 * 4096; ++i) {
            s.argv = {"make", std::to_string(i)};
            a->add(s, 1700000000 + i);
        }
        ASSERT_TRUE(a->j->set_settings(now));
    }
    const std::string bytes = slurp(path_);
    for (size_t z = 0; z < bytes.size(); z += 512) {
        SCOPED_TRACE(format("bytes %zu-%zu zeroed", z, z + 512));
        std::string b = bytes;
        std::fill(b.begin() + long(z), b.begin() + long(std::min(z + 512, b.size())), '\0');
        for (const auto& n : named("s.journal.bad.")) unlink(dir_.file(n).c_str());
        spit(path_, b);
        auto d = open_live();
        ASSERT_TRUE(d->j->settings()) << all_logs();
        EXPECT_EQ(*d->j->settings(), now);
    }
}

TEST_F(JournalTest, AnIdWhoseJobRecordIsLostIsNotGivenAgain) {
    // The newest job was removed; its own record is damaged, the removal is
    // not: the next id still goes past it. (Past offset 512 first: the meta
    // record there would say so too.)
    size_t before;
    JobId gone;
    {
        auto a = open_live();
        while (a->j->size() < 1024) a->add(cmd({"a"}), 1700000000);
        before = a->j->size();
        gone = a->add(cmd({"gone"}), 1700000001);
        ASSERT_TRUE(a->remove(gone));
    }
    std::string bytes = slurp(path_);
    std::pair<size_t, size_t> job{0, 0};
    for (auto rec : records_in(bytes, before, bytes.size()))
        if (bytes[rec.first + 8] == 2) job = rec;   // a job record (type 2): the last is "gone"'s
    ASSERT_GT(job.second, job.first);
    std::fill(bytes.begin() + long(job.first), bytes.begin() + long(job.second), '\0');
    spit(path_, bytes);
    auto r = open_live();
    EXPECT_EQ(r->q.size(), size_t(gone)) << all_logs();
    EXPECT_EQ(r->q.meta().next_id, gone + 1) << all_logs();
    EXPECT_TRUE(logged(format("whose own record was lost: %d", gone))) << all_logs();
}

/* The record types, as the file has them: a number keeps its meaning for
 * ever (an older or newer ts reads the same file). */
TEST(JournalRecordTypes, EveryTypeHasARowAndKeepsItsNumber) {
    const char* names[] = {"meta",     "job",    "start",   "runner", "started",    "finished",
                           "removed",  "urgent", "swap",    "slots",  "clear",      "admitted",
                           "env",      "move-before",       "unstarted", "settings", "drain",
                           "hold", "retry"};
    std::set<std::string> seen;
    for (uint16_t t = 1; t <= std::size(names); ++t) {
        const char* n = journal_record_name(t);
        ASSERT_NE(n, nullptr) << "type " << t << " has no row";
        EXPECT_STREQ(n, names[t - 1]) << "type " << t;
        EXPECT_TRUE(seen.insert(n).second) << n << " twice";
    }
    EXPECT_EQ(journal_record_name(0), nullptr);
    EXPECT_EQ(journal_record_name(uint16_t(std::size(names) + 1)), nullptr);
    EXPECT_EQ(journal_record_name(0xFFFF), nullptr);
}

/* A journal of one job, then `rec` (made with the file's own salt by
 * make), then a job with id 7: the reader's view of a record it meets
 * between two good ones. */
class JournalRecordBetween : public JournalTest {
protected:
    std::unique_ptr<Live> replay(const std::function<std::string(uint64_t salt)>& make) {
        unlink(path_.c_str());   // (the last case's)
        {
            auto a = open_live();
            a->add(cmd({"first"}), 1700000000);
        }
        std::string bytes = slurp(path_);
        uint64_t salt;
        std::memcpy(&salt, bytes.data() + 8, 8);
        Job after;
        after.id = 7;
        after.spec = cmd({"after"});
        bytes += make(salt) + journal_record(salt, 2, encode_job(after));
        spit(path_, bytes);
        logs_.clear();
        return open_live();
    }
};

TEST_F(JournalRecordBetween, AnUnknownTypeIsDamageAndReadingGoesOn) {
    for (uint16_t type : {uint16_t(0), uint16_t(64), uint16_t(0xFFFF)}) {   // 64: past every type there is
        auto r = replay([&](uint64_t salt) { return journal_record(salt, type, "abcd"); });
        EXPECT_EQ(r->q.size(), 2u) << "type " << type << "\n" << all_logs();
        EXPECT_NE(r->q.find(7), nullptr) << "type " << type;
        EXPECT_TRUE(logged("16 damaged bytes at offset")) << "type " << type << "\n" << all_logs();
        EXPECT_FALSE(logged("could not be applied")) << "type " << type << "\n" << all_logs();
        r.reset();
        for (const auto& n : named("s.journal.bad.")) unlink(dir_.file(n).c_str());
    }
}

TEST_F(JournalRecordBetween, AKnownTypeTooShortIsNotAppliedAndReadingGoesOn) {
    for (uint16_t type = 1; type <= 16; ++type) {
        auto r = replay([&](uint64_t salt) { return journal_record(salt, type, "abc"); });
        EXPECT_NE(r->q.find(7), nullptr) << "type " << type << "\n" << all_logs();
        // A clear has no body: a format 2 reader skips what it does not know.
        bool applies = type == 11;
        EXPECT_EQ(logged("1 record could not be applied"), !applies) << "type " << type << "\n" << all_logs();
        EXPECT_FALSE(logged("damaged bytes")) << "type " << type << "\n" << all_logs();
        r.reset();
        for (const auto& n : named("s.journal.bad.")) unlink(dir_.file(n).c_str());
    }
}
