/*
 * gpu_broker_test.cpp — the GPU broker (gpu_broker.h), alone and in the
 * server. Alone (GpuBrokerAlone): a fake probe whose results the test makes,
 * a queue without a server; the verdict on a submit before and after a
 * probe, a probe that cannot start tried again after the interval, settle
 * times, the memo that keeps a pass from placing again while nothing
 * changed, a job's GPU environment. In the server (GpuBrokerTest): a
 * ServerHarness with a fake nvidia-smi (gpu_harness.h): a job is placed only
 * by a probe begun after it was queued, and on a card only by a probe begun
 * after the last ts job there ended; one probe serves every job waiting when
 * it begins; and a pass costs nothing while nothing it decides by changes.
 */
#include "gpu_harness.h"

#include <algorithm>

#include "gpu_broker.h"
#include "queue_helpers.h"

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

// ---- the broker alone ----------------------------------------------------------------------------------------

namespace {

/* A probe whose results the test makes: started, it runs until finish(). */
struct FakeProbeState {
    int starts = 0;
    std::string refuse;          // start() fails with this, while not empty
    bool running = false;
    bool done = false;
    double began = 0;
    GpuSnapshot result;
};

class FakeProbe final : public CardProbe {
public:
    explicit FakeProbe(FakeProbeState* s) : s_(s) {}
    bool start(double now, std::string* why) override {
        if (!s_->refuse.empty()) {
            *why = s_->refuse;
            return false;
        }
        ++s_->starts;
        s_->running = true;
        s_->done = false;
        s_->began = now;
        return true;
    }
    bool running() const override { return s_->running; }
    int fd() const override { return -1; }
    void readable(double) override {}
    bool reaped(pid_t, int, double) override { return false; }
    void check(double) override {}
    void reap(double) override {}
    double started() const override { return s_->began; }
    double deadline() const override { return s_->running ? s_->began + 10 : 0; }
    bool take(GpuSnapshot* out) override {
        if (!s_->running || !s_->done) return false;
        s_->running = false;
        *out = s_->result;
        out->when = s_->began;
        return true;
    }

private:
    FakeProbeState* s_;
};

constexpr uint64_t kGiB = uint64_t(1) << 30;

GpuCard card80(int i) {
    GpuCard c;
    c.uuid = format("GPU-%d", i);
    c.index = i;
    c.name = "NVIDIA H100";
    c.mem_total = 80 * kGiB;
    c.mem_known = true;
    return c;
}

JobSpec gpu_spec(uint32_t n, uint64_t mem = 0) {
    JobSpec s = cmd({"train"}, 0);
    s.settings.set_gpus(n);
    if (mem) s.settings.set_gpu_mem(mem);
    return s;
}

class GpuBrokerAlone : public ::testing::Test {
protected:
    void SetUp() override {
        cfg_.probe_interval = 5;
        cfg_.gpu.settle = 0;
        broker_ = std::make_unique<GpuBroker>(cfg_, q_, std::make_unique<FakeProbe>(&p_),
                                              [this](const std::string& l) { log_.push_back(l); });
    }
    /* The running probe ends at now with these cards (and these processes). */
    void finish(double now, std::vector<GpuCard> cards, std::vector<GpuProcess> procs = {}) {
        p_.result = GpuSnapshot();
        p_.result.ok = true;
        p_.result.source = "nvidia-smi";
        p_.result.cards = std::move(cards);
        p_.result.procs = std::move(procs);
        p_.result.ended = now;
        p_.done = true;
        broker_->poll(now);
        ASSERT_TRUE(broker_->take(now));
    }
    /* A probe begun at now that ends at once with these cards. */
    void probe(double now, std::vector<GpuCard> cards, std::vector<GpuProcess> procs = {}) {
        ASSERT_EQ(broker_->want_probe(now), GpuBroker::Begun::Started);
        finish(now, std::move(cards), std::move(procs));
    }
    size_t logged(const std::string& part) const {
        return size_t(std::count_if(log_.begin(), log_.end(),
                                    [&](const std::string& l) { return l.find(part) != std::string::npos; }));
    }

    ServerConfig cfg_;
    Queue q_;
    FakeProbeState p_;
    std::vector<std::string> log_;
    std::unique_ptr<GpuBroker> broker_;
};

}  // namespace

TEST_F(GpuBrokerAlone, ASubmitWaitsForTheFirstProbeThenIsJudgedByIt) {
    using Verdict = GpuBroker::Verdict;
    EXPECT_EQ(broker_->may_queue({0, 0}).kind, Verdict::Yes) << "a job without GPUs never waits";
    EXPECT_EQ(broker_->may_queue({1, 0}).kind, Verdict::AfterProbe);
    ASSERT_EQ(broker_->want_probe(100), GpuBroker::Begun::Started);
    EXPECT_EQ(broker_->want_probe(100), GpuBroker::Begun::No) << "one probe at a time";
    broker_->poll(100.5);
    EXPECT_FALSE(broker_->take(100.5)) << "it has not ended";
    EXPECT_EQ(broker_->may_queue({1, 0}).kind, Verdict::AfterProbe);
    finish(101, {card80(0)});
    EXPECT_TRUE(broker_->probed());
    EXPECT_EQ(broker_->may_queue({1, 0}).kind, Verdict::Yes);
    EXPECT_EQ(broker_->may_queue({1, 60 * kGiB}).kind, Verdict::Yes);
    Verdict two = broker_->may_queue({2, 0});
    EXPECT_EQ(two.kind, Verdict::No);
    EXPECT_NE(two.why.find("needs 2 GPUs"), std::string::npos) << two.why;
    Verdict big = broker_->may_queue({1, 100 * kGiB});
    EXPECT_EQ(big.kind, Verdict::No) << "more memory than the card has";
    EXPECT_EQ(p_.starts, 1);
}

TEST_F(GpuBrokerAlone, ASubmitIsNotRefusedWhileTheProbeCannotTell) {
    using Verdict = GpuBroker::Verdict;
    GpuCard odd = card80(1);
    odd.unreadable = "memory.total: [N/A]";
    probe(100, {card80(0), odd});
    EXPECT_EQ(broker_->may_queue({2, 0}).kind, Verdict::Yes) << "the card ts cannot read may be the one it needs";
    EXPECT_EQ(broker_->may_queue({3, 0}).kind, Verdict::Yes);
    // A failed probe: nothing can be told either.
    ASSERT_EQ(broker_->want_probe(200), GpuBroker::Begun::Started);
    p_.result = GpuSnapshot();
    p_.result.error = "nvidia-smi: exit status 9";
    p_.result.ended = 200;
    p_.done = true;
    ASSERT_TRUE(broker_->take(200));
    EXPECT_EQ(broker_->may_queue({3, 0}).kind, Verdict::Yes);
}

TEST_F(GpuBrokerAlone, AProbeThatCannotStartIsTriedAgainAfterTheInterval) {
    q_.add(gpu_spec(1), 0, 90);
    p_.refuse = "nvidia-smi was not found";
    EXPECT_EQ(broker_->want_probe(100), GpuBroker::Begun::Failed);
    EXPECT_TRUE(broker_->probed()) << "whoever waited for it hears why";
    EXPECT_EQ(broker_->may_queue({1, 0}).kind, GpuBroker::Verdict::Yes) << "it waits, with the reason in -i";
    EXPECT_EQ(broker_->list_text(100), "The GPUs cannot be probed: nvidia-smi was not found\n");
    EXPECT_EQ(logged("cannot be probed"), 1u);
    p_.refuse.clear();
    EXPECT_EQ(broker_->want_probe(103), GpuBroker::Begun::No) << "not before the interval";
    EXPECT_EQ(broker_->wakeup(103), 105) << "the loop wakes for the retry";
    EXPECT_EQ(p_.starts, 0);
    EXPECT_EQ(broker_->want_probe(105), GpuBroker::Begun::Started);
    finish(106, {card80(0)});
    EXPECT_EQ(logged("can be probed again"), 1u);
    EXPECT_EQ(broker_->list_text(106).find("The last probe of the GPUs failed"), std::string::npos);
}

TEST_F(GpuBrokerAlone, ACardSettlesAfterAStart) {
    cfg_.gpu.settle = 30;
    cfg_.probe_interval = 60;
    q_.add(gpu_spec(1), 0, 90);
    probe(100, {card80(0), card80(1)});
    EXPECT_EQ(broker_->wakeup(101), 160) << "nothing settles: the next probe";
    broker_->started_on({"GPU-1"}, 110);
    EXPECT_EQ(broker_->wakeup(111), 140) << "card 1 settles then";
    EXPECT_EQ(broker_->wakeup(141), 160);
    // A pass placed while a card settles is done again once it has.
    std::unique_ptr<GpuPlan> plan = broker_->plan(111);
    ASSERT_NE(plan, nullptr);
    EXPECT_TRUE(broker_->pass_due(111));
    Decisions d;
    d.gpu_waiting = true;
    broker_->passed(111, true, plan.get(), d);
    EXPECT_FALSE(broker_->pass_due(139));
    EXPECT_TRUE(broker_->pass_due(140));
}

// The card has room for a job, but not for the one that waits (it declares
// more memory than is free): the pass asks once, then not again while
// nothing it decided by changes.
TEST_F(GpuBrokerAlone, APassThatPlacedNothingIsNotDoneAgainUntilSomethingChanges) {
    GpuCard used = card80(0);
    used.mem_used = 70 * kGiB;
    JobId a = q_.add(gpu_spec(1, 20 * kGiB), 0, 90);
    probe(100, {used});
    ASSERT_TRUE(broker_->pass_due(101));
    std::unique_ptr<GpuPlan> plan = broker_->plan(101);
    ASSERT_NE(plan, nullptr);
    Decisions d = q_.schedule(plan.get());
    ASSERT_TRUE(d.start.empty()) << "70 of the card's 80 GiB are used";
    EXPECT_FALSE(broker_->passed(101, true, plan.get(), d)) << "a newer probe would see the same";
    EXPECT_EQ(broker_->asked(), 1u);
    EXPECT_FALSE(broker_->pass_due(102)) << "nothing changed: the job still waits";
    EXPECT_FALSE(broker_->pass_due(104.9));
    EXPECT_NE(broker_->info(*q_.find(a)).find("Waiting for GPUs: "), std::string::npos) << broker_->info(*q_.find(a));
    // The probe gets old: a pass is due, and it wants a new probe.
    EXPECT_TRUE(broker_->pass_due(105));
    EXPECT_EQ(broker_->plan(105), nullptr);
    EXPECT_TRUE(broker_->passed(105, true, nullptr, q_.schedule(nullptr)));
    // A new result is a reason for a pass, which places the job once the memory is free.
    probe(106, {card80(0)});
    EXPECT_TRUE(broker_->pass_due(106));
    plan = broker_->plan(106);
    d = q_.schedule(plan.get());
    EXPECT_EQ(d.start, std::vector<JobId>{a});
    broker_->passed(106, true, plan.get(), d);
    EXPECT_TRUE(broker_->pass_due(106)) << "a pass that started a job is followed by another";
}

TEST_F(GpuBrokerAlone, ACardLeftByAJobWaitsForAProbeBegunAfter) {
    JobId a = q_.add(gpu_spec(1), 0, 90);
    JobId b = q_.add(gpu_spec(1), 0, 91);
    probe(100, {card80(0)});
    broker_->pass_due(100);
    std::unique_ptr<GpuPlan> plan = broker_->plan(100);
    Decisions d = q_.schedule(plan.get());
    ASSERT_EQ(d.start, std::vector<JobId>{a});
    broker_->started_on(q_.find(a)->gpus(), 100);
    EXPECT_EQ(broker_->start_env(*q_.find(a)),
              (std::vector<std::string>{"CUDA_VISIBLE_DEVICES=0", "CUDA_DEVICE_ORDER=PCI_BUS_ID", "TS_GPUS=0"}));
    broker_->passed(100, true, plan.get(), d);
    EXPECT_TRUE(broker_->pass_due(100.5)) << "a pass that started a job is followed by another";
    q_.end(a, exit_with(0), 101);
    ASSERT_TRUE(broker_->pass_due(102));   // a's card is marked left at 102
    plan = broker_->plan(102);
    ASSERT_NE(plan, nullptr) << "the probe of 100 is fresh";
    d = q_.schedule(plan.get());
    EXPECT_TRUE(d.start.empty()) << "the probe began before a left its card";
    EXPECT_TRUE(broker_->passed(102, true, plan.get(), d)) << "a newer probe is wanted";
    probe(103, {card80(0)});
    plan = broker_->plan(103);
    EXPECT_EQ(q_.schedule(plan.get()).start, std::vector<JobId>{b});
}
