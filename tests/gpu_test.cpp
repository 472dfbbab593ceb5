/*
 * gpu_test.cpp — the GPU policy and allocator (gpu.h) and the queue's
 * scheduling of GPU jobs (Queue::schedule with a GpuPlan), without
 * processes: snapshots are made by hand.
 */
#include <gtest/gtest.h>

#include "gpu.h"
#include "jobs.h"
#include "queue_helpers.h"

namespace {

constexpr uint64_t kGiB = uint64_t(1) << 30;

GpuCard card(int index, const std::string& uuid, uint64_t total_gib = 80, uint64_t used_gib = 0,
             GpuVendor v = GpuVendor::Nvidia) {
    GpuCard c;
    c.index = index;
    c.uuid = uuid;
    c.vendor = v;
    c.name = "NVIDIA H100 80GB HBM3";
    c.mem_total = total_gib * kGiB;
    c.mem_used = used_gib * kGiB;
    c.mem_known = true;
    c.util = 0;
    return c;
}

GpuSnapshot snap(std::vector<GpuCard> cards, double when = 100) {
    GpuSnapshot s;
    s.ok = true;
    s.when = when;
    s.cards = std::move(cards);
    s.source = "nvidia-smi";
    return s;
}

GpuSnapshot two_cards() { return snap({card(0, "GPU-a"), card(1, "GPU-b")}); }

GpuPolicy policy(int per_gpu = 1) {
    GpuPolicy p;
    p.jobs_per_gpu = per_gpu;
    p.settle = 0;
    return p;
}

std::vector<std::string> place(GpuPlan& plan, int n, uint64_t mem = 0, std::string* why = nullptr) {
    std::vector<std::string> got;
    std::string w;
    if (!plan.place({n, mem}, &got, &w)) got.clear();
    if (why) *why = w;
    return got;
}

using Strs = std::vector<std::string>;

}  // namespace

// ---- TS_VISIBLE_DEVICES ---------------------------------------------------------------------------------

TEST(GpuVisible, IndicesAndUuidsInOrder) {
    std::vector<std::string> v;
    std::string err;
    ASSERT_TRUE(parse_visible_devices("2, 0,GPU-5c8a-11", &v, &err)) << err;
    EXPECT_EQ(v, (Strs{"2", "0", "GPU-5c8a-11"}));
    ASSERT_TRUE(parse_visible_devices("01", &v, &err));
    EXPECT_EQ(v, Strs{"1"});
}

TEST(GpuVisible, MalformedListsAreRefused) {
    std::vector<std::string> v;
    std::string err;
    for (const char* bad : {"", "0,,1", "0,", "foo", "-1", "GPU-", "1 2", "0,0", "MIG-abc", "GPU-a;rm"}) {
        EXPECT_FALSE(parse_visible_devices(bad, &v, &err)) << bad;
        EXPECT_FALSE(err.empty()) << bad;
    }
}

TEST(GpuVisible, RestrictsAndOrdersTheUsableCards) {
    GpuSnapshot s = snap({card(0, "GPU-a"), card(1, "GPU-b"), card(2, "GPU-c")});
    GpuPolicy p = policy();
    p.visible = {"2", "gpu-A"};   // a UUID matches whatever its case
    UsableCards u = usable_cards(s, p);
    ASSERT_EQ(u.cards.size(), 2u);
    EXPECT_EQ(u.cards[0]->uuid, "GPU-c");
    EXPECT_EQ(u.cards[1]->uuid, "GPU-a");
    ASSERT_EQ(u.notes.size(), 1u);
    EXPECT_NE(u.notes[0].find("GPU 1 is not in TS_VISIBLE_DEVICES"), std::string::npos);
    p.visible = {"7", "1"};
    u = usable_cards(s, p);
    ASSERT_EQ(u.cards.size(), 1u);
    EXPECT_EQ(u.cards[0]->uuid, "GPU-b");
    EXPECT_NE(u.notes[0].find("names 7, which no GPU here has"), std::string::npos);
}

TEST(GpuVisible, MigAndProhibitedCardsAreNotUsed) {
    GpuSnapshot s = two_cards();
    s.cards[0].mig = true;
    s.cards[1].mode = ComputeMode::Prohibited;
    UsableCards u = usable_cards(s, policy());
    EXPECT_TRUE(u.cards.empty());
    ASSERT_EQ(u.notes.size(), 2u);
    EXPECT_NE(u.notes[0].find("MIG"), std::string::npos);
    EXPECT_NE(u.notes[1].find("Prohibited"), std::string::npos);
}

// ---- refusal at submit -------------------------------------------------------------------------------------

TEST(GpuFit, MoreGpusThanTheMachineHasNeverFit) {
    GpuSnapshot s = two_cards(), none = snap({});
    UsableCards u = usable_cards(s, policy());
    std::string why;
    EXPECT_TRUE(could_ever_fit({2, 0}, u, &why));
    EXPECT_FALSE(could_ever_fit({3, 0}, u, &why));
    EXPECT_EQ(why, "the job needs 3 GPUs, and this machine has 2 that ts may use");
    EXPECT_FALSE(could_ever_fit({1, 0}, usable_cards(none, policy()), &why));
    EXPECT_EQ(why, "the job needs 1 GPU, and this machine has none that ts may use");
}

TEST(GpuFit, MoreMemoryThanAnyCardHasNeverFits) {
    GpuSnapshot s = snap({card(0, "GPU-a", 24), card(1, "GPU-b", 80)});
    UsableCards u = usable_cards(s, policy());
    std::string why;
    EXPECT_TRUE(could_ever_fit({1, 70 * kGiB}, u, &why));
    EXPECT_FALSE(could_ever_fit({2, 70 * kGiB}, u, &why));
    EXPECT_NE(why.find("only 1 of this machine's"), std::string::npos) << why;
    EXPECT_FALSE(could_ever_fit({1, 81 * kGiB}, u, &why));
}

TEST(GpuFit, OneJobsCardsAreOfOneVendor) {
    GpuSnapshot s = snap({card(0, "GPU-a"), card(0, "AMD-x", 64, 0, GpuVendor::Amd)});
    UsableCards u = usable_cards(s, policy());
    std::string why;
    EXPECT_TRUE(could_ever_fit({1, 0}, u, &why));
    EXPECT_FALSE(could_ever_fit({2, 0}, u, &why));
}

// ---- placing jobs ------------------------------------------------------------------------------------------

TEST(GpuPlan, OneJobPerGpuByDefault) {
    GpuSnapshot s = two_cards();
    GpuPlan plan(s, policy(), {}, 200);
    EXPECT_EQ(place(plan, 1), Strs{"GPU-a"});
    EXPECT_EQ(place(plan, 1), Strs{"GPU-b"});
    EXPECT_FALSE(plan.full() == false);
    std::string why;
    EXPECT_TRUE(place(plan, 1, 0, &why).empty());
    EXPECT_NE(why.find("no GPU is free"), std::string::npos) << why;
    EXPECT_NE(why.find("GPU 0 has 1 ts job"), std::string::npos) << why;
}

TEST(GpuPlan, SeveralJobsPerGpu) {
    GpuSnapshot s = snap({card(0, "GPU-a")});
    GpuPlan plan(s, policy(3), {}, 200);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(place(plan, 1), Strs{"GPU-a"}) << i;
    EXPECT_TRUE(plan.full());
    EXPECT_TRUE(place(plan, 1).empty());
}

TEST(GpuPlan, RunningJobsCount) {
    GpuSnapshot s = two_cards();
    GpuUse use;
    use["GPU-a"].jobs = 1;
    GpuPlan plan(s, policy(), use, 200);
    EXPECT_EQ(place(plan, 1), Strs{"GPU-b"});
    EXPECT_TRUE(place(plan, 1).empty());
}

TEST(GpuPlan, ExclusiveProcessTakesOneJob) {
    GpuSnapshot s = snap({card(0, "GPU-a")});
    s.cards[0].mode = ComputeMode::ExclusiveProcess;
    GpuPlan plan(s, policy(4), {}, 200);
    EXPECT_EQ(place(plan, 1), Strs{"GPU-a"});
    EXPECT_TRUE(place(plan, 1).empty());
}

TEST(GpuPlan, ForeignProcessMakesACardBusy) {
    GpuSnapshot s = two_cards();
    GpuProcess p;
    p.uuid = "GPU-a";
    p.pid = 4242;
    p.mem = 2 * kGiB;
    p.mem_known = true;
    s.procs.push_back(p);
    GpuPlan plan(s, policy(2), {}, 200);
    std::string why;
    EXPECT_EQ(place(plan, 1), Strs{"GPU-b"});
    EXPECT_EQ(place(plan, 1), Strs{"GPU-b"});
    EXPECT_TRUE(place(plan, 1, 0, &why).empty());
    EXPECT_NE(why.find("GPU 0 has a process that is not a ts job"), std::string::npos) << why;
    // One of ours is no reason.
    s.procs[0].ours = true;
    GpuPlan ours(s, policy(), {}, 200);
    EXPECT_EQ(place(ours, 1), Strs{"GPU-a"});
}

TEST(GpuPlan, JudgedByMemoryAForeignProcessOnlyTakesMemory) {
    GpuSnapshot s = snap({card(0, "GPU-a", 80, 70)});
    GpuProcess p;
    p.uuid = "GPU-a";
    p.pid = 4242;
    p.mem = 70 * kGiB;
    p.mem_known = true;
    s.procs.push_back(p);
    GpuPolicy pol = policy(2);
    pol.judge_by_memory = true;
    pol.min_free = 8 * kGiB;
    {
        GpuPlan plan(s, pol, {}, 200);
        EXPECT_EQ(place(plan, 1), Strs{"GPU-a"});   // 10 GiB free >= 8
    }
    pol.min_free = 12 * kGiB;
    {
        GpuPlan plan(s, pol, {}, 200);
        std::string why;
        EXPECT_TRUE(place(plan, 1, 0, &why).empty());
        EXPECT_NE(why.find("has 10 GiB free"), std::string::npos) << why;
        EXPECT_EQ(place(plan, 1, 9 * kGiB), Strs{"GPU-a"});    // declared: 70 + 9 <= 80
        EXPECT_TRUE(place(plan, 1, 11 * kGiB).empty());      // 70 + 9 + 11 > 80
    }
}

TEST(GpuPlan, DeclaredMemoryIsPacked) {
    GpuSnapshot s = snap({card(0, "GPU-a", 24)});
    GpuPolicy pol = policy(8);
    pol.settle = 30;   // settling after each start: the declarations are what counts
    GpuPlan plan(s, pol, {}, 200);
    EXPECT_EQ(place(plan, 1, 10 * kGiB), Strs{"GPU-a"});
    EXPECT_EQ(place(plan, 1, 10 * kGiB), Strs{"GPU-a"});
    std::string why;
    EXPECT_TRUE(place(plan, 1, 10 * kGiB, &why).empty());   // 30 > 24
    EXPECT_NE(why.find("4 GiB of its 24 GiB not claimed"), std::string::npos) << why;
    EXPECT_EQ(place(plan, 1, 4 * kGiB), Strs{"GPU-a"});
}

TEST(GpuPlan, WithoutSettlingAMeasureOlderThanTheLastStartIsNotTrusted) {
    GpuSnapshot s = snap({card(0, "GPU-a", 24)});
    GpuPlan plan(s, policy(8), {}, 200);   // settle 0
    EXPECT_EQ(place(plan, 1, 10 * kGiB), Strs{"GPU-a"});
    EXPECT_FALSE(plan.wants_probe());
    std::string why;
    EXPECT_TRUE(place(plan, 1, 10 * kGiB, &why).empty());   // the card was measured before that start
    EXPECT_TRUE(plan.wants_probe());
    EXPECT_NE(why.find("measured again"), std::string::npos) << why;
}

TEST(GpuPlan, DeclaredMemoryIsCheckedAgainstMeasuredOnceSettled) {
    GpuSnapshot s = snap({card(0, "GPU-a", 24, 20)}, 300);   // measured: 20 of 24 used (a job above its word?)
    GpuPolicy pol = policy(8);
    pol.settle = 30;
    GpuUse use;
    use["GPU-a"].jobs = 1;
    use["GPU-a"].claimed = 4 * kGiB;
    use["GPU-a"].last_start = 250;   // settled at 280, measured at 300
    GpuPlan plan(s, pol, use, 310);
    std::string why;
    EXPECT_TRUE(place(plan, 1, 8 * kGiB, &why).empty());
    EXPECT_NE(why.find("has 4 GiB free"), std::string::npos) << why;
    EXPECT_EQ(place(plan, 1, 4 * kGiB), Strs{"GPU-a"});
}

TEST(GpuPlan, WhileSettlingOnlyDeclarationsCount) {
    GpuSnapshot s = snap({card(0, "GPU-a", 24, 0)}, 100);   // measured before the job started
    GpuPolicy pol = policy(8);
    pol.settle = 30;
    pol.judge_by_memory = true;
    pol.min_free = 1 * kGiB;
    GpuUse use;
    use["GPU-a"].jobs = 1;
    use["GPU-a"].claimed = 0;
    use["GPU-a"].last_start = 105;
    {
        GpuPlan plan(s, pol, use, 110);   // settling: a job judged by measure waits
        std::string why;
        EXPECT_TRUE(place(plan, 1, 0, &why).empty());
        EXPECT_NE(why.find("settling"), std::string::npos) << why;
        EXPECT_EQ(place(plan, 1, 8 * kGiB), Strs{"GPU-a"});   // one that says its size fits by declarations
        EXPECT_FALSE(plan.wants_probe());
    }
    {
        GpuPlan plan(s, pol, use, 140);   // settled, but the measure is older than that: probe
        EXPECT_TRUE(place(plan, 1).empty());
        EXPECT_TRUE(plan.wants_probe());
    }
    GpuSnapshot later = snap({card(0, "GPU-a", 24, 6)}, 136);
    GpuPlan plan(later, pol, use, 140);
    EXPECT_EQ(place(plan, 1), Strs{"GPU-a"});
}

TEST(GpuPlan, PlacingAJobSettlesItsCard) {
    GpuSnapshot s = snap({card(0, "GPU-a", 80, 0)}, 100);
    GpuPolicy pol = policy(4);
    pol.settle = 30;
    pol.judge_by_memory = true;
    GpuPlan plan(s, pol, {}, 200);   // the first is placed by measure...
    EXPECT_EQ(place(plan, 1), Strs{"GPU-a"});
    EXPECT_TRUE(place(plan, 1).empty());   // ...and the card settles before a second
}

TEST(GpuPlan, PreferenceOrderIsVisibleOrder) {
    GpuSnapshot s = snap({card(0, "GPU-a"), card(1, "GPU-b"), card(2, "GPU-c")});
    GpuPolicy pol = policy();
    pol.visible = {"2", "0"};
    GpuPlan plan(s, pol, {}, 200);
    EXPECT_EQ(place(plan, 1), Strs{"GPU-c"});
    EXPECT_EQ(place(plan, 1), Strs{"GPU-a"});
    EXPECT_TRUE(place(plan, 1).empty());   // GPU 1 is not visible
}

TEST(GpuPlan, SeveralGpusForOneJob) {
    GpuSnapshot s = snap({card(0, "GPU-a"), card(1, "GPU-b"), card(2, "GPU-c")});
    GpuPlan plan(s, policy(), {}, 200);
    EXPECT_EQ(place(plan, 2), (Strs{"GPU-a", "GPU-b"}));
    std::string why;
    EXPECT_TRUE(place(plan, 2, 0, &why).empty());
    EXPECT_NE(why.find("1 of the 2 GPUs it needs is free"), std::string::npos) << why;
}

TEST(GpuPlan, TheFirstJobThatWaitsReservesTheCardsItCouldUse) {
    GpuSnapshot s = two_cards();
    GpuUse use;
    use["GPU-a"].jobs = 1;   // a job runs on GPU 0
    GpuPlan plan(s, policy(), use, 200);
    std::string why;
    EXPECT_TRUE(place(plan, 2, 0, &why).empty());   // needs both: waits, and keeps GPU 1
    EXPECT_TRUE(place(plan, 1, 0, &why).empty());   // a one-GPU job behind it does not take GPU 1
    EXPECT_NE(why.find("kept for an earlier job"), std::string::npos) << why;
    EXPECT_TRUE(plan.full());
}

TEST(GpuPlan, AJobThatCanNeverRunReservesNothing) {
    GpuSnapshot s = two_cards();
    GpuPlan plan(s, policy(), {}, 200);
    std::string why;
    EXPECT_TRUE(place(plan, 3, 0, &why).empty());
    EXPECT_NE(why.find("this machine has 2"), std::string::npos) << why;
    EXPECT_EQ(place(plan, 1), Strs{"GPU-a"});
}

TEST(GpuPlan, AJobsCardsAreOfOneVendor) {
    GpuSnapshot s = snap({card(0, "GPU-a"), card(0, "AMD-x", 64, 0, GpuVendor::Amd), card(1, "AMD-y", 64, 0, GpuVendor::Amd)});
    GpuPlan plan(s, policy(), {}, 200);
    EXPECT_EQ(place(plan, 2), (Strs{"AMD-x", "AMD-y"}));
    EXPECT_EQ(place(plan, 1), Strs{"GPU-a"});
}

TEST(GpuPlan, UnknownMemoryCannotTakeADeclaredJob) {
    GpuSnapshot s = snap({card(0, "GPU-a")});
    s.cards[0].mem_total = 0;
    s.cards[0].mem_known = false;
    GpuPlan plan(s, policy(2), {}, 200);
    std::string why;
    EXPECT_TRUE(place(plan, 1, kGiB, &why).empty());
    EXPECT_NE(why.find("none of this machine's have that much memory"), std::string::npos) << why;
    EXPECT_EQ(place(plan, 1), Strs{"GPU-a"});
}

// ---- a job's environment -------------------------------------------------------------------------------------

TEST(GpuEnv, NvidiaCardsByIndexInPciOrder) {
    GpuCard a = card(3, "GPU-a"), b = card(1, "GPU-b");
    EXPECT_EQ(gpu_environment({&a, &b}, false),
              (Strs{"CUDA_VISIBLE_DEVICES=3,1", "CUDA_DEVICE_ORDER=PCI_BUS_ID", "TS_GPUS=3,1"}));
}

TEST(GpuEnv, AmdCardsThroughRocrThenHipFromZero) {
    GpuCard a = card(2, "AMD-a", 64, 0, GpuVendor::Amd);
    EXPECT_EQ(gpu_environment({&a}, false), (Strs{"ROCR_VISIBLE_DEVICES=2", "HIP_VISIBLE_DEVICES=0",
                                                "CUDA_VISIBLE_DEVICES=0", "TS_GPUS=2"}));
}

TEST(GpuEnv, NoCardsNothingUnlessHidden) {
    EXPECT_TRUE(gpu_environment({}, false).empty());
    Strs hidden = gpu_environment({}, true);
    EXPECT_NE(std::find(hidden.begin(), hidden.end(), "CUDA_VISIBLE_DEVICES=-1"), hidden.end());
}

TEST(GpuEnv, SetEnvironmentReplacesOldValues) {
    std::vector<std::string> env = {"A=1", "CUDA_VISIBLE_DEVICES=7", "CUDA_VISIBLE_DEVICES_X=9", "B=2"};
    set_environment(&env, {"CUDA_VISIBLE_DEVICES=0", "TS_GPUS=0"});
    EXPECT_EQ(env, (Strs{"A=1", "CUDA_VISIBLE_DEVICES_X=9", "B=2", "CUDA_VISIBLE_DEVICES=0", "TS_GPUS=0"}));
}

// ---- the queue with GPU jobs ---------------------------------------------------------------------------------

namespace {
JobSpec gpu_job(uint32_t n, int slots = 0, uint64_t mem = 0) {
    JobSpec s = cmd({"train"}, slots);
    s.settings.set_gpus(n);
    if (mem) s.settings.set_gpu_mem(mem);
    return s;
}
}  // namespace

TEST(QueueGpus, GpuJobsTakeGpusNotSlots) {
    Queue q;
    JobId g0 = q.add(gpu_job(1), 0), g1 = q.add(gpu_job(1), 0), c = q.add(cmd({"cpu"}), 0);
    GpuSnapshot s = two_cards();
    GpuPlan plan(s, policy(), {}, 200);
    Decisions d = q.schedule(&plan);
    EXPECT_EQ(d.start, (std::vector<JobId>{g0, g1, c}));
    EXPECT_EQ(q.busy_slots(), 1);   // the CPU job's
    EXPECT_EQ(q.find(g0)->gpus(), Strs{"GPU-a"});
    EXPECT_EQ(q.find(g1)->gpus(), Strs{"GPU-b"});
    EXPECT_EQ(q.gpu_jobs_running(), 2u);
    EXPECT_FALSE(d.gpu_waiting);
}

TEST(QueueGpus, ACpuJobNeverWaitsForAGpu) {
    Queue q;
    JobId g0 = q.add(gpu_job(2), 0);
    JobId c = q.add(cmd({"cpu"}), 0);
    Decisions d = q.schedule(nullptr);   // the GPUs are not known yet
    EXPECT_EQ(d.start, std::vector<JobId>{c});
    EXPECT_TRUE(d.gpu_waiting);
    EXPECT_EQ(q.find(g0)->state, JobState::Queued);
    EXPECT_EQ(q.gpu_jobs_queued(), 1u);
}

TEST(QueueGpus, AGpuJobWithSlotsNeedsBoth) {
    Queue q;
    JobId c = q.add(cmd({"cpu"}), 0);
    JobId g = q.add(gpu_job(1, 1), 0);
    GpuSnapshot s = two_cards();
    GpuPlan plan(s, policy(), {}, 200);
    EXPECT_EQ(q.schedule(&plan).start, std::vector<JobId>{c});   // one slot: the CPU job has it
    q.end(c, exit_with(0), 1);
    GpuPlan again(s, policy(), {}, 201);
    EXPECT_EQ(q.schedule(&again).start, std::vector<JobId>{g});
    EXPECT_EQ(q.busy_slots(), 1);
}

TEST(QueueGpus, FullSlotsDoNotStopGpuJobs) {
    Queue q;
    q.add(cmd({"cpu"}), 0);
    q.add(cmd({"cpu2"}), 0);
    JobId g = q.add(gpu_job(1), 0);
    GpuSnapshot s = two_cards();
    GpuPlan plan(s, policy(), {}, 200);
    Decisions d = q.schedule(&plan);
    EXPECT_EQ(d.start.size(), 2u);
    EXPECT_EQ(d.start.back(), g);
}

TEST(QueueGpus, AFailedDependencySkipsAGpuJobWithoutItsGpus) {
    Queue q;
    JobId a = q.add(cmd({"false"}), 0);
    ASSERT_EQ(q.schedule().start, std::vector<JobId>{a});
    JobSpec g = gpu_job(1);
    g.depends = true;
    g.depend_on = a;
    JobId b = q.add(g, 0);
    q.end(a, exit_with(1), 1);
    // Skipped without any GPU, also while the GPUs are not known.
    Decisions d = q.schedule(nullptr);
    EXPECT_EQ(d.skipped, std::vector<JobId>{b});
    EXPECT_TRUE(d.start.empty());
    EXPECT_FALSE(d.gpu_waiting);
    EXPECT_EQ(q.gpu_jobs_queued(), 0u);
    EXPECT_TRUE(q.find(b)->gpus().empty());
}

TEST(QueueGpus, AGpuJobWaitingForItsDependencyWantsNoProbe) {
    Queue q;
    JobId a = q.add(cmd({"long"}), 0);
    ASSERT_EQ(q.schedule().start, std::vector<JobId>{a});
    JobSpec g = gpu_job(1);
    g.depends = true;
    g.depend_on = a;
    q.add(g, 0);
    JobSpec n = gpu_job(1, 3);   // needs 3 slots of the 1
    q.add(n, 0);
    EXPECT_FALSE(q.schedule(nullptr).gpu_waiting);
    q.add(gpu_job(1), 0);   // one that waits for its GPUs only
    EXPECT_TRUE(q.schedule(nullptr).gpu_waiting);
}

TEST(QueueGpus, WithOnlyGpuJobsQueuedAndNoRoomThePassStopsAtOnce) {
    Queue q;
    for (int i = 0; i < 3; ++i) q.add(gpu_job(1), 0);
    GpuSnapshot s = snap({card(0, "GPU-a")});
    GpuPlan plan(s, policy(), {}, 200);
    Decisions d = q.schedule(&plan);
    ASSERT_EQ(d.start.size(), 1u);
    EXPECT_TRUE(d.gpu_waiting);
    EXPECT_EQ(plan.asked(), 1u);   // the jobs after the first were not asked: the walk stopped
}

TEST(QueueGpus, UnstartGivesTheGpusBack) {
    Queue q;
    JobId g = q.add(gpu_job(1), 0);
    GpuSnapshot s = two_cards();
    GpuPlan plan(s, policy(), {}, 200);
    ASSERT_EQ(q.schedule(&plan).start, std::vector<JobId>{g});
    ASSERT_TRUE(q.unstart(g));
    EXPECT_TRUE(q.find(g)->gpus().empty());
    EXPECT_EQ(q.gpu_jobs_queued(), 1u);
    EXPECT_EQ(q.gpu_jobs_running(), 0u);
}

TEST(QueueGpus, TheLastRunJobIsARunningGpuJob) {
    Queue q;
    JobId g = q.add(gpu_job(1), 0);
    GpuSnapshot s = two_cards();
    GpuPlan plan(s, policy(), {}, 200);
    ASSERT_EQ(q.schedule(&plan).start, std::vector<JobId>{g});
    EXPECT_EQ(q.busy_slots(), 0);
    ASSERT_NE(q.last_run(), nullptr);
    EXPECT_EQ(q.last_run()->id, g);
}

TEST(QueueGpus, ManyWaitingGpuJobsCostNothingWhenTheCardsAreFull) {
    Queue q;
    q.set_max_slots(1);
    q.add(cmd({"cpu"}), 0);
    for (int i = 0; i < 5000; ++i) q.add(gpu_job(1), 0);
    GpuSnapshot s = snap({card(0, "GPU-a")});
    GpuUse use;
    use["GPU-a"].jobs = 1;
    GpuPlan plan(s, policy(), use, 200);
    Decisions d = q.schedule(&plan);   // the CPU job starts; then no slot and no room: stop at once
    EXPECT_EQ(d.start.size(), 1u);
    EXPECT_TRUE(d.gpu_waiting);
    EXPECT_EQ(plan.asked(), 0u);   // the pass did not walk 5000 jobs
}

TEST(GpuEnv, ARunnerTakesOnlyGpuVariablesFromItsServer) {
    for (const std::string& v : gpu_environment({}, true)) EXPECT_TRUE(is_gpu_environment(v)) << v;
    GpuCard a = card(3, "GPU-a"), b = card(1, "AMD-b", 64, 0, GpuVendor::Amd);
    for (const std::string& v : gpu_environment({&a}, false)) EXPECT_TRUE(is_gpu_environment(v)) << v;
    for (const std::string& v : gpu_environment({&b}, false)) EXPECT_TRUE(is_gpu_environment(v)) << v;
    for (const char* bad : {"LD_PRELOAD=/tmp/evil.so", "PATH=/tmp", "CUDA_VISIBLE_DEVICES=0;rm", "CUDA_VISIBLE_DEVICES",
                            "CUDA_DEVICE_ORDER=FASTEST_FIRST", "TS_GPUS=0\n1", "BASH_ENV=/tmp/x", "CUDA_VISIBLE_DEVICES =0"})
        EXPECT_FALSE(is_gpu_environment(bad)) << bad;
}

TEST(GpuPlan, CardsHeldByOtherProcessesAreNoReasonToReserve) {
    // A colleague's process on GPU 1, for as long as it likes: a job needing
    // both cards must not keep GPU 0 from the one-GPU jobs behind it.
    GpuSnapshot s = two_cards();
    GpuProcess p;
    p.uuid = "GPU-b";
    p.pid = 4242;
    s.procs.push_back(p);
    GpuPlan plan(s, policy(), {}, 200);
    EXPECT_TRUE(place(plan, 2).empty());
    EXPECT_EQ(place(plan, 1), Strs{"GPU-a"});
}

TEST(GpuPlan, AJobWaitingForMemoryLeavesTheReservationToTheNext) {
    GpuSnapshot s = snap({card(0, "GPU-a", 24), card(1, "GPU-b", 24), card(2, "GPU-c", 24)});
    GpuPolicy pol = policy(2);
    pol.settle = 30;
    GpuUse use;
    use["GPU-a"].jobs = 2;   // full
    use["GPU-b"].jobs = 1;
    use["GPU-b"].claimed = 10 * kGiB;
    use["GPU-c"].jobs = 1;
    use["GPU-c"].claimed = 10 * kGiB;
    GpuPlan plan(s, pol, use, 200);
    EXPECT_TRUE(place(plan, 1, 20 * kGiB).empty());   // fits nowhere now: reserves nothing...
    EXPECT_TRUE(place(plan, 3).empty());              // ...so this one keeps GPUs 1 and 2
    std::string why;
    EXPECT_TRUE(place(plan, 1, 0, &why).empty());     // and a one-GPU job does not take them
    EXPECT_NE(why.find("kept for an earlier job"), std::string::npos) << why;
}

TEST(GpuPlan, JudgedByMemoryDeclarationsCountAsTaken) {
    // A job that said 70 GiB may not use it yet: a job without --gpu-mem
    // does not take what the declaration holds.
    GpuSnapshot s = snap({card(0, "GPU-a", 80, 2)});
    GpuPolicy pol = policy(4);
    pol.judge_by_memory = true;
    pol.min_free = 16 * kGiB;
    GpuUse use;
    use["GPU-a"].jobs = 1;
    use["GPU-a"].claimed = 70 * kGiB;
    GpuPlan plan(s, pol, use, 200);
    std::string why;
    EXPECT_TRUE(place(plan, 1, 0, &why).empty());
    EXPECT_NE(why.find("has 10 GiB free"), std::string::npos) << why;
}

// ---- what a probe could not read counts against the card ------------------------------------------------

namespace {

GpuProcess unreadable_process(const std::string& uuid, pid_t pid, const std::string& what, uint64_t mem = 0) {
    GpuProcess p;
    p.uuid = uuid;
    p.pid = pid;
    p.mem = mem;
    p.mem_known = mem != 0;
    p.name = "python";
    p.unreadable = what;
    return p;
}

}  // namespace

TEST(GpuDoubt, AProcessWithAnUnreadablePidMakesItsCardBusyWhateverThePolicy) {
    // nvidia-smi in a container: a colleague's 60 GiB process, pid [N/A].
    GpuSnapshot s = two_cards();
    s.when = 200;   // as new as the plan: measured memory counts at once
    s.procs.push_back(unreadable_process("GPU-a", 0, "pid: [N/A]", 60 * kGiB));
    for (bool by_memory : {false, true}) {
        GpuPolicy pol = policy(2);
        pol.judge_by_memory = by_memory;
        pol.min_free = kGiB;
        GpuPlan plan(s, pol, {}, 200);
        std::string why;
        EXPECT_EQ(place(plan, 1), Strs{"GPU-b"}) << by_memory;
        EXPECT_EQ(place(plan, 1, kGiB), Strs{"GPU-b"}) << by_memory;
        EXPECT_TRUE(place(plan, 1, 0, &why).empty()) << by_memory;
        EXPECT_NE(why.find("GPU 0 has a process ts cannot read (pid: [N/A]; 60 GiB; python)"), std::string::npos)
            << why;
        EXPECT_TRUE(plan.full()) << by_memory;
    }
}

TEST(GpuDoubt, AForeignProcessOfUnknownMemoryIsNotJudgedByMemory) {
    // Judged by memory, while the card settles only declarations count: a
    // process whose memory is not known would be taken for none.
    GpuSnapshot s = snap({card(0, "GPU-a", 80, 70)});
    s.procs.push_back(unreadable_process("GPU-a", 4242, "used_memory: [N/A]"));
    GpuPolicy pol = policy(4);
    pol.judge_by_memory = true;
    pol.settle = 30;
    GpuUse use;
    use["GPU-a"].jobs = 1;
    use["GPU-a"].last_start = 190;   // settling
    GpuPlan plan(s, pol, use, 200);
    std::string why;
    EXPECT_TRUE(place(plan, 1, kGiB, &why).empty());
    EXPECT_EQ(why, "no GPU is free (GPU 0 has a process ts cannot read (used_memory: [N/A]; pid 4242; python))");
    // A ts job's own process whose memory is not known is no reason.
    s.procs[0].ours = true;
    GpuPlan ours(s, pol, use, 200);
    EXPECT_EQ(place(ours, 1, kGiB), Strs{"GPU-a"});
}

TEST(GpuDoubt, AProcessWhoseCardIsNotKnownMakesEveryNvidiaCardBusy) {
    GpuSnapshot s = snap({card(0, "GPU-a"), card(1, "GPU-b"), card(0, "AMD-x", 64, 0, GpuVendor::Amd)});
    s.procs.push_back(unreadable_process("", 77, "gpu_uuid: [N/A]", kGiB));
    s.procs.push_back(unreadable_process("", 0, "line 3: Unable to determine the device handle"));
    GpuPlan plan(s, policy(), {}, 200);
    std::string why;
    EXPECT_EQ(place(plan, 1), Strs{"AMD-x"});   // nvidia-smi lists no AMD card's processes
    EXPECT_TRUE(place(plan, 1, 0, &why).empty());
    EXPECT_NE(why.find("GPU 0 has a process ts cannot read (gpu_uuid: [N/A]; pid 77; 1 GiB; python; and 1 more)"),
              std::string::npos)
        << why;
    EXPECT_NE(why.find("GPU 1 has a process ts cannot read"), std::string::npos) << why;
}

TEST(GpuDoubt, ACardThatCannotBeReadIsBusyYetAJobForItWaits) {
    GpuSnapshot s = two_cards();
    s.cards[1].mem_known = false;
    s.cards[1].mem_used = 0;
    s.cards[1].unreadable = "memory.used: [N/A]";
    GpuPlan plan(s, policy(), {}, 200);
    std::string why;
    // A job for both cards waits (it is not refused as one that can never run)...
    EXPECT_TRUE(place(plan, 2, 0, &why).empty());
    EXPECT_EQ(why, "1 of the 2 GPUs it needs is free (GPU 1 cannot be read (memory.used: [N/A]))");
    // ...and keeps nothing: what cannot be read may stay so, as a foreign process may.
    EXPECT_EQ(place(plan, 1), Strs{"GPU-a"});
    EXPECT_TRUE(place(plan, 1).empty());
    EXPECT_TRUE(plan.full());
    std::string never;
    EXPECT_TRUE(could_ever_fit({2, 0}, usable_cards(s, policy()), &never)) << never;
}

TEST(GpuDoubt, TheSentenceAndTheName) {
    GpuSnapshot s = two_cards();
    EXPECT_EQ(gpu_card_doubt(s, s.cards[0]), "");
    GpuProcess on_a = unreadable_process("GPU-a", 0, "pid: [N/A]");
    EXPECT_TRUE(gpu_process_on(on_a, s.cards[0]));
    EXPECT_FALSE(gpu_process_on(on_a, s.cards[1]));
    s.cards[0].index = -1;
    s.cards[0].bus_id = "00000000:18:00.0";
    s.cards[0].unreadable = "index: [N/A]";
    EXPECT_EQ(gpu_card_name(s.cards[0]), "the GPU at 00000000:18:00.0");
    EXPECT_EQ(gpu_card_doubt(s, s.cards[0]), "the GPU at 00000000:18:00.0 cannot be read (index: [N/A])");
    s.cards[0].bus_id.clear();
    EXPECT_EQ(gpu_card_name(s.cards[0]), "GPU GPU-a");
    s.cards[0].uuid.clear();
    EXPECT_EQ(gpu_card_name(s.cards[0]), "a GPU");
    // A process that can be read, on another card, or a ts job's, is no doubt.
    s.procs.push_back(unreadable_process("GPU-b", 5, ""));
    s.procs.push_back(unreadable_process("GPU-a", 0, "pid: [N/A]"));
    s.procs.push_back(unreadable_process("GPU-b", 6, "used_memory: [N/A]"));
    s.procs.back().ours = true;
    EXPECT_EQ(gpu_card_doubt(s, s.cards[1]), "");
}
