/*
 * connect_test.cpp — reaching a queue's server (connect.h): where the socket
 * is, which directories are refused, who a queue belongs to, the peer's uid,
 * and real servers started in a private directory: start_server forks a ts
 * server out of this test binary (run_server in the grandchild), and every
 * test stops the servers it started with a KillServer frame. The fixture
 * makes this process a child subreaper, so that the daemonised server, its
 * spawner and its spare runners become our children and can be waited for:
 * a test ends only when every process it started is gone.
 */
#include <gtest/gtest.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <set>
#include <string>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connect.h"
#include "frame.h"
#include "place.h"
#include "protocol.h"
#include "scratch.h"
#include "util.h"

namespace {

using proto::MsgType;
using scratch::Env;
using scratch::TempDir;

const uid_t kOther = 4321;   // a uid nobody here runs as (files are chowned to it as root)
const uid_t kThird = 4322;

std::string cwd() {
    char buf[4096];
    return getcwd(buf, sizeof buf) ? buf : "";
}

bool is_root() { return geteuid() == 0; }

void touch(const std::string& path, uid_t uid = geteuid()) {
    Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600));
    ASSERT_TRUE(fd) << path << ": " << strerror(errno);
    ASSERT_EQ(fchown(fd.get(), uid, uid), 0) << strerror(errno);
}

/* A socket bound at path that nobody listens on (a server that died). */
void stale_socket(const std::string& path) {
    Fd fd(socket(AF_UNIX, SOCK_STREAM, 0));
    ASSERT_TRUE(fd);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    ASSERT_LT(path.size(), sizeof a.sun_path);
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0) << strerror(errno);
}

ino_t inode_of(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

bool is_socket(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// ------------------------------------------------------------ socket_location

class SocketLocation : public ::testing::Test {
protected:
    void SetUp() override {
        env_.unset("TS_SOCKET");
        env_.unset("TMPDIR");
    }
    Env env_;
};

TEST_F(SocketLocation, TsSocketIsUsedAsItIs) {
    env_.set("TMPDIR", "/elsewhere");   // TS_SOCKET wins
    env_.set("TS_SOCKET", "/run/q/sock");
    Socket s = socket_location();
    EXPECT_EQ(s.path, "/run/q/sock");
    EXPECT_EQ(s.abs_path, "/run/q/sock");
    EXPECT_FALSE(s.is_default);
}

TEST_F(SocketLocation, RelativeTsSocketGetsAnAbsolutePathFromTheWorkingDirectory) {
    env_.set("TS_SOCKET", "sub/sock");
    Socket s = socket_location();
    EXPECT_EQ(s.path, "sub/sock");   // connect and bind use it as it is
    EXPECT_EQ(s.abs_path, cwd() + "/sub/sock");
    EXPECT_FALSE(s.is_default);
}

TEST_F(SocketLocation, DefaultIsInTmpdirWithTheUid) {
    env_.set("TMPDIR", "/var/tmp/mine");
    Socket s = socket_location();
    std::string want = "/var/tmp/mine/socket-ts." + std::to_string(getuid());
    EXPECT_EQ(s.path, want);
    EXPECT_EQ(s.abs_path, want);
    EXPECT_TRUE(s.is_default);
}

TEST_F(SocketLocation, DefaultFallsBackToTmpWithoutTmpdirOrWithAnEmptyOne) {
    std::string want = "/tmp/socket-ts." + std::to_string(getuid());
    EXPECT_EQ(socket_location().path, want);
    EXPECT_TRUE(socket_location().is_default);
    env_.set("TMPDIR", "");
    EXPECT_EQ(socket_location().path, want);
    EXPECT_EQ(socket_location().abs_path, want);
}

TEST_F(SocketLocation, LongestPathThatFitsIsAccepted) {
    std::string p = "/" + std::string(sizeof(sockaddr_un{}.sun_path) - 2, 'a');   // 107 bytes + NUL
    env_.set("TS_SOCKET", p);
    EXPECT_EQ(socket_location().path, p);
}

TEST_F(SocketLocation, TooLongPathDiesWithTaskSpoolersMessage) {
    std::string p = "/" + std::string(sizeof(sockaddr_un{}.sun_path) - 1, 'a');   // 108 bytes
    env_.set("TS_SOCKET", p);
    EXPECT_EXIT(socket_location(), ::testing::ExitedWithCode(255),
                "^Cannot create the socket '" + p + "'\\. Probably, the name is too long\\.\n$");
}

TEST_F(SocketLocation, TooLongDefaultPathDies) {
    std::string tmp = "/" + std::string(100, 'b');
    env_.set("TMPDIR", tmp);
    EXPECT_EXIT(socket_location(), ::testing::ExitedWithCode(255),
                "Cannot create the socket '" + tmp + "/socket-ts\\.[0-9]+'\\. Probably, the name is too long\\.");
}

TEST_F(SocketLocation, EmptyTsSocketDies) {
    env_.set("TS_SOCKET", "");
    EXPECT_EXIT(socket_location(), ::testing::ExitedWithCode(255), "^The server didn't come up\\.\n$");
}

// ------------------------------------------------------------ check_socket_dir

class SocketDir : public ::testing::Test {
protected:
    std::string sock_in(mode_t mode) {
        std::string d = dir_ / format("d%o", unsigned(mode));
        EXPECT_EQ(mkdir(d.c_str(), 0700), 0);
        EXPECT_EQ(chmod(d.c_str(), mode), 0);   // not under the umask
        return d + "/s";
    }
    TempDir dir_;
};

TEST_F(SocketDir, WritableByOthersAndNotStickyIsRefused) {
    for (mode_t mode : {0777, 0770, 0757, 0722}) {
        std::string s = sock_in(mode), err;
        EXPECT_FALSE(check_socket_dir(s, &err, geteuid())) << std::oct << mode;
        EXPECT_EQ(err, format("The directory %s can be written by other users and is not sticky (mode %04o): "
                              "any of them could replace the queue (%s) below it. Use directories that only "
                              "their owner can write (chmod g-w,o-w), or sticky ones (chmod +t).",
                              dir_name(s).c_str(), unsigned(mode), s.c_str()));
    }
}

TEST_F(SocketDir, StickyOrOwnerOnlyOrMissingIsAccepted) {
    for (mode_t mode : {01777, 01770, 0700, 0755, 0555}) {
        std::string err = "untouched";
        EXPECT_TRUE(check_socket_dir(sock_in(mode), &err, geteuid())) << std::oct << mode;
        EXPECT_EQ(err, "untouched");
    }
    std::string err;
    EXPECT_TRUE(check_socket_dir(dir_ / "missing/s", &err, geteuid()));   // bind or connect says what is wrong
    EXPECT_TRUE(err.empty());
}

// Every directory above counts too (OpenSSH's StrictModes): one that another
// user could write without the sticky bit lets them move the queue's
// directory aside and put one of their own in its place.
TEST_F(SocketDir, AWritableDirectoryAboveIsRefused) {
    std::string top = dir_ / "top", queue = top + "/queue";
    ASSERT_EQ(mkdir(top.c_str(), 0700), 0);
    ASSERT_EQ(mkdir(queue.c_str(), 0700), 0);
    ASSERT_EQ(chmod(top.c_str(), 0777), 0);
    std::string err;
    EXPECT_FALSE(check_socket_dir(queue + "/s", &err, geteuid()));
    EXPECT_NE(err.find("The directory " + top + " can be written by other users"), std::string::npos) << err;
    ASSERT_EQ(chmod(top.c_str(), 01777), 0);   // sticky: nobody may move our directory
    err.clear();
    EXPECT_TRUE(check_socket_dir(queue + "/s", &err, geteuid())) << err;
}

// A directory on the way that belongs to someone else than root or the
// queue's owner is theirs to change: refused, even sticky and owner-only.
TEST_F(SocketDir, ADirectoryOfAnotherUserIsRefused) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (chown)";
    for (mode_t mode : {0755, 01777}) {
        std::string d = sock_in(mode), dir = dir_name(d);
        ASSERT_EQ(chown(dir.c_str(), kOther, kOther), 0);
        std::string err;
        EXPECT_FALSE(check_socket_dir(d, &err, geteuid())) << std::oct << mode;
        EXPECT_NE(err.find(format("The directory %s belongs to uid %u", dir.c_str(), unsigned(kOther))),
                  std::string::npos) << err;
        err.clear();   // the queue's owner's own directory is fine
        EXPECT_TRUE(check_socket_dir(d, &err, kOther)) << err;
        ASSERT_EQ(chown(dir.c_str(), 0, 0), 0);
    }
}

// A symbolic link on the way that belongs to someone other than root or the
// queue's owner is theirs to point elsewhere at any time (between the check
// and the connect, or when the server makes its socket again): refused, even
// when it points into the owner's own directories; and every link is looked
// at, links inside a link's target too.
TEST_F(SocketDir, ASymlinkOfAnotherUserIsRefused) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (lchown)";
    std::string real = dir_ / "real", hop = dir_ / "hop", link = dir_ / "link";
    ASSERT_EQ(mkdir(real.c_str(), 0700), 0);
    ASSERT_EQ(symlink(real.c_str(), hop.c_str()), 0);
    ASSERT_EQ(symlink("hop", link.c_str()), 0);   // link -> hop -> real
    std::string err;
    EXPECT_TRUE(check_socket_dir(link + "/s", &err, geteuid())) << err;   // ours (root's) links
    ASSERT_EQ(lchown(hop.c_str(), kOther, kOther), 0);
    EXPECT_FALSE(check_socket_dir(link + "/s", &err, geteuid()));
    EXPECT_EQ(err, format("The symbolic link %s belongs to uid %u, who could point it elsewhere at any time: "
                          "a queue (here %s) must be reached only through links that belong to root or "
                          "to the queue's owner (uid %u). Use the path it points to, or have root or uid "
                          "%u own the link.",
                          hop.c_str(), unsigned(kOther), (link + "/s").c_str(), unsigned(geteuid()),
                          unsigned(geteuid())));
    err.clear();
    EXPECT_TRUE(check_socket_dir(real + "/s", &err, geteuid())) << err;   // the path it points to
    EXPECT_TRUE(check_socket_dir(link + "/s", &err, kOther)) << err;      // the link's owner's queue
    EXPECT_TRUE(check_socket_dir(dir_ / "gone/s", &err, geteuid())) << err;
    ASSERT_EQ(symlink("loop", (dir_ / "loop").c_str()), 0);
    EXPECT_TRUE(check_socket_dir(dir_ / "loop/s", &err, geteuid())) << err;   // bind says ELOOP
}

// ------------------------------------------------------------------ queue_owner

class QueueOwnerTest : public ::testing::Test {
protected:
    /* A sticky directory anyone may write, like /tmp. */
    std::string shared_sock() {
        std::string d = dir_ / "shared";
        EXPECT_EQ(mkdir(d.c_str(), 0700), 0);
        EXPECT_EQ(chmod(d.c_str(), 01777), 0);
        return d + "/s";
    }
    TempDir dir_;
};

TEST_F(QueueOwnerTest, OwnerOnlyDirectoryBelongsToItsOwner) {
    std::string s = dir_ / "s";
    QueueOwner o = queue_owner(s);
    EXPECT_TRUE(o.known);
    EXPECT_EQ(o.uid, geteuid());
    EXPECT_EQ(o.why, "the owner of " + dir_.path());
    touch(s + ".journal");   // the files beside the socket do not matter there
    EXPECT_EQ(queue_owner(s, kOther).uid, geteuid());
}

TEST_F(QueueOwnerTest, OwnerOnlyDirectoryOfAnotherUser) {
    if (!is_root()) GTEST_SKIP() << "needs root to chown";
    std::string d = dir_ / "theirs";
    ASSERT_EQ(mkdir(d.c_str(), 0755), 0);
    ASSERT_EQ(chown(d.c_str(), kOther, kOther), 0);
    touch(d + "/s.journal", geteuid());   // even a journal of the caller's there
    QueueOwner o = queue_owner(d + "/s");
    EXPECT_TRUE(o.known);
    EXPECT_EQ(o.uid, kOther);
    EXPECT_EQ(o.why, "the owner of " + d);
}

TEST_F(QueueOwnerTest, NewQueueInASharedDirectoryIsNobodysYet) {
    QueueOwner o = queue_owner(shared_sock());
    EXPECT_FALSE(o.known);
    EXPECT_EQ(o.why, "");
}

TEST_F(QueueOwnerTest, GroupWritableDirectoryIsNotTheOwnersAlone) {
    std::string d = dir_ / "group";
    ASSERT_EQ(mkdir(d.c_str(), 0700), 0);
    ASSERT_EQ(chmod(d.c_str(), 0770), 0);
    EXPECT_FALSE(queue_owner(d + "/s").known);
    touch(d + "/s.lock");
    QueueOwner o = queue_owner(d + "/s");
    EXPECT_TRUE(o.known);
    EXPECT_EQ(o.why, "its lock file " + d + "/s.lock");
}

TEST_F(QueueOwnerTest, SharedDirectoryOwnFilesNameTheirFile) {
    std::string s = shared_sock();
    touch(s + ".lock");
    QueueOwner o = queue_owner(s);
    EXPECT_TRUE(o.known);
    EXPECT_EQ(o.uid, geteuid());
    EXPECT_EQ(o.why, "its lock file " + s + ".lock");
    touch(s + ".journal");
    o = queue_owner(s);
    EXPECT_EQ(o.uid, geteuid());
    EXPECT_EQ(o.why, "its journal " + s + ".journal");   // the journal before the lock
}

TEST_F(QueueOwnerTest, SharedDirectoryTheJournalsOwnerElseTheLocks) {
    if (!is_root()) GTEST_SKIP() << "needs root to chown";
    std::string s = shared_sock();
    touch(s + ".lock", kThird);
    QueueOwner o = queue_owner(s);
    EXPECT_TRUE(o.known);
    EXPECT_EQ(o.uid, kThird);
    EXPECT_EQ(o.why, "its lock file " + s + ".lock");
    touch(s + ".journal", kOther);
    o = queue_owner(s);   // prefer (us) owns neither: the journal decides
    EXPECT_EQ(o.uid, kOther);
    EXPECT_EQ(o.why, "its journal " + s + ".journal");
}

TEST_F(QueueOwnerTest, PreferredUidWinsWithEitherFile) {
    if (!is_root()) GTEST_SKIP() << "needs root to chown";
    std::string s = shared_sock();
    touch(s + ".journal", kOther);
    touch(s + ".lock", kThird);
    EXPECT_EQ(queue_owner(s, kOther).uid, kOther);
    QueueOwner o = queue_owner(s, kThird);   // the lock is kThird's: theirs
    EXPECT_EQ(o.uid, kThird);
    EXPECT_EQ(o.why, "its lock file " + s + ".lock");
    EXPECT_EQ(queue_owner(s, 999).uid, kOther);   // neither: the journal's owner
}

TEST_F(QueueOwnerTest, WithoutPreferLockOnlyThePreferredJournalCounts) {
    if (!is_root()) GTEST_SKIP() << "needs root to chown";
    std::string s = shared_sock();
    touch(s + ".journal", kOther);
    touch(s + ".lock", kThird);
    // A lock file is easier to plant: it does not make the queue kThird's.
    QueueOwner o = queue_owner(s, kThird, false);
    EXPECT_EQ(o.uid, kOther);
    EXPECT_EQ(o.why, "its journal " + s + ".journal");
    EXPECT_EQ(queue_owner(s, kOther, false).uid, kOther);
    // With no journal at all, the lock is the only clue, whoever's it is.
    ASSERT_EQ(unlink((s + ".journal").c_str()), 0);
    o = queue_owner(s, kOther, false);
    EXPECT_TRUE(o.known);
    EXPECT_EQ(o.uid, kThird);
}

TEST_F(QueueOwnerTest, ASymlinkCountsAsItsOwnersNotItsTargets) {
    if (!is_root()) GTEST_SKIP() << "needs root to chown";
    std::string s = shared_sock();
    touch(dir_ / "target", geteuid());
    ASSERT_EQ(symlink((dir_ / "target").c_str(), (s + ".journal").c_str()), 0);
    ASSERT_EQ(lchown((s + ".journal").c_str(), kOther, kOther), 0);
    EXPECT_EQ(queue_owner(s, 999).uid, kOther);
}

// ---------------------------------------------------------- peer_uid, try_connect

TEST(PeerUid, OfASocketpairIsOurs) {
    int sv[2];
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    Fd a(sv[0]), b(sv[1]);
    EXPECT_EQ(peer_uid(a.get()), getuid());
    EXPECT_EQ(peer_uid(b.get()), getuid());
}

TEST(PeerUid, OfSomethingElseIsMinusOne) {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    Fd a(p[0]), b(p[1]);
    EXPECT_EQ(peer_uid(a.get()), static_cast<uid_t>(-1));
    EXPECT_EQ(peer_uid(-1), static_cast<uid_t>(-1));
}

TEST(TryConnect, MissingPathIsENOENT) {
    TempDir d;
    errno = 0;
    Fd fd = try_connect(d / "nothing");
    EXPECT_FALSE(fd);
    EXPECT_EQ(errno, ENOENT);
}

TEST(TryConnect, SocketNobodyListensOnIsECONNREFUSED) {
    TempDir d;
    stale_socket(d / "s");
    errno = 0;
    Fd fd = try_connect(d / "s");
    EXPECT_FALSE(fd);
    EXPECT_EQ(errno, ECONNREFUSED);
}

TEST(TryConnect, ListeningSocketAnswers) {
    TempDir d;
    std::string path = d / "s";
    Fd l(socket(AF_UNIX, SOCK_STREAM, 0));
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    ASSERT_EQ(bind(l.get(), reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    ASSERT_EQ(listen(l.get(), 1), 0);
    Fd fd = try_connect(path);
    ASSERT_TRUE(fd);
    EXPECT_EQ(peer_uid(fd.get()), getuid());
    EXPECT_TRUE(fcntl(fd.get(), F_GETFD) & FD_CLOEXEC);
    Fd in(accept(l.get(), nullptr, nullptr));
    ASSERT_TRUE(in);
    ASSERT_TRUE(write_all(fd.get(), "x", 1));
    char c = 0;
    ASSERT_TRUE(read_exact(in.get(), &c, 1));
    EXPECT_EQ(c, 'x');
}

// ------------------------------------------------------------- real servers

/* The processes that are children of this one now (reaped or not). */
std::set<pid_t> children() {
    std::set<pid_t> kids;
    DIR* proc = opendir("/proc");
    if (!proc) return kids;
    while (struct dirent* e = readdir(proc)) {
        char* end = nullptr;
        long pid = strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end) continue;
        std::string st;
        if (!read_file(format("/proc/%ld/stat", pid), &st)) continue;
        size_t paren = st.rfind(')');
        int ppid = 0;
        if (paren != std::string::npos && sscanf(st.c_str() + paren + 1, " %*c %d", &ppid) == 1 &&
            ppid == getpid())
            kids.insert(static_cast<pid_t>(pid));
    }
    closedir(proc);
    return kids;
}

class RealServer : public ::testing::Test {
protected:
    void SetUp() override {
        // Servers, spawners and spares that daemonise come back to us as children.
        ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0) << strerror(errno);
        before_ = children();
        for (const char* v : {"TS_SOCKET", "TS_SOCKET_MODE", "TS_VALGRIND", "TS_SAVELIST", "TS_MAXCONN",
                              "TS_SLOTS", "TS_ONFINISH", "TS_ENV", "TS_MAXFINISHED", "TS_USER_MAXJOBS",
                              "TS_USER_MAXSIZE", "TS_JOURNAL", "TS_FSYNC", "TS_TEST_CRASH_AFTER_SUBMIT",
                              "TS_MAILTO"})
            env_.unset(v);
        env_.set("TMPDIR", dir_.path());   // the spares' output files
    }
    void TearDown() override {
        for (const std::string& p : started_) stop(p);
        reap_all();
        prctl(PR_SET_CHILD_SUBREAPER, 0);
    }

    Socket sock(const std::string& name = "s") {
        Socket s;
        s.path = s.abs_path = dir_ / name;
        return s;
    }
    /* Started here: stopped at the end of the test. */
    void started(const std::string& path) { started_.push_back(path); }

    /* A request and its answer on a new connection (with a deadline). */
    static Frame ask(const std::string& path, const std::string& bytes) {
        Frame f;
        Fd fd = try_connect(path);
        EXPECT_TRUE(fd) << path << ": " << strerror(errno);
        if (!fd) return f;
        timeval tv{5, 0};
        setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        EXPECT_TRUE(send_frame(fd.get(), bytes));
        EXPECT_TRUE(recv_frame(fd.get(), &f));
        return f;
    }
    static int slots_of(const std::string& path) {
        Frame f = ask(path, encode_empty(MsgType::GetSlots));
        proto::Slots n{};
        EXPECT_EQ(f.type, MsgType::Slots);
        EXPECT_TRUE(decode_body(f, &n));
        return n.n;
    }
    static void set_slots(const std::string& path, int n) {
        proto::Slots b{};
        b.n = n;
        EXPECT_EQ(ask(path, encode(MsgType::SetSlots, b)).type, MsgType::Done);
    }
    /* KillServer, and wait until the server hangs up (it exits right after). */
    static void stop(const std::string& path) {
        Fd fd = try_connect(path);
        if (!fd) return;   // already gone
        timeval tv{5, 0};
        setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ASSERT_TRUE(send_frame(fd.get(), encode_empty(MsgType::KillServer)));
        Frame f;
        ASSERT_TRUE(recv_frame(fd.get(), &f));
        EXPECT_EQ(f.type, MsgType::Done);
        char c;
        EXPECT_EQ(read(fd.get(), &c, 1), 0) << "no EOF after Done";
        EXPECT_FALSE(is_socket(path)) << "the socket is left behind";
    }
    /* Wait for every process the test made (server, spawner, spares) to end. */
    void reap_all() {
        double deadline = mono_now() + 10;
        for (;;) {
            while (waitpid(-1, nullptr, WNOHANG) > 0) {
            }
            std::set<pid_t> left;
            for (pid_t p : children())
                if (!before_.count(p)) left.insert(p);
            if (left.empty()) return;
            if (mono_now() > deadline) {
                for (pid_t p : left) {
                    ADD_FAILURE() << "process " << p << " is still running after the test";
                    kill(p, SIGKILL);
                }
                deadline = mono_now() + 5;
            }
            sleep_seconds(0.005);
        }
    }

    Env env_;
    TempDir dir_;
    std::vector<std::string> started_;
    std::set<pid_t> before_;
};

TEST_F(RealServer, StartServerBindsThenServes) {
    Socket s = sock();
    std::string err;
    ASSERT_TRUE(start_server(s, &err)) << err;
    started(s.path);
    EXPECT_EQ(err, "");
    // Bound before the fork, under umask 077: the socket is there, owner-only.
    struct stat st;
    ASSERT_EQ(lstat(s.path.c_str(), &st), 0);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 077, 0u) << std::oct << st.st_mode;
    EXPECT_EQ(st.st_uid, getuid());
    Fd fd = try_connect(s.path);
    ASSERT_TRUE(fd);
    EXPECT_EQ(peer_uid(fd.get()), getuid());
    EXPECT_EQ(slots_of(s.path), 1);
    set_slots(s.path, 3);
    EXPECT_EQ(slots_of(s.path), 3);
}

TEST_F(RealServer, KillServerEndsItAndEveryProcessOfIt) {
    Socket s = sock();
    std::string err;
    ASSERT_TRUE(start_server(s, &err)) << err;
    EXPECT_EQ(slots_of(s.path), 1);
    // The daemon (adopted by us, the subreaper) and what it forked.
    std::set<pid_t> now = children();
    size_t ours = 0;
    for (pid_t p : now) ours += before_.count(p) ? 0 : 1;
    EXPECT_GE(ours, 1u);
    stop(s.path);
    EXPECT_FALSE(is_socket(s.path));
    errno = 0;
    EXPECT_FALSE(try_connect(s.path));
    EXPECT_EQ(errno, ENOENT);
    reap_all();   // fails the test if any of them is still there after 10 s
    for (pid_t p : children()) EXPECT_TRUE(before_.count(p)) << p;
}

TEST_F(RealServer, StartServerReplacesAStaleSocket) {
    Socket s = sock();
    stale_socket(s.path);
    std::string err;
    ASSERT_TRUE(start_server(s, &err)) << err;
    started(s.path);
    EXPECT_EQ(slots_of(s.path), 1);
}

TEST_F(RealServer, StartServerLeavesARegularFileAlone) {
    Socket s = sock();
    ASSERT_TRUE(write_all(Fd(open(s.path.c_str(), O_WRONLY | O_CREAT, 0600)).get(), "data", 4));
    std::string err;
    EXPECT_FALSE(start_server(s, &err));
    EXPECT_EQ(err, "The socket path exists and it is not a unix socket: " + s.path);
    std::string content;
    ASSERT_TRUE(read_file(s.path, &content));
    EXPECT_EQ(content, "data");
}

TEST_F(RealServer, StartupErrorComesBackThroughThePipe) {
    env_.set("TS_MAXCONN", "0");
    Socket s = sock();
    std::string err;
    EXPECT_FALSE(start_server(s, &err));
    EXPECT_EQ(err, "The server didn't come up. (TS_MAXCONN=0: it must be at least 1)");
    EXPECT_FALSE(is_socket(s.path)) << "a server that failed left its socket";
}

TEST_F(RealServer, SocketModeMakesASharedSocket) {
    env_.set("TS_SOCKET_MODE", "0660");
    Socket s = sock();
    std::string err;
    ASSERT_TRUE(start_server(s, &err)) << err;
    started(s.path);
    struct stat st;
    ASSERT_EQ(lstat(s.path.c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0660u) << std::oct << st.st_mode;
}

TEST_F(RealServer, BadSocketModeIsRefusedBeforeAnyServerStarts) {
    for (const char* bad : {"rw", "0999", "01000", ""}) {
        env_.set("TS_SOCKET_MODE", bad);
        Socket s = sock();
        std::string err;
        EXPECT_FALSE(start_server(s, &err)) << bad;
        EXPECT_EQ(err, format("TS_SOCKET_MODE=%s: it must be an octal mode such as 0660", bad));
        EXPECT_FALSE(is_socket(s.path)) << bad;
    }
}

TEST_F(RealServer, OpenServerStartsOneAndThenFindsIt) {
    Socket s = sock();
    std::string err;
    Fd a = open_server(s, &err);
    ASSERT_TRUE(a) << err;
    started(s.path);
    ino_t first = inode_of(s.path);
    EXPECT_NE(first, 0u);
    struct stat st;
    ASSERT_EQ(lstat((s.path + ".lock").c_str(), &st), 0) << "started under the lock";
    EXPECT_EQ(st.st_mode & 0777, 0600u);
    set_slots(s.path, 4);
    Fd b = open_server(s, &err);   // the same server: no new one
    ASSERT_TRUE(b) << err;
    EXPECT_EQ(inode_of(s.path), first);
    EXPECT_EQ(slots_of(s.path), 4);
}

TEST_F(RealServer, OpenServerStartsOneOverAStaleSocket) {
    Socket s = sock();
    stale_socket(s.path);
    std::string err;
    Fd fd = open_server(s, &err);
    ASSERT_TRUE(fd) << err;
    started(s.path);
    EXPECT_EQ(slots_of(s.path), 1);
}

TEST_F(RealServer, OpenServerRefusesADirectoryOthersMayWrite) {
    std::string d = dir_ / "open";
    ASSERT_EQ(mkdir(d.c_str(), 0700), 0);
    ASSERT_EQ(chmod(d.c_str(), 0777), 0);
    Socket s;
    s.path = s.abs_path = d + "/s";
    std::string err;
    EXPECT_FALSE(open_server(s, &err));
    EXPECT_NE(err.find("can be written by other users and is not sticky"), std::string::npos) << err;
    EXPECT_FALSE(is_socket(s.path));
}

TEST_F(RealServer, KillOnlyWithNoServerEmptiesTheQueueAndStartsNothing) {
    Socket s = sock();
    stale_socket(s.path);
    touch(s.path + ".journal");
    std::string err;
    bool dead = false;
    EXPECT_FALSE(open_server(s, &err, true, &dead));
    EXPECT_TRUE(dead);
    EXPECT_EQ(err, "");
    EXPECT_EQ(inode_of(s.path), 0u) << "the stale socket is left";
    EXPECT_EQ(inode_of(s.path + ".journal"), 0u) << "the journal is left";
}

TEST_F(RealServer, KillOnlyLeavesAFileThatIsNotASocket) {
    Socket s = sock();
    touch(s.path);
    touch(s.path + ".journal");
    std::string err;
    bool dead = true;
    EXPECT_FALSE(open_server(s, &err, true, &dead));
    EXPECT_FALSE(dead);
    EXPECT_EQ(err, "The socket path exists and it is not a unix socket: " + s.path);
    EXPECT_NE(inode_of(s.path + ".journal"), 0u);
}

TEST_F(RealServer, OpenServerWillNotStartAServerOverAnotherUsersQueue) {
    if (!is_root()) GTEST_SKIP() << "needs root to chown";
    std::string d = dir_ / "theirs";
    ASSERT_EQ(mkdir(d.c_str(), 0700), 0);
    ASSERT_EQ(chown(d.c_str(), kOther, kOther), 0);
    Socket s;
    s.path = s.abs_path = d + "/s";
    std::string err;
    EXPECT_FALSE(open_server(s, &err));   // no queue there at all: not "belongs to"
    EXPECT_EQ(err, format("The server didn't come up. (there is no queue at %s, and only uid %u (the owner "
                          "of %s) may start one there: choose a TS_SOCKET in a directory of your own)",
                          s.path.c_str(), unsigned(kOther), d.c_str()));
    EXPECT_FALSE(is_socket(s.path));
    Fd j(open((s.path + ".journal").c_str(), O_WRONLY | O_CREAT, 0600));   // a queue, its server gone
    ASSERT_TRUE(j);
    EXPECT_FALSE(open_server(s, &err));
    EXPECT_EQ(err, format("The server didn't come up. (the queue at %s belongs to uid %u (the owner of %s): "
                          "only that user may start its server)",
                          s.path.c_str(), unsigned(kOther), d.c_str()));
    EXPECT_FALSE(is_socket(s.path));
}

TEST_F(RealServer, ConnectOrStartWithoutStartingSaysWhy) {
    std::string why;
    EXPECT_FALSE(connect_or_start(dir_ / "s", false, getuid(), &why));
    EXPECT_EQ(why, strerror(ENOENT));
    EXPECT_FALSE(is_socket(dir_ / "s"));
}

TEST_F(RealServer, ConnectOrStartStartsAndConnects) {
    std::string path = dir_ / "s", why = "untouched";
    Fd fd = connect_or_start(path, true, getuid(), &why);
    ASSERT_TRUE(fd) << why;
    started(path);
    EXPECT_EQ(why, "");
    EXPECT_EQ(peer_uid(fd.get()), getuid());
    EXPECT_TRUE(connect_or_start(path, false, getuid()));   // it is there now
}

TEST_F(RealServer, ConnectOrStartHangsUpOnAServerOfAnotherUid) {
    std::string path = dir_ / "s", why;
    Fd fd = connect_or_start(path, true, getuid(), &why);
    ASSERT_TRUE(fd) << why;
    started(path);
    // Expecting someone else: the server that answers (ours) is not the one.
    EXPECT_FALSE(connect_or_start(path, false, getuid() + 1, &why));
    EXPECT_EQ(why, "the server there runs as another user");
    why.clear();
    EXPECT_FALSE(connect_or_start(path, true, getuid() + 1, &why));
    EXPECT_EQ(why, "the server there runs as another user");
    EXPECT_EQ(slots_of(path), 1);   // and it still runs
}

TEST_F(RealServer, ConnectOrStartRefusesARealServerOfAnotherUser) {
    if (!is_root()) GTEST_SKIP() << "needs root to run a server as another uid";
    std::string d = dir_ / "theirs";
    ASSERT_EQ(mkdir(d.c_str(), 0700), 0);
    ASSERT_EQ(chown(d.c_str(), kOther, kOther), 0);
    ASSERT_EQ(chmod(dir_.path().c_str(), 0711), 0);   // they may pass through ours
    std::string path = d + "/s";
    env_.set("TMPDIR", d);
    // A child that becomes kOther starts that user's server there.
    scratch::ChildResult r = scratch::run_child([&](int out) {
        if (setgid(kOther) != 0 || setuid(kOther) != 0) return 3;
        Socket s;
        s.path = s.abs_path = path;
        std::string err;
        bool ok = start_server(s, &err);
        (void)!write(out, err.data(), err.size());
        return ok ? 0 : 1;
    });
    ASSERT_TRUE(r.exited(0)) << r.out;
    started(path);   // root may stop it
    std::string why;
    EXPECT_FALSE(connect_or_start(path, true, getuid(), &why));
    EXPECT_EQ(why, "the server there runs as another user");
    Fd theirs = connect_or_start(path, false, kOther, &why);   // their own runner would get through
    EXPECT_TRUE(theirs) << why;
    EXPECT_EQ(peer_uid(theirs.get()), kOther);
}

}  // namespace

// A server start's error pipe carries notes for the client as well as an error.
TEST(StartReply, NotesAreNeverTakenForAFailure) {
    std::vector<std::string> notes;
    std::string error = "stale";
    split_start_reply("", &notes, &error);
    EXPECT_TRUE(notes.empty());
    EXPECT_EQ(error, "");
    split_start_reply(start_note("warning: one") + start_note("two"), &notes, &error);
    EXPECT_EQ(notes, (std::vector<std::string>{"warning: one", "two"}));
    EXPECT_EQ(error, "") << "notes alone: the server came up";
    notes.clear();
    split_start_reply(start_note("kept") + "TS_MAXCONN=0: it must be at least 1", &notes, &error);
    EXPECT_EQ(notes, std::vector<std::string>{"kept"});
    EXPECT_EQ(error, "TS_MAXCONN=0: it must be at least 1");
    notes.clear();
    split_start_reply("cannot use the log: x", &notes, &error);   // as every start before notes
    EXPECT_TRUE(notes.empty());
    EXPECT_EQ(error, "cannot use the log: x");
    split_start_reply(std::string("\0cut sh", 7), &notes, &error);   // a server that died mid-note
    EXPECT_EQ(notes, std::vector<std::string>{"cut sh"});
    EXPECT_EQ(error, "");
    split_start_reply(start_note("n"), nullptr, &error);   // nobody to tell (a runner): only the log
    EXPECT_EQ(error, "");
}
