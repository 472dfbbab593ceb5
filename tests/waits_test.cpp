/*
 * waits_test.cpp — deferred requests alone (Waits): waiting on several
 * jobs, on a job's start, on a probe with a deadline, and a held request
 * that waits for the loop; and through a Ledger with a Queue (no journal
 * file, no server).
 */
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "jobs.h"
#include "journal.h"
#include "ledger.h"
#include "server_impl.h"
#include "waits.h"

namespace {

class WaitsTest : public ::testing::Test {
protected:
    struct Woken {
        Conn* c;
        Deferred d;
    };
    std::vector<Woken> woken_;
    Waits waits_{[this](Conn& c, Deferred d) { woken_.push_back({&c, std::move(d)}); }};
    Conn a_, b_, c_;

    void tell(ChangeKind k, JobId id, int errorlevel = 0) {
        JobResult r;
        r.errorlevel = errorlevel;
        waits_.on_change({k, id, -1, k == ChangeKind::Ended ? &r : nullptr});
    }
    static Deferred ends(std::set<JobId> ids) {
        Deferred d;
        d.ends = std::move(ids);
        return d;
    }
};

TEST_F(WaitsTest, WaitsForEveryOneOfSeveralJobs) {
    waits_.add(a_, ends({1, 2, 3}));
    waits_.add(b_, ends({2}));
    tell(ChangeKind::Ended, 1, 0);
    tell(ChangeKind::Running, 3);   // a start is not an end
    EXPECT_TRUE(woken_.empty());
    tell(ChangeKind::Removed, 2);   // removed: its waiters return, with -1
    ASSERT_EQ(woken_.size(), 1u);
    EXPECT_EQ(woken_[0].c, &b_);
    EXPECT_EQ(woken_[0].d.errorlevel, -1);
    tell(ChangeKind::Ended, 3, 7);
    ASSERT_EQ(woken_.size(), 2u);
    EXPECT_EQ(woken_[1].c, &a_);
    EXPECT_EQ(woken_[1].d.errorlevel, 7);
    EXPECT_EQ(woken_[1].d.results, (std::map<JobId, int>{{1, 0}, {2, -1}, {3, 7}}));
    tell(ChangeKind::Ended, 3, 7);   // once: nothing waits any more
    EXPECT_EQ(woken_.size(), 2u);
    EXPECT_EQ(waits_.size(), 0u);
}

TEST_F(WaitsTest, AListAnswersWithTheFirstListedJobThatDidNotEndWell) {
    Deferred d = ends({5, 3, 4});
    d.order = {5, 3, 4};   // -w 5,3,4
    waits_.add(a_, std::move(d));
    tell(ChangeKind::Ended, 3, 2);
    tell(ChangeKind::Ended, 4, -56);
    EXPECT_TRUE(woken_.empty());
    tell(ChangeKind::Ended, 5, 0);   // ended well: the next listed that did not, 3
    ASSERT_EQ(woken_.size(), 1u);
    EndHow how = EndHow::Cancelled;
    EXPECT_EQ(woken_[0].d.list_status(&how), 2);
    EXPECT_EQ(how, EndHow::Normal);
    EXPECT_EQ(woken_[0].d.errorlevel, 0);   // (the last one's, for a single -w)

    Deferred e;
    e.order = {1, 2};
    e.results = {{1, 0}, {2, -1}};   // ended before the request: nothing to wait for
    EXPECT_EQ(e.list_status(&how), 255);   // a signal, a skip or a removal, as -w gives it
    waits_.add(b_, std::move(e));
    ASSERT_EQ(woken_.size(), 2u);
    EXPECT_EQ(woken_[1].c, &b_);
    Deferred ok;
    ok.order = {7, 8};
    ok.results = {{7, 0}, {8, 0}};
    EXPECT_EQ(ok.list_status(&how), 0);
    ok.results[8] = -56;   // exit 200
    EXPECT_EQ(ok.list_status(&how), 200);
    ok.results[7] = -1;
    ok.hows[7] = EndHow::TimedOut;
    EXPECT_EQ(ok.list_status(&how), 255);
    EXPECT_EQ(how, EndHow::TimedOut) << "the first that did not end well timed out: -w exits 124";
}

TEST_F(WaitsTest, AStartWaiterKnowsWhetherTheJobRanOrEndedWithoutRunning) {
    Deferred d;
    d.starts = {4};
    waits_.add(a_, std::move(d));
    Deferred e;
    e.starts = {5};
    waits_.add(b_, std::move(e));
    tell(ChangeKind::Running, 4);
    tell(ChangeKind::Removed, 5);
    ASSERT_EQ(woken_.size(), 2u);
    EXPECT_EQ(woken_[0].d.ran, std::set<JobId>{4});
    EXPECT_TRUE(woken_[1].d.ran.empty());
}

TEST_F(WaitsTest, WaitsForAJobsStartOrItsEnd) {
    Deferred d;
    d.starts = {4};
    waits_.add(a_, std::move(d));
    Deferred e;
    e.starts = {5};
    waits_.add(b_, std::move(e));
    tell(ChangeKind::Started, 4);   // started by the scheduler: its runner has not started it yet
    tell(ChangeKind::Ended, 6);
    EXPECT_TRUE(woken_.empty());
    tell(ChangeKind::Running, 4);
    ASSERT_EQ(woken_.size(), 1u);
    EXPECT_EQ(woken_[0].c, &a_);
    tell(ChangeKind::Ended, 5, -1);   // skipped: it never starts, and its waiter hears so
    ASSERT_EQ(woken_.size(), 2u);
    EXPECT_EQ(woken_[1].c, &b_);
}

TEST_F(WaitsTest, TheProbeOrTheDeadlineWhicheverComesFirst) {
    Deferred d;
    d.then = Deferred::Then::GpuList;
    d.probe = true;
    d.deadline = 10;
    waits_.add(a_, std::move(d));
    Deferred e;
    e.then = Deferred::Then::GpuList;
    e.probe = true;
    e.deadline = 12;
    waits_.add(b_, std::move(e));
    EXPECT_EQ(waits_.next_deadline(), 10);
    waits_.expire(9.9);
    EXPECT_TRUE(woken_.empty());
    waits_.expire(10);
    ASSERT_EQ(woken_.size(), 1u);
    EXPECT_EQ(woken_[0].c, &a_);
    EXPECT_TRUE(woken_[0].d.expired);
    EXPECT_EQ(waits_.next_deadline(), 12);
    waits_.probed();
    ASSERT_EQ(woken_.size(), 2u);
    EXPECT_EQ(woken_[1].c, &b_);
    EXPECT_FALSE(woken_[1].d.expired);
    EXPECT_EQ(waits_.next_deadline(), 0) << "a deadline outlived its request";
}

TEST_F(WaitsTest, AHeldRequestWaitsForTheLoopInOrder) {
    for (Conn* c : {&b_, &a_}) {
        Deferred d;
        d.then = Deferred::Then::Dispatch;
        d.probe = true;
        d.frame = std::make_unique<Frame>();
        waits_.add(*c, std::move(d));
    }
    waits_.add(c_, ends({1}));
    EXPECT_TRUE(waits_.take_ready().empty());
    waits_.probed();
    EXPECT_TRUE(woken_.empty()) << "a held request ran from inside the probe's news";
    ASSERT_NE(waits_.find(a_), nullptr);   // still held: its frames are ignored meanwhile
    auto ready = waits_.take_ready();
    ASSERT_EQ(ready.size(), 2u);
    EXPECT_EQ(ready[0].first, &b_);   // in the order they came
    EXPECT_EQ(ready[1].first, &a_);
    EXPECT_NE(ready[0].second.frame, nullptr);
    EXPECT_EQ(waits_.find(a_), nullptr);
    EXPECT_NE(waits_.find(c_), nullptr);
}

TEST_F(WaitsTest, AConnectionThatGoesLeavesNothingBehind) {
    Deferred d = ends({1, 2});
    d.deadline = 5;
    waits_.add(a_, std::move(d));
    std::optional<Deferred> back = waits_.drop(a_);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->ends, (std::set<JobId>{1, 2}));
    tell(ChangeKind::Ended, 1);
    tell(ChangeKind::Ended, 2);
    waits_.expire(100);
    EXPECT_TRUE(woken_.empty());
    EXPECT_EQ(waits_.next_deadline(), 0);
    EXPECT_FALSE(waits_.drop(a_));
}

TEST_F(WaitsTest, ASecondRequestReplacesTheFirstAndLeavesNoIndexBehind) {
    waits_.add(a_, ends({1}));
    waits_.add(a_, ends({2}));   // the first is forgotten
    EXPECT_EQ(waits_.size(), 1u);
    ASSERT_NE(waits_.find(a_), nullptr);
    EXPECT_EQ(waits_.find(a_)->ends, std::set<JobId>{2});
    ASSERT_TRUE(waits_.drop(a_));
    tell(ChangeKind::Ended, 1);   // no index points at the connection any more
    tell(ChangeKind::Ended, 2);
    EXPECT_TRUE(woken_.empty());
    EXPECT_EQ(waits_.size(), 0u);
}

/* Through the ledger: the end of jobs in a queue wakes their waiter once. */
TEST_F(WaitsTest, TheLedgerWakesWaitersOfSeveralJobs) {
    Queue q;
    Journal j("", &q, [](const std::string&) {});   // no file: everything works, nothing is written
    Ledger ledger(&q, &j);
    ledger.listen(&waits_);
    ledger.slots(2);
    JobId x = -1, y = -1;
    JobSpec s;
    s.argv = {"true"};
    ASSERT_TRUE(ledger.add(s, 1, 0, &x));
    ASSERT_TRUE(ledger.add(s, 2, 0, &y));
    Deferred d = ends({x, y});
    d.starts = {x};
    waits_.add(a_, std::move(d));
    Deferred st;
    st.starts = {y};
    waits_.add(b_, std::move(st));
    for (JobId id : ledger.schedule(nullptr, 3).start) ASSERT_TRUE(ledger.start(id));
    ledger.started(y, 100, "", 4);
    ASSERT_EQ(woken_.size(), 1u);
    EXPECT_EQ(woken_[0].c, &b_);
    JobResult r;
    r.errorlevel = 2;
    EXPECT_TRUE(ledger.end(x, r, 5));
    EXPECT_FALSE(ledger.end(x, r, 6));
    EXPECT_TRUE(ledger.end(y, JobResult(), 7));
    ASSERT_EQ(woken_.size(), 2u);
    EXPECT_EQ(woken_[1].c, &a_);
    EXPECT_EQ(woken_[1].d.results, (std::map<JobId, int>{{x, 2}, {y, 0}}));
}

}  // namespace
