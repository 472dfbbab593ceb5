/*
 * clock_test.cpp — a step of the wall clock (NTP, date -s, a VM resumed) an
 * hour back or forward, through a ServerHarness (gpu_harness.h): the
 * server's timers run on the monotonic clock, so a waiting GPU job starts as
 * soon as its card frees and a probe is fresh, no job is placed by a probe
 * from before the step, a probe is not killed early, another user's idle
 * connection keeps its time, and a back-off ends on time. The step is
 * util.h's step_wall_clock_for_tests (no setting of ts reaches it).
 */
#include "gpu_harness.h"

#include <cerrno>

namespace {

class ClockTest : public GpuHarnessTest {
protected:
    void TearDown() override {
        step_wall_clock_for_tests(-stepped_);
        GpuHarnessTest::TearDown();
    }
    void step(double seconds) {
        step_wall_clock_for_tests(seconds);
        stepped_ += seconds;
    }
    /* A GPU job waits while another runs on the only card; the clock is
     * stepped; the first ends: the second must start within a few seconds. */
    void waiting_job_starts_after(double seconds) {
        cfg_.gpu.judge_by_memory = true;   // measured memory counts, once the card has settled...
        cfg_.gpu.settle = 0.3;             // ...for a moment after a start
        cfg_.probe_interval = 0.2;
        start();
        JobId a = submit(1);
        JobId b = submit(1);
        ASSERT_TRUE(rounds_until([&] { return started(a); }));
        for (int i = 0; i < 20; ++i) h_->round();
        ASSERT_FALSE(started(b));
        step(seconds);
        finish(a);
        double ended = mono_now();
        EXPECT_TRUE(rounds_until([&] { return started(b); }, 5)) << info(b);
        EXPECT_LT(mono_now() - ended, 5.0);
    }

    double stepped_ = 0;
};

}  // namespace

TEST_F(ClockTest, AWaitingGpuJobStartsWhenItsCardFreesWithTheClockSetBack) { waiting_job_starts_after(-3600); }

TEST_F(ClockTest, AWaitingGpuJobStartsWhenItsCardFreesWithTheClockSetForward) { waiting_job_starts_after(3600); }

TEST_F(ClockTest, ANewGpuJobIsNotPlacedByAProbeFromBeforeTheClockWasSetBack) {
    cards(2);
    start();
    JobId a = submit(1);
    ASSERT_TRUE(rounds_until([&] { return started(a); }));
    apps(foreign_on(1));   // a colleague takes the other card
    step(-3600);
    int before = probes();
    JobId b = submit(1);
    ASSERT_TRUE(rounds_until([&] { return probes() > before && info(b).find("not a ts job") != std::string::npos; }))
        << info(b);
    EXPECT_FALSE(started(b));
}

TEST_F(ClockTest, AProbeIsNotKilledEarlyWhenTheClockJumpsForward) {
    cfg_.probe_timeout = 5;
    write(dir_ + "/delay", "0.2");
    start();
    Fd c = send_job(1);
    ASSERT_TRUE(rounds_until([&] { return probes() == 1; }));   // the first probe runs
    step(3600);
    Received got;
    JobId id = -1;
    ASSERT_TRUE(rounds_until([&] { return (id = answer(c, &got)) >= 0 && started(id); })) << info(id);
    EXPECT_EQ(probes(), 1);
    EXPECT_EQ(log().find("did not answer"), std::string::npos) << log();
}

TEST_F(ClockTest, AnotherUsersIdleConnectionKeepsItsTimeWhenTheClockJumpsForward) {
    start();
    Fd other = h_->connect(getuid() + 1);   // has 10 s to ask something
    step(3600);
    for (int i = 0; i < 20; ++i) h_->round();
    EXPECT_FALSE(receive_now(other).closed);
}

TEST_F(ClockTest, AStartBackOffEndsOnTimeWithTheClockSetBack) {
    start();
    r_.fail_with = EAGAIN;   // no process for the first runner: the start is put off a moment
    JobId id = submit(0);
    for (int i = 0; i < 3; ++i) h_->round();
    ASSERT_TRUE(r_.jobs.empty());
    step(-3600);
    EXPECT_TRUE(rounds_until([&] { return started(id); }, 3));
}
