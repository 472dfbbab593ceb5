/*
 * server_log.cpp — the server's log: see server_log.h.
 */
#include "server_log.h"

#include <cerrno>
#include <ctime>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "place.h"

/* A log of ours with a second name (another user's hard link, where
 * protected_hardlinks is off) may be a planted name for another file of ours:
 * never appended to; that name is removed (the file keeps its other names)
 * and a new log made in its place, so that the link stops no server. */
static Fd open_log_file(const std::string& path, std::string* why) {
    Fd fd = open_private(path, O_WRONLY | O_APPEND | O_CREAT, why);
    struct stat st;
    if (fd || errno != EPERM || lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid() || st.st_nlink < 2)
        return fd;
    if (unlink(path.c_str()) != 0) return fd;
    return open_private(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL, why);
}

bool ServerLog::open(std::string* why) {
    fd_ = open_log_file(path_, why);
    return bool(fd_);
}

void ServerLog::write(const std::string& msg) {
    if (!fd_) return;
    time_t t = time(nullptr);
    char when[64];
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
    std::string line = format("%s ts server %d: %s\n", when, int(getpid()), msg.c_str());
    if (flush_backlog() && write_all(fd_.get(), line.data(), line.size())) return;
    backlog_.push_back(std::move(line));
    if (backlog_.size() > kLogBacklog) {
        backlog_.pop_front();
        ++dropped_;
    }
}

/* The lines kept while the disk was full, oldest first, after a line that
 * says how many were lost. True when none is left. */
bool ServerLog::flush_backlog() {
    while (!backlog_.empty()) {
        std::string& old = backlog_.front();
        if (dropped_) {
            std::string gap = format("(%s of the log %s lost: the disk was full)\n",
                                     counted(dropped_, "earlier line", "earlier lines").c_str(),
                                     dropped_ == 1 ? "was" : "were");
            if (!write_all(fd_.get(), gap.data(), gap.size())) return false;
            dropped_ = 0;
        }
        if (!write_all(fd_.get(), old.data(), old.size())) return false;
        backlog_.pop_front();
    }
    return true;
}

bool ServerLog::in_place() const {
    struct stat mine;
    return !fd_ || (fstat(fd_.get(), &mine) == 0 && same_file(path_, FileId{mine.st_dev, mine.st_ino}));
}

bool ServerLog::keep() {
    struct stat mine;
    std::string why;
    if (!fd_ || fstat(fd_.get(), &mine) != 0 || same_file(path_, FileId{mine.st_dev, mine.st_ino})) return false;
    Fd fd = open_log_file(path_, &why);
    if (!fd) return false;   // another file there: keep writing the old one
    fd_ = std::move(fd);
    return true;
}
