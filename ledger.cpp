/*
 * ledger.cpp — each change of the queue: the model, its journal record, its
 * listeners, in that order (ledger.h says which records may fail how).
 */
#include "ledger.h"

#include <algorithm>

#include "journal.h"

/* Listeners hear whose job it was (a removed job is gone already: remove says). */
void Ledger::tell(Change c) {
    if (c.owner == uid_t(-1) && c.id >= 0)
        if (const Job* j = queue_->find(c.id)) c.owner = j->spec.uid;
    for (LedgerListener* l : listeners_) l->on_change(c);
}

bool Ledger::add(JobSpec spec, double wall, double mono, JobId* id) {
    *id = queue_->add(std::move(spec), wall, mono);
    if (!journal_->job(*queue_->find(*id), false)) {   // on disk, or not queued at all
        queue_->cancel_add(*id);
        return false;
    }
    tell({ChangeKind::Added, *id});
    return true;
}

bool Ledger::remove(JobId id, bool head_too) {
    const Job* j = queue_->find(id);
    uid_t owner = j ? j->spec.uid : uid_t(-1);
    if (!queue_->remove(id, head_too)) return false;
    journal_->removed(id);
    tell({ChangeKind::Removed, id, -1, nullptr, owner});
    return true;
}

bool Ledger::urgent(JobId id) {
    if (!queue_->urgent(id)) return false;
    journal_->urgent(id);
    tell({ChangeKind::Urgent, id});
    return true;
}

bool Ledger::urgent_among_own(JobId id) {
    JobId before = -1;
    if (!queue_->urgent_among_own(id, &before)) return false;
    if (before >= 0) {   // else it was first of them already: nothing moved
        journal_->moved_before(id, before);
        tell({ChangeKind::MovedBefore, id, before});
    }
    return true;
}

bool Ledger::swap(JobId a, JobId b) {
    if (!queue_->swap(a, b)) return false;
    journal_->swapped(a, b);
    tell({ChangeKind::Swapped, a, b});
    return true;
}

void Ledger::clear() {
    queue_->clear_finished();
    journal_->cleared();
    tell({ChangeKind::Cleared});
}

void Ledger::slots(int n) {
    queue_->set_max_slots(n);
    journal_->slots(n);
    tell({ChangeKind::Slots});
}

bool Ledger::drain(bool on) {
    if (queue_->drained() == on) return false;
    queue_->set_drained(on);
    journal_->drained(on);
    tell({ChangeKind::Drained});
    return true;
}

bool Ledger::hold(JobId id, bool on) {
    if (!queue_->hold(id, on)) return false;
    journal_->held(id, on);
    tell({ChangeKind::Held, id});
    return true;
}

bool Ledger::settings(const QueueSettings& s) {
    bool written = journal_->set_settings(s);
    tell({ChangeKind::Settings});
    return written;
}

std::vector<JobId> Ledger::admit_overflow() {
    std::vector<JobId> ids = queue_->admit_overflow();
    for (JobId id : ids) {
        journal_->admitted(id);
        tell({ChangeKind::Admitted, id});
    }
    return ids;
}

Decisions Ledger::schedule(GpuPlan* plan, double wall) {
    Decisions d = queue_->schedule(plan, wall);
    JobResult skip = skipped_result();
    for (JobId id : d.skipped) ended(id, skip, wall);   // the queue has ended them already
    return d;
}

bool Ledger::start(JobId id) {
    const Job* j = queue_->find(id);
    if (!j || !journal_->start(id, false, j->gpus(), j->start_env())) {
        cancel_start(id);   // a start that cannot be recorded does not happen
        return false;
    }
    tell({ChangeKind::Started, id});
    return true;
}

void Ledger::cancel_start(JobId id) { (void)queue_->unstart(id); }   // its GPUs go back too

bool Ledger::resume(JobId id) {
    if (!queue_->start(id)) return false;
    journal_->start(id);
    tell({ChangeKind::Started, id});
    return true;
}

void Ledger::runner(JobId id, pid_t pid) {
    queue_->set_runner(id, pid);
    journal_->runner(id, pid);
    tell({ChangeKind::Runner, id});
}

void Ledger::started(JobId id, pid_t pid, const std::string& output, double start) {
    queue_->started(id, pid, output, start);
    journal_->started(id, pid, output, start);
    tell({ChangeKind::Running, id});
}

bool Ledger::end(JobId id, const JobResult& r, double end) {
    const Job* j = queue_->find(id);
    if (!j || j->state == JobState::Finished || j->state == JobState::Skipped) return false;
    if (queue_->will_retry(id, r)) {   // --retry: this run is an attempt, and the job is queued again
        queue_->retry(id, r, end);
        journal_->retried(id, r, end);
        tell({ChangeKind::Retried, id, -1, &r});
        return true;
    }
    queue_->end(id, r, end);
    ended(id, r, end);
    return true;
}

/* The record and the news of an end the queue has made. */
void Ledger::ended(JobId id, const JobResult& r, double end) {
    journal_->ended(id, r, end);
    tell({ChangeKind::Ended, id, -1, &r});
}

bool Ledger::unstart(JobId id) {
    if (!queue_->unstart(id)) return false;
    journal_->unstarted(id);
    tell({ChangeKind::Unstarted, id});
    return true;
}

void Ledger::reattached(JobId id, pid_t pid) {
    queue_->client_back(id);
    if (pid > 0) queue_->set_runner(id, pid);
    tell({ChangeKind::Reattached, id});
}

bool Ledger::writable() {
    (void)journal_->at_path();   // a removed journal is written again before the change, not after
    bool ok = !failing() || journal_->recover(*queue_);
    return ok && journal_->room();
}

bool Ledger::failing() const { return !journal_->ok() || journal_->pending(); }

bool Ledger::recover(double now) {
    if (failing()) {
        if (now < next_recover_) return false;
        if (!journal_->recover(*queue_)) {
            next_recover_ = now + recover_delay_;
            recover_delay_ = std::min(recover_delay_ * 2, 2.0);
            return false;
        }
    }
    recover_delay_ = 0.25;
    next_recover_ = 0;
    return true;
}
