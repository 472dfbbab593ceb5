/*
 * listing_test.cpp — the queue as text (listing.h), byte for byte against
 * ts-spec §2.1 (list), §2.2 (-i) and §2.6 (TS_SAVELIST), on jobs built with
 * the Queue API: the state names, whole lists, single lines in each state and
 * at the edges of the columns, the -i block of each state and viewer, and the
 * complete dump.
 * Times are shown in UTC (TZ is set for each test).
 */
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "jobs.h"
#include "listing.h"
#include "queue_helpers.h"
#include "scratch.h"
#include "util.h"

namespace {

const uid_t kServer = 1000;   // the server's uid
const uid_t kOther = 1001;    // another user of a shared queue
const uid_t kThird = 1002;
const double kT0 = 1700000000;   // Tue Nov 14 22:13:20 2023 UTC
const char* const kT0Text = "Tue Nov 14 22:13:20 2023\n";

JobSpec job(std::vector<std::string> argv, uid_t uid = kServer) {
    JobSpec s;
    s.argv = std::move(argv);
    s.cwd = "/";
    s.uid = uid;
    return s;
}

/* Id, state, output and E-Level columns as ts-spec §2.1 pads them, for a line that is not finished. */
std::string unfinished(const std::string& id, const std::string& state, const std::string& out,
                       const std::string& cmd) {
    return format("%-4s %-10s %-20s %-8s %14s %s\n", id.c_str(), state.c_str(), out.c_str(), "", "", cmd.c_str());
}

/* TZ=UTC while it lives, and the time zone as it was after. */
class UtcClock {
public:
    UtcClock() {
        env_.set("TZ", "UTC");
        tzset();
    }
    ~UtcClock() {
        env_.restore();
        tzset();
    }

private:
    scratch::Env env_;
};

class ListingText : public ::testing::Test {
protected:

    /* A job that ran from kT0+10 to kT0+20 with this result. */
    const Job& finished(JobSpec s, const JobResult& r) {
        JobId id = q_.add(std::move(s), kT0);
        EXPECT_EQ(q_.schedule().start, std::vector<JobId>{id});
        q_.started(id, 4242, "/tmp/ts-out.fin", kT0 + 10);
        q_.end(id, r, kT0 + 20);
        return *q_.find(id);
    }

    UtcClock utc_;
    Queue q_;
};

// ------------------------------------------------------------------ state names

TEST(StateName, EveryJobState) {
    EXPECT_STREQ(state_name(JobState::Queued), "queued");
    EXPECT_STREQ(state_name(JobState::Running), "running");
    EXPECT_STREQ(state_name(JobState::Finished), "finished");
    EXPECT_STREQ(state_name(JobState::Skipped), "skipped");
    EXPECT_STREQ(state_name(JobState::Overflow), "skipped");   // as task-spooler shows a holding client
}

TEST(StateName, EveryWireStateAndNothingOutOfRange) {
    EXPECT_STREQ(state_name(proto::kQueued), "queued");
    EXPECT_STREQ(state_name(proto::kRunning), "running");
    EXPECT_STREQ(state_name(proto::kFinished), "finished");
    EXPECT_STREQ(state_name(proto::kSkipped), "skipped");
    EXPECT_STREQ(state_name(proto::kOverflow), "skipped");
    EXPECT_STREQ(state_name(proto::kHeld), "held");
    EXPECT_STREQ(state_name(proto::kDelayed), "delayed");
    for (int v : {7, 100, 255}) EXPECT_EQ(state_name(static_cast<proto::WireState>(v)), nullptr) << v;
}

// ----------------------------------------------------------------------- header

TEST(ListHeader, CountsWidenTheLastColumnOnly) {
    EXPECT_EQ(list_header(12, 100),
              "ID   State      Output               E-Level  Times(r/u/s)   Command [run=12/100]\n");
    EXPECT_EQ(list_header(-1, 0),
              "ID   State      Output               E-Level  Times(r/u/s)   Command [run=-1/0]\n");
}

// ------------------------------------------------------------------------ lines

TEST_F(ListingText, QueuedWithLabelAndDependencyOnAnId) {
    q_.set_max_slots(1);
    q_.set_meta({12345, 0, -1, 1});   // wide ids (a restored queue)
    q_.add(job({"sleep", "5"}), kT0);                 // 12345
    q_.schedule();
    JobSpec s = job({"echo", "a", "b"});
    s.label = "nightly build";
    s.depends = true;
    s.depend_on = 12345;                              // -D 12345
    JobId id = q_.add(s, kT0);
    EXPECT_EQ(list_line(*q_.find(id)), "12346 queued     (file)                                       "
                                       "[12345]&& [nightly build]echo a b\n");
    EXPECT_EQ(list_line(*q_.find(12345)), "12345 running    (...)                                        sleep 5\n");
}

TEST_F(ListingText, QueuedWithDashDOnTheJobBefore) {
    q_.add(job({"make"}), kT0);                       // 0
    JobSpec s = job({"make", "install"});
    s.depends = true;                                 // -d: the job before, 0
    JobId id = q_.add(s, kT0);
    EXPECT_EQ(list_line(*q_.find(id)), unfinished("1", "queued", "(file)", "[0]&& make install"));
}

TEST_F(ListingText, RunningShowsItsOutputPathAtAnyLength) {
    q_.set_max_slots(3);
    JobId a = q_.add(job({"a"}), kT0), b = q_.add(job({"b"}), kT0), c = q_.add(job({"c"}), kT0);
    q_.schedule();
    q_.started(a, 1, "/tmp/ts-out.abcdefgh", kT0);       // exactly 20: no padding left
    q_.started(b, 2, "/tmp/ts-out.abcdefghi", kT0);      // 21: the row widens
    q_.started(c, 3, "/t/o", kT0);
    EXPECT_EQ(list_line(*q_.find(a)), "0    running    /tmp/ts-out.abcdefgh                         a\n");
    EXPECT_EQ(list_line(*q_.find(b)), "1    running    /tmp/ts-out.abcdefghi                         b\n");
    EXPECT_EQ(list_line(*q_.find(c)), "2    running    /t/o                                         c\n");
}

TEST_F(ListingText, FinishedShowsItsLevelAndTimesWithTwoDecimals) {
    EXPECT_EQ(list_line(finished(job({"make", "-j8"}), exit_with(127, 123.456, 0.004, 2.996))),
              "0    finished   /tmp/ts-out.fin      127      123.46/0.00/3.00 make -j8\n");
    JobResult killed = exit_with(-1, 0.5);
    killed.signal = 15;
    EXPECT_EQ(list_line(finished(job({"sleep", "60"}), killed)),
              "1    finished   /tmp/ts-out.fin      -1       0.50/0.00/0.00 sleep 60\n");
    EXPECT_EQ(list_line(finished(job({"x"}), exit_with(-128, 1e6))),
              "2    finished   /tmp/ts-out.fin      -128     1000000.00/0.00/0.00 x\n");
}

TEST_F(ListingText, JobsWithoutStoredOutputShowStdoutInEveryStateButSkipped) {
    q_.set_max_slots(2);
    JobSpec n = job({"true"});
    n.flags = proto::kKeepFinished;                   // -n
    JobId fin = q_.add(n, kT0);
    JobId run = q_.add(n, kT0);
    q_.schedule();
    q_.started(run, 9, "", kT0);
    q_.end(fin, exit_with(1), kT0 + 1);
    EXPECT_EQ(list_line(*q_.find(run)), unfinished("1", "running", "stdout", "true"));
    EXPECT_EQ(list_line(*q_.find(fin)), "0    finished   stdout               1        0.00/0.00/0.00 true\n");
    JobSpec dep = n;
    dep.depends = true;
    dep.depend_on = fin;                              // failed: skipped
    JobId sk = q_.add(dep, kT0);
    q_.schedule();
    ASSERT_EQ(q_.find(sk)->state, JobState::Skipped);
    EXPECT_EQ(list_line(*q_.find(sk)), unfinished("2", "skipped", "(no output)", "[0]&& true"));
}

TEST_F(ListingText, ControlCharactersInEveryColumnAreEscaped) {
    JobSpec s = job({"printf", "a\rb", "\x1b[31mred"});
    s.label = std::string("l\x01") + "b\x7f";
    JobId id = q_.add(s, kT0);
    q_.schedule();
    q_.started(id, 5, "/tmp/out\tput", kT0);
    std::string line = list_line(*q_.find(id));
    EXPECT_EQ(line, "0    running    /tmp/out\\tput                                [l\\x01b\\x7f]printf a\\rb "
                    "\\x1b[31mred\n");
    for (char c : line.substr(0, line.size() - 1)) EXPECT_TRUE(c >= 0x20 && c != 0x7f) << int(c);
}

TEST_F(ListingText, OverflowJobsAreNotListed) {
    q_.set_max_jobs(3);   // two jobs at most in the queue
    q_.add(job({"one"}), kT0);
    q_.add(job({"two"}), kT0);
    JobId held = q_.add(job({"three"}), kT0);
    ASSERT_EQ(q_.find(held)->state, JobState::Overflow);
    EXPECT_EQ(list_text(q_), list_header(0, 1) + unfinished("0", "queued", "(file)", "one") +
                                 unfinished("1", "queued", "(file)", "two"));
}

// ------------------------------------------------------------------------- info

TEST_F(ListingText, InfoOfAQueuedJob) {
    JobSpec s = job({"echo", "hi there"});
    s.label = "not shown";
    s.num_slots = 3;
    JobId id = q_.add(s, kT0);
    EXPECT_EQ(info_text(*q_.find(id), kT0 + 99, kServer, kServer),
              std::string("Command: echo hi there\nSlots required: 3\nEnqueue time: ") + kT0Text);
}

TEST_F(ListingText, InfoOfARunningJobCountsFromItsStart) {
    JobId id = q_.add(job({"sleep", "9"}), kT0);
    q_.schedule();
    q_.started(id, 77, "/tmp/o", kT0 + 10);
    EXPECT_EQ(info_text(*q_.find(id), kT0 + 12.25, kServer, kServer),
              std::string("Command: sleep 9\nSlots required: 1\nEnqueue time: ") + kT0Text +
                  "Start time: Tue Nov 14 22:13:30 2023\nTime running: 2.250000s\n");
}

TEST_F(ListingText, InfoOfAFinishedJob) {
    const Job& j = finished(job({"false"}), exit_with(3, 9.5));
    EXPECT_EQ(info_text(j, kT0 + 1000, kServer, kServer),
              std::string("Exit status: died with exit code 3\nCommand: false\nSlots required: 1\nEnqueue time: ") +
                  kT0Text +
                  "Start time: Tue Nov 14 22:13:30 2023\nEnd time: Tue Nov 14 22:13:40 2023\n"
                  "Time run: 10.000000s\n");
}

TEST_F(ListingText, DurationsAreNeverNegativeWhenTheClockWasSetBack) {
    JobId id = q_.add(job({"sleep", "9"}), kT0);
    q_.schedule();
    q_.started(id, 77, "/tmp/o", kT0 + 10);
    EXPECT_NE(info_text(*q_.find(id), kT0 + 10 - 3600, kServer, kServer).find("Time running: 0.000000s\n"),
              std::string::npos);
    JobResult r;
    q_.end(id, r, kT0 + 10 - 3600);   // a runner whose clock was set back an hour meanwhile
    EXPECT_NE(info_text(*q_.find(id), kT0, kServer, kServer).find("Time run: 0.000000s\n"), std::string::npos);
}

// A job lost before its runner reported its start: no 1970 start time, and no
// "Time run" counted from it; its end is known.
TEST_F(ListingText, InfoOfAJobLostBeforeItStartedShowsNoStart) {
    JobId id = q_.add(job({"never"}), kT0);
    ASSERT_EQ(q_.schedule().start, std::vector<JobId>{id});
    q_.end(id, Queue::lost_result("its runner ended before the job started"), kT0 + 20);
    EXPECT_EQ(info_text(*q_.find(id), kT0 + 99, kServer, kServer),
              std::string("Exit status: killed by signal 9\nLost: its runner ended before the job started\n"
                          "Command: never\nSlots required: 1\nEnqueue time: ") +
                  kT0Text + "End time: Tue Nov 14 22:13:40 2023\n");
}

// Running, but its runner has not reported the start yet: no start, no time running.
TEST_F(ListingText, InfoOfAJobWhoseStartIsNotReportedYetShowsNoStart) {
    JobId id = q_.add(job({"starting"}), kT0);
    ASSERT_EQ(q_.schedule().start, std::vector<JobId>{id});
    EXPECT_EQ(info_text(*q_.find(id), kT0 + 99, kServer, kServer),
              std::string("Command: starting\nSlots required: 1\nEnqueue time: ") + kT0Text);
}

TEST_F(ListingText, InfoOfAKilledJob) {
    JobResult r = exit_with(-1);
    r.signal = 15;
    std::string info = info_text(finished(job({"sleep", "60"}), r), kT0, kServer, kServer);
    EXPECT_EQ(info.rfind("Exit status: killed by signal 15\nCommand: sleep 60\n", 0), 0u) << info;
}

TEST_F(ListingText, InfoOfALostJobSaysWhy) {
    std::string info = info_text(finished(job({"x"}), Queue::lost_result("its runner vanished\n(pid 12)")),
                                 kT0, kServer, kServer);
    EXPECT_EQ(info.rfind("Exit status: killed by signal 9\nLost: its runner vanished\\n(pid 12)\nCommand: x\n", 0),
              0u)
        << info;
}

TEST_F(ListingText, InfoShowsTheErrorBeforeWhatWasLost) {
    JobResult r = exit_with(-1);
    r.note = "cannot create the output file in /nonexistent";
    r.lost = "it never started";
    std::string info = info_text(finished(job({"x"}), r), kT0, kServer, kServer);
    EXPECT_EQ(info.rfind("Exit status: died with exit code -1\n"
                         "Error: cannot create the output file in /nonexistent\n"
                         "Lost: it never started\n"
                         "Command: x\n",
                         0),
              0u)
        << info;
}

TEST_F(ListingText, InfoOfASkippedJobStopsAfterItsEnqueueTime) {
    finished(job({"false"}), exit_with(1));               // 0
    JobSpec s = job({"true"});
    s.depends = true;
    s.depend_on = 0;
    JobId id = q_.add(s, kT0 + 30);
    q_.schedule();
    ASSERT_EQ(q_.find(id)->state, JobState::Skipped);
    EXPECT_EQ(info_text(*q_.find(id), kT0 + 99, kServer, kServer),
              "Exit status: died with exit code -1\nCommand: [0]&& true\nSlots required: 1\n"
              "Enqueue time: Tue Nov 14 22:13:50 2023\n");
}

TEST_F(ListingText, InfoOfADashDThatFoundNoJobShowsNoDependency) {
    JobSpec s = job({"true"});
    s.depends = true;                                 // -d on an empty queue
    JobId id = q_.add(s, kT0);
    EXPECT_EQ(list_line(*q_.find(id)), unfinished("0", "queued", "(file)", "&& true"));
    EXPECT_EQ(info_text(*q_.find(id), kT0, kServer, kServer).rfind("Command: true\n", 0), 0u);
}

TEST_F(ListingText, InfoOfAnOverflowJobIsThatOfAQueuedOne) {
    q_.set_max_jobs(2);
    q_.add(job({"one"}), kT0);
    JobId held = q_.add(job({"two"}), kT0);
    ASSERT_EQ(q_.find(held)->state, JobState::Overflow);
    EXPECT_EQ(info_text(*q_.find(held), kT0, kServer, kServer),
              std::string("Command: two\nSlots required: 1\nEnqueue time: ") + kT0Text);
}

TEST_F(ListingText, InfoOfAnotherUsersJobNamesTheUser) {
    JobId theirs = q_.add(job({"id"}, kOther), kT0);
    JobId mine = q_.add(job({"id"}, kServer), kT0);
    EXPECT_EQ(info_text(*q_.find(theirs), kT0, kServer, kServer),
              std::string("Command: id\nSlots required: 1\nUser: 1001\nEnqueue time: ") + kT0Text);
    EXPECT_EQ(info_text(*q_.find(theirs), kT0, kServer, kOther),   // the same to its owner
              info_text(*q_.find(theirs), kT0, kServer, kServer));
    EXPECT_EQ(info_text(*q_.find(mine), kT0, kServer, kOther).find("User:"), std::string::npos);
    // A root server's view of a user's job, and of its own.
    EXPECT_NE(info_text(*q_.find(mine), kT0, 0, 0).find("User: 1000\n"), std::string::npos);
}

TEST_F(ListingText, TsEnvTextOfTheServersOwnJobIsShownAsItIs) {
    JobSpec s = job({"x"});
    s.env_info = "A=1\n\tB=2\x1b";                    // no newline at the end: none is added
    JobId id = q_.add(s, kT0);
    std::string info = info_text(*q_.find(id), kT0, kServer, kServer);
    EXPECT_EQ(info.rfind("Environment:\nA=1\n\tB=2\\x1bCommand: x\n", 0), 0u) << info;
    EXPECT_EQ(info_text(*q_.find(id), kT0, kServer, 0), info);   // root
    EXPECT_EQ(info_text(*q_.find(id), kT0, kServer, kOther).rfind("Command: x\n", 0), 0u)
        << "another user saw the owner's TS_ENV text";
}

TEST_F(ListingText, TsEnvTextOfAnotherUsersJobIsOneLineForThoseWhoMaySeeIt) {
    JobSpec s = job({"x"}, kOther);
    s.env_info = "SECRET=1\nfake line\n";
    JobId id = q_.add(s, kT0);
    const std::string shown = "Environment:\nSECRET=1\\nfake line\\n\nCommand: x\n";
    EXPECT_EQ(info_text(*q_.find(id), kT0, kServer, kOther).rfind(shown, 0), 0u);    // its owner
    EXPECT_EQ(info_text(*q_.find(id), kT0, kServer, kServer).rfind(shown, 0), 0u);   // the server's owner
    EXPECT_EQ(info_text(*q_.find(id), kT0, kServer, 0).rfind(shown, 0), 0u);         // root
    EXPECT_EQ(info_text(*q_.find(id), kT0, kServer, kThird).rfind("Command: x\n", 0), 0u);
}

TEST_F(ListingText, EmptyTsEnvTextStillShowsTheHeading) {
    JobSpec s = job({"x"});
    s.env_info = "";
    JobId id = q_.add(s, kT0);
    EXPECT_EQ(info_text(*q_.find(id), kT0, kServer, kServer).rfind("Environment:\nCommand: x\n", 0), 0u);
}

// --------------------------------------------------------------------- savelist

const char* const kDumpHead =
    "#!/bin/sh\n"
    "# - task spooler (ts) job dump\n"
    "# This file has been created because a SIGTERM killed\n"
    "# your queue server.\n"
    "# The finished commands are listed first.\n"
    "# The commands running or to be run are stored as you would\n"
    "# probably run them. Take care - some quotes may have got broken\n"
    "\n";

TEST_F(ListingText, SavelistOfAnEmptyQueue) {
    EXPECT_EQ(savelist_text(q_, kServer), std::string(kDumpHead) + "# " + list_header(0, 1) + "\n");
}

TEST_F(ListingText, SavelistWholeText) {
    q_.set_max_slots(2);
    finished(job({"make"}), exit_with(0, 1.5, 0.25));                        // 0, finished
    JobSpec skip = job({"deploy"});
    skip.depends = true;
    skip.depend_on = 99;                                                 // 1, skipped: no such job
    q_.add(skip, kT0);
    q_.schedule();
    JobId run = q_.add(job({"sleep", "9"}), kT0);                       // 2, running
    q_.schedule();
    q_.started(run, 5, "/tmp/ts-out.run", kT0);
    q_.set_max_slots(1);
    JobSpec lab = job({"printf", "%s|", "a b", "", "it's", "~/x", "--opt=v,w"});
    lab.label = "not in the dump";
    lab.depends = true;
    lab.depend_on = run;
    q_.add(lab, kT0);                                                    // 3, queued
    q_.add(job({"rm", "-rf", "/"}, kOther), kT0);                        // 4, another user's
    EXPECT_EQ(savelist_text(q_, kServer),
              std::string(kDumpHead) +
                  "# ID   State      Output               E-Level  Times(r/u/s)   Command [run=1/1]\n"
                  "# 0    finished   /tmp/ts-out.fin      0        1.50/0.25/0.00 make\n"
                  "# 1    skipped    (no output)                                  [99]&& deploy\n"
                  "\n"
                  "ts sleep 9\n"
                  "ts printf '%s|' 'a b' '' 'it'\\''s' '~/x' --opt=v,w\n"
                  "# job 4 of uid 1001, not queued again: ts rm -rf /\n");
}

TEST_F(ListingText, SavelistForAnotherOwnerTurnsTheTablesRound) {
    q_.add(job({"mine"}, kServer), kT0);
    q_.add(job({"theirs"}, kOther), kT0);
    std::string s = savelist_text(q_, kOther);
    EXPECT_NE(s.find("\n# job 0 of uid 1000, not queued again: ts mine\nts theirs\n"), std::string::npos) << s;
}

// ts-spec §2.6: the dump has "every queued/running/holding job", so a job
// waiting for room in a full queue (Overflow, task-spooler's holding client)
// is in it too, after the queue.
TEST_F(ListingText, SavelistHasTheJobsWaitingForRoom) {
    q_.set_max_jobs(2);
    q_.add(job({"in", "queue"}), kT0);
    JobId held = q_.add(job({"waiting", "for", "room"}), kT0);
    ASSERT_EQ(q_.find(held)->state, JobState::Overflow);
    std::string s = savelist_text(q_, kServer);
    EXPECT_NE(s.find("\nts in queue\n"), std::string::npos) << s;
    EXPECT_NE(s.find("\nts waiting for room\n"), std::string::npos) << s;
}

}  // namespace

// ---------------------------------------------------------- whole lists

TEST(List, EmptyHeader) {
    Queue q;
    EXPECT_EQ(list_text(q), kHeader01);
    EXPECT_EQ(list_header(0, 1), kHeader01);
    EXPECT_EQ(list_header(3, 1),
              "ID   State      Output               E-Level  Times(r/u/s)   Command [run=3/1]\n");
}

TEST(List, DrainedHeaderAndInfo) {
    Queue q;
    q.add(cmd({"a"}), 0);
    std::string plain = list_text(q);
    EXPECT_EQ(waiting_text(*q.find(0), false), "");
    q.set_drained(true);
    EXPECT_EQ(list_header(0, 1, true),
              "ID   State      Output               E-Level  Times(r/u/s)   Command [run=0/1 drained]\n");
    std::string drained = list_text(q);
    EXPECT_EQ(drained.substr(0, drained.find('\n') + 1), list_header(0, 1, true));
    EXPECT_EQ(drained.substr(drained.find('\n')), plain.substr(plain.find('\n'))) << "the jobs' lines are as before";
    EXPECT_EQ(waiting_text(*q.find(0), true), "Waiting: the queue is drained: ts --resume starts it\n");
    q.set_drained(false);
    EXPECT_EQ(list_text(q), plain) << "resumed: task-spooler's header again";
    q.schedule();
    EXPECT_EQ(waiting_text(*q.find(0), true), "") << "a running job waits for nothing";
}

TEST(List, MixedQueue) {
    Queue q;
    q.set_max_slots(2);
    q.add(cmd({"sleep", "1"}), 0);                 // 0
    q.schedule();
    q.started(0, 100, "/tmp/ts-out.JhV49t", 1);
    JobSpec lab = dep_on(0, {"echo", "q"});
    lab.label = "lab";
    q.add(lab, 0);                                 // 1
    JobSpec plain = cmd({"true"});
    plain.flags = proto::kKeepFinished;            // -n
    q.add(plain, 0);                               // 2
    q.schedule();                                  // 2 runs
    EXPECT_EQ(list_text(q),
              "ID   State      Output               E-Level  Times(r/u/s)   Command [run=2/2]\n"
              "0    running    /tmp/ts-out.JhV49t                           sleep 1\n"
              "1    queued     (file)                                       [0]&& [lab]echo q\n"
              "2    running    stdout                                       true\n");

    q.end(2, exit_with(0), 2);
    EXPECT_EQ(list_text(q),
              "ID   State      Output               E-Level  Times(r/u/s)   Command [run=1/2]\n"
              "0    running    /tmp/ts-out.JhV49t                           sleep 1\n"
              "1    queued     (file)                                       [0]&& [lab]echo q\n"
              "2    finished   stdout               0        0.00/0.00/0.00 true\n");

    q.end(0, exit_with(0, 1.004, 0.001, 0.002), 3);
    ASSERT_EQ(q.schedule().start, V{1});
    q.started(1, 101, "/tmp/ts-out.b", 3);
    EXPECT_EQ(list_text(q),
              "ID   State      Output               E-Level  Times(r/u/s)   Command [run=1/2]\n"
              "1    running    /tmp/ts-out.b                                [0]&& [lab]echo q\n"
              "2    finished   stdout               0        0.00/0.00/0.00 true\n"
              "0    finished   /tmp/ts-out.JhV49t   0        1.00/0.00/0.00 sleep 1\n");
}

TEST(List, FinishedWithNegativeLevelAndSkipped) {
    Queue q;
    q.add(cmd({"false"}), 0);                      // 0
    q.schedule();
    q.started(0, 5, "/tmp/ts-out.x", 0);
    q.end(0, exit_with(-56, 0.5, 0.25, 0.126), 1);
    q.add(dep_on(0), 2);                           // 1
    q.schedule();
    JobSpec empty_label = dep_on(-1);
    empty_label.label = "";
    q.add(empty_label, 3);                         // 2: -d on skipped job 1, -L ''
    q.schedule();
    EXPECT_EQ(list_text(q),
              std::string(kHeader01) +
                  "0    finished   /tmp/ts-out.x        -56      0.50/0.25/0.13 false\n"
                  "1    skipped    (no output)                                  [0]&& true\n"
                  "2    skipped    (no output)                                  [1]&& []true\n");
}

TEST(List, DependencyOnNothing) {
    Queue q;
    q.add(dep_on(-1), 0);
    EXPECT_EQ(list_text(q), std::string(kHeader01) +
                                 "0    queued     (file)                                       && true\n");
    q.schedule();
    // Running, but the runner has not reported its output file yet.
    EXPECT_EQ(list_text(q),
              "ID   State      Output               E-Level  Times(r/u/s)   Command [run=1/1]\n"
              "0    running    (...)                                        && true\n");
}

TEST(List, LostQueuedJobAndLongPath) {
    Queue q;
    for (int i = 0; i < 12; ++i) {   // ids 0..11, finished and evicted
        q.add(cmd({"x"}), 0);
        q.schedule();
        q.end(i, exit_with(0), 0);
    }
    q.set_max_finished(2);
    q.add(cmd({"sleep", "10"}), 0);  // 12
    q.add(cmd({"true"}), 0);         // 13
    q.schedule();
    q.started(12, 77, "/tmp/a/very/long/path/ts-out.123456", 0);
    q.end(13, Queue::lost_result(), 1);   // client of the queued job died
    q.end(11, exit_with(0), 1);           // already finished: no change
    EXPECT_EQ(list_text(q),
              "ID   State      Output               E-Level  Times(r/u/s)   Command [run=1/1]\n"
              "12   running    /tmp/a/very/long/path/ts-out.123456                         sleep 10\n"
              "11   finished   (...)                0        0.00/0.00/0.00 x\n"
              "13   finished   (...)                -1       0.00/0.00/0.00 true\n");
    q.end(12, exit_with(3, 12.5, 1.5, 0), 2);
    EXPECT_EQ(list_text(q),
              std::string(kHeader01) +
                  "13   finished   (...)                -1       0.00/0.00/0.00 true\n"
                  "12   finished   /tmp/a/very/long/path/ts-out.123456 3        12.50/1.50/0.00 sleep 10\n");
}

TEST(List, QueuedWithoutStoredOutputShowsStdout) {
    Queue q;
    q.add(cmd({"a"}), 0);
    JobSpec n = cmd({"a", "b"});
    n.flags = proto::kKeepFinished;
    q.add(n, 0);
    q.schedule();
    EXPECT_EQ(list_line(*q.find(1)),
              "1    queued     stdout                                       a b\n");
    EXPECT_EQ(list_line(*q.find(0)),
              "0    running    (...)                                        a\n");
}

TEST(ListLine, ControlCharactersKeepOneLinePerJob) {
    EXPECT_EQ(printable(std::string("a\nb\tc\rd\x01" "e\x7f", 10) + "\xff"), "a\\nb\\tc\\rd\\x01e\\x7f\xff");
    Queue q;
    JobSpec s;
    s.argv = {"printf", "x\ny"};
    s.label = std::string("l\tb");
    q.add(s, 0);
    std::string line = list_line(*q.find(0));
    EXPECT_EQ(line.find('\n'), line.size() - 1);
    EXPECT_NE(line.find("[l\\tb]printf x\\ny"), std::string::npos) << line;
}

TEST(Info, SaysEveryReasonAQueuedJobWaitsOneLineEach) {
    setenv("TZ", "UTC", 1);
    tzset();
    Queue q;
    q.set_max_slots(2);
    JobSpec s = cmd({"a"}, 3);
    s.settings.set_held(true);
    s.settings.set_not_before(1800000000);   // 2027-01-15 08:00:00 UTC
    q.add(s, 0);
    WaitFacts f;
    f.drained = true;
    f.deps = {4, 5};
    f.busy = 1;
    f.max = 2;
    f.now = 1700000000;
    EXPECT_EQ(waiting_text(*q.find(0), f),
              "Waiting: held: ts --release=0 starts it\n"
              "Waiting: delayed until 2027-01-15 08:00:00 (local time)\n"
              "Waiting: the queue is drained: ts --resume starts it\n"
              "Waiting for jobs 4, 5 to end\n"
              "Waiting: needs 3 slots, 1 of 2 free\n");
    f = WaitFacts();
    f.now = 1900000000;
    ASSERT_TRUE(q.hold(0, false));
    EXPECT_EQ(waiting_text(*q.find(0), f), "") << "released, its time dropped, nothing else known";
    f.busy = 2;
    f.max = 2;
    q.find(0)->spec.num_slots = 1;
    EXPECT_EQ(waiting_text(*q.find(0), f), "Waiting: needs 1 slot, 0 of 2 free\n");
    unsetenv("TZ");
    tzset();
}

TEST(Info, AJobItsClientRunsHasItsAttemptsToo) {
    Queue q;
    JobSpec f = cmd({"false"});
    f.settings.set_retries(2);
    f.flags |= proto::kForeground;   // -f: its client runs each run
    q.add(f, 0);
    std::string fg = info_text(*q.find(0), wall_now(), 0, 0);
    EXPECT_NE(fg.find("Attempt 1 of 3: queued\n"), std::string::npos) << fg;
}

/* An attempt whose start was never reported has only its end in -i, not a
 * start in 1970. */
TEST(Info, AnAttemptThatNeverReportedItsStartShowsItsEndOnly) {
    Queue q;
    JobSpec s = cmd({"false"});
    s.settings.set_retries(1);
    q.add(s, 0);
    ASSERT_TRUE(q.start(0));
    JobResult r;
    r.errorlevel = 1;
    ASSERT_TRUE(q.retry(0, r, 1700000000));
    std::string text = info_text(*q.find(0), wall_now(), 0, 0);
    EXPECT_NE(text.find("Attempt 1 of 2: died with exit code 1, before its start was reported, at "), std::string::npos)
        << text;
    EXPECT_EQ(text.find("1970-01-01"), std::string::npos) << text;
}
