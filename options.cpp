/*
 * options.cpp — the options table, the parser and the -h text (options.h).
 *
 * kOptions has one row per flag, in the order -h lists them. The parser looks
 * letters and long names up in it, and each row's apply function does what
 * the flag does; help_text() prints the same rows. So a flag is added in one
 * place (and in ts.1, which tests/options_test.cpp compares with the table).
 *
 * The parser is a small getopt of our own rather than getopt(3), so that the
 * rules do not depend on the C library or on POSIXLY_CORRECT in the
 * environment: "+:" semantics, i.e. stop at the first non-option, and report
 * a missing argument instead of printing anything.
 */
#include "options.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <utility>

#include "gpu.h"
#include "settings.h"
#include "util.h"

namespace {

// ---- what each flag does -------------------------------------------------------------------------------

bool select_action(const OptionRow& row, const char*, Options* o, std::string*) {
    o->action = *row.action;
    return true;
}

/* -t, -w, ...: without an id, "the last job" (-1). */
bool select_job(const OptionRow& row, const char* arg, Options* o, std::string*) {
    o->action = *row.action;
    o->id = arg ? atoi_compat(arg) : -1;
    return true;
}

/* -S n sets the slots, checked at once (whatever comes later); -S prints them. */
bool set_slots(const OptionRow&, const char* arg, Options* o, std::string* err) {
    if (!arg) {
        o->action = Action::GetSlots;
        o->id = -1;   // as every flag without its optional id (unused here)
        return true;
    }
    o->slots = atoi_compat(arg);
    if (o->slots < 1) {
        *err = "You should set at minimum 1 slot.\n";
        return false;
    }
    o->action = Action::SetSlots;
    return true;
}

/* -U a-b: split at the first '-', atoi both halves. */
bool set_swap(const OptionRow&, const char* arg, Options* o, std::string* err) {
    std::string s = arg;
    size_t dash = s.find('-');
    if (s.size() >= 50 || dash == std::string::npos) {
        *err = "Wrong <id-id> for -U.\n";
        return false;
    }
    o->swap_a = atoi_compat(s.substr(0, dash));
    o->swap_b = atoi_compat(s.substr(dash + 1));
    if (o->swap_a == o->swap_b) {
        *err = "Wrong <id-id> for -U. Use different ids.\n";
        return false;
    }
    o->action = Action::Swap;
    return true;
}

bool set_no_output(const OptionRow&, const char*, Options* o, std::string*) {
    o->store_output = false;
    return true;
}
bool set_stderr_apart(const OptionRow&, const char*, Options* o, std::string*) {
    o->stderr_apart = true;
    return true;
}
bool set_gzip(const OptionRow&, const char*, Options* o, std::string*) {
    o->gzip = true;
    return true;
}
bool set_foreground(const OptionRow&, const char*, Options* o, std::string*) {
    o->foreground = true;
    return true;
}
bool set_mail(const OptionRow&, const char*, Options* o, std::string*) {
    o->mail = true;
    return true;
}
bool set_no_block(const OptionRow&, const char*, Options* o, std::string*) {
    o->no_block = true;
    return true;
}

/* A comma list of job ids ("3,4,5"), each a number from 0 up, each once
 * (a repeated id is kept once); false for anything else ("3,", "3,,4", "-1,2", "3,x"). */
bool parse_id_list(const std::string& arg, std::vector<int>* out) {
    out->clear();
    size_t at = 0;
    while (true) {
        size_t comma = arg.find(',', at);
        std::string word = arg.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        if (word.empty() || word.size() > 9 || word.find_first_not_of("0123456789") != std::string::npos)
            return false;
        int id = std::atoi(word.c_str());
        if (std::find(out->begin(), out->end(), id) == out->end()) out->push_back(id);
        if (comma == std::string::npos) break;
        at = comma + 1;
    }
    return out->size() <= kMaxJobDeps;
}

/* -w [id], and -w 3,4,5 (a list, checked strictly: it waits for all). */
bool select_wait(const OptionRow& row, const char* arg, Options* o, std::string* err) {
    o->wait_ids.clear();
    if (!arg || !std::strchr(arg, ',')) return select_job(row, arg, o, err);
    if (!parse_id_list(arg, &o->wait_ids)) {
        *err = format("-w needs a job id or a list of job ids such as 3,4,5 (at most %zu), not '%s'.\n",
                      kMaxJobDeps, printable(arg).c_str());
        return false;
    }
    o->action = Action::Wait;
    o->id = o->wait_ids.front();
    return true;
}

/* One job id, from 0 up, for a new flag (no atoi habits to keep). */
bool parse_one_id(const char* arg, int* id) {
    std::vector<int> ids;
    if (std::strchr(arg, ',') || !parse_id_list(arg, &ids)) return false;
    *id = ids.front();
    return true;
}

/* --wait-start=ID. */
bool select_wait_start(const OptionRow& row, const char* arg, Options* o, std::string* err) {
    if (!parse_one_id(arg, &o->id)) {
        *err = format("--wait-start needs a job id, not '%s'.\n", printable(arg).c_str());
        return false;
    }
    o->action = *row.action;
    return true;
}

/* --requeue=ID or --requeue=failed. */
bool select_requeue(const OptionRow& row, const char* arg, Options* o, std::string* err) {
    o->requeue_failed = std::strcmp(arg, "failed") == 0;
    if (!o->requeue_failed && !parse_one_id(arg, &o->id)) {
        *err = format("--requeue needs a job id or 'failed', not '%s'.\n", printable(arg).c_str());
        return false;
    }
    o->action = *row.action;
    return true;
}

bool set_unique(const OptionRow&, const char*, Options* o, std::string*) {
    o->unique = true;
    return true;
}

/* -d and -D share their state: the last one wins. */
bool set_depends_on_previous(const OptionRow&, const char*, Options* o, std::string*) {
    o->depends = true;
    o->depend_on = -1;
    o->more_depends.clear();
    return true;
}
/* -D id is task-spooler's (atoi: "-D abc" is job 0, "-D -1" is -d); -D with
 * a comma is a list of ids, checked strictly. */
bool set_depends_on(const OptionRow&, const char* arg, Options* o, std::string* err) {
    o->depends = true;
    o->more_depends.clear();
    if (!std::strchr(arg, ',')) {
        o->depend_on = atoi_compat(arg);
        return true;
    }
    std::vector<int> ids;
    if (!parse_id_list(arg, &ids)) {
        *err = format("-D needs a job id or a list of job ids such as 3,4,5 (at most %zu), not '%s'.\n",
                      kMaxJobDeps, printable(arg).c_str());
        return false;
    }
    o->depend_on = ids.front();
    o->more_depends.assign(ids.begin() + 1, ids.end());
    return true;
}
/* --after=A,B: wait for those jobs to end, whatever their result; the last --after wins. */
bool set_after(const OptionRow&, const char* arg, Options* o, std::string* err) {
    if (!parse_id_list(arg, &o->after)) {
        *err = format("--after needs a list of job ids such as 3,4 (at most %zu), not '%s'.\n",
                      kMaxJobDeps, printable(arg).c_str());
        return false;
    }
    return true;
}

bool set_label(const OptionRow&, const char* arg, Options* o, std::string*) {
    o->label = arg;
    return true;
}
bool set_num_slots(const OptionRow&, const char* arg, Options* o, std::string*) {
    o->num_slots = std::max(0, atoi_compat(arg));
    o->num_slots_given = true;
    return true;
}

/* A job id given to a new long option: digits only (no atoi habits to keep). */
bool parse_job_id(const char* arg, int* id) {
    std::string s = arg;
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) return false;
    *id = std::atoi(s.c_str());
    return true;
}

/* --hold: the new job is held; --hold=ID: hold that queued job (an action). */
bool set_hold(const OptionRow&, const char* arg, Options* o, std::string* err) {
    if (!arg) {
        o->hold = true;
        return true;
    }
    if (!parse_job_id(arg, &o->id)) {
        *err = format("--hold=ID needs a job id, not '%s'.\n", printable(arg).c_str());
        return false;
    }
    o->action = Action::Hold;
    return true;
}

/* --release=ID or --release=all (the caller's held jobs). */
bool set_release(const OptionRow&, const char* arg, Options* o, std::string* err) {
    o->release_all = std::strcmp(arg, "all") == 0;
    if (o->release_all) o->id = -1;
    else if (!parse_job_id(arg, &o->id)) {
        *err = format("--release needs a job id or 'all', not '%s'.\n", printable(arg).c_str());
        return false;
    }
    o->action = Action::Release;
    return true;
}

/* --delay=DURATION (util.h: parse_duration), more than 0. */
bool set_delay(const OptionRow&, const char* arg, Options* o, std::string* err) {
    double s = 0;
    if (!parse_duration(arg, &s) || s <= 0) {
        *err = format("--delay needs a duration of more than 0 such as 90, 30s, 5m or 1h30m, not '%s'.\n",
                      printable(arg).c_str());
        return false;
    }
    o->delay = s;
    o->at = 0;
    return true;
}

/* --at=TIME (util.h: parse_at_time), read against the clock now. */
bool set_at(const OptionRow&, const char* arg, Options* o, std::string* err) {
    std::string why;
    if (!parse_at_time(arg, wall_now(), &o->at, &why)) {
        *err = "--at: " + why + ".\n";
        return false;
    }
    o->delay = 0;
    return true;
}

/* -G N, --gpus=N: checked strictly (a new flag has no atoi habits to keep). */
bool set_gpus(const OptionRow& row, const char* arg, Options* o, std::string* err) {
    char* end = nullptr;
    long n = std::strtol(arg, &end, 10);
    if (!*arg || *end || n < 0 || n > long(kMaxJobGpus)) {
        *err = format("%s needs a number of GPUs from 0 to %u, not '%s'.\n", flag_word(row).c_str(),
                      unsigned(kMaxJobGpus), printable(arg).c_str());
        return false;
    }
    o->gpus = unsigned(n);
    return true;
}

/* --gpu-mem=SIZE: per GPU; it implies -G 1 unless -G says how many. */
bool set_gpu_mem(const OptionRow&, const char* arg, Options* o, std::string* err) {
    uint64_t n = parse_gpu_mem(arg);
    if (n < (uint64_t(1) << 20) || n > (uint64_t(1) << 50)) {
        *err = format("--gpu-mem needs a size from 1M to 1024T, such as 8G or 512M, not '%s'.\n",
                      printable(arg).c_str());
        return false;
    }
    o->gpu_mem = n;
    return true;
}

/* --timeout, --kill-after: a duration (util.h: parse_duration). */
bool set_duration(const OptionRow& row, const char* arg, Options* o, std::string* err) {
    double secs = 0;
    if (!parse_duration(arg, &secs) || secs < 0.001) {
        *err = format("%s needs a duration of more than 0 such as 90, 30s, 5m or 1h30m, not '%s'.\n",
                      flag_word(row).c_str(), printable(arg).c_str());
        return false;
    }
    (std::string(row.long_name) == "timeout" ? o->timeout : o->kill_after) = secs;
    return true;
}

/* --retry=N: N more runs at most after a failure. */
bool set_retry(const OptionRow&, const char* arg, Options* o, std::string* err) {
    char* end = nullptr;
    long n = std::strtol(arg, &end, 10);
    if (!*arg || *end || n < 0 || n > long(kMaxRetries)) {
        *err = format("--retry needs a number of retries from 0 to %u, not '%s'.\n", unsigned(kMaxRetries),
                      printable(arg).c_str());
        return false;
    }
    o->retries = uint32_t(n);
    return true;
}

/* --cancel=ID: one job, by its id (no "last job" here: a cancel names its job). */
bool set_cancel(const OptionRow&, const char* arg, Options* o, std::string* err) {
    std::string a = arg;
    if (a.empty() || a.size() > 9 || a.find_first_not_of("0123456789") != std::string::npos) {
        *err = format("--cancel needs a job id, not '%s'.\n", printable(a).c_str());
        return false;
    }
    o->action = Action::Cancel;
    o->id = std::atoi(a.c_str());
    return true;
}

/* --signal=SIG: what -k sends (a name as TERM, SIGUSR1, or a number). */
bool set_signal(const OptionRow&, const char* arg, Options* o, std::string* err) {
    if (!parse_signal(arg, &o->signal)) {
        *err = format("--signal needs a signal such as TERM, SIGINT, USR1 or 9, not '%s'.\n",
                      printable(arg).c_str());
        return false;
    }
    return true;
}

// ---- the table -----------------------------------------------------------------------------------------

constexpr ArgKind kNone = ArgKind::None, kId = ArgKind::OptionalId, kArg = ArgKind::Required,
                  kEq = ArgKind::Attached;
constexpr Section kAct = Section::Actions, kAdd = Section::AddingJobs;
constexpr std::nullopt_t kSetting = std::nullopt;

// -B is a setting of new jobs, listed under Actions as task-spooler's -h lists it.
constexpr OptionRow kOptions[] = {
    {'K', nullptr, kNone, "", kAct, "kill the task spooler server, and empty its queue",
     Action::KillServer, select_action},
    {'\0', "restart", kNone, "", kAct, "restart the server with this ts binary, keeping the queue",
     Action::Restart, select_action},
    {'\0', "reconfigure", kNone, "", kAct,
     "restart the server, and take the queue's settings from this environment",
     Action::Reconfigure, select_action},
    {'C', nullptr, kNone, "", kAct, "clear the list of finished jobs", Action::Clear, select_action},
    {'l', nullptr, kNone, "", kAct, "show the job list (default action)", Action::List, select_action},
    {'\0', "gpu-list", kNone, "", kAct, "list the GPUs, their memory and use, and the jobs on them.",
     Action::GpuList, select_action},
    {'S', nullptr, kId, "[num]", kAct, "get/set the number of max simultaneous jobs of the server.",
     Action::SetSlots, set_slots},
    {'\0', "drain", kNone, "", kAct, "start no new job until --resume; running jobs go on.",
     Action::Drain, select_action},
    {'\0', "resume", kNone, "", kAct, "start queued jobs again after --drain.", Action::Resume,
     select_action},
    {'\0', "release", kArg, "<id|all>", kAct, "let a held job start (all: every held job of yours).",
     Action::Release, set_release},
    {'t', nullptr, kId, "[id]", kAct,
     "\"tail -n 10 -f\" the output of the job. Last run if not specified.", Action::Tail, select_job},
    {'c', nullptr, kId, "[id]", kAct, "like -t, but shows all the lines. Last run if not specified.",
     Action::Cat, select_job},
    {'p', nullptr, kId, "[id]", kAct, "show the pid of the job. Last run if not specified.",
     Action::Pid, select_job},
    {'o', nullptr, kId, "[id]", kAct, "show the output file. Of last job run, if not specified.",
     Action::Output, select_job},
    {'i', nullptr, kId, "[id]", kAct, "show job information. Of last job run, if not specified.",
     Action::Info, select_job},
    {'s', nullptr, kId, "[id]", kAct, "show the job state. Of the last added, if not specified.",
     Action::State, select_job},
    {'r', nullptr, kId, "[id]", kAct, "remove a job. The last added, if not specified.",
     Action::Remove, select_job},
    {'w', nullptr, kId, "[id]", kAct, "wait for a job. The last added, if not specified.",
     Action::Wait, select_wait},
    {'\0', "wait-all", kNone, "", kAct,
     "wait for all of one's queued and running jobs (-w 3,4,5: for those).", Action::WaitAll,
     select_action},
    {'\0', "wait-start", kArg, "<id>", kAct, "wait until the job starts running.", Action::WaitStart,
     select_wait_start},
    {'\0', "requeue", kArg, "<id>", kAct,
     "queue a finished job again, as a new job (failed: all of one's failed jobs).", Action::Requeue,
     select_requeue},
    {'k', nullptr, kId, "[id]", kAct,
     "send SIGTERM to the job process group. The last run, if not specified.", Action::Kill,
     select_job},
    {'\0', "signal", kArg, "<sig>", kAct, "the signal -k sends instead of SIGTERM (INT, USR1, 9...).",
     kSetting, set_signal},
    {'\0', "cancel", kArg, "<id>", kAct,
     "remove a queued job, or end a running one (SIGTERM, then SIGKILL).", Action::Cancel, set_cancel},
    {'u', nullptr, kId, "[id]", kAct, "put that job first. The last added, if not specified.",
     Action::Urgent, select_job},
    {'U', nullptr, kArg, "<id-id>", kAct, "swap two jobs in the queue.", Action::Swap, set_swap},
    {'B', nullptr, kNone, "", kAct,
     "in case of full queue on the server, quit (2) instead of waiting.", kSetting, set_no_block},
    {'h', nullptr, kNone, "", kAct, "show this help", Action::Help, select_action},
    {'V', nullptr, kNone, "", kAct, "show the program version", Action::Version, select_action},

    {'n', nullptr, kNone, "", kAdd, "don't store the output of the command.", kSetting,
     set_no_output},
    {'E', nullptr, kNone, "", kAdd,
     "Keep stderr apart, in a name like the output file, but adding '.e'.", kSetting,
     set_stderr_apart},
    {'g', nullptr, kNone, "", kAdd, "gzip the stored output (if not -n).", kSetting, set_gzip},
    {'f', nullptr, kNone, "", kAdd, "don't fork into background.", kSetting, set_foreground},
    {'m', nullptr, kNone, "", kAdd, "send the output by e-mail (uses sendmail).", kSetting, set_mail},
    {'d', nullptr, kNone, "", kAdd, "the job will be run only if the job before ends well", kSetting,
     set_depends_on_previous},
    {'D', nullptr, kArg, "<id>", kAdd, "the job will be run only if the job of given id ends well.",
     kSetting, set_depends_on},
    {'\0', "after", kArg, "<ids>", kAdd, "run after these jobs (3,4) end, whatever their result.",
     kSetting, set_after},
    {'\0', "timeout", kArg, "<duration>", kAdd, "end the job after this long (90, 30s, 5m, 1h30m).",
     kSetting, set_duration},
    {'\0', "kill-after", kArg, "<duration>", kAdd,
     "SIGKILL this long after the SIGTERM of a timeout or --cancel (30s).",
     kSetting, set_duration},
    {'\0', "retry", kArg, "<num>", kAdd, "run a failed job again, up to num more times.", kSetting,
     set_retry},
    {'\0', "unique", kNone, "", kAdd,
     "queue nothing if the same command of one's own is queued or running (exit 3).", kSetting,
     set_unique},
    {'L', nullptr, kArg, "<lab>", kAdd,
     "name this task with a label, to be distinguished on listing.", kSetting, set_label},
    {'N', nullptr, kArg, "<num>", kAdd, "number of slots required by the job (1 default).", kSetting,
     set_num_slots},
    {'G', nullptr, kArg, "<num>", kAdd, "number of GPUs required by the job (takes no slot unless -N).",
     kSetting, set_gpus},
    {'\0', "gpus", kArg, "<num>", kAdd, "the same as -G.", kSetting, set_gpus},
    {'\0', "gpu-mem", kArg, "<size>", kAdd, "GPU memory the job needs on each GPU (8G; implies -G 1).",
     kSetting, set_gpu_mem},
    {'\0', "hold", kEq, "<id>", kAdd, "queue the job held, until --release; =ID holds a queued job.",
     kSetting, set_hold},
    {'\0', "delay", kArg, "<duration>", kAdd, "start the job no sooner than after this long (90, 30s, 5m, 1h30m).",
     kSetting, set_delay},
    {'\0', "at", kArg, "<time>", kAdd, "start the job no sooner than then (HH:MM[:SS], YYYY-MM-DD HH:MM).",
     kSetting, set_at},
};

/* Each row has a letter or a long name, not both; long options take no
 * optional argument but an attached one (--hold[=ID]), which letters never take; an argument has a name to show;
 * no letter is used twice. */
constexpr bool rows_are_sound() {
    for (size_t i = 0; i < std::size(kOptions); ++i) {
        const OptionRow& r = kOptions[i];
        if ((r.letter == '\0') == (r.long_name == nullptr)) return false;
        if (r.long_name && r.arg == ArgKind::OptionalId) return false;
        if (!r.long_name && r.arg == ArgKind::Attached) return false;
        if ((r.arg == ArgKind::None) != (r.arg_name[0] == '\0')) return false;
        if (!r.apply) return false;
        for (size_t j = 0; j < i; ++j)
            if (r.letter != '\0' && r.letter == kOptions[j].letter) return false;
    }
    return true;
}
static_assert(rows_are_sound(), "kOptions: a row breaks the rules above rows_are_sound()");

const OptionRow* find_letter(char c) {
    for (const OptionRow& r : kOptions)
        if (r.letter != '\0' && r.letter == c) return &r;
    return nullptr;
}

const OptionRow* find_long(const char* name) {
    for (const OptionRow& r : kOptions)
        if (r.long_name && std::strcmp(r.long_name, name) == 0) return &r;
    return nullptr;
}

/* One flag with its argument (nullptr if it had none). */
bool apply(const OptionRow& row, const char* arg, Options* o, std::string* err) {
    if (!arg && row.arg == ArgKind::Required) {
        *err = format("Option %c missing argument.\n", row.letter);
        return false;
    }
    return row.apply(row, arg, o, err);
}

// ---- the -h text ---------------------------------------------------------------------------------------

// Kept as task-spooler writes it (its columns are not regular).
constexpr const char* kEnvHelp =
    "Env vars:\n"
    "  TS_SOCKET  the path to the unix socket used by the ts command.\n"
    "  TS_MAILTO  where to mail the result (on -m). Local user by default.\n"
    "  TS_MAXFINISHED  maximum finished jobs in the queue.\n"
    "  TS_MAXCONN  maximum number of ts connections at once.\n"
    "  TS_ONFINISH  binary called on job end (passes jobid, error, outfile, command).\n"
    "  TS_ENV  command called on enqueue. Its output determines the job information.\n"
    "  TS_SAVELIST  filename which will store the list, if the server dies.\n"
    "  TS_SLOTS   amount of jobs which can run at once, read on server start.\n"
    "  TMPDIR     directory where to place the output files and the default socket.\n";

constexpr struct {
    Section section;
    const char* heading;
} kSections[] = {
    {Section::Actions, "Actions:\n"},
    {Section::AddingJobs, "Options adding jobs:\n"},
};

/* "  -t [id]  ...": the flag and its argument in a column of 8 and one space,
 * or, when longer (--restart, -U <id-id>), followed by two spaces. */
std::string help_line(const OptionRow& r) {
    std::string flag = flag_word(r);
    if (r.arg == ArgKind::Attached) flag += std::string("[=") + r.arg_name + "]";
    else if (r.arg != ArgKind::None) flag += std::string(r.long_name ? "=" : " ") + r.arg_name;
    if (flag.size() <= 8) flag.resize(8, ' ');
    else flag += ' ';
    return "  " + flag + " " + r.help + "\n";
}

}  // namespace

OptionRows option_table() { return {std::begin(kOptions), std::end(kOptions)}; }

std::string flag_word(const OptionRow& row) {
    return row.long_name ? std::string("--") + row.long_name : std::string("-") + row.letter;
}

int atoi_compat(const std::string& s) { return std::atoi(s.c_str()); }

namespace {

/* "--name" or "--name=value" that names one of ts's long options. */
bool is_our_long_option(const char* a) {
    if (a[0] != '-' || a[1] != '-') return false;
    std::string name = a + 2;
    name.resize(std::min(name.size(), name.find('=')));
    return find_long(name.c_str()) != nullptr;
}

/* A long option at argv[*i - 1] (a is its text); its value may take the next word. */
bool parse_long(const OptionRow& row, const char* a, int argc, const char* const* argv, int* i,
                Options* o, std::string* err) {
    const char* eq = std::strchr(a, '=');
    const char* value = eq ? eq + 1 : nullptr;
    if (row.arg == ArgKind::None && value) {
        *err = format("Option --%s takes no argument.\n", row.long_name);
        return false;
    }
    if (row.arg == ArgKind::Required && !value) {
        if (*i >= argc) {
            *err = format("Option --%s missing argument.\n", row.long_name);
            return false;
        }
        value = argv[(*i)++];
    }
    return apply(row, value, o, err);
}

/* The checks once every word is read: flags that cannot go together, and
 * words no action takes. */
bool check_parsed(const Options& o, bool dash_dash, const OptionRow* action_row, const char* left,
                  std::string* err) {
    if (o.mail && (!o.store_output || o.gzip)) {
        *err = "For e-mail, you should store the output (not through gzip)\n";
        return false;
    }
    if (o.action == Action::Enqueue && o.hold && !dash_dash && o.command.size() == 1 &&
        o.command[0].find_first_not_of("0123456789") == std::string::npos) {
        *err = format("ts --hold %s would queue a command named %s: ts --hold=%s holds job %s "
                      "(to queue a command named %s: ts --hold -- %s).\n",
                      o.command[0].c_str(), o.command[0].c_str(), o.command[0].c_str(),
                      o.command[0].c_str(), o.command[0].c_str(), o.command[0].c_str());
        return false;
    }
    // task-spooler's actions ignore the words after them (ts-spec §1.1); ours take none.
    if (left && o.action != Action::Enqueue && action_row && action_row->long_name) {
        *err = format("%s takes no command: '%s' is left over.\n", flag_word(*action_row).c_str(),
                      printable(left).c_str());
        return false;
    }
    return true;
}

/* One pass over argv: where it is, and what it carries from word to word. */
struct Parser {
    int argc;
    const char* const* argv;
    Options* o;
    std::string* err;
    int i = 1;
    const OptionRow* pending = nullptr;      // a letter waiting for its id
    const OptionRow* action_row = nullptr;   // the row that chose the action last
    bool dash_dash = false;

    /* Apply a row, noting it when it chose the action. */
    bool take(const OptionRow& row, const char* arg) {
        Action before = o->action;
        if (!apply(row, arg, o, err)) return false;
        if (row.action || o->action != before) action_row = &row;
        return true;
    }

    /* "-abc", "-w5", "-L lab": letters, the last of which may take the next word. */
    bool letters(const char* a) {
        for (const char* p = a + 1; *p; ++p) {
            const OptionRow* row = find_letter(*p);
            if (!row) {
                *err = format("Wrong option %c.\n", *p);
                return false;
            }
            const char* arg = nullptr;
            if (row->arg != ArgKind::None) {
                if (p[1]) arg = p + 1;   // attached: -w5
                else if (i < argc && row->arg == ArgKind::OptionalId) {
                    pending = row;       // the next word, read by words()
                    return true;
                } else if (i < argc) arg = argv[i++];   // next word, whatever it is
            }
            if (!take(*row, arg)) return false;
            if (row->arg != ArgKind::None) break;  // the argument took the rest of the word
        }
        return true;
    }

    /* The options, up to the first word that is none (or "--"). */
    bool words() {
        while (i < argc) {
            const char* a = argv[i];
            if (pending && !is_our_long_option(a)) {   // its id, whatever it is
                ++i;
                if (!take(*std::exchange(pending, nullptr), a)) return false;
                continue;
            }
            if (a[0] != '-' || a[1] == '\0') break;   // first non-option word
            ++i;
            if (std::strcmp(a, "--") == 0) {
                dash_dash = true;
                break;
            }
            // Long options: ours only, never task-spooler's letters. Any other
            // "--x" is read as letters, so "-" is the wrong option, as getopt says.
            if (!is_our_long_option(a)) {
                if (!letters(a)) return false;
                continue;
            }
            std::string name = a + 2;
            name.resize(std::min(name.size(), name.find('=')));
            const OptionRow* row = find_long(name.c_str());
            // Another action: the waiting letter had no id (and loses, as the earlier action).
            if (pending && row->action && !take(*std::exchange(pending, nullptr), nullptr)) return false;
            Action before = o->action;
            if (!parse_long(*row, a, argc, argv, &i, o, err)) return false;
            if (row->action || o->action != before) action_row = row;
        }
        // Only long options followed the letter: "the last job".
        return !pending || take(*std::exchange(pending, nullptr), nullptr);
    }
};

}  // namespace

/* An OptionalId letter that ends its word waits for its id in the next word,
 * whatever it is (task-spooler's getopt), except one of ts's own long options:
 * task-spooler has none, so "-k --signal=INT 1" was never job 0 in a working
 * script. That option is read, and the id is looked for after it. */
bool parse_options(int argc, const char* const* argv, Options* o, std::string* err) {
    o->argv0 = argc > 0 ? argv[0] : "ts";
    Parser p{argc, argv, o, err};
    if (!p.words()) return false;
    int i = p.i;
    if (o->action == Action::List && i < argc) {
        o->action = Action::Enqueue;
        o->command.assign(argv + i, argv + argc);
    }
    if (o->gpu_mem && o->gpus == 0) o->gpus = 1;
    return check_parsed(*o, p.dash_dash, p.action_row, i < argc ? argv[i] : nullptr, err);
}

std::string help_text(const std::string& argv0) {
    std::string s = format("usage: %s [action] [-ngfmdE] [-L <lab>] [-D <id>] [cmd...]\n", argv0.c_str());
    s += kEnvHelp;
    for (const auto& sec : kSections) {
        s += sec.heading;
        for (const OptionRow& r : kOptions)
            if (r.section == sec.section) s += help_line(r);
    }
    return s;
}
