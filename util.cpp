/*
 * util.cpp — see util.h.
 */
#include "util.h"

#include <algorithm>
#include <iterator>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif
#include <sys/stat.h>
#include <sys/time.h>
#include <ctime>
#include <unistd.h>

Fd& Fd::operator=(Fd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
}

void Fd::reset(int fd) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
}

std::string vformat(const char* fmt, va_list ap) {
    va_list copy;
    va_copy(copy, ap);
    int n = std::vsnprintf(nullptr, 0, fmt, copy);
    va_end(copy);
    if (n <= 0) return std::string();
    std::string s(static_cast<size_t>(n) + 1, '\0');
    std::vsnprintf(&s[0], s.size(), fmt, ap);
    s.resize(static_cast<size_t>(n));
    return s;
}

std::string format(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string s = vformat(fmt, ap);
    va_end(ap);
    return s;
}

std::string counted(size_t n, const char* one, const char* many) {
    return format("%zu %s", n, n == 1 ? one : many);
}

void die(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    std::string s = vformat(fmt, ap);
    va_end(ap);
    s += '\n';
    die_with(kExitError, s);
}

void die_with(int code, const std::string& text) {
    std::fflush(stdout);
    (void)!write_all(STDERR_FILENO, text.data(), text.size());
    std::exit(code);
}

bool write_all(int fd, const void* buf, size_t len) {
    const char* p = static_cast<const char*>(buf);
    while (len > 0) {
        ssize_t n = ::write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        p += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

bool read_exact(int fd, void* buf, size_t len) {
    char* p = static_cast<char*>(buf);
    while (len > 0) {
        ssize_t n = ::read(fd, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        p += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

bool set_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

bool set_cloexec(int fd) {
    int fl = fcntl(fd, F_GETFD);
    return fl >= 0 && fcntl(fd, F_SETFD, fl | FD_CLOEXEC) == 0;
}

/* Whether nobody but us (or root) can make a name in dir: then a second link
 * to a file there was made elsewhere (another user's hard link to it, where
 * protected_hardlinks is off) and changes nothing of ours. */
static bool only_owner_writes(const std::string& dir) {
    struct stat st;
    return stat(dir.c_str(), &st) == 0 && (st.st_uid == geteuid() || st.st_uid == 0) &&
           !(st.st_mode & (S_IWGRP | S_IWOTH));
}

Fd open_private(const std::string& path, int flags, std::string* why) {
    Fd fd(::open(path.c_str(), (flags & ~kLinksOk) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
    if (!fd) {
        int e = errno;
        *why = e == ELOOP ? format("%s is a symbolic link", path.c_str())
                          : format("cannot %s %s: %s", (flags & O_CREAT) ? "create" : "open",
                                   path.c_str(), strerror(e));
        errno = e;
        return fd;
    }
    struct stat st;
    if (fstat(fd.get(), &st) != 0) {
        *why = format("%s: %s", path.c_str(), strerror(errno));
        return Fd();
    }
    if (!S_ISREG(st.st_mode))
        *why = format("%s is not a regular file", path.c_str());
    else if (st.st_uid != geteuid())
        *why = format("%s belongs to uid %u", path.c_str(), unsigned(st.st_uid));
    else if (st.st_nlink != 1 && !(flags & kLinksOk) && !only_owner_writes(dir_name(path)))
        *why = format("%s has %lu links: in a directory that other users may write, another name may "
                      "have been made for it (remove the other links, or keep the queue in a directory "
                      "that only you can write)",
                      path.c_str(), static_cast<unsigned long>(st.st_nlink));
    else {
        int fl = fcntl(fd.get(), F_GETFL);
        if (fl >= 0) fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK);
        return fd;
    }
    errno = EPERM;
    return Fd();
}

Fd lock_file(const std::string& path, std::string* why, int timeout_ms) {
    // Only locked, never written: a second name for it costs nothing.
    Fd fd = open_private(path, O_RDWR | O_CREAT | kLinksOk, why);
    if (!fd) return fd;
    struct flock lk {};
    lk.l_type = F_WRLCK;
    lk.l_whence = SEEK_SET;
    // Not F_SETLKW: a lock nobody releases must not hang us.
    for (int waited = 0;; waited += 10) {
        if (fcntl(fd.get(), F_SETLK, &lk) == 0) return fd;
        if (errno == EINTR) continue;
        if ((errno != EAGAIN && errno != EACCES) || waited >= timeout_ms) break;
        sleep_seconds(0.01);
    }
    struct flock who {};
    who.l_type = F_WRLCK;
    who.l_whence = SEEK_SET;
    if (fcntl(fd.get(), F_GETLK, &who) == 0 && who.l_type != F_UNLCK)
        *why = format("%s is held by process %d and was not released for %d s", path.c_str(),
                      int(who.l_pid), timeout_ms / 1000);
    else
        *why = format("%s: cannot lock it: %s", path.c_str(), strerror(errno));
    errno = EAGAIN;
    return Fd();
}

void stdio_to_dev_null() {
    int null = ::open("/dev/null", O_RDWR);
    if (null < 0) return;
    for (int fd = 0; fd < 3; ++fd)
        if (null != fd) dup2(null, fd);
    if (null > 2) ::close(null);
}

/* Close [lo, hi]; close_range(2) where the kernel has it, else one by one. */
static void close_span(unsigned lo, unsigned hi) {
    if (lo > hi) return;
#ifdef SYS_close_range
    if (syscall(SYS_close_range, lo, hi, 0u) == 0) return;
#endif
    long max = sysconf(_SC_OPEN_MAX);
    if (max < 0 || max > 65536) max = 65536;
    for (unsigned fd = lo; fd <= hi && fd < static_cast<unsigned>(max); ++fd) ::close(int(fd));
}

void close_other_fds(std::initializer_list<int> keep) {
    std::vector<int> k(keep);
    std::sort(k.begin(), k.end());
    unsigned lo = 3;
    for (int fd : k) {
        if (fd < 3) continue;
        if (unsigned(fd) > lo) close_span(lo, unsigned(fd) - 1);
        lo = unsigned(fd) + 1;
    }
    close_span(lo, ~0u);
}

void set_process_name(const char* name) {
#ifdef __linux__
    prctl(PR_SET_NAME, name, 0, 0, 0);
#else
    (void)name;
#endif
}

namespace {
double g_wall_step = 0;   // step_wall_clock_for_tests

double clock_seconds(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return double(ts.tv_sec) + double(ts.tv_nsec) / 1e9;
}
}  // namespace

double wall_now() { return clock_seconds(CLOCK_REALTIME) + g_wall_step; }
double mono_now() { return clock_seconds(CLOCK_MONOTONIC); }
void step_wall_clock_for_tests(double seconds) { g_wall_step += seconds; }

bool read_file(const std::string& path, std::string* out) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return false;
    out->clear();
    return read_all(fd.get(), out);
}

bool read_all(int fd, std::string* out) {
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n == 0;
        out->append(buf, static_cast<size_t>(n));
    }
}

std::string dir_name(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    if (slash == 0) return "/";
    return path.substr(0, slash);
}

void sleep_seconds(double s) {
    if (s <= 0) return;
    struct timespec ts = {static_cast<time_t>(s), static_cast<long>((s - double(time_t(s))) * 1e9)};
    (void)nanosleep(&ts, nullptr);   // a signal ends it early, as the waits it serves expect
}

bool is_zombie(pid_t pid) {
    std::string stat;
    if (!read_file(format("/proc/%d/stat", int(pid)), &stat)) return false;
    size_t paren = stat.rfind(')');
    return paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z';
}

namespace {
/* The length of the valid UTF-8 sequence of two or more bytes at s[i]
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF),
 * and its code point in *cp; 0 when there is none. */
size_t utf8_sequence(const std::string& s, size_t i, uint32_t* cp) {
    auto byte = [&s](size_t k) { return static_cast<unsigned char>(s[k]); };
    unsigned char c = byte(i);
    size_t n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return 0;
    // The second byte's range depends on the first (RFC 3629's table); the others are 80..BF.
    unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return 0;
    uint32_t v = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
    for (size_t k = 1; k < n; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) return 0;
        v = v << 6 | (byte(i + k) & 0x3f);
    }
    *cp = v;
    return n;
}

/* Characters that terminals act on rather than show: C1 controls (U+0080 to
 * U+009F: CSI, OSC, ...) and the bidirectional overrides and isolates,
 * which reorder what follows them on the line. */
bool acts_on_terminal(uint32_t cp) {
    return (cp >= 0x80 && cp <= 0x9f) || (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2066 && cp <= 0x2069);
}
}  // namespace

/* Control characters (a newline in an argument, say) as C escapes, so that a
 * job is always one line of the list, and nothing another user wrote can
 * drive the reader's terminal: C0 controls and DEL, C1 controls (a raw byte
 * 0x80..0x9f outside a UTF-8 sequence, or U+0080..U+009F encoded in UTF-8)
 * and the bidi overrides and isolates, each byte as \xHH. Every other byte
 * stays as it is: UTF-8 text, and bytes of other encodings (0xa0..0xff). */
std::string printable(const std::string& s, bool keep_lines) {
    std::string out;
    out.reserve(s.size());
    for (size_t i = 0; i < s.size();) {
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c >= 0x80) {
            uint32_t cp = 0;
            size_t n = utf8_sequence(s, i, &cp);
            if (n > 0 && !acts_on_terminal(cp)) {
                out.append(s, i, n);
            } else if (n > 0) {
                for (size_t k = 0; k < n; ++k) out += format("\\x%02x", static_cast<unsigned char>(s[i + k]));
            } else {   // a byte outside any sequence: a raw C1 control is escaped, the rest stays
                out += c <= 0x9f ? format("\\x%02x", c) : std::string(1, static_cast<char>(c));
                n = 1;
            }
            i += n;
            continue;
        }
        ++i;
        if ((c >= 0x20 && c != 0x7f) || (keep_lines && (c == '\n' || c == '\t'))) {
            out += static_cast<char>(c);
            continue;
        }
        switch (c) {
        case '\n': out += "\\n"; break;
        case '\t': out += "\\t"; break;
        case '\r': out += "\\r"; break;
        default: out += format("\\x%02x", c); break;
        }
    }
    return out;
}

std::string paste_quote(const std::string& s) {
    bool plain = std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
    if (plain) return shell_quote(s);
    std::string out = "$'";
    for (unsigned char c : s) {
        if (c == '\\' || c == '\'') out += '\\', out += char(c);
        else if (c >= 0x20 && c < 0x7f) out += char(c);
        else out += format("\\x%02x", c);
    }
    return out + "'";
}

std::string shell_quote(const std::string& s) {
    static const char kPlain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-";
    if (!s.empty() && s.find_first_not_of(kPlain) == std::string::npos) return s;
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}


// ------------------------------------------------------------ durations and times

namespace {
/* Digits with an optional fraction at the front of s, taken off it; false if none. */
bool take_number(std::string_view* s, double* v) {
    size_t i = 0, digits = 0, after_dot = 0;
    double n = 0, scale = 1;
    bool fraction = false;
    for (; i < s->size(); ++i) {
        char c = (*s)[i];
        if (c == '.' && !fraction) {
            fraction = true;
            continue;
        }
        if (c < '0' || c > '9' || digits >= 15) break;
        ++digits;
        if (fraction) ++after_dot, n += (c - '0') * (scale /= 10);
        else n = n * 10 + (c - '0');
    }
    // "", ".", ".5" and "5." are no numbers: digits on both sides of a dot
    if (digits == 0 || (*s)[0] == '.' || (fraction && after_dot == 0)) return false;
    s->remove_prefix(i);
    *v = n;
    return true;
}
}  // namespace

bool parse_duration(std::string_view s, double* seconds) {
    static constexpr struct {
        char unit;
        double seconds;
    } kUnits[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
    if (s.empty()) return false;
    double total = 0;
    size_t next_unit = 0;   // units come in kUnits' order, each once
    bool bare_ok = true;
    while (!s.empty()) {
        double n;
        if (!take_number(&s, &n)) return false;
        if (s.empty()) {   // a number without a unit: seconds, and only alone
            if (!bare_ok) return false;
            total = n;
            break;
        }
        bare_ok = false;
        size_t u = next_unit;
        while (u < std::size(kUnits) && kUnits[u].unit != s.front()) ++u;
        if (u == std::size(kUnits)) return false;
        total += n * kUnits[u].seconds;
        next_unit = u + 1;
        s.remove_prefix(1);
    }
    if (!(total <= kMaxDuration)) return false;
    *seconds = total;
    return true;
}

namespace {
/* Exactly n digits at the front of s, taken off it. */
bool take_digits(std::string_view* s, size_t n, int* v) {
    if (s->size() < n) return false;
    int x = 0;
    for (size_t i = 0; i < n; ++i) {
        char c = (*s)[i];
        if (c < '0' || c > '9') return false;
        x = x * 10 + (c - '0');
    }
    s->remove_prefix(n);
    *v = x;
    return true;
}

bool take_char(std::string_view* s, const char* one_of) {
    if (s->empty() || !std::strchr(one_of, s->front())) return false;
    s->remove_prefix(1);
    return true;
}

/* "HH:MM[:SS]", all of s, into tm's fields. */
bool take_clock(std::string_view s, struct tm* tm) {
    int h, m, sec = 0;
    if (!take_digits(&s, 2, &h) || !take_char(&s, ":") || !take_digits(&s, 2, &m)) return false;
    if (!s.empty() && (!take_char(&s, ":") || !take_digits(&s, 2, &sec))) return false;
    if (!s.empty() || h > 23 || m > 59 || sec > 59) return false;
    tm->tm_hour = h, tm->tm_min = m, tm->tm_sec = sec;
    return true;
}

/* mktime of *tm as local time, and whether it is the time tm says (not one
 * that mktime moved: 31 February, a time skipped by a change to summer time). */
bool local_time(struct tm tm, double* t) {
    struct tm want = tm;
    tm.tm_isdst = -1;
    time_t r = mktime(&tm);
    if (r == time_t(-1)) return false;
    *t = double(r);
    return tm.tm_year == want.tm_year && tm.tm_mon == want.tm_mon && tm.tm_mday == want.tm_mday &&
           tm.tm_hour == want.tm_hour && tm.tm_min == want.tm_min && tm.tm_sec == want.tm_sec;
}
}  // namespace

bool parse_at_time(std::string_view text, double now, double* at, std::string* err) {
    std::string shown = printable(std::string(text));
    time_t tnow = static_cast<time_t>(now);
    struct tm tm;
    localtime_r(&tnow, &tm);
    if (text.size() <= 8) {   // a time of day: the next one
        if (!take_clock(text, &tm)) {
            *err = format("'%s' is not a time HH:MM[:SS] or YYYY-MM-DD HH:MM[:SS]", shown.c_str());
            return false;
        }
        for (int day = 0; day < 3; ++day, ++tm.tm_mday) {   // today, else tomorrow (or after a skipped hour)
            struct tm t = tm;
            double when;
            if (local_time(t, &when) && when > now) {
                *at = when;
                return true;
            }
            mktime(&t);   // normalise tm_mday before the next day
            tm.tm_year = t.tm_year, tm.tm_mon = t.tm_mon, tm.tm_mday = t.tm_mday;
        }
        *err = format("'%s' does not come in the next days (local time)", shown.c_str());
        return false;
    }
    std::string_view s = text;
    int y, mo, d;
    if (!take_digits(&s, 4, &y) || !take_char(&s, "-") || !take_digits(&s, 2, &mo) || !take_char(&s, "-") ||
        !take_digits(&s, 2, &d) || !take_char(&s, "T ") || !take_clock(s, &tm)) {
        *err = format("'%s' is not a time HH:MM[:SS] or YYYY-MM-DD HH:MM[:SS]", shown.c_str());
        return false;
    }
    tm.tm_year = y - 1900, tm.tm_mon = mo - 1, tm.tm_mday = d;
    double when;
    if (mo < 1 || mo > 12 || d < 1 || !local_time(tm, &when)) {
        *err = format("'%s' is not a time that exists (local time)", shown.c_str());
        return false;
    }
    if (when <= now) {
        *err = format("'%s' is in the past", shown.c_str());
        return false;
    }
    *at = when;
    return true;
}

std::string local_time_text(double t) {
    time_t tt = static_cast<time_t>(t);
    struct tm tm;
    localtime_r(&tt, &tm);
    char buf[32];
    strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    return buf;
}

std::string format_duration(double seconds) {
    if (seconds < 60 && seconds != double(int64_t(seconds))) return format("%gs", seconds);
    int64_t s = int64_t(seconds + 0.5);
    std::string out;
    const std::pair<int64_t, char> units[] = {{86400, 'd'}, {3600, 'h'}, {60, 'm'}, {1, 's'}};
    for (const auto& [n, c] : units)
        if (s >= n) {
            out += format("%lld%c", static_cast<long long>(s / n), c);
            s %= n;
        }
    return out.empty() ? "0s" : out;
}

bool parse_signal(std::string_view text, int* sig) {
    static const std::pair<const char*, int> kNames[] = {
        {"HUP", SIGHUP},   {"INT", SIGINT},   {"QUIT", SIGQUIT}, {"ILL", SIGILL},     {"TRAP", SIGTRAP},
        {"ABRT", SIGABRT}, {"BUS", SIGBUS},   {"FPE", SIGFPE},   {"KILL", SIGKILL},   {"USR1", SIGUSR1},
        {"SEGV", SIGSEGV}, {"USR2", SIGUSR2}, {"PIPE", SIGPIPE}, {"ALRM", SIGALRM},   {"TERM", SIGTERM},
        {"CHLD", SIGCHLD}, {"CONT", SIGCONT}, {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
        {"TTOU", SIGTTOU}, {"URG", SIGURG},   {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ},   {"VTALRM", SIGVTALRM},
        {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},   {"PWR", SIGPWR},     {"SYS", SIGSYS},
    };
    if (text.empty() || text.size() > 12) return false;
    if (text.find_first_not_of("0123456789") == std::string_view::npos) {
        int n = std::atoi(std::string(text).c_str());
        if (n < 1 || n > 64) return false;
        *sig = n;
        return true;
    }
    std::string name;
    for (char c : text) name += char(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    if (name.rfind("SIG", 0) == 0) name.erase(0, 3);
    for (const auto& [n, s] : kNames)
        if (name == n) {
            *sig = s;
            return true;
        }
    return false;
}
