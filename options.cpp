/*
 * options.cpp — see options.h. This is a small getopt of our own rather than
 * getopt(3), so that the rules do not depend on the C library or on
 * POSIXLY_CORRECT in the environment: "+:" semantics, i.e. stop at the first
 * non-option, and report a missing argument instead of printing anything.
 */
#include "options.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "util.h"

namespace {

// Flags taking an argument; for the first group a missing argument means
// "the last job" (or, for -S, "print the slot count").
constexpr const char* kIdFlags = "rtcopwkusiS";
constexpr const char* kArgFlags = "rtcopwkusiSLNUD";
constexpr const char* kPlainFlags = "VhKgClnfmBEd";

bool takes_arg(char c) { return c && std::strchr(kArgFlags, c); }
bool is_flag(char c) { return c && (std::strchr(kArgFlags, c) || std::strchr(kPlainFlags, c)); }

Action id_action(char c) {
    switch (c) {
    case 'r': return Action::Remove;
    case 't': return Action::Tail;
    case 'c': return Action::Cat;
    case 'o': return Action::Output;
    case 'p': return Action::Pid;
    case 'w': return Action::Wait;
    case 'k': return Action::Kill;
    case 'u': return Action::Urgent;
    case 's': return Action::State;
    case 'i': return Action::Info;
    default: return Action::List;
    }
}

/* -U a-b: split at the first '-', atoi both halves. */
bool parse_swap(const std::string& arg, Options* o, std::string* err) {
    size_t dash = arg.find('-');
    if (arg.size() >= 50 || dash == std::string::npos) {
        *err = "Wrong <id-id> for -U.\n";
        return false;
    }
    o->swap_a = atoi_compat(arg.substr(0, dash));
    o->swap_b = atoi_compat(arg.substr(dash + 1));
    if (o->swap_a == o->swap_b) {
        *err = "Wrong <id-id> for -U. Use different ids.\n";
        return false;
    }
    o->action = Action::Swap;
    return true;
}

/* One flag with its argument (nullptr if it had none). */
bool apply(char c, const char* arg, Options* o, std::string* err) {
    if (!arg && std::strchr(kIdFlags, c)) {   // "optional" id omitted
        o->action = c == 'S' ? Action::GetSlots : id_action(c);
        o->id = -1;
        return true;
    }
    if (!arg && takes_arg(c)) {
        *err = format("Option %c missing argument.\n", c);
        return false;
    }
    switch (c) {
    case 'K': o->action = Action::KillServer; break;
    case 'C': o->action = Action::Clear; break;
    case 'l': o->action = Action::List; break;
    case 'h': o->action = Action::Help; break;
    case 'V': o->action = Action::Version; break;
    case 'n': o->store_output = false; break;
    case 'g': o->gzip = true; break;
    case 'E': o->stderr_apart = true; break;
    case 'f': o->foreground = true; break;
    case 'm': o->mail = true; break;
    case 'B': o->no_block = true; break;
    case 'd': o->depends = true; o->depend_on = -1; break;
    case 'D': o->depends = true; o->depend_on = atoi_compat(arg); break;
    case 'L': o->label = arg; break;
    case 'N': o->num_slots = std::max(0, atoi_compat(arg)); break;
    case 'U': return parse_swap(arg, o, err);
    case 'S':
        o->slots = atoi_compat(arg);
        if (o->slots < 1) {   // checked at once, whatever comes later
            *err = "You should set at minimum 1 slot.\n";
            return false;
        }
        o->action = Action::SetSlots;
        break;
    default:
        o->action = id_action(c);
        o->id = atoi_compat(arg);
        break;
    }
    return true;
}

}  // namespace

int atoi_compat(const std::string& s) { return std::atoi(s.c_str()); }

bool parse_options(int argc, const char* const* argv, Options* o, std::string* err) {
    o->argv0 = argc > 0 ? argv[0] : "ts";
    int i = 1;
    while (i < argc) {
        const char* a = argv[i];
        if (a[0] != '-' || a[1] == '\0') break;   // first non-option word
        if (std::strcmp(a, "--") == 0) {
            ++i;
            break;
        }
        if (std::strcmp(a, "--restart") == 0) {   // long options: ours only, never task-spooler's letters
            o->action = Action::Restart;
            ++i;
            continue;
        }
        ++i;
        for (const char* p = a + 1; *p; ++p) {
            char c = *p;
            if (!is_flag(c)) {
                *err = format("Wrong option %c.\n", c);
                return false;
            }
            if (!takes_arg(c)) {
                if (!apply(c, nullptr, o, err)) return false;
                continue;
            }
            const char* arg = nullptr;
            if (p[1]) arg = p + 1;            // attached: -w5
            else if (i < argc) arg = argv[i++];  // next word, whatever it is
            if (!apply(c, arg, o, err)) return false;
            break;
        }
    }
    if (o->action == Action::List && i < argc) {
        o->action = Action::Enqueue;
        o->command.assign(argv + i, argv + argc);
    }
    if (o->mail && (!o->store_output || o->gzip)) {
        *err = "For e-mail, you should store the output (not through gzip)\n";
        return false;
    }
    return true;
}
