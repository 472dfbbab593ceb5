/*
 * queue_files.cpp — the socket, journal and log put back while the server
 * runs: see queue_files.h.
 */
#include "queue_files.h"

#include <cerrno>
#include <cstring>
#include <sys/stat.h>

#include "jobs.h"

void QueueFiles::socket_made() {
    struct stat st;
    if (lstat(path_.c_str(), &st) == 0) sock_id_ = FileId{st.st_dev, st.st_ino};
}

void QueueFiles::read_mode() {
    std::string why;
    if (!parse_socket_mode(&sock_mode_, &why)) sock_mode_ = 0700;
}

/* What is gone is made again; what another file replaced is left alone. */
void QueueFiles::check(double now, Journal* journal, const Queue& q, Fd* listener) {
    if (now < next_check_) return;
    next_check_ = now + kFileCheck;
    if (in_place(*journal)) return;   // the usual case: three lstat, no walk up the directories
    if (!place_trusted()) return;
    keep_log();   // first: the others may have something to say
    keep_socket(listener);
    keep_journal(journal, q);
}

bool QueueFiles::in_place(const Journal& journal) {
    if (!log_->in_place() || !same_file(path_, sock_id_) || journal.file_state() != Journal::FileState::Same)
        return false;
    sock_said_ = journal_said_ = false;
    return true;
}

/* Its directory may have been removed and made again by someone else, or
 * replaced by a symbolic link of theirs (in a sticky directory above), and
 * then nothing is made there (they could read, move or redirect it) until
 * it is ours again. The rules are the start's (check_socket_dir). */
bool QueueFiles::place_trusted() {
    std::string why;
    bool ok = check_socket_dir(path_, &why, owner_);
    if (!ok && why != place_said_) say(why + " Nothing is made there again until that changes.");
    place_said_ = ok ? std::string() : why;
    return ok;
}

void QueueFiles::keep_socket(Fd* listener) {
    if (same_file(path_, sock_id_)) return;
    struct stat st;
    if (lstat(path_.c_str(), &st) == 0) {   // another file: new clients cannot reach us; never removed
        if (!sock_said_)
            say(format("the socket %s was replaced by another file: it is left alone, and new clients cannot "
                       "reach this server until it is gone", path_.c_str()));
        sock_said_ = true;
        return;
    }
    Fd l;
    FileId id;
    std::string why;
    if (errno != ENOENT || !bind_socket(path_, sock_mode_, &l, &id, &why)) {
        if (!sock_said_)
            say(format("the socket %s was removed, and it cannot be made again (%s): tried again every "
                       "second", path_.c_str(), why.empty() ? strerror(errno) : why.c_str()));
        sock_said_ = true;
        return;
    }
    set_nonblock(l.get());
    *listener = std::move(l);
    sock_id_ = id;
    sock_said_ = false;
    say(format("the socket %s was removed while the server ran: made again", path_.c_str()));
}

void QueueFiles::keep_journal(Journal* journal, const Queue& q) {
    switch (journal->file_state()) {
    case Journal::FileState::Same: journal_said_ = false; return;
    case Journal::FileState::Replaced:   // failing (changes refused) until that file is moved away
        if (!journal_said_)
            say(format("the journal %s.journal was replaced by another file: it is left alone, and changes to "
                       "the queue are refused until it is moved away",
                       path_.c_str()));
        journal_said_ = true;
        (void)journal->at_path();
        return;
    case Journal::FileState::Gone:   // failing (changes refused) until it is written again
        (void)journal->at_path();   // first: a snapshot that fails then says why (a full disk)
        if (journal->compact(q)) say(format("the journal %s.journal was removed: written again", path_.c_str()));
        return;
    }
}

void QueueFiles::keep_log() {
    if (log_->keep()) say(format("the log %s was removed: made again", log_->path().c_str()));
}

/* Only the socket this server made: never one another server made since. */
void QueueFiles::unlink_socket() {
    if (same_file(path_, sock_id_)) unlink(path_.c_str());
}
