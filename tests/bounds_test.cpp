/*
 * bounds_test.cpp — what other users may hold (bounds.h), alone: no server,
 * no sockets. Connections per user and of all other users, buffered input
 * and unread answers per user across connections, everything given back
 * when a connection goes (once, however often it is said), the owner and
 * root never bounded, and the rate of log lines about other users.
 */
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bounds.h"

namespace {

constexpr uid_t kOwner = 1000, kAlice = 2000, kBob = 3000;

TEST(Bounds, OwnerAndRootAreNeverBounded) {
    Bounds b(kOwner);
    for (uid_t uid : {kOwner, uid_t(0)}) {
        Charges c;
        std::string why;
        EXPECT_TRUE(b.admit(&c, uid, 100000, &why));
        EXPECT_FALSE(c.bounded());
        EXPECT_TRUE(b.charge_input(&c, size_t(1) << 40, &why));
        EXPECT_TRUE(b.charge_unread(&c, size_t(1) << 40, &why));
        EXPECT_EQ(c.input(), 0u);
        EXPECT_EQ(b.user_input(uid), 0u);
        b.release(&c);
    }
    EXPECT_EQ(b.others_conns(), 0u);
}

TEST(Bounds, PlainConnectionsPerUser) {
    Bounds b(kOwner);
    Charges c;
    std::string why;
    EXPECT_TRUE(b.admit(&c, kAlice, kUserMaxConns - 1, &why));
    EXPECT_TRUE(c.bounded());
    Charges d;
    EXPECT_FALSE(b.admit(&d, kAlice, kUserMaxConns, &why));
    EXPECT_EQ(why, "too many connections of this user");
    EXPECT_FALSE(d.bounded());
    EXPECT_EQ(b.others_conns(), 1u);   // the refused one is not counted
}

TEST(Bounds, AllOtherUsersTogetherLeaveDescriptors) {
    Bounds b(kOwner);
    b.set_descriptors(4);   // few: half of them
    std::vector<Charges> cs(3);
    std::string why;
    EXPECT_TRUE(b.admit(&cs[0], kAlice, 0, &why));
    EXPECT_TRUE(b.admit(&cs[1], kBob, 0, &why));
    EXPECT_FALSE(b.admit(&cs[2], kBob, 1, &why));
    EXPECT_EQ(why, "too many connections of other users");
    Charges owner;
    EXPECT_TRUE(b.admit(&owner, kOwner, 0, &why));   // the owner always gets in
    b.release(&cs[0]);
    EXPECT_TRUE(b.admit(&cs[2], kBob, 1, &why));
    EXPECT_EQ(b.others_conns(), 2u);

    Bounds many(kOwner);
    many.set_descriptors(2 * kFdReserve + 2);   // more: all but kFdReserve
    std::vector<Charges> more(kFdReserve + 3);
    size_t in = 0;
    for (Charges& c : more) in += many.admit(&c, kAlice + uid_t(in), 0, &why);
    EXPECT_EQ(in, kFdReserve + 2);
}

TEST(Bounds, InputIsPerUserAcrossConnections) {
    BoundLimits l;
    l.user_input = 100;
    Bounds b(kOwner, l);
    Charges a1, a2, bob;
    std::string why;
    ASSERT_TRUE(b.admit(&a1, kAlice, 0, &why));
    ASSERT_TRUE(b.admit(&a2, kAlice, 1, &why));
    ASSERT_TRUE(b.admit(&bob, kBob, 0, &why));
    EXPECT_TRUE(b.charge_input(&a1, 60, &why));
    EXPECT_TRUE(b.charge_input(&a2, 40, &why));
    EXPECT_FALSE(b.charge_input(&a2, 1, &why));
    EXPECT_EQ(why, "more than 0 MiB of requests buffered");   // the bound, in MiB (16 by default)
    EXPECT_EQ(a2.input(), 40u);                                // a refused charge holds nothing more
    EXPECT_TRUE(b.charge_input(&bob, 100, &why));              // another user has a bound of their own
    b.release_input(&a1, 10);
    EXPECT_EQ(b.user_input(kAlice), 90u);
    EXPECT_TRUE(b.charge_input(&a2, 10, &why));
    b.release_input(&a1, 1000);   // never more than it holds
    EXPECT_EQ(a1.input(), 0u);
    EXPECT_EQ(b.user_input(kAlice), 50u);
}

TEST(Bounds, DefaultInputBoundSaysSixteenMiB) {
    Bounds b(kOwner);
    Charges c;
    std::string why;
    ASSERT_TRUE(b.admit(&c, kAlice, 0, &why));
    EXPECT_TRUE(b.charge_input(&c, kUserMaxInput, &why));
    EXPECT_FALSE(b.charge_input(&c, 1, &why));
    EXPECT_EQ(why, "more than 16 MiB of requests buffered");
}

TEST(Bounds, UnreadIsReplacedAndBounded) {
    BoundLimits l;
    l.user_unread = 100;
    Bounds b(kOwner, l);
    Charges a1, a2;
    std::string why;
    ASSERT_TRUE(b.admit(&a1, kAlice, 0, &why));
    ASSERT_TRUE(b.admit(&a2, kAlice, 1, &why));
    EXPECT_TRUE(b.charge_unread(&a1, 70, &why));
    EXPECT_TRUE(b.charge_unread(&a1, 50, &why));   // the answer shrank as it was sent: 50, not 120
    EXPECT_EQ(b.user_unread(kAlice), 50u);
    EXPECT_TRUE(b.charge_unread(&a2, 50, &why));
    EXPECT_FALSE(b.charge_unread(&a2, 51, &why));
    EXPECT_EQ(why, "too many unread answers");
    EXPECT_EQ(a2.unread(), 0u);                     // refused: it holds nothing (it is closed)
    EXPECT_EQ(b.user_unread(kAlice), 50u);
    b.release_unread(&a1);
    EXPECT_EQ(b.user_unread(kAlice), 0u);
}

TEST(Bounds, ReleaseGivesEverythingBackOnce) {
    Bounds b(kOwner);
    Charges a, other;
    std::string why;
    ASSERT_TRUE(b.admit(&a, kAlice, 0, &why));
    ASSERT_TRUE(b.admit(&other, kAlice, 1, &why));
    ASSERT_TRUE(b.charge_input(&a, 1000, &why));
    ASSERT_TRUE(b.charge_unread(&a, 2000, &why));
    ASSERT_TRUE(b.charge_input(&other, 5, &why));
    b.release(&a);
    b.release(&a);   // said twice: counted down once
    EXPECT_EQ(b.others_conns(), 1u);
    EXPECT_EQ(b.user_input(kAlice), 5u);
    EXPECT_EQ(b.user_unread(kAlice), 0u);
    b.release(&other);
    EXPECT_EQ(b.others_conns(), 0u);
    EXPECT_EQ(b.user_input(kAlice), 0u);
}

TEST(Bounds, LogLinesAboutOtherUsersAreRateLimited) {
    Bounds b(kOwner);
    size_t left = 99;
    EXPECT_TRUE(b.may_log(100.0, &left));
    EXPECT_EQ(left, 0u);
    EXPECT_FALSE(b.may_log(101.0, &left));
    EXPECT_FALSE(b.may_log(109.9, &left));
    EXPECT_TRUE(b.may_log(110.0, &left));
    EXPECT_EQ(left, 2u);   // the two left out since
    EXPECT_FALSE(b.may_log(119.0, &left));
    EXPECT_TRUE(b.may_log(120.5, &left));
    EXPECT_EQ(left, 1u);
}

}  // namespace

TEST(Bounds, JobsOfAnotherUserAreCappedInNumberAndSize) {
    Bounds b(kOwner);
    b.set_job_caps(3, 1000);
    std::string why;
    EXPECT_TRUE(b.may_queue(kAlice, 2, 0, 10, &why));
    EXPECT_FALSE(b.may_queue(kAlice, 3, 0, 10, &why));
    EXPECT_NE(why.find("uid 2000 has 3 jobs queued or running here"), std::string::npos) << why;
    EXPECT_NE(why.find("TS_USER_MAXJOBS=3"), std::string::npos) << why;
    why.clear();
    EXPECT_TRUE(b.may_queue(kAlice, 0, 990, 10, &why)) << "exactly at the size cap";
    EXPECT_FALSE(b.may_queue(kAlice, 0, 990, 11, &why));
    EXPECT_NE(why.find("this job (11 bytes) would take the jobs of uid 2000 in this queue past 1000 bytes"),
              std::string::npos) << why;
    for (uid_t uid : {kOwner, uid_t(0)}) EXPECT_TRUE(b.may_queue(uid, 1u << 30, 1u << 30, 1u << 30, &why));
}
