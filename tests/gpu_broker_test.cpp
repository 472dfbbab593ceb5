/*
 * gpu_broker_test.cpp — the server's GPU decisions through a ServerHarness
 * with a fake nvidia-smi (gpu_harness.h): a job is placed only by a probe
 * begun after it was queued, and on a card only by a probe begun after the
 * last ts job there ended; one probe serves every job waiting when it
 * begins; and a pass costs nothing while nothing it decides by changes.
 */
#include "gpu_harness.h"

namespace {

class GpuBrokerTest : public GpuHarnessTest {};

}  // namespace

TEST_F(GpuBrokerTest, AJobIsPlacedOnlyByAProbeBegunAfterItWasQueued) {
    cards(2);
    start();
    JobId a = submit(1);   // the first probe: both cards are free, and a takes card 0
    ASSERT_TRUE(rounds_until([&] { return started(a); }));
    apps(foreign_on(1));   // a colleague starts using card 1
    int before = probes();
    JobId b = submit(1);
    // The last probe (a few ms old, well within TS_GPU_PROBE_INTERVAL) saw card 1 free:
    // b waits for one of its own, which sees the colleague's process.
    ASSERT_TRUE(rounds_until([&] { return probes() > before && info(b).find("not a ts job") != std::string::npos; }))
        << info(b);
    for (int i = 0; i < 50; ++i) h_->round();
    EXPECT_FALSE(started(b)) << info(b);
    // Once the colleague is gone (a probe shows it), b starts.
    apps("");
    finish(a);
    EXPECT_TRUE(rounds_until([&] { return started(b); })) << info(b);
}

TEST_F(GpuBrokerTest, ACardIsPlacedOnOnlyByAProbeBegunAfterItsLastJobEnded) {
    start();
    JobId a = submit(1);
    JobId b = submit(1);   // waits: the only card has a ts job
    ASSERT_TRUE(rounds_until([&] { return started(a); }));
    for (int i = 0; i < 20; ++i) h_->round();
    ASSERT_FALSE(started(b));
    // a ends, and leaves a process behind on the card (a child that escaped
    // its session): the probe from before a's end cannot see that.
    apps(foreign_on(0));
    int before = probes();
    finish(a);
    ASSERT_TRUE(rounds_until([&] { return probes() > before && info(b).find("not a ts job") != std::string::npos; }))
        << info(b);
    for (int i = 0; i < 50; ++i) h_->round();
    EXPECT_FALSE(started(b)) << info(b);
}

TEST_F(GpuBrokerTest, OneProbeServesEveryJobWaitingWhenItBegins) {
    cards(4);
    start();
    JobId first = submit(1);   // the server's first probe
    ASSERT_TRUE(rounds_until([&] { return started(first); }));
    int before = probes();
    // Three submits in one round: one probe places them all.
    std::vector<Fd> conns;
    for (int i = 0; i < 3; ++i) conns.push_back(send_job(1));
    ASSERT_TRUE(rounds_until([&] { return r_.jobs.size() == 4; }));
    EXPECT_EQ(probes(), before + 1);
    // Nothing waits: nothing is probed, however many rounds run.
    for (int i = 0; i < 200; ++i) h_->round();
    EXPECT_EQ(probes(), before + 1);
}

TEST_F(GpuBrokerTest, JobsQueuedWhileAProbeRunsWaitForTheNextOne) {
    cards(3);
    start();
    JobId first = submit(1);
    ASSERT_TRUE(rounds_until([&] { return started(first); }));
    write(dir_ + "/delay", "0.2");   // each nvidia-smi call takes a while
    int before = probes();
    Fd c1 = send_job(1);
    ASSERT_TRUE(rounds_until([&] { return probes() == before + 1; }));   // its probe runs...
    Fd c2 = send_job(1);                                                   // ...when the next job comes
    Received g1, g2;
    JobId j1 = -1, j2 = -1;
    bool overlapped = false;
    ASSERT_TRUE(rounds_until([&] {
        if (j1 < 0) j1 = answer(c1, &g1);
        if (j2 < 0) j2 = answer(c2, &g2);
        if (!started(j1) && probes() > before + 1) overlapped = true;
        return j1 >= 0 && j2 >= 0 && started(j1);
    }));
    EXPECT_FALSE(overlapped) << "a second probe began while the first ran";
    // The probe placed the job queued before it began, not the other (a card was free
    // for it too): that one waits for the next probe, which begins only now.
    EXPECT_FALSE(started(j2)) << info(j2);
    ASSERT_TRUE(rounds_until([&] { return started(j2); })) << info(j2);
    EXPECT_EQ(probes(), before + 2);
}

// A card has room, but no waiting job fits it (more memory than is free):
// the passes after the first place nothing again until something changes.
TEST_F(GpuBrokerTest, AWaitingPassCostsNothingWhileNothingChanges) {
    cards(1, 70);
    start();
    std::vector<Fd> conns;
    for (int i = 0; i < 40; ++i) conns.push_back(send_job(1, 20 * kGiB));
    std::vector<Received> got(conns.size());
    ASSERT_TRUE(rounds_until([&] {
        for (size_t i = 0; i < conns.size(); ++i)
            if (got[i].frames.empty()) (void)answer(conns[i], &got[i]);
        for (const Received& r : got)
            if (r.frames.empty()) return false;
        return true;
    }));
    ASSERT_TRUE(rounds_until([&] { return h_->gpu_placements() >= 40; }));
    for (int i = 0; i < 20; ++i) h_->round();
    size_t settled = h_->gpu_placements();
    for (int i = 0; i < 500; ++i) h_->round();
    EXPECT_EQ(h_->gpu_placements(), settled) << "rounds with nothing changed placed jobs again";
    EXPECT_TRUE(r_.jobs.empty());
    // A change (a job that fits) is a reason for one pass: its probe places it, and the others are tried once.
    Fd small = send_job(1, 5 * kGiB);
    Received g;
    JobId id = -1;
    ASSERT_TRUE(rounds_until([&] { return (id = answer(small, &g)) >= 0 && started(id); }));
    for (int i = 0; i < 500; ++i) h_->round();
    EXPECT_LE(h_->gpu_placements(), settled + 4 * 41) << "a few passes for the new job, not one a round";
}
