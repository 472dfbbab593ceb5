/*
 * handlers_waits.cpp — the handlers of waiting on many jobs and of running
 * jobs again: -w 3,4,5 (WaitList), --wait-all, --wait-start (each the
 * connection's one Deferred request: waits.h), and --requeue (new jobs made
 * from finished ones, through the ledger like any submit). Their rows are in
 * handlers.cpp's kHandlers.
 *
 * A requeued job is a copy of the finished job's spec (command, cwd,
 * environment, label, slots, umask, nice, limits, settings) under a new id
 * and a new token, with kSettingRequeueOf naming the job it runs again. Only
 * jobs that the server's own runners ran can be requeued: they run as the
 * server's uid, which is their submitter's. A job that its submitter's own ts
 * ran (another user's, in a shared queue) is refused: the server never runs
 * code as another user, and that user's ts is gone.
 */
#include <algorithm>
#include <map>
#include <set>

#include "settings.h"
#include "server_impl.h"

using proto::MsgType;

namespace {

bool ended(const Job& j) { return j.state == JobState::Finished || j.state == JobState::Skipped; }

/* Not ended well: a non-zero exit, a signal, a skip (or a lost runner). */
bool failed(const Job& j) { return ended(j) && (j.result.errorlevel != 0 || j.result.signal || j.result.skipped); }

/* "4, 5" of the old -> new ids: the new ones. */
std::string joined_ids(const std::map<JobId, JobId>& renamed) {
    std::string s;
    for (const auto& [from, to] : renamed) s += (s.empty() ? "" : ", ") + std::to_string(to);
    return s;
}

}  // namespace

void Server::on_wait_list(Conn& c, const Frame& f) {
    std::vector<int32_t> ids;
    if (!decode_ids(f.payload, &ids, kMaxJobDeps)) {
        error(c, format("-w needs a list of 1 to %zu job ids.\n", kMaxJobDeps));
        return;
    }
    for (int32_t id : ids)
        if (!queue_.find(id)) {
            cannot(c, id, "waited");
            return;
        }
    wait_on_list(c, {ids.begin(), ids.end()});
}

/* --wait-all: the caller's jobs queued, running or waiting for room now, in id order. */
void Server::on_wait_all(Conn& c, const Frame&) {
    std::vector<JobId> mine;
    for (JobId id : queue_.active())
        if (queue_.find(id)->spec.uid == c.uid) mine.push_back(id);
    for (JobId id : queue_.overflow())
        if (queue_.find(id)->spec.uid == c.uid) mine.push_back(id);
    if (mine.empty()) {
        TailWriter t;
        t.add("no job of yours is queued or running: nothing to wait for");
        c.out += encode_empty(MsgType::Warning, t.str());
        proto::WaitBody w{};
        reply(c, encode(MsgType::WaitDone, w));
        return;
    }
    std::sort(mine.begin(), mine.end());
    wait_on_list(c, std::move(mine));
}

/* c waits for the end of every job of ids (all known): WaitingFor now, then
 * WaitDone with the status of the first of them that did not end well. */
void Server::wait_on_list(Conn& c, std::vector<JobId> ids) {
    Deferred d;
    for (JobId id : ids) {
        const Job* j = queue_.find(id);
        if (!ended(*j)) {
            d.ends.insert(id);
            continue;
        }
        d.results[id] = j->result.errorlevel;
        if (j->result.how != EndHow::Normal) d.hows[id] = j->result.how;
    }
    std::vector<int32_t> wire(ids.begin(), ids.end());
    d.order = std::move(ids);
    set_role(c, Role::Waiter);
    reply(c, encode_empty(MsgType::WaitingFor, encode_ids(wire)), false);   // so it can ask again after a restart
    waits_.add(c, std::move(d));   // answered by deferred_done (at once if all ended)
}

/* --wait-start=ID: answered when the job runs (its runner reported the start). */
void Server::on_wait_start(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = lookup(c, r.id, true);
    if (!j) {
        cannot(c, r.id, "waited");
        return;
    }
    if (j->start_time > 0 || ended(*j)) {   // it ran (or runs), or it never will
        Deferred d;
        d.then = Deferred::Then::Started;
        d.order = {j->id};
        deferred_done(c, std::move(d));
        return;
    }
    set_role(c, Role::Waiter);
    Deferred d;
    d.then = Deferred::Then::Started;
    d.order = {j->id};
    d.starts.insert(j->id);
    proto::JobRef w{};
    w.id = j->id;
    reply(c, encode(MsgType::Waiting, w), false);   // so the client can ask again after a restart
    waits_.add(c, std::move(d));
}

/* --wait-start's answer: WaitDone 0 if the job ran, else why it never will. */
void Server::answer_started(Conn& c, const Deferred& d) {
    JobId id = d.order.empty() ? -1 : d.order.front();
    const Job* j = queue_.find(id);
    set_role(c, Role::Client);
    if (d.ran.count(id) || (j && j->start_time > 0)) {
        proto::WaitBody w{};
        reply(c, encode(MsgType::WaitDone, w));
    } else if (!j) {
        error(c, format("The job %i was removed before it started.\n", id));
    } else {
        error(c, format("The job %i ended without running%s.\n", id,
                        j->result.skipped ? " (skipped: a dependency failed)" : ""));
    }
}

/* --requeue=ID (b 0) and --requeue=failed (b 1). */
void Server::on_requeue(Conn& c, const Frame& f) {
    proto::JobPair p;
    (void)decode_body(f, &p);
    std::vector<JobId> ids;
    size_t left_out = 0;   // --requeue=failed: failed jobs of the caller's that its own ts ran
    if (p.b != 0 && p.b != 1) {   // no ts sends it
        error(c, format("A requeue of %d jobs is not a request ts knows.\n", p.b));
        return;
    }
    if (p.b == 1) {
        ids = failed_of(c, &left_out);
    } else {
        Job* j = p.b == 0 ? queue_.find(p.a) : nullptr;
        if (!j) {
            error(c, format("There is no job %i.\n", p.a));
            return;
        }
        if (!may_manage(c, *j)) return;
        if (!ended(*j)) {
            error(c, format("The job %i is %s: only a finished or skipped job can be requeued.\n", j->id,
                            j->state == JobState::Running ? "running" : "queued"));
            return;
        }
        if (!requeueable(c, *j)) return;
        ids = {j->id};
    }
    if (!writable(c, "nothing was requeued")) return;
    std::map<JobId, JobId> renamed;   // of this call: dependencies among them follow the new ids
    std::string out, why;
    for (JobId id : ids) {
        JobId n = -1;
        if (!requeue_job(c, *queue_.find(id), renamed, &n, &why)) break;
        renamed[id] = n;
        out += format("%i\n", n);
    }
    if (!why.empty()) {
        error(c, renamed.empty() ? why + "; nothing was requeued.\n"
                                 : format("%s; only %zu of %zu jobs were requeued, as jobs %s.\n", why.c_str(),
                                          renamed.size(), ids.size(), joined_ids(renamed).c_str()));
        return;
    }
    if (ids.empty() || left_out > 0) {
        TailWriter t;
        t.add(left_out == 0 ? std::string("no failed job of yours to requeue")
                            : format("%zu failed job%s of yours ran in your own ts, not in this server: it cannot "
                                     "run %s again (ts --requeue=ID of each says how to queue it again)",
                                     left_out, left_out == 1 ? "" : "s", left_out == 1 ? "it" : "them"));
        c.out += encode_empty(MsgType::Warning, t.str());
    }
    reply_text(c, out);
}

/* A job the server can run again: one its own runners ran, whose environment
 * is known (else an error answered). */
bool Server::requeueable(Conn& c, const Job& j) {
    if (j.spec.flags & proto::kRunByClient) {
        // Its submitter's ts cannot take a command from the server to run as them (a server's owner could
        // send any): the submitter is shown how to queue it again instead.
        std::string again;
        if (c.uid == j.spec.uid) {
            again = " (with the options it had: cd " + paste_quote(j.spec.cwd) + " && ts";
            for (const std::string& a : j.spec.argv) again += " " + paste_quote(a);
            again += ")";
        }
        error(c, format("The job %i was run by its submitter's own ts (uid %u), not by this server: the "
                        "server cannot run it again. Submit it again instead%s.\n",
                        j.id, unsigned(j.spec.uid), again.c_str()));
        return false;
    }
    if (!j.env) {
        error(c, format("The environment of job %i is not known (it ended under an older ts): it cannot "
                        "be requeued. Submit it again instead.\n", j.id));
        return false;
    }
    return true;
}

/* --requeue=failed: the caller's failed jobs, in id order, that the server
 * can run again and that no job runs again already (requeued before). */
std::vector<JobId> Server::failed_of(const Conn& c, size_t* run_by_client) {
    std::set<JobId> again;
    auto note = [&](JobId id) {   // a job of the caller's that runs one again (the server set it: --requeue)
        const Job& j = *queue_.find(id);
        if (j.spec.uid != c.uid) return;
        if (auto of = j.spec.settings.requeue_of()) again.insert(*of);
    };
    for (const std::list<JobId>* l : {&queue_.active(), &queue_.finished_list()})
        for (JobId id : *l) note(id);
    for (JobId id : queue_.overflow()) note(id);
    std::vector<JobId> ids;
    *run_by_client = 0;
    for (JobId id : queue_.finished_list()) {
        const Job& j = *queue_.find(id);
        if (j.spec.uid != c.uid || !failed(j) || again.count(id)) continue;
        if (j.spec.flags & proto::kRunByClient) ++*run_by_client;   // the server cannot run it again
        else if (j.env) ids.push_back(id);
    }
    std::sort(ids.begin(), ids.end());
    return ids;
}

/* The spec of a job to run j again: its own, with its environment, a new
 * token, and its dependencies on jobs requeued by the same call renamed. */
JobSpec Server::requeue_spec(const Job& j, const std::map<JobId, JobId>& renamed) {
    JobSpec s = j.spec;
    if (j.env) s.env = *j.env;
    s.token.clear();
    // A -f job of ours runs again in the background (its terminal is gone).
    s.flags &= ~(proto::kForeground | proto::kTakesRunEnv);
    s.flags |= proto::kKeepFinished;
    auto name = [&](int32_t id) {
        auto it = renamed.find(id);
        return it == renamed.end() ? id : it->second;
    };
    s.depends = j.depends && j.depend_on >= 0;   // a -d that found no job waited for none
    s.depend_on = s.depends ? name(j.depend_on) : -1;
    for (uint16_t tag : {kSettingDepends, kSettingAfter}) {
        std::vector<int32_t> ids = s.settings.ids(tag);
        for (int32_t& id : ids) id = name(id);
        s.settings.set_ids(tag, ids);
    }
    // Kept: --timeout, --kill-after, --retry (its attempts start again: they are the new job's).
    // Dropped: --unique, and --hold, --delay, --at: it is queued to run now.
    for (uint16_t tag : {kSettingUnique, kSettingHold, kSettingNotBefore}) s.settings.erase(tag);
    s.settings.set_ids(kSettingRequeueOf, {j.id});
    return s;
}

/* Queue j again as a new job (*id); false with *why (the caller's bounds,
 * the journal), without a final period. */
bool Server::requeue_job(Conn& c, const Job& j, const std::map<JobId, JobId>& renamed, JobId* id,
                         std::string* why) {
    JobSpec spec = requeue_spec(j, renamed);
    const Queue::Usage& u = queue_.usage(c.uid);
    if (!bounds_.may_queue(c.uid, u.waiting, u.bytes, Queue::spec_bytes(spec), why)) {
        while (!why->empty() && (why->back() == '\n' || why->back() == '.')) why->pop_back();
        return false;
    }
    JobId from = j.id;
    if (!ledger_->add(std::move(spec), wall_now(), mono_now(), id)) {
        *why = format("the queue's journal cannot be written: %s", journal_->why().c_str());
        return false;
    }
    log_other(c.uid, format("job %d: queued again as job %d", from, *id));
    return true;
}
