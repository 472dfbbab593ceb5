/*
 * handlers.cpp — what the server does with each message: the handler table
 * (each message's size, kind and access rule: README, "Security"), dispatch,
 * and one handler per message type. A new request is a row of kHandlers and
 * a handler here.
 */
#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "listing.h"
#include "settings.h"
#include "server_impl.h"

using proto::MsgType;

const Handler Server::kHandlers[] = {
    {MsgType::KillServer, 0, false, kRequest, kAdmin, "stop the server", true, &Server::on_kill_server},
    {MsgType::List, 0, false, kRequest, kAnyone, nullptr, false, &Server::on_list},
    {MsgType::Submit, sizeof(proto::Submit), true, kChange, kAnyone, nullptr, false, &Server::on_submit},
    {MsgType::State, sizeof(proto::JobRef), false, kRequest, kAnyone, nullptr, false, &Server::on_state},
    {MsgType::Output, sizeof(proto::JobRef), false, kRequest, kAnyone, nullptr, false, &Server::on_output},
    {MsgType::Wait, sizeof(proto::JobRef), false, kRequest, kAnyone, nullptr, true, &Server::on_wait},
    {MsgType::SetSlots, sizeof(proto::Slots), false, kChange, kAdmin, "change the slots", false, &Server::on_set_slots},
    {MsgType::GetSlots, 0, false, kRequest, kAnyone, nullptr, false, &Server::on_get_slots},
    {MsgType::Remove, sizeof(proto::JobRef), false, kChange, kJobOwner, "remove", false, &Server::on_remove},
    {MsgType::Urgent, sizeof(proto::JobRef), false, kChange, kJobOwner, "urge", false, &Server::on_urgent},
    {MsgType::Swap, sizeof(proto::JobPair), false, kChange, kJobOwner, "move", false, &Server::on_swap},
    {MsgType::Info, sizeof(proto::JobRef), false, kRequest, kAnyone, nullptr, false, &Server::on_info},
    {MsgType::Clear, 0, false, kChange, kAnyone, nullptr, false, &Server::on_clear},   // another user's: their own jobs
    {MsgType::Kill, sizeof(proto::JobRef), false, kRequest, kJobOwner, "kill", false, &Server::on_kill},
    {MsgType::Attach, sizeof(proto::AttachBody), false, kHello, kJobOwner, nullptr, true, &Server::on_attach},   // its submitter (a job it runs) or us (our runners)
    {MsgType::Started, sizeof(proto::StartedBody), true, kReport, kAnyone, nullptr, true, &Server::on_started},
    {MsgType::Finished, sizeof(proto::FinishedBody), true, kReport, kAnyone, nullptr, true, &Server::on_finished},
    {MsgType::Spare, 0, false, kHello, kServerUid, nullptr, false, &Server::on_spare},
    {MsgType::Unstarted, sizeof(proto::Slots), false, kReport, kServerUid, nullptr, false, &Server::on_unstarted},
    {MsgType::NotRun, 0, false, kReport, kAnyone, nullptr, false, &Server::on_not_run},
    {MsgType::GpuList, 0, false, kRequest, kAnyone, nullptr, false, &Server::on_gpu_list},
    {MsgType::Drain, sizeof(proto::Slots), false, kChange, kAdmin, "drain or resume the queue", false, &Server::on_drain},
    {MsgType::Hold, sizeof(proto::HoldBody), false, kChange, kJobOwner, "hold or release", false, &Server::on_hold},
    {MsgType::Cancel, sizeof(proto::JobRef), false, kChange, kJobOwner, "cancel", false, &Server::on_cancel},
    {MsgType::WaitList, 0, true, kRequest, kAnyone, nullptr, false, &Server::on_wait_list},
    {MsgType::WaitAll, 0, false, kRequest, kAnyone, nullptr, false, &Server::on_wait_all},
    {MsgType::WaitStart, sizeof(proto::JobRef), false, kRequest, kAnyone, nullptr, false, &Server::on_wait_start},
    {MsgType::Requeue, sizeof(proto::JobPair), false, kChange, kJobOwner, "requeue", false, &Server::on_requeue},
};

/* The row of kHandlers for a message type, or nullptr. */
const Handler* Server::handler_of(MsgType t) {
    for (const Handler& h : kHandlers)
        if (h.type == t) return &h;
    return nullptr;
}

void Server::dispatch(Conn& c, const Frame& f) {
    // One request per connection: extra frames are ignored (a waiter's are out of place: below).
    if (c.close_after_flush || c.stream || (c.role == Role::Client && waits_.find(c))) return;
    const Handler* h = handler_of(f.type);
    // A runner or waiter of an older ts (its messages have not changed) is
    // served in its own version; anything else of another version is told ours.
    if (f.version != proto::kVersion && f.type != MsgType::KillServer &&
        !(f.version == proto::kOldestRunnerVersion && h && h->old_ok)) {
        proto::VersionBody v{};
        v.version = proto::kVersion;
        reply(c, encode(MsgType::Version, v));
        return;
    }
    if (!h || (h->tail ? f.payload.size() < h->body : f.payload.size() != h->body) ||
        (h->kind == kReport) != c.runs_job() ||   // reports on connections that run a job only
        (c.role != Role::Client && !c.runs_job()) ||   // a waiter, an overflow submitter, a spare: listen only
        (h->access == kServerUid && c.uid != uid_)) {
        c.dead = true;   // unknown type, wrong size, out of place, or not from one of ours
        return;
    }
    if (f.type != MsgType::KillServer) c.version = f.version;
    // While the journal cannot be written, every client hears it on stderr
    // (a change it asks for is refused with the reason instead).
    if (h->kind == kRequest && !journal_->ok() && c.version == proto::kVersion) {
        TailWriter t;
        t.add(format("the queue's journal cannot be written: %s; changes to the queue are refused "
                     "until it can be written again",
                     journal_->why().c_str()));
        c.out += encode_empty(MsgType::Warning, t.str());
    }
    if (h->access == kAdmin && !c.trusted) {
        error(c, format("Only the server's owner (uid %u) or root may %s.\n", unsigned(uid_), h->verb));
    } else {
        handling_ = h;
        (this->*h->fn)(c, f);
        handling_ = nullptr;
    }
    c.idle_deadline = 0;   // it asked: what it waits for now has its own bounds
}

/* Confirm with Done, in our version's header: the client accepts it from any version. */
void Server::on_kill_server(Conn& c, const Frame&) {
    // Hold the start lock until we exit: a client that finds no server waits for
    // it, and then starts a fresh one that finds no journal.
    // (Not for long: the loop must not wait on a lock someone keeps.)
    std::string why;
    Fd lock = lock_file(path_ + ".lock", &why, 200);
    journal_->remove_file();   // -K means a fresh, empty queue
    unlink_socket();           // no new client reaches us from now on
    guard_.reset();            // and the next may start a fresh server at once
    unlinked_ = true;
    // Runners, -f clients and waiters must not bring a server back for this queue.
    std::string bye = encode_empty(MsgType::Bye);
    for (auto& o : conns_) {
        const Deferred* held = waits_.find(*o);   // a submit held for the GPU probe
        if (o.get() != &c && ((o->role != Role::Client && o->role != Role::Spare) || (held && held->frame))) {
            o->out += bye;
            flush(*o);
        }
    }
    std::string done = encode_empty(MsgType::Done);
    int fl = fcntl(c.fd.get(), F_GETFL);
    if (fl >= 0) fcntl(c.fd.get(), F_SETFL, fl & ~O_NONBLOCK);
    (void)send_frame(c.fd.get(), done);
    if (fl >= 0) fcntl(c.fd.get(), F_SETFL, fl);
    c.dead = true;
    shutdown(0);
}

void Server::on_list(Conn& c, const Frame&) {
    std::vector<JobId> ids(queue_.active().begin(), queue_.active().end());
    ids.insert(ids.end(), queue_.finished_list().begin(), queue_.finished_list().end());
    reply_text(c, list_header(queue_.busy_slots(), queue_.max_slots(), queue_.drained()), std::move(ids));
}

void Server::on_submit(Conn& c, const Frame& f) {
    JobSpec spec;
    if (!decode_submit(f, &spec)) {
        c.dead = true;
        return;
    }
    // How the job runs is ours to say, from the peer's credentials: a job of
    // another uid runs only in its submitter's own process (run by its client), and
    // its environment, which it never needs here, is not kept.
    spec.uid = c.uid;
    spec.flags &= ~proto::kRunByClient;
    spec.settings.erase(kSettingRequeueOf);   // ours to set (--requeue), never a client's to claim
    if (c.uid != uid_) {
        spec.flags |= proto::kRunByClient;
        spec.env.clear();
        // -N 0 takes a slot all the same; a GPU job is bounded by its GPUs.
        if (spec.settings.gpus() == 0) spec.num_slots = std::max(1, spec.num_slots);
    }
    // The same submit again (its client lost the answer, say to a crash):
    // the job it queued, never a second one.
    if (Job* j = queue_.by_token(spec.token); j && j->spec.uid == c.uid) {
        resubmitted(c, *j);
        return;
    }
    // A setting this server must understand but does not, or a bad value: refused, never ignored.
    if (std::string why; !check_settings(spec.settings, &why)) {
        error(c, why + "; the job was not queued.\n");
        return;
    }
    timeout_note(c, &spec);
    // TS_TIMEOUT: the queue's default, kept with the job (its runner learns it from its order, or Run).
    if (cfg_.timeout > 0 && spec.settings.timeout() == 0) spec.settings.set_timeout(cfg_.timeout);
    if (!gpu_check_submit(c, f, spec)) return;   // GPUs it could never get: refused (or asked later)
    if (spec.settings.unique() && !unique_submit(c, &spec)) return;
    if (!may_queue(c, spec) || !writable(c, "the job was not queued")) return;
    bool no_block = spec.flags & proto::kNoBlock;
    JobId id = -1;
    if (!ledger_->add(std::move(spec), wall_now(), c.submit_at != 0 ? c.submit_at : mono_now(), &id)) {
        error(c, format("the queue's journal cannot be written: %s; the job was not queued.\n",
                        journal_->why().c_str()));
        return;
    }
    if (!cfg_.crash_after_submit.empty() && unlink(cfg_.crash_after_submit.c_str()) == 0)
        _exit(9);   // a test's fault: journaled, not answered
    if (queue_.find(id)->state == JobState::Overflow) {
        if (no_block) {   // -B: refused; recorded as a job whose runner vanished, as in task-spooler
            end_job(id, Queue::lost_result(), wall_now());
            reply(c, encode_empty(MsgType::QueueFull));
        } else {
            set_role(c, Role::Overflow, id);   // answered when there is room (admit_overflow)
        }
        return;
    }
    submitted(c, id);
}

/* --unique: false (answered with Duplicate) when a job of the same user with
 * the same command line is queued, running or waiting for room; else the
 * setting is dropped (it was for this moment only) and the submit goes on.
 * Decided here, in the one loop, with the submit: two clients never both queue. */
bool Server::unique_submit(Conn& c, JobSpec* spec) {
    spec->settings.erase(kSettingUnique);
    const Job* same = queue_.same_command(spec->uid, spec->argv);
    if (!same) return true;
    proto::JobRef r{};
    r.id = same->id;
    reply(c, encode(MsgType::Duplicate, r));
    return false;
}

/* A submit sent again: answer as the first time would have. */
void Server::resubmitted(Conn& c, Job& j) {
    log_other(c.uid, format("job %d: its submit came again; answered with the same id", j.id));
    if (j.spec.run_by_client()) {
        if (runner_conn(j.id) || (j.state != JobState::Queued && j.state != JobState::Overflow)) {
            error(c, format("The job %i was queued already, and its client is gone.\n", j.id));
            return;
        }
        ledger_->reattached(j.id, 0);
    }
    if (j.state == JobState::Overflow) {
        if (j.spec.flags & proto::kNoBlock) {   // -B: refused, as the first time would have
            end_job(j.id, Queue::lost_result(), wall_now());
            reply(c, encode_empty(MsgType::QueueFull));
            return;
        }
        set_role(c, Role::Overflow, j.id);
        return;
    }
    bool never_ran = (j.state == JobState::Finished || j.state == JobState::Skipped) && j.start_time == 0;
    if (never_ran && (j.spec.flags & proto::kNoBlock) && j.result.lost.empty()) {   // -B, refused
        reply(c, encode_empty(MsgType::QueueFull));
        return;
    }
    if (never_ran && !j.result.lost.empty()) {   // lost before it ever ran: the submit failed after all
        error(c, format("The job %i was lost before it ran: %s.\n", j.id, j.result.lost.c_str()));
        return;
    }
    submitted(c, j.id);
}

/* Tell the submitter its job's id; a -f client stays for its Run. */
void Server::submitted(Conn& c, JobId id) {
    Job* j = queue_.find(id);
    bool foreground = j && j->spec.run_by_client();
    proto::JobRef r{};
    r.id = id;
    if (foreground) {
        set_role(c, Role::ClientRunner, id);   // the client waits for Run on this connection
        reply(c, encode(MsgType::SubmitOk, r), false);
    } else {
        reply(c, encode(MsgType::SubmitOk, r));
    }
}

/* The client's TS_TIMEOUT, when it sets one: a warning where the queue's
 * differs (the queue keeps its settings, as a server that starts says), never kept. */
void Server::timeout_note(Conn& c, JobSpec* spec) {
    std::optional<uint64_t> mine = spec->settings.u64(kSettingClientTimeout);
    spec->settings.erase(kSettingClientTimeout);
    if (!mine || *mine == uint64_t(cfg_.timeout * 1000 + 0.5)) return;
    std::string queue = cfg_.timeout > 0 ? "TS_TIMEOUT=" + format_duration(cfg_.timeout) : "TS_TIMEOUT unset";
    TailWriter t;
    t.add(format("the queue keeps its settings: %s (this environment has %s), and this job has %s. To change "
                 "them, run ts --reconfigure as the queue's owner with the new values in its environment (it "
                 "restarts the server, keeping the jobs); --timeout sets one job's",
                 queue.c_str(), format_duration(double(*mine) / 1000).c_str(),
                 cfg_.timeout > 0 ? ("a timeout of " + format_duration(cfg_.timeout)).c_str() : "no timeout"));
    c.out += encode_empty(MsgType::Warning, t.str());
}

/* task-spooler's refusal of an id action: "The last job cannot be VERB." or
 * "The job N cannot be VERB." */
void Server::cannot(Conn& c, int id, const char* verb) {
    error(c, id == -1 ? format("The last job cannot be %s.\n", verb)
                      : format("The job %i cannot be %s.\n", id, verb));
}

/* An id from the command line: -1 means "the last job" (either rule). */
Job* Server::lookup(const Conn& c, int id, bool last_added) {
    if (id == -1 && c.uid == 0) return last_added ? queue_.last_added() : queue_.last_run();
    if (id == -1) return last_added ? queue_.last_added(c.uid) : queue_.last_run(c.uid);
    return queue_.find(id);
}

void Server::on_state(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = lookup(c, r.id, true);
    if (!j) {
        cannot(c, r.id, "stated");
        return;
    }
    proto::StateBody s{};
    s.state = wire_state(*j, wall_now());   // held and delayed jobs too
    reply(c, encode(MsgType::StateReply, s));
}

/* The job of -o -p -t -c -k -i (the "last run" rule), or an error reply. */
Job* Server::lookup_run(Conn& c, int id) {
    Job* j = lookup(c, id, false);
    if (!j || (id != -1 && j->state == JobState::Queued)) {
        error(c, id == -1 ? "No jobs.\n" : format("Job %i not finished or not running.\n", id));
        return nullptr;
    }
    if (j->state == JobState::Skipped) {
        error(c, id == -1 ? "The last job was skipped due to a dependency.\n"
                          : format("Job %i was skipped due to a dependency.\n", id));
        return nullptr;
    }
    return j;
}

void Server::on_output(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = lookup_run(c, r.id);
    if (!j) return;
    proto::OutputBody o{};
    o.id = j->id;
    o.pid = j->pid;
    o.stored = j->spec.stores_output() ? 1 : 0;
    o.state = static_cast<uint8_t>(j->state);
    o.pid_unknown = j->pid <= 0 && j->start_time > 0 ? 1 : 0;
    reply(c, encode(MsgType::OutputReply, o, j->output));
}

void Server::on_kill(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    if (r.pad > 64) {   // --signal: the client checked it; a number no signal has is refused here too
        error(c, format("There is no signal %u.\n", unsigned(r.pad)));
        return;
    }
    int32_t signal = r.pad ? int32_t(r.pad) : SIGTERM;   // 0: task-spooler's -k
    Job* j = lookup_run(c, r.id);
    if (!j) return;
    if (j->pid <= 0) {   // not started (yet): the client reports the strange pid
        proto::OutputBody o{};
        o.id = j->id;
        o.pid = j->pid;
        reply(c, encode(MsgType::OutputReply, o));
        return;
    }
    if (!may_manage(c, *j)) return;
    // Only a running job: a finished job's process group may belong to someone else now.
    // Its runner sends the signal, to its own child: the server never signals a
    // pid that a message named (a runner of another user could name any).
    if (j->state == JobState::Running) {
        Conn* r = runner_conn(j->id);
        if (!r) {
            error(c, format("The runner of job %i is not connected (the server restarted): try again "
                            "in a moment.\n", j->id));
            return;
        }
        proto::Slots sig{};
        sig.n = signal;
        if (!tell_runner(c, *r, j->id, encode(MsgType::Signal, sig))) return;
    }
    reply(c, encode_empty(MsgType::Done));
}

/* A message for a job's runner (a signal, a cancel), unless that runner has
 * not read the last ones: what it does not read is never piled up in the
 * server's memory (another user's runner may never read); c is told why. */
bool Server::tell_runner(Conn& c, Conn& runner, JobId id, const std::string& frame) {
    if (runner.out.size() > kRunnerBacklog) {
        error(c, format("The runner of job %i does not read what the server sends it: nothing was sent; try "
                        "again later.\n", id));
        return false;
    }
    reply(runner, frame, false);
    return true;
}

/* --cancel: a queued job is removed (the head too: it has not started); a
 * running one is ended by its runner, SIGTERM then SIGKILL after its grace,
 * and ends as cancelled (never retried). */
void Server::on_cancel(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = queue_.find(r.id);
    if (!j) {   // the one "no such job" message of ts's own requests (--hold, --release, --requeue)
        error(c, format("There is no job %i.\n", r.id));
        return;
    }
    if (j->state == JobState::Overflow) {
        error(c, format("The job %i waits for room in the queue (TS_MAXCONN), held by the ts that submitted "
                        "it: stopping that ts (Ctrl-C) takes the job away.\n", r.id));
        return;
    }
    if (j->state != JobState::Queued && j->state != JobState::Running) {
        error(c, format("The job %i is %s: there is nothing to cancel.\n", r.id,
                        state_name(wire_state(*j, wall_now()))));
        return;
    }
    if (!may_manage(c, *j)) return;
    JobId id = j->id;
    if (j->state == JobState::Queued) {
        if (!writable(c)) return;
        if (!ledger_->remove(id, true)) {
            cannot(c, id, "cancelled");
            return;
        }
        if (Conn* o = runner_conn(id)) {   // a job run by its client that will never run
            set_role(*o, Role::Client);
            reply(*o, encode_empty(MsgType::Bye));
        }
        reply_text(c, format("Job %i was queued: removed.\n", id));
        return;
    }
    Conn* rc = runner_conn(id);
    if (!rc) {
        error(c, format("The runner of job %i is not connected (the server restarted): try again in a moment.\n", id));
        return;
    }
    if (rc->out.size() > kRunnerBacklog && c.trusted && rc->role == Role::ClientRunner) {
        // The server's owner or root takes the slot back from a runner that does not read (another
        // user's ts, which alone can signal the job): the job ends here, lost, and that runner goes.
        set_role(*rc, Role::Client);
        rc->dead = true;
        log_other(j->spec.uid, format("job %d: its runner does not read: ended by --cancel of uid %u", id,
                                      unsigned(c.uid)));
        end_job(id, Queue::lost_result("its runner did not read what the server sent it; ended by --cancel"),
                wall_now());
        reply_text(c, format("Job %i's runner does not read what the server sends it: the job is ended here "
                             "(lost), and that runner is let go; its processes are its runner's to end.\n", id));
        return;
    }
    if (!tell_runner(c, *rc, id, encode_empty(MsgType::CancelJob))) return;
    reply_text(c, format("Job %i is running: it gets SIGTERM now, and SIGKILL in %s if it still runs.\n", id,
                         format_duration(j->spec.settings.kill_after()).c_str()));
}

void Server::on_info(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = lookup(c, r.id, false);   // any state, when an id is given
    if (!j) {
        error(c, r.id == -1 ? "No jobs.\n" : format("Job %i not finished or not running.\n", r.id));
        return;
    }
    WaitFacts wf;
    wf.drained = queue_.drained();
    wf.deps = queue_.waiting_for(*j);
    wf.busy = queue_.busy_slots();
    wf.max = queue_.max_slots();
    wf.now = wall_now();
    std::string waits = waiting_text(*j, wf);
    reply_text(c, info_text(*j, wall_now(), uid_, c.uid, waits + gpus_.info(*j)));
}

void Server::on_remove(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = lookup(c, r.id, true);
    JobId id = j ? j->id : r.id;
    if (j && !may_manage(c, *j)) return;
    if (j && !writable(c)) return;
    // Its waiters return at once (task-spooler leaves them hanging).
    if (!j || !ledger_->remove(id)) {
        cannot(c, r.id, "removed");
        return;
    }
    if (Conn* o = runner_conn(id)) {   // a job run by its client that will never run
        set_role(*o, Role::Client);
        reply(*o, encode_empty(MsgType::Bye));
    }
    reply(c, encode_empty(MsgType::Done));
}

void Server::on_urgent(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    JobId id = r.id;
    if (id == -1)   // the caller's newest job (for one user: the tail of the queue)
        if (Job* l = lookup(c, -1, true)) id = l->id;
    Job* j = queue_.find(id);
    if (j && !may_manage(c, *j)) return;
    if (j && !writable(c)) return;
    // Another user's -u moves their job ahead of their own jobs only.
    bool own_only = !c.trusted;
    if (!j || !(own_only ? ledger_->urgent_among_own(id) : ledger_->urgent(id))) {
        cannot(c, r.id, "urged");
        return;
    }
    reply(c, encode_empty(MsgType::Done));
}

void Server::on_swap(Conn& c, const Frame& f) {
    proto::JobPair p;
    (void)decode_body(f, &p);
    for (int id : {p.a, p.b})
        if (Job* j = queue_.find(id); j && !may_manage(c, *j)) return;
    if (!writable(c)) return;
    if (!ledger_->swap(p.a, p.b)) {
        error(c, format("The jobs %i and %i cannot be swapped.\n", p.a, p.b));
        return;
    }
    reply(c, encode_empty(MsgType::Done));
}

/* Another user's jobs are bounded in number and size (the owner's are not). */
bool Server::may_queue(Conn& c, const JobSpec& spec) {
    const Queue::Usage& u = queue_.usage(c.uid);
    std::string why;
    if (bounds_.may_queue(c.uid, u.waiting, u.bytes, Queue::spec_bytes(spec), &why)) return true;
    error(c, why);
    return false;
}

/* kJobOwner: a job's owner, the server's owner and root may change a job. */
bool Server::may_manage(Conn& c, const Job& j) {
    if (c.uid == j.spec.uid || c.trusted) return true;
    error(c, format("Job %i belongs to uid %u: only its owner, the server's owner (uid %u) or root "
                    "may %s it.\n",
                    j.id, unsigned(j.spec.uid), unsigned(uid_),
                    handling_ && handling_->verb ? handling_->verb : "change"));
    return false;
}

/* A runner or -f client is back after a server restart. */
void Server::on_attach(Conn& c, const Frame& f) {
    proto::AttachBody a;
    (void)decode_body(f, &a);
    Job* j = queue_.find(a.id);
    if (j && ended_run(c, a, *j)) return;
    // A runner of ours whose job the journal shows as still queued (the
    // record of its start was lost with a damaged record): it runs, so it is
    // running, rather than started a second time.
    if (j && j->state == JobState::Queued && !j->spec.run_by_client() && a.started && c.uid == uid_ &&
        ledger_->resume(a.id))
        log("job %d: its runner is back, but the journal had it queued: it runs", a.id);
    // A client's runner waiting for its Run, or one whose run ended as an
    // attempt (--retry) before it heard Again: its Finished comes again.
    bool ok = j && (j->state == JobState::Running ||
                    (j->state == JobState::Queued && j->spec.run_by_client() &&
                     (!a.started || run_of(*j, a.run, true) == RunOf::Attempt)));
    // A job run by its client belongs to its submitter; a spawned runner runs as the server's uid.
    if (ok) ok = c.uid == (j->spec.run_by_client() ? j->spec.uid : uid_);
    if (!ok || runner_conn(a.id)) {   // not ours (any more): stop reporting
        reply(c, encode_empty(MsgType::Bye));
        return;
    }
    bool ours = !j->spec.run_by_client();
    set_role(c, ours ? Role::Runner : Role::ClientRunner, a.id);
    if (!ours) c.run = a.run;
    // The pid the kernel gives (SO_PEERCRED), not the one the message claims.
    // (A runner of an attempt is back once it has heard Again: its next run
    // does not start before that, see run_again.)
    bool attempt = run_of(*j, a.run, a.started) == RunOf::Attempt;
    if (!attempt) ledger_->reattached(a.id, ours ? c.pid : 0);
    log_other(c.uid, format("job %d: its %s is back%s", a.id, ours ? "runner" : "client",
                            attempt ? format(" from its run %u, an attempt already: told to run it again",
                                             unsigned(a.run) + 1).c_str() : ""));
    if (j->state == JobState::Running && !a.started) send_run(c, *j, false, false);   // its Run was lost with the old server
}

/* --retry: a runner of a run of the job that is over, back after a restart
 * that came before its end was answered, is sent away (Bye; true). The
 * server's own: its end is an attempt already, and another runner runs the
 * job's next run. A client's runner (-f, another user's job) is the job's
 * only one: one whose run ended as an attempt is kept, and its Finished,
 * sent again, is answered with Again (on_finished), its end counted once. */
bool Server::ended_run(Conn& c, const proto::AttachBody& a, const Job& j) {
    if (c.uid != (j.spec.run_by_client() ? j.spec.uid : uid_) || run_of(j, a.run, a.started) != RunOf::Over)
        return false;
    log_other(c.uid, format("job %d: a runner of its run %u is back, but that run ended (run %zu is the "
                            "job's now): told to stop", a.id, unsigned(a.run) + 1, j.attempts().size() + 1));
    reply(c, encode_empty(MsgType::Bye));
    return true;
}

/* Whether pid is the job of the runner whose process is runner (the pid
 * the kernel gave for its connection, SO_PEERCRED): the runner itself, or
 * its child now (a zombie included: its pid is not free yet). Anything else
 * is refused: a pid no process has yet (it could be someone else's once
 * reused), a process gone already, one of another parent, and any pid when
 * the runner's own is unknown (0: it is in a pid namespace we cannot see,
 * where its pids mean other processes than here). *why says which. */
static bool child_of(pid_t pid, pid_t runner, std::string* why) {
    if (runner <= 0) {
        *why = "the runner's own pid is not known here (another pid namespace?)";
        return false;
    }
    if (pid == runner) return true;
    std::string stat;
    if (!read_file(format("/proc/%d/stat", int(pid)), &stat)) {
        *why = "no such process";
        return false;
    }
    size_t end = stat.rfind(')');   // the name may hold anything, ')' included
    int ppid = 0;
    char state = 0;
    if (end == std::string::npos || sscanf(stat.c_str() + end + 1, " %c %d", &state, &ppid) != 2) {
        *why = "its /proc/PID/stat cannot be read";
        return false;
    }
    if (ppid == runner) return true;
    *why = format("its parent is pid %d", ppid);
    return false;
}

void Server::on_clear(Conn& c, const Frame&) {
    if (!writable(c)) return;
    if (c.trusted) {
        ledger_->clear();
    } else {   // another user's -C clears that user's finished jobs only
        std::vector<JobId> mine;
        for (JobId id : queue_.finished_list())
            if (queue_.find(id)->spec.uid == c.uid) mine.push_back(id);
        for (JobId id : mine)
            (void)ledger_->remove(id);
    }
    reply(c, encode_empty(MsgType::Done));
}

void Server::on_wait(Conn& c, const Frame& f) {
    proto::JobRef r;
    (void)decode_body(f, &r);
    Job* j = lookup(c, r.id, true);
    if (!j) {
        cannot(c, r.id, "waited");
        return;
    }
    if (j->state == JobState::Finished || j->state == JobState::Skipped) {
        proto::WaitBody w{};
        w.errorlevel = j->result.errorlevel;
        w.how = uint8_t(j->result.how);
        reply(c, encode(MsgType::WaitDone, w));
        return;
    }
    set_role(c, Role::Waiter);
    Deferred d;
    d.ends.insert(j->id);
    waits_.add(c, std::move(d));   // answered by deferred_done
    proto::JobRef w{};
    w.id = j->id;
    reply(c, encode(MsgType::Waiting, w), false);   // so the client can ask again after a restart
}

void Server::on_set_slots(Conn& c, const Frame& f) {
    proto::Slots s;
    (void)decode_body(f, &s);
    if (!writable(c)) return;
    if (s.n >= 1) {
        ledger_->slots(s.n);
    }
    reply(c, encode_empty(MsgType::Done));
}

/* --drain (n 1) and --resume (n 0): idempotent, and the answer says what was done. */
void Server::on_drain(Conn& c, const Frame& f) {
    proto::Slots s;
    (void)decode_body(f, &s);
    if (s.n != 0 && s.n != 1) {
        error(c, "--drain or --resume expected.\n");
        return;
    }
    if (!writable(c)) return;
    bool on = s.n == 1;
    bool changed = ledger_->drain(on);
    size_t running = 0, queued = 0;
    for (JobId id : queue_.active())
        ++(queue_.find(id)->state == JobState::Running ? running : queued);
    std::string what = format("%i running, %zu queued", int(running), queued);
    if (on)
        reply_text(c, format(changed ? "The queue is drained: no job starts until ts --resume (%s).\n"
                                     : "The queue was drained already: no job starts until ts --resume (%s).\n",
                             what.c_str()));
    else
        reply_text(c, format(changed ? "The queue is resumed: queued jobs start again (%s).\n"
                                     : "The queue was not drained: nothing to resume (%s).\n",
                             what.c_str()));
}

/* --hold=ID, --release=ID, --release=all: the answer says what was done. */
void Server::on_hold(Conn& c, const Frame& f) {
    proto::HoldBody b;
    (void)decode_body(f, &b);
    if (b.hold > 1 || b.all > 1 || (b.all && b.hold)) {
        error(c, "--hold=ID, --release=ID or --release=all expected.\n");
        return;
    }
    if (b.all) return release_all(c);
    Job* j = lookup(c, b.id, true);
    if (!j) {
        error(c, b.id == -1 ? "No jobs.\n" : format("There is no job %i.\n", b.id));
        return;
    }
    if (!may_manage(c, *j)) return;
    JobId id = j->id;
    bool held = j->spec.settings.held(), delayed = j->spec.settings.not_before() != 0;
    if (j->state != JobState::Queued) {
        error(c, format("Job %i is %s: only a queued job can be %s.\n", id, state_name(wire_state(*j, wall_now())),
                        b.hold ? "held" : "released"));
        return;
    }
    if (b.hold && held) return reply_text(c, format("Job %i was held already: ts --release=%i starts it.\n", id, id));
    if (!b.hold && !held && !delayed) {
        error(c, format("Job %i is not held or delayed: nothing to release.\n", id));
        return;
    }
    if (!writable(c)) return;
    (void)ledger_->hold(id, b.hold == 1);
    if (b.hold) reply_text(c, format("Job %i is held: it does not start until ts --release=%i.\n", id, id));
    else if (queue_.doomed(id))
        reply_text(c, format("Job %i is released%s, but a job it depends on did not end well or was removed: "
                             "it is skipped, not run.\n", id, delayed ? " (its start time is dropped)" : ""));
    else reply_text(c, format("Job %i is released%s: it starts when its turn comes.\n", id,
                              delayed ? " (its start time is dropped)" : ""));
}

/* --release=all: every held job of the caller's own (only delayed ones keep their time). */
void Server::release_all(Conn& c) {
    std::vector<JobId> ids;
    for (JobId id : queue_.active()) {
        const Job* j = queue_.find(id);
        if (j->state == JobState::Queued && j->spec.uid == c.uid && j->spec.settings.held()) ids.push_back(id);
    }
    if (ids.empty()) return reply_text(c, "No held job of yours to release.\n");
    if (!writable(c)) return;
    std::string list;
    for (JobId id : ids) {
        (void)ledger_->hold(id, false);
        list += (list.empty() ? "" : ", ") + std::to_string(id);
    }
    reply_text(c, format("Released %s: %s.\n", counted(ids.size(), "held job", "held jobs").c_str(), list.c_str()));
}

void Server::on_get_slots(Conn& c, const Frame&) {
    proto::Slots s{};
    s.n = queue_.max_slots();
    reply(c, encode(MsgType::Slots, s));
}

/* The pid another user's runner reports for its job, as kept: 0 unless
 * it is the runner's own child (or itself) now. The runner is the process
 * that sent the report (SO_PASSCRED), else the one that connected
 * (SO_PEERCRED): a ts that submitted a job runs it in the background, in a
 * child of its own that goes on with the connection. A runner that re-attaches
 * after a restart reports again the pid it reported first: that one was
 * checked then (and the journal kept it only if it passed), so it stays,
 * even if the job ended meanwhile and only the report of its end is left. */
pid_t Server::checked_pid(const Conn& c, const Job& j, pid_t pid) {
    if (pid <= 0) return 0;
    if (pid == j.pid) return pid;
    std::string why;
    pid_t runner = c.sender > 0 ? c.sender : c.pid;
    if (child_of(pid, runner, &why)) return pid;
    log_other(c.uid, format("job %d: its runner (pid %d) reported pid %d, which is not its own child (%s): "
                            "not kept, and -p shows none",
                            j.id, int(runner), int(pid), why.c_str()));
    return 0;
}

void Server::on_started(Conn& c, const Frame& f) {
    proto::StartedBody s;
    std::string_view path;
    (void)decode_body(f, &s, &path);
    Job* j = queue_.find(c.job);
    if (!j || j->state != JobState::Running) return;
    if (c.role == Role::ClientRunner && c.run != j->attempts().size()) return;   // of a run that is over
    std::string out(path);
    pid_t pid = s.pid;
    if (c.uid != uid_) {
        // Another user's runner says what it likes: keep only a plain path, and
        // a pid of its own child (shown by -p; never signalled by us).
        // (no spaces either: the list's columns are separated by them)
        if (out.size() > 4096 || (!out.empty() && out[0] != '/') || printable(out) != out ||
            out.find(' ') != std::string::npos)
            out.clear();
        pid = checked_pid(c, *j, pid);
    }
    // A start time is what tells a job that started from one that never did.
    double start = s.start_us > 0 ? us_to_s(s.start_us) : wall_now();
    ledger_->started(j->id, pid, out, start);
    if (c.role == Role::Runner) supply_.runner_started(j->id, pid);
}

void Server::on_finished(Conn& c, const Frame& f) {
    proto::FinishedBody b;
    std::string_view note;
    (void)decode_body(f, &b, &note);
    JobId id = c.job;
    bool client = c.role == Role::ClientRunner;
    set_role(c, Role::Client);
    Job* j = queue_.find(id);
    if (j && client && run_of(*j, c.run, true) == RunOf::Attempt) {   // its end was sent again
        run_again(c, *j);
        return;
    }
    if (j && client && j->state == JobState::Queued && c.run == j->attempts().size()) {
        // Its client, told Again, says the next run ended before it began: it is not a runner we can
        // trust with the job any more, and no other will run it (a job of another user runs only in
        // its submitter's ts): the job ends, lost, rather than start later with no runner at all.
        log_other(c.uid, format("job %d: its client reported an end of a run that never began", id));
        end_job(id, Queue::lost_result("its client (the ts that submitted it) reported an end of a run that "
                                       "never began"), wall_now());
        reply(c, encode_empty(MsgType::Bye));
        return;
    }
    if (!j || j->state != JobState::Running || (client && c.run != j->attempts().size())) {
        reply(c, encode_empty(MsgType::Bye));
        return;
    }
    JobResult r = result_of(b);
    r.note.assign(note.substr(0, c.uid == uid_ ? 1000 : 200));   // another user's: shorter
    if (!r.note.empty()) log_other(c.uid, format("job %d: %s", id, printable(r.note).c_str()));
    end_job(id, r, us_to_s(b.end_us));
    // Acknowledged once journaled: the runner exits only now, so a result is never lost.
    // (A journal that cannot be written holds it back until it can.)
    c.ack_pending = true;
    ++acks_pending_;
    j = queue_.find(id);
    if (client && j && j->state == JobState::Queued) {   // --retry: Again, and its Run when it starts
        set_role(c, Role::ClientRunner, id);
        c.run = uint16_t(j->attempts().size());
        c.ack_again = true;
    }
    schedule();   // the freed slot's next job first: this runner only has to exit
    if (!cfg_.crash_after_end.empty() && unlink(cfg_.crash_after_end.c_str()) == 0)
        _exit(9);   // a test's fault: the end journaled (and the next run started), its runner not answered
    if (!journal_->pending()) answer_end(c);
}

/* A client's runner whose run ended as an attempt: Again, then Run at once
 * if the job's next run started already (it waits for it, else). */
void Server::run_again(Conn& c, const Job& j) {
    set_role(c, Role::ClientRunner, j.id);
    c.run = uint16_t(j.attempts().size());
    reply(c, encode_empty(MsgType::Again), false);
    ledger_->reattached(j.id, 0);   // its next run may start now
    if (j.state == JobState::Running) send_run(c, j, false, false);
}

/* A runner's end, once journaled: Done, or Again (its run was an attempt,
 * and it waits for Run). */
void Server::answer_end(Conn& c) {
    if (!c.ack_pending) return;
    c.ack_pending = false;
    bool again = c.ack_again;
    c.ack_again = false;
    reply(c, encode_empty(again ? MsgType::Again : MsgType::Done), !again);
}

/* A job ended (or never will run): recorded, and its waiters woken (through the ledger). */
void Server::end_job(JobId id, const JobResult& r, double end) {
    (void)ledger_->end(id, r, end);
}

/* A connection's deferred request is satisfied (waits.h): its answer now. */
void Server::deferred_done(Conn& c, Deferred d) {
    if (c.dead) return;
    switch (d.then) {
    case Deferred::Then::WaitDone: {
        proto::WaitBody w{};
        EndHow how = d.how;
        if (d.order.empty()) w.errorlevel = d.errorlevel;
        else w.errorlevel = d.list_status(&how);
        w.how = uint8_t(how);
        set_role(c, Role::Client);
        reply(c, encode(MsgType::WaitDone, w));
        return;
    }
    case Deferred::Then::GpuList: answer_gpu_list(c, d.expired); return;
    case Deferred::Then::Started: answer_started(c, d); return;
    case Deferred::Then::Dispatch: return;   // never here: the loop dispatches it (dispatch_ready)
    }
}

/* Held requests whose wait is over (a submit held for the first GPU probe)
 * run again now, from the loop, not from inside another handler. */
void Server::dispatch_ready() {
    for (auto& [c, d] : waits_.take_ready()) {
        bounds_.release_input(&c->charges, d.frame->payload.size());   // charged while it was held
        if (!c->dead) dispatch(*c, *d.frame);
    }
}

/* A GPU job's submit waits for the first probe of the cards (its input stays charged meanwhile). */
void Server::hold_for_probe(Conn& c, const Frame& f) {
    Deferred d;
    d.then = Deferred::Then::Dispatch;
    d.probe = true;
    d.frame = std::make_unique<Frame>(f);
    waits_.add(c, std::move(d));
}

/* --gpu-list is answered when the probe ends, or at the deadline with what is known. */
void Server::list_gpus_after_probe(Conn& c, double deadline) {
    Deferred d;
    d.then = Deferred::Then::GpuList;
    d.probe = true;
    d.deadline = deadline;
    waits_.add(c, std::move(d));
}

/* --gpu-list's answer; one that waited long enough says that a probe still runs. */
void Server::answer_gpu_list(Conn& c, bool expired) {
    double now = mono_now();
    std::string note = !expired || !gpus_.probing() ? ""
                       : format("A probe has been running for %.1f s%s.\n", now - gpus_.probe_began(),
                                !gpus_.seen() ? "" : "; the above is what the last one saw");
    reply_text(c, gpus_.list_text(now) + note);
}

/* A runner of ours could not fork its job (no process or memory now): the
 * job goes back to the queue, and the scheduler waits a while. */
void Server::on_unstarted(Conn& c, const Frame& f) {
    proto::Slots e;
    (void)decode_body(f, &e);
    JobId id = c.job;
    Job* j = queue_.find(id);
    // Only a runner of ours, before its job started: anything else is a
    // protocol error (the connection closes, and its job is lost as usual).
    if (c.role != Role::Runner || !j || j->state != JobState::Running || j->pid != 0) {
        c.dead = true;
        return;
    }
    set_role(c, Role::Client);
    supply_.unstarted(id, e.n > 0 ? e.n : EAGAIN);
    reply(c, encode_empty(MsgType::Done));
}

/* The job's child ended at its gate (context.h: JobPipes): its runner
 * reported the start but ended (killed, say) before it let the job begin,
 * so the job never ran. It is taken as a runner that ended before the start. */
void Server::on_not_run(Conn& c, const Frame&) {
    JobId id = c.job;
    Job* j = queue_.find(id);
    set_role(c, Role::Client);
    c.close_after_flush = true;   // the child exits now; nothing else comes from it
    if (!j || j->state != JobState::Running) return;
    log_other(c.uid, format("job %d: its runner ended after it reported the start, before the job began", id));
    never_started(*j, c);
}

/* A spare runner connected (only the spawner's children, which run as us:
 * kServerUid; an idle spare that sends anything is closed by dispatch): give
 * it the oldest job waiting for one. */
void Server::on_spare(Conn& c, const Frame&) {
    switch (supply_.spare_came(c)) {
    case RunnerSupply::SpareIs::Assigned: break;   // it runs a waiting job now
    case RunnerSupply::SpareIs::Idle: set_role(c, Role::Spare); break;
    case RunnerSupply::SpareIs::Surplus: c.dead = true; break;   // it ends without a job
    }
}


/* A submit of a GPU job: refused if this machine could never give it its
 * GPUs; held (dispatched again: hold_for_probe) when the cards have not been probed yet.
 * True when on_submit may go on. */
bool Server::gpu_check_submit(Conn& c, const Frame& f, const JobSpec& spec) {
    GpuNeed need{int(spec.settings.gpus()), spec.settings.gpu_mem()};
    if (need.count == 0) return true;
    double now = mono_now();
    if (c.submit_at == 0) c.submit_at = now;   // a probe from now on is newer than the job
    if (!gpus_.probed()) want_probe(now);
    GpuBroker::Verdict v = gpus_.may_queue(need);
    if (v.kind == GpuBroker::Verdict::AfterProbe) {   // the first probe runs: the submit is dispatched again when it ends
        if (!charge_input(c, f.payload.size())) return false;   // it holds that meanwhile
        hold_for_probe(c, f);
        return false;
    }
    if (v.kind == GpuBroker::Verdict::No) {
        error(c, v.why + "; the job was not queued (see ts --gpu-list).\n");
        return false;
    }
    return true;   // it fits, or the broker cannot tell: it waits, with the reason in -i
}

void Server::on_gpu_list(Conn& c, const Frame&) {
    double now = mono_now();
    if (!gpus_.fresh(now)) want_probe(now);
    if (gpus_.fresh(now) || !gpus_.probing()) {
        reply_text(c, gpus_.list_text(now));
        return;
    }
    // Answered when the probe ends, or after a moment with what is known (a
    // probe stuck in the driver takes until its timeout).
    list_gpus_after_probe(c, now + kGpuListWait);
}
