/*
 * queue_files_test.cpp — the files a server keeps beside its socket
 * (queue_files.h) and its log (server_log.h), alone, with real files in a
 * temporary directory and no server: a removed socket, journal or log is
 * made again, another file in their place is left alone (and said once),
 * nothing is made in a place that is no longer trusted, the socket is
 * removed at exit only if it is still ours, and the log keeps its last
 * lines while the disk is full (/dev/full), then writes them with a count
 * of those lost.
 */
#include <gtest/gtest.h>

#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <unistd.h>

#include "connect.h"
#include "jobs.h"
#include "journal.h"
#include "place.h"
#include "queue_files.h"
#include "scratch.h"
#include "server_log.h"
#include "util.h"

namespace {

using scratch::TempDir;

std::string slurp(const std::string& path) {
    std::string out;
    (void)read_file(path, &out);
    return out;
}

size_t count_of(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

bool exists(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
}

// ------------------------------------------------------------------ ServerLog

TEST(ServerLog, WritesLinesWithTimeAndPid) {
    TempDir d;
    ServerLog log(d / "s.error");
    std::string why;
    ASSERT_TRUE(log.open(&why)) << why;
    log.write("hello");
    std::string text = slurp(d / "s.error");
    EXPECT_NE(text.find(format(" ts server %d: hello\n", int(getpid()))), std::string::npos) << text;
    struct stat st;
    ASSERT_EQ(stat((d / "s.error").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(ServerLog, RefusesALinkPlantedAtItsPath) {
    TempDir d;
    ASSERT_EQ(symlink((d / "elsewhere").c_str(), (d / "s.error").c_str()), 0);
    ServerLog log(d / "s.error");
    std::string why;
    EXPECT_FALSE(log.open(&why));
    EXPECT_FALSE(why.empty());
    EXPECT_FALSE(exists(d / "elsewhere"));
}

TEST(ServerLog, KeepsLinesWhileTheDiskIsFull) {
    TempDir d;
    ServerLog log(d / "s.error");
    std::string why;
    ASSERT_TRUE(log.open(&why)) << why;
    Fd real(dup(log.fd()));
    Fd full(open("/dev/full", O_WRONLY | O_CLOEXEC));
    ASSERT_TRUE(full);
    ASSERT_GE(dup2(full.get(), log.fd()), 0);   // the disk is full from now on
    for (size_t i = 0; i < kLogBacklog + 5; ++i) log.write(format("line %zu", i));
    EXPECT_EQ(log.backlog(), kLogBacklog);        // the last ones, and no more
    EXPECT_EQ(slurp(d / "s.error"), "");
    ASSERT_GE(dup2(real.get(), log.fd()), 0);     // room again
    log.write("after");
    std::string text = slurp(d / "s.error");
    EXPECT_EQ(log.backlog(), 0u);
    EXPECT_NE(text.find("(5 earlier lines of the log were lost: the disk was full)\n"), std::string::npos) << text;
    EXPECT_EQ(text.find(": line 4\n"), std::string::npos);   // one of the lost
    size_t first = text.find(": line 5\n"), last = text.find(format(": line %zu\n", kLogBacklog + 4));
    size_t after = text.find(": after\n");
    ASSERT_NE(first, std::string::npos);
    ASSERT_NE(last, std::string::npos);
    ASSERT_NE(after, std::string::npos);
    EXPECT_LT(first, last);   // in order, the new line last
    EXPECT_LT(last, after);
}

TEST(ServerLog, IsMadeAgainWhenRemoved) {
    TempDir d;
    ServerLog log(d / "s.error");
    std::string why;
    ASSERT_TRUE(log.open(&why)) << why;
    EXPECT_TRUE(log.in_place());
    EXPECT_FALSE(log.keep());   // nothing to do
    ASSERT_EQ(unlink((d / "s.error").c_str()), 0);
    EXPECT_FALSE(log.in_place());
    EXPECT_TRUE(log.keep());
    EXPECT_TRUE(log.in_place());
    log.write("back");
    EXPECT_NE(slurp(d / "s.error").find(": back\n"), std::string::npos);
}

// ----------------------------------------------------------------- QueueFiles

/* A queue's files as a server that just started has them: a listening
 * socket, a journal, a log. */
struct Files {
    TempDir dir;
    std::string sock = dir / "s";
    Queue queue;
    ServerLog log{sock + ".error"};
    Journal journal{sock + ".journal", &queue, [](const std::string&) {}};
    QueueFiles files{sock, getuid(), &log};
    Fd listener;

    Files() {
        std::string why;
        EXPECT_TRUE(log.open(&why)) << why;
        FileId id;
        EXPECT_TRUE(bind_socket(sock, 0700, &listener, &id, &why)) << why;
        files.socket_made();
        EXPECT_TRUE(journal.compact(queue));
        EXPECT_TRUE(files.in_place(journal));
    }
    void check(double now) { files.check(now, &journal, queue, &listener); }
    std::string logged() { return slurp(sock + ".error"); }
};

TEST(QueueFiles, PutsBackARemovedSocket) {
    Files f;
    int old = f.listener.get();
    ASSERT_EQ(unlink(f.sock.c_str()), 0);
    f.check(10.0);
    EXPECT_TRUE(f.files.in_place(f.journal));
    struct stat st;
    ASSERT_EQ(lstat(f.sock.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_NE(f.listener.get(), -1);
    EXPECT_NE(f.listener.get(), old);   // a new listener: clients reach it at the path
    Fd c = try_connect(f.sock);
    EXPECT_TRUE(c);
    EXPECT_NE(f.logged().find("was removed while the server ran: made again"), std::string::npos) << f.logged();
}

TEST(QueueFiles, LooksOnlyWhenDueOrAsked) {
    Files f;
    f.check(10.0);
    EXPECT_DOUBLE_EQ(f.files.next_check(), 10.0 + kFileCheck);
    ASSERT_EQ(unlink(f.sock.c_str()), 0);
    f.check(10.5);   // not due yet
    EXPECT_FALSE(exists(f.sock));
    f.files.check_soon();   // a client knocked on the guard
    f.check(10.6);
    EXPECT_TRUE(exists(f.sock));
}

TEST(QueueFiles, LeavesAnotherFileAloneAndSaysSoOnce) {
    Files f;
    ASSERT_EQ(unlink(f.sock.c_str()), 0);
    { Fd planted(open(f.sock.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)); }
    f.check(10.0);
    f.check(20.0);
    struct stat st;
    ASSERT_EQ(lstat(f.sock.c_str(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));   // never removed
    EXPECT_EQ(count_of(f.logged(), "was replaced by another file"), 1u) << f.logged();
}

TEST(QueueFiles, WritesARemovedJournalAgainAndMakesTheLog) {
    Files f;
    ASSERT_EQ(unlink((f.sock + ".journal").c_str()), 0);
    ASSERT_EQ(unlink((f.sock + ".error").c_str()), 0);
    f.check(10.0);
    EXPECT_TRUE(exists(f.sock + ".journal"));
    EXPECT_TRUE(f.files.in_place(f.journal));
    std::string text = f.logged();   // the new log says what was put back, the log first
    EXPECT_NE(text.find("the log " + f.sock + ".error was removed: made again"), std::string::npos) << text;
    EXPECT_NE(text.find(".journal was removed: written again"), std::string::npos) << text;
}

TEST(QueueFiles, MakesNothingInAPlaceNoLongerTrusted) {
    Files f;
    ASSERT_EQ(unlink(f.sock.c_str()), 0);
    ASSERT_EQ(chmod(f.dir.path().c_str(), 0777), 0);   // anyone may write there now, and it is not sticky
    f.check(10.0);
    f.check(20.0);
    EXPECT_FALSE(exists(f.sock));
    EXPECT_EQ(count_of(f.logged(), "Nothing is made there again until that changes."), 1u) << f.logged();
    ASSERT_EQ(chmod(f.dir.path().c_str(), 0700), 0);
    f.check(30.0);
    EXPECT_TRUE(exists(f.sock));
}

TEST(QueueFiles, UnlinksOnlyItsOwnSocket) {
    Files f;
    ASSERT_EQ(unlink(f.sock.c_str()), 0);
    Fd other;
    FileId id;
    std::string why;
    ASSERT_TRUE(bind_socket(f.sock, 0700, &other, &id, &why)) << why;   // another server's, since
    f.files.unlink_socket();
    EXPECT_TRUE(exists(f.sock));
    Files g;
    g.files.unlink_socket();
    EXPECT_FALSE(exists(g.sock));
}

}  // namespace
