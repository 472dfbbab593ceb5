/*
 * launcher_test.cpp — the seam between the server and its runner processes
 * (spawner.h: Launcher). A fake launcher gives the test the runner's end of
 * each connection, and the test plays the runner: the job the server starts
 * reaches it, its reports are taken, and a runner that cannot be made puts
 * the job back in the queue.
 */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdlib>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "frame.h"
#include "harness_client.h"
#include "jobs.h"
#include "server.h"
#include "spawner.h"

namespace {

using proto::MsgType;

/* Runners the test plays: each start() hands it the far end. */
struct FakeLaunches {
    std::vector<JobId> jobs;
    std::vector<Fd> ends;
    int fail_with = 0;   // errno for the next start (0: it works)
};

class FakeLauncher : public Launcher {
public:
    explicit FakeLauncher(FakeLaunches* l) : l_(l) {}
    bool start(const RunnerOrder& o, LocalRunner* out, LaunchError* why) override {
        why->what = "fork";
        if (l_->fail_with) {
            why->err = l_->fail_with;
            l_->fail_with = 0;
            return false;
        }
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
        out->conn.reset(sv[0]);
        l_->ends.emplace_back(sv[1]);
        l_->jobs.push_back(o.id);
        out->pid = getpid();   // a live process of ours
        return true;
    }

private:
    FakeLaunches* l_;
};

class LauncherTest : public ::testing::Test {
protected:
    void SetUp() override {
        char templ[] = "/tmp/ts-launcher-test.XXXXXX";
        ASSERT_NE(mkdtemp(templ), nullptr);
        dir_ = templ;
        ServerConfig cfg;
        cfg.journal = false;
        h_ = std::make_unique<ServerHarness>(dir_ + "/s", cfg, std::make_unique<FakeLauncher>(&l_));
    }
    void TearDown() override {
        h_.reset();
        std::string cmd = "rm -rf '" + dir_ + "'";
        ASSERT_EQ(system(cmd.c_str()), 0);
    }
    JobId submit(const std::string& word) {
        JobSpec s;
        s.argv = {"echo", word};
        s.cwd = "/";
        Fd c = h_->connect(getuid());
        send_bytes(c, encode_submit(s));
        h_->round();
        Received r = receive_now(c);
        proto::JobRef ref{};
        EXPECT_EQ(r.frames.size(), 1u);
        EXPECT_TRUE(!r.frames.empty() && r.frames[0].type == MsgType::SubmitOk && decode_body(r.frames[0], &ref));
        return ref.id;
    }
    std::string state_of(JobId id) {
        Fd c = h_->connect(getuid());
        proto::JobRef ref{};
        ref.id = id;
        send_bytes(c, encode(MsgType::State, ref));
        h_->round();
        Received r = receive_now(c);
        proto::StateBody b{};
        if (r.frames.empty() || !decode_body(r.frames[0], &b)) return "?";
        static const char* const kNames[] = {"queued", "running", "finished", "skipped", "overflow"};
        return b.state < 5 ? kNames[b.state] : "?";
    }

    std::string dir_;
    FakeLaunches l_;
    std::unique_ptr<ServerHarness> h_;
};

}  // namespace

TEST_F(LauncherTest, TheStartedJobReachesItsRunnerAndItsReportsAreTaken) {
    JobId id = submit("one");
    h_->round();
    ASSERT_EQ(l_.jobs, std::vector<JobId>{id});
    EXPECT_EQ(state_of(id), "running");
    // The runner reports as a real one does: Started, then Finished, and hears Done.
    proto::StartedBody sb{};
    sb.pid = getpid();
    sb.start_us = 1700000000000000;
    send_bytes(l_.ends[0], encode(MsgType::Started, sb, std::string("/tmp/out")));
    JobResult r;
    r.errorlevel = 3;
    send_bytes(l_.ends[0], encode(MsgType::Finished, finished_body(r, 1700000001.0)));
    h_->round();
    Received got = receive_now(l_.ends[0]);
    ASSERT_EQ(got.frames.size(), 1u);
    EXPECT_EQ(got.frames[0].type, MsgType::Done);
    EXPECT_EQ(state_of(id), "finished");
    EXPECT_NE(h_->list().find("finished   /tmp/out             3"), std::string::npos) << h_->list();
}

TEST_F(LauncherTest, OneRunnerPerSlot) {
    JobId a = submit("a");
    JobId b = submit("b");
    h_->round();
    EXPECT_EQ(l_.jobs, std::vector<JobId>{a});   // one slot
    JobResult r;
    send_bytes(l_.ends[0], encode(MsgType::Finished, finished_body(r, 1700000001.0)));
    h_->round();
    h_->round();
    EXPECT_EQ(l_.jobs, (std::vector<JobId>{a, b}));
}

TEST_F(LauncherTest, ARunnerThatCannotBeMadeLeavesTheJobQueued) {
    l_.fail_with = EAGAIN;
    JobId id = submit("later");
    h_->round();
    EXPECT_TRUE(l_.jobs.empty());
    EXPECT_EQ(state_of(id), "queued");
    // After the back-off the scheduler tries again and the runner comes.
    for (int i = 0; i < 200 && l_.jobs.empty(); ++i) {
        usleep(5000);
        h_->round();
    }
    EXPECT_EQ(l_.jobs, std::vector<JobId>{id});
}

TEST_F(LauncherTest, ARunnerThatVanishesAfterTheStartLosesItsJob) {
    JobId id = submit("gone");
    h_->round();
    ASSERT_EQ(l_.ends.size(), 1u);
    proto::StartedBody sb{};
    sb.pid = getpid();
    sb.start_us = 1700000000000000;
    send_bytes(l_.ends[0], encode(MsgType::Started, sb));
    h_->round();
    l_.ends[0].reset();
    h_->round();
    EXPECT_EQ(state_of(id), "finished");
    EXPECT_NE(h_->list().find("-1"), std::string::npos) << h_->list();
    EXPECT_EQ(l_.jobs, std::vector<JobId>{id}) << "a job that may have run was started again";
}

// A runner that ends before it reports the start (killed while it made the
// output file, say): the job never ran, and goes back to the queue, in its
// place, to get another runner; it runs once.
TEST_F(LauncherTest, ARunnerThatVanishesBeforeTheStartGivesTheJobBack) {
    JobId id = submit("again");
    JobId next = submit("next");
    h_->round();
    ASSERT_EQ(l_.jobs, std::vector<JobId>{id});
    l_.ends[0].reset();
    h_->round();
    h_->round();
    ASSERT_EQ(l_.jobs, (std::vector<JobId>{id, id})) << "the job did not get a second runner";
    EXPECT_EQ(state_of(id), "running");
    EXPECT_EQ(state_of(next), "queued") << "the job behind it took its place";
    proto::StartedBody sb{};
    sb.pid = getpid();
    sb.start_us = 1700000000000000;
    send_bytes(l_.ends[1], encode(MsgType::Started, sb));
    JobResult r;
    r.errorlevel = 4;
    send_bytes(l_.ends[1], encode(MsgType::Finished, finished_body(r, 1700000001.0)));
    h_->round();
    EXPECT_EQ(state_of(id), "finished");
    EXPECT_NE(h_->list().find("finished   (...)                4"), std::string::npos) << h_->list();
}

// Runners that all end before the start (something kills them): after
// three the job is marked lost, never started, rather than tried for ever.
TEST_F(LauncherTest, RunnersThatAlwaysVanishBeforeTheStartEndTheJobAfterThree) {
    JobId id = submit("doomed");
    for (int i = 0; i < 10 && state_of(id) == "running"; ++i) {
        h_->round();
        for (Fd& e : l_.ends) e.reset();
        h_->round();
    }
    EXPECT_EQ(l_.jobs, (std::vector<JobId>{id, id, id}));
    EXPECT_EQ(state_of(id), "finished");
    Fd c = h_->connect(getuid());
    proto::JobRef ref{};
    ref.id = id;
    send_bytes(c, encode(MsgType::Info, ref));
    h_->round();
    Received r = receive_now(c);
    ASSERT_FALSE(r.frames.empty());
    std::string info;
    TailReader t(r.frames[0].payload);
    ASSERT_TRUE(t.next(&info));
    EXPECT_EQ(info.rfind("Exit status: died with exit code -1\n"
                         "Lost: its runner ended before the job started, 3 times in a row (killed?); it never ran\n",
                         0),
              0u)
        << info;
    EXPECT_EQ(info.find("Start time"), std::string::npos) << info;
}
