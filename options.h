/*
 * options.h — the command line. This module owns the options table (one row
 * per flag: its letter or long name, its argument, its -h section and line,
 * and what it does), the parser made from it, and the -h text made from it.
 * The man page ts.1 lists the same flags; tests/options_test.cpp checks that
 * the three agree.
 *
 * Parsing is exactly task-spooler's (ts-spec §1.1): getopt rules with
 * POSIXLY_CORRECT (options stop at the first word that is not an option),
 * clustered flags, attached arguments, "optional" ids (an id flag that is the
 * last word means "the last job"), and the last action flag wins.
 */
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

enum class Action {
    List, Enqueue, KillServer, Clear, GetSlots, SetSlots, Tail, Cat, Pid, Output, Info,
    State, Remove, Wait, Kill, Urgent, Swap, Help, Version,
    Restart,   // --restart: the queue moves to a server of this binary
    Reconfigure,   // --reconfigure: --restart, and the queue's settings from this environment
    GpuList,   // --gpu-list: the GPUs and the jobs on them
    Drain,     // --drain: start nothing new; running jobs go on
    Resume,    // --resume: start queued jobs again
    Hold,      // --hold=ID: a queued job does not start until released
    Release,   // --release=ID|all: a held (or delayed) job may start
    Cancel,    // --cancel=ID: remove a queued job, or end a running one
    WaitAll,   // --wait-all: wait for every job of one's own queued or running now
    WaitStart, // --wait-start=ID: wait for a job to start running
    Requeue,   // --requeue=ID|failed: queue finished jobs again under new ids
};

struct Options {
    Action action = Action::List;
    int id = -1;                 // for the id actions; -1 = "the last job"
    int slots = 0;               // -S n
    int swap_a = 0, swap_b = 0;  // -U a-b
    std::vector<int> wait_ids;   // -w 3,4,5: wait for all of them (empty: -w's one id)
    bool requeue_failed = false; // --requeue=failed (else --requeue=id)
    // Enqueue options.
    bool store_output = true;    // not -n
    bool gzip = false;           // -g
    bool stderr_apart = false;   // -E
    bool foreground = false;     // -f
    bool mail = false;           // -m
    bool no_block = false;       // -B
    bool depends = false;        // -d / -D
    int depend_on = -1;          // -D id; -1 with depends = -d
    std::vector<int> more_depends;   // -D A,B,C: B and C (settings.h: kSettingDepends)
    std::vector<int> after;      // --after=A,B: waited for whatever their end
    std::optional<std::string> label;
    bool unique = false;         // --unique: not if the same command of ours is queued or running
    int num_slots = 1;           // -N
    bool num_slots_given = false;// -N was given (a GPU job takes slots only then)
    unsigned gpus = 0;           // -G / --gpus
    uint64_t gpu_mem = 0;        // --gpu-mem, bytes on each GPU
    bool hold = false;           // --hold (without an id): the new job is held
    double delay = 0;            // --delay: seconds from the submit (the last of --delay and --at wins)
    double at = 0;               // --at: the start time, seconds since the epoch
    bool release_all = false;    // --release=all
    double timeout = 0;          // --timeout, seconds (0: none given)
    double kill_after = 0;       // --kill-after, seconds (0: the default, 30 s)
    uint32_t retries = 0;        // --retry=N
    int signal = 0;              // -k's --signal (0: SIGTERM, as task-spooler's -k)
    std::vector<std::string> command;
    std::string argv0;
};

/* What follows a flag. OptionalId is task-spooler's emulated optional
 * argument: the next word (or the rest of the cluster) is taken whatever it
 * is, and only a flag that is the last word goes without one. A long option
 * with an argument takes it as --name=value or as the next word. */
enum class ArgKind {
    None, OptionalId, Required,
    Attached,   // a long option's value that comes only as --name=value (--hold, --hold=ID)
};

/* The heading -h lists a flag under. */
enum class Section { Actions, AddingJobs };

struct OptionRow;

/* What a flag does to *o; arg is nullptr when an OptionalId flag had none.
 * False with the exact task-spooler message in *err on a bad argument. */
using ApplyOption = bool (*)(const OptionRow& row, const char* arg, Options* o, std::string* err);

struct OptionRow {
    char letter;                  // '\0' for a long option
    const char* long_name;        // "restart" for --restart; nullptr for a letter
    ArgKind arg;                  // long options take none
    const char* arg_name;         // as -h shows it ("[id]", "<lab>"); "" when none
    Section section;
    const char* help;             // its -h line, after the flag column
    std::optional<Action> action; // the action it selects; none for a setting of new jobs
    ApplyOption apply;
};

/* The rows in -h order; a range for range-for. */
struct OptionRows {
    const OptionRow* first;
    const OptionRow* last;
    const OptionRow* begin() const { return first; }
    const OptionRow* end() const { return last; }
    size_t size() const { return static_cast<size_t>(last - first); }
};
OptionRows option_table();

/* A row's flag as written: "-K", "--restart". */
std::string flag_word(const OptionRow& row);

/* Fill *o from argv. On a usage error return false with the exact text
 * task-spooler prints (ending in a newline) in *err. */
[[nodiscard]] bool parse_options(int argc, const char* const* argv, Options* o, std::string* err);

/* The -h text, naming the program as argv0. */
std::string help_text(const std::string& argv0);

/* atoi(), as task-spooler reads every number: garbage is 0. */
int atoi_compat(const std::string& s);
