/*
 * ledger_test.cpp — the Ledger alone: a Queue and a Journal in a temporary
 * directory, no server. Each change is made, journaled (a second queue
 * read from the file agrees) and heard once by a listener; a change the
 * journal refuses does not happen; a job's end is written once.
 */
#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "jobs.h"
#include "journal.h"
#include "ledger.h"

namespace {

/* Every change heard, in order. */
struct Recorder : LedgerListener {
    std::vector<Change> seen;
    std::vector<int> errorlevels;   // of each Ended
    void on_change(const Change& c) override {
        seen.push_back(c);
        if (c.kind == ChangeKind::Ended) errorlevels.push_back(c.result ? c.result->errorlevel : 999);
    }
    size_t count(ChangeKind k, JobId id = -2) const {
        size_t n = 0;
        for (const Change& c : seen) n += c.kind == k && (id == -2 || c.id == id);
        return n;
    }
};

JobSpec cmd(const char* what, bool depends = false) {
    JobSpec s;
    s.argv = {"sh", "-c", what};
    s.depends = depends;
    return s;
}

class LedgerTest : public ::testing::Test {
protected:
    void SetUp() override {
        char t[] = "/tmp/ts-ledger-test.XXXXXX";
        ASSERT_NE(mkdtemp(t), nullptr);
        dir_ = t;
        path_ = dir_ + "/j";
        open();
    }
    void TearDown() override {
        journal_.reset();
        (void)!system(("rm -rf '" + dir_ + "'").c_str());
    }
    void open() {
        queue_ = std::make_unique<Queue>();
        journal_ = std::make_unique<Journal>(path_, queue_.get(), [](const std::string&) {});
        ledger_ = std::make_unique<Ledger>(queue_.get(), journal_.get());
        rec_ = Recorder();
        ledger_->listen(&rec_);
    }
    /* The queue as a new server would read it back. */
    std::unique_ptr<Queue> replayed() {
        auto q = std::make_unique<Queue>();
        Journal j(path_, q.get(), [](const std::string&) {});
        return q;
    }
    JobId add(const char* what, bool depends = false) {
        JobId id = -1;
        EXPECT_TRUE(ledger_->add(cmd(what, depends), 1700000000, 0, &id));
        return id;
    }
    off_t size() const {
        struct stat st;
        return stat(path_.c_str(), &st) == 0 ? st.st_size : -1;
    }

    std::string dir_, path_;
    std::unique_ptr<Queue> queue_;
    std::unique_ptr<Journal> journal_;
    std::unique_ptr<Ledger> ledger_;
    Recorder rec_;
};

std::vector<JobId> ids(const std::list<JobId>& l) { return {l.begin(), l.end()}; }

TEST_F(LedgerTest, EachChangeIsJournaledAndHeardOnce) {
    JobId a = add("a"), b = add("b"), c = add("c"), d = add("d");
    EXPECT_EQ(rec_.count(ChangeKind::Added), 4u);
    EXPECT_TRUE(ledger_->urgent(d));              // a d b c
    EXPECT_TRUE(ledger_->swap(b, c));             // a d c b
    EXPECT_FALSE(ledger_->swap(a, b));            // never the head: nothing changes, nothing heard
    EXPECT_TRUE(ledger_->remove(c));              // a d b
    ledger_->slots(2);
    Decisions dec = ledger_->schedule(nullptr, 1700000001);
    ASSERT_EQ(dec.start, (std::vector<JobId>{a, d}));
    for (JobId id : dec.start) EXPECT_TRUE(ledger_->start(id));
    ledger_->runner(a, 4242);
    ledger_->started(a, 4243, "/tmp/out", 1700000002);
    EXPECT_TRUE(ledger_->unstart(d));             // its runner could not fork
    EXPECT_TRUE(ledger_->end(a, JobResult(), 1700000003));

    EXPECT_EQ(rec_.count(ChangeKind::Urgent, d), 1u);
    EXPECT_EQ(rec_.count(ChangeKind::Swapped, b), 1u);
    EXPECT_EQ(rec_.count(ChangeKind::Removed, c), 1u);
    EXPECT_EQ(rec_.count(ChangeKind::Slots), 1u);
    EXPECT_EQ(rec_.count(ChangeKind::Started), 2u);
    EXPECT_EQ(rec_.count(ChangeKind::Runner, a), 1u);
    EXPECT_EQ(rec_.count(ChangeKind::Running, a), 1u);
    EXPECT_EQ(rec_.count(ChangeKind::Unstarted, d), 1u);
    EXPECT_EQ(rec_.count(ChangeKind::Ended, a), 1u);
    EXPECT_EQ(rec_.seen.size(), 4u + 10u);   // the adds, then one for each change after them

    auto q = replayed();
    EXPECT_EQ(ids(q->active()), ids(queue_->active()));
    EXPECT_EQ(ids(q->finished_list()), ids(queue_->finished_list()));
    EXPECT_EQ(q->max_slots(), 2);
    EXPECT_EQ(q->find(c), nullptr);
    EXPECT_EQ(q->find(d)->state, JobState::Queued);
    EXPECT_EQ(q->find(a)->state, JobState::Finished);
    EXPECT_EQ(q->find(a)->output, "/tmp/out");
}

TEST_F(LedgerTest, AJobTheJournalRefusesIsNotQueued) {
    add("a");
    ASSERT_EQ(unlink(path_.c_str()), 0);   // a cleaner took the journal: nothing is written until a snapshot
    size_t before = queue_->size();
    size_t heard = rec_.seen.size();
    JobId id = -1;
    EXPECT_FALSE(ledger_->add(cmd("b"), 1700000001, 0, &id));
    EXPECT_EQ(queue_->size(), before);
    EXPECT_EQ(queue_->find(id), nullptr);
    EXPECT_EQ(rec_.seen.size(), heard) << "a change that did not happen was heard";
}

TEST_F(LedgerTest, AStartTheJournalRefusesIsUndone) {
    JobId a = add("a");
    Decisions dec = ledger_->schedule(nullptr, 1700000001);
    ASSERT_EQ(dec.start, (std::vector<JobId>{a}));
    ASSERT_EQ(unlink(path_.c_str()), 0);
    EXPECT_FALSE(ledger_->start(a));
    EXPECT_EQ(queue_->find(a)->state, JobState::Queued);
    EXPECT_EQ(queue_->busy_slots(), 0);
    EXPECT_EQ(rec_.count(ChangeKind::Started), 0u);
}

TEST_F(LedgerTest, AnEndIsJournaledOnceWhicheverWayTheJobEnds) {
    JobId a = add("a");
    JobId dep = add("needs a", true);   // -d: skipped when a fails
    (void)ledger_->schedule(nullptr, 1700000001);
    ASSERT_TRUE(ledger_->start(a));
    JobResult failed;
    failed.errorlevel = 3;
    EXPECT_TRUE(ledger_->end(a, failed, 1700000002));
    off_t after_end = size();
    EXPECT_FALSE(ledger_->end(a, JobResult(), 1700000003)) << "an end ended again";
    EXPECT_EQ(size(), after_end) << "a second end record was written";

    Decisions dec = ledger_->schedule(nullptr, 1700000004);   // the dependent is skipped by the scheduler
    EXPECT_EQ(dec.skipped, (std::vector<JobId>{dep}));
    EXPECT_FALSE(ledger_->end(dep, Queue::lost_result(), 1700000005)) << "a skipped job ended again";
    EXPECT_EQ(rec_.count(ChangeKind::Ended, a), 1u);
    EXPECT_EQ(rec_.count(ChangeKind::Ended, dep), 1u);
    EXPECT_EQ(rec_.errorlevels, (std::vector<int>{3, -1}));

    auto q = replayed();
    EXPECT_EQ(q->find(a)->result.errorlevel, 3);
    EXPECT_EQ(q->find(dep)->state, JobState::Skipped);
}

TEST_F(LedgerTest, AnotherUsersUrgentMovesAmongTheirOwnJobs) {
    JobSpec mine = cmd("mine"), theirs = cmd("theirs");
    theirs.uid = 1000;
    JobId head = -1, t1 = -1, m = -1, t2 = -1;
    ASSERT_TRUE(ledger_->add(mine, 1, 0, &head));
    ASSERT_TRUE(ledger_->add(theirs, 2, 0, &t1));
    ASSERT_TRUE(ledger_->add(mine, 3, 0, &m));
    ASSERT_TRUE(ledger_->add(theirs, 4, 0, &t2));
    EXPECT_TRUE(ledger_->urgent_among_own(t2));   // ahead of t1, not of m
    EXPECT_EQ(ids(queue_->active()), (std::vector<JobId>{head, t2, t1, m}));
    ASSERT_EQ(rec_.count(ChangeKind::MovedBefore, t2), 1u);
    EXPECT_EQ(rec_.seen.back().other, t1);
    EXPECT_EQ(ids(replayed()->active()), ids(queue_->active()));
}

}  // namespace

TEST_F(LedgerTest, AFailingJournalIsTriedAgainWithABackOffUntilItWorks) {
    add("a");
    EXPECT_FALSE(ledger_->failing());
    EXPECT_TRUE(ledger_->recover(10)) << "a journal that works needs nothing";
    ASSERT_EQ(system(("rm -rf '" + dir_ + "'").c_str()), 0);   // the journal's directory is gone
    JobId id = -1;
    EXPECT_FALSE(ledger_->add(cmd("b"), 1700000001, 0, &id));
    ASSERT_TRUE(ledger_->failing());
    EXPECT_FALSE(ledger_->recover(10)) << "no directory: no snapshot";
    EXPECT_DOUBLE_EQ(ledger_->recover_at(), 10.25);
    EXPECT_FALSE(ledger_->recover(10.25));
    EXPECT_DOUBLE_EQ(ledger_->recover_at(), 10.75) << "the back-off doubles";
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
    (void)journal_->at_path();   // as the server's look at its files does: the journal is to be written anew
    EXPECT_FALSE(ledger_->recover(10.5)) << "tried again before the back-off is over";
    EXPECT_TRUE(ledger_->failing());
    // Tried whenever the back-off allows, as the loop does (the journal
    // itself writes a snapshot at most every 0.2 s of the real clock).
    bool ok = false;
    for (double deadline = mono_now() + 5; !ok && mono_now() < deadline; usleep(20000))
        ok = ledger_->recover(ledger_->recover_at());
    ASSERT_TRUE(ok);
    EXPECT_FALSE(ledger_->failing());
    EXPECT_EQ(ledger_->recover_at(), 0);
    EXPECT_EQ(replayed()->size(), 1u) << "the snapshot holds the queue";
}

TEST_F(LedgerTest, AdmissionClearSettingsResumeAndReattachAreJournaledOrHeardAsTheyShouldBe) {
    // The settings first: they are written as a snapshot of the whole queue.
    EXPECT_TRUE(ledger_->settings(QueueSettings{{"TS_FSYNC", "1"}}));
    EXPECT_EQ(rec_.count(ChangeKind::Settings), 1u);
    queue_->set_max_jobs(2);   // TS_MAXCONN: the second job waits for room
    ledger_->slots(1);
    JobId a = add("a");
    JobSpec spec = cmd("b");
    spec.uid = 4242;
    JobId b = -1;
    ASSERT_TRUE(ledger_->add(spec, 1700000000, 0, &b));
    ASSERT_EQ(queue_->find(b)->state, JobState::Overflow);
    Decisions dec = ledger_->schedule(nullptr, 1700000001);
    ASSERT_EQ(dec.start, std::vector<JobId>{a});
    ASSERT_TRUE(ledger_->start(a));
    EXPECT_TRUE(ledger_->end(a, JobResult(), 1700000002));
    EXPECT_EQ(ledger_->admit_overflow(), std::vector<JobId>{b});
    EXPECT_EQ(rec_.count(ChangeKind::Admitted, b), 1u);
    EXPECT_EQ(rec_.seen.back().owner, 4242u) << "listeners hear whose job it is";
    ledger_->clear();
    EXPECT_EQ(rec_.count(ChangeKind::Cleared), 1u);

    // A queued job whose runner comes back after a restart runs (resume).
    queue_->set_max_jobs(0);
    JobId c = add("c");
    EXPECT_TRUE(ledger_->resume(c));
    EXPECT_EQ(rec_.count(ChangeKind::Started, c), 1u);
    ledger_->reattached(c, 777);
    EXPECT_EQ(queue_->find(c)->runner_pid, 777);
    EXPECT_EQ(rec_.count(ChangeKind::Reattached, c), 1u);
    JobId d = -1;
    ASSERT_TRUE(ledger_->add(spec, 1700000003, 0, &d));
    EXPECT_TRUE(ledger_->remove(d));
    EXPECT_EQ(rec_.seen.back().owner, 4242u) << "a removed job's owner is heard too";
    auto q = replayed();
    ASSERT_NE(q->find(c), nullptr);
    EXPECT_EQ(q->find(c)->state, JobState::Running) << "resume is journaled";
    EXPECT_EQ(q->find(d), nullptr);
    ASSERT_NE(q->find(b), nullptr);
    EXPECT_EQ(q->find(b)->state, JobState::Queued) << "the admission is journaled";
    EXPECT_TRUE(q->finished_list().empty()) << "-C is journaled";
    Journal j(path_, q.get(), [](const std::string&) {});
    ASSERT_TRUE(j.settings().has_value());
    EXPECT_EQ(j.settings()->at("TS_FSYNC"), "1");
}

TEST_F(LedgerTest, AClientsChangeWaitsForNoBackOffAndFindsARemovedJournalWrittenAgain) {
    add("a");
    ASSERT_EQ(unlink(path_.c_str()), 0);   // a cleaner took the journal
    EXPECT_TRUE(ledger_->writable()) << "written again, from the queue, before the change";
    EXPECT_GE(size(), 0) << "the journal is back at its path";
    EXPECT_EQ(replayed()->size(), 1u);
    ASSERT_EQ(system(("rm -rf '" + dir_ + "'").c_str()), 0);   // now its directory too: it cannot be
    EXPECT_FALSE(ledger_->writable());
    ASSERT_EQ(mkdir(dir_.c_str(), 0700), 0);
    bool ok = false;   // the journal writes a snapshot at most every 0.2 s of the real clock
    for (double deadline = mono_now() + 5; !ok && mono_now() < deadline; usleep(20000)) ok = ledger_->writable();
    EXPECT_TRUE(ok) << "tried at once when a client asks, without the loop's back-off";
}

TEST_F(LedgerTest, DrainAndResumeAreJournaledOnceAndSurviveARestartAndACompaction) {
    JobId a = add("a");
    EXPECT_TRUE(ledger_->drain(true));
    off_t once = size();
    EXPECT_FALSE(ledger_->drain(true)) << "draining a drained queue changes nothing";
    EXPECT_EQ(size(), once) << "and writes nothing";
    EXPECT_EQ(rec_.count(ChangeKind::Drained), 1u);
    EXPECT_TRUE(ledger_->schedule(nullptr, 1700000001).start.empty());

    // A restart reads the record back (and a snapshot of a drained queue keeps it).
    open();
    EXPECT_TRUE(queue_->drained()) << "the drain is journaled";
    ASSERT_TRUE(journal_->compact(*queue_));
    open();
    EXPECT_TRUE(queue_->drained()) << "a compaction keeps the drain";
    ASSERT_NE(queue_->find(a), nullptr);
    EXPECT_EQ(queue_->find(a)->state, JobState::Queued);
    EXPECT_TRUE(ledger_->schedule(nullptr, 1700000002).start.empty()) << "read back drained: nothing starts";

    EXPECT_TRUE(ledger_->drain(false));
    EXPECT_FALSE(ledger_->drain(false));
    EXPECT_EQ(rec_.count(ChangeKind::Drained), 1u);
    open();
    EXPECT_FALSE(queue_->drained()) << "the resume is journaled";
    ASSERT_TRUE(journal_->compact(*queue_));
    open();
    EXPECT_FALSE(queue_->drained());
    EXPECT_EQ(ledger_->schedule(nullptr, 1700000003).start, std::vector<JobId>{a});
}

TEST_F(LedgerTest, HoldAndReleaseAreJournaledAndSurviveARestartAndACompaction) {
    JobSpec h = cmd("held");
    h.settings.set_held(true);
    JobId a = -1, b = -1;
    ASSERT_TRUE(ledger_->add(h, 1700000000, 0, &a));
    JobSpec d = cmd("delayed");
    d.settings.set_not_before(1800000000.5);
    ASSERT_TRUE(ledger_->add(d, 1700000000, 0, &b));
    JobId c = add("later held");
    EXPECT_TRUE(ledger_->hold(c, true));
    off_t once = size();
    EXPECT_FALSE(ledger_->hold(c, true)) << "holding a held job changes nothing";
    EXPECT_EQ(size(), once) << "and writes nothing";
    EXPECT_EQ(rec_.count(ChangeKind::Held, c), 1u);
    EXPECT_TRUE(ledger_->schedule(nullptr, 1700000001).start.empty());

    for (int round = 0; round < 2; ++round) {   // a restart, then a compaction and a restart
        open();
        ASSERT_NE(queue_->find(c), nullptr);
        EXPECT_TRUE(queue_->find(a)->spec.settings.held()) << "held at submit: in the job's record";
        EXPECT_TRUE(queue_->find(c)->spec.settings.held()) << "held later: its own record";
        EXPECT_DOUBLE_EQ(queue_->find(b)->spec.settings.not_before(), 1800000000.5);
        EXPECT_TRUE(ledger_->schedule(nullptr, 1700000002).start.empty());
        if (round == 0) {
            ASSERT_TRUE(journal_->compact(*queue_));
        }
    }
    EXPECT_TRUE(ledger_->hold(a, false));
    EXPECT_TRUE(ledger_->hold(b, false)) << "a delayed job is released: its time is dropped";
    open();
    EXPECT_FALSE(queue_->find(a)->spec.settings.held()) << "the release is journaled";
    EXPECT_EQ(queue_->find(b)->spec.settings.not_before(), 0);
    EXPECT_TRUE(queue_->find(c)->spec.settings.held());
    EXPECT_EQ(ledger_->schedule(nullptr, 1700000003).start, std::vector<JobId>{a});
}

TEST_F(LedgerTest, ADelayThatPassedWhileTheServerWasDownStartsAtOnce) {
    JobSpec d = cmd("delayed");
    d.settings.set_not_before(1700000100);
    JobId a = -1;
    ASSERT_TRUE(ledger_->add(d, 1700000000, 0, &a));
    EXPECT_TRUE(ledger_->schedule(nullptr, 1700000050).start.empty());
    open();   // down until long after its time
    EXPECT_EQ(ledger_->schedule(nullptr, 1700009999).start, std::vector<JobId>{a});
}

namespace {
/* A run's end as its runner reports it. */
JobResult run_end(int errorlevel, EndHow how = EndHow::Normal, int signal = 0) {
    JobResult r;
    r.errorlevel = errorlevel;
    r.signal = signal;
    r.how = how;
    return r;
}
}  // namespace

/* --retry: a failed run is an attempt, the job is queued again in its place,
 * and only its last end is an end (waiters, dependents); all of it is
 * journaled, so a restart between runs keeps the count. */
TEST_F(LedgerTest, ARetriedRunIsAnAttemptAndTheJobIsQueuedAgainAcrossARestart) {
    JobSpec s = cmd("flaky");
    s.settings.set_retries(2);
    JobId a = -1;
    ASSERT_TRUE(ledger_->add(s, 1700000000, 0, &a));
    JobId b = add("after a", true);   // -d: depends on a
    ASSERT_EQ(ledger_->schedule(nullptr, 1700000001).start, std::vector<JobId>{a});
    ASSERT_TRUE(ledger_->start(a));
    ledger_->started(a, 100, "/tmp/out1", 1700000002);
    EXPECT_TRUE(ledger_->end(a, run_end(1), 1700000003));
    EXPECT_EQ(queue_->find(a)->state, JobState::Queued) << "it runs again";
    EXPECT_EQ(rec_.count(ChangeKind::Retried, a), 1u);
    EXPECT_EQ(rec_.count(ChangeKind::Ended, a), 0u) << "waiters do not hear of a run that is retried";
    ASSERT_EQ(queue_->find(a)->attempts().size(), 1u);
    EXPECT_EQ(queue_->find(a)->attempts()[0].output, "/tmp/out1");
    EXPECT_EQ(queue_->find(a)->state, JobState::Queued);
    EXPECT_EQ(ids(queue_->active()), (std::vector<JobId>{a, b})) << "in its place, ahead of its dependent";

    open();   // a restart between the runs
    ASSERT_NE(queue_->find(a), nullptr);
    EXPECT_EQ(queue_->find(a)->state, JobState::Queued);
    ASSERT_EQ(queue_->find(a)->attempts().size(), 1u) << "the first run is kept";
    EXPECT_EQ(queue_->find(a)->attempts()[0].errorlevel, 1);
    ASSERT_EQ(ledger_->schedule(nullptr, 1700000004).start, std::vector<JobId>{a});
    ASSERT_TRUE(ledger_->start(a));
    ledger_->started(a, 101, "/tmp/out2", 1700000005);
    EXPECT_TRUE(ledger_->end(a, run_end(-1, EndHow::TimedOut, 9), 1700000006));
    EXPECT_EQ(queue_->find(a)->state, JobState::Queued) << "a timeout is retried too";
    ASSERT_TRUE(journal_->compact(*queue_));
    open();   // a snapshot keeps the attempts
    ASSERT_EQ(queue_->find(a)->attempts().size(), 2u);
    EXPECT_EQ(queue_->find(a)->attempts()[1].how, EndHow::TimedOut);
    EXPECT_EQ(queue_->find(a)->attempts()[1].signal, 9);
    ASSERT_EQ(ledger_->schedule(nullptr, 1700000007).start, std::vector<JobId>{a});
    ASSERT_TRUE(ledger_->start(a));
    EXPECT_TRUE(ledger_->end(a, run_end(3), 1700000008));
    EXPECT_EQ(queue_->find(a)->state, JobState::Finished) << "no retry left: the end is the job's";
    EXPECT_EQ(queue_->find(a)->result.errorlevel, 3);
    EXPECT_EQ(rec_.count(ChangeKind::Ended, a), 1u);
    Decisions d = ledger_->schedule(nullptr, 1700000009);
    EXPECT_EQ(d.skipped, std::vector<JobId>{b}) << "the dependent sees the last run's failure";
    open();
    EXPECT_EQ(queue_->find(a)->state, JobState::Finished);
    EXPECT_EQ(queue_->find(a)->attempts().size(), 2u);
}

/* What is retried: a failure (exit, signal, timeout), a job run by its
 * client's too; not a cancel, a run that could not start, a lost runner, or
 * a job without retries left. */
TEST_F(LedgerTest, OnlyAFailureIsRetried) {
    auto ends_at_once = [&](JobResult r, uint32_t retries, uint32_t flags = 0) {
        JobSpec s = cmd("x");
        s.settings.set_retries(retries);
        s.flags |= flags;
        JobId id = -1;
        EXPECT_TRUE(ledger_->add(s, 1700000000, 0, &id));
        EXPECT_TRUE(queue_->start(id));
        EXPECT_TRUE(ledger_->end(id, r, 1700000001));
        JobState st = queue_->find(id)->state;
        ledger_->end(id, run_end(0), 1700000002);   // (a retried one: end it for the next case)
        return st == JobState::Finished;
    };
    EXPECT_FALSE(ends_at_once(run_end(1), 1));
    EXPECT_FALSE(ends_at_once(run_end(-1, EndHow::Normal, 15), 1));
    EXPECT_FALSE(ends_at_once(run_end(-1, EndHow::TimedOut, 15), 1));
    EXPECT_TRUE(ends_at_once(run_end(0), 1)) << "a success";
    EXPECT_TRUE(ends_at_once(run_end(1), 0)) << "no --retry";
    EXPECT_TRUE(ends_at_once(run_end(-1, EndHow::Cancelled, 15), 1)) << "--cancel";
    JobResult no_start = run_end(-1);
    no_start.note = "cannot run 'x'";
    EXPECT_TRUE(ends_at_once(no_start, 1)) << "it could not start";
    EXPECT_TRUE(ends_at_once(Queue::lost_result("gone"), 1)) << "its runner was lost";
    EXPECT_FALSE(ends_at_once(run_end(1), 1, proto::kForeground)) << "-f: its client runs it again";
    EXPECT_FALSE(ends_at_once(run_end(1), 1, proto::kRunByClient)) << "another user's: its ts runs it again";
}

/* A job its client runs (-f, another user's in a shared queue) is retried as
 * any other: each failed run an attempt, queued again in its place, and a
 * restart replays the same. */
TEST_F(LedgerTest, AJobRunByItsClientIsRetried) {
    JobSpec s = cmd("x");
    s.settings.set_retries(2);
    s.flags |= proto::kForeground;
    JobId id = -1;
    ASSERT_TRUE(ledger_->add(s, 1700000000, 0, &id));
    for (int run = 0; run < 2; ++run) {
        ASSERT_TRUE(queue_->start(id));
        ASSERT_TRUE(ledger_->start(id));   // (journaled as the server's pass does)
        ASSERT_TRUE(ledger_->end(id, run_end(1), 1700000001 + run));
        EXPECT_EQ(queue_->find(id)->state, JobState::Queued) << "run " << run << " is an attempt";
        EXPECT_EQ(queue_->find(id)->attempts().size(), size_t(run + 1));
    }
    open();
    ASSERT_NE(queue_->find(id), nullptr);
    EXPECT_EQ(queue_->find(id)->attempts().size(), 2u) << "the attempts are replayed";
    EXPECT_EQ(queue_->find(id)->state, JobState::Queued);
    ASSERT_TRUE(queue_->start(id));
    ASSERT_TRUE(ledger_->start(id));
    ASSERT_TRUE(ledger_->end(id, run_end(1), 1700000009));
    EXPECT_EQ(queue_->find(id)->state, JobState::Finished) << "the third run was the last";
}

/* --cancel of a queued job removes it, the head of the queue too, and a restart agrees. */
TEST_F(LedgerTest, CancelRemovesAQueuedJobEvenTheHead) {
    JobId a = add("a"), b = add("b");
    EXPECT_FALSE(ledger_->remove(a)) << "-r never takes the head";
    EXPECT_TRUE(ledger_->remove(a, true));
    EXPECT_EQ(queue_->find(a), nullptr);
    open();
    EXPECT_EQ(queue_->find(a), nullptr) << "the removal of the head is replayed";
    EXPECT_EQ(ids(queue_->active()), std::vector<JobId>{b});
}

/* How a job was ended (timed out, cancelled) is journaled with its end, and kept by a snapshot. */
TEST_F(LedgerTest, ATimeoutOrACancelIsKeptWithTheEnd) {
    JobId a = add("a"), b = add("b");
    ASSERT_TRUE(queue_->start(a));
    ASSERT_TRUE(queue_->start(b));
    EXPECT_TRUE(ledger_->end(a, run_end(-1, EndHow::TimedOut, 9), 1700000001));
    EXPECT_TRUE(ledger_->end(b, run_end(-1, EndHow::Cancelled, 15), 1700000002));
    open();
    EXPECT_EQ(queue_->find(a)->result.how, EndHow::TimedOut);
    EXPECT_EQ(queue_->find(b)->result.how, EndHow::Cancelled);
    ASSERT_TRUE(journal_->compact(*queue_));
    open();
    EXPECT_EQ(queue_->find(a)->result.how, EndHow::TimedOut);
    EXPECT_EQ(queue_->find(b)->result.how, EndHow::Cancelled);
    EXPECT_EQ(queue_->find(a)->result.signal, 9);
}
