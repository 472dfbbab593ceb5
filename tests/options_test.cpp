/*
 * options_test.cpp — the command line (options.h), per ts-spec §1.1, and the
 * options table: the parser, -h and the man page ts.1 all agree with it.
 */
#include <gtest/gtest.h>

#include <initializer_list>
#include <csignal>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "options.h"
#include "util.h"

namespace {

struct Parsed {
    bool ok = false;
    Options o;
    std::string err;
};

Parsed parse(std::initializer_list<const char*> args) {
    std::vector<const char*> v(args);
    Parsed p;
    p.ok = parse_options(static_cast<int>(v.size()), v.data(), &p.o, &p.err);
    return p;
}

Parsed parse_vec(const std::vector<std::string>& args) {
    std::vector<const char*> v;
    for (const auto& a : args) v.push_back(a.c_str());
    Parsed p;
    p.ok = parse_options(static_cast<int>(v.size()), v.data(), &p.o, &p.err);
    return p;
}

using Words = std::vector<std::string>;

}  // namespace

TEST(Options, DefaultIsList) {
    Parsed p = parse({"ts"});
    ASSERT_TRUE(p.ok) << p.err;
    EXPECT_EQ(p.err, "");
    EXPECT_EQ(p.o.action, Action::List);
    EXPECT_EQ(p.o.id, -1);
    EXPECT_TRUE(p.o.command.empty());
    EXPECT_TRUE(p.o.store_output);
    EXPECT_FALSE(p.o.gzip);
    EXPECT_FALSE(p.o.stderr_apart);
    EXPECT_FALSE(p.o.foreground);
    EXPECT_FALSE(p.o.mail);
    EXPECT_FALSE(p.o.no_block);
    EXPECT_FALSE(p.o.depends);
    EXPECT_FALSE(p.o.label.has_value());
    EXPECT_EQ(p.o.num_slots, 1);
    EXPECT_EQ(p.o.argv0, "ts");
}

TEST(Options, Argv0IsKeptVerbatim) {
    EXPECT_EQ(parse({"/usr/bin/tsp"}).o.argv0, "/usr/bin/tsp");
    EXPECT_EQ(parse({"tsp", "-h"}).o.argv0, "tsp");
    Parsed p = parse({"./ts", "-K"});
    EXPECT_EQ(p.o.argv0, "./ts");
    EXPECT_EQ(p.o.action, Action::KillServer);
}

TEST(Options, WordsBecomeTheCommand) {
    Parsed p = parse({"ts", "sleep", "10"});
    ASSERT_TRUE(p.ok) << p.err;
    EXPECT_EQ(p.o.action, Action::Enqueue);
    EXPECT_EQ(p.o.command, (Words{"sleep", "10"}));
}

TEST(Options, DashLWithCommandEnqueues) {
    Parsed p = parse({"ts", "-l", "true"});
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.o.action, Action::Enqueue);
    EXPECT_EQ(p.o.command, Words{"true"});
    Parsed l = parse({"ts", "-l"});
    ASSERT_TRUE(l.ok);
    EXPECT_EQ(l.o.action, Action::List);
    EXPECT_TRUE(l.o.command.empty());
}

TEST(Options, StopsAtFirstNonOption) {
    Parsed p = parse({"ts", "-n", "echo", "-n", "hi"});
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.o.action, Action::Enqueue);
    EXPECT_FALSE(p.o.store_output);
    EXPECT_EQ(p.o.command, (Words{"echo", "-n", "hi"}));

    Parsed q = parse({"ts", "echo", "-K"});
    ASSERT_TRUE(q.ok);
    EXPECT_EQ(q.o.action, Action::Enqueue);
    EXPECT_EQ(q.o.command, (Words{"echo", "-K"}));
}

TEST(Options, LoneDashIsAWord) {
    Parsed p = parse({"ts", "-", "x"});
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.o.action, Action::Enqueue);
    EXPECT_EQ(p.o.command, (Words{"-", "x"}));
}

TEST(Options, DoubleDashEndsOptions) {
    Parsed p = parse({"ts", "--", "-x"});
    ASSERT_TRUE(p.ok) << p.err;
    EXPECT_EQ(p.o.action, Action::Enqueue);
    EXPECT_EQ(p.o.command, Words{"-x"});

    Parsed q = parse({"ts", "-n", "--", "--", "a"});
    ASSERT_TRUE(q.ok);
    EXPECT_FALSE(q.o.store_output);
    EXPECT_EQ(q.o.command, (Words{"--", "a"}));

    Parsed r = parse({"ts", "--"});
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.o.action, Action::List);
    EXPECT_TRUE(r.o.command.empty());
}

TEST(Options, ClusteredFlags) {
    Parsed p = parse({"ts", "-nf", "cmd"});
    ASSERT_TRUE(p.ok);
    EXPECT_FALSE(p.o.store_output);
    EXPECT_TRUE(p.o.foreground);
    EXPECT_EQ(p.o.command, Words{"cmd"});

    Parsed q = parse({"ts", "-gEBd", "cmd"});
    ASSERT_TRUE(q.ok);
    EXPECT_TRUE(q.o.gzip);
    EXPECT_TRUE(q.o.stderr_apart);
    EXPECT_TRUE(q.o.no_block);
    EXPECT_TRUE(q.o.depends);
    EXPECT_EQ(q.o.depend_on, -1);
    EXPECT_TRUE(q.o.store_output);
    EXPECT_FALSE(q.o.foreground);
}

TEST(Options, AttachedArgument) {
    Parsed p = parse({"ts", "-w5"});
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.o.action, Action::Wait);
    EXPECT_EQ(p.o.id, 5);

    Parsed q = parse({"ts", "-nL", "lab", "x"});   // argument in the next word after a cluster
    ASSERT_TRUE(q.ok);
    EXPECT_FALSE(q.o.store_output);
    EXPECT_EQ(q.o.label, std::optional<std::string>("lab"));
    EXPECT_EQ(q.o.command, Words{"x"});

    Parsed r = parse({"ts", "-nN3", "x"});   // argument attached after a cluster
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.o.num_slots, 3);
    EXPECT_EQ(r.o.command, Words{"x"});

    Parsed s = parse({"ts", "-Llab", "x"});
    ASSERT_TRUE(s.ok);
    EXPECT_EQ(s.o.label, std::optional<std::string>("lab"));
}

TEST(Options, IdActionsWithIds) {
    struct {
        const char* flag;
        Action action;
    } cases[] = {
        {"-r", Action::Remove}, {"-t", Action::Tail},  {"-c", Action::Cat},
        {"-o", Action::Output}, {"-p", Action::Pid},   {"-w", Action::Wait},
        {"-k", Action::Kill},   {"-u", Action::Urgent}, {"-s", Action::State},
        {"-i", Action::Info},
    };
    for (const auto& c : cases) {
        Parsed p = parse({"ts", c.flag, "7"});
        ASSERT_TRUE(p.ok) << c.flag;
        EXPECT_EQ(p.o.action, c.action) << c.flag;
        EXPECT_EQ(p.o.id, 7) << c.flag;
        Parsed last = parse({"ts", c.flag});
        ASSERT_TRUE(last.ok) << c.flag;
        EXPECT_EQ(last.o.action, c.action) << c.flag;
        EXPECT_EQ(last.o.id, -1) << c.flag;
    }
}

TEST(Options, IdFlagAsLastWordMeansLastJob) {
    Parsed p = parse({"ts", "-n", "-w"});
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.o.action, Action::Wait);
    EXPECT_EQ(p.o.id, -1);

    Parsed q = parse({"ts", "-nw"});   // last in a cluster that is the last word
    ASSERT_TRUE(q.ok);
    EXPECT_EQ(q.o.action, Action::Wait);
    EXPECT_EQ(q.o.id, -1);
    EXPECT_FALSE(q.o.store_output);

    Parsed r = parse({"ts", "-w", "-1"});
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.o.action, Action::Wait);
    EXPECT_EQ(r.o.id, -1);

    Parsed s = parse({"ts", "-S"});
    ASSERT_TRUE(s.ok);
    EXPECT_EQ(s.o.action, Action::GetSlots);
}

TEST(Options, NextWordIsTakenAsId) {
    Parsed p = parse({"ts", "-t", "-l"});
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.o.action, Action::Tail);
    EXPECT_EQ(p.o.id, 0);   // atoi("-l")
    EXPECT_TRUE(p.o.command.empty());

    Parsed q = parse({"ts", "-c", "foo"});
    ASSERT_TRUE(q.ok);
    EXPECT_EQ(q.o.action, Action::Cat);
    EXPECT_EQ(q.o.id, 0);
    EXPECT_TRUE(q.o.command.empty());

    Parsed r = parse({"ts", "-wn"});   // attached garbage
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.o.action, Action::Wait);
    EXPECT_EQ(r.o.id, 0);
    EXPECT_TRUE(r.o.store_output);   // "n" was the argument, not a flag
}

TEST(Options, LastActionWins) {
    EXPECT_EQ(parse({"ts", "-C", "-K"}).o.action, Action::KillServer);
    EXPECT_EQ(parse({"ts", "-K", "-C"}).o.action, Action::Clear);
    Parsed p = parse({"ts", "-S", "2", "-S"});
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.o.action, Action::GetSlots);
    Parsed q = parse({"ts", "-S", "4"});
    ASSERT_TRUE(q.ok);
    EXPECT_EQ(q.o.action, Action::SetSlots);
    EXPECT_EQ(q.o.slots, 4);
    Parsed r = parse({"ts", "-w", "3", "-s", "5"});
    EXPECT_EQ(r.o.action, Action::State);
    EXPECT_EQ(r.o.id, 5);
    EXPECT_EQ(parse({"ts", "-h", "-V"}).o.action, Action::Version);
    EXPECT_EQ(parse({"ts", "-V", "-h"}).o.action, Action::Help);
}

TEST(Options, OtherActionsIgnoreTrailingWords) {
    Parsed p = parse({"ts", "-K", "echo", "hi"});
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.o.action, Action::KillServer);
    EXPECT_TRUE(p.o.command.empty());
    Parsed q = parse({"ts", "-h", "extra"});
    ASSERT_TRUE(q.ok);
    EXPECT_EQ(q.o.action, Action::Help);
    EXPECT_TRUE(q.o.command.empty());
}

TEST(Options, ZeroSlotsIsAnError) {
    for (auto args : {std::vector<const char*>{"ts", "-S", "0"},
                      std::vector<const char*>{"ts", "-S", "0", "-K"},
                      std::vector<const char*>{"ts", "-S", "0", "-S"},
                      std::vector<const char*>{"ts", "-S", "-3"},
                      std::vector<const char*>{"ts", "-S", "-S", "2"},
                      std::vector<const char*>{"ts", "-Sx"}}) {
        Parsed p;
        p.ok = parse_options(static_cast<int>(args.size()), args.data(), &p.o, &p.err);
        EXPECT_FALSE(p.ok) << args[1];
        EXPECT_EQ(p.err, "You should set at minimum 1 slot.\n") << args[1];
    }
}

TEST(Options, WrongOption) {
    Parsed p = parse({"ts", "-x"});
    EXPECT_FALSE(p.ok);
    EXPECT_EQ(p.err, "Wrong option x.\n");
    Parsed q = parse({"ts", "-nZ", "cmd"});
    EXPECT_FALSE(q.ok);
    EXPECT_EQ(q.err, "Wrong option Z.\n");
    Parsed r = parse({"ts", "-:"});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.err, "Wrong option :.\n");
    Parsed s = parse({"ts", "--long"});
    EXPECT_FALSE(s.ok);
    EXPECT_EQ(s.err, "Wrong option -.\n");
}

TEST(Options, MissingArgument) {
    for (const char* f : {"L", "N", "D", "U"}) {
        std::string flag = std::string("-") + f;
        Parsed p = parse_vec({"ts", flag});
        EXPECT_FALSE(p.ok) << f;
        EXPECT_EQ(p.err, std::string("Option ") + f + " missing argument.\n");
        Parsed q = parse_vec({"ts", "-n", "-n" + std::string(f)});
        EXPECT_FALSE(q.ok) << f;
        EXPECT_EQ(q.err, std::string("Option ") + f + " missing argument.\n");
    }
}

TEST(Options, SwapIds) {
    Parsed p = parse({"ts", "-U", "1-2"});
    ASSERT_TRUE(p.ok) << p.err;
    EXPECT_EQ(p.o.action, Action::Swap);
    EXPECT_EQ(p.o.swap_a, 1);
    EXPECT_EQ(p.o.swap_b, 2);

    Parsed q = parse({"ts", "-U", "3-x"});
    ASSERT_TRUE(q.ok) << q.err;
    EXPECT_EQ(q.o.swap_a, 3);
    EXPECT_EQ(q.o.swap_b, 0);

    Parsed r = parse({"ts", "-U", "-3"});
    ASSERT_TRUE(r.ok) << r.err;
    EXPECT_EQ(r.o.swap_a, 0);
    EXPECT_EQ(r.o.swap_b, 3);

    Parsed s = parse({"ts", "-U", "1-2-3"});
    ASSERT_TRUE(s.ok) << s.err;
    EXPECT_EQ(s.o.swap_a, 1);
    EXPECT_EQ(s.o.swap_b, 2);

    Parsed t = parse({"ts", "-U10-20"});
    ASSERT_TRUE(t.ok) << t.err;
    EXPECT_EQ(t.o.swap_a, 10);
    EXPECT_EQ(t.o.swap_b, 20);
}

TEST(Options, SwapErrors) {
    Parsed p = parse({"ts", "-U", "1"});
    EXPECT_FALSE(p.ok);
    EXPECT_EQ(p.err, "Wrong <id-id> for -U.\n");

    std::string long_arg = "1-" + std::string(48, '2');   // 50 chars
    ASSERT_EQ(long_arg.size(), 50u);
    Parsed q = parse_vec({"ts", "-U", long_arg});
    EXPECT_FALSE(q.ok);
    EXPECT_EQ(q.err, "Wrong <id-id> for -U.\n");

    std::string ok_arg = "1-" + std::string(47, '0');       // 49 chars: b = 0
    Parsed ok = parse_vec({"ts", "-U", ok_arg});
    EXPECT_TRUE(ok.ok) << ok.err;
    EXPECT_EQ(ok.o.swap_a, 1);
    EXPECT_EQ(ok.o.swap_b, 0);

    Parsed r = parse({"ts", "-U", "2-2"});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.err, "Wrong <id-id> for -U. Use different ids.\n");

    Parsed s = parse({"ts", "-U", "x-y"});   // both 0
    EXPECT_FALSE(s.ok);
    EXPECT_EQ(s.err, "Wrong <id-id> for -U. Use different ids.\n");
}

TEST(Options, MailNeedsStoredUncompressedOutput) {
    const std::string msg = "For e-mail, you should store the output (not through gzip)\n";
    Parsed p = parse({"ts", "-m", "-n", "cmd"});
    EXPECT_FALSE(p.ok);
    EXPECT_EQ(p.err, msg);
    Parsed q = parse({"ts", "-g", "-m", "cmd"});
    EXPECT_FALSE(q.ok);
    EXPECT_EQ(q.err, msg);
    Parsed r = parse({"ts", "-mn"});
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.err, msg);
    Parsed ok = parse({"ts", "-m", "-E", "cmd"});
    ASSERT_TRUE(ok.ok) << ok.err;
    EXPECT_TRUE(ok.o.mail);
    EXPECT_EQ(ok.o.action, Action::Enqueue);
}

TEST(Options, NegativeSlotCountIsZero) {
    Parsed p = parse({"ts", "-N", "-3", "true"});
    ASSERT_TRUE(p.ok) << p.err;
    EXPECT_EQ(p.o.num_slots, 0);
    EXPECT_EQ(p.o.command, Words{"true"});
    Parsed q = parse({"ts", "-N", "4", "-N", "2", "x"});
    ASSERT_TRUE(q.ok);
    EXPECT_EQ(q.o.num_slots, 2);
    Parsed r = parse({"ts", "-N", "abc", "x"});
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.o.num_slots, 0);
}

TEST(Options, DependencyFlagsShareState) {
    Parsed p = parse({"ts", "-D", "3", "-d", "x"});
    ASSERT_TRUE(p.ok);
    EXPECT_TRUE(p.o.depends);
    EXPECT_EQ(p.o.depend_on, -1);

    Parsed q = parse({"ts", "-d", "-D", "3", "x"});
    ASSERT_TRUE(q.ok);
    EXPECT_TRUE(q.o.depends);
    EXPECT_EQ(q.o.depend_on, 3);

    Parsed r = parse({"ts", "-D", "abc", "cmd"});
    ASSERT_TRUE(r.ok);
    EXPECT_TRUE(r.o.depends);
    EXPECT_EQ(r.o.depend_on, 0);
    EXPECT_EQ(r.o.command, Words{"cmd"});

    Parsed s = parse({"ts", "-D", "-5", "cmd"});
    ASSERT_TRUE(s.ok);
    EXPECT_EQ(s.o.depend_on, -5);
}

TEST(Options, DependencyListsAreStrictAndTheFirstIdIsTaskSpoolers) {
    Parsed p = parse({"ts", "-D", "3,4,5", "x"});
    ASSERT_TRUE(p.ok);
    EXPECT_TRUE(p.o.depends);
    EXPECT_EQ(p.o.depend_on, 3);   // sent as task-spooler's -D 3 ...
    EXPECT_EQ(p.o.more_depends, (std::vector<int>{4, 5}));   // ... and the rest as a setting

    Parsed dup = parse({"ts", "-D", "0,1,0", "x"});
    ASSERT_TRUE(dup.ok);
    EXPECT_EQ(dup.o.depend_on, 0);
    EXPECT_EQ(dup.o.more_depends, std::vector<int>{1});

    for (const char* bad : {"0,", ",1", "0,,1", "0,-1", "0,x", "1,2x", "0, 1", "1,9999999999"}) {
        Parsed b = parse({"ts", "-D", bad, "x"});
        EXPECT_FALSE(b.ok) << bad;
        EXPECT_NE(b.err.find("-D needs a job id or a list"), std::string::npos) << b.err;
    }
    Parsed d = parse({"ts", "-D", "1,2", "-d", "x"});   // -d and -D share their state
    ASSERT_TRUE(d.ok);
    EXPECT_EQ(d.o.depend_on, -1);
    EXPECT_TRUE(d.o.more_depends.empty());
    Parsed one = parse({"ts", "-D", "1,2", "-D", "7", "x"});
    ASSERT_TRUE(one.ok);
    EXPECT_EQ(one.o.depend_on, 7);
    EXPECT_TRUE(one.o.more_depends.empty());
}

TEST(Options, AfterTakesAListOfIds) {
    Parsed p = parse({"ts", "--after=3,4", "-D", "5", "x"});
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.o.after, (std::vector<int>{3, 4}));
    EXPECT_EQ(p.o.depend_on, 5);
    Parsed w = parse({"ts", "--after", "6", "x"});
    ASSERT_TRUE(w.ok);
    EXPECT_EQ(w.o.after, std::vector<int>{6});
    EXPECT_FALSE(w.o.depends);
    for (const char* bad : {"", "a", "-1", "3,", "3;4"}) {
        Parsed b = parse({"ts", (std::string("--after=") + bad).c_str(), "x"});
        EXPECT_FALSE(b.ok) << bad;
        EXPECT_NE(b.err.find("--after needs a list of job ids"), std::string::npos) << b.err;
    }
}

TEST(Options, WaitTakesAListOfIdsStrictlyAndOneIdAsTaskSpooler) {
    Parsed p = parse({"ts", "-w", "3,4,5"});
    ASSERT_TRUE(p.ok);
    EXPECT_EQ(p.o.action, Action::Wait);
    EXPECT_EQ(p.o.wait_ids, (std::vector<int>{3, 4, 5}));
    Parsed one = parse({"ts", "-w", "3x"});   // no comma: atoi, as task-spooler
    ASSERT_TRUE(one.ok);
    EXPECT_EQ(one.o.id, 3);
    EXPECT_TRUE(one.o.wait_ids.empty());
    Parsed again = parse({"ts", "-w", "3,4", "-w", "6"});   // the last -w wins
    ASSERT_TRUE(again.ok);
    EXPECT_TRUE(again.o.wait_ids.empty());
    EXPECT_EQ(again.o.id, 6);
    for (const char* bad : {"3,", ",3", "3,,4", "-1,2", "3,x"}) {
        Parsed b = parse({"ts", "-w", bad});
        EXPECT_FALSE(b.ok) << bad;
        EXPECT_NE(b.err.find("-w needs a job id or a list of job ids"), std::string::npos) << b.err;
    }
}

TEST(Options, WaitStartRequeueAndUnique) {
    Parsed s = parse({"ts", "--wait-start=4"});
    ASSERT_TRUE(s.ok);
    EXPECT_EQ(s.o.action, Action::WaitStart);
    EXPECT_EQ(s.o.id, 4);
    Parsed a = parse({"ts", "--wait-all"});
    ASSERT_TRUE(a.ok);
    EXPECT_EQ(a.o.action, Action::WaitAll);
    Parsed r = parse({"ts", "--requeue", "failed"});
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.o.action, Action::Requeue);
    EXPECT_TRUE(r.o.requeue_failed);
    Parsed u = parse({"ts", "--unique", "make", "x"});
    ASSERT_TRUE(u.ok);
    EXPECT_TRUE(u.o.unique);
    EXPECT_EQ(u.o.command, (std::vector<std::string>{"make", "x"}));
    for (const char* bad : {"", "x", "-1", "3,4", "fail"}) {
        EXPECT_FALSE(parse({"ts", (std::string("--wait-start=") + bad).c_str()}).ok) << bad;
        EXPECT_FALSE(parse({"ts", (std::string("--requeue=") + bad).c_str()}).ok) << bad;
    }
    EXPECT_FALSE(parse({"ts", "--wait-all=3"}).ok);
}

TEST(Options, Labels) {
    Parsed p = parse({"ts", "-L", "", "x"});
    ASSERT_TRUE(p.ok);
    ASSERT_TRUE(p.o.label.has_value());
    EXPECT_EQ(*p.o.label, "");
    Parsed q = parse({"ts", "-L", "a", "-L", "b c", "x"});
    ASSERT_TRUE(q.ok);
    EXPECT_EQ(q.o.label, std::optional<std::string>("b c"));
    Parsed r = parse({"ts", "-L", "-K", "x"});   // the next word is the label
    ASSERT_TRUE(r.ok);
    EXPECT_EQ(r.o.action, Action::Enqueue);
    EXPECT_EQ(r.o.label, std::optional<std::string>("-K"));
}

TEST(Options, AllEnqueueOptionsTogether) {
    Parsed p = parse({"ts", "-f", "-E", "-B", "-L", "lab", "-N", "2", "-D", "4", "sh", "-c", "x"});
    ASSERT_TRUE(p.ok) << p.err;
    EXPECT_EQ(p.o.action, Action::Enqueue);
    EXPECT_TRUE(p.o.foreground);
    EXPECT_TRUE(p.o.stderr_apart);
    EXPECT_TRUE(p.o.no_block);
    EXPECT_EQ(p.o.label, std::optional<std::string>("lab"));
    EXPECT_EQ(p.o.num_slots, 2);
    EXPECT_TRUE(p.o.depends);
    EXPECT_EQ(p.o.depend_on, 4);
    EXPECT_EQ(p.o.command, (Words{"sh", "-c", "x"}));
}

TEST(Options, AtoiCompat) {
    EXPECT_EQ(atoi_compat("12"), 12);
    EXPECT_EQ(atoi_compat("12abc"), 12);
    EXPECT_EQ(atoi_compat("abc"), 0);
    EXPECT_EQ(atoi_compat(""), 0);
    EXPECT_EQ(atoi_compat("-4"), -4);
    EXPECT_EQ(atoi_compat("  7"), 7);
    EXPECT_EQ(atoi_compat("-l"), 0);
}

// ---- the options table ---------------------------------------------------------------------------------

namespace {

/* Every field of Options, for comparing two of them whole. */
std::string describe(const Options& o) {
    std::string s = format("action=%d id=%d slots=%d swap=%d,%d store=%d gzip=%d stderr=%d fg=%d mail=%d "
                           "noblock=%d depends=%d,%d label=%s num_slots=%d%s gpus=%u gpu_mem=%llu hold=%d delay=%g at=%d "
                           "all=%d timeout=%g,%g retries=%u signal=%d argv0=%s command=",
                           static_cast<int>(o.action), o.id, o.slots, o.swap_a, o.swap_b, o.store_output,
                           o.gzip, o.stderr_apart, o.foreground, o.mail, o.no_block, o.depends, o.depend_on,
                           o.label ? ("<" + *o.label + ">").c_str() : "none", o.num_slots,
                           o.num_slots_given ? "(given)" : "", o.gpus, (unsigned long long)o.gpu_mem, o.hold, o.delay,
                           o.at > 0, o.release_all, o.timeout, o.kill_after, o.retries, o.signal, o.argv0.c_str());
    for (const auto& w : o.command) s += "{" + w + "}";
    s += format(" unique=%d requeue_failed=%d wait_ids=", o.unique, o.requeue_failed);
    for (int id : o.wait_ids) s += format("%d,", id);
    return s;
}

Options defaults() {
    Options o;
    o.argv0 = "ts";
    return o;
}

/* A sample argument for a row that takes one, and what the row then does. */
struct Expect {
    const char* arg;                 // nullptr: the row takes none
    void (*change)(Options* o);      // applied to the defaults
};

/* What each setting of new jobs does (the action rows are checked from their
 * action); a new setting row needs a line here. */
const std::map<std::string, Expect>& setting_effects() {
    static const std::map<std::string, Expect> m = {
        {"-n", {nullptr, [](Options* o) { o->store_output = false; }}},
        {"-E", {nullptr, [](Options* o) { o->stderr_apart = true; }}},
        {"-g", {nullptr, [](Options* o) { o->gzip = true; }}},
        {"-f", {nullptr, [](Options* o) { o->foreground = true; }}},
        {"-m", {nullptr, [](Options* o) { o->mail = true; }}},
        {"-B", {nullptr, [](Options* o) { o->no_block = true; }}},
        {"-d", {nullptr, [](Options* o) { o->depends = true; o->depend_on = -1; }}},
        {"-D", {"4", [](Options* o) { o->depends = true; o->depend_on = 4; }}},
        {"-L", {"lab", [](Options* o) { o->label = "lab"; }}},
        {"-N", {"3", [](Options* o) { o->num_slots = 3; o->num_slots_given = true; }}},
        {"-G", {"2", [](Options* o) { o->gpus = 2; }}},
        {"--gpus", {"3", [](Options* o) { o->gpus = 3; }}},
        {"--after", {"4,2", [](Options* o) { o->after = {4, 2}; }}},
        {"--unique", {nullptr, [](Options* o) { o->unique = true; }}},
        {"--gpu-mem", {"8G", [](Options* o) { o->gpu_mem = uint64_t(8) << 30; o->gpus = 1; }}},
        {"--hold", {nullptr, [](Options* o) { o->hold = true; }}},
        {"--delay", {"1h30m", [](Options* o) { o->delay = 5400; }}},
        {"--at", {"2999-01-01T00:00", [](Options* o) { o->at = 1; }}},   // (describe() says only whether)
        {"--timeout", {"1h30m", [](Options* o) { o->timeout = 5400; }}},
        {"--kill-after", {"10s", [](Options* o) { o->kill_after = 10; }}},
        {"--retry", {"3", [](Options* o) { o->retries = 3; }}},
        {"--signal", {"USR1", [](Options* o) { o->signal = SIGUSR1; }}},
    };
    return m;
}

/* An .It Fl entry of the man page: its flag ("K", "-restart") and argument. */
struct ManEntry {
    ArgKind arg;
    std::string section;
};

/* The .It Fl entries of ts.1's option sections, by flag as ts.1 writes it
 * ("K" for -K, "-restart" for --restart); false if ts.1 is not found. */
bool man_entries(std::map<std::string, ManEntry>* out, std::string* err) {
    // The unit tests run from the repository root (make check); __FILE__ is tests/options_test.cpp.
    std::string text;
    std::string path = dir_name(__FILE__) + "/../ts.1";
    if (!read_file(path, &text) && !read_file(path = "ts.1", &text)) {
        *err = "cannot read ts.1 (run from the repository root)";
        return false;
    }
    const std::set<std::string> option_sections = {"Actions", "Options for new jobs"};
    std::istringstream in(text);
    std::string line, section;
    while (std::getline(in, line)) {
        if (line.rfind(".Sh ", 0) == 0 || line.rfind(".Ss ", 0) == 0) {
            section = line.substr(4);
            continue;
        }
        if (!option_sections.count(section) || line.rfind(".It Fl ", 0) != 0) continue;
        std::istringstream words(line.substr(7));
        std::string flag, w1, w2;
        words >> flag >> w1 >> w2;
        std::string w3, w4;
        words >> w3 >> w4;   // --name=value: "Fl -name Ns = Ns Ar value"
        // --name[=value]: "Fl -name Ns Op = Ns Ar value"
        ArgKind kind = w1 == "Ns" && w2 == "Op" && w3 == "=" && w4 == "Ns"      ? ArgKind::Attached
                       : w1 == "Op" && w2 == "Ar"                              ? ArgKind::OptionalId
                       : w1 == "Ar" || (w1 == "Ns" && w2 == "=" && w4 == "Ar") ? ArgKind::Required
                                                                              : ArgKind::None;
        if (!out->emplace(flag, ManEntry{kind, section}).second) {
            *err = "ts.1 lists " + flag + " twice";
            return false;
        }
    }
    if (out->empty()) *err = "no .It Fl entries found under " + path + "'s option sections";
    return !out->empty();
}

/* How ts.1 writes a row's flag after .Fl. */
std::string man_flag(const OptionRow& r) {
    return r.long_name ? std::string("-") + r.long_name : std::string(1, r.letter);
}

}  // namespace

TEST(OptionsTable, RowsAreWellFormed) {
    ASSERT_GT(option_table().size(), 20u);
    std::set<std::string> flags;
    for (const OptionRow& r : option_table()) {
        std::string f = flag_word(r);
        EXPECT_TRUE(flags.insert(f).second) << f << " twice";
        EXPECT_NE(r.apply, nullptr) << f;
        EXPECT_NE(std::string(r.help), "") << f;
        EXPECT_EQ(r.arg == ArgKind::None, std::string(r.arg_name).empty()) << f;
        if (r.long_name) {
            EXPECT_EQ(r.letter, '\0') << f;
            EXPECT_NE(r.arg, ArgKind::OptionalId) << f;
        }
        // An optional argument is shown in [], a required one in <>.
        if (r.arg != ArgKind::None) {
            EXPECT_EQ(r.arg_name[0], r.arg == ArgKind::OptionalId ? '[' : '<') << f;
        }
    }
}

TEST(OptionsTable, EachActionRowSelectsItsAction) {
    for (const OptionRow& r : option_table()) {
        if (!r.action) continue;
        std::string f = flag_word(r);
        const char* arg = r.arg == ArgKind::None ? nullptr : *r.action == Action::Swap ? "1-2" : "7";
        std::vector<std::string> words = {"ts", f};
        if (arg) words.push_back(arg);
        Parsed p = parse_vec(words);
        ASSERT_TRUE(p.ok) << f << ": " << p.err;
        Options want = defaults();
        want.action = *r.action;
        switch (r.arg) {
        case ArgKind::None: break;
        case ArgKind::Required:
            if (*r.action == Action::Swap) want.swap_a = 1, want.swap_b = 2;
            else want.id = 7;
            break;
        case ArgKind::Attached: break;
        case ArgKind::OptionalId:
            if (*r.action == Action::SetSlots) want.slots = 7;
            else want.id = 7;
            break;
        }
        EXPECT_EQ(describe(p.o), describe(want)) << f << " " << (arg ? arg : "");

        if (r.arg != ArgKind::OptionalId) continue;
        // The flag as the last word: the last job, or the slot count.
        Parsed last = parse_vec({"ts", f});
        ASSERT_TRUE(last.ok) << f << ": " << last.err;
        Options want_last = defaults();
        want_last.action = *r.action == Action::SetSlots ? Action::GetSlots : *r.action;
        EXPECT_EQ(describe(last.o), describe(want_last)) << f;
    }
}

TEST(OptionsTable, EachSettingRowChangesItsSetting) {
    const auto& effects = setting_effects();
    size_t settings = 0;
    for (const OptionRow& r : option_table()) {
        if (r.action) continue;
        ++settings;
        std::string f = flag_word(r);
        auto e = effects.find(f);
        ASSERT_NE(e, effects.end()) << f << " has no expected effect in setting_effects()";
        EXPECT_EQ(e->second.arg != nullptr, r.arg == ArgKind::Required) << f;
        std::vector<std::string> words = {"ts", f};
        if (e->second.arg) words.push_back(e->second.arg);
        words.push_back("cmd");
        Parsed p = parse_vec(words);
        ASSERT_TRUE(p.ok) << f << ": " << p.err;
        Options want = defaults();
        want.action = Action::Enqueue;
        want.command = {"cmd"};
        e->second.change(&want);
        EXPECT_EQ(describe(p.o), describe(want)) << f;
        if (r.arg == ArgKind::Required) {
            Parsed missing = parse_vec({"ts", f});
            EXPECT_FALSE(missing.ok) << f;
            EXPECT_EQ(missing.err, r.long_name ? format("Option --%s missing argument.\n", r.long_name)
                                               : format("Option %c missing argument.\n", r.letter));
        }
    }
    EXPECT_EQ(settings, effects.size()) << "setting_effects() lists a flag the table does not have";
}

TEST(OptionsTable, ParserKnowsExactlyTheTableLetters) {
    std::set<char> letters;
    for (const OptionRow& r : option_table())
        if (r.letter) letters.insert(r.letter);
    for (int c = 1; c < 128; ++c) {
        if (c == '-') continue;   // "--" ends the options
        std::string word = std::string("-") + static_cast<char>(c);
        Parsed p = parse_vec({"ts", word, "1-2"});   // an argument any row accepts
        if (letters.count(static_cast<char>(c))) {
            EXPECT_NE(p.err, format("Wrong option %c.\n", c)) << word;
        } else {
            EXPECT_FALSE(p.ok) << word;
            EXPECT_EQ(p.err, format("Wrong option %c.\n", c)) << word;
        }
    }
}

TEST(OptionsTable, HelpHasEveryRowUnderItsHeading) {
    const std::string help = help_text("tsp");
    EXPECT_EQ(help.rfind("usage: tsp [action] ", 0), 0u);
    std::vector<std::string> lines;
    std::istringstream in(help);
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    ASSERT_EQ(help.back(), '\n');

    auto heading = [&](const std::string& h) {
        for (size_t i = 0; i < lines.size(); ++i)
            if (lines[i] == h) return i;
        ADD_FAILURE() << "no heading " << h;
        return lines.size();
    };
    size_t actions = heading("Actions:"), adding = heading("Options adding jobs:");
    ASSERT_LT(actions, adding);
    ASSERT_LT(adding, lines.size());
    // After each heading, its rows in table order, one line each, and nothing else.
    size_t at[2] = {actions + 1, adding + 1};
    for (const OptionRow& r : option_table()) {
        size_t& i = at[r.section == Section::Actions ? 0 : 1];
        ASSERT_LT(i, lines.size()) << flag_word(r);
        const std::string& l = lines[i++];
        std::string flag = "  " + flag_word(r) +
                           (r.arg == ArgKind::None       ? ""
                            : r.arg == ArgKind::Attached ? std::string("[=") + r.arg_name + "]"
                                                         : std::string(r.long_name ? "=" : " ") + r.arg_name);
        EXPECT_EQ(l.rfind(flag + " ", 0), 0u) << l;
        size_t text = l.find_first_not_of(' ', flag.size());
        EXPECT_EQ(l.substr(text), r.help) << l;
        // The help column: 11, or two spaces after a longer flag (--restart, -U <id-id>).
        EXPECT_EQ(text, flag.size() <= 10 ? 11 : flag.size() + 2) << l;
    }
    EXPECT_EQ(at[0], adding) << "a line under Actions: is no row";
    EXPECT_EQ(at[1], lines.size()) << "a line under Options adding jobs: is no row";
}

TEST(OptionsTable, HelpNamesTheProgramAsInvoked) {
    EXPECT_EQ(help_text("./sub/q").rfind("usage: ./sub/q [action] [-ngfmdE] [-L <lab>] [-D <id>] [cmd...]\n", 0),
              0u);
    EXPECT_EQ(help_text("%s%n").rfind("usage: %s%n [action]", 0), 0u);
}

TEST(OptionsTable, ManPageListsEveryRow) {
    std::map<std::string, ManEntry> man;
    std::string err;
    ASSERT_TRUE(man_entries(&man, &err)) << err;
    for (const OptionRow& r : option_table()) {
        auto m = man.find(man_flag(r));
        if (m == man.end()) {
            ADD_FAILURE() << "ts.1 has no .It Fl " << man_flag(r);
            continue;
        }
        EXPECT_EQ(static_cast<int>(m->second.arg), static_cast<int>(r.arg))
            << "ts.1 shows another argument for " << flag_word(r);
    }
}

TEST(OptionsTable, ManPageListsNoOtherOption) {
    std::map<std::string, ManEntry> man;
    std::string err;
    ASSERT_TRUE(man_entries(&man, &err)) << err;
    std::set<std::string> rows;
    for (const OptionRow& r : option_table()) rows.insert(man_flag(r));
    for (const auto& [flag, entry] : man)
        EXPECT_TRUE(rows.count(flag)) << "ts.1 (" << entry.section << ") lists .It Fl " << flag
                                      << ", which is no row of the options table";
}

TEST(Options, HoldQueuesHeldOrHoldsAJob) {
    Parsed p = parse({"ts", "--hold", "sleep", "9"});
    ASSERT_TRUE(p.ok) << p.err;
    EXPECT_EQ(p.o.action, Action::Enqueue);
    EXPECT_TRUE(p.o.hold);
    EXPECT_EQ(p.o.command, (Words{"sleep", "9"})) << "--hold takes no next word as its id";
    Parsed q = parse({"ts", "--hold=12"});
    ASSERT_TRUE(q.ok) << q.err;
    EXPECT_EQ(q.o.action, Action::Hold);
    EXPECT_EQ(q.o.id, 12);
    EXPECT_FALSE(q.o.hold);
    for (const char* bad : {"--hold=", "--hold=x", "--hold=-1", "--hold=1,2"}) {
        Parsed b = parse({"ts", bad});
        EXPECT_FALSE(b.ok) << bad;
        EXPECT_EQ(b.err.rfind("--hold=ID needs a job id", 0), 0u) << b.err;
    }
}

TEST(Options, ReleaseTakesAnIdOrAll) {
    Parsed p = parse({"ts", "--release=3"});
    ASSERT_TRUE(p.ok) << p.err;
    EXPECT_EQ(p.o.action, Action::Release);
    EXPECT_EQ(p.o.id, 3);
    EXPECT_FALSE(p.o.release_all);
    Parsed a = parse({"ts", "--release", "all"});
    ASSERT_TRUE(a.ok) << a.err;
    EXPECT_EQ(a.o.action, Action::Release);
    EXPECT_TRUE(a.o.release_all);
    Parsed b = parse({"ts", "--release=some"});
    EXPECT_FALSE(b.ok);
    EXPECT_EQ(b.err, "--release needs a job id or 'all', not 'some'.\n");
}

TEST(Options, DelayAndAtAreCheckedAndTheLastWins) {
    Parsed p = parse({"ts", "--delay=5m", "true"});
    ASSERT_TRUE(p.ok) << p.err;
    EXPECT_EQ(p.o.delay, 300);
    for (const char* bad : {"--delay=0", "--delay=-5", "--delay=5x", "--delay=0s"}) {
        Parsed b = parse({"ts", bad, "true"});
        EXPECT_FALSE(b.ok) << bad;
        EXPECT_EQ(b.err.rfind("--delay needs a duration of more than 0", 0), 0u) << b.err;
    }
    Parsed past = parse({"ts", "--at=2001-01-01 00:00", "true"});
    EXPECT_FALSE(past.ok);
    EXPECT_EQ(past.err, "--at: '2001-01-01 00:00' is in the past.\n");
    Parsed both = parse({"ts", "--delay=10", "--at", "23:59", "true"});
    ASSERT_TRUE(both.ok) << both.err;
    EXPECT_EQ(both.o.delay, 0);
    EXPECT_GT(both.o.at, wall_now());
    Parsed back = parse({"ts", "--at=23:59", "--delay=10", "true"});
    ASSERT_TRUE(back.ok) << back.err;
    EXPECT_EQ(back.o.at, 0);
    EXPECT_EQ(back.o.delay, 10);
}

// ------------------------------------------- an id letter followed by ts's long options

TEST(Options, AnIdLetterReadsOurLongOptionsAndTakesTheIdAfterThem) {
    Parsed p = parse({"ts", "-k", "--signal=INT", "1"});
    ASSERT_TRUE(p.ok) << p.err;
    EXPECT_EQ(p.o.action, Action::Kill);
    EXPECT_EQ(p.o.id, 1) << "not atoi(\"--signal=INT\") = 0";
    EXPECT_EQ(p.o.signal, SIGINT);
    Parsed q = parse({"ts", "-k", "--signal", "USR1", "4"});
    ASSERT_TRUE(q.ok) << q.err;
    EXPECT_EQ(q.o.id, 4);
    EXPECT_EQ(q.o.signal, SIGUSR1);
    Parsed r = parse({"ts", "-k", "--signal=9"});
    ASSERT_TRUE(r.ok) << r.err;
    EXPECT_EQ(r.o.action, Action::Kill);
    EXPECT_EQ(r.o.id, -1) << "nothing after the long option: the last job";
    Parsed s = parse({"ts", "-w", "--xyz"});
    ASSERT_TRUE(s.ok) << s.err;
    EXPECT_EQ(s.o.id, 0) << "not ours: taken as the id, as task-spooler's atoi";
    Parsed t = parse({"ts", "-k", "--cancel=3"});
    ASSERT_TRUE(t.ok) << t.err;
    EXPECT_EQ(t.o.action, Action::Cancel) << "the last action wins";
    EXPECT_EQ(t.o.id, 3);
}

TEST(Options, OurActionsRefuseLeftOverWordsTaskSpoolersIgnoreThem) {
    Parsed p = parse({"ts", "--cancel=3", "4"});
    EXPECT_FALSE(p.ok);
    EXPECT_EQ(p.err, "--cancel takes no command: '4' is left over.\n");
    EXPECT_FALSE(parse({"ts", "--release", "3", "x"}).ok);
    EXPECT_FALSE(parse({"ts", "--hold=3", "true"}).ok);
    EXPECT_FALSE(parse({"ts", "--drain", "now"}).ok);
    Parsed k = parse({"ts", "-K", "echo", "hi"});
    EXPECT_TRUE(k.ok) << "task-spooler's -K ignores the words after it";
    EXPECT_EQ(k.o.action, Action::KillServer);
    Parsed w = parse({"ts", "-w", "3", "x"});
    EXPECT_TRUE(w.ok) << "so does its -w";
}

TEST(Options, HoldBeforeANumberAloneIsRefused) {
    Parsed p = parse({"ts", "--hold", "5"});
    EXPECT_FALSE(p.ok);
    EXPECT_EQ(p.err, "ts --hold 5 would queue a command named 5: ts --hold=5 holds job 5 "
                     "(to queue a command named 5: ts --hold -- 5).\n");
    Parsed q = parse({"ts", "--hold", "--", "5"});
    ASSERT_TRUE(q.ok) << q.err;
    EXPECT_EQ(q.o.command, std::vector<std::string>{"5"});
    EXPECT_TRUE(parse({"ts", "--hold", "sleep", "5"}).ok);
    EXPECT_TRUE(parse({"ts", "--hold", "./5"}).ok);
}

TEST(Options, RetryWithForegroundIsAccepted) {
    EXPECT_TRUE(parse({"ts", "-f", "--retry=2", "false"}).ok) << "its client runs each run";
}
