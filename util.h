/*
 * util.h — small pieces every part of ts uses: an owning file descriptor
 * (Fd), printf-style string formatting, fatal and non-fatal error
 * reporting, and blocking read/write loops that survive EINTR.
 *
 * Errors: die() prints "ts: <message>" (the caller's text only: the
 * task-spooler compatible messages have no prefix, so callers pass the
 * exact line) and exits 255, the code task-spooler uses for every error.
 */
#pragma once

#include <cstdarg>
#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

/* Exit codes, in one place (documented in ts.1 under EXIT STATUS). */
constexpr int kExitOk = 0;
constexpr int kExitQueueFull = 2;   // -B and the queue is full
constexpr int kExitTimedOut = 124;  // -w, -f: the job timed out (--timeout), as timeout(1)
constexpr int kExitDuplicate = 3;   // --unique: the same command is queued or running already
constexpr int kExitError = 255;     // every other error (task-spooler's exit(-1))

/* A move-only owner of a file descriptor. */
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(o.release()) {}
    Fd& operator=(Fd&& o) noexcept;
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const { return fd_; }
    int release() { int f = fd_; fd_ = -1; return f; }
    void reset(int fd = -1);
    explicit operator bool() const { return fd_ >= 0; }

private:
    int fd_ = -1;
};

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string vformat(const char* fmt, va_list ap);
/* A count and its noun, in the singular for 1: counted(1, "job", "jobs") is "1 job". */
std::string counted(size_t n, const char* one, const char* many);

/* Print the message (a newline is added) to stderr and exit 255. */
[[noreturn]] void die(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the exact text to stderr and exit with the given code. */
[[noreturn]] void die_with(int code, const std::string& text);

/* Write all of buf; false on error (errno set). Retries EINTR. */
[[nodiscard]] bool write_all(int fd, const void* buf, size_t len);
/* Read exactly len bytes; false on EOF or error. Retries EINTR. */
[[nodiscard]] bool read_exact(int fd, void* buf, size_t len);

bool set_nonblock(int fd);
bool set_cloexec(int fd);

/* Open a file of ours next to a queue's socket, in a directory other users
 * may write: O_NOFOLLOW and O_NONBLOCK (a symlink or a FIFO planted there is
 * never followed or waited on), never truncated, and then checked: a regular
 * file, owned by us, with one link unless the directory is writable by its
 * owner alone (us or root: then nobody else could have made a second name
 * there, and one made elsewhere is harmless) or flags has kLinksOk. flags are
 * open()'s (O_CREAT makes it 0600). An invalid Fd, with *why saying what is
 * wrong, otherwise. */
constexpr int kLinksOk = 010000000000;   // (not an open() flag)
Fd open_private(const std::string& path, int flags, std::string* why);

/* Open (creating, 0600) and write-lock a lock file (fcntl, so it goes with the
 * process), waiting at most timeout_ms for the lock. An invalid Fd with *why
 * if it cannot be opened safely (open_private), or stays locked. */
Fd lock_file(const std::string& path, std::string* why, int timeout_ms = 10000);

/* Point stdin, stdout and stderr at /dev/null (a daemon, a detached runner). */
void stdio_to_dev_null();

/* Close every descriptor >= 3 except those in `keep`. */
void close_other_fds(std::initializer_list<int> keep = {});

/* Name the process in ps/top (/proc/PID/comm) where the system allows it. */
void set_process_name(const char* name);

/* Two clocks, never mixed: setting the system's clock must move no timer,
 * deadline or back-off, and what users see and the journal keeps is the
 * time of day:
 *   wall_now(): seconds since the epoch (CLOCK_REALTIME), for what is shown
 *     to users and journaled (enqueue, start and end times, the log); it
 *     jumps when the clock is set (NTP, date -s, a VM resumed).
 *   mono_now(): seconds on CLOCK_MONOTONIC, for every timer, deadline,
 *     back-off, duration and freshness; it never jumps, and means nothing
 *     outside this process: never journaled, never sent. */
double wall_now();
double mono_now();
/* For unit tests only (nothing in ts calls it, no setting reaches it): the
 * wall clock read by wall_now() is stepped by this many seconds, as NTP or
 * date -s would step it. */
void step_wall_clock_for_tests(double seconds);
/* Sleep this long (seconds, fractions too), or until a signal comes. */
void sleep_seconds(double s);
/* Whether a process is a zombie (ended, not reaped yet), from /proc/PID/stat. */
bool is_zombie(pid_t pid);

/* Read the whole file; false when it cannot be opened. */
bool read_file(const std::string& path, std::string* out);
/* Append everything up to EOF on fd (a pipe, an open file) to *out; false on a read error. */
bool read_all(int fd, std::string* out);

/* Path with a directory part removed, and the directory part. */
std::string dir_name(const std::string& path);

/* Text with control characters escaped (\n, \t, \r, \xHH), for one-line output
 * that no one else's text can use to drive a terminal: C0 and C1 controls
 * (raw, or U+0080..U+009F in UTF-8), DEL, and the bidi overrides and
 * isolates (U+202A..U+202E, U+2066..U+2069); other UTF-8 text stays as it is.
 * With keep_lines, newlines and tabs stay (text of several lines, like TS_ENV's). */
std::string printable(const std::string& s, bool keep_lines = false);
/* An argument quoted for sh (as it is when it needs no quotes). */
std::string shell_quote(const std::string& s);
/* An argument for a shell line to show and paste: shell_quote's when it is
 * all printable ASCII, else bash's $'...' with every other byte as \xHH (so
 * it is exact once pasted, and puts no control on the terminal). */
std::string paste_quote(const std::string& s);

/* Durations, as --delay (and any option that takes a length of time) reads
 * them: one or more terms NUMBER UNIT, UNIT one of d h m s (days, hours,
 * minutes, seconds), each unit at most once and in that order ("1h30m",
 * "2d", "90s", "1.5h"); or a bare NUMBER, in seconds ("90"). NUMBER is
 * digits with an optional fraction (".5"); no sign, no spaces. At most
 * kMaxDuration. False (and *seconds untouched) for anything else; 0 parses
 * (a caller that needs more than 0 says so). */
constexpr double kMaxDuration = 10.0 * 366 * 86400;   // ten years
[[nodiscard]] bool parse_duration(std::string_view text, double* seconds);

/* --at: a time of day "HH:MM[:SS]" (the next one after now: today, or
 * tomorrow when it has passed today or is now), or a local date and time
 * "YYYY-MM-DD HH:MM[:SS]" (also with 'T' between them), which must be after
 * now. *at: seconds since the epoch. False with a sentence in *err (no final
 * period) for text of another shape, a time that does not exist, or one in
 * the past. */
[[nodiscard]] bool parse_at_time(std::string_view text, double now, double* at, std::string* err);

/* A wall-clock time as the local "YYYY-MM-DD HH:MM:SS". */
std::string local_time_text(double t);
/* A duration as parse_duration reads it back, shortest first: "90s" is
 * "1m30s", "0.5s", "2h". */
std::string format_duration(double seconds);
/* A signal as a name (TERM, SIGTERM, term, USR1, ...) or a number from 1 to
 * 64; false for anything else. */
[[nodiscard]] bool parse_signal(std::string_view text, int* sig);
