/*
 * runner_supply.cpp — which of the server's own jobs gets which runner, and
 * when: spares, the wait for one, runners forked here, the back-off (runner_supply.h).
 */
#include "runner_supply.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

RunnerSupply::RunnerSupply(SupplyHost* host, std::unique_ptr<Launcher> launcher, Clock clock)
    : host_(host), launcher_(std::move(launcher)), now_(std::move(clock)) {}

bool RunnerSupply::may_start() {
    if (start_after_ == 0) return true;
    if (now_() < start_after_) return false;
    start_after_ = 0;
    return true;
}

Conn* RunnerSupply::idle_spare() const { return idle_ && !host_->closing(*idle_) ? idle_ : nullptr; }

void RunnerSupply::start(const Job& j) {
    if (Conn* spare = idle_spare()) {
        idle_ = nullptr;
        // Its replacement is asked for once the job runs (runner_started).
        host_->assign(*spare, j.id, encode_order(runner_order(j)));
        return;
    }
    if (ahead_) {
        if (waiting_.empty()) waiting_since_ = now_();
        waiting_.push_back(j.id);
        top_up();   // if the spawner turns out to be gone, its runner is made here then
        return;
    }
    make_now(j);
}

RunnerSupply::SpareIs RunnerSupply::spare_came(Conn& c) {
    if (asked_ > 0) --asked_;
    while (!waiting_.empty()) {
        JobId id = waiting_.front();
        waiting_.pop_front();
        waiting_since_ = now_();
        if (const Job* j = host_->wants_runner(id)) {
            host_->assign(c, id, encode_order(runner_order(*j)));
            top_up();
            return SpareIs::Assigned;
        }
    }
    // One idle spare is enough: a late one (its job got a runner made here
    // meanwhile) is sent away, and ends without a job.
    if (idle_spare()) return SpareIs::Surplus;
    idle_ = &c;
    top_up();
    return SpareIs::Idle;
}

bool RunnerSupply::spare_lost(const Conn& c) {
    if (&c != idle_) return false;
    idle_ = nullptr;
    top_up();   // have another made
    return true;
}

void RunnerSupply::runner_started(JobId id, pid_t pid) {
    if (pid > 0 && !short_of_.empty()) {   // the end of a shortage
        if (short_said_) host_->log(format("job %d started: %s is available again", id, short_of_.c_str()));
        short_of_.clear();
        short_said_ = false;
        start_delay_ = 0;
    }
    // The spare that became this runner is replaced now, not while it was starting the job.
    top_up();
}

void RunnerSupply::unstarted(JobId id, int err) {
    short_of(id, "fork", err);
    top_up();
}

void RunnerSupply::top_up() {
    if (!ahead_ || !launcher_) return;
    size_t have = static_cast<size_t>(asked_) + (idle_spare() ? 1 : 0);
    size_t want = 1 + waiting_.size();
    while (have < want) {
        Ahead a = launcher_->ask_ahead();
        if (a == Ahead::Enough) return;   // it has plenty to do already
        if (a == Ahead::Lost) return ahead_gone(strerror(errno));
        if (a == Ahead::None) return ahead_gone(nullptr);
        ++have;
        ++asked_;
    }
}

void RunnerSupply::reaped(pid_t pid) {
    if (launcher_ && launcher_->reaped(pid)) ahead_gone("it ended");
}

/* The spawner ended or cannot be reached (why; nullptr: there never was
 * one): runners are made here from now on. */
void RunnerSupply::ahead_gone(const char* why) {
    if (!ahead_) return;
    if (why) host_->log(format("the spawner is gone (%s): runners are forked by the server from now on", why));
    ahead_ = false;
    asked_ = 0;
    check_waiting();
}

void RunnerSupply::check_waiting() {
    if (waiting_.empty()) return;
    if (ahead_ && now_() - waiting_since_ < kSpareWait) return;
    if (ahead_) host_->log(format("no spare runner came for %.0f s: forking runners here", kSpareWait));
    std::deque<JobId> ids;
    ids.swap(waiting_);
    // Spares the spawner was asked for and has forked, but which never came
    // (one died young), are asked for again; requests it has not read yet
    // (it is stopped, or slow) still count, so that they do not pile up.
    int unread = ahead_ ? launcher_->unread_asks() : -1;
    if (unread >= 0) asked_ = std::min(asked_, unread);
    for (JobId id : ids)
        if (const Job* j = host_->wants_runner(id)) make_now(*j);
}

/* A runner made now, by the launcher (without a spawner, or when no spare came). */
void RunnerSupply::make_now(const Job& j) {
    if (start_after_ != 0) {   // short of resources in this very pass: not again now
        short_of(j.id, nullptr, 0);
        return;
    }
    LocalRunner r;
    LaunchError why;
    if (!launcher_->start(runner_order(j), &r, &why)) {
        short_of(j.id, why.what, why.err);
        return;
    }
    host_->add_runner(j.id, std::move(r));
}

/* A started job whose runner cannot be made now (no descriptors, no
 * processes, no memory) goes back to the queue, in its place, and no job
 * starts for a little while (longer each time). The log says so once a
 * shortage, and once a minute at most. */
void RunnerSupply::short_of(JobId id, const char* what, int err) {
    if (what) {
        std::string missing = err == EMFILE || err == ENFILE ? "a file descriptor"
                              : err == EAGAIN             ? "a process"
                                                          : "memory";
        double now = now_();
        if (short_of_.empty() && now - short_logged_ >= 60) {
            host_->log(format("job %d cannot start yet (%s: %s): it stays queued, and starts when %s is "
                              "available again",
                              id, what, strerror(err), missing.c_str()));
            short_logged_ = now;
            short_said_ = true;
        }
        short_of_ = missing;
        start_delay_ = start_delay_ == 0 ? 0.05 : std::min(start_delay_ * 2, 2.0);
        start_after_ = now + start_delay_;
    }
    host_->unstart(id);
}

/* A job that ended or left the queue needs no count of failed starts. */
void RunnerSupply::on_change(const Change& c) {
    if (c.kind == ChangeKind::Ended || c.kind == ChangeKind::Removed) start_tries_.erase(c.id);
}
