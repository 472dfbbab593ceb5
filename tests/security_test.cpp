/*
 * security_test.cpp — a shared queue against a hostile user (README
 * "Security"), without processes: the server's decisions through a
 * ServerHarness (another uid's connections are socketpairs that claim that
 * uid), and the queue's bookkeeping, listing and dump text directly.
 * tests/t-security.sh tries the same with real users.
 */
#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "frame.h"
#include "harness_client.h"
#include "jobs.h"
#include "listing.h"
#include "server.h"

namespace {

using proto::MsgType;

const uid_t kOwner = getuid();
const uid_t kOther = getuid() + 1000;   // neither the server's uid nor root

class SecurityTest : public ::testing::Test {
protected:
    void SetUp() override {
        char templ[] = "/tmp/ts-security-test.XXXXXX";
        ASSERT_NE(mkdtemp(templ), nullptr);
        dir_ = templ;
        setenv("TS_JOURNAL", "0", 1);
        for (const char* v : {"TS_SLOTS", "TS_MAXCONN", "TS_USER_MAXJOBS", "TS_USER_MAXSIZE"}) unsetenv(v);
        start();
    }
    void TearDown() override {
        h_.reset();
        for (const char* v : {"TS_USER_MAXJOBS", "TS_USER_MAXSIZE"}) unsetenv(v);
        std::string cmd = "rm -rf '" + dir_ + "'";
        ASSERT_EQ(system(cmd.c_str()), 0);
    }
    void start() {
        h_.reset();
        h_ = std::make_unique<ServerHarness>(dir_ + "/s");
    }
    void rounds(int n = 2) {
        for (int i = 0; i < n; ++i) h_->round();
    }
    /* A request on a new connection; what came back (the connection may stay open). */
    Received ask(const std::string& bytes, uid_t uid = kOwner, Fd* keep = nullptr) {
        Fd c = h_->connect(uid);
        send_bytes(c, bytes);
        rounds();
        Received r = receive_now(c);
        if (keep) *keep = std::move(c);
        return r;
    }
    static JobSpec job(const std::vector<std::string>& argv, int slots = 1) {
        JobSpec s;
        s.argv = argv;
        s.env = {"PATH=/usr/bin:/bin", "SECRET=hunter2"};
        s.cwd = "/";
        s.num_slots = slots;
        return s;
    }
    static std::string text_of(const Frame& f) {
        std::string t;
        TailReader r(f.payload);
        EXPECT_TRUE(r.next(&t));
        return t;
    }
    /* The whole text of a List or Info answer, however many pieces it came in. */
    std::string text(const std::string& request, uid_t uid = kOwner, size_t* pieces = nullptr) {
        Fd c = h_->connect(uid);
        send_bytes(c, request);
        std::string all, in;
        size_t n = 0;
        for (int i = 0; i < 10000; ++i) {
            h_->round();
            Received r = receive_now(c);
            for (const Frame& f : r.frames) in += encode_frame(f.type, f.payload.data(), f.payload.size());
            in += r.rest;   // bytes of a frame that is not whole yet
            Frame f;
            size_t used = 0;
            while (parse_frame(in, &f, &used) == ParseStatus::Ok) {
                in.erase(0, used);
                ++n;
                all += text_of(f);
                if (f.type == MsgType::Text) {
                    if (pieces) *pieces = n;
                    return all;
                }
                EXPECT_EQ(f.type, MsgType::TextPart);
            }
            if (r.closed) break;
        }
        ADD_FAILURE() << "no final Text frame";
        return all;
    }
    std::vector<JobId> order() {
        std::vector<JobId> ids;
        std::string l = h_->list();
        size_t pos = l.find('\n') + 1;
        while (pos < l.size()) {
            ids.push_back(atoi(l.c_str() + pos));
            pos = l.find('\n', pos) + 1;
            if (pos == 0) break;
        }
        return ids;
    }

    std::string dir_;
    std::unique_ptr<ServerHarness> h_;
};

JobId id_of(const Frame& f) {
    proto::JobRef r{};
    EXPECT_EQ(f.type, MsgType::SubmitOk);
    EXPECT_TRUE(decode_body(f, &r));
    return r.id;
}

TEST_F(SecurityTest, AnotherUsersJobRunsInItsOwnConnectionWhateverItsFlags) {
    proto::Slots two{};
    two.n = 2;
    ASSERT_EQ(ask(encode(MsgType::SetSlots, two)).frames.at(0).type, MsgType::Done);
    Fd spare = h_->connect(kOwner);   // an idle spare runner of the server's
    send_bytes(spare, encode_empty(MsgType::Spare));
    rounds();
    JobSpec s = job({"sh", "-c", "id"});
    s.flags &= ~proto::kRunByClient;   // a hand-made Submit: "run it as you"
    Fd mine;
    Received r = ask(encode_submit(s), kOther, &mine);
    ASSERT_EQ(r.frames.size(), 2u);
    EXPECT_EQ(id_of(r.frames[0]), 0);
    EXPECT_EQ(r.frames[1].type, MsgType::Run);   // to the submitter itself
    EXPECT_FALSE(r.closed);
    EXPECT_TRUE(receive_now(spare).frames.empty()) << "the server's spare got another user's job";
    // The spare would take a job of the server's own uid.
    ask(encode_submit(job({"true"})));
    Received a = receive_now(spare);
    ASSERT_EQ(a.frames.size(), 1u);
    EXPECT_EQ(a.frames[0].type, MsgType::Assign);
}

TEST_F(SecurityTest, AnotherUsersEnvironmentIsNotKept) {
    JobSpec s = job({"env"}, 9);   // waits: it needs 9 slots
    Fd keep;
    ask(encode_submit(s), kOther, &keep);
    proto::JobRef r{};
    r.id = 0;
    // The Assign a spare would get carries the environment the server kept: none.
    // (-i shows no environment; the integration test greps the journal.)
    std::string info = text(encode(MsgType::Info, r));
    EXPECT_EQ(info.find("hunter2"), std::string::npos);
}

TEST_F(SecurityTest, AnotherUsersNZeroTakesOneSlot) {
    Fd keep;
    ask(encode_submit(job({"true"}, 0)), kOther, &keep);
    proto::JobRef r{};
    r.id = 0;
    EXPECT_NE(text(encode(MsgType::Info, r)).find("Slots required: 1\n"), std::string::npos);
    ask(encode_submit(job({"true"}, 0)));   // the owner's -N 0 is task-spooler's
    r.id = 1;
    EXPECT_NE(text(encode(MsgType::Info, r)).find("Slots required: 0\n"), std::string::npos);
}

TEST_F(SecurityTest, AnotherUsersJobsAreBoundedInNumber) {
    setenv("TS_USER_MAXJOBS", "2", 1);
    start();
    std::vector<Fd> keep(3);
    for (int i = 0; i < 2; ++i) EXPECT_EQ(id_of(ask(encode_submit(job({"x"}, 9)), kOther, &keep[i]).frames.at(0)), i);
    Received r = ask(encode_submit(job({"x"}, 9)), kOther, &keep[2]);
    ASSERT_EQ(r.frames.size(), 1u);
    ASSERT_EQ(r.frames[0].type, MsgType::Error);
    EXPECT_NE(text_of(r.frames[0]).find("TS_USER_MAXJOBS=2"), std::string::npos) << text_of(r.frames[0]);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(ask(encode_submit(job({"mine"}, 9))).frames.at(0).type, MsgType::SubmitOk);
    // One of theirs removed: room for one more.
    proto::JobRef ref{};
    ref.id = 1;
    EXPECT_EQ(ask(encode(MsgType::Remove, ref), kOther).frames.at(0).type, MsgType::Done);
    Fd again;
    EXPECT_EQ(ask(encode_submit(job({"x"}, 9)), kOther, &again).frames.at(0).type, MsgType::SubmitOk);
}

TEST_F(SecurityTest, AnotherUsersJobsAreBoundedInSize) {
    setenv("TS_USER_MAXSIZE", "10K", 1);
    start();
    Fd a, b;
    EXPECT_EQ(ask(encode_submit(job({"echo", std::string(6000, 'a')}, 9)), kOther, &a).frames.at(0).type,
              MsgType::SubmitOk);
    Received r = ask(encode_submit(job({"echo", std::string(6000, 'b')}, 9)), kOther, &b);
    ASSERT_EQ(r.frames.at(0).type, MsgType::Error);
    EXPECT_NE(text_of(r.frames[0]).find("TS_USER_MAXSIZE"), std::string::npos);
    EXPECT_EQ(ask(encode_submit(job({"echo", std::string(60000, 'o')}, 9))).frames.at(0).type,
              MsgType::SubmitOk);   // the owner's own
}

TEST_F(SecurityTest, AnotherUsersSettingsCountInTheirJobsSize) {
    setenv("TS_USER_MAXSIZE", "10K", 1);
    start();
    JobSpec s = job({"echo", "small"}, 9);
    s.settings.set_bytes(0x8001, std::string(12000, 's'));   // one a server may ignore: kept, so counted
    Received r = ask(encode_submit(s), kOther);
    ASSERT_EQ(r.frames.at(0).type, MsgType::Error);
    EXPECT_NE(text_of(r.frames[0]).find("TS_USER_MAXSIZE"), std::string::npos);
    // More settings than any job has: the frame is malformed, and only its connection is closed.
    s.settings = JobSettings();
    s.settings.set_bytes(0x8001, std::string(kMaxSettingsBytes, 's'));
    Fd theirs;
    r = ask(encode_submit(s), kOther, &theirs);
    EXPECT_TRUE(r.frames.empty());
    EXPECT_TRUE(r.closed);
    EXPECT_EQ(ask(encode_submit(job({"echo", "mine"}, 9))).frames.at(0).type, MsgType::SubmitOk);
}

TEST_F(SecurityTest, AnotherUsersBigFrameClosesItsConnection) {
    proto::Header h{proto::kVersion, uint16_t(MsgType::Submit), 5u << 20};
    std::string head(reinterpret_cast<const char*>(&h), sizeof h);
    Fd theirs = h_->connect(kOther), ours = h_->connect(kOwner);
    send_bytes(theirs, head + std::string(1000, 'x'));
    send_bytes(ours, head + std::string(1000, 'x'));
    rounds();
    EXPECT_TRUE(receive_now(theirs).closed);
    EXPECT_FALSE(receive_now(ours).closed);   // the owner may send up to kMaxFrame
}

TEST_F(SecurityTest, AnotherUserHoldsAtMost32Connections) {
    std::vector<Fd> conns;
    for (int i = 0; i < 40; ++i) conns.push_back(h_->connect(kOther));
    rounds();
    int open = 0;
    for (const Fd& c : conns) open += receive_now(c).closed ? 0 : 1;
    EXPECT_EQ(open, 32);
    std::vector<Fd> mine;
    for (int i = 0; i < 40; ++i) mine.push_back(h_->connect(kOwner));
    rounds();
    for (const Fd& c : mine) EXPECT_FALSE(receive_now(c).closed);
    // Closing some makes room again.
    conns.resize(10);
    rounds();
    Fd again = h_->connect(kOther);
    rounds();
    EXPECT_FALSE(receive_now(again).closed);
}

TEST_F(SecurityTest, AnotherUsersInputIsBoundedOverItsConnections) {
    // 3 MiB half frames: under the 4 MiB frame limit, but not 16 MiB in all.
    proto::Header h{proto::kVersion, uint16_t(MsgType::Submit), 3u << 20};
    std::string part(reinterpret_cast<const char*>(&h), sizeof h);
    part += std::string(1500000, 'x');
    std::vector<Fd> conns;
    for (int i = 0; i < 15; ++i) {
        conns.push_back(h_->connect(kOther));
        set_nonblock(conns.back().get());
        for (size_t off = 0; off < part.size();) {
            ssize_t n = write(conns.back().get(), part.data() + off, part.size() - off);
            if (n > 0) off += size_t(n);
            h_->round();
            if (n <= 0 && receive_now(conns.back()).closed) break;
        }
    }
    rounds();
    int open = 0;
    for (const Fd& c : conns) open += receive_now(c).closed ? 0 : 1;
    EXPECT_LE(open, 11);   // 16 MiB / 1.5 MB
    EXPECT_GE(open, 10);
}

TEST_F(SecurityTest, WaitersWokenByALostRunnerAreCountedOut) {
    // A runner that quits wakes its waiters, which close in the same round:
    // each must give its place back, or the other users' connections leak.
    for (int round = 0; round < 60; ++round) {
        std::vector<Fd> waiters;   // connected first: before the runner in the server's list
        for (int i = 0; i < 20; ++i) waiters.push_back(h_->connect(kOther));
        Fd runner;
        Received r = ask(encode_submit(job({"x"}, 9)), kOther, &runner);
        JobId id = id_of(r.frames.at(0));
        proto::JobRef ref{};
        ref.id = id;
        for (const Fd& w : waiters) send_bytes(w, encode(MsgType::Wait, ref));
        rounds();
        runner.reset();
        rounds(3);
        for (const Fd& w : waiters) EXPECT_TRUE(receive_now(w).closed);
    }
    // 1,200 connections came and went: room remains (the cap on all of them is 1,000).
    Fd again = h_->connect(kOther);
    rounds();
    EXPECT_FALSE(receive_now(again).closed);
}

TEST_F(SecurityTest, EmptyArgumentsCountAsWhatTheyCost) {
    setenv("TS_USER_MAXSIZE", "64K", 1);
    start();
    std::vector<std::string> argv(3000, "");   // 12 KB on the wire, ~100 KB in memory
    argv[0] = "true";
    Fd keep;
    Received r = ask(encode_submit(job(argv, 9)), kOther, &keep);
    ASSERT_EQ(r.frames.at(0).type, MsgType::Error);
    EXPECT_NE(text_of(r.frames[0]).find("TS_USER_MAXSIZE"), std::string::npos);
}

TEST_F(SecurityTest, ALongListComesInPiecesThatAddUpToIt) {
    for (int i = 0; i < 3000; ++i) ask(encode_submit(job({"job", std::string(300, 'x')}, 9)));
    size_t pieces = 0;
    EXPECT_EQ(text(encode_empty(MsgType::List), kOwner, &pieces), h_->list());
    EXPECT_GT(pieces, 3u);
    pieces = 0;
    EXPECT_EQ(text(encode_empty(MsgType::List), kOther, &pieces), h_->list());
    EXPECT_GT(pieces, 3u);
}

TEST_F(SecurityTest, AShortListIsOneTextFrame) {
    ask(encode_submit(job({"true"}, 9)));
    Received r = ask(encode_empty(MsgType::List));
    ASSERT_EQ(r.frames.size(), 1u);
    EXPECT_EQ(r.frames[0].type, MsgType::Text);
    EXPECT_TRUE(r.closed);
}

TEST_F(SecurityTest, AnUnreadListHoldsLittle) {
    for (int i = 0; i < 3000; ++i) ask(encode_submit(job({"job", std::string(300, 'x')}, 9)));
    Fd slow = h_->connect(kOther);
    int small = 4096;
    setsockopt(slow.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    send_bytes(slow, encode_empty(MsgType::List));
    rounds(5);
    // The server has made at most a piece or two more than the socket holds: the
    // rest of a 1 MB list is made only as it is read.
    size_t got = 0;
    for (const Frame& f : receive_now(slow).frames) got += f.payload.size();
    EXPECT_LT(got, h_->list().size());
    EXPECT_EQ(ask(encode_empty(MsgType::GetSlots)).frames.at(0).type, MsgType::Slots);   // others go on
}

TEST_F(SecurityTest, AnotherUsersUnreadAnswersHoldBoundedMemory) {
    {   // the owner's 8 MB job, sent while the server reads it
        Fd c = h_->connect(kOwner);
        set_nonblock(c.get());
        std::string big = encode_submit(job({"echo", std::string(8u << 20, 'y')}, 9));
        for (size_t off = 0; off < big.size();) {
            ssize_t n = write(c.get(), big.data() + off, big.size() - off);
            if (n > 0) off += size_t(n);
            h_->round();
        }
        rounds();
        ASSERT_EQ(receive_now(c).frames.at(0).type, MsgType::SubmitOk);
    }
    proto::JobRef ref{};
    ref.id = 0;
    std::vector<Fd> slow;
    for (int i = 0; i < 20; ++i) {   // -i of it, never read
        slow.push_back(h_->connect(kOther));
        int small = 4096;
        setsockopt(slow.back().get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
        send_bytes(slow.back(), encode(MsgType::Info, ref));
        rounds();
    }
    int refused = 0;
    for (const Fd& c : slow) refused += receive_now(c).closed ? 1 : 0;
    EXPECT_GE(refused, 12);   // 64 MiB of unread answers at most: 8 of them
    EXPECT_LE(refused, 13);
    slow.clear();   // once read (here: gone), there is room again
    rounds();
    EXPECT_NE(text(encode(MsgType::Info, ref), kOther).find("Command: echo yyy"), std::string::npos);
}

TEST_F(SecurityTest, AnotherUsersRunnerReportsAreCheckedAndSignalsGoThroughIt) {
    Fd runner;
    Received r = ask(encode_submit(job({"sleep", "9"})), kOther, &runner);
    ASSERT_EQ(r.frames.size(), 2u);
    proto::StartedBody sb{};
    sb.pid = 1;   // init: not a process of theirs
    send_bytes(runner, encode(MsgType::Started, sb, std::string("/tmp/\x1b[2Jfake\n0 running")));
    rounds();
    proto::JobRef ref{};
    ref.id = 0;
    Received o = ask(encode(MsgType::Output, ref));
    proto::OutputBody ob{};
    std::string_view path;
    ASSERT_EQ(o.frames.size(), 1u);
    ASSERT_TRUE(decode_body(o.frames[0], &ob, &path));
    EXPECT_EQ(ob.pid, 0) << "a pid of another user's was believed";
    EXPECT_EQ(path, "") << "a path with control characters was kept";
    EXPECT_EQ(h_->list().find('\x1b'), std::string::npos);
    // With a pid of 0 nothing can be signalled, and nothing is.
    EXPECT_EQ(ask(encode(MsgType::Kill, ref), kOther).frames.at(0).type, MsgType::OutputReply);
    // Its end, with a note that tries to forge lines.
    proto::FinishedBody fb{};
    send_bytes(runner, encode(MsgType::Finished, fb, std::string("bad\n1    finished \x1b[31m")));
    rounds();
    std::string info = text(encode(MsgType::Info, ref));
    EXPECT_NE(info.find("Error: bad\\n1    finished \\x1b[31m\n"), std::string::npos) << info;
}

namespace {
/* A child of the test process that waits until it is killed. */
pid_t child_that_waits() {
    pid_t p = fork();
    if (p == 0) {
        for (;;) pause();
    }
    return p;
}
void end_child(pid_t p) {
    kill(p, SIGKILL);
    while (waitpid(p, nullptr, 0) < 0 && errno == EINTR) {
    }
}
}  // namespace

/* A pid from the future: another user's runner may report a pid that no
 * process has yet (or a process not its own); once that pid is reused, -p
 * would name someone else's process. Only the reporting runner's own child
 * (or itself) is kept: here the runner is the test process (the harness's
 * connections carry its pid, SO_PEERCRED). */
TEST_F(SecurityTest, AnotherUsersRunnerMayReportOnlyItsOwnChildsPid) {
    pid_t gone = fork();   // a pid that was free a moment ago, and is again
    if (gone == 0) _exit(0);
    ASSERT_GT(gone, 0);
    ASSERT_EQ(waitpid(gone, nullptr, 0), gone);
    pid_t child = child_that_waits();
    ASSERT_GT(child, 0);
    struct Case {
        pid_t reported;
        pid_t kept;
    };
    for (Case k : {Case{gone, 0}, Case{1, 0}, Case{child, child}, Case{getpid(), getpid()}}) {
        start();
        Fd runner;
        Received r = ask(encode_submit(job({"sleep", "9"})), kOther, &runner);
        ASSERT_EQ(r.frames.size(), 2u);
        proto::StartedBody sb{};
        sb.pid = k.reported;
        send_bytes(runner, encode(MsgType::Started, sb));
        rounds();
        proto::JobRef ref{};
        ref.id = 0;
        Received o = ask(encode(MsgType::Output, ref));
        proto::OutputBody ob{};
        ASSERT_EQ(o.frames.size(), 1u);
        ASSERT_TRUE(decode_body(o.frames[0], &ob));
        EXPECT_EQ(ob.pid, k.kept) << "reported " << k.reported;
        EXPECT_EQ(ob.pid_unknown, k.kept == 0 ? 1 : 0) << "reported " << k.reported;
        EXPECT_EQ(ob.state, proto::kRunning) << "the job runs either way";
    }
    std::string log;
    ASSERT_TRUE(read_file(dir_ + "/s.error", &log));
    EXPECT_NE(log.find(format("reported pid %d, which is not its own child (no such process)", int(gone))),
              std::string::npos)
        << log;
    end_child(child);
}

/* The runner is the process that sends the report, which need not be the
 * one that connected: a ts that submitted its job runs it in a child of its
 * own, in the background. That child's child is its job; a child of another
 * process is not (here: the connecting process is the test, the reporting
 * one its child, and the job that child's child). */
TEST_F(SecurityTest, TheRunnerIsTheProcessThatSendsTheReport) {
    Fd runner;
    Received r = ask(encode_submit(job({"sleep", "9"})), kOther, &runner);
    ASSERT_EQ(r.frames.size(), 2u);
    int told[2], hold[2];
    ASSERT_EQ(pipe(told), 0);
    ASSERT_EQ(pipe(hold), 0);
    pid_t reporter = fork();
    ASSERT_GE(reporter, 0);
    if (reporter == 0) {
        close(hold[1]);
        pid_t job = child_that_waits();
        proto::StartedBody sb{};
        sb.pid = job;
        std::string bytes = encode(MsgType::Started, sb);
        bool sent = write_all(runner.get(), bytes.data(), bytes.size());
        (void)!write(told[1], &job, sizeof job);
        char c;
        (void)!read(hold[0], &c, 1);   // alive until the test has its answer
        kill(job, SIGKILL);
        _exit(sent ? 0 : 1);
    }
    close(told[1]);
    close(hold[0]);
    pid_t job = 0;
    ASSERT_EQ(read(told[0], &job, sizeof job), ssize_t(sizeof job));
    close(told[0]);
    rounds();
    proto::JobRef ref{};
    ref.id = 0;
    proto::OutputBody ob{};
    Received o = ask(encode(MsgType::Output, ref));
    close(hold[1]);
    int st = 0;
    ASSERT_EQ(waitpid(reporter, &st, 0), reporter);
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    ASSERT_EQ(o.frames.size(), 1u);
    ASSERT_TRUE(decode_body(o.frames[0], &ob));
    EXPECT_EQ(ob.pid, job) << "the reporting runner's own child was refused";
}

/* The pid kept is the one checked when it was reported: the same pid again
 * (a runner that re-attached after a restart reports its Started again) is
 * not checked a second time, so a job that ended meanwhile keeps it until
 * its end is reported; another pid is checked. */
TEST_F(SecurityTest, APidCheckedOnceIsKeptWhenReportedAgain) {
    pid_t child = child_that_waits();
    ASSERT_GT(child, 0);
    Fd runner;
    Received r = ask(encode_submit(job({"sleep", "9"})), kOther, &runner);
    ASSERT_EQ(r.frames.size(), 2u);
    proto::StartedBody sb{};
    sb.pid = child;
    send_bytes(runner, encode(MsgType::Started, sb));
    rounds();
    end_child(child);
    send_bytes(runner, encode(MsgType::Started, sb));
    rounds();
    proto::JobRef ref{};
    ref.id = 0;
    proto::OutputBody ob{};
    Received o = ask(encode(MsgType::Output, ref));
    ASSERT_EQ(o.frames.size(), 1u);
    ASSERT_TRUE(decode_body(o.frames[0], &ob));
    EXPECT_EQ(ob.pid, child);
    sb.pid = 1;
    send_bytes(runner, encode(MsgType::Started, sb));
    rounds();
    o = ask(encode(MsgType::Output, ref));
    ASSERT_EQ(o.frames.size(), 1u);
    ASSERT_TRUE(decode_body(o.frames[0], &ob));
    EXPECT_EQ(ob.pid, 0) << "another pid was not checked";
}

TEST_F(SecurityTest, KillOfARunningJobGoesToItsRunnerOnly) {
    JobSpec s = job({"sleep", "9"});
    s.flags |= proto::kForeground;   // a -f client of the owner's runs it, and reports its pid
    Fd runner;
    Received r = ask(encode_submit(s), kOwner, &runner);
    ASSERT_EQ(r.frames.size(), 2u);
    ASSERT_EQ(r.frames[1].type, MsgType::Run);
    proto::StartedBody sb{};
    sb.pid = getpid();
    send_bytes(runner, encode(MsgType::Started, sb));
    rounds();
    proto::JobRef ref{};
    ref.id = 0;
    EXPECT_EQ(ask(encode(MsgType::Kill, ref)).frames.at(0).type, MsgType::Done);
    Received got = receive_now(runner);
    ASSERT_EQ(got.frames.size(), 1u);   // the runner signals its own child; the server signals no one
    EXPECT_EQ(got.frames[0].type, MsgType::Signal);
    proto::Slots sig{};
    ASSERT_TRUE(decode_body(got.frames[0], &sig));
    EXPECT_EQ(sig.n, SIGTERM);
}

TEST_F(SecurityTest, AnotherUserCannotAttachToTheServersJobs) {
    ask(encode_submit(job({"mine"}, 9)));
    proto::AttachBody a{};
    a.id = 0;
    a.runner_pid = 1;
    Received r = ask(encode(MsgType::Attach, a), kOther);
    ASSERT_EQ(r.frames.size(), 1u);
    EXPECT_EQ(r.frames[0].type, MsgType::Bye);
}

TEST_F(SecurityTest, AnotherUsersUrgentMovesAheadOfTheirOwnJobsOnly) {
    std::vector<Fd> keep(2);
    ask(encode_submit(job({"a0"}, 9)));
    ask(encode_submit(job({"a1"}, 9)));
    ask(encode_submit(job({"b2"}, 9)), kOther, &keep[0]);
    ask(encode_submit(job({"b3"}, 9)), kOther, &keep[1]);
    proto::JobRef r{};
    r.id = 3;
    EXPECT_EQ(ask(encode(MsgType::Urgent, r), kOther).frames.at(0).type, MsgType::Done);
    EXPECT_EQ(order(), (std::vector<JobId>{0, 1, 3, 2}));
    r.id = 2;
    EXPECT_EQ(ask(encode(MsgType::Urgent, r)).frames.at(0).type, MsgType::Done);   // the owner's -u
    EXPECT_EQ(order(), (std::vector<JobId>{0, 2, 1, 3}));
    // Without an id: the caller's own newest job, not the tail of the queue.
    ask(encode_submit(job({"a4"}, 9)));
    r.id = -1;
    EXPECT_EQ(ask(encode(MsgType::Urgent, r), kOther).frames.at(0).type, MsgType::Done);
    EXPECT_EQ(order(), (std::vector<JobId>{0, 3, 2, 1, 4}));   // 3 moved ahead of 2, its owner's first
}

// ---- the queue's side --------------------------------------------------------------------------------

JobResult exit_code(int e) {
    JobResult r;
    r.errorlevel = e;
    return r;
}

JobSpec of(uid_t uid, std::vector<std::string> argv, int slots = 1) {
    JobSpec s;
    s.argv = std::move(argv);
    s.cwd = "/";
    s.uid = uid;
    s.num_slots = slots;
    return s;
}

TEST(QueueUsage, CountsWaitingJobsAndTheBytesOfAllOfThem) {
    Queue q;
    q.set_max_slots(1);
    JobId a = q.add(of(7, {"echo", "12345"}), 0);
    JobId b = q.add(of(7, {"echo", "x"}), 0);
    q.add(of(8, {"other"}), 0);
    size_t bytes_a = Queue::spec_bytes(of(7, {"echo", "12345"}));
    size_t bytes_b = Queue::spec_bytes(of(7, {"echo", "x"}));
    EXPECT_EQ(q.usage(7).waiting, 2u);
    EXPECT_EQ(q.usage(7).bytes, bytes_a + bytes_b);
    ASSERT_EQ(q.schedule().start, std::vector<JobId>{a});
    EXPECT_EQ(q.usage(7).waiting, 2u);   // running counts
    ASSERT_TRUE(q.remove(b));
    EXPECT_EQ(q.usage(7).waiting, 1u);
    EXPECT_EQ(q.usage(7).bytes, bytes_a);
    q.end(a, JobResult(), 1);
    EXPECT_EQ(q.usage(7).waiting, 0u);     // finished: no longer waiting
    EXPECT_EQ(q.usage(7).bytes, bytes_a);  // but still held
    q.clear_finished();
    EXPECT_EQ(q.usage(7).bytes, 0u);
    EXPECT_EQ(q.usage(8).waiting, 1u);
    EXPECT_EQ(q.usage(9).waiting, 0u);
}

TEST(QueueUsage, ForgottenAndEvictedJobsGiveTheirBytesBack) {
    Queue q;
    q.set_max_slots(5);
    q.set_max_finished(1);
    JobSpec nf = of(7, {"gone"});
    nf.flags &= ~proto::kKeepFinished;
    JobId a = q.add(nf, 0);
    JobId b = q.add(of(7, {"kept", "1"}), 0);
    JobId c = q.add(of(7, {"kept", "2"}), 0);
    q.schedule();
    for (JobId id : {a, b, c}) q.end(id, JobResult(), 1);
    EXPECT_EQ(q.usage(7).waiting, 0u);
    EXPECT_EQ(q.usage(7).bytes, Queue::spec_bytes(of(7, {"kept", "2"})));   // b evicted, a not kept
}

TEST(QueueEviction, AnotherUsersStreamOfJobsDoesNotPushTheOwnersResultsOut) {
    Queue q;
    q.set_max_slots(1);
    q.set_max_finished(3);
    JobId mine = q.add(of(1, {"mine"}), 0);
    q.schedule();
    q.end(mine, exit_code(7), 1);
    for (int i = 0; i < 10; ++i) {
        JobId id = q.add(of(2, {"flood"}), 0);
        q.schedule();
        q.end(id, exit_code(0), 2);
    }
    ASSERT_NE(q.find(mine), nullptr);   // theirs went first
    EXPECT_EQ(q.find(mine)->result.errorlevel, 7);
    EXPECT_EQ(q.finished_list().size(), 3u);
    EXPECT_EQ(q.usage(2).finished, 2u);
    // One user alone: the oldest goes, as in task-spooler.
    Queue one;
    one.set_max_finished(2);
    for (int i = 0; i < 4; ++i) {
        JobId id = one.add(of(1, {"j"}), 0);
        one.schedule();
        one.end(id, exit_code(0), 1);
    }
    EXPECT_EQ(std::vector<JobId>(one.finished_list().begin(), one.finished_list().end()),
              (std::vector<JobId>{2, 3}));
}

TEST(QueueLastJob, IsTheRequestersOwnInASharedQueue) {
    Queue q;
    q.set_max_slots(1);
    JobId a = q.add(of(1, {"a"}), 0);
    JobId b = q.add(of(2, {"b"}), 0);
    q.schedule();   // a runs
    EXPECT_EQ(q.last_added(1)->id, a);   // not b, which is newer but another user's
    EXPECT_EQ(q.last_added(2)->id, b);
    EXPECT_EQ(q.last_run(1)->id, a);
    EXPECT_EQ(q.last_run(2), nullptr);   // none of theirs runs or has run
    q.end(a, exit_code(3), 1);
    q.schedule();   // b runs
    EXPECT_EQ(q.last_run(1)->id, a);     // its newest finished
    EXPECT_EQ(q.last_run(2)->id, b);
    EXPECT_EQ(q.last_added(3), nullptr);
    EXPECT_EQ(q.last_added(), q.last_added(2));   // one user's view is task-spooler's
}

TEST(QueueUrgent, AmongOwnMovesAheadOfThatUsersQueuedJobsOnly) {
    Queue q;
    q.set_max_slots(1);
    for (auto [uid, name] : std::vector<std::pair<uid_t, const char*>>{
             {1, "head"}, {1, "a1"}, {2, "b2"}, {1, "a3"}, {2, "b4"}, {2, "b5"}})
        q.add(of(uid, {name}, 9), 0);
    JobId before = 0;
    ASSERT_TRUE(q.urgent_among_own(5, &before));
    EXPECT_EQ(before, 2);
    EXPECT_EQ(std::vector<JobId>(q.active().begin(), q.active().end()), (std::vector<JobId>{0, 1, 5, 2, 3, 4}));
    ASSERT_TRUE(q.urgent_among_own(5, &before));   // first of its owner's already
    EXPECT_EQ(before, -1);
    EXPECT_FALSE(q.urgent_among_own(0, &before));  // the head, as -u
    EXPECT_FALSE(q.urgent_among_own(42, &before));
    // The journal's record of it replays the same move.
    Queue r;
    for (auto [uid, name] : std::vector<std::pair<uid_t, const char*>>{
             {1, "head"}, {1, "a1"}, {2, "b2"}, {1, "a3"}, {2, "b4"}, {2, "b5"}})
        r.add(of(uid, {name}, 9), 0);
    ASSERT_TRUE(r.move_before(5, 2));
    EXPECT_EQ(r.active(), q.active());
    EXPECT_FALSE(r.move_before(5, 5));
    EXPECT_FALSE(r.move_before(0, 2));   // never the head
}

TEST(Savelist, QuotesEachArgumentAndLeavesOtherUsersJobsAsComments) {
    Queue q;
    q.add(of(1, {"make", "-j8"}), 0);
    q.add(of(1, {"printf", "%s|", "it's", "a b", "$(reboot)", "two\nlines"}), 0);
    q.add(of(2, {"sh", "-c", "rm -rf ~"}), 0);
    q.add(of(2, {"echo", "'; reboot; '\nts evil"}), 0);
    std::string s = savelist_text(q, 1);
    EXPECT_NE(s.find("\nts make -j8\n"), std::string::npos) << s;
    EXPECT_NE(s.find("\nts printf '%s|' 'it'\\''s' 'a b' '$(reboot)' 'two\nlines'\n"), std::string::npos) << s;
    EXPECT_NE(s.find("\n# job 2 of uid 2, not queued again: ts sh -c 'rm -rf ~'\n"), std::string::npos) << s;
    EXPECT_NE(s.find("\n# job 3 of uid 2, not queued again: ts echo ''\\''; reboot; '\\''\\nts evil'\n"),
              std::string::npos) << s;
    // Every line that is not a comment is a ts command of the owner's.
    size_t pos = 0;
    int commands = 0;
    while (pos < s.size()) {
        size_t end = s.find('\n', pos);
        std::string line = s.substr(pos, end - pos);
        pos = end + 1;
        if (line.rfind("ts ", 0) == 0) ++commands;
    }
    EXPECT_EQ(commands, 2);   // make, and printf (whose quoted newline starts a line "lines'")
}

TEST(Savelist, ShellQuoteRunsBackToTheSameArguments) {
    const std::string args[] = {"plain", "", "it's", "a b", "$(x)`y`", "tab\there", "new\nline", "-", "~"};
    std::string cmd = "printf '<%s>'";
    std::string want;
    for (const auto& a : args) {
        cmd += " " + shell_quote(a);
        want += "<" + a + ">";
    }
    FILE* p = popen(cmd.c_str(), "r");
    ASSERT_NE(p, nullptr);
    std::string got;
    char buf[256];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) got.append(buf, n);
    pclose(p);
    EXPECT_EQ(got, want);
    EXPECT_EQ(shell_quote("make"), "make");   // what needs no quotes stays as task-spooler wrote it
}

TEST(Listing, WhatARunnerReportsIsEscaped) {
    Job j;
    j.id = 3;
    j.state = JobState::Running;
    j.spec = of(2, {"true"});
    j.output = "/tmp/\x1b[2J\n3    finished   fake";
    std::string line = list_line(j);
    EXPECT_EQ(line.find('\x1b'), std::string::npos);
    EXPECT_EQ(line.find('\n'), line.size() - 1);
    j.state = JobState::Finished;
    j.result.note = "x\ny\x1b";
    j.spec.argv = {"echo", "a\x1b[31m"};
    j.spec.env_info = "A=1\nB=\x1b[0m\n";
    std::string info = info_text(j, 0, 1, 1);   // another user's job (uid 2), seen by the owner
    EXPECT_EQ(info.find('\x1b'), std::string::npos) << info;
    EXPECT_NE(info.find("Error: x\\ny\\x1b\n"), std::string::npos) << info;
    EXPECT_NE(info.find("Environment:\nA=1\\nB=\\x1b[0m\\n\n"), std::string::npos) << info;   // one line
    EXPECT_NE(info.find("Command: echo a\\x1b[31m\n"), std::string::npos) << info;
    EXPECT_EQ(info_text(j, 0, 1, 3).find("Environment:"), std::string::npos);   // a third user: not shown
    EXPECT_NE(info_text(j, 0, 1, 2).find("Environment:"), std::string::npos);   // its owner
    j.spec.uid = 1;   // the server owner's own job: its lines as they are, escaped within
    EXPECT_NE(info_text(j, 0, 1, 1).find("Environment:\nA=1\nB=\\x1b[0m\n"), std::string::npos);
}

}  // namespace

namespace {
// Unstarted ("no process to fork the job: queue it again") is for the
// server's own runners only: another user's client-held runner that sends
// it loses its connection, and its job is lost, never left running with
// no process and no runner (it would hold its slots for good).
TEST_F(SecurityTest, AnotherUsersUnstartedIsAProtocolError) {
    Fd mine;
    proto::Slots e{};
    e.n = EAGAIN;
    Received r = ask(encode_submit(job({"sleep", "1"})), kOther, &mine);
    ASSERT_EQ(r.frames.size(), 2u);
    JobId id = id_of(r.frames[0]);
    EXPECT_EQ(r.frames[1].type, MsgType::Run);
    send_bytes(mine, encode(MsgType::Unstarted, e));
    rounds();
    Received after = receive_now(mine);
    EXPECT_TRUE(after.closed) << "the connection stays open";
    for (const Frame& f : after.frames) EXPECT_NE(f.type, MsgType::Done);
    std::string list = h_->list(), state;
    for (size_t at = list.find('\n'); at != std::string::npos && at + 1 < list.size(); at = list.find('\n', at + 1)) {
        char st[32] = "";
        int n = -1;
        if (sscanf(list.c_str() + at + 1, "%d %31s", &n, st) == 2 && n == id) state = st;
    }
    EXPECT_EQ(state, "finished") << list;
}
}  // namespace
