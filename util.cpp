/*
 * util.cpp — see util.h.
 */
#include "util.h"

#include <algorithm>
#include <cerrno>
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

Fd open_private(const std::string& path, int flags, std::string* why) {
    Fd fd(::open(path.c_str(), flags | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600));
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
    else if (st.st_nlink != 1)
        *why = format("%s has %lu links (another name points at it)", path.c_str(),
                      static_cast<unsigned long>(st.st_nlink));
    else {
        int fl = fcntl(fd.get(), F_GETFL);
        if (fl >= 0) fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK);
        return fd;
    }
    errno = EPERM;
    return Fd();
}

Fd lock_file(const std::string& path, std::string* why, int timeout_ms) {
    Fd fd = open_private(path, O_RDWR | O_CREAT, why);
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

double now_seconds() {
    struct timeval tv;
    gettimeofday(&tv, nullptr);
    return double(tv.tv_sec) + double(tv.tv_usec) / 1e6;
}

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

/* Control characters (a newline in an argument, say) as C escapes, so that a
 * job is always one line of the list; every other byte as it is. */
std::string printable(const std::string& s, bool keep_lines) {
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
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

std::string shell_quote(const std::string& s) {
    static const char kPlain[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_@%+=:,./-";
    if (!s.empty() && s.find_first_not_of(kPlain) == std::string::npos) return s;
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

