/*
 * options_test.cpp — the command line (options.h), per ts-spec §1.1.
 */
#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

#include "options.h"

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
