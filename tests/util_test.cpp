/*
 * util_test.cpp — the small pieces (util.h): escaping and quoting, format,
 * dir_name, the owning Fd, die, the files next to a socket that must be
 * ours (open_private) and the start lock (lock_file, contended from a forked
 * child), reading files and pipes, sleeping, and telling a zombie.
 */
#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <csignal>
#include <ctime>
#include <cstring>
#include <fcntl.h>
#include <string>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "scratch.h"
#include "util.h"

namespace {

using scratch::ChildResult;
using scratch::TempDir;

// -------------------------------------------------------------------- printable

TEST(Printable, EveryControlCharacterIsEscaped) {
    EXPECT_EQ(printable(""), "");
    EXPECT_EQ(printable("plain text, 100% [ok]"), "plain text, 100% [ok]");
    EXPECT_EQ(printable(std::string("a\0b", 3)), "a\\x00b");
    EXPECT_EQ(printable("\n\t\r"), "\\n\\t\\r");
    EXPECT_EQ(printable("\x01\x1b[2J\x1f\x7f"), "\\x01\\x1b[2J\\x1f\\x7f");
    for (int c = 0; c < 0x20; ++c) {
        std::string out = printable(std::string(1, char(c)));
        EXPECT_EQ(out[0], '\\') << c;
        EXPECT_GE(out.size(), 2u) << c;
    }
    EXPECT_EQ(printable(" ~"), " ~");   // the ends of the printable range
}

TEST(Printable, BytesAboveAsciiStayForUtf8) {
    EXPECT_EQ(printable("\xc3\xbc" "mlaut \xe2\x82\xac \xff"), "\xc3\xbc" "mlaut \xe2\x82\xac \xff");
}

TEST(Printable, C1ControlsAreEscapedRawOrInUtf8) {
    // A raw CSI (0x9b) and OSC (0x9d) byte, as 8-bit terminals read them.
    EXPECT_EQ(printable("a\x9b" "2Jb"), "a\\x9b2Jb");
    EXPECT_EQ(printable("\x9d" "0;title\x07"), "\\x9d0;title\\x07");
    // U+009B and U+009D in UTF-8 (C2 9B, C2 9D), which UTF-8 terminals act on.
    EXPECT_EQ(printable("x\xc2\x9b" "31my"), "x\\xc2\\x9b31my");
    EXPECT_EQ(printable("\xc2\x9d" "8;;http://e/\xc2\x9c"), "\\xc2\\x9d8;;http://e/\\xc2\\x9c");
    // Every one of U+0080..U+009F, and every raw byte 0x80..0x9f.
    for (int c = 0x80; c <= 0x9f; ++c) {
        std::string utf8 = {char(0xc2), char(c)};
        EXPECT_EQ(printable(utf8), format("\\xc2\\x%02x", c)) << c;
        EXPECT_EQ(printable(std::string(1, char(c))), format("\\x%02x", c)) << c;
    }
    // A C1 code point hidden in an overlong form is no UTF-8: its 0x80..0x9f bytes are escaped.
    EXPECT_EQ(printable("\xc1\x9b"), "\xc1\\x9b");
    EXPECT_EQ(printable("\xe0\x82\x9b"), "\xe0\\x82\\x9b");
}

TEST(Printable, BidiOverridesAndIsolatesAreEscaped) {
    // U+202E RIGHT-TO-LEFT OVERRIDE: "txt.exe" would show as "exe.txt".
    EXPECT_EQ(printable("a\xe2\x80\xae" "exe.txt"), "a\\xe2\\x80\\xaeexe.txt");
    for (uint32_t cp : {0x202au, 0x202bu, 0x202cu, 0x202du, 0x202eu, 0x2066u, 0x2067u, 0x2068u, 0x2069u}) {
        std::string utf8 = {char(0xe0 | (cp >> 12)), char(0x80 | ((cp >> 6) & 0x3f)), char(0x80 | (cp & 0x3f))};
        std::string want = format("\\x%02x\\x%02x\\x%02x", unsigned(utf8[0]) & 0xff, unsigned(utf8[1]) & 0xff,
                                  unsigned(utf8[2]) & 0xff);
        EXPECT_EQ(printable(utf8), want) << std::hex << cp;
    }
    // Their neighbours are ordinary text.
    for (const char* keep : {"\xe2\x80\xa9", "\xe2\x80\xaf", "\xe2\x81\xa5", "\xe2\x81\xaa", "\xe2\x80\x94"})
        EXPECT_EQ(printable(keep), keep);
}

TEST(Printable, OrdinaryUtf8TextStaysAsItIs) {
    // Latin, Greek, CJK, an emoji (4 bytes), U+00A0 and U+00FF (the code points right after C1),
    // and characters whose UTF-8 holds bytes 0x80..0x9f (U+00DB is C3 9B).
    for (const char* text : {"gr\xc3\xbc\xc3\x9f dich", "\xce\xb1\xce\xb2\xce\xb3", "\xe6\x97\xa5\xe6\x9c\xac",
                             "\xf0\x9f\x98\x80", "\xc2\xa0\xc3\xbf", "\xc3\x9b\xc3\x80\xc4\x9b",
                             "\xe2\x82\xac 5", "\xf4\x8f\xbf\xbf"})
        EXPECT_EQ(printable(text), text);
    // Bytes of other encodings (Latin-1 "caf\xe9") above 0x9f stay too, as before.
    EXPECT_EQ(printable("caf\xe9"), "caf\xe9");
    // A sequence cut short: its lead stays, a following C1 byte does not.
    EXPECT_EQ(printable("\xe2\x80"), "\xe2\\x80");
    EXPECT_EQ(printable("\xc3"), "\xc3");
}

TEST(Printable, KeepLinesKeepsNewlinesAndTabsOnly) {
    EXPECT_EQ(printable("A=1\n\tB=2\n", true), "A=1\n\tB=2\n");
    EXPECT_EQ(printable(std::string("x\ry\x1b\0z", 6), true), "x\\ry\\x1b\\x00z");
}

// ------------------------------------------------------------------ shell_quote

TEST(ShellQuote, PlainWordsStayAsTheyAre) {
    for (const char* w : {"make", "-j8", "--opt=a,b", "/usr/bin/x", "user@host:path", "100%", "a+b", "_.-"})
        EXPECT_EQ(shell_quote(w), w);
}

TEST(ShellQuote, AnythingElseIsSingleQuoted) {
    EXPECT_EQ(shell_quote(""), "''");
    EXPECT_EQ(shell_quote("a b"), "'a b'");
    EXPECT_EQ(shell_quote("~"), "'~'");
    EXPECT_EQ(shell_quote("$HOME"), "'$HOME'");
    EXPECT_EQ(shell_quote("*.c"), "'*.c'");
    EXPECT_EQ(shell_quote("a;b|c&d"), "'a;b|c&d'");
    EXPECT_EQ(shell_quote("two\nlines"), "'two\nlines'");
    EXPECT_EQ(shell_quote("\"q\""), "'\"q\"'");
    EXPECT_EQ(shell_quote("\\"), "'\\'");
}

TEST(ShellQuote, SingleQuotesAreClosedEscapedAndReopened) {
    EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
    EXPECT_EQ(shell_quote("'"), "''\\'''");
    EXPECT_EQ(shell_quote("''"), "''\\'''\\'''");
}

// ----------------------------------------------------------------------- format

TEST(Format, LikePrintf) {
    EXPECT_EQ(format("%d-%s-%c-%5.2f|%-3s|%%", 42, "x", 'y', 3.14159, "a"), "42-x-y- 3.14|a  |%");
    EXPECT_EQ(format("%s", ""), "");
    EXPECT_EQ(format("plain"), "plain");
    EXPECT_EQ(format("%u", 4294967295u), "4294967295");
}

TEST(Format, LongTextIsWhole) {
    std::string big(100000, 'z');
    std::string out = format("<%s>", big.c_str());
    EXPECT_EQ(out.size(), big.size() + 2);
    EXPECT_EQ(out, "<" + big + ">");
}

TEST(Format, VformatLeavesTheCallersListUsable) {
    auto twice = [](const char* fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        std::string a = vformat(fmt, ap);
        va_end(ap);
        return a;
    };
    EXPECT_EQ(twice("%s=%d", "n", 7), "n=7");
}

TEST(Format, CountedIsSingularForOne) {
    EXPECT_EQ(counted(0, "job", "jobs"), "0 jobs");
    EXPECT_EQ(counted(1, "job", "jobs"), "1 job");
    EXPECT_EQ(counted(2, "job", "jobs"), "2 jobs");
    EXPECT_EQ(counted(1, "process", "processes"), "1 process");
}

// --------------------------------------------------------------------- dir_name

TEST(DirName, TheDirectoryPart) {
    EXPECT_EQ(dir_name("/tmp/socket-ts.0"), "/tmp");
    EXPECT_EQ(dir_name("/a/b/c"), "/a/b");
    EXPECT_EQ(dir_name("/s"), "/");
    EXPECT_EQ(dir_name("/"), "/");
    EXPECT_EQ(dir_name("a/b"), "a");
    EXPECT_EQ(dir_name("sock"), ".");
    EXPECT_EQ(dir_name(""), ".");
    EXPECT_EQ(dir_name("./s"), ".");
}

// -------------------------------------------------------------------- Fd, die

bool is_open(int fd) { return fcntl(fd, F_GETFD) >= 0; }

TEST(FdTest, OwnsClosesAndMoves) {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    {
        Fd a(p[0]);
        Fd b(p[1]);
        EXPECT_TRUE(a);
        EXPECT_EQ(a.get(), p[0]);
        Fd c(std::move(a));
        EXPECT_FALSE(a);
        EXPECT_EQ(c.get(), p[0]);
        b = std::move(c);   // b's old descriptor is closed
        EXPECT_FALSE(is_open(p[1]));
        EXPECT_EQ(b.get(), p[0]);
        int raw = b.release();
        EXPECT_FALSE(b);
        EXPECT_EQ(raw, p[0]);
        b.reset(raw);
    }
    EXPECT_FALSE(is_open(p[0]));
    EXPECT_FALSE(Fd());
}

TEST(DieTest, PrintsTheMessageAndExits255) {
    EXPECT_EXIT(die("Error, %s %d", "queue full", 3), ::testing::ExitedWithCode(255), "^Error, queue full 3\n$");
}

TEST(DieTest, DieWithUsesTheCodeAndTheExactText) {
    EXPECT_EXIT(die_with(kExitQueueFull, "Error, queue full"), ::testing::ExitedWithCode(2), "^Error, queue full$");
}

// ----------------------------------------------------------------- open_private

class OpenPrivate : public ::testing::Test {
protected:
    TempDir dir_;
    std::string why_;
};

TEST_F(OpenPrivate, CreatesOwnerOnlyWhateverTheUmask) {
    mode_t old = umask(0);
    Fd fd = open_private(dir_ / "journal", O_RDWR | O_CREAT, &why_);
    umask(old);
    ASSERT_TRUE(fd) << why_;
    struct stat st;
    ASSERT_EQ(fstat(fd.get(), &st), 0);
    EXPECT_TRUE(S_ISREG(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    EXPECT_EQ(st.st_uid, geteuid());
    int fl = fcntl(fd.get(), F_GETFL);
    EXPECT_FALSE(fl & O_NONBLOCK) << "left non-blocking";
    EXPECT_TRUE(fcntl(fd.get(), F_GETFD) & FD_CLOEXEC);
}

TEST_F(OpenPrivate, OpensAnExistingFileWithoutTruncatingIt) {
    {
        Fd f(open((dir_ / "f").c_str(), O_WRONLY | O_CREAT, 0600));
        ASSERT_TRUE(write_all(f.get(), "keep", 4));
    }
    Fd fd = open_private(dir_ / "f", O_WRONLY | O_CREAT | O_APPEND, &why_);
    ASSERT_TRUE(fd) << why_;
    ASSERT_TRUE(write_all(fd.get(), "+more", 5));
    std::string content;
    ASSERT_TRUE(read_file(dir_ / "f", &content));
    EXPECT_EQ(content, "keep+more");
}

TEST_F(OpenPrivate, MissingFileWithoutCreate) {
    errno = 0;
    Fd fd = open_private(dir_ / "none", O_RDONLY, &why_);
    EXPECT_FALSE(fd);
    EXPECT_EQ(errno, ENOENT);
    EXPECT_EQ(why_, "cannot open " + (dir_ / "none") + ": " + strerror(ENOENT));
    Fd fd2 = open_private(dir_ / "no/dir", O_RDWR | O_CREAT, &why_);
    EXPECT_FALSE(fd2);
    EXPECT_EQ(why_, "cannot create " + (dir_ / "no/dir") + ": " + strerror(ENOENT));
}

TEST_F(OpenPrivate, RefusesASymlinkAndCreatesNothingThroughIt) {
    std::string target = dir_ / "target", link = dir_ / "link";
    ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
    errno = 0;
    Fd fd = open_private(link, O_RDWR | O_CREAT, &why_);
    EXPECT_FALSE(fd);
    EXPECT_EQ(errno, ELOOP);
    EXPECT_EQ(why_, link + " is a symbolic link");
    EXPECT_NE(access(target.c_str(), F_OK), 0) << "the link was followed";
}

TEST_F(OpenPrivate, RefusesAFifoWithoutWaitingOnIt) {
    std::string fifo = dir_ / "fifo";
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    double start = mono_now();
    errno = 0;
    Fd r = open_private(fifo, O_RDONLY, &why_);   // opens at once (non-blocking), then refused
    EXPECT_FALSE(r);
    EXPECT_EQ(errno, EPERM);
    EXPECT_EQ(why_, fifo + " is not a regular file");
    Fd w = open_private(fifo, O_WRONLY | O_CREAT, &why_);   // no reader: refused by open itself
    EXPECT_FALSE(w);
    EXPECT_EQ(why_, "cannot create " + fifo + ": " + strerror(ENXIO));
    EXPECT_LT(mono_now() - start, 1.0);
}

TEST_F(OpenPrivate, RefusesADirectory) {
    Fd fd = open_private(dir_.path(), O_RDONLY, &why_);
    EXPECT_FALSE(fd);
    EXPECT_EQ(why_, dir_.path() + " is not a regular file");
}

// In a directory others may write (sticky, like /tmp), a second name may have
// been planted there for another file of ours: refused.
TEST_F(OpenPrivate, RefusesAFileWithAnotherNameInASharedDirectory) {
    ASSERT_EQ(chmod(dir_.path().c_str(), 01777), 0);
    std::string a = dir_ / "a", b = dir_ / "b";
    Fd made(open(a.c_str(), O_WRONLY | O_CREAT, 0600));
    ASSERT_TRUE(made);
    ASSERT_EQ(link(a.c_str(), b.c_str()), 0);
    errno = 0;
    Fd fd = open_private(a, O_RDWR, &why_);
    EXPECT_FALSE(fd);
    EXPECT_EQ(errno, EPERM);
    EXPECT_EQ(why_, a + " has 2 links: in a directory that other users may write, another name may have "
                        "been made for it (remove the other links, or keep the queue in a directory that "
                        "only you can write)");
    EXPECT_TRUE(open_private(a, O_RDWR | kLinksOk, &why_)) << why_;   // a lock: only locked
    ASSERT_EQ(unlink(b.c_str()), 0);
    EXPECT_TRUE(open_private(a, O_RDWR, &why_)) << why_;
}

// In a directory only we can write, nobody else made the name: a second name
// elsewhere (another user's hard link, where protected_hardlinks is 0) is harmless.
TEST_F(OpenPrivate, AcceptsASecondNameMadeElsewhereInAnOwnerOnlyDirectory) {
    TempDir other;
    ASSERT_EQ(chmod(dir_.path().c_str(), 0700), 0);
    std::string a = dir_ / "a", b = other / "b";
    Fd made(open(a.c_str(), O_WRONLY | O_CREAT, 0600));
    ASSERT_TRUE(made);
    ASSERT_EQ(link(a.c_str(), b.c_str()), 0);
    EXPECT_TRUE(open_private(a, O_RDWR, &why_)) << why_;
}

TEST_F(OpenPrivate, RefusesAFileOfAnotherUser) {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to chown";
    std::string f = dir_ / "planted";
    Fd made(open(f.c_str(), O_WRONLY | O_CREAT, 0666));
    ASSERT_TRUE(made);
    ASSERT_EQ(chown(f.c_str(), 4321, 4321), 0);
    errno = 0;
    Fd fd = open_private(f, O_RDWR | O_CREAT, &why_);
    EXPECT_FALSE(fd);
    EXPECT_EQ(errno, EPERM);
    EXPECT_EQ(why_, f + " belongs to uid 4321");
}

// -------------------------------------------------------------------- lock_file

/* In a child: try to take the lock within timeout_ms; report "ok" or the reason. */
ChildResult lock_in_child(const std::string& path, int timeout_ms) {
    return scratch::run_child([&](int out) {
        std::string why;
        Fd fd = lock_file(path, &why, timeout_ms);
        std::string text = fd ? "ok" : why;
        (void)!write(out, text.data(), text.size());
        return fd ? 0 : 1;
    });
}

TEST(LockFile, CreatesAnOwnerOnlyFile) {
    TempDir d;
    std::string why;
    Fd fd = lock_file(d / "s.lock", &why);
    ASSERT_TRUE(fd) << why;
    struct stat st;
    ASSERT_EQ(stat((d / "s.lock").c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 07777, 0600u);
    struct flock lk {};
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    ASSERT_EQ(fcntl(fd.get(), F_GETLK, &lk), 0);
    EXPECT_EQ(lk.l_type, F_UNLCK) << "we hold it, so nothing stands in our way";
}

TEST(LockFile, ASecondHolderTimesOutNamingTheFirst) {
    TempDir d;
    std::string path = d / "s.lock", why;
    Fd held = lock_file(path, &why);
    ASSERT_TRUE(held) << why;
    double start = mono_now();
    ChildResult r = lock_in_child(path, 300);
    double took = mono_now() - start;
    EXPECT_TRUE(r.exited(1)) << r.out;
    std::string head = format("%s is held by process %d and was not released for ", path.c_str(), int(getpid()));
    EXPECT_EQ(r.out.rfind(head, 0), 0u) << r.out;
    EXPECT_EQ(r.out.substr(r.out.size() - 2), " s") << r.out;
    EXPECT_GE(took, 0.3) << "it did not wait";
    EXPECT_LT(took, 3.0);
}

TEST(LockFile, TheWaiterGetsItOnceReleased) {
    TempDir d;
    std::string path = d / "s.lock", why;
    Fd held = lock_file(path, &why);
    ASSERT_TRUE(held) << why;
    // Released while the child waits for it (the child starts with it held).
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(p[0]);
        std::string w;
        Fd fd = lock_file(path, &w, 5000);
        (void)!write(p[1], fd ? "ok" : "no", 2);
        _exit(0);
    }
    close(p[1]);
    sleep_seconds(0.1);
    held.reset();
    Fd rd(p[0]);
    std::string out;
    ASSERT_TRUE(read_all(rd.get(), &out));
    int st = 0;
    ASSERT_EQ(waitpid(pid, &st, 0), pid);
    EXPECT_EQ(out, "ok");
}

TEST(LockFile, FreeAgainWhenItsHolderEnds) {
    TempDir d;
    std::string path = d / "s.lock";
    ChildResult first = lock_in_child(path, 100);   // takes it and exits
    EXPECT_EQ(first.out, "ok");
    std::string why;
    EXPECT_TRUE(lock_file(path, &why, 0)) << why;
}

TEST(LockFile, RefusesALockFileSomeoneElsePlanted) {
    TempDir d;
    std::string path = d / "s.lock", why;
    ASSERT_EQ(symlink((d / "elsewhere").c_str(), path.c_str()), 0);
    EXPECT_FALSE(lock_file(path, &why, 0));
    EXPECT_EQ(why, path + " is a symbolic link");
}

// ------------------------------------------------------------ read_file, read_all

TEST(ReadFile, WholeFileWithAnyBytes) {
    TempDir d;
    std::string data;
    for (int i = 0; i < 200000; ++i) data += char(i * 7);   // NULs included, > one read
    {
        Fd f(open((d / "f").c_str(), O_WRONLY | O_CREAT, 0600));
        ASSERT_TRUE(write_all(f.get(), data.data(), data.size()));
    }
    std::string out = "old content";
    ASSERT_TRUE(read_file(d / "f", &out));
    EXPECT_EQ(out, data);   // replaced, not appended to
    ASSERT_TRUE(read_file("/dev/null", &out));
    EXPECT_EQ(out, "");
}

TEST(ReadFile, MissingFileIsFalse) {
    TempDir d;
    std::string out = "untouched";
    EXPECT_FALSE(read_file(d / "missing", &out));
    EXPECT_EQ(out, "untouched");
}

TEST(ReadAll, AppendsUntilEof) {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    Fd rd(p[0]);
    {
        Fd wr(p[1]);
        ASSERT_TRUE(write_all(wr.get(), "abc\0def", 7));
    }
    std::string out = ">";
    EXPECT_TRUE(read_all(rd.get(), &out));
    EXPECT_EQ(out, std::string(">abc\0def", 8));
}

TEST(ReadAll, ReadErrorIsFalse) {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    Fd rd(p[0]), wr(p[1]);
    std::string out;
    EXPECT_FALSE(read_all(wr.get(), &out));   // the write end cannot be read
    EXPECT_FALSE(read_all(-1, &out));
}

TEST(ReadExact, FalseOnAShortRead) {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    Fd rd(p[0]);
    {
        Fd wr(p[1]);
        ASSERT_TRUE(write_all(wr.get(), "12345", 5));
    }
    char buf[8] = {};
    EXPECT_TRUE(read_exact(rd.get(), buf, 3));
    EXPECT_STREQ(buf, "123");
    EXPECT_FALSE(read_exact(rd.get(), buf, 3));   // only 2 left, then EOF
}

// ------------------------------------------------------------------ sleep, time

TEST(SleepSeconds, SleepsAtLeastThatLong) {
    double start = mono_now();
    sleep_seconds(0.05);
    double took = mono_now() - start;
    EXPECT_GE(took, 0.049);
    EXPECT_LT(took, 1.0);
    start = mono_now();
    sleep_seconds(0);
    sleep_seconds(-5);
    EXPECT_LT(mono_now() - start, 0.01);
}

void on_alarm(int) {}

TEST(SleepSeconds, ASignalEndsItEarly) {
    struct sigaction sa {}, old {};
    sa.sa_handler = on_alarm;   // no SA_RESTART
    sigemptyset(&sa.sa_mask);
    ASSERT_EQ(sigaction(SIGALRM, &sa, &old), 0);
    itimerval it{};
    it.it_value.tv_usec = 50000;
    it.it_interval.tv_usec = 50000;   // again, should one come before the sleep
    ASSERT_EQ(setitimer(ITIMER_REAL, &it, nullptr), 0);
    double start = mono_now();
    sleep_seconds(5);
    double took = mono_now() - start;
    itimerval off{};
    setitimer(ITIMER_REAL, &off, nullptr);
    sigaction(SIGALRM, &old, nullptr);
    EXPECT_LT(took, 2.0);
    EXPECT_GE(took, 0.04);
}

TEST(Clocks, TheWallClockWithFractions) {
    double a = wall_now();
    EXPECT_LE(std::abs(a - double(time(nullptr))), 1.5);
    sleep_seconds(0.002);
    EXPECT_GT(wall_now(), a);
}

TEST(Clocks, AStepOfTheWallClockMovesNoMonotonicTime) {
    double wall = wall_now(), mono = mono_now();
    step_wall_clock_for_tests(-3600);
    EXPECT_NEAR(wall_now(), wall - 3600, 1.0);
    EXPECT_GE(mono_now(), mono);
    EXPECT_LT(mono_now(), mono + 1.0);
    step_wall_clock_for_tests(3600);
    EXPECT_NEAR(wall_now(), wall, 1.0);
}

// -------------------------------------------------------------------- is_zombie

TEST(IsZombie, AnExitedChildNotYetReaped) {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
        close(p[1]);
        char c;
        (void)!read(p[0], &c, 1);   // until the parent lets it go
        _exit(0);
    }
    close(p[0]);
    EXPECT_FALSE(is_zombie(pid)) << "a live child";
    close(p[1]);
    siginfo_t info{};
    ASSERT_EQ(waitid(P_PID, pid, &info, WEXITED | WNOWAIT), 0);   // ended, left unreaped
    EXPECT_TRUE(is_zombie(pid));
    ASSERT_EQ(waitpid(pid, nullptr, 0), pid);
    EXPECT_FALSE(is_zombie(pid)) << "reaped: no such process";
}

TEST(IsZombie, NotThisProcessNorANonexistentOne) {
    EXPECT_FALSE(is_zombie(getpid()));
    EXPECT_FALSE(is_zombie(1));
    EXPECT_FALSE(is_zombie(-1));
    EXPECT_FALSE(is_zombie(0x3fffffff));
}

// ----------------------------------------------------------- descriptors, flags

TEST(CloseOtherFds, ClosesAllButTheOnesKept) {
    ChildResult r = scratch::run_child([](int out) {
        if (dup2(out, 20) != 20 || dup2(out, 21) != 21 || dup2(out, 30) != 30 || dup2(out, 5) != 5) return 90;
        close(out);
        close_other_fds({21, 2, 5});
        std::string state;
        for (int fd : {5, 20, 21, 30}) state += format("%d:%s ", fd, is_open(fd) ? "open" : "closed");
        return write_all(21, state.data(), state.size()) ? 0 : 91;
    });
    EXPECT_TRUE(r.exited(0));
    EXPECT_EQ(r.out, "5:open 20:closed 21:open 30:closed ");
}

TEST(Flags, NonblockAndCloexec) {
    int p[2];
    ASSERT_EQ(pipe(p), 0);
    Fd a(p[0]), b(p[1]);
    ASSERT_TRUE(set_nonblock(a.get()));
    EXPECT_TRUE(fcntl(a.get(), F_GETFL) & O_NONBLOCK);
    char c;
    EXPECT_EQ(read(a.get(), &c, 1), -1);
    EXPECT_EQ(errno, EAGAIN);
    ASSERT_TRUE(set_cloexec(b.get()));
    EXPECT_TRUE(fcntl(b.get(), F_GETFD) & FD_CLOEXEC);
    EXPECT_FALSE(set_nonblock(-1));
    EXPECT_FALSE(set_cloexec(-1));
}

}  // namespace

// ------------------------------------------------------------ durations and times

TEST(Duration, ReadsItsGrammar) {
    struct {
        const char* text;
        double seconds;
    } good[] = {
        {"90", 90},        {"0", 0},          {"30s", 30},      {"5m", 300},        {"2h", 7200},
        {"1d", 86400},     {"1h30m", 5400},   {"1d2h3m4s", 93784}, {"1.5h", 5400}, {"0.25s", 0.25},
        {"2h5s", 7205},    {"10.5", 10.5},
    };
    for (const auto& g : good) {
        double s = -1;
        EXPECT_TRUE(parse_duration(g.text, &s)) << g.text;
        EXPECT_DOUBLE_EQ(s, g.seconds) << g.text;
    }
    const char* bad[] = {"", "s", "-5", "+5", "5x", "5 m", " 5", "5m1h", "1h1h", "1h30", "5.", ".5",
                         "1e3", "5ms", "99999999999d", "1h-2m", "m5"};
    for (const char* b : bad) {
        double s = 42;
        EXPECT_FALSE(parse_duration(b, &s)) << b;
        EXPECT_EQ(s, 42) << "untouched: " << b;
    }
}

namespace {
/* Local time is UTC while it lives. */
struct UtcZone {
    std::string old;
    bool had;
    UtcZone() : had(getenv("TZ") != nullptr) {
        if (had) old = getenv("TZ");
        setenv("TZ", "UTC", 1);
        tzset();
    }
    ~UtcZone() {
        if (had) setenv("TZ", old.c_str(), 1);
        else unsetenv("TZ");
        tzset();
    }
};
}  // namespace

TEST(AtTime, ATimeOfDayIsTheNextOne) {
    UtcZone utc;
    const double now = 1767225600 + 10 * 3600;   // 2026-01-01 10:00:00 UTC
    double at = 0;
    std::string err;
    ASSERT_TRUE(parse_at_time("12:30", now, &at, &err)) << err;
    EXPECT_EQ(at, now + 2.5 * 3600) << "later today";
    ASSERT_TRUE(parse_at_time("09:15:30", now, &at, &err)) << err;
    EXPECT_EQ(at, now + 86400 - 45 * 60 + 30) << "passed today: tomorrow";
    ASSERT_TRUE(parse_at_time("10:00", now, &at, &err)) << err;
    EXPECT_EQ(at, now + 86400) << "now is not after now: tomorrow";
    EXPECT_EQ(local_time_text(at), "2026-01-02 10:00:00");
}

TEST(AtTime, ADateAndTimeMustBeAfterNow) {
    UtcZone utc;
    const double now = 1767225600 + 10 * 3600;   // 2026-01-01 10:00:00 UTC
    double at = 0;
    std::string err;
    ASSERT_TRUE(parse_at_time("2026-01-01 10:00:01", now, &at, &err)) << err;
    EXPECT_EQ(at, now + 1);
    ASSERT_TRUE(parse_at_time("2026-03-04T05:06", now, &at, &err)) << err;
    EXPECT_EQ(local_time_text(at), "2026-03-04 05:06:00");
    at = 7;
    EXPECT_FALSE(parse_at_time("2026-01-01 09:59", now, &at, &err));
    EXPECT_EQ(err, "'2026-01-01 09:59' is in the past");
    EXPECT_FALSE(parse_at_time("2026-01-01 10:00:00", now, &at, &err)) << "now is the past too";
    EXPECT_FALSE(parse_at_time("2026-02-30 10:00", now, &at, &err));
    EXPECT_EQ(err, "'2026-02-30 10:00' is not a time that exists (local time)");
    for (const char* bad : {"", "1230", "12:3", "24:00", "12:60", "12:00:60", "2026-1-1 10:00", "2026-01-01",
                            "2026-01-01x10:00", "2026-13-01 10:00", "noon", "12:00 ", "12:00:00:00"}) {
        EXPECT_FALSE(parse_at_time(bad, now, &at, &err)) << bad;
        EXPECT_EQ(at, 7) << "untouched: " << bad;
    }
}

TEST(Duration, FormattedAsItIsRead) {
    EXPECT_EQ(format_duration(1), "1s");
    EXPECT_EQ(format_duration(0.5), "0.5s");
    EXPECT_EQ(format_duration(90), "1m30s");
    EXPECT_EQ(format_duration(5400), "1h30m");
    EXPECT_EQ(format_duration(86400 + 1), "1d1s");
    for (double d : {1.0, 0.5, 90.0, 5400.0, 86401.0}) {
        double back = 0;
        EXPECT_TRUE(parse_duration(format_duration(d), &back)) << d;
        EXPECT_EQ(back, d);
    }
}

TEST(Signal, NamesWithOrWithoutSigAndNumbers) {
    int sig = 0;
    EXPECT_TRUE(parse_signal("TERM", &sig));
    EXPECT_EQ(sig, SIGTERM);
    EXPECT_TRUE(parse_signal("SIGUSR1", &sig));
    EXPECT_EQ(sig, SIGUSR1);
    EXPECT_TRUE(parse_signal("int", &sig));
    EXPECT_EQ(sig, SIGINT);
    EXPECT_TRUE(parse_signal("9", &sig));
    EXPECT_EQ(sig, 9);
    for (const char* bad : {"", "0", "65", "FOO", "SIG", "-9", "TERM ", "SIGSIGTERM"}) {
        sig = 3;
        EXPECT_FALSE(parse_signal(bad, &sig)) << bad;
        EXPECT_EQ(sig, 3) << bad;
    }
}

/* A line to paste: exact once pasted into bash, and no control byte on the terminal. */
TEST(PasteQuote, PlainAsShellQuoteElseDollarQuotes) {
    EXPECT_EQ(paste_quote("ls"), shell_quote("ls"));
    EXPECT_EQ(paste_quote("a b"), shell_quote("a b"));
    EXPECT_EQ(paste_quote("a\nb"), "$'a\\x0ab'");
    EXPECT_EQ(paste_quote("it's\t\\"), "$'it\\'s\\x09\\\\'");
    EXPECT_EQ(paste_quote("\xc3\xa9\x1b[2J"), "$'\\xc3\\xa9\\x1b[2J'");
}
