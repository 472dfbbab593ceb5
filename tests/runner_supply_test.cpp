/*
 * runner_supply_test.cpp — the RunnerSupply alone (runner_supply.h): a fake
 * launcher that counts what it is asked, a fake host that records what the
 * supply asks of the server, a clock the test moves, and spares that are
 * plain Conn values. No server, no socket, no fork.
 */
#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <memory>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include "frame.h"
#include "runner_supply.h"
#include "server_impl.h"

namespace {

/* What the launcher is asked, and how it answers. */
struct Asked {
    std::vector<JobId> started;            // start() calls that made a runner
    int fail_with = 0;                     // errno for every start (0: it works)
    std::vector<Ahead> ahead;              // answers to ask_ahead, in turn; then `after`
    Ahead after = Ahead::Asked;
    int asks = 0;
    int unread = -1;
    pid_t helper = 4242;                   // the spawner's pid (reaped)
};

class FakeLauncher : public Launcher {
public:
    explicit FakeLauncher(Asked* a) : a_(a) {}
    bool start(const RunnerOrder& o, LocalRunner* out, LaunchError* why) override {
        why->what = "fork";
        if (a_->fail_with) {
            why->err = a_->fail_with;
            return false;
        }
        a_->started.push_back(o.id);
        out->pid = 1000 + o.id;
        return true;
    }
    Ahead ask_ahead() override {
        Ahead r = size_t(a_->asks) < a_->ahead.size() ? a_->ahead[a_->asks] : a_->after;
        ++a_->asks;
        if (r == Ahead::Lost) errno = EPIPE;
        return r;
    }
    int unread_asks() const override { return a_->unread; }
    bool reaped(pid_t pid) override {
        if (pid != a_->helper) return false;
        a_->after = Ahead::Lost;
        return true;
    }

private:
    Asked* a_;
};

/* The server, as the supply sees it: a few jobs, and what was done to them. */
class FakeHost : public SupplyHost {
public:
    std::map<JobId, Job> jobs;                 // running jobs that want a runner
    std::vector<std::pair<JobId, pid_t>> made;  // add_runner
    std::map<const Conn*, JobId> assigned;      // assign
    std::vector<JobId> unstarted;
    std::vector<std::string> lines;

    const Job* wants_runner(JobId id) override {
        auto it = jobs.find(id);
        return it == jobs.end() ? nullptr : &it->second;
    }
    void add_runner(JobId id, LocalRunner r) override {
        made.emplace_back(id, r.pid);
        jobs.erase(id);
    }
    void assign(Conn& spare, JobId id, const std::string& order) override {
        Frame f;
        size_t used = 0;
        RunnerOrder o;
        uid_t owner = 0;
        EXPECT_EQ(parse_frame(order, &f, &used), ParseStatus::Ok);
        EXPECT_TRUE(decode_assign(f, &o.id, &o.spec, &owner));
        EXPECT_EQ(o.id, id);
        assigned[&spare] = id;
        jobs.erase(id);
    }
    bool closing(const Conn& spare) const override { return spare.dead; }
    void unstart(JobId id) override {
        unstarted.push_back(id);
        jobs.erase(id);
    }
    void log(const std::string& line) override { lines.push_back(line); }
    bool logged(const std::string& part) const {
        for (const std::string& l : lines)
            if (l.find(part) != std::string::npos) return true;
        return false;
    }
};

class RunnerSupplyTest : public ::testing::Test {
protected:
    RunnerSupplyTest()
        : supply_(&host_, std::make_unique<FakeLauncher>(&asked_), [this] { return now_; }) {}
    /* A job that starts now (it wants a runner until it has one). */
    const Job& job(JobId id) {
        Job& j = host_.jobs[id];
        j.id = id;
        j.spec.argv = {"echo", std::to_string(id)};
        j.spec.cwd = "/";
        return j;
    }

    Asked asked_;
    FakeHost host_;
    double now_ = 100;
    RunnerSupply supply_;
};

}  // namespace

TEST_F(RunnerSupplyTest, KeepsOneSpareAskedAndGivesTheJobToTheIdleOne) {
    supply_.top_up();
    EXPECT_EQ(asked_.asks, 1);
    supply_.top_up();
    EXPECT_EQ(asked_.asks, 1) << "a second spare asked while the first is on its way";
    Conn spare;
    EXPECT_EQ(supply_.spare_came(spare), RunnerSupply::SpareIs::Idle);
    EXPECT_EQ(supply_.idle_spare(), &spare);
    EXPECT_EQ(asked_.asks, 1);
    supply_.start(job(7));
    EXPECT_EQ(host_.assigned[&spare], 7);
    EXPECT_EQ(supply_.idle_spare(), nullptr);
    EXPECT_TRUE(asked_.started.empty());
    EXPECT_EQ(asked_.asks, 1) << "replaced while it starts its job";
    supply_.runner_started(7, 555);
    EXPECT_EQ(asked_.asks, 2) << "replaced once the job runs";
}

TEST_F(RunnerSupplyTest, ASecondIdleSpareIsSurplusAndALostOneIsReplaced) {
    supply_.top_up();
    Conn a, b;
    ASSERT_EQ(supply_.spare_came(a), RunnerSupply::SpareIs::Idle);
    EXPECT_EQ(supply_.spare_came(b), RunnerSupply::SpareIs::Surplus);
    EXPECT_FALSE(supply_.spare_lost(b));
    int before = asked_.asks;
    EXPECT_TRUE(supply_.spare_lost(a));
    EXPECT_EQ(supply_.idle_spare(), nullptr);
    EXPECT_EQ(asked_.asks, before + 1);
    // One closing in the same round counts as none: the next is kept.
    Conn c, d;
    ASSERT_EQ(supply_.spare_came(c), RunnerSupply::SpareIs::Idle);
    c.dead = true;
    EXPECT_EQ(supply_.spare_came(d), RunnerSupply::SpareIs::Idle);
    EXPECT_EQ(supply_.idle_spare(), &d);
}

TEST_F(RunnerSupplyTest, AJobWaitingForASpareGetsTheNextOne) {
    supply_.top_up();
    supply_.start(job(1));
    supply_.start(job(2));
    EXPECT_TRUE(supply_.waiting());
    EXPECT_EQ(asked_.asks, 3) << "one spare ahead, plus one per waiting job";
    EXPECT_TRUE(asked_.started.empty());
    Conn a, b;
    EXPECT_EQ(supply_.spare_came(a), RunnerSupply::SpareIs::Assigned);
    EXPECT_EQ(host_.assigned[&a], 1) << "the oldest first";
    host_.jobs.erase(2);   // job 2 ended meanwhile: the next spare is idle
    EXPECT_EQ(supply_.spare_came(b), RunnerSupply::SpareIs::Idle);
    EXPECT_FALSE(supply_.waiting());
}

TEST_F(RunnerSupplyTest, AJobIsForkedAfterTheWaitForASpare) {
    supply_.top_up();
    supply_.start(job(3));
    supply_.check_waiting();
    now_ += kSpareWait - 0.1;
    supply_.check_waiting();
    EXPECT_TRUE(asked_.started.empty()) << "forked before the wait was over";
    asked_.unread = 0;   // the spawner read every ask: those spares died young
    now_ += 0.2;
    supply_.check_waiting();
    ASSERT_EQ(asked_.started, std::vector<JobId>{3});
    EXPECT_EQ(host_.made, (std::vector<std::pair<JobId, pid_t>>{{3, 1003}}));
    EXPECT_TRUE(host_.logged("no spare runner came for 2 s: forking runners here"));
    EXPECT_FALSE(supply_.waiting());
    supply_.top_up();
    EXPECT_EQ(asked_.asks, 3) << "asks that never came are asked again";
}

TEST_F(RunnerSupplyTest, WithoutRunnersAheadEveryJobIsForkedAtOnce) {
    asked_.after = Ahead::None;
    supply_.top_up();
    supply_.start(job(4));
    EXPECT_EQ(asked_.started, std::vector<JobId>{4});
    EXPECT_TRUE(host_.lines.empty()) << "a launcher that never had a spawner is no news";
    supply_.top_up();
    EXPECT_EQ(asked_.asks, 1) << "not asked again after it said None";
}

TEST_F(RunnerSupplyTest, TheSpawnerGoneForksTheWaitingJobsAtOnce) {
    supply_.top_up();
    supply_.start(job(5));
    supply_.start(job(6));
    ASSERT_TRUE(asked_.started.empty());
    supply_.reaped(999);   // some other child
    EXPECT_TRUE(asked_.started.empty());
    supply_.reaped(asked_.helper);
    EXPECT_EQ(asked_.started, (std::vector<JobId>{5, 6}));
    EXPECT_TRUE(host_.logged("the spawner is gone (it ended)"));
    int asks = asked_.asks;
    supply_.start(job(8));
    EXPECT_EQ(asked_.started, (std::vector<JobId>{5, 6, 8}));
    EXPECT_EQ(asked_.asks, asks) << "no spare asked of a spawner that is gone";
}

TEST_F(RunnerSupplyTest, ASpawnerThatCannotBeAskedIsGoneToo) {
    asked_.ahead = {Ahead::Asked, Ahead::Lost};
    supply_.top_up();
    supply_.start(job(9));
    EXPECT_EQ(asked_.started, std::vector<JobId>{9});
    EXPECT_TRUE(host_.logged("the spawner is gone (" + std::string(strerror(EPIPE)) + ")"));
}

TEST_F(RunnerSupplyTest, ASpawnerWithEnoughToDoIsNotAskedMore) {
    asked_.after = Ahead::Enough;
    supply_.top_up();
    supply_.start(job(10));
    EXPECT_TRUE(supply_.waiting());
    EXPECT_TRUE(asked_.started.empty());
    EXPECT_TRUE(host_.lines.empty());
}

TEST_F(RunnerSupplyTest, NoProcessesBackOffLongerEachTimeAndTheLogSaysSoOnce) {
    asked_.after = Ahead::None;
    asked_.fail_with = EAGAIN;
    ASSERT_TRUE(supply_.may_start());
    supply_.start(job(11));
    EXPECT_EQ(host_.unstarted, std::vector<JobId>{11});
    EXPECT_DOUBLE_EQ(supply_.start_after(), now_ + 0.05);
    EXPECT_FALSE(supply_.may_start());
    // In the same pass, the next job is not tried: it goes back at once.
    supply_.start(job(12));
    EXPECT_EQ(host_.unstarted, (std::vector<JobId>{11, 12}));
    EXPECT_DOUBLE_EQ(supply_.start_after(), now_ + 0.05) << "a job not tried is no new failure";
    now_ += 0.06;
    EXPECT_TRUE(supply_.may_start());
    EXPECT_EQ(supply_.start_after(), 0);
    supply_.start(job(11));
    EXPECT_DOUBLE_EQ(supply_.start_after(), now_ + 0.1) << "the delay doubles";
    ASSERT_EQ(host_.lines.size(), 1u);
    EXPECT_EQ(host_.lines[0], "job 11 cannot start yet (fork: " + std::string(strerror(EAGAIN)) +
                                  "): it stays queued, and starts when a process is available again");
    // A start ends the shortage, and says so.
    asked_.fail_with = 0;
    now_ += 1;
    ASSERT_TRUE(supply_.may_start());
    supply_.start(job(11));
    supply_.runner_started(11, 77);
    EXPECT_TRUE(host_.logged("job 11 started: a process is available again"));
    asked_.fail_with = EMFILE;
    supply_.start(job(13));
    EXPECT_DOUBLE_EQ(supply_.start_after(), now_ + 0.05) << "a new shortage starts from the shortest delay";
    EXPECT_EQ(host_.lines.size(), 2u) << "a second shortage within a minute is not logged";
}

TEST_F(RunnerSupplyTest, ARunnerThatCouldNotForkGivesItsJobBack) {
    supply_.top_up();
    Conn spare;
    supply_.spare_came(spare);
    supply_.start(job(14));
    int asks = asked_.asks;
    supply_.unstarted(14, EMFILE);
    EXPECT_EQ(host_.unstarted, std::vector<JobId>{14});
    EXPECT_TRUE(host_.logged("a file descriptor is available again"));
    EXPECT_FALSE(supply_.may_start());
    EXPECT_EQ(asked_.asks, asks + 1) << "the spare it was is replaced";
}

TEST_F(RunnerSupplyTest, RunnersThatEndBeforeTheStartAreCountedInARowUntilTheJobEnds) {
    EXPECT_EQ(supply_.ended_before_start(3), 1);
    EXPECT_EQ(supply_.ended_before_start(3), 2);
    EXPECT_EQ(supply_.ended_before_start(4), 1) << "each job has its own count";
    JobResult r;
    supply_.on_change(Change{ChangeKind::Ended, 3, -1, &r});
    EXPECT_EQ(supply_.ended_before_start(3), 1) << "a job that ended starts again from none";
    supply_.on_change(Change{ChangeKind::Removed, 4});
    EXPECT_EQ(supply_.ended_before_start(4), 1);
    supply_.on_change(Change{ChangeKind::Unstarted, 4});
    EXPECT_EQ(supply_.ended_before_start(4), 2) << "going back to the queue keeps the count";
}

// A job's order is built in one place: the spec with its environment and its GPUs.
TEST(RunnerOrder, CarriesTheJobsEnvironmentAndGpus) {
    Job j;
    j.id = 21;
    j.spec.argv = {"true"};
    j.spec.uid = 4002;
    j.env = std::make_shared<const Env>(Env{"A=1", "CUDA_VISIBLE_DEVICES=0,1"});
    j.gpu().env = {"CUDA_VISIBLE_DEVICES=GPU-x"};
    RunnerOrder o = runner_order(j);
    EXPECT_EQ(o.id, 21);
    EXPECT_EQ(o.spec.uid, 4002u);
    EXPECT_EQ(o.spec.env, (Env{"A=1", "CUDA_VISIBLE_DEVICES=GPU-x"})) << "its GPUs replace the submitter's";
    Frame f;
    size_t used = 0;
    std::string bytes = encode_order(o);
    ASSERT_EQ(parse_frame(bytes, &f, &used), ParseStatus::Ok);
    EXPECT_EQ(bytes, encode_assign(21, o.spec)) << "the Assign frame as before";
}
