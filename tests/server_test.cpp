/*
 * server_test.cpp — the server's message handling through a ServerHarness:
 * real connections (socketpairs) and one loop round at a time, no listener
 * and no forks. A bad peer loses its own connection and nothing else.
 */
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <unistd.h>

#include "frame.h"
#include "harness_client.h"
#include "jobs.h"
#include "listing.h"
#include "server.h"
#include "spawner.h"

namespace {

using proto::MsgType;

class ServerTest : public ::testing::Test {
protected:
    void SetUp() override {
        char templ[] = "/tmp/ts-server-test.XXXXXX";
        ASSERT_NE(mkdtemp(templ), nullptr);
        dir_ = templ;
        setenv("TS_JOURNAL", "0", 1);
        h_ = std::make_unique<ServerHarness>(dir_ + "/s");
    }
    void TearDown() override {
        h_.reset();
        std::string cmd = "rm -rf '" + dir_ + "'";
        ASSERT_EQ(system(cmd.c_str()), 0);
    }

    /* Send bytes, run a round, and read back the whole reply (until EOF). */
    std::string ask(const std::string& bytes, uid_t uid = getuid()) {
        Fd c = h_->connect(uid);
        EXPECT_TRUE(write_all(c.get(), bytes.data(), bytes.size()));
        h_->round();
        h_->round();
        set_nonblock(c.get());
        std::string out;
        char buf[4096];
        ssize_t n;
        while ((n = read(c.get(), buf, sizeof buf)) > 0) out.append(buf, size_t(n));
        return out;
    }
    static Frame first(const std::string& bytes) {
        Frame f;
        size_t used = 0;
        EXPECT_EQ(parse_frame(bytes, &f, &used), ParseStatus::Ok);
        return f;
    }
    std::string submit(const std::vector<std::string>& argv) {
        JobSpec s;
        s.argv = argv;
        s.cwd = "/";
        s.num_slots = 5;   // more than the slots: it stays queued (no runner in a harness)
        return encode_submit(s);
    }

    std::string dir_;
    std::unique_ptr<ServerHarness> h_;
};

TEST_F(ServerTest, ListOfAnEmptyQueue) {
    Frame f = first(ask(encode_empty(MsgType::List)));
    EXPECT_EQ(f.type, MsgType::Text);
    std::string text;
    TailReader r(f.payload);
    ASSERT_TRUE(r.next(&text));
    EXPECT_EQ(text, list_header(0, 1));
}

TEST_F(ServerTest, SubmitGivesIdsFromZero) {
    for (int i = 0; i < 3; ++i) {
        Frame f = first(ask(submit({"echo", std::to_string(i)})));
        proto::JobRef r;
        ASSERT_EQ(f.type, MsgType::SubmitOk);
        ASSERT_TRUE(decode_body(f, &r));
        EXPECT_EQ(r.id, i);
    }
    EXPECT_NE(h_->list().find("echo 2"), std::string::npos);
}

TEST_F(ServerTest, MalformedFramesCloseOnlyTheirConnection) {
    ask(submit({"keep", "me"}));
    Fd idle = h_->connect(getuid());   // a quiet client, kept open throughout
    const std::string bad[] = {
        std::string("\xff\xff\xff\xff\xff\xff\xff\xff", 8),       // huge length
        encode_frame(static_cast<MsgType>(999), nullptr, 0),       // unknown type
        encode_frame(MsgType::State, "abc", 3),                    // wrong body size
        encode_frame(MsgType::Started, nullptr, 0),                // runner message from a client
        std::string("garbage that is not a frame at all"),
    };
    for (const auto& b : bad) {
        std::string reply = ask(b);
        EXPECT_TRUE(reply.empty()) << "a reply to a bad frame";
    }
    EXPECT_FALSE(h_->stopped());
    EXPECT_NE(h_->list().find("keep me"), std::string::npos);
    Frame f = first(ask(encode_empty(MsgType::List)));
    EXPECT_EQ(f.type, MsgType::Text);
}

TEST_F(ServerTest, AnotherVersionGetsVersionAndNothingElse) {
    Frame f = first(ask(encode_frame(MsgType::List, nullptr, 0, {}, proto::kVersion + 1)));
    EXPECT_EQ(f.type, MsgType::Version);
    proto::VersionBody v;
    ASSERT_TRUE(decode_body(f, &v));
    EXPECT_EQ(v.version, proto::kVersion);
}

TEST_F(ServerTest, VersionOneIsServedOnlyToRunnersAndWaiters) {
    ask(submit({"q"}));
    // A client of the previous version is told ours (it suggests --restart).
    for (MsgType t : {MsgType::List, MsgType::GetSlots, MsgType::Clear}) {
        Frame f = first(ask(encode_frame(t, nullptr, 0, {}, proto::kOldestRunnerVersion)));
        EXPECT_EQ(f.type, MsgType::Version) << unsigned(t);
    }
    // A waiter (-w) of the previous version gets its answer, in its version.
    proto::JobRef r{};
    r.id = 0;
    Frame f = first(ask(encode_frame(MsgType::Wait, &r, sizeof r, {}, proto::kOldestRunnerVersion)));
    EXPECT_EQ(f.type, MsgType::Waiting);
    EXPECT_EQ(f.version, proto::kOldestRunnerVersion);
    // A runner of the previous version re-attaching to a job that is not
    // running is told to stop, in its version (it would take ours as "gone").
    proto::AttachBody a{};
    a.id = 0;
    f = first(ask(encode_frame(MsgType::Attach, &a, sizeof a, {}, proto::kOldestRunnerVersion)));
    EXPECT_EQ(f.type, MsgType::Bye);
    EXPECT_EQ(f.version, proto::kOldestRunnerVersion);
}

TEST_F(ServerTest, ASubmitSentAgainGetsTheSameIdAndNoSecondJob) {
    JobSpec s;
    s.argv = {"once"};
    s.cwd = "/";
    s.num_slots = 5;
    s.token = "0123456789abcdef0123456789abcdef";
    std::string bytes = encode_submit(s);
    proto::JobRef r1{}, r2{};
    ASSERT_TRUE(decode_body(first(ask(bytes)), &r1));
    ASSERT_TRUE(decode_body(first(ask(bytes)), &r2));
    EXPECT_EQ(r1.id, r2.id);
    std::string list = h_->list();
    EXPECT_EQ(list.find("once"), list.rfind("once")) << list;
    // Another user with the same token gets a job of their own: a token is
    // no handle on someone else's job.
    proto::JobRef r3{};
    ASSERT_TRUE(decode_body(first(ask(bytes, getuid() + 1)), &r3));
    EXPECT_NE(r3.id, r1.id);
    // Another token: another job.
    s.token = "fedcba9876543210fedcba9876543210";
    proto::JobRef r4{};
    ASSERT_TRUE(decode_body(first(ask(encode_submit(s))), &r4));
    EXPECT_NE(r4.id, r1.id);
}

TEST_F(ServerTest, ASettingTheServerDoesNotKnowIsRefusedAndNothingIsQueued) {
    auto error_line = [](const Frame& f) {
        std::string line;
        TailReader t(f.payload);
        EXPECT_EQ(f.type, MsgType::Error);
        EXPECT_TRUE(t.next(&line));
        return line;
    };
    JobSpec s;
    s.argv = {"needs", "setting", "seven"};
    s.cwd = "/";
    s.num_slots = 5;
    s.settings.set_u32(7, 1);
    const std::string unknown =
        "The server does not know the job setting 7 (it runs an older ts: see ts --restart); the job "
        "was not queued.\n";
    EXPECT_EQ(error_line(first(ask(encode_submit(s)))), unknown);
    EXPECT_EQ(error_line(first(ask(encode_submit(s), getuid() + 1000))), unknown) << "another uid's job";
    s.flags |= proto::kForeground;   // -f: the client is not kept as the job's runner either
    Fd c = h_->connect(getuid());
    send_bytes(c, encode_submit(s));
    h_->round();
    h_->round();
    Received r = receive_now(c);
    ASSERT_EQ(r.frames.size(), 1u);
    EXPECT_EQ(error_line(r.frames[0]), unknown);
    EXPECT_EQ(h_->list().find("needs"), std::string::npos) << h_->list();
    // Nothing was queued, not even an id was taken.
    proto::JobRef ref{};
    ASSERT_TRUE(decode_body(first(ask(submit({"plain"}))), &ref));
    EXPECT_EQ(ref.id, 0);

    // A setting it may ignore (0x8000 and up) is kept; one it knows is checked.
    JobSpec hint;
    hint.argv = {"with", "a", "hint"};
    hint.cwd = "/";
    hint.num_slots = 5;
    hint.settings.set_bytes(0x8000, "ignore me");
    EXPECT_EQ(first(ask(encode_submit(hint))).type, MsgType::SubmitOk);
    TestSetting row({7, "test-count",
                     [](std::string_view v, std::string* why) { return valid_u32_in(v, 1, 8, why); }});
    s.flags &= ~proto::kForeground;
    s.settings.set_u32(7, 9);
    EXPECT_EQ(error_line(first(ask(encode_submit(s)))),
              "The job setting 7 (test-count) is not valid: 9 is not in 1..8; the job was not queued.\n");
    EXPECT_EQ(h_->list().find("needs"), std::string::npos) << h_->list();
    s.settings.set_u32(7, 8);
    ASSERT_TRUE(decode_body(first(ask(encode_submit(s))), &ref));
    EXPECT_EQ(ref.id, 2);
    EXPECT_NE(h_->list().find("needs setting seven"), std::string::npos) << h_->list();
}

TEST_F(ServerTest, KillServerFromAnyVersionStopsIt) {
    Frame f = first(ask(encode_frame(MsgType::KillServer, nullptr, 0, {}, 77)));
    EXPECT_EQ(f.type, MsgType::Done);
    EXPECT_TRUE(h_->stopped());
}

TEST_F(ServerTest, ErrorsAreTaskSpoolersLines) {
    proto::JobRef r{};
    r.id = 42;
    Frame f = first(ask(encode(MsgType::State, r)));
    ASSERT_EQ(f.type, MsgType::Error);
    std::string line;
    TailReader t(f.payload);
    ASSERT_TRUE(t.next(&line));
    EXPECT_EQ(line, "The job 42 cannot be stated.\n");
}

TEST_F(ServerTest, OtherUsersAreRefusedWhatIsNotTheirs) {
    ask(submit({"mine"}));
    ask(submit({"mine", "too"}));
    proto::JobRef r{};
    r.id = 1;
    Frame f = first(ask(encode(MsgType::Remove, r), getuid() + 1000));
    ASSERT_EQ(f.type, MsgType::Error);
    std::string line;
    TailReader t(f.payload);
    ASSERT_TRUE(t.next(&line));
    EXPECT_NE(line.find("belongs to uid"), std::string::npos) << line;
    proto::Slots s{};
    s.n = 4;
    EXPECT_EQ(first(ask(encode(MsgType::SetSlots, s), getuid() + 1000)).type, MsgType::Error);
    EXPECT_EQ(first(ask(encode_empty(MsgType::KillServer), getuid() + 1000)).type, MsgType::Error);
    EXPECT_FALSE(h_->stopped());
    EXPECT_EQ(first(ask(encode(MsgType::Remove, r))).type, MsgType::Done);   // the owner may
}

/* --drain and --resume: the server's owner only; a bad value changes nothing. */
TEST_F(ServerTest, DrainIsTheOwnersAndSaysWhatItDid) {
    auto text = [](const Frame& f) {
        std::string line;
        TailReader t(f.payload);
        EXPECT_TRUE(t.next(&line));
        return line;
    };
    proto::Slots on{};
    on.n = 1;
    Frame f = first(ask(encode(MsgType::Drain, on), getuid() + 1000));
    ASSERT_EQ(f.type, MsgType::Error);
    EXPECT_NE(text(f).find("may drain or resume the queue"), std::string::npos) << text(f);
    proto::Slots bad{};
    bad.n = 2;
    EXPECT_EQ(first(ask(encode(MsgType::Drain, bad))).type, MsgType::Error);
    ask(submit({"a"}));   // (queued for good: it needs more slots than there are)
    EXPECT_EQ(h_->list().find("drained"), std::string::npos) << "another user's --drain and a bad value changed nothing";
    f = first(ask(encode(MsgType::Drain, on)));
    ASSERT_EQ(f.type, MsgType::Text);
    EXPECT_EQ(text(f), "The queue is drained: no job starts until ts --resume (0 running, 1 queued).\n");
    ask(submit({"b"}));
    f = first(ask(encode_empty(MsgType::List)));
    EXPECT_NE(text(f).find("[run=0/1 drained]\n"), std::string::npos) << text(f);
    proto::Slots off{};
    f = first(ask(encode(MsgType::Drain, off)));
    EXPECT_EQ(text(f), "The queue is resumed: queued jobs start again (0 running, 2 queued).\n");
    f = first(ask(encode(MsgType::Drain, off)));
    EXPECT_EQ(text(f), "The queue was not drained: nothing to resume (0 running, 2 queued).\n");
}

TEST_F(ServerTest, ASlowReaderDoesNotBlockOthers) {
    for (int i = 0; i < 2000; ++i) ask(submit({"job", std::string(200, 'x')}));
    Fd slow = h_->connect(getuid());
    std::string req = encode_empty(MsgType::List);
    ASSERT_TRUE(write_all(slow.get(), req.data(), req.size()));   // and never read: ~500 KB
    h_->round();
    Frame f = first(ask(encode_empty(MsgType::GetSlots)));
    EXPECT_EQ(f.type, MsgType::Slots);
}

TEST_F(ServerTest, FramesSplitIntoSingleBytes) {
    Fd c = h_->connect(getuid());
    std::string req = submit({"split", "up"});
    for (char b : req) {
        ASSERT_EQ(write(c.get(), &b, 1), 1);
        h_->round();
    }
    h_->round();
    set_nonblock(c.get());
    char buf[256];
    ssize_t n = read(c.get(), buf, sizeof buf);
    ASSERT_GT(n, 0);
    EXPECT_EQ(first(std::string(buf, size_t(n))).type, MsgType::SubmitOk);
}

}  // namespace

namespace {
/* --retry of a job its client runs (-f): the client's runner hears Again
 * after a failed run, then Run with the next run's number. (What a runner
 * back after a restart carries: run_of, in jobs_test; t-timeout.sh.) */
class ClientRetryTest : public ::testing::Test {
protected:
    void SetUp() override {
        char templ[] = "/tmp/ts-client-retry-test.XXXXXX";
        ASSERT_NE(mkdtemp(templ), nullptr);
        dir_ = templ;
        ServerConfig cfg;
        h_ = std::make_unique<ServerHarness>(dir_ + "/s", cfg);
    }
    void TearDown() override {
        h_.reset();
        ASSERT_EQ(system(("rm -rf '" + dir_ + "'").c_str()), 0);
    }
    /* The frames c gets for bytes (two rounds). */
    std::vector<MsgType> exchange(const Fd& c, const std::string& bytes, uint16_t* run = nullptr) {
        if (!bytes.empty()) send_bytes(c, bytes);
        h_->round();
        h_->round();
        std::vector<MsgType> types;
        for (const Frame& f : receive_now(c).frames) {
            types.push_back(f.type);
            proto::RunBody rb{};
            if (run && f.type == MsgType::Run && decode_body(f, &rb)) *run = rb.run;
        }
        return types;
    }
    static std::string failed_run() {
        proto::StartedBody sb{};
        sb.pid = getpid();
        sb.start_us = 1700000000000000;
        JobResult r;
        r.errorlevel = 1;
        return encode(MsgType::Started, sb, std::string()) + encode(MsgType::Finished, finished_body(r, 1700000001.0));
    }
    std::string info() {
        proto::JobRef r{};
        Fd c = h_->connect(getuid());
        send_bytes(c, encode(MsgType::Info, r));
        h_->round();
        std::string text, s;
        for (const Frame& f : receive_now(c).frames) {
            TailReader t(f.payload);
            if (t.next(&s)) text += s;
        }
        return text;
    }
    std::string dir_;
    std::unique_ptr<ServerHarness> h_;
};
using Types = std::vector<MsgType>;
}  // namespace

TEST_F(ClientRetryTest, AFailedRunIsAnsweredAgainThenRunWithTheNextRun) {
    JobSpec s;
    s.argv = {"flaky"};
    s.cwd = "/";
    s.flags |= proto::kForeground;
    s.settings.set_retries(2);
    Fd c = h_->connect(getuid());
    uint16_t run = 9;
    EXPECT_EQ(exchange(c, encode_submit(s), &run), (Types{MsgType::SubmitOk, MsgType::Run}));
    EXPECT_EQ(run, 0);
    EXPECT_EQ(exchange(c, failed_run(), &run), (Types{MsgType::Again, MsgType::Run}));
    EXPECT_EQ(run, 1) << "the job's second run";
    EXPECT_NE(info().find("Attempt 2 of 3: running"), std::string::npos) << info();

    // Its last run ends well: Done.
    JobResult ok;
    EXPECT_EQ(exchange(c, encode(MsgType::Started, proto::StartedBody{}) +
                              encode(MsgType::Finished, finished_body(ok, 1700000002.0))),
              Types{MsgType::Done});
    EXPECT_NE(info().find("Attempt 2 of 3: died with exit code 0, the last"), std::string::npos) << info();
}

/* A client that, told Again, reports an end of the next run before that run
 * began is no runner to trust with the job: the job ends (lost) at once,
 * rather than start later with no runner, holding its slot for good. */
TEST_F(ClientRetryTest, AnEndOfARunThatNeverBeganEndsTheJob) {
    JobSpec s;
    s.argv = {"flaky"};
    s.cwd = "/";
    s.flags |= proto::kForeground;
    s.settings.set_retries(2);
    Fd c = h_->connect(getuid());
    EXPECT_EQ(exchange(c, encode_submit(s)), (Types{MsgType::SubmitOk, MsgType::Run}));
    proto::Slots on{};
    on.n = 1;   // --drain: the next run does not start at once
    Fd admin = h_->connect(getuid());
    send_bytes(admin, encode(MsgType::Drain, on));
    h_->round();
    h_->round();
    EXPECT_EQ(exchange(c, failed_run()), Types{MsgType::Again});
    JobResult r;
    r.errorlevel = 1;
    EXPECT_EQ(exchange(c, encode(MsgType::Finished, finished_body(r, 1700000002.0))), Types{MsgType::Bye});
    std::string text = info();
    EXPECT_NE(text.find("reported an end of a run that never began"), std::string::npos) << text;
    EXPECT_NE(h_->list().find("finished"), std::string::npos) << h_->list() << text;
}
