/*
 * options.h — the command line, parsed exactly as task-spooler parses it
 * (ts-spec §1.1): getopt rules with POSIXLY_CORRECT (options stop at the first
 * word that is not an option), clustered flags, attached arguments,
 * "optional" ids (an id flag that is the last word means "the last job"),
 * and the last action flag wins.
 */
#pragma once

#include <optional>
#include <string>
#include <vector>

enum class Action {
    List, Enqueue, KillServer, Clear, GetSlots, SetSlots, Tail, Cat, Pid, Output, Info,
    State, Remove, Wait, Kill, Urgent, Swap, Help, Version,
    Restart,   // --restart: the queue moves to a server of this binary
};

struct Options {
    Action action = Action::List;
    int id = -1;                 // for the id actions; -1 = "the last job"
    int slots = 0;               // -S n
    int swap_a = 0, swap_b = 0;  // -U a-b
    // Enqueue options.
    bool store_output = true;    // not -n
    bool gzip = false;           // -g
    bool stderr_apart = false;   // -E
    bool foreground = false;     // -f
    bool mail = false;           // -m
    bool no_block = false;       // -B
    bool depends = false;        // -d / -D
    int depend_on = -1;          // -D id; -1 with depends = -d
    std::optional<std::string> label;
    int num_slots = 1;           // -N
    std::vector<std::string> command;
    std::string argv0;
};

/* Fill *o from argv. On a usage error return false with the exact text
 * task-spooler prints (ending in a newline) in *err. */
[[nodiscard]] bool parse_options(int argc, const char* const* argv, Options* o, std::string* err);

/* atoi(), as task-spooler reads every number: garbage is 0. */
int atoi_compat(const std::string& s);
