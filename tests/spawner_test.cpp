/*
 * spawner_test.cpp — spare runners (spawner.h): the Assign frame that hands
 * a job to a spare (encode_assign / decode_assign), and the server's side of
 * the exchange through a ServerHarness: a spare connection says Spare, the
 * server gives it the next job that starts (Assign), and from then on it is
 * that job's runner (Started, Finished, Done).
 *
 * The harness has no spawner and forks nothing: every "spare" here is a
 * socketpair of the test's; a job that finds no spare gets a forked runner,
 * which in a harness is none at all (the job is lost at the next round).
 */
#include <gtest/gtest.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "frame.h"
#include "harness_client.h"
#include "jobs.h"
#include "protocol.h"
#include "server.h"

namespace {

using proto::MsgType;

uid_t owner = 0;   // the job owner decode_assign reports (checked in CarriesTheOwner)

Frame frame_of(const std::string& bytes) {
    Frame f;
    size_t used = 0;
    EXPECT_EQ(parse_frame(bytes, &f, &used), ParseStatus::Ok);
    EXPECT_EQ(used, bytes.size());
    return f;
}

/* A job as a client would submit it, with a bit of everything. */
JobSpec full_spec() {
    JobSpec s;
    s.argv = {"sh", "-c", "echo \"$1\"; exit 3", "x", "", std::string("a\nb\0c", 5), "ümlaut"};
    s.env = {"PATH=/usr/bin:/bin", "TMPDIR=/tmp/elsewhere", "EMPTY=", "X=a=b=c"};
    s.cwd = "/some/dir with spaces";
    s.label = "my label";
    s.env_info = "env info\n";
    s.flags = proto::kStoreOutput | proto::kKeepFinished | proto::kGzip | proto::kStderrApart |
              proto::kMail;
    s.num_slots = 3;
    s.depends = true;
    s.depend_on = 17;
    s.umask = 027;
    s.nice = 5;
    s.settings.set_u32(0x7001, 2);
    s.settings.set_bytes(0x8001, "a hint");
    return s;
}

void expect_same_spec(const JobSpec& got, const JobSpec& want) {
    EXPECT_EQ(got.argv, want.argv);
    EXPECT_EQ(got.env, want.env);
    EXPECT_EQ(got.cwd, want.cwd);
    EXPECT_EQ(got.label, want.label);
    EXPECT_EQ(got.env_info, want.env_info);
    EXPECT_EQ(got.flags, want.flags);
    EXPECT_EQ(got.num_slots, want.num_slots);
    EXPECT_EQ(got.depends, want.depends);
    EXPECT_EQ(got.depend_on, want.depend_on);
    EXPECT_EQ(got.umask, want.umask);
    EXPECT_EQ(got.nice, want.nice);
    EXPECT_TRUE(got.settings == want.settings);
}

std::string u32(uint32_t n) { return std::string(reinterpret_cast<const char*>(&n), sizeof n); }

/* An Assign frame built by hand: JobRef{id}, then the given tail bytes. */
Frame assign_frame(int32_t id, const std::string& tail, MsgType type = MsgType::Assign) {
    proto::JobRef r{};
    r.id = id;
    Frame f;
    f.version = proto::kVersion;
    f.type = type;
    f.payload.assign(reinterpret_cast<const char*>(&r), sizeof r);
    f.payload += tail;
    return f;
}
/* A tail holding one string. */
std::string one_string(const std::string& s) { return u32(static_cast<uint32_t>(s.size())) + s; }

}  // namespace

// ------------------------------------------------------------- the Assign frame

TEST(AssignFrame, RoundTripsEveryPartOfTheJob) {
    JobSpec want = full_spec();
    for (JobId id : {0, 1, 4242, 1 << 24, INT_MAX}) {
        std::string bytes = encode_assign(id, want);
        Frame f = frame_of(bytes);
        EXPECT_EQ(f.type, MsgType::Assign);
        EXPECT_EQ(static_cast<uint16_t>(f.type), 214);
        JobId got_id = -7;
        JobSpec got;
        ASSERT_TRUE(decode_assign(f, &got_id, &got, &owner)) << "id " << id;
        EXPECT_EQ(got_id, id);
        expect_same_spec(got, want);
    }
}

TEST(AssignFrame, RoundTripsAPlainJob) {
    JobSpec want;
    want.argv = {"true"};
    want.cwd = "/";
    JobId id = -1;
    JobSpec got;
    ASSERT_TRUE(decode_assign(frame_of(encode_assign(0, want)), &id, &got, &owner));
    EXPECT_EQ(id, 0);
    expect_same_spec(got, want);
    EXPECT_TRUE(got.env.empty());
    EXPECT_FALSE(got.label.has_value());
    EXPECT_FALSE(got.env_info.has_value());
    EXPECT_FALSE(got.depends);
}

TEST(AssignFrame, CarriesTheOwner) {
    JobSpec want;
    want.argv = {"true"};
    want.cwd = "/";
    want.uid = 4002;
    JobId id = -1;
    JobSpec got;
    owner = 0;
    ASSERT_TRUE(decode_assign(frame_of(encode_assign(1, want)), &id, &got, &owner));
    EXPECT_EQ(owner, 4002u);   // a spare of another uid refuses it
    EXPECT_EQ(got.uid, 4002u);
}

TEST(AssignFrame, RoundTripsANoOutputJob) {
    JobSpec want;
    want.argv = {"echo", "hi"};
    want.cwd = "/tmp";
    want.flags = 0;   // -n -f would be client-held, but -n alone: no file
    JobId id = -1;
    JobSpec got;
    ASSERT_TRUE(decode_assign(frame_of(encode_assign(9, want)), &id, &got, &owner));
    EXPECT_EQ(id, 9);
    EXPECT_FALSE(got.stores_output());
    EXPECT_EQ(got.flags, 0u);
}

TEST(AssignFrame, TheTailIsTheJobsSubmitFrame) {
    JobSpec s = full_spec();
    Frame f = frame_of(encode_assign(5, s));
    EXPECT_EQ(f.payload, assign_frame(5, one_string(encode_submit(s))).payload);
}

TEST(AssignFrame, RefusesAnotherType) {
    JobSpec s = full_spec();
    Frame good = frame_of(encode_assign(3, s));
    for (MsgType t : {MsgType::Submit, MsgType::Run, MsgType::SubmitOk, MsgType::Spare,
                      static_cast<MsgType>(215)}) {
        Frame f = good;
        f.type = t;
        JobId id = -1;
        JobSpec got;
        EXPECT_FALSE(decode_assign(f, &id, &got, &owner)) << "type " << static_cast<int>(t);
    }
}

TEST(AssignFrame, RefusesANegativeId) {
    JobSpec s = full_spec();
    for (int32_t bad : {-1, -2, INT_MIN}) {
        JobId id = 77;
        JobSpec got;
        EXPECT_FALSE(decode_assign(frame_of(encode_assign(bad, s)), &id, &got, &owner)) << bad;
        EXPECT_FALSE(decode_assign(assign_frame(bad, one_string(encode_submit(s))), &id, &got, &owner)) << bad;
    }
}

TEST(AssignFrame, RefusesATruncatedFrame) {
    JobSpec s = full_spec();
    Frame good = frame_of(encode_assign(3, s));
    ASSERT_GT(good.payload.size(), sizeof(proto::JobRef) + 4);
    // Every shorter payload: no body, part of the body, no tail, part of the tail.
    for (size_t n = 0; n < good.payload.size(); ++n) {
        Frame f = good;
        f.payload.resize(n);
        JobId id = -1;
        JobSpec got;
        EXPECT_FALSE(decode_assign(f, &id, &got, &owner)) << "payload cut to " << n << " bytes";
    }
    // A length that claims more than the tail holds.
    std::string sub = encode_submit(s);
    JobId id = -1;
    JobSpec got;
    EXPECT_FALSE(decode_assign(assign_frame(3, u32(uint32_t(sub.size() + 1)) + sub), &id, &got, &owner));
    EXPECT_FALSE(decode_assign(assign_frame(3, u32(0xffffffffu) + sub), &id, &got, &owner));
    // The inner Submit cut short inside a correctly counted string.
    EXPECT_FALSE(decode_assign(assign_frame(3, one_string(sub.substr(0, sub.size() - 1))), &id, &got, &owner));
    EXPECT_FALSE(decode_assign(assign_frame(3, one_string(sub.substr(0, 8))), &id, &got, &owner));
    EXPECT_FALSE(decode_assign(assign_frame(3, one_string("")), &id, &got, &owner));
}

TEST(AssignFrame, RefusesTrailingBytes) {
    JobSpec s = full_spec();
    std::string sub = encode_submit(s);
    JobId id = -1;
    JobSpec got;
    ASSERT_TRUE(decode_assign(assign_frame(3, one_string(sub)), &id, &got, &owner));
    // After the one string of the tail.
    for (const std::string& extra : {std::string(1, '\0'), std::string("x"), one_string(""), one_string(sub)}) {
        EXPECT_FALSE(decode_assign(assign_frame(3, one_string(sub) + extra), &id, &got, &owner))
            << extra.size() << " bytes after the tail";
    }
    // Inside the string, after the inner frame.
    EXPECT_FALSE(decode_assign(assign_frame(3, one_string(sub + "x")), &id, &got, &owner));
    EXPECT_FALSE(decode_assign(assign_frame(3, one_string(sub + sub)), &id, &got, &owner));
}

TEST(AssignFrame, RefusesAnInnerFrameThatIsNotASubmit) {
    JobSpec s = full_spec();
    std::string sub = encode_submit(s);
    Frame inner = frame_of(sub);
    JobId id = -1;
    JobSpec got;
    // The Submit's own payload under other types.
    for (MsgType t : {MsgType::Assign, MsgType::Run, MsgType::Text, MsgType::State}) {
        std::string other = encode_frame(t, inner.payload.data(), inner.payload.size());
        EXPECT_FALSE(decode_assign(assign_frame(3, one_string(other)), &id, &got, &owner)) << int(t);
    }
    proto::JobRef r{};
    r.id = 3;
    EXPECT_FALSE(decode_assign(assign_frame(3, one_string(encode(MsgType::State, r))), &id, &got, &owner));
    EXPECT_FALSE(decode_assign(assign_frame(3, one_string(encode_empty(MsgType::Spare))), &id, &got, &owner));
    // An Assign in an Assign.
    EXPECT_FALSE(decode_assign(assign_frame(3, one_string(encode_assign(3, s))), &id, &got, &owner));
    // A Submit of another version.
    std::string v2 = encode_frame(MsgType::Submit, inner.payload.data(), inner.payload.size(), {},
                                  proto::kVersion + 1);
    JobId id2 = -1;
    bool took = decode_assign(assign_frame(3, one_string(v2)), &id2, &got, &owner);
    (void)took;   // not specified either way; must not crash
    // A Submit that does not decode (no argv).
    JobSpec none = s;
    none.argv.clear();
    EXPECT_FALSE(decode_assign(assign_frame(3, one_string(encode_submit(none))), &id, &got, &owner));
    // Not a frame at all.
    EXPECT_FALSE(decode_assign(assign_frame(3, one_string("garbage that is no frame")), &id, &got, &owner));
}

// ---------------------------------------------------------- the server and spares

namespace {

class SpawnerServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        char templ[] = "/tmp/ts-spawner-test.XXXXXX";
        ASSERT_NE(mkdtemp(templ), nullptr);
        dir_ = templ;
        setenv("TS_JOURNAL", "0", 1);
        unsetenv("TS_SLOTS");
        unsetenv("TS_MAXCONN");
        h_ = std::make_unique<ServerHarness>(dir_ + "/s");
    }
    void TearDown() override {
        h_.reset();
        std::string cmd = "rm -rf '" + dir_ + "'";
        ASSERT_EQ(system(cmd.c_str()), 0);
    }

    void rounds(int n = 2) {
        for (int i = 0; i < n; ++i) h_->round();
    }
    static void send(const Fd& c, const std::string& bytes) { send_bytes(c, bytes); }
    static Received receive(const Fd& c) { return receive_now(c); }
    /* A connection of this uid that has said Spare (and the rounds that read it). */
    Fd spare(uid_t uid = getuid()) {
        Fd c = h_->connect(uid);
        send(c, encode_empty(MsgType::Spare));
        rounds();
        return c;
    }
    /* Send a request on a new connection; its whole reply. */
    std::vector<Frame> ask(const std::string& bytes, uid_t uid = getuid()) {
        Fd c = h_->connect(uid);
        send(c, bytes);
        rounds();
        Received r = receive(c);
        EXPECT_TRUE(r.closed);
        return r.frames;
    }
    JobSpec job(const std::vector<std::string>& argv) {
        JobSpec s;
        s.argv = argv;
        s.env = {"PATH=/usr/bin:/bin", "TMPDIR=" + dir_, "FOO=bar baz"};
        s.cwd = dir_;
        s.num_slots = 1;
        return s;
    }
    JobId submit(const JobSpec& s) {
        std::vector<Frame> r = ask(encode_submit(s));
        EXPECT_EQ(r.size(), 1u);
        if (r.size() != 1) return -1;
        EXPECT_EQ(r[0].type, MsgType::SubmitOk);
        proto::JobRef ref{};
        EXPECT_TRUE(decode_body(r[0], &ref));
        return ref.id;
    }
    void set_slots(int n) {
        proto::Slots s{};
        s.n = n;
        std::vector<Frame> r = ask(encode(MsgType::SetSlots, s));
        ASSERT_EQ(r.size(), 1u);
        EXPECT_EQ(r[0].type, MsgType::Done);
    }
    /* The job's state through a State request. */
    int state(JobId id) {
        proto::JobRef ref{};
        ref.id = id;
        std::vector<Frame> r = ask(encode(MsgType::State, ref));
        if (r.size() != 1 || r[0].type != MsgType::StateReply) return -1;
        proto::StateBody s{};
        EXPECT_TRUE(decode_body(r[0], &s));
        return s.state;
    }
    /* Fields of the job's line in the list: id, state, output, [E-Level ...]. */
    std::vector<std::string> list_fields(JobId id) {
        std::istringstream in(h_->list());
        std::string line;
        while (std::getline(in, line)) {
            std::istringstream w(line);
            std::vector<std::string> f;
            std::string x;
            while (w >> x) f.push_back(x);
            if (!f.empty() && f[0] == std::to_string(id)) return f;
        }
        return {};
    }
    /* The one Assign that c received, decoded; false if there is not exactly one frame, an Assign. */
    static bool got_assign(const Received& r, JobId* id, JobSpec* spec) {
        EXPECT_EQ(r.frames.size(), 1u);
        if (r.frames.size() != 1) return false;
        EXPECT_EQ(r.frames[0].type, MsgType::Assign);
        uid_t owner = 0;
        return decode_assign(r.frames[0], id, spec, &owner);
    }
    /* The id of the job assigned to spare c since the last look (-1: none, or more than an Assign). */
    static JobId assigned(const Fd& c, JobSpec* spec = nullptr) {
        JobId id = -1;
        JobSpec s;
        return got_assign(receive(c), &id, spec ? spec : &s) ? id : -1;
    }
    void started(const Fd& c, pid_t pid, const std::string& out) {
        proto::StartedBody b{};
        b.pid = pid;
        b.start_us = 1700000000000000;
        send(c, encode(MsgType::Started, b, out));
    }
    void finished(const Fd& c, int errorlevel) {
        JobResult r;
        r.errorlevel = errorlevel;
        r.real = 0.5;
        send(c, encode(MsgType::Finished, finished_body(r, 1700000001.0)));
    }

    std::string dir_;
    std::unique_ptr<ServerHarness> h_;
};

}  // namespace

TEST_F(SpawnerServerTest, ASpareGetsNothingUntilAJobStarts) {
    Fd s = spare();
    rounds(3);
    Received r = receive(s);
    EXPECT_TRUE(r.frames.empty());
    EXPECT_TRUE(r.rest.empty());
    EXPECT_FALSE(r.closed) << "an idle spare's connection stays open";
    // A job that does not fit (more slots than there are) does not start either.
    JobSpec big = job({"big"});
    big.num_slots = 2;
    JobId id = submit(big);
    rounds();
    r = receive(s);
    EXPECT_TRUE(r.frames.empty());
    EXPECT_FALSE(r.closed);
    EXPECT_EQ(state(id), proto::kQueued);
}

TEST_F(SpawnerServerTest, AStartedJobIsAssignedToTheSpare) {
    Fd s = spare();
    JobSpec want = job({"sh", "-c", "echo hi; exit 3", "x", "two words"});
    want.label = "lab";
    JobId id = submit(want);
    ASSERT_EQ(id, 0);
    rounds();
    Received r = receive(s);
    JobId got_id = -1;
    JobSpec got;
    ASSERT_TRUE(got_assign(r, &got_id, &got)) << "the spare got no Assign for the job";
    EXPECT_FALSE(r.closed) << "the runner's connection stays open";
    EXPECT_EQ(got_id, id);
    EXPECT_EQ(got.argv, want.argv);
    EXPECT_EQ(got.env, want.env) << "the job's environment goes with it";
    EXPECT_EQ(got.cwd, want.cwd);
    EXPECT_EQ(got.label, want.label);
    EXPECT_EQ(got.flags, want.flags);
    EXPECT_EQ(got.num_slots, 1);
    EXPECT_EQ(state(id), proto::kRunning);
    std::vector<std::string> f = list_fields(id);
    ASSERT_GE(f.size(), 2u) << h_->list();
    EXPECT_EQ(f[1], "running") << h_->list();
    // Still running a few rounds later: the job is not lost while its runner starts it.
    rounds(3);
    EXPECT_EQ(state(id), proto::kRunning);
    EXPECT_TRUE(receive(s).frames.empty());
}

TEST_F(SpawnerServerTest, TheAssignedSpareIsTheJobsRunner) {
    Fd s = spare();
    JobId id = submit(job({"false"}));
    rounds();
    ASSERT_EQ(assigned(s), id);

    std::string out = dir_ + "/ts-out.ABCDEF";
    started(s, 4321, out);
    rounds();
    EXPECT_TRUE(receive(s).frames.empty()) << "nothing is said back to Started";
    // -p and -o see what the runner reported.
    proto::JobRef ref{};
    ref.id = id;
    std::vector<Frame> o = ask(encode(MsgType::Output, ref));
    ASSERT_EQ(o.size(), 1u);
    ASSERT_EQ(o[0].type, MsgType::OutputReply);
    proto::OutputBody ob{};
    std::string_view path;
    ASSERT_TRUE(decode_body(o[0], &ob, &path));
    EXPECT_EQ(ob.pid, 4321);
    EXPECT_EQ(ob.state, proto::kRunning);
    EXPECT_EQ(ob.stored, 1);
    EXPECT_EQ(std::string(path), out);

    finished(s, 3);
    rounds();
    Received r = receive(s);
    ASSERT_EQ(r.frames.size(), 1u);
    EXPECT_EQ(r.frames[0].type, MsgType::Done) << "the runner may exit once the result is recorded";
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(state(id), proto::kFinished);
    std::vector<std::string> f = list_fields(id);
    ASSERT_GE(f.size(), 4u) << h_->list();
    EXPECT_EQ(f[1], "finished");
    EXPECT_EQ(f[2], out);
    EXPECT_EQ(f[3], "3") << "the E-Level the runner reported";
}

TEST_F(SpawnerServerTest, TheNextJobGoesToTheNextSpare) {
    Fd a = spare();
    JobId j0 = submit(job({"one"}));
    rounds();
    ASSERT_EQ(assigned(a), j0);
    started(a, 100, "");
    finished(a, 0);
    rounds();
    EXPECT_EQ(state(j0), proto::kFinished);

    Fd b = spare();
    JobId j1 = submit(job({"two"}));
    rounds();
    JobSpec got;
    ASSERT_EQ(assigned(b, &got), j1);
    EXPECT_EQ(got.argv, std::vector<std::string>{"two"});
}

TEST_F(SpawnerServerTest, ASpareOfAnotherUidIsClosedAndGetsNoJob) {
    Fd bad = spare(getuid() + 1);
    Received r = receive(bad);
    EXPECT_TRUE(r.closed) << "the server keeps a Spare from another uid";
    EXPECT_TRUE(r.frames.empty());
    Fd good = spare();
    JobId id = submit(job({"mine"}));
    rounds();
    ASSERT_EQ(assigned(good), id);
}

TEST_F(SpawnerServerTest, OnlyASpareOfAnotherUidMeansNoSpare) {
    // Connected first: were it taken as a spare, the job would go to it.
    Fd bad = h_->connect(getuid() + 1);
    send(bad, encode_empty(MsgType::Spare));
    Fd good = h_->connect(getuid());
    send(good, encode_empty(MsgType::Spare));
    JobId id = submit(job({"mine"}));   // the same rounds read all three
    rounds();
    Received rb = receive(bad);
    EXPECT_TRUE(rb.closed);
    EXPECT_TRUE(rb.frames.empty()) << "a job was assigned to another uid's spare";
    ASSERT_EQ(assigned(good), id);
}

TEST_F(SpawnerServerTest, ASecondSpareOnOneConnectionClosesIt) {
    Fd s = spare();
    send(s, encode_empty(MsgType::Spare));
    rounds();
    Received r = receive(s);
    EXPECT_TRUE(r.closed);
    EXPECT_TRUE(r.frames.empty());
    // Twice in one write as well.
    Fd t = h_->connect(getuid());
    send(t, encode_empty(MsgType::Spare) + encode_empty(MsgType::Spare));
    rounds();
    EXPECT_TRUE(receive(t).closed);
    // Neither is a spare now: the job finds none (in a harness: its forked runner is none, and it is lost).
    Fd late = h_->connect(getuid());   // connected, but not a spare
    JobId id = submit(job({"nobody"}));
    rounds();
    Received l = receive(late);
    EXPECT_TRUE(l.frames.empty());
    EXPECT_EQ(state(id), proto::kFinished);
}

TEST_F(SpawnerServerTest, ASpareWithABodyIsClosed) {
    Fd s = h_->connect(getuid());
    send(s, encode_empty(MsgType::Spare, "x"));
    rounds();
    EXPECT_TRUE(receive(s).closed);
}

TEST_F(SpawnerServerTest, ABusyRunnerCannotBecomeASpareAgain) {
    Fd s = spare();
    JobId id = submit(job({"busy"}));
    rounds();
    ASSERT_EQ(assigned(s), id);
    started(s, 99, "");
    send(s, encode_empty(MsgType::Spare));
    rounds();
    EXPECT_TRUE(receive(s).closed);
    // Its job (it started) is lost with it, not left running for ever.
    EXPECT_EQ(state(id), proto::kFinished);
    std::vector<std::string> f = list_fields(id);
    ASSERT_GE(f.size(), 4u) << h_->list();
    EXPECT_EQ(f[3], "-1");
}

// A spare killed after it was given its job, before the job's fork (it
// never said Started): the job never ran, so it goes back to the queue and
// the next spare runs it.
TEST_F(SpawnerServerTest, ASpareThatEndsBeforeTheStartGivesItsJobToTheNext) {
    Fd a = spare();
    JobId id = submit(job({"once"}));
    JobId behind = submit(job({"behind"}));
    rounds();
    ASSERT_EQ(assigned(a), id);
    Fd b = spare();   // the next idle spare
    EXPECT_TRUE(receive(b).frames.empty());
    a.reset();        // killed
    rounds();
    ASSERT_EQ(assigned(b), id) << "the job was not given to the next spare\n" << h_->list();
    EXPECT_EQ(state(id), proto::kRunning);
    EXPECT_EQ(state(behind), proto::kQueued) << "the job behind it took its place";
    started(b, 4321, "");
    finished(b, 0);
    rounds();
    EXPECT_EQ(state(id), proto::kFinished);
    EXPECT_EQ(list_fields(id).at(3), "0") << h_->list();
}

TEST_F(SpawnerServerTest, ASecondIdleSpareIsSentAway) {
    // One idle spare is enough: a second one (a late spare, whose job got a
    // runner forked meanwhile) is closed and gets no job.
    Fd a = spare();
    Fd b = spare();
    Received rb = receive(b);
    EXPECT_TRUE(rb.closed) << "the second idle spare stays";
    EXPECT_TRUE(rb.frames.empty());
    JobId id = submit(job({"only", "one"}));
    rounds(3);
    ASSERT_EQ(assigned(a), id);

    // Once the first is busy, a new spare is kept: with a second slot, the next job is its.
    Fd c = spare();
    set_slots(2);
    JobId id2 = submit(job({"second"}));
    rounds();
    ASSERT_EQ(assigned(c), id2);
    EXPECT_TRUE(receive(a).frames.empty()) << "a busy runner got a second job";
    EXPECT_EQ(state(id), proto::kRunning);
    EXPECT_EQ(state(id2), proto::kRunning);

    // Each reports its own job.
    started(a, 11, "");
    started(c, 12, "");
    finished(c, 2);
    finished(a, 1);
    rounds();
    EXPECT_EQ(list_fields(id).at(3), "1") << h_->list();
    EXPECT_EQ(list_fields(id2).at(3), "2") << h_->list();
}

TEST_F(SpawnerServerTest, ASpareThatLeftIsDropped) {
    // The first spare goes away before any job; the one after it is kept, and gets the job.
    Fd gone = spare();
    gone.reset();
    rounds();
    Fd stays = spare();
    EXPECT_FALSE(receive(stays).closed) << "sent away as if the one that left were still there";
    JobId id = submit(job({"to", "the", "other"}));
    rounds();
    ASSERT_EQ(assigned(stays), id);
    rounds(3);
    EXPECT_EQ(state(id), proto::kRunning) << "the job went to the spare that left";
    started(stays, 55, "");
    finished(stays, 4);
    rounds();
    EXPECT_EQ(state(id), proto::kFinished);
    EXPECT_EQ(list_fields(id).at(3), "4") << h_->list();
}

TEST_F(SpawnerServerTest, ASpareThatLeftInTheSameRoundIsDropped) {
    // In one round: the idle spare's end, a new spare, and a job. The new
    // spare is kept (the one that left no longer counts) and gets the job.
    Fd gone = spare();
    Fd stays = h_->connect(getuid());
    send(stays, encode_empty(MsgType::Spare));
    gone.reset();
    JobId id = submit(job({"same", "round"}));
    ASSERT_EQ(assigned(stays), id);
    EXPECT_EQ(state(id), proto::kRunning);
}

TEST_F(SpawnerServerTest, WithoutASpareTheServerForksTheRunner) {
    // In a harness the forked runner is none at all: the job ends as lost, it does not wait for ever.
    Fd gone = spare();
    gone.reset();
    rounds();
    Fd plain = h_->connect(getuid());   // a client that is no spare
    JobId id = submit(job({"alone"}));
    rounds(3);
    EXPECT_TRUE(receive(plain).frames.empty());
    EXPECT_EQ(state(id), proto::kFinished);
    EXPECT_EQ(list_fields(id).at(3), "-1") << h_->list();
}

TEST_F(SpawnerServerTest, ASpareBeforeASlotFreesGetsTheNextJob) {
    // Two jobs, one slot: the second starts when the first ends, on the spare that waits then.
    Fd a = spare();
    JobId j0 = submit(job({"first"}));
    JobId j1 = submit(job({"second"}));
    rounds();
    ASSERT_EQ(assigned(a), j0);
    EXPECT_EQ(state(j1), proto::kQueued);
    Fd b = spare();
    EXPECT_TRUE(receive(b).frames.empty());
    started(a, 7, "");
    finished(a, 0);
    rounds();
    Received ra = receive(a);
    ASSERT_EQ(ra.frames.size(), 1u);
    EXPECT_EQ(ra.frames[0].type, MsgType::Done);
    JobSpec got;
    ASSERT_EQ(assigned(b, &got), j1);
    EXPECT_EQ(got.argv, std::vector<std::string>{"second"});
    EXPECT_EQ(state(j1), proto::kRunning);
}

// A job's settings reach the spare that runs it. (The harness keeps no
// journal: journal_test.cpp replays jobs with settings.)
TEST_F(SpawnerServerTest, SettingsReachTheRunner) {
    TestSetting row({0x7001, "test-count",
                     [](std::string_view v, std::string* why) { return valid_u32_in(v, 1, 8, why); }});
    JobSpec want = job({"sh", "-c", "echo with settings"});
    want.num_slots = 2;   // does not fit in one slot: stays queued until there are two
    want.settings.set_u32(0x7001, 5);
    want.settings.set_bytes(0x8001, std::string("opaque\0bytes", 12));
    JobId id = submit(want);
    ASSERT_EQ(id, 0);
    Fd s = spare();
    set_slots(2);
    rounds();
    JobId got_id = -1;
    JobSpec got;
    ASSERT_TRUE(got_assign(receive(s), &got_id, &got)) << "the spare got no Assign for the job";
    EXPECT_EQ(got_id, id);
    EXPECT_EQ(got.argv, want.argv);
    EXPECT_TRUE(got.settings == want.settings);
    EXPECT_EQ(got.settings.u32(0x7001), 5u);
}
