/*
 * runner_test.cpp — the runner's link to its server (runner.h): a server
 * that cannot be reached (one that dies at start, say) is tried again with
 * a growing delay, not in a loop, and the failures reach the queue's log
 * now and then.
 */
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <sys/socket.h>
#include <unistd.h>

#include "runner.h"
#include "util.h"

namespace {

TEST(ServerLink, AnUnreachableServerIsTriedWithAGrowingDelay) {
    char templ[] = "/tmp/ts-runner-test.XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    std::string dir = templ, log = dir + "/s.error";
    int calls = 0;
    ServerLink link(Fd(), [&](std::string* why) {
        ++calls;
        *why = "The server didn't come up. (it dies at start)";
        return Fd();
    }, 7);
    link.set_log(log);
    double start = mono_now();
    int spins = 0;
    while (mono_now() - start < 0.5) {   // a runner's wait loop, woken as often as it likes
        EXPECT_FALSE(link.try_reattach());
        ++spins;
    }
    // 50, 100, 200 ms...: a handful of attempts in half a second, whatever the spins.
    EXPECT_GE(calls, 3);
    EXPECT_LE(calls, 5) << spins << " spins";
    std::string text;
    ASSERT_TRUE(read_file(log, &text));
    EXPECT_NE(text.find("job 7: cannot reach the server (The server didn't come up. (it dies at start))"),
              std::string::npos)
        << text;
    size_t lines = 0;
    for (char c : text) lines += c == '\n';
    EXPECT_LE(lines, 2u) << "logged now and then, not at every attempt:\n" << text;
    unlink(log.c_str());
    rmdir(dir.c_str());
}

TEST(ServerLink, ReachingTheServerAgainStartsTheDelayAfresh) {
    int calls = 0;
    bool up = false;
    Fd server_end;   // the "server" reads nothing, but is there
    ServerLink link(Fd(), [&](std::string*) {
        ++calls;
        if (!up) return Fd();
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Fd();
        server_end.reset(sv[1]);
        return Fd(sv[0]);
    }, 1);
    EXPECT_FALSE(link.try_reattach());
    EXPECT_FALSE(link.try_reattach());   // too soon: not tried
    EXPECT_EQ(calls, 1);
    up = true;
    usleep(60 * 1000);
    EXPECT_TRUE(link.try_reattach());
    EXPECT_EQ(calls, 2);
}

}  // namespace
