/*
 * connect.cpp — reaching a queue's server, and starting one: see connect.h.
 *
 * When nothing answers at the socket, the client takes a lock on
 * <socket>.lock, tries once more (another client may have just started a
 * server), and otherwise binds and listens on the socket itself and only then
 * forks the server (twice, so that init adopts it), handing it the listening
 * socket and a close-on-exec pipe. The server closes the pipe when it is
 * ready, or writes why it could not start. Binding before forking, under the
 * lock, means that any number of clients racing to start a server end with
 * exactly one.
 *
 * The lock file is let go once the server is up, and files in /tmp do not
 * last (a cleaner deletes them, or `rm -rf`): what keeps a queue to one
 * server is its guard, an abstract Unix socket name made from the socket's
 * canonical path, bound (before the path) by the client that starts the
 * server and held by the server for its whole life. The kernel gives a name
 * to one socket at a time and takes it back when its holder dies, so no file
 * operation can free it. A client that finds no socket at the path but the
 * guard held starts nothing: its connection to the guard tells the server to
 * look at its files, which puts the socket back (server.cpp), and the client
 * waits for it a moment, then says what is wrong. Abstract names have no
 * permissions: another user may bind a queue's guard first; the server then
 * starts without one (its log says so), and a client that would start a
 * server looks for one of its own uid in the kernel's table of listening
 * sockets (/proc/net/unix keeps a socket's path after the file is removed)
 * before it takes the guard: still one server per queue.
 *
 * Whether a queue's location is trusted, and who the queue belongs to, is
 * asked of place.h before anything is connected to or started.
 */
#include "connect.h"

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "place.h"
#include "server.h"   // run_server: the forked child becomes the server

namespace {

/* The guard's address: a NUL, then the name (the abstract namespace). */
socklen_t guard_address(const std::string& abs_path, sockaddr_un* a) {
    std::string name = guard_name(abs_path);
    *a = sockaddr_un{};
    a->sun_family = AF_UNIX;
    std::memcpy(a->sun_path + 1, name.data(), name.size());
    return socklen_t(offsetof(sockaddr_un, sun_path) + 1 + name.size());
}

/* Whether a process is gone (or only a zombie). */
bool process_gone(pid_t pid) { return (kill(pid, 0) != 0 && errno == ESRCH) || is_zombie(pid); }

/* A queue whose guard is held but whose socket is gone: the connection to
 * the guard has asked its server to put the socket back; wait for it a
 * moment. An invalid Fd and *err when it does not come. */
Fd await_socket(const Socket& s, const GuardHolder& g, std::string* err, bool* released = nullptr) {
    // 3 s: the server looks at once when poked (within a second without a guard)
    for (int i = 0; i < 150; ++i) {
        Fd fd = try_connect(s.path);
        if (fd) return fd;
        if (i % 5 == 4 && (g.by_guard ? !guard_held(s.abs_path) : process_gone(g.pid))) {
            // it was exiting (-K, SIGTERM): gone now
            if (released) *released = true;
            return Fd();
        }
        sleep_seconds(0.02);
    }
    std::string pid = g.pid > 0 ? format(" (pid %d)", int(g.pid)) : "";
    *err = format("The queue's server%s is running, but its socket %s is gone and the server has not "
                  "made it again (its log %s.error says why): no second server was started. Make "
                  "sure the socket's directory exists and its owner can write it, or stop that "
                  "server (kill %s) to start afresh.",
                  pid.c_str(), s.path.c_str(), s.abs_path.c_str(),
                  g.pid > 0 ? format("%d", int(g.pid)).c_str() : "it");
    return Fd();
}


/* make check-valgrind: the server runs under valgrind, which needs an exec:
 * ts --internal-serve LISTEN_FD GUARD_FD ERROR_FD SOCKET (see main). Logs go to
 * TS_VALGRIND.PID. Falls back to running the server here if that fails. */
void exec_under_valgrind(const char* log_prefix, const Fd& lfd, const Fd& guard, const Fd& err_w,
                         const std::string& path, bool take_settings) {
    for (const Fd* f : {&lfd, &guard, &err_w})   // they must survive the exec
        if (*f) fcntl(f->get(), F_SETFD, 0);
    std::string log = format("--log-file=%s.%%p", log_prefix);
    std::string l = format("%d", lfd.get()), g = format("%d", guard.get()), e = format("%d", err_w.get());
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return;
    self[n] = '\0';
    // valgrind's own files. The server never uses TMPDIR; its spare runners
    // make their output files there ahead, which then fit no job's TMPDIR:
    // under valgrind every job makes its own file, the slower way.
    setenv("TMPDIR", "/tmp", 1);
    execlp("valgrind", "valgrind", "-q", "--leak-check=full", "--errors-for-leak-kinds=definite",
           "--child-silent-after-fork=no", log.c_str(), self, "--internal-serve", l.c_str(),
           g.c_str(), e.c_str(), path.c_str(), take_settings ? "reconfigure" : static_cast<char*>(nullptr),
           static_cast<char*>(nullptr));
    for (const Fd* f : {&lfd, &guard, &err_w})
        if (*f) set_cloexec(f->get());
}

/* -K and nobody answers: empty the queue without starting a server for it
 * (under the lock, so no server can be starting meanwhile). */
bool forget_dead_queue(const Socket& s, std::string* err) {
    struct stat st;
    if (lstat(s.path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
        *err = format("The socket path exists and it is not a unix socket: %s", s.path.c_str());
        return false;
    }
    QueueOwner owner = queue_owner(s.abs_path);
    if (owner.known && owner.uid != getuid() && getuid() != 0) {
        *err = format("The queue at %s belongs to uid %u (%s): only that user or root may empty it.",
                      s.path.c_str(), unsigned(owner.uid), owner.why.c_str());
        return false;
    }
    unlink(s.path.c_str());
    unlink((s.path + ".journal").c_str());
    return true;
}

/* The answer to "who serves this queue" must be its owner: anyone else at
 * the path gets nothing from us, not even the request. */
bool check_server(const Socket& s, int fd, std::string* err) {
    uid_t peer = peer_uid(fd);
    struct stat st;
    if (s.is_default && (peer != getuid() || (stat(s.path.c_str(), &st) == 0 && st.st_uid != getuid()))) {
        *err = format("The uid %u does not own the socket %s.", unsigned(getuid()), s.path.c_str());
        return false;
    }
    // Seen from the peer's side: a server whose uid owns the directory, or
    // else the journal or the lock, is the queue's (a stale file of our own
    // there must not make us refuse the real one).
    QueueOwner owner = queue_owner(s.abs_path, peer, false);
    if (owner.known && peer != owner.uid) {
        *err = format("The server at %s runs as uid %u, but the queue belongs to uid %u (%s): it is "
                      "not the queue's server, and nothing was sent to it.",
                      s.path.c_str(), unsigned(peer), unsigned(owner.uid), owner.why.c_str());
        return false;
    }
    return true;
}

/* The processes of ours that listen on the queue's socket (the server; the
 * kernel's answer, whatever ts binary it is): /proc/net/unix gives the
 * listening socket bound to the path, /proc/PID/fd who holds it. (The
 * credentials of a connection name the process that called listen(), which
 * for a ts server is the client that started it, long gone.) */
std::vector<pid_t> listeners_of(const Socket& s) {
    std::vector<std::string> inodes;
    std::string net, guard = "@" + guard_name(s.abs_path);
    for (int pass = 0; pass < 3; ++pass) {   // read page by page: entries may be skipped while others change
        if (!read_file("/proc/net/unix", &net)) break;
        size_t pos = 0;
        while (pos < net.size()) {
            size_t eol = net.find('\n', pos);
            if (eol == std::string::npos) eol = net.size();
            std::string line = net.substr(pos, eol - pos);
            pos = eol + 1;
            char flags[32] = "", path[4096] = "";
            unsigned long inode = 0;
            if (sscanf(line.c_str(), "%*s %*s %*s %31s %*s %*s %lu %4095s", flags, &inode, path) != 3)
                continue;
            // A name bound relative to a directory (TS_SOCKET=sock) may be
            // another queue's: such a listener must also hold this queue's
            // journal or log open (below).
            // The guard ('@' for the abstract namespace's NUL) is held by the server alone.
            if (std::string(flags) == "00010000" &&
                (s.abs_path == path || s.path == path || guard == path))
                inodes.push_back(format("%c socket:[%lu]", path[0] == '/' || path[0] == '@' ? 'a' : 'r', inode));
        }
    }
    std::vector<pid_t> pids;
    if (inodes.empty()) return pids;
    DIR* proc = opendir("/proc");
    if (!proc) return pids;
    while (struct dirent* e = readdir(proc)) {
        char* end = nullptr;
        long pid = strtol(e->d_name, &end, 10);
        if (pid <= 0 || *end) continue;
        struct stat st;
        std::string dir = format("/proc/%ld/fd", pid);
        if (stat(format("/proc/%ld", pid).c_str(), &st) != 0 || st.st_uid != getuid()) continue;
        DIR* fds = opendir(dir.c_str());
        if (!fds) continue;
        bool absolute = false, relative = false, ours = false;
        while (struct dirent* f = readdir(fds)) {
            char link[4096];
            ssize_t n = readlink((dir + "/" + f->d_name).c_str(), link, sizeof link - 1);
            if (n <= 0) continue;
            link[n] = '\0';
            std::string l(link);
            absolute = absolute || std::find(inodes.begin(), inodes.end(), "a " + l) != inodes.end();
            relative = relative || std::find(inodes.begin(), inodes.end(), "r " + l) != inodes.end();
            ours = ours || l == s.abs_path + ".journal" || l == s.abs_path + ".error";
        }
        closedir(fds);
        if (absolute || (relative && ours)) pids.push_back(static_cast<pid_t>(pid));
    }
    closedir(proc);
    return pids;
}

}  // namespace

Fd take_guard(const std::string& abs_path, GuardHolder* holder) {
    *holder = GuardHolder{};
    Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return fd;
    sockaddr_un a;
    socklen_t len = guard_address(abs_path, &a);
    if (bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) == 0 && listen(fd.get(), 16) == 0) return fd;
    fd.reset();
    if (errno == EADDRINUSE) *holder = guard_holder(abs_path);
    return fd;
}

/* A connection to the guard (ECONNREFUSED: bound by nobody, or not
 * listening: no server of ours); an invalid Fd when there is none. */
static Fd connect_guard(const std::string& abs_path) {
    Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fd;
    sockaddr_un a;
    socklen_t len = guard_address(abs_path, &a);
    int r;
    do {
        r = connect(fd.get(), reinterpret_cast<sockaddr*>(&a), len);
    } while (r != 0 && errno == EINTR);
    if (r != 0) fd.reset();
    return fd;
}

bool guard_held(const std::string& abs_path) { return bool(connect_guard(abs_path)); }

GuardHolder guard_holder(const std::string& abs_path) {
    GuardHolder g;
    Fd fd = connect_guard(abs_path);
    if (!fd) return g;
    g.held = true;
    g.uid = peer_uid(fd.get());
    Socket s;
    s.path = s.abs_path = abs_path;
    std::vector<pid_t> pids = listeners_of(s);
    if (pids.size() == 1) g.pid = pids[0];
    return g;
}

GuardHolder queue_server(const Socket& s, uid_t owner) {
    GuardHolder g = guard_holder(s.abs_path);
    if (g.held && (g.uid == getuid() || g.uid == owner)) return g;
    // Another user may have bound the guard's name first (or bound it when
    // our server started, and let it go since): ours then runs without one.
    std::vector<pid_t> pids = listeners_of(s);
    if (pids.empty()) return GuardHolder{};
    GuardHolder ours;
    ours.held = true;
    ours.uid = getuid();
    ours.pid = pids[0];
    ours.by_guard = false;
    return ours;
}

Socket socket_location() {
    Socket s;
    const char* env = getenv("TS_SOCKET");
    if (env) {
        s.path = env;
    } else {
        const char* tmp = getenv("TMPDIR");
        s.path = format("%s/socket-ts.%u", tmp && *tmp ? tmp : "/tmp", unsigned(getuid()));
        s.is_default = true;
    }
    if (s.path.empty()) die("The server didn't come up.");
    if (s.path.size() >= sizeof(sockaddr_un{}.sun_path))
        die("Cannot create the socket '%s'. Probably, the name is too long.", s.path.c_str());
    s.abs_path = s.path;
    if (s.path[0] != '/') {
        char cwd[4096];
        if (getcwd(cwd, sizeof cwd)) s.abs_path = std::string(cwd) + "/" + s.path;
    }
    return s;
}

/* connect(); an invalid Fd with errno set on failure. */
Fd try_connect(const std::string& path) {
    Fd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return fd;
    sockaddr_un a = unix_address(path);
    int r;
    do {
        r = connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    } while (r != 0 && errno == EINTR);
    if (r != 0) {
        int e = errno;
        fd.reset();
        errno = e;
    }
    return fd;
}

/* Before a start: the guard taken (unless a server of ours runs without it,
 * found in /proc), and a stale socket file removed. False with *err when
 * no server may be started: one of ours (or the owner's) runs already, or
 * the path is not ours to clear. */
static bool clear_the_way(const Socket& s, Fd* guard, std::string* err) {
    // A server of ours that runs without the guard (another user bound its
    // name) is found by /proc: asked first, before we hold the name ourselves.
    std::vector<pid_t> running = listeners_of(s);
    GuardHolder holder;
    if (running.empty()) *guard = take_guard(s.abs_path, &holder);
    else {
        holder.held = true;
        holder.uid = getuid();
        holder.pid = running[0];
    }
    QueueOwner owner = queue_owner(s.abs_path);
    if (!*guard && holder.held && (holder.uid == getuid() || (owner.known && holder.uid == owner.uid))) {
        *err = format("The server didn't come up. (the queue's server%s is running already, but its "
                      "socket %s cannot be reached: no second server was started)",
                      holder.pid > 0 ? format(" (pid %d)", int(holder.pid)).c_str() : "", s.path.c_str());
        return false;
    }
    // Without a guard (another user holds its name, or no abstract namespace)
    // the server starts as ts did before guards, and its log says so.
    struct stat st;
    if (lstat(s.path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            *err = format("The socket path exists and it is not a unix socket: %s", s.path.c_str());
            return false;
        }
        if (unlink(s.path.c_str()) != 0 && st.st_uid != getuid()) {   // stale: nobody answered on it
            *err = format("The server didn't come up. (the socket %s belongs to uid %u and nobody "
                          "answers on it: only that user may start its server)",
                          s.path.c_str(), unsigned(st.st_uid));
            return false;
        }
    }
    return true;
}

/* What the new server said through its error pipe, which it closes once it
 * is ready (the first child, which forked it, is reaped first): false with
 * *err when it could not start; its notes either way. */
static bool hear_start(pid_t pid, const Fd& err_r, std::vector<std::string>* notes, std::string* err) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::string reply, why, chunk(256, '\0');
    for (;;) {
        ssize_t n = read(err_r.get(), &chunk[0], chunk.size());
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        reply.append(chunk.data(), static_cast<size_t>(n));
    }
    split_start_reply(reply, notes, &why);
    if (!why.empty()) {
        *err = format("The server didn't come up. (%s)", why.c_str());
        return false;
    }
    return true;
}

/* Take the guard, bind and listen, then fork the server. False with *err if it cannot come up. */
bool start_server(const Socket& s, std::string* err, std::vector<std::string>* notes, bool take_settings) {
    Fd guard;
    if (!clear_the_way(s, &guard, err)) return false;
    auto fail = [err](const char* what, int e) {
        *err = format("The server didn't come up. (%s: %s)", what, strerror(e));
        return false;
    };
    mode_t mode;
    if (!parse_socket_mode(&mode, err)) return false;
    Fd lfd;
    FileId id;
    std::string why;
    if (!bind_socket(s.path, mode, &lfd, &id, &why)) {
        *err = format("The server didn't come up. (%s)", why.c_str());
        return false;
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) return fail("pipe", errno);
    Fd err_r(p[0]), err_w(p[1]);
    pid_t pid = fork();
    if (pid < 0) return fail("fork", errno);
    if (pid == 0) {
        err_r.reset();
        if (fork() != 0) _exit(0);   // the server is the grandchild, adopted by init
        setsid();
        if (chdir("/") != 0) {
        }
        stdio_to_dev_null();
        close_other_fds({lfd.get(), guard.get(), err_w.get()});
        if (const char* vg = getenv("TS_VALGRIND"))
            exec_under_valgrind(vg, lfd, guard, err_w, s.abs_path, take_settings);
        run_server(std::move(lfd), std::move(guard), std::move(err_w), s.abs_path, take_settings);
    }
    err_w.reset();
    lfd.reset();
    guard.reset();
    return hear_start(pid, err_r, notes, err);
}

/* Connect, starting a server when none answers (see the file comment). */
Fd open_server(const Socket& s, std::string* err, bool kill_only, bool* dead, std::vector<std::string>* notes) {
    QueueOwner owner = queue_owner(s.abs_path);
    if (!check_socket_dir(s.abs_path, err, owner.known ? owner.uid : getuid())) return Fd();
    Fd fd = try_connect(s.path);
    if (!fd && (errno == ENOENT || errno == ECONNREFUSED)) {
        // A server that holds the queue but lost its socket: never a second one.
        int e = errno;
        GuardHolder g = queue_server(s, owner.known ? owner.uid : getuid());
        if (g.held) {
            bool released = false;
            fd = await_socket(s, g, err, &released);
            if (!fd && !released) return Fd();
            err->clear();
        }
        errno = e;
        if (!fd && owner.known && owner.uid != getuid() && !kill_only) {
            // Nobody else's server may run over this queue, root's included.
            struct stat st;
            bool some = lstat(s.path.c_str(), &st) == 0 || lstat((s.path + ".journal").c_str(), &st) == 0;
            if (some)
                *err = format("The server didn't come up. (the queue at %s belongs to uid %u (%s): only "
                              "that user may start its server)",
                              s.path.c_str(), unsigned(owner.uid), owner.why.c_str());
            else
                *err = format("The server didn't come up. (there is no queue at %s, and only uid %u (%s) "
                              "may start one there: choose a TS_SOCKET in a directory of your own)",
                              s.path.c_str(), unsigned(owner.uid), owner.why.c_str());
            return Fd();
        }
    }
    if (!fd && (errno == ENOENT || errno == ECONNREFUSED)) {
        std::string lock_path = s.path + ".lock", why;
        Fd lock = lock_file(lock_path, &why);
        if (!lock) {
            *err = format("The server didn't come up. (%s)", why.c_str());
            return Fd();
        }
        fd = try_connect(s.path);
        if (!fd && (errno == ENOENT || errno == ECONNREFUSED) && kill_only) {
            *dead = forget_dead_queue(s, err);
            return Fd();
        }
        if (!fd && (errno == ENOENT || errno == ECONNREFUSED)) {
            if (!start_server(s, err, notes)) return Fd();
            fd = try_connect(s.path);
            if (!fd) {
                *err = "The server didn't come up.";
                return Fd();
            }
        }
    }
    if (!fd) {
        *err = format("c: cannot connect to the server at '%s': %s", s.path.c_str(), strerror(errno));
        return Fd();
    }
    if (!check_server(s, fd.get(), err)) return Fd();
    return fd;
}

Fd connect_server(const Socket& s) {
    std::string err;
    std::vector<std::string> notes;
    Fd fd = open_server(s, &err, false, nullptr, &notes);
    for (const std::string& n : notes) fprintf(stderr, "ts: %s\n", n.c_str());
    if (!fd) die("%s", err.c_str());
    return fd;
}

/* The uid at the other end of a Unix socket (SO_PEERCRED), or -1. */
uid_t peer_uid(int fd) {
    struct ucred cred {};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return static_cast<uid_t>(-1);
    return cred.uid;
}

Fd connect_or_start(const std::string& abs_path, bool may_start, uid_t expect, std::string* why) {
    Socket s;
    s.path = s.abs_path = abs_path;
    std::string err;
    Fd fd = may_start ? open_server(s, &err) : try_connect(s.path);
    if (!fd && err.empty()) err = strerror(errno);
    if (fd && peer_uid(fd.get()) != expect) {   // not the server we worked for
        fd.reset();
        err = "the server there runs as another user";
    }
    if (why) *why = err;
    return fd;
}

/* SIGTERM: every ts server exits keeping its journal (and writes
 * TS_SAVELIST); SIGKILL after 10 s (the journal is safe whatever happens).
 * False if they do not stop. */
static bool stop_servers(const std::vector<pid_t>& pids) {
    for (pid_t p : pids) kill(p, SIGTERM);
    auto stopped = [&] {
        for (pid_t p : pids)
            if (!process_gone(p)) return false;
        return true;
    };
    double deadline = mono_now() + 10;
    while (!stopped() && mono_now() < deadline) sleep_seconds(0.01);
    if (stopped()) return true;
    for (pid_t p : pids) kill(p, SIGKILL);
    for (int i = 0; i < 500 && !stopped(); ++i) sleep_seconds(0.01);
    return stopped();
}

/* --restart: stop the queue's server, whatever ts it is, keeping its queue,
 * and start a server of this binary. Under the start lock, so that nothing
 * (a runner of the old binary coming back, another client) starts an old
 * server meanwhile: they wait, and then find the new one. */
int restart_server(const Socket& s, bool take_settings) {
    std::string err;
    if (!check_socket_dir(s.abs_path, &err, getuid())) die("%s", err.c_str());
    QueueOwner owner = queue_owner(s.abs_path);
    if (owner.known && owner.uid != getuid())
        die("The queue at %s belongs to uid %u (%s): only that user may restart its server.",
            s.path.c_str(), unsigned(owner.uid), owner.why.c_str());
    std::string why;
    Fd lock = lock_file(s.path + ".lock", &why);
    if (!lock) die("Cannot restart the server: %s", why.c_str());
    Fd fd = try_connect(s.path);
    GuardHolder g = fd ? GuardHolder{} : queue_server(s, getuid());
    bool released = false;
    if (!fd && g.held) fd = await_socket(s, g, &err, &released);   // asked to put its socket back
    if (!fd && g.held && !released) {   // its socket is gone for good: stop it all the same
        std::vector<pid_t> pids = listeners_of(s);
        if (pids.empty()) die("%s", err.c_str());
        if (!stop_servers(pids)) die("Cannot restart the server at %s: it does not stop.", s.path.c_str());
    } else if (fd) {
        if (!check_server(s, fd.get(), &err)) die("%s", err.c_str());
        if (peer_uid(fd.get()) != getuid())
            die("The server at %s runs as uid %u: only that user may restart it.", s.path.c_str(),
                unsigned(peer_uid(fd.get())));
        fd.reset();
        std::vector<pid_t> pids = listeners_of(s);
        if (pids.empty()) die("Cannot restart the server at %s: its process cannot be found in /proc.", s.path.c_str());
        if (!stop_servers(pids)) die("Cannot restart the server at %s: it does not stop.", s.path.c_str());
    }
    std::vector<std::string> notes;
    bool ok = start_server(s, &err, &notes, take_settings);
    for (const std::string& n : notes) fprintf(stderr, "ts: %s\n", n.c_str());
    if (!ok) die("%s", err.c_str());
    return kExitOk;
}
