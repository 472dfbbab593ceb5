/*
 * gpu_probe.cpp — the GPU probe as child processes of the loop (gpu_probe.h).
 */
#include "gpu_probe.h"

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace {

constexpr size_t kMaxProbeOutput = 1u << 20;   // nvidia-smi's answer, per step

/* The first line of a text, trimmed and bounded, for a message. */
std::string first_line(const std::string& t) {
    size_t b = t.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return "";
    std::string line = t.substr(b, t.find_first_of("\r\n", b) - b);
    if (line.size() > 160) line = line.substr(0, 160) + "...";
    return printable(line);
}

/* Whether drm_dir has an AMD card: only its PCI vendor is read here (the
 * kernel's copy of the card's configuration, no call into the driver). */
bool any_amd_card(const std::string& drm_dir) {
    DIR* d = opendir(drm_dir.c_str());
    if (!d) return false;
    bool found = false;
    while (dirent* e = readdir(d)) {
        std::string n = e->d_name;
        if (n.size() < 5 || n.compare(0, 4, "card") != 0 || n.find_first_not_of("0123456789", 4) != std::string::npos)
            continue;
        std::string vendor;
        if (read_file(drm_dir + "/" + n + "/device/vendor", &vendor) && vendor.compare(0, 6, "0x1002") == 0) {
            found = true;
            break;
        }
    }
    closedir(d);
    return found;
}

/* The path of a program as execvp would find it (name with a '/': itself),
 * or "" when there is no executable file of that name. */
std::string find_program(const std::string& name) {
    auto runnable = [](const std::string& p) {
        struct stat st;
        return stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(p.c_str(), X_OK) == 0;
    };
    if (name.find('/') != std::string::npos) return runnable(name) ? name : "";
    const char* path = getenv("PATH");
    std::string dirs = path ? path : "/usr/local/bin:/usr/bin:/bin";
    size_t pos = 0;
    while (pos <= dirs.size()) {
        size_t colon = dirs.find(':', pos);
        std::string dir = dirs.substr(pos, colon == std::string::npos ? std::string::npos : colon - pos);
        std::string p = (dir.empty() ? std::string(".") : dir) + "/" + name;
        if (runnable(p)) return p;
        if (colon == std::string::npos) break;
        pos = colon + 1;
    }
    return "";
}

/* The lines of a query without mig.mode.current, with it (as [N/A]) before
 * the name, the last field, as parse_query_gpu reads them. */
std::string with_mig_field(const std::string& text) {
    std::string out;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        pos = nl == std::string::npos ? text.size() : nl + 1;
        size_t at = 0;
        int commas = 0;
        for (; at < line.size() && commas < 7; ++at)
            if (line[at] == ',') ++commas;
        if (commas == 7) line.insert(at, " [N/A],");
        out += line + "\n";
    }
    return out;
}

}  // namespace

const char* const kQueryGpuFieldsOld = "index,uuid,pci.bus_id,memory.total,memory.used,utilization.gpu,compute_mode,name";

bool GpuProbe::start(double now, std::string* why) {
    if (running()) {
        *why = "a probe is running";
        return false;
    }
    // A killed nvidia-smi that never ends is stuck in the driver: another
    // would only get stuck beside it.
    if (!killed_.empty()) {
        *why = format("nvidia-smi (pid %d) was killed for taking more than %g s, and has not ended yet",
                      int(killed_.front()), s_.timeout);
        return false;
    }
    cur_ = GpuSnapshot();
    cur_.when = now;
    if (s_.nvidia_smi.empty()) next_after_nvidia(now);   // AMD only
    else (void)spawn(Step::Gpus, now);                 // if it cannot start, the probe goes on or ends
    return true;
}

/* Run one nvidia-smi query; false (with the probe finished) when it cannot start. */
bool GpuProbe::spawn(Step step, double now) {
    std::string query = step == Step::Gpus    ? std::string("--query-gpu=") + kQueryGpuFields
                        : step == Step::GpusOld ? std::string("--query-gpu=") + kQueryGpuFieldsOld
                                                : std::string("--query-compute-apps=") + kQueryAppsFields;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        finish(false, format("cannot run nvidia-smi: pipe: %s", strerror(errno)));
        return false;
    }
    Fd rd(p[0]), wr(p[1]);
    set_nonblock(rd.get());   // ours only: nvidia-smi writes as to any pipe
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, wr.get(), 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_init(&at);
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE}) sigaddset(&dflt, sig);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dflt);
    posix_spawnattr_setpgroup(&at, 0);   // its own group: a deadline kills all of it
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    const char* argv[] = {s_.nvidia_smi.c_str(), query.c_str(), "--format=csv,noheader,nounits", nullptr};
    pid_t pid = 0;
    // Found here, not by the child: "not there" is then an answer (no
    // NVIDIA card), whatever posix_spawn can report of a failed exec.
    std::string prog = find_program(s_.nvidia_smi);
    int err = prog.empty() ? ENOENT
                           : posix_spawn(&pid, prog.c_str(), &fa, &at, const_cast<char* const*>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    if (err != 0) {
        if (err == ENOENT && step == Step::Gpus) {
            // No nvidia-smi: no NVIDIA cards (AMD ones may still be there).
            cur_.no_nvidia_smi = true;
            next_after_nvidia(now);
        } else {
            finish(false, format("cannot run %s: %s", printable(s_.nvidia_smi).c_str(), strerror(err)));
        }
        return false;
    }
    step_ = step;
    out_ = std::move(rd);
    pid_ = pgid_ = pid;   // its own group, of its pid
    eof_ = false;
    status_ = 0;
    text_.clear();
    deadline_ = now + s_.timeout;
    return true;
}

void GpuProbe::readable(double now) {
    if (!out_) return;
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(out_.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) break;
        text_.append(buf, size_t(n));
        if (text_.size() > kMaxProbeOutput) {
            kill_group();
            out_.reset();
            finish(false, "nvidia-smi wrote more than 1 MiB: killed");
            return;
        }
    }
    out_.reset();
    eof_ = true;
    if (pid_ == 0) step_done(now);
}

bool GpuProbe::reaped(pid_t pid, int status, double now) {
    for (auto it = killed_.begin(); it != killed_.end(); ++it)
        if (*it == pid) {
            killed_.erase(it);
            return true;
        }
    if (pid != pid_ || pid == 0) return false;
    pid_ = 0;
    status_ = status;
    if (eof_) step_done(now);
    return true;
}

void GpuProbe::check(double now) {
    if (step_ == Step::Idle || now < deadline_) return;
    kill_group();
    out_.reset();
    finish(false, format("%s did not answer within %g s: killed",
                         step_ == Step::Amd ? "reading the AMD cards" : "nvidia-smi", s_.timeout));
}

/* A step's output is all read and its process reaped. */
void GpuProbe::step_done(double now) {
    int code = WIFEXITED(status_) ? WEXITSTATUS(status_) : -1;
    if (WIFSIGNALED(status_)) {
        finish(false, format("nvidia-smi was killed by signal %d", WTERMSIG(status_)));
        return;
    }
    std::string err;
    std::vector<std::string> warnings;
    if (step_ == Step::Gpus && code == 2 && text_.find("mig.mode.current") != std::string::npos) {
        (void)spawn(Step::GpusOld, now);   // a driver older than MIG (before 450): ask without that field
        return;
    }
    if (step_ == Step::GpusOld && code == 0) text_ = with_mig_field(text_);
    if (step_ == Step::Gpus || step_ == Step::GpusOld) {
        // 6: "No devices were found", which is an answer: no NVIDIA card.
        if (code == 6 || (code == 0 && parse_query_gpu(text_, &cur_.cards, &err, &warnings))) {
            if (code == 6) cur_.cards.clear();
            else   // what names no card it keeps: a line left out, cards beyond the limit
                for (const std::string& w : warnings)
                    if (w.find(" left out") != std::string::npos) cur_.unread.push_back(w);
            cur_.source = "nvidia-smi";
            if (cur_.cards.empty()) next_after_nvidia(now);
            else (void)spawn(Step::Apps, now);
            return;
        }
        std::string why = code == 0 ? "nvidia-smi's answer cannot be read: " + err : nvidia_smi_failure(code);
        if (code != 0 && !first_line(text_).empty()) why += ": " + first_line(text_);
        finish(false, why);
        return;
    }
    if (step_ == Step::Amd) {
        std::vector<GpuCard> amd;
        if (code == 0 && parse_query_gpu(text_, &amd, &err, &warnings)) {
            if (!amd.empty()) cur_.source += cur_.source.empty() ? "sysfs" : ", sysfs";
            for (GpuCard& c : amd) {
                c.vendor = GpuVendor::Amd;
                cur_.cards.push_back(std::move(c));
            }
            finish(true, "");
        } else {
            finish(false, "the AMD cards cannot be read from " + printable(s_.sysfs));
        }
        return;
    }
    if (code == 0 && parse_compute_apps(text_, &cur_.procs, &err, &warnings)) {
        next_after_nvidia(now);
        return;
    }
    std::string why = code == 0 ? "nvidia-smi's list of processes cannot be read: " + err
                                : nvidia_smi_failure(code) + " (listing processes)";
    if (code != 0 && !first_line(text_).empty()) why += ": " + first_line(text_);
    finish(false, why);
}

/* NVIDIA's part is done (or there is none): the AMD cards, if any are looked for. */
void GpuProbe::next_after_nvidia(double now) {
    // Beside NVIDIA cards, an AMD one is most often a processor's graphics
    // (a Ryzen's): looked for there only when TS_GPU_SYSFS says so.
    bool nvidia = !cur_.cards.empty();
    if (s_.sysfs.empty() || (nvidia && !s_.amd_beside_nvidia) || !any_amd_card(s_.sysfs)) finish(true, "");
    else (void)fork_amd(now);
}

/* Read sysfs in a child, which writes the cards as --query-gpu lines. */
bool GpuProbe::fork_amd(double now) {
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        finish(false, format("cannot read the AMD cards: pipe: %s", strerror(errno)));
        return false;
    }
    Fd rd(p[0]), wr(p[1]);
    set_nonblock(rd.get());
    pid_t pid = fork();
    if (pid < 0) {
        finish(false, format("cannot read the AMD cards: fork: %s", strerror(errno)));
        return false;
    }
    if (pid == 0) {
        // Nothing of the server's: a child stuck in the driver must hold no
        // socket, journal or pipe of it, nor run its signal handlers.
        setpgid(0, 0);
        for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGPIPE}) signal(sig, SIG_DFL);
        close_other_fds({wr.get()});
        std::string out;
        for (const GpuCard& c : read_amd_cards(s_.sysfs)) {
            out += format("%d, %s, %s, %llu, %s, %s, Default, Disabled, %s\n", c.index, c.uuid.c_str(),
                          c.bus_id.empty() ? "[N/A]" : c.bus_id.c_str(), (unsigned long long)(c.mem_total >> 20),
                          c.mem_known ? std::to_string(c.mem_used >> 20).c_str() : "[N/A]",
                          c.util >= 0 ? std::to_string(c.util).c_str() : "[N/A]", c.name.c_str());
        }
        _exit(write_all(wr.get(), out.data(), out.size()) ? 0 : 1);
    }
    setpgid(pid, pid);   // also here: no race with the child's own
    step_ = Step::Amd;
    out_ = std::move(rd);
    pid_ = pgid_ = pid;
    eof_ = false;
    status_ = 0;
    text_.clear();
    deadline_ = now + s_.timeout;
    return true;
}

/* Kill the running step's process group (what is left of it: its first
 * process may have ended, and a child of it still hold the pipe). */
void GpuProbe::kill_group() {
    if (pgid_ > 0) kill(-pgid_, SIGKILL);
    if (pid_ > 0) killed_.push_back(pid_);   // reaped later; none starts before
    pid_ = 0;
    pgid_ = 0;
}

void GpuProbe::reap(double now) {
    for (size_t i = 0; i < killed_.size();) {
        int st;
        pid_t r = waitpid(killed_[i], &st, WNOHANG);
        if (r == killed_[i] || (r < 0 && errno == ECHILD)) killed_.erase(killed_.begin() + long(i));
        else ++i;
    }
    int st = 0;
    if (pid_ > 0 && waitpid(pid_, &st, WNOHANG) == pid_) (void)reaped(pid_, st, now);
}

void GpuProbe::finish(bool ok, const std::string& error) {
    step_ = Step::Idle;
    out_.reset();
    pgid_ = 0;
    cur_.ended = mono_now();
    cur_.ok = ok;
    cur_.error = error;
    result_ = std::move(cur_);
    cur_ = GpuSnapshot();
    have_result_ = true;
}

bool GpuProbe::take(GpuSnapshot* out) {
    if (!have_result_) return false;
    *out = std::move(result_);
    have_result_ = false;
    return true;
}

void mark_ts_processes(GpuSnapshot* s, const std::set<pid_t>& job_pids) {
    std::vector<GpuProcess> kept;
    for (GpuProcess& p : s->procs) {
        std::string stat;
        // One not in /proc is gone since, or in another pid namespace (another
        // container's): which, nothing here can tell, so it is not ours.
        if (!read_file(format("/proc/%d/stat", int(p.pid)), &stat)) {
            kept.push_back(std::move(p));
            continue;
        }
        // pid (comm) state ppid pgrp session ...: comm may hold anything, so from the last ')'.
        size_t rp = stat.rfind(')');
        int ppid = 0, pgrp = 0, sid = 0;
        char state = 0;
        if (rp != std::string::npos && sscanf(stat.c_str() + rp + 1, " %c %d %d %d", &state, &ppid, &pgrp, &sid) == 4)
            p.ours = job_pids.count(p.pid) || job_pids.count(pid_t(sid));
        kept.push_back(std::move(p));
    }
    s->procs = std::move(kept);
}
