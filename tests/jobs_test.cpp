/*
 * jobs_test.cpp — the queue model (jobs.h) driven directly, no sockets:
 * ids, slots, finishing order, the finished list, "last job" rules,
 * dependencies (seen through the exact `ts -l` text), and a job's lifecycle (every move
 * the transition table allows, and the ones it refuses).
 */
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "jobs.h"
#include "listing.h"
#include "queue_helpers.h"
#include "util.h"


// ----------------------------------------------------------- ids and slots

TEST(Queue, IdsStartAtZeroAndIncrease) {
    Queue q;
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.add(cmd({"a"}), 1.5), 0);
    EXPECT_EQ(q.add(cmd({"b"}), 2.5), 1);
    EXPECT_EQ(q.add(cmd({"c"}), 3.5), 2);
    EXPECT_EQ(q.size(), 3u);
    ASSERT_NE(q.find(1), nullptr);
    EXPECT_EQ(q.find(1)->id, 1);
    EXPECT_EQ(q.find(1)->state, JobState::Queued);
    EXPECT_EQ(q.find(1)->spec.argv, std::vector<std::string>{"b"});
    EXPECT_DOUBLE_EQ(q.find(1)->enqueue_time, 2.5);
    EXPECT_EQ(q.find(3), nullptr);
    EXPECT_EQ(q.find(-1), nullptr);
    EXPECT_EQ(ids(q.active()), (V{0, 1, 2}));
    EXPECT_TRUE(q.finished_list().empty());
}

TEST(Queue, IdsKeepIncreasingForForgottenJobs) {
    Queue q;
    JobSpec nf = cmd({"x"});
    nf.flags = proto::kForeground;   // -nf: not kept
    EXPECT_EQ(q.add(nf, 0), 0);
    EXPECT_EQ(q.schedule().start, V{0});
    q.end(0, exit_with(0), 1);
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.add(cmd({"y"}), 2), 1);
}

TEST(Queue, OneSlotStartsOneJob) {
    Queue q;
    EXPECT_EQ(q.max_slots(), 1);
    q.add(cmd({"a"}), 0);
    q.add(cmd({"b"}), 0);
    q.add(cmd({"c"}), 0);
    Decisions d = q.schedule();
    EXPECT_EQ(d.start, V{0});
    EXPECT_TRUE(d.skipped.empty());
    EXPECT_EQ(q.busy_slots(), 1);
    EXPECT_EQ(q.find(0)->state, JobState::Running);
    EXPECT_EQ(q.find(1)->state, JobState::Queued);
    EXPECT_EQ(q.find(2)->state, JobState::Queued);
    EXPECT_TRUE(q.schedule().start.empty());   // nothing changes on a second pass

    q.end(0, exit_with(0), 5);
    EXPECT_EQ(q.busy_slots(), 0);
    EXPECT_EQ(q.schedule().start, V{1});
    EXPECT_EQ(q.busy_slots(), 1);
}

TEST(Queue, ThreeSlotsStartThreeAtOnce) {
    Queue q;
    q.set_max_slots(3);
    for (int i = 0; i < 4; ++i) q.add(cmd({"sleep", "1"}), 0);
    Decisions d = q.schedule();
    EXPECT_EQ(d.start, (V{0, 1, 2}));
    EXPECT_EQ(q.busy_slots(), 3);
    EXPECT_EQ(q.max_slots(), 3);
    EXPECT_EQ(q.find(3)->state, JobState::Queued);
    q.end(1, exit_with(0), 1);
    EXPECT_EQ(q.busy_slots(), 2);
    EXPECT_EQ(q.schedule().start, V{3});
    EXPECT_EQ(q.busy_slots(), 3);
}

TEST(Queue, LoweringSlotsNeverStopsJobsAndBlocksNewOnes) {
    Queue q;
    q.set_max_slots(3);
    for (int i = 0; i < 4; ++i) q.add(cmd({"x"}), 0);
    ASSERT_EQ(q.schedule().start.size(), 3u);
    q.set_max_slots(1);
    EXPECT_EQ(q.busy_slots(), 3);
    EXPECT_TRUE(q.schedule().start.empty());
    q.end(0, exit_with(0), 1);
    q.end(1, exit_with(0), 1);
    EXPECT_TRUE(q.schedule().start.empty());   // busy 1 of 1
    q.end(2, exit_with(0), 1);
    EXPECT_EQ(q.schedule().start, V{3});
}

TEST(Queue, BigJobIsOvertakenBySmallerOnes) {
    Queue q;
    q.set_max_slots(2);
    q.add(cmd({"a"}, 1), 0);        // 0
    EXPECT_EQ(q.schedule().start, V{0});
    q.add(cmd({"big"}, 2), 0);      // 1: needs 2, only 1 free
    q.add(cmd({"c"}, 1), 0);        // 2
    EXPECT_EQ(q.schedule().start, V{2});
    EXPECT_EQ(q.busy_slots(), 2);
    EXPECT_EQ(q.find(1)->state, JobState::Queued);

    q.end(0, exit_with(0), 1);
    EXPECT_EQ(q.busy_slots(), 1);
    EXPECT_TRUE(q.schedule().start.empty());   // still only 1 free
    EXPECT_EQ(q.find(1)->state, JobState::Queued);

    q.end(2, exit_with(0), 2);
    EXPECT_EQ(q.busy_slots(), 0);
    EXPECT_EQ(q.schedule().start, V{1});
    EXPECT_EQ(q.busy_slots(), 2);
    EXPECT_EQ(q.find(1)->state, JobState::Running);
}

TEST(Queue, JobLargerThanMaxSlotsWaitsButDoesNotBlock) {
    Queue q;   // 1 slot
    q.add(cmd({"huge"}, 5), 0);
    q.add(cmd({"small"}), 0);
    EXPECT_EQ(q.schedule().start, V{1});
    q.end(1, exit_with(0), 1);
    EXPECT_TRUE(q.schedule().start.empty());
    q.set_max_slots(5);
    EXPECT_EQ(q.schedule().start, V{0});
    EXPECT_EQ(q.busy_slots(), 5);
}

TEST(Queue, ZeroSlotJobNeedsAFreeSlotButOccupiesNone) {
    Queue q;   // 1 slot
    q.add(cmd({"a"}), 0);        // 0
    EXPECT_EQ(q.schedule().start, V{0});
    q.add(cmd({"zero"}, 0), 0);  // 1
    q.add(cmd({"b"}), 0);        // 2
    EXPECT_TRUE(q.schedule().start.empty());   // no free slot, not even for -N 0
    q.end(0, exit_with(0), 1);
    EXPECT_EQ(q.schedule().start, (V{1, 2}));
    EXPECT_EQ(q.busy_slots(), 1);
    q.end(1, exit_with(0), 2);
    EXPECT_EQ(q.busy_slots(), 1);   // job 1 gave back nothing
    q.end(2, exit_with(0), 3);
    EXPECT_EQ(q.busy_slots(), 0);
}

// ---------------------------------------------------------- finished list

TEST(Queue, FinishedListIsInFinishingOrder) {
    Queue q;
    q.set_max_slots(3);
    for (int i = 0; i < 3; ++i) q.add(cmd({"x"}), 0);
    ASSERT_EQ(q.schedule().start.size(), 3u);
    q.end(2, exit_with(4, 1.0), 10);
    q.end(0, exit_with(0), 11);
    q.end(1, exit_with(-1), 12);
    EXPECT_EQ(ids(q.finished_list()), (V{2, 0, 1}));
    EXPECT_TRUE(q.active().empty());
    EXPECT_EQ(q.busy_slots(), 0);
    EXPECT_EQ(q.find(2)->state, JobState::Finished);
    EXPECT_EQ(q.find(2)->result.errorlevel, 4);
    EXPECT_DOUBLE_EQ(q.find(2)->result.real, 1.0);
    EXPECT_DOUBLE_EQ(q.find(2)->end_time, 10);
    EXPECT_EQ(q.find(1)->result.errorlevel, -1);
    EXPECT_FALSE(q.find(1)->result.skipped);
}

TEST(Queue, FinishingTwiceDoesNotFreeSlotsTwice) {
    Queue q;
    q.set_max_slots(2);
    q.add(cmd({"a"}, 2), 0);
    ASSERT_EQ(q.schedule().start, V{0});
    q.end(0, exit_with(0), 1);
    q.end(0, exit_with(3), 2);
    EXPECT_EQ(q.busy_slots(), 0);
    EXPECT_EQ(q.find(0)->result.errorlevel, 0);
    EXPECT_EQ(ids(q.finished_list()), V{0});
    q.end(42, exit_with(0), 3);   // unknown id: ignored
    EXPECT_EQ(q.busy_slots(), 0);
}

TEST(Queue, QueuedJobCanEndWithoutFreeingSlots) {
    Queue q;
    q.add(cmd({"a"}), 0);
    q.add(cmd({"b"}), 0);
    ASSERT_EQ(q.schedule().start, V{0});
    q.end(1, Queue::lost_result(), 3);   // its client vanished while queued
    EXPECT_EQ(q.busy_slots(), 1);
    EXPECT_EQ(ids(q.active()), V{0});
    EXPECT_EQ(ids(q.finished_list()), V{1});
    EXPECT_EQ(q.find(1)->state, JobState::Finished);
}

TEST(Queue, StartedRecordsPidAndOutputOnlyForRunningJobs) {
    Queue q;
    q.add(cmd({"a"}), 0);
    q.add(cmd({"b"}), 0);
    q.schedule();
    q.started(0, 4321, "/tmp/ts-out.A", 7.0);
    q.started(1, 999, "/tmp/ts-out.B", 8.0);   // job 1 is only queued
    EXPECT_EQ(q.find(0)->pid, 4321);
    EXPECT_EQ(q.find(0)->output, "/tmp/ts-out.A");
    EXPECT_DOUBLE_EQ(q.find(0)->start_time, 7.0);
    EXPECT_EQ(q.find(1)->pid, 0);
    EXPECT_EQ(q.find(1)->output, "");
}

TEST(Queue, JobWithoutKeepFinishedIsForgotten) {
    Queue q;
    q.set_max_slots(2);
    JobSpec nf = cmd({"nf"});
    nf.flags = proto::kForeground;   // -n -f
    q.add(nf, 0);                    // 0
    q.add(cmd({"kept"}), 0);         // 1
    ASSERT_EQ(q.schedule().start, (V{0, 1}));
    q.end(0, exit_with(0), 1);
    EXPECT_EQ(q.find(0), nullptr);
    EXPECT_EQ(q.size(), 1u);
    EXPECT_TRUE(q.finished_list().empty());
    EXPECT_EQ(q.busy_slots(), 1);
    q.end(1, exit_with(0), 2);
    EXPECT_EQ(ids(q.finished_list()), V{1});
    EXPECT_EQ(q.size(), 1u);
}

TEST(Queue, MaxFinishedEvictsOldest) {
    Queue q;
    q.set_max_finished(2);
    q.set_max_slots(4);
    for (int i = 0; i < 4; ++i) q.add(cmd({"x"}), 0);
    q.schedule();
    q.end(3, exit_with(0), 1);
    q.end(1, exit_with(0), 2);
    EXPECT_EQ(ids(q.finished_list()), (V{3, 1}));
    q.end(0, exit_with(0), 3);
    EXPECT_EQ(ids(q.finished_list()), (V{1, 0}));
    EXPECT_EQ(q.find(3), nullptr);
    q.end(2, exit_with(0), 4);
    EXPECT_EQ(ids(q.finished_list()), (V{0, 2}));
    EXPECT_EQ(q.find(1), nullptr);
    EXPECT_EQ(q.size(), 2u);
}

TEST(Queue, MaxFinishedOneKeepsOnlyTheLast) {
    Queue q;
    q.set_max_finished(1);
    for (int i = 0; i < 3; ++i) {
        q.add(cmd({"x"}), 0);
        q.schedule();
        q.end(i, exit_with(i), i);
        EXPECT_EQ(ids(q.finished_list()), V{i});
        EXPECT_EQ(q.size(), 1u);
        ASSERT_NE(q.last_run(), nullptr);
        EXPECT_EQ(q.last_run()->id, i);
    }
}

TEST(Queue, MaxFinishedZeroKeepsNothing) {
    Queue q;
    q.set_max_finished(0);
    q.add(cmd({"x"}), 0);
    q.schedule();
    q.end(0, exit_with(0), 1);
    EXPECT_TRUE(q.finished_list().empty());
    EXPECT_EQ(q.find(0), nullptr);
    EXPECT_EQ(q.size(), 0u);
    EXPECT_EQ(q.last_run(), nullptr);
    EXPECT_EQ(q.last_added(), nullptr);
    EXPECT_EQ(list_text(q), kHeader01);
}

// --------------------------------------------------------- "last" rules

TEST(Queue, LastAddedRules) {
    Queue q;
    EXPECT_EQ(q.last_added(), nullptr);
    q.set_max_slots(2);
    q.add(cmd({"a"}), 0);
    q.add(cmd({"b"}), 0);
    q.add(cmd({"c"}), 0);
    ASSERT_NE(q.last_added(), nullptr);
    EXPECT_EQ(q.last_added()->id, 2);   // tail of the active list, even if queued
    q.schedule();                       // 0 and 1 run
    q.end(1, exit_with(0), 1);
    q.schedule();                       // 2 runs
    EXPECT_EQ(q.last_added()->id, 2);
    q.end(2, exit_with(0), 2);
    EXPECT_EQ(q.last_added()->id, 0);   // only 0 left active
    q.end(0, exit_with(0), 3);
    EXPECT_EQ(q.last_added()->id, 0);   // tail of the finished list: finished last
    EXPECT_EQ(ids(q.finished_list()), (V{1, 2, 0}));
}

TEST(Queue, LastRunRules) {
    Queue q;
    EXPECT_EQ(q.last_run(), nullptr);
    q.set_max_slots(2);
    q.add(cmd({"a"}), 0);   // 0
    EXPECT_EQ(q.last_run(), nullptr);   // queued but no slot busy, nothing finished
    q.schedule();
    ASSERT_NE(q.last_run(), nullptr);
    EXPECT_EQ(q.last_run()->id, 0);
    q.add(cmd({"big"}, 2), 0);   // 1
    q.add(cmd({"c"}), 0);        // 2
    q.schedule();                // 2 runs, 1 waits
    EXPECT_EQ(q.last_run()->id, 0);
    q.end(0, exit_with(0), 1);
    // A slot is busy (job 2): the head of the active list is job 1, which is only queued.
    ASSERT_EQ(ids(q.active()), (V{1, 2}));
    ASSERT_EQ(q.busy_slots(), 1);
    ASSERT_NE(q.last_run(), nullptr);
    EXPECT_EQ(q.last_run()->id, 1);
    EXPECT_EQ(q.last_run()->state, JobState::Queued);
    q.end(2, exit_with(0), 2);
    // Nothing busy: the most recently finished job, though job 1 is still queued.
    ASSERT_EQ(q.busy_slots(), 0);
    EXPECT_EQ(q.last_run()->id, 2);
    EXPECT_EQ(q.last_added()->id, 1);
}

TEST(Queue, LastRunCanBeASkippedJob) {
    Queue q;
    q.add(cmd({"false"}), 0);
    q.schedule();
    q.end(0, exit_with(1), 1);
    q.add(dep_on(0), 2);
    Decisions d = q.schedule();
    EXPECT_EQ(d.skipped, V{1});
    ASSERT_NE(q.last_run(), nullptr);
    EXPECT_EQ(q.last_run()->id, 1);
    EXPECT_EQ(q.last_run()->state, JobState::Skipped);
}

// ---------------------------------------------------------- dependencies

TEST(Queue, DependentRunsAfterSuccess) {
    Queue q;
    q.set_max_slots(2);
    q.add(cmd({"a"}), 0);
    q.add(dep_on(0), 0);
    EXPECT_EQ(q.schedule().start, V{0});   // a free slot, but job 1 waits for job 0
    EXPECT_EQ(q.find(1)->state, JobState::Queued);
    EXPECT_TRUE(q.find(1)->depends);
    EXPECT_EQ(q.find(1)->depend_on, 0);
    q.end(0, exit_with(0), 1);
    Decisions d = q.schedule();
    EXPECT_EQ(d.start, V{1});
    EXPECT_TRUE(d.skipped.empty());
}

TEST(Queue, DependentOfFailedJobIsSkippedAndCascades) {
    Queue q;
    q.add(cmd({"false"}), 0);   // 0
    q.add(dep_on(0), 0);        // 1
    q.add(dep_on(1), 0);        // 2
    q.add(cmd({"other"}), 0);   // 3
    EXPECT_EQ(q.schedule().start, V{0});
    q.end(0, exit_with(3), 5);
    Decisions d = q.schedule();
    EXPECT_EQ(d.skipped, (V{1, 2}));
    EXPECT_EQ(d.start, V{3});
    for (JobId id : {1, 2}) {
        const Job* j = q.find(id);
        ASSERT_NE(j, nullptr);
        EXPECT_EQ(j->state, JobState::Skipped);
        EXPECT_EQ(j->result.errorlevel, -1);
        EXPECT_TRUE(j->result.skipped);
        EXPECT_EQ(j->result.signal, 0);
    }
    EXPECT_EQ(ids(q.finished_list()), (V{0, 1, 2}));
    EXPECT_EQ(ids(q.active()), V{3});
    EXPECT_EQ(q.busy_slots(), 1);   // skips take no slot
}

// ------------------------------------------------------------------ drain

TEST(Queue, DrainedStartsNothingAndLetsRunningJobsEnd) {
    Queue q;
    q.set_max_slots(2);
    q.add(cmd({"a"}), 0);   // 0
    EXPECT_EQ(q.schedule().start, V{0});
    uint64_t before = q.changes();
    q.set_drained(true);
    EXPECT_TRUE(q.drained());
    EXPECT_GT(q.changes(), before) << "a pass must not be skipped as unchanged";
    q.add(cmd({"b"}), 0);   // 1
    q.add(cmd({"c"}), 0);   // 2
    EXPECT_TRUE(q.schedule().start.empty()) << "a free slot, and still nothing starts";
    q.end(0, exit_with(0), 1);   // the running job ends as usual
    EXPECT_EQ(q.find(0)->state, JobState::Finished);
    EXPECT_EQ(q.busy_slots(), 0);
    EXPECT_TRUE(q.schedule().start.empty());
    EXPECT_EQ(ids(q.active()), (V{1, 2}));
    q.set_drained(false);
    EXPECT_EQ(q.schedule().start, (V{1, 2})) << "resumed: every job that fits starts";
}

TEST(Queue, DrainedSkipsNothingEitherUntilResumed) {
    Queue q;
    q.add(cmd({"false"}), 0);   // 0
    q.add(dep_on(0), 0);        // 1
    EXPECT_EQ(q.schedule().start, V{0});
    q.set_drained(true);
    q.end(0, exit_with(1), 1);
    Decisions d = q.schedule();
    EXPECT_TRUE(d.skipped.empty());
    EXPECT_TRUE(d.start.empty());
    EXPECT_EQ(q.find(1)->state, JobState::Queued);
    q.set_drained(false);
    EXPECT_EQ(q.schedule().skipped, V{1});
}

TEST(Queue, SkipCascadesToADependentEarlierInTheList) {
    Queue q;
    q.add(cmd({"false"}), 0);   // 0
    q.add(dep_on(2), 0);        // 1: on job 2, which is after it in the list
    q.add(dep_on(0), 0);        // 2
    EXPECT_EQ(q.schedule().start, V{0});
    q.end(0, exit_with(1), 1);
    Decisions d = q.schedule();
    EXPECT_EQ(d.skipped, (V{2, 1}));
    EXPECT_TRUE(d.start.empty());
    EXPECT_EQ(q.find(1)->state, JobState::Skipped);
}

TEST(Queue, DependencyOnSignalledOrLostJobSkips) {
    Queue q;
    q.add(cmd({"a"}), 0);
    q.add(dep_on(0), 0);
    q.schedule();
    q.end(0, Queue::lost_result(), 1);
    EXPECT_EQ(q.schedule().skipped, V{1});
}

TEST(Queue, DependencyOnFinishedJobUsesItsResult) {
    Queue q;
    q.add(cmd({"ok"}), 0);      // 0
    q.schedule();
    q.end(0, exit_with(0), 1);
    q.add(cmd({"bad"}), 0);     // 1
    q.schedule();
    q.end(1, exit_with(2), 2);
    q.add(dep_on(0), 3);        // 2: job 0 succeeded, although the last job failed
    q.add(dep_on(1), 3);        // 3
    Decisions d = q.schedule();
    EXPECT_EQ(d.start, V{2});
    EXPECT_TRUE(d.skipped.empty());   // a skip, like a start, waits for a free slot
    q.end(2, exit_with(0), 4);
    EXPECT_EQ(q.schedule().skipped, V{3});
}

TEST(Queue, SkipWaitsForAFreeSlotLikeAStart) {
    Queue q;
    q.add(cmd({"long"}), 0);     // 0: runs
    q.add(cmd({"doomed"}), 0);   // 1: removed below
    q.add(dep_on(1), 0);         // 2
    q.add(cmd({"after"}), 0);    // 3
    EXPECT_EQ(q.schedule().start, V{0});
    ASSERT_TRUE(q.remove(1));
    EXPECT_TRUE(q.schedule().skipped.empty());   // no free slot yet
    q.end(0, exit_with(0), 1);
    Decisions d = q.schedule();
    EXPECT_EQ(d.skipped, V{2});
    EXPECT_EQ(d.start, V{3});
    std::list<JobId> order(q.finished_list());
    EXPECT_EQ(order, (std::list<JobId>{0, 2}));
}

TEST(Queue, UnknownDependencyIsSkipped) {
    Queue q;
    q.add(dep_on(99), 0);       // 0: never existed
    q.add(dep_on(-5), 0);       // 1: explicit negative id
    Decisions d = q.schedule();
    EXPECT_EQ(d.skipped, (V{0, 1}));
    EXPECT_TRUE(d.start.empty());
    EXPECT_EQ(q.find(1)->depend_on, -5);
    EXPECT_EQ(q.find(1)->dep_prefix(), "[-5]&& ");
    EXPECT_EQ(q.busy_slots(), 0);
}

TEST(Queue, WaitingDependentDoesNotBlockLaterJobs) {
    Queue q;
    q.set_max_slots(2);
    q.add(cmd({"long"}), 0);    // 0
    q.add(dep_on(0), 0);        // 1
    q.add(cmd({"indep"}), 0);   // 2
    Decisions d = q.schedule();
    EXPECT_EQ(d.start, (V{0, 2}));
    EXPECT_EQ(q.find(1)->state, JobState::Queued);
}

TEST(Queue, DependentOfQueuedJobWaits) {
    Queue q;
    q.add(cmd({"a"}), 0);       // 0 runs
    q.add(cmd({"b"}), 0);       // 1 queued
    q.add(dep_on(1), 0);        // 2
    q.schedule();
    q.end(0, exit_with(0), 1);
    EXPECT_EQ(q.schedule().start, V{1});
    EXPECT_EQ(q.find(2)->state, JobState::Queued);
    q.end(1, exit_with(0), 2);
    EXPECT_EQ(q.schedule().start, V{2});
}

/* ts-spec §4.6: a job waiting on an explicit id "is notified when it ends"
 * (task-spooler's notify_errorlevel), so the result reaches it even when the
 * job it depends on is not kept in the finished list (-nf). */
TEST(Queue, DependentOfForgottenJobGetsItsResult) {
    Queue q;
    JobSpec nf = cmd({"nf"});
    nf.flags = proto::kForeground;   // -nf: forgotten when it ends
    q.add(nf, 0);                    // 0
    q.add(dep_on(0), 0);             // 1
    q.add(dep_on(-1), 0);            // 2: -d -> newest active job, 1
    ASSERT_EQ(q.schedule().start, V{0});
    EXPECT_EQ(q.find(2)->depend_on, 1);
    q.end(0, exit_with(0), 1);   // succeeded
    Decisions d = q.schedule();
    EXPECT_EQ(d.start, V{1});
    EXPECT_TRUE(d.skipped.empty());
}

TEST(Queue, DependentOfEvictedJobGetsItsResult) {
    Queue q;
    q.set_max_finished(0);
    q.add(cmd({"a"}), 0);       // 0
    q.add(dep_on(0), 0);        // 1
    ASSERT_EQ(q.schedule().start, V{0});
    q.end(0, exit_with(0), 1);
    EXPECT_EQ(q.schedule().start, V{1});
}

/* A skipped job that is not kept (or evicted at once) must not be touched
 * after it is gone (run under ASan). */
TEST(Queue, SkippedJobThatIsNotKeptIsForgotten) {
    Queue q;
    q.add(cmd({"false"}), 0);   // 0
    JobSpec nf = dep_on(0);
    nf.flags = proto::kForeground;
    q.add(nf, 0);               // 1
    q.schedule();
    q.end(0, exit_with(1), 1);
    Decisions d = q.schedule();
    EXPECT_EQ(d.skipped, V{1});
    EXPECT_EQ(q.find(1), nullptr);
    EXPECT_EQ(ids(q.finished_list()), V{0});
}

TEST(Queue, SkipWithMaxFinishedZero) {
    Queue q;
    q.set_max_finished(0);
    q.add(dep_on(7), 0);        // 0: unknown id
    Decisions d = q.schedule();
    EXPECT_EQ(d.skipped, V{0});
    EXPECT_EQ(q.find(0), nullptr);
    EXPECT_TRUE(q.finished_list().empty());
}

// -d resolution (ts-spec §4.6)

TEST(Queue, DashDWithNothingAnywhereUsesLastErrorlevelZero) {
    Queue q;
    q.add(dep_on(-1), 0);
    const Job* j = q.find(0);
    EXPECT_TRUE(j->depends);
    EXPECT_EQ(j->depend_on, -1);
    EXPECT_EQ(j->dep_prefix(), "&& ");
    ASSERT_TRUE(j->dep_result.has_value());
    EXPECT_EQ(*j->dep_result, 0);
    EXPECT_EQ(q.schedule().start, V{0});
}

TEST(Queue, DashDDependsOnNewestActiveJob) {
    Queue q;
    q.set_max_slots(3);
    q.add(cmd({"a"}), 0);       // 0
    q.add(cmd({"b"}), 0);       // 1
    q.schedule();               // both run
    q.add(dep_on(-1), 0);       // 2 -> 1
    q.add(dep_on(-1), 0);       // 3 -> 2
    EXPECT_EQ(q.find(2)->depend_on, 1);
    EXPECT_EQ(q.find(3)->depend_on, 2);
    EXPECT_EQ(q.find(2)->dep_prefix(), "[1]&& ");
    EXPECT_FALSE(q.find(2)->dep_result.has_value());
    EXPECT_TRUE(q.schedule().start.empty());
    q.end(1, exit_with(0), 1);
    EXPECT_EQ(q.schedule().start, V{2});
    q.end(2, exit_with(0), 2);
    EXPECT_EQ(q.schedule().start, V{3});
}

TEST(Queue, DashDAfterSuccessfulFinishedJob) {
    Queue q;
    q.add(cmd({"a"}), 0);
    q.schedule();
    q.end(0, exit_with(0), 1);
    q.add(dep_on(-1), 2);       // 1
    EXPECT_EQ(q.find(1)->depend_on, 0);
    EXPECT_EQ(q.find(1)->dep_prefix(), "[0]&& ");
    EXPECT_EQ(q.schedule().start, V{1});
}

TEST(Queue, DashDAfterFailedFinishedJob) {
    Queue q;
    q.add(cmd({"a"}), 0);
    q.schedule();
    q.end(0, exit_with(2), 1);
    q.add(dep_on(-1), 2);       // 1
    EXPECT_EQ(q.find(1)->depend_on, 0);
    Decisions d = q.schedule();
    EXPECT_EQ(d.skipped, V{1});
    EXPECT_TRUE(d.start.empty());
}

TEST(Queue, DashDWithEmptyFinishedListUsesLastErrorlevel) {
    for (int el : {0, 1}) {
        Queue q;
        JobSpec nf = cmd({"nf"});
        nf.flags = proto::kForeground;   // not kept: the finished list stays empty
        q.add(nf, 0);
        q.schedule();
        q.end(0, exit_with(el), 1);
        ASSERT_TRUE(q.finished_list().empty());
        q.add(dep_on(-1), 2);            // 1
        const Job* j = q.find(1);
        EXPECT_EQ(j->depend_on, -1) << el;
        EXPECT_EQ(j->dep_prefix(), "&& ") << el;
        Decisions d = q.schedule();
        if (el == 0) {
            EXPECT_EQ(d.start, V{1});
        } else {
            EXPECT_EQ(d.skipped, V{1});
        }
    }
}

TEST(Queue, DashDIgnoresOlderActiveJobWhenANewerOneFinished) {
    Queue q;
    q.set_max_slots(2);
    q.add(cmd({"slow"}), 0);    // 0
    q.add(cmd({"fast"}), 0);    // 1
    q.schedule();
    q.end(1, exit_with(4), 1);   // newer than job 0, which still runs
    q.add(dep_on(-1), 2);       // 2: not on 0, but on what finished last
    EXPECT_EQ(q.find(2)->depend_on, 1);
    EXPECT_EQ(q.find(2)->dep_prefix(), "[1]&& ");
    Decisions d = q.schedule();
    EXPECT_EQ(d.skipped, V{2});
}

TEST(Queue, DashDUsesNewestFinishedJobWhenItIsNewerThanTheLastToFinish) {
    Queue q;
    q.set_max_slots(2);
    q.add(cmd({"a"}), 0);       // 0
    q.add(cmd({"b"}), 0);       // 1
    q.schedule();
    q.end(1, exit_with(0), 1);
    q.end(0, exit_with(5), 2);   // finished last, but older
    q.add(dep_on(-1), 3);       // 2: highest finished id is 1, which succeeded
    EXPECT_EQ(q.find(2)->depend_on, 1);
    ASSERT_TRUE(q.find(2)->dep_result.has_value());
    EXPECT_EQ(*q.find(2)->dep_result, 0);
    EXPECT_EQ(q.schedule().start, V{2});
}

TEST(Queue, DashDAfterSkippedJobIsSkipped) {
    Queue q;
    q.add(cmd({"false"}), 0);   // 0
    q.schedule();
    q.end(0, exit_with(1), 1);
    q.add(dep_on(0), 2);        // 1 -> skipped
    ASSERT_EQ(q.schedule().skipped, V{1});
    q.add(dep_on(-1), 3);       // 2 -> on 1 (skipped, -1)
    EXPECT_EQ(q.find(2)->depend_on, 1);
    EXPECT_EQ(q.schedule().skipped, V{2});
}

TEST(Queue, DashDAfterForgottenJobUsesLastErrorlevel) {
    // "-d" after a "-nf" run: the newest kept job (0) succeeded, but the job
    // that finished last (1, not kept) failed, and that result decides.
    Queue q;
    q.add(cmd({"ok"}), 0);           // 0
    q.schedule();
    q.end(0, exit_with(0), 1);
    JobSpec nf = cmd({"bad"});
    nf.flags = proto::kForeground;
    q.add(nf, 2);                    // 1
    q.schedule();
    q.end(1, exit_with(3), 3);
    ASSERT_EQ(ids(q.finished_list()), V{0});
    q.add(dep_on(-1), 4);            // 2
    EXPECT_EQ(q.find(2)->depend_on, 0);
    EXPECT_EQ(q.find(2)->dep_prefix(), "[0]&& ");
    ASSERT_TRUE(q.find(2)->dep_result.has_value());
    EXPECT_EQ(*q.find(2)->dep_result, 3);
    EXPECT_EQ(q.schedule().skipped, V{2});
}

TEST(Queue, LostResult) {
    JobResult r = Queue::lost_result();
    EXPECT_EQ(r.errorlevel, -1);
    EXPECT_EQ(r.signal, 9);
    EXPECT_FALSE(r.skipped);
    EXPECT_DOUBLE_EQ(r.real, 0);
    EXPECT_DOUBLE_EQ(r.user, 0);
    EXPECT_DOUBLE_EQ(r.sys, 0);
}

TEST(Jobs, Command) {
    EXPECT_EQ(cmd({"echo", "a b", "", "c"}).command(), "echo a b  c");
    EXPECT_EQ(cmd({}).command(), "");
    JobSpec def;
    EXPECT_EQ(def.flags, kDefaultFlags);
    EXPECT_TRUE(def.stores_output());
    EXPECT_FALSE(def.foreground());
}

// ------------------------------------------------------------- list text

TEST(Queue, JobsShareOneCopyOfAnEnvironment) {
    Queue q;
    JobSpec s;
    s.argv = {"x"};
    s.env = {"PATH=/bin", "HOME=/h"};
    q.add(s, 0);
    q.add(s, 0);
    s.env.push_back("EXTRA=1");
    q.add(s, 0);
    ASSERT_TRUE(q.find(0)->env && q.find(1)->env && q.find(2)->env);
    EXPECT_EQ(q.find(0)->env.get(), q.find(1)->env.get());
    EXPECT_NE(q.find(0)->env.get(), q.find(2)->env.get());
    EXPECT_EQ(*q.find(2)->env, (Env{"PATH=/bin", "HOME=/h", "EXTRA=1"}));
    EXPECT_TRUE(q.find(0)->spec.env.empty());   // moved into the shared copy
}

TEST(Queue, JobsWithTheSameLimitsShareOneCopy) {
    auto limits = [](uint64_t cpu) {
        auto l = std::make_shared<Limits>();
        l->valid = (1u << 0) | (1u << 5);
        l->v[0] = {cpu, cpu * 2};
        l->v[5] = {1024, 4096};
        return l;
    };
    Queue q;
    JobSpec a = cmd({"true"}), b = cmd({"true"}), c = cmd({"true"}), d = cmd({"true"});
    a.limits = limits(60);
    b.limits = limits(60);   // equal, but another object
    c.limits = limits(61);
    q.add(a, 0);
    q.add(b, 0);
    q.add(c, 0);
    q.add(d, 0);
    ASSERT_TRUE(q.find(0)->spec.limits && q.find(1)->spec.limits && q.find(2)->spec.limits);
    EXPECT_EQ(q.find(0)->spec.limits.get(), q.find(1)->spec.limits.get());
    EXPECT_NE(q.find(0)->spec.limits.get(), q.find(2)->spec.limits.get());
    EXPECT_EQ(q.find(2)->spec.limits->v[0].cur, 61u);
    EXPECT_EQ(q.find(0)->spec.limits->v[5].max, 4096u);
    EXPECT_FALSE(q.find(3)->spec.limits);

    Job r;   // a restored job (from the journal) joins the same copy
    r.id = 10;
    r.spec = cmd({"true"});
    r.spec.limits = limits(60);
    q.restore(r);
    EXPECT_EQ(q.find(10)->spec.limits.get(), q.find(0)->spec.limits.get());
}

TEST(QueueCancel, AnUndoneAddLeavesNoTrace) {
    Queue q;
    JobSpec a;
    a.argv = {"a"};
    a.token = "tok-a";
    JobId first = q.add(a, 1);
    std::string before = list_text(q);
    JobSpec b;
    b.argv = {"b"};
    b.depends = true;   // -d on the job before
    b.token = "tok-b";
    JobId id = q.add(b, 2);
    q.cancel_add(id);
    EXPECT_EQ(list_text(q), before);
    EXPECT_EQ(q.find(id), nullptr);
    EXPECT_EQ(q.by_token("tok-b"), nullptr);
    EXPECT_EQ(q.by_token("tok-a"), q.find(first));
    EXPECT_EQ(q.usage(0).waiting, 1u);
    EXPECT_EQ(q.add(b, 3), id) << "the id is given again";
    // The dependency of the undone job does not linger: the next one learns the result once.
    Decisions d = q.schedule();
    EXPECT_EQ(d.start, (std::vector<JobId>{first}));
}

// ------------------------------------------------------------ lifecycle
//
// Every move of the transition table (jobs.cpp, kTransitions), made through
// the public operations on a job among others, and every move the table does
// not allow, refused with nothing changed.

namespace {

using Place = std::optional<JobState>;   // std::nullopt: out of the queue

const char* place_name(Place p) { return p ? state_name(*p) : "out"; }

/* The lists, busy slots and usage agree with the jobs' states. */
void expect_consistent(const Queue& q) {
    size_t waiting = 0, finished = 0, bytes = 0;
    int busy = 0;
    auto walk = [&](const std::vector<JobId>& l, std::initializer_list<JobState> states) {
        for (JobId id : l) {
            const Job* j = q.find(id);
            ASSERT_NE(j, nullptr) << "job " << id << " is listed but not known";
            EXPECT_NE(std::find(states.begin(), states.end(), j->state), states.end())
                << "job " << id << " is " << state_name(j->state) << " on the wrong list";
            if (j->state == JobState::Running) busy += j->spec.num_slots;
            (j->state == JobState::Finished || j->state == JobState::Skipped ? finished : waiting)++;
            bytes += Queue::spec_bytes(j->spec);
        }
    };
    V active = ids(q.active()), done = ids(q.finished_list()), over = q.overflow();
    walk(active, {JobState::Queued, JobState::Running});
    walk(done, {JobState::Finished, JobState::Skipped});
    walk(over, {JobState::Overflow});
    EXPECT_EQ(q.size(), active.size() + done.size() + over.size()) << "a job on no list";
    EXPECT_EQ(q.busy_slots(), busy);
    EXPECT_EQ(q.usage(0).waiting, waiting);
    EXPECT_EQ(q.usage(0).finished, finished);
    EXPECT_EQ(q.usage(0).bytes, bytes);
}

/* Everything a refused operation must leave as it was, as text. */
std::string shape(const Queue& q) {
    auto list = [](const char* name, const std::vector<JobId>& l) {
        std::string s = name;
        for (JobId id : l) s += format(" %d", id);
        return s + "\n";
    };
    std::string s = list("active", ids(q.active())) + list("finished", ids(q.finished_list())) +
                    list("overflow", q.overflow());
    const Queue::Usage& u = q.usage(0);
    Queue::Meta m = q.meta();
    s += format("busy %d, usage %zu/%zu/%zu, next %d, last %d:%d, size %zu\n", q.busy_slots(),
                u.waiting, u.finished, u.bytes, m.next_id, m.last_finished_id, m.last_errorlevel,
                q.size());
    for (JobId id = 0; id < m.next_id; ++id)
        if (const Job* j = q.find(id))
            s += format("%d %s pid %d runner %d level %d end %g dep %d token %s\n", id,
                        state_name(j->state), int(j->pid), int(j->runner_pid), j->result.errorlevel,
                        j->end_time, j->dep_result.value_or(-99), j->spec.token.c_str());
    return s;
}

/* Jobs 0 (running, the head), 1 (finished with 1) and 2 (queued), in 4 slots. */
void background(Queue& q) {
    q.set_max_slots(4);
    q.add(cmd({"a"}), 0);
    ASSERT_TRUE(q.start(0));
    q.add(cmd({"b"}), 0);
    ASSERT_TRUE(q.start(1));
    q.end(1, exit_with(1), 1);
    q.add(cmd({"c"}), 0);
}

/* The subject of a move: job 3 (its submit's token "x"). */
constexpr JobId kX = 3;

JobSpec subject(bool kept = true, bool dep_failed = false) {
    JobSpec s = dep_failed ? dep_on(1, {"x"}) : cmd({"x"});
    if (!kept) s.flags &= ~proto::kKeepFinished;   // -n
    s.token = "x";
    return s;
}

/* Job 3 in `from` among the background and job 4 after it (queued, or
 * overflow when 3 is), so that "its place" and "the end" differ. */
void put(Queue& q, Place from, const JobSpec& x) {
    background(q);
    if (!from) return;
    if (*from == JobState::Overflow) q.set_max_jobs(3);   // 2 active jobs: the queue is full
    ASSERT_EQ(q.add(x, 2), kX);
    switch (*from) {
    case JobState::Queued:
    case JobState::Overflow: break;
    case JobState::Running:
        ASSERT_TRUE(q.start(kX));
        q.started(kX, 4321, "/tmp/out", 3);
        q.set_runner(kX, 4320);
        break;
    case JobState::Finished:
        ASSERT_TRUE(q.start(kX));
        q.end(kX, exit_with(0), 4);
        break;
    case JobState::Skipped: q.end(kX, skipped_result(), 4); break;
    }
    q.add(cmd({"d"}), 5);
    ASSERT_EQ(q.find(kX)->state, *from);
}

Job restored(JobState s) {
    Job j;
    j.id = kX;
    j.state = s;
    j.spec = subject();
    return j;
}

struct Walk {
    const char* name;
    Place from;
    JobSpec spec;
    std::function<void(Queue&)> act;
    Place to;
    V active, finished, overflow;
    int busy;
};

}  // namespace

TEST(Lifecycle, EveryAllowedMoveKeepsListsBusySlotsAndUsageRight) {
    using S = JobState;
    const Place out;
    const JobSpec x = subject(), nf = subject(false), failing = subject(true, true),
                  failing_nf = subject(false, true);
    const Walk walks[] = {
        // entering
        {"out -> Queued (add)", out, x, [&](Queue& q) { EXPECT_EQ(q.add(x, 9), kX); },
         S::Queued, {0, 2, 3}, {1}, {}, 1},
        {"out -> Overflow (add: the queue is full)", out, x,
         [&](Queue& q) { q.set_max_jobs(3); EXPECT_EQ(q.add(x, 9), kX); },
         S::Overflow, {0, 2}, {1}, {3}, 1},
        {"out -> Queued (restore)", out, x, [](Queue& q) { q.restore(restored(S::Queued)); },
         S::Queued, {0, 2, 3}, {1}, {}, 1},
        {"out -> Running (restore)", out, x, [](Queue& q) { q.restore(restored(S::Running)); },
         S::Running, {0, 2, 3}, {1}, {}, 2},
        {"out -> Overflow (restore)", out, x, [](Queue& q) { q.restore(restored(S::Overflow)); },
         S::Overflow, {0, 2}, {1}, {3}, 1},
        {"out -> Finished (restore)", out, x, [](Queue& q) { q.restore(restored(S::Finished)); },
         S::Finished, {0, 2}, {1, 3}, {}, 1},
        {"out -> Skipped (restore)", out, x, [](Queue& q) { q.restore(restored(S::Skipped)); },
         S::Skipped, {0, 2}, {1, 3}, {}, 1},
        // start and unstart keep the job's place
        {"Queued -> Running (start)", S::Queued, x, [](Queue& q) { EXPECT_TRUE(q.start(kX)); },
         S::Running, {0, 2, 3, 4}, {1}, {}, 2},
        {"Queued -> Running (start: schedule)", S::Queued, x,
         [](Queue& q) { EXPECT_EQ(q.schedule().start, (V{2, 3, 4})); },
         S::Running, {0, 2, 3, 4}, {1}, {}, 4},
        {"Running -> Queued (unstart)", S::Running, x,
         [](Queue& q) {
             EXPECT_TRUE(q.unstart(kX));
             EXPECT_EQ(q.find(kX)->pid, 0);
             EXPECT_EQ(q.find(kX)->runner_pid, 0);
         },
         S::Queued, {0, 2, 3, 4}, {1}, {}, 1},
        {"Running -> Queued (retry: --retry, the run kept as an attempt)", S::Running, x,
         [](Queue& q) {
             JobResult r = exit_with(4);
             r.how = EndHow::TimedOut;
             EXPECT_TRUE(q.retry(kX, r, 9));
             EXPECT_EQ(q.find(kX)->pid, 0);
             ASSERT_EQ(q.find(kX)->attempts().size(), 1u);
             EXPECT_EQ(q.find(kX)->attempts()[0].errorlevel, 4);
             EXPECT_EQ(q.find(kX)->attempts()[0].how, EndHow::TimedOut);
             EXPECT_EQ(q.find(kX)->attempts()[0].end, 9);
         },
         S::Queued, {0, 2, 3, 4}, {1}, {}, 1},
        // admit: to the end of the active list
        {"Overflow -> Queued (admit)", S::Overflow, x, [](Queue& q) { EXPECT_TRUE(q.admit(kX)); },
         S::Queued, {0, 2, 3}, {1}, {4}, 1},
        {"Overflow -> Queued (admit_overflow)", S::Overflow, x,
         [](Queue& q) { q.set_max_jobs(4); EXPECT_EQ(q.admit_overflow(), V{kX}); },
         S::Queued, {0, 2, 3}, {1}, {4}, 1},
        // end: to the end of the finished list
        {"Queued -> Finished (end: lost)", S::Queued, x,
         [](Queue& q) { q.end(kX, Queue::lost_result("gone"), 9); },
         S::Finished, {0, 2, 4}, {1, 3}, {}, 1},
        {"Running -> Finished (end)", S::Running, x, [](Queue& q) { q.end(kX, exit_with(0), 9); },
         S::Finished, {0, 2, 4}, {1, 3}, {}, 1},
        {"Overflow -> Finished (end: refused, -B)", S::Overflow, x,
         [](Queue& q) { q.end(kX, Queue::lost_result(), 9); },
         S::Finished, {0, 2}, {1, 3}, {4}, 1},
        {"Queued -> Skipped (end: a replayed skip)", S::Queued, x,
         [](Queue& q) { q.end(kX, skipped_result(), 9); },
         S::Skipped, {0, 2, 4}, {1, 3}, {}, 1},
        {"Running -> Skipped (end)", S::Running, x, [](Queue& q) { q.end(kX, skipped_result(), 9); },
         S::Skipped, {0, 2, 4}, {1, 3}, {}, 1},
        {"Overflow -> Skipped (end)", S::Overflow, x,
         [](Queue& q) { q.end(kX, skipped_result(), 9); },
         S::Skipped, {0, 2}, {1, 3}, {4}, 1},
        {"Queued -> Skipped (skip: its dependency failed)", S::Queued, failing,
         [](Queue& q) {
             Decisions d = q.schedule();
             EXPECT_EQ(d.skipped, V{kX});
             EXPECT_EQ(d.start, (V{2, 4}));
         },
         S::Skipped, {0, 2, 4}, {1, 3}, {}, 3},
        // leaving
        {"Running -> Finished -> out (end, then forget: not kept)", S::Running, nf,
         [](Queue& q) { q.end(kX, exit_with(0), 9); },
         out, {0, 2, 4}, {1}, {}, 1},
        {"Queued -> Skipped -> out (skip, then forget: not kept)", S::Queued, failing_nf,
         [](Queue& q) { EXPECT_EQ(q.schedule().skipped, V{kX}); },
         out, {0, 2, 4}, {1}, {}, 3},
        {"Queued -> out (remove)", S::Queued, x, [](Queue& q) { EXPECT_TRUE(q.remove(kX)); },
         out, {0, 2, 4}, {1}, {}, 1},
        {"Finished -> out (remove)", S::Finished, x, [](Queue& q) { EXPECT_TRUE(q.remove(kX)); },
         out, {0, 2, 4}, {1}, {}, 1},
        {"Skipped -> out (remove)", S::Skipped, x, [](Queue& q) { EXPECT_TRUE(q.remove(kX)); },
         out, {0, 2, 4}, {1}, {}, 1},
        {"Finished -> out (evict: over TS_MAXFINISHED)", S::Finished, x,
         [](Queue& q) { q.set_max_finished(1); q.end(4, exit_with(0), 9); },
         out, {0, 2}, {4}, {}, 1},
        {"Skipped -> out (evict)", S::Skipped, x,
         [](Queue& q) { q.set_max_finished(1); q.end(4, exit_with(0), 9); },
         out, {0, 2}, {4}, {}, 1},
        {"Finished -> out (clear)", S::Finished, x, [](Queue& q) { q.clear_finished(); },
         out, {0, 2, 4}, {}, {}, 1},
        {"Skipped -> out (clear)", S::Skipped, x, [](Queue& q) { q.clear_finished(); },
         out, {0, 2, 4}, {}, {}, 1},
        {"Queued -> out (cancel_add)", S::Queued, x, [](Queue& q) { q.cancel_add(kX); },
         out, {0, 2, 4}, {1}, {}, 1},
        {"Overflow -> out (cancel_add)", S::Overflow, x, [](Queue& q) { q.cancel_add(kX); },
         out, {0, 2}, {1}, {4}, 1},
    };
    for (const Walk& w : walks) {
        SCOPED_TRACE(w.name);
        Queue q;
        put(q, w.from, w.spec);
        expect_consistent(q);
        w.act(q);
        expect_consistent(q);
        EXPECT_EQ(ids(q.active()), w.active);
        EXPECT_EQ(ids(q.finished_list()), w.finished);
        EXPECT_EQ(q.overflow(), w.overflow);
        EXPECT_EQ(q.busy_slots(), w.busy);
        const Job* j = q.find(kX);
        EXPECT_EQ(j ? Place(j->state) : std::nullopt, w.to)
            << "now " << place_name(j ? Place(j->state) : std::nullopt);
        EXPECT_EQ(q.by_token("x"), j) << "the submit's token goes with the job";
    }
}

TEST(Lifecycle, EveryOtherMoveIsRefusedWithNothingChanged) {
    using S = JobState;
    struct Refusal {
        const char* name;
        Place from;
        std::function<bool(Queue&)> act;   // what the operation answered (void: false)
    };
    auto end = [](Queue& q) { q.end(kX, exit_with(5), 9); return false; };
    auto cancel = [](Queue& q) { q.cancel_add(kX); return false; };
    const Refusal refusals[] = {
        {"start of a Running job", S::Running, [](Queue& q) { return q.start(kX); }},
        {"start of an Overflow job", S::Overflow, [](Queue& q) { return q.start(kX); }},
        {"start of a Finished job", S::Finished, [](Queue& q) { return q.start(kX); }},
        {"start of a Skipped job", S::Skipped, [](Queue& q) { return q.start(kX); }},
        {"unstart of a Queued job", S::Queued, [](Queue& q) { return q.unstart(kX); }},
        {"unstart of an Overflow job", S::Overflow, [](Queue& q) { return q.unstart(kX); }},
        {"unstart of a Finished job", S::Finished, [](Queue& q) { return q.unstart(kX); }},
        {"unstart of a Skipped job", S::Skipped, [](Queue& q) { return q.unstart(kX); }},
        {"retry of a Queued job", S::Queued, [](Queue& q) { return q.retry(kX, exit_with(1), 9); }},
        {"retry of an Overflow job", S::Overflow, [](Queue& q) { return q.retry(kX, exit_with(1), 9); }},
        {"retry of a Finished job", S::Finished, [](Queue& q) { return q.retry(kX, exit_with(1), 9); }},
        {"admit of a Queued job", S::Queued, [](Queue& q) { return q.admit(kX); }},
        {"admit of a Running job", S::Running, [](Queue& q) { return q.admit(kX); }},
        {"admit of a Finished job", S::Finished, [](Queue& q) { return q.admit(kX); }},
        {"admit of a Skipped job", S::Skipped, [](Queue& q) { return q.admit(kX); }},
        {"end of a Finished job", S::Finished, end},
        {"end of a Skipped job", S::Skipped, end},
        {"remove of a Running job", S::Running, [](Queue& q) { return q.remove(kX); }},
        {"remove of an Overflow job", S::Overflow, [](Queue& q) { return q.remove(kX); }},
        {"remove of the running head", S::Queued, [](Queue& q) { return q.remove(0); }},
        {"cancel_add of a Running job", S::Running, cancel},
        {"cancel_add of a Finished job", S::Finished, cancel},
        {"cancel_add of a Skipped job", S::Skipped, cancel},
        {"admit_overflow with no room", S::Overflow,
         [](Queue& q) { return !q.admit_overflow().empty(); }},
        {"start of an unknown job", S::Queued, [](Queue& q) { return q.start(99); }},
        {"unstart of an unknown job", S::Queued, [](Queue& q) { return q.unstart(99); }},
        {"admit of an unknown job", S::Queued, [](Queue& q) { return q.admit(99); }},
        {"remove of an unknown job", S::Queued, [](Queue& q) { return q.remove(99); }},
        {"end of an unknown job", S::Queued, [](Queue& q) { q.end(99, exit_with(0), 9); return false; }},
        {"cancel_add of an unknown job", S::Queued, [](Queue& q) { q.cancel_add(99); return false; }},
    };
    for (const Refusal& r : refusals) {
        SCOPED_TRACE(r.name);
        Queue q;
        put(q, r.from, subject());
        std::string before = shape(q);
        std::string list = list_text(q);
        EXPECT_FALSE(r.act(q));
        EXPECT_EQ(shape(q), before);
        EXPECT_EQ(list_text(q), list);
        expect_consistent(q);
    }
}

TEST(Lifecycle, TheQueuedHeadIsNeverRemoved) {
    Queue q;
    q.add(cmd({"a"}), 0);
    q.add(cmd({"b"}), 0);
    std::string before = shape(q);
    EXPECT_FALSE(q.remove(0));
    EXPECT_EQ(shape(q), before);
    EXPECT_TRUE(q.remove(1));
    EXPECT_EQ(ids(q.active()), V{0});
    expect_consistent(q);
}

// A job whose runner reported the start but ended before the job's go never
// ran: queued again, it keeps no start (what tells a job that started from one
// that never did) and no output path of the runner that is gone.
TEST(Queue, UnstartForgetsAReportedStart) {
    Queue q;
    q.add(cmd({"a"}), 1);
    ASSERT_EQ(q.schedule().start, V{0});
    q.started(0, 4242, "/tmp/ts-out.x", 5.0);
    ASSERT_TRUE(q.unstart(0));
    const Job* j = q.find(0);
    ASSERT_NE(j, nullptr);
    EXPECT_EQ(j->state, JobState::Queued);
    EXPECT_EQ(j->pid, 0);
    EXPECT_DOUBLE_EQ(j->start_time, 0);
    EXPECT_EQ(j->output, "");
}

// ---- several dependencies: -D A,B,C (all must end well) and --after=A,B (any end)

/* -D first,rest... and --after=ids..., as the client sends them. */
static JobSpec deps_on(std::vector<int32_t> must, std::vector<int32_t> after = {}) {
    JobSpec s = cmd({"true"});
    if (!must.empty()) {
        s.depends = true;
        s.depend_on = must.front();
        s.settings.set_ids(kSettingDepends, {must.begin() + 1, must.end()});
    }
    s.settings.set_ids(kSettingAfter, after);
    return s;
}

TEST(QueueDeps, SeveralDependenciesWaitForAllAndRunWhenAllEndedWell) {
    Queue q;
    q.set_max_slots(3);
    q.add(cmd({"a"}), 0);          // 0
    q.add(cmd({"b"}), 0);          // 1
    q.add(deps_on({0, 1}), 0);     // 2
    EXPECT_EQ(q.schedule().start, (V{0, 1}));
    EXPECT_EQ(q.waiting_for(*q.find(2)), (V{0, 1}));
    EXPECT_EQ(q.find(2)->dep_prefix(), "[0,1]&& ");
    q.end(0, exit_with(0), 1);
    EXPECT_TRUE(q.schedule().start.empty()) << "job 1 still runs";
    EXPECT_EQ(q.waiting_for(*q.find(2)), V{1});
    q.end(1, exit_with(0), 2);
    EXPECT_EQ(q.schedule().start, V{2});
}

TEST(QueueDeps, AFailedOneSkipsOnceAllHaveEnded) {
    Queue q;
    q.set_max_slots(3);
    q.add(cmd({"a"}), 0);          // 0
    q.add(cmd({"b"}), 0);          // 1
    q.add(deps_on({0, 1}), 0);     // 2
    q.add(deps_on({2}), 0);        // 3: cascades
    q.schedule();
    q.end(1, exit_with(4), 1);
    Decisions d = q.schedule();
    EXPECT_TRUE(d.skipped.empty()) << "it waits for job 0 as well";
    q.end(0, exit_with(0), 2);
    d = q.schedule();
    EXPECT_EQ(d.skipped, (V{2, 3}));
    EXPECT_TRUE(d.start.empty());
}

TEST(QueueDeps, AfterRunsWhateverTheResult) {
    Queue q;
    q.set_max_slots(3);
    q.add(cmd({"a"}), 0);            // 0
    q.add(cmd({"b"}), 0);            // 1
    q.add(deps_on({}, {0, 1}), 0);   // 2
    EXPECT_EQ(q.find(2)->dep_prefix(), "[0,1]; ");
    q.schedule();
    q.end(0, exit_with(1), 1);
    EXPECT_TRUE(q.schedule().start.empty());
    q.end(1, Queue::lost_result("gone"), 2);
    EXPECT_EQ(q.schedule().start, V{2});
}

TEST(QueueDeps, MixedDependsAndAfter) {
    Queue q;
    q.set_max_slots(3);
    q.add(cmd({"a"}), 0);              // 0
    q.add(cmd({"b"}), 0);              // 1
    q.add(deps_on({0}, {1}), 0);       // 2: 0 ends well, 1 ends
    q.add(deps_on({1}, {0}), 0);       // 3: 1 ends well, 0 ends
    EXPECT_EQ(q.find(2)->dep_prefix(), "[1]; [0]&& ");
    q.schedule();
    EXPECT_EQ(q.waiting_for(*q.find(2)), (V{0, 1}));
    q.end(0, exit_with(0), 1);
    q.end(1, exit_with(2), 1);
    Decisions d = q.schedule();
    EXPECT_EQ(d.start, V{2});
    EXPECT_EQ(d.skipped, V{3});
}

TEST(QueueDeps, ARemovedOneFailsDependsButEndsAfter) {
    Queue q;
    q.add(cmd({"head"}), 0);         // 0
    q.add(cmd({"x"}), 0);            // 1: removed while queued
    q.add(deps_on({0, 1}), 0);       // 2: -D 0,1
    q.add(deps_on({}, {0, 1}), 0);   // 3: --after=0,1
    EXPECT_EQ(q.schedule().start, V{0});
    ASSERT_TRUE(q.remove(1));
    q.end(0, exit_with(0), 1);
    Decisions d = q.schedule();
    EXPECT_EQ(d.skipped, V{2});
    EXPECT_EQ(d.start, V{3});
}

TEST(QueueDeps, ResultsOfForgottenDependenciesAreKept) {
    Queue q;
    q.set_max_slots(2);
    JobSpec nf = cmd({"nf"});
    nf.flags = proto::kForeground;   // not kept once it ends
    q.add(nf, 0);                    // 0
    q.add(cmd({"b"}), 0);            // 1
    q.add(deps_on({1, 0}), 0);       // 2: 0 is in the setting
    q.schedule();
    q.end(0, exit_with(5), 1);
    EXPECT_EQ(q.find(0), nullptr);
    ASSERT_NE(q.find(2)->learned(0), nullptr);
    EXPECT_EQ(*q.find(2)->learned(0), 5);
    q.end(1, exit_with(0), 2);
    EXPECT_EQ(q.schedule().skipped, V{2});
}

TEST(QueueDeps, UnknownIdsFailDependsAndDoNotHoldAfter) {
    Queue q;
    q.add(deps_on({}, {40, 41}), 0);   // 0: never given: nothing to wait for
    q.add(deps_on({0, 42}), 0);        // 1
    Decisions d = q.schedule();
    EXPECT_EQ(d.start, V{0});
    q.end(0, exit_with(0), 1);
    EXPECT_EQ(q.schedule().skipped, V{1});
}

TEST(QueueDeps, CancelledAddLeavesNoDependentBehind) {
    Queue q;
    q.add(cmd({"a"}), 0);            // 0
    q.add(deps_on({}, {0}), 0);      // 1: its record could not be written
    q.cancel_add(1);
    q.add(cmd({"c"}), 0);            // 1 again, a job without dependencies
    q.schedule();
    q.end(0, exit_with(3), 1);
    EXPECT_TRUE(q.find(1)->more_results().empty());
}

TEST(QueueDeps, RelinkAfterRestoreWaitsForEach) {
    Queue a;
    a.set_max_slots(2);
    a.add(cmd({"a"}), 0);
    a.add(cmd({"b"}), 0);
    a.add(deps_on({0}, {1}), 0);
    a.schedule();
    Queue b;
    b.set_max_slots(2);
    for (JobId id : {2, 0, 1}) b.restore(*a.find(id));   // the dependent first
    b.end(1, exit_with(9), 1);
    EXPECT_TRUE(b.schedule().start.empty());
    b.end(0, exit_with(0), 1);
    EXPECT_EQ(b.schedule().start, V{2});
}

// ----------------------------------------------------------- hold and delayed start

namespace {
JobSpec held(std::initializer_list<const char*> argv = {"true"}) {
    JobSpec s = cmd(argv);
    s.settings.set_held(true);
    return s;
}
JobSpec not_before(double t, std::initializer_list<const char*> argv = {"true"}) {
    JobSpec s = cmd(argv);
    s.settings.set_not_before(t);
    return s;
}
}  // namespace

TEST(QueueHold, AHeldJobIsPassedOverButKeepsItsPlace) {
    Queue q;
    q.set_max_slots(2);
    q.add(held(), 0);
    q.add(cmd({"b"}), 0);
    EXPECT_EQ(q.schedule(nullptr, 100).start, V{1}) << "the job behind a held one starts";
    EXPECT_EQ(ids(q.active()), (V{0, 1})) << "the held job keeps its place";
    EXPECT_EQ(q.find(0)->state, JobState::Queued);
    EXPECT_TRUE(q.schedule(nullptr, 1e12).start.empty()) << "held whatever the time";
    EXPECT_EQ(q.next_due(), 0) << "a held job has no time to wake for";
}

TEST(QueueHold, ItsDependentsWaitForItAndStartAfterItsRelease) {
    Queue q;
    q.add(held(), 0);
    q.add(dep_on(0), 0);
    q.add(dep_on(-1), 0);   // -d: the job before, 1
    EXPECT_TRUE(q.schedule(nullptr, 100).start.empty()) << "neither dependent starts nor is skipped";
    EXPECT_EQ(q.waiting_for(*q.find(1)), V{0});
    uint64_t before = q.changes();
    ASSERT_TRUE(q.hold(0, false));
    EXPECT_GT(q.changes(), before) << "a release is a change a pass decides by";
    EXPECT_FALSE(q.find(0)->spec.settings.held());
    EXPECT_EQ(q.schedule(nullptr, 100).start, V{0});
    q.end(0, exit_with(0), 101);
    EXPECT_EQ(q.schedule(nullptr, 102).start, V{1});
}

TEST(QueueHold, HoldAndReleaseOnlyAQueuedJobAndOnlyOnce) {
    Queue q;
    q.add(cmd({"a"}), 0);
    q.add(cmd({"b"}), 0);
    ASSERT_EQ(q.schedule(nullptr, 100).start, V{0});
    EXPECT_FALSE(q.hold(0, true)) << "a running job is not held";
    EXPECT_FALSE(q.hold(1, false)) << "releasing a job neither held nor delayed changes nothing";
    EXPECT_TRUE(q.hold(1, true));
    EXPECT_FALSE(q.hold(1, true)) << "held already";
    EXPECT_FALSE(q.hold(7, true)) << "no such job";
    q.end(0, exit_with(0), 101);
    EXPECT_TRUE(q.schedule(nullptr, 102).start.empty()) << "held later: it waits too";
    EXPECT_FALSE(q.hold(0, true)) << "a finished job is not held";
    EXPECT_TRUE(q.hold(1, false));
    EXPECT_EQ(q.schedule(nullptr, 103).start, V{1});
}

TEST(QueueDelay, ADelayedJobStartsOnceItsTimeComes) {
    Queue q;
    q.set_max_slots(3);
    q.add(not_before(200), 0);
    q.add(not_before(150), 0);
    q.add(cmd({"c"}), 0);
    EXPECT_EQ(q.schedule(nullptr, 100).start, V{2});
    EXPECT_EQ(q.next_due(), 150) << "the earliest start time is the next wake-up";
    uint64_t before = q.changes();
    q.note_time(149);
    EXPECT_EQ(q.changes(), before) << "not due yet: nothing changed";
    q.note_time(150);
    EXPECT_GT(q.changes(), before) << "due: the next pass must not be skipped as the last one";
    EXPECT_EQ(q.schedule(nullptr, 150).start, V{1});
    EXPECT_EQ(q.next_due(), 200);
    EXPECT_EQ(q.schedule(nullptr, 250).start, V{0}) << "a time long past (the server was down): at once";
    EXPECT_EQ(q.next_due(), 0);
}

TEST(QueueDelay, AReleaseDropsTheStartTimeAndTheClockSetBackDelays) {
    Queue q;
    q.add(not_before(200), 0);
    EXPECT_TRUE(q.schedule(nullptr, 100).start.empty());
    EXPECT_TRUE(q.schedule(nullptr, 199.5).start.empty()) << "the clock set back (or not there yet)";
    ASSERT_TRUE(q.hold(0, false)) << "a delayed job is released too";
    EXPECT_EQ(q.find(0)->spec.settings.not_before(), 0);
    EXPECT_EQ(q.schedule(nullptr, 100).start, V{0});
}

TEST(QueueHold, LastRunPassesOverAHeldOrDelayedHead) {
    Queue q;
    q.set_max_slots(2);
    q.add(held({"a"}), 0);                               // 0
    q.add(not_before(wall_now() + 3600, {"b"}), 0);      // 1
    q.add(cmd({"c"}), 0);                                // 2
    ASSERT_EQ(q.schedule().start, V{2});
    ASSERT_NE(q.last_run(), nullptr);
    EXPECT_EQ(q.last_run()->id, 2) << "-t -c -o -p -k: the running job, not the held or delayed head";
    EXPECT_EQ(q.last_run(0)->id, 2);
    q.end(2, exit_with(0), 1);
    EXPECT_EQ(q.last_run()->id, 2) << "nothing runs: the job that finished last, as before";
}

TEST(QueueHold, LastAddedIsNotAHeldJobAddedBeforeOneThatEnded) {
    Queue q;
    q.add(held({"a"}), 0);   // 0
    EXPECT_EQ(q.last_added()->id, 0) << "the held job is the last added";
    q.add(cmd({"b"}), 0);    // 1
    q.schedule();
    q.end(1, exit_with(3), 1);
    ASSERT_EQ(ids(q.active()), V{0});
    ASSERT_NE(q.last_added(), nullptr);
    EXPECT_EQ(q.last_added()->id, 1) << "-w -s -r: job 1, added after the held one, though it ended";
    EXPECT_EQ(q.last_added(0)->id, 1);
    EXPECT_EQ(q.last_added(5), nullptr) << "another user has no job";
    q.add(not_before(wall_now() + 3600, {"c"}), 0);   // 2
    EXPECT_EQ(q.last_added()->id, 2) << "a delayed job added last is the last added";
}

TEST(QueueHold, MinusRTakesAHeldOrDelayedHeadButNotAQueuedOne) {
    Queue q;
    q.add(held({"a"}), 0);                            // 0
    q.add(not_before(wall_now() + 3600, {"b"}), 0);   // 1
    q.add(cmd({"c"}, 2), 0);                          // 2: two slots of one: never starts
    EXPECT_TRUE(q.remove(0)) << "a held head has not started";
    EXPECT_TRUE(q.remove(1)) << "a delayed head has not started";
    EXPECT_FALSE(q.remove(2)) << "task-spooler's rule: a queued head is never removed by -r";
}

TEST(QueueDelay, HeldAndDelayedShowTheirWordInTheList) {
    Queue q;
    q.add(held({"a"}), 0);
    q.add(not_before(wall_now() + 3600, {"b"}), 0);
    q.add(not_before(1000, {"c"}), 0);   // long past: shown as queued
    EXPECT_EQ(list_text(q), std::string(kHeader01) +
                                "0    held       (file)                                       a\n"
                                "1    delayed    (file)                                       b\n"
                                "2    queued     (file)                                       c\n");
    EXPECT_EQ(wire_state(*q.find(0), wall_now()), proto::kHeld);
    EXPECT_EQ(wire_state(*q.find(1), wall_now()), proto::kDelayed);
    EXPECT_EQ(wire_state(*q.find(1), wall_now() + 7200), proto::kQueued);
    EXPECT_STREQ(state_name(proto::kHeld), "held");
    EXPECT_STREQ(state_name(proto::kDelayed), "delayed");
}

/* --timeout, --kill-after, --retry: settings a server checks. */
TEST(TimingSettings, ValuesAndTheirBounds) {
    JobSettings s;
    EXPECT_EQ(s.timeout(), 0);
    EXPECT_EQ(s.kill_after(), 30) << "Slurm's KillWait by default";
    EXPECT_EQ(s.retries(), 0u);
    s.set_timeout(1.5);
    s.set_kill_after(2);
    s.set_retries(3);
    EXPECT_EQ(s.timeout(), 1.5);
    EXPECT_EQ(s.kill_after(), 2);
    EXPECT_EQ(s.retries(), 3u);
    std::string why;
    EXPECT_TRUE(check_settings(s, &why)) << why;
    s.set_retries(kMaxRetries + 1);
    EXPECT_FALSE(check_settings(s, &why));
    s.set_retries(1);
    s.set_u64(kSettingTimeout, 0);
    EXPECT_FALSE(check_settings(s, &why)) << "a timeout of 0 is none: refused";
}

// --unique: the same argv of the same user, queued, running or waiting for room.
TEST(Queue, SameCommandFindsAQueuedOrRunningJobOfTheSameUserOnly) {
    Queue q;
    q.set_max_jobs(4);   // three jobs at most: the fourth waits for room (overflow)
    JobSpec a = cmd({"make", "all"});
    a.uid = 1000;
    JobId running = q.add(a, 1);
    q.schedule();
    ASSERT_EQ(q.find(running)->state, JobState::Running);
    EXPECT_EQ(q.same_command(1000, {"make", "all"})->id, running);
    EXPECT_EQ(q.same_command(1001, {"make", "all"}), nullptr);   // another user's
    EXPECT_EQ(q.same_command(1000, {"make all"}), nullptr);       // other words, same text
    EXPECT_EQ(q.same_command(1000, {"make", "all", ""}), nullptr);
    JobSpec b = cmd({"make", "test"});
    b.uid = 1000;
    JobId queued = q.add(b, 2);
    EXPECT_EQ(q.same_command(1000, {"make", "test"})->id, queued);
    q.add(cmd({"x"}), 3);
    JobSpec c = cmd({"late"});
    c.uid = 1000;
    JobId over = q.add(c, 4);
    ASSERT_EQ(q.find(over)->state, JobState::Overflow);
    EXPECT_EQ(q.same_command(1000, {"late"})->id, over);
    q.end(running, exit_with(0), 5);   // finished: no longer the same command "queued or running"
    EXPECT_EQ(q.same_command(1000, {"make", "all"}), nullptr);
}

/* A pass that decided nothing is not done again until something it decides
 * by changes: the same decisions, at no cost per request. */
TEST(QueueSchedule, APassThatDecidedNothingIsNotRepeatedUntilAChange) {
    Queue q;
    q.add(held(), 0);
    q.add(dep_on(0), 0);
    q.add(not_before(200, {"late"}), 0);
    EXPECT_TRUE(q.schedule(nullptr, 100).start.empty());
    EXPECT_TRUE(q.schedule(nullptr, 150).start.empty()) << "nothing changed, nothing due";
    EXPECT_EQ(q.schedule(nullptr, 200).start, V{2}) << "a start time that came is a change";
    q.end(2, exit_with(0), 201);
    EXPECT_TRUE(q.schedule(nullptr, 202).start.empty());
    ASSERT_TRUE(q.hold(0, false));
    EXPECT_EQ(q.schedule(nullptr, 203).start, V{0}) << "a release is a change";
    q.end(0, exit_with(0), 204);
    EXPECT_EQ(q.schedule(nullptr, 205).start, V{1}) << "a dependency's end is a change";
    q.set_max_slots(1);
    q.add(cmd({"x"}), 0);
    q.add(cmd({"y"}), 0);
    EXPECT_TRUE(q.schedule(nullptr, 206).start.empty()) << "no slot free";
    q.set_max_slots(3);
    EXPECT_EQ(q.schedule(nullptr, 207).start, (V{3, 4})) << "more slots: a change";
}

/* A list of job ids (-D's further ones, --after's) names each job once: a
 * list that repeats one is refused, as are negative ids. */
TEST(DependencySettings, EachIdOnce) {
    JobSettings s;
    std::string why;
    s.set_ids(kSettingAfter, {3, 4, 5});
    EXPECT_TRUE(check_settings(s, &why)) << why;
    s.set_ids(kSettingAfter, {3, 4, 3});
    EXPECT_FALSE(check_settings(s, &why));
    EXPECT_NE(why.find("job 3 is in the list twice"), std::string::npos) << why;
    s.set_ids(kSettingAfter, {3});
    s.set_ids(kSettingDepends, {7, 7});
    EXPECT_FALSE(check_settings(s, &why));
    s.set_ids(kSettingDepends, {7, -1});
    EXPECT_FALSE(check_settings(s, &why));
}

TEST(QueueHold, AHeldJobWhoseDependencyWasRemovedIsDoomed) {
    Queue q;
    q.add(cmd({"a"}), 0);   // 0, runs
    q.add(cmd({"b"}), 0);   // 1
    JobSpec s = held({"c"});
    s.depends = true;
    s.depend_on = 1;
    q.add(s, 0);            // 2, held, -D 1
    q.schedule();
    EXPECT_FALSE(q.doomed(2)) << "its dependency has not ended";
    ASSERT_TRUE(q.remove(1));
    EXPECT_TRUE(q.doomed(2)) << "its dependency was removed: it will be skipped";
    EXPECT_FALSE(q.doomed(0)) << "a running job";
    EXPECT_FALSE(q.doomed(9)) << "no such job";
}

/* --retry: which run a runner back after a restart carries. A job's own
 * runner of an earlier run is sent away (another runs the job); a client's
 * runner whose run ended as an attempt before it heard so is the job's, and
 * runs the next run; anything else is not the job's run. */
TEST(Queue, WhichRunARunnerThatComesBackCarries) {
    for (uint32_t flags : {0u, proto::kForeground, proto::kRunByClient}) {
        Queue q;
        JobSpec s = cmd({"flaky"});
        s.flags |= flags;
        s.settings.set_retries(3);
        JobId id = q.add(s, 1);
        ASSERT_TRUE(q.start(id));
        const Job& j = *q.find(id);
        EXPECT_EQ(run_of(j, 0, true), RunOf::Current);
        EXPECT_EQ(run_of(j, 1, false), RunOf::Over) << "a run it never had";
        ASSERT_TRUE(q.retry(id, exit_with(1), 2));   // run 0 was an attempt; run 1 is queued
        bool client = flags != 0;
        EXPECT_EQ(run_of(j, 1, false), RunOf::Current) << "waiting for run 1's Run";
        EXPECT_EQ(run_of(j, 0, true), client ? RunOf::Attempt : RunOf::Over) << flags;
        EXPECT_EQ(run_of(j, 0, false), RunOf::Over) << "run 0 never started: not the job's";
        ASSERT_TRUE(q.start(id));
        ASSERT_TRUE(q.retry(id, exit_with(1), 3));
        EXPECT_EQ(run_of(j, 0, true), RunOf::Over) << "two runs ago";
        EXPECT_EQ(run_of(j, 1, true), client ? RunOf::Attempt : RunOf::Over);
    }
}
