/*
 * bounds.cpp — other users' connections, buffered bytes and log lines,
 * counted and bounded: see bounds.h.
 */
#include "bounds.h"

#include <algorithm>

#include "util.h"

void Bounds::set_descriptors(size_t n) {
    limits_.others_conns = n > 2 * kFdReserve ? n - kFdReserve : n / 2;
}

bool Bounds::admit(Charges* c, uid_t uid, size_t plain, std::string* why) {
    c->uid_ = uid;
    if (trusted(uid)) return true;
    if (plain >= limits_.user_conns || others_conns_ >= limits_.others_conns) {
        *why = plain >= limits_.user_conns ? "too many connections of this user"
                                           : "too many connections of other users";
        return false;   // closed: it never waits in the backlog
    }
    c->bounded_ = true;
    ++others_conns_;
    return true;
}

/* All of one user's connections together: one that sends slowly and many
 * that send a little each cost the same. */
bool Bounds::charge_input(Charges* c, size_t bytes, std::string* why) {
    if (!c->bounded_) return true;
    Usage& u = users_[c->uid_];
    if (u.input + bytes > limits_.user_input) {
        *why = format("more than %zu MiB of requests buffered", limits_.user_input >> 20);
        forget_if_empty(c->uid_);
        return false;
    }
    u.input += bytes;
    c->input_ += bytes;
    return true;
}

void Bounds::release_input(Charges* c, size_t bytes) {
    if (!c->bounded_) return;
    bytes = std::min(bytes, c->input_);   // never more than it holds: a count cannot wrap
    c->input_ -= bytes;
    users_[c->uid_].input -= bytes;
    forget_if_empty(c->uid_);
}

bool Bounds::charge_unread(Charges* c, size_t bytes, std::string* why) {
    if (!c->bounded_) return true;
    release_unread(c);
    Usage& u = users_[c->uid_];
    if (u.unread + bytes > limits_.user_unread) {
        *why = "too many unread answers";
        forget_if_empty(c->uid_);
        return false;
    }
    u.unread += bytes;
    c->unread_ = bytes;
    return true;
}

void Bounds::release_unread(Charges* c) {
    if (!c->bounded_ || c->unread_ == 0) return;
    users_[c->uid_].unread -= c->unread_;
    c->unread_ = 0;
    forget_if_empty(c->uid_);
}

void Bounds::release(Charges* c) {
    if (!c->bounded_) return;
    release_input(c, c->input_);
    release_unread(c);
    --others_conns_;
    c->bounded_ = false;   // released once, however often the server says it is gone
}

/* A hostile user must not fill the owner's disk with lines about itself. */
bool Bounds::may_log(double now, size_t* left_out) {
    if (now - logged_at_ < limits_.log_every) {
        ++unlogged_;
        return false;
    }
    *left_out = unlogged_;
    logged_at_ = now;
    unlogged_ = 0;
    return true;
}

size_t Bounds::user_input(uid_t uid) const {
    auto it = users_.find(uid);
    return it == users_.end() ? 0 : it->second.input;
}

size_t Bounds::user_unread(uid_t uid) const {
    auto it = users_.find(uid);
    return it == users_.end() ? 0 : it->second.unread;
}

/* A user who holds nothing takes no room (uids come and go on a shared host). */
void Bounds::forget_if_empty(uid_t uid) {
    auto it = users_.find(uid);
    if (it != users_.end() && it->second.empty()) users_.erase(it);
}

void Bounds::set_job_caps(size_t jobs, size_t bytes) {
    limits_.user_jobs = jobs;
    limits_.user_bytes = bytes;
}

bool Bounds::may_queue(uid_t uid, size_t jobs, size_t held, size_t bytes, std::string* why) const {
    if (trusted(uid)) return true;
    if (jobs >= limits_.user_jobs) {
        *why = format("uid %u has %s queued or running here, the most that the queue's owner "
                      "allows another user (TS_USER_MAXJOBS=%zu).\n",
                      unsigned(uid), counted(jobs, "job", "jobs").c_str(), limits_.user_jobs);
        return false;
    }
    if (held + bytes > limits_.user_bytes) {
        *why = format("this job (%zu bytes) would take the jobs of uid %u in this queue past %zu "
                      "bytes, the most that the queue's owner allows another user "
                      "(TS_USER_MAXSIZE).\n",
                      bytes, unsigned(uid), limits_.user_bytes);
        return false;
    }
    return true;
}
