/*
 * ts — a job queue for the Unix command line, a drop-in replacement for
 * task-spooler 1.0 (`tsp`). This file turns argv into Options and runs the
 * action: -h and -V here, everything else through the client (client.cpp),
 * which talks to the per-user server (server.cpp) and starts it on demand.
 *
 * README.md's "How it works" maps the files; each opens with a comment on
 * what it owns. The man page is ts.1.
 */
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "client.h"
#include "options.h"
#include "server.h"
#include "util.h"

namespace {

constexpr const char* kVersionText =
    "ts 1.0.0 - a task queue system for the unix user (compatible with Task Spooler v1.0.1).\n"
    "Copyright (C) 2026  the ts authors; MIT licence.\n";

}  // namespace

int main(int argc, char** argv) {
    // Internal: a server exec'd under valgrind (make check-valgrind; client.cpp).
    // A seventh argument, "reconfigure": ts --reconfigure started it (connect.h).
    if ((argc == 6 || (argc == 7 && std::strcmp(argv[6], "reconfigure") == 0)) &&
        std::strcmp(argv[1], "--internal-serve") == 0) {
        Fd lfd(std::atoi(argv[2])), guard(std::atoi(argv[3])), err(std::atoi(argv[4]));
        for (const Fd* f : {&lfd, &guard, &err})
            if (*f) set_cloexec(f->get());
        run_server(std::move(lfd), std::move(guard), std::move(err), argv[5], argc == 7);
    }
    Options o;
    std::string err;
    if (!parse_options(argc, argv, &o, &err)) die_with(kExitError, err);
    switch (o.action) {
    case Action::Help: fputs(help_text(o.argv0).c_str(), stdout); return kExitOk;
    case Action::Version: fputs(kVersionText, stdout); return kExitOk;
    default: return run_client(o);
    }
}
