/*
 * place.cpp — where a queue lives and whether it may live there: see place.h.
 *
 * A queue's location is trusted only if the socket's directory and every
 * directory above it belong to root or the queue's owner, and none that
 * others can write lacks the sticky bit (OpenSSH's StrictModes), and every
 * symbolic link on the way belongs to root or the owner. The client asks
 * before it connects or starts a server; the server asks again before it
 * makes a removed file again (queue_files.cpp).
 */
#include "place.h"

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

sockaddr_un unix_address(const std::string& path) {
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    return a;
}

/* FNV-1a over the canonical path: a name that fits the abstract namespace
 * whatever the path's length. */
std::string guard_name(const std::string& abs_path) {
    std::string dir = dir_name(abs_path), canon = abs_path;
    if (char* real = realpath(dir.c_str(), nullptr)) {
        canon = std::string(real) + "/" + abs_path.substr(dir.size() + 1);
        free(real);
    }
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : canon) h = (h ^ c) * 0x100000001b3ull;
    return format("ts-queue-%016llx", static_cast<unsigned long long>(h));
}

bool parse_socket_mode(mode_t* mode, std::string* err) {
    *mode = 0700;   // owner-only
    const char* m = getenv("TS_SOCKET_MODE");   // a shared queue: e.g. 0660 or 0666
    if (!m) return true;
    char* end = nullptr;
    long v = strtol(m, &end, 8);
    if (!*m || *end || v < 0 || v > 0777) {
        *err = format("TS_SOCKET_MODE=%s: it must be an octal mode such as 0660", m);
        return false;
    }
    *mode = static_cast<mode_t>(v);
    return true;
}

/* The mode is given at creation, by the umask around bind(): a socket is
 * never touched by its path afterwards (a chmod there follows whatever
 * another user renamed over it meanwhile). */
bool bind_socket(const std::string& path, mode_t mode, Fd* out, FileId* id, std::string* err) {
    Fd lfd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!lfd) {
        *err = format("socket: %s", strerror(errno));
        return false;
    }
    sockaddr_un a = unix_address(path);
    mode_t old = umask(~mode & 0777);
    int r = bind(lfd.get(), reinterpret_cast<sockaddr*>(&a), sizeof a);
    int e = errno;
    umask(old);
    if (r != 0) {
        *err = format("bind: %s", strerror(e));
        return false;
    }
    struct stat st;
    if (lstat(path.c_str(), &st) == 0) *id = FileId{st.st_dev, st.st_ino};
    if (listen(lfd.get(), SOMAXCONN) != 0) {
        *err = format("listen: %s", strerror(errno));
        if (same_file(path, *id)) unlink(path.c_str());
        return false;
    }
    *out = std::move(lfd);
    return true;
}

bool same_file(const std::string& path, const FileId& id) {
    struct stat st;
    return id.ino != 0 && lstat(path.c_str(), &st) == 0 && st.st_dev == id.dev && st.st_ino == id.ino;
}

std::string start_note(const std::string& text) { return '\0' + text + '\0'; }

void split_start_reply(const std::string& reply, std::vector<std::string>* notes, std::string* error) {
    error->clear();
    size_t at = 0;
    while (at < reply.size()) {
        size_t nul = reply.find('\0', at);
        error->append(reply, at, nul == std::string::npos ? std::string::npos : nul - at);
        if (nul == std::string::npos) break;
        size_t end = reply.find('\0', nul + 1);   // a note cut short ends the reply
        std::string note = reply.substr(nul + 1, end == std::string::npos ? std::string::npos : end - nul - 1);
        if (notes) notes->push_back(std::move(note));
        at = end == std::string::npos ? reply.size() : end + 1;
    }
}

QueueOwner queue_owner(const std::string& socket_path, uid_t prefer, bool prefer_lock) {
    QueueOwner o;
    std::string dir = dir_name(socket_path);
    struct stat st;
    if (stat(dir.c_str(), &st) == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH))) {
        o.known = true;   // only the directory's owner can put a server there
        o.uid = st.st_uid;
        o.why = format("the owner of %s", dir.c_str());
        return o;
    }
    // A shared sticky directory: the journal's owner, else the lock file's. If
    // either belongs to `prefer` (the caller, or the server being checked), the
    // queue is theirs (a file someone else planted beside it then stops that
    // server with a message naming it, rather than taking the queue away).
    for (int pass = 0; pass < 2; ++pass) {
        for (const char* ext : {".journal", ".lock"}) {
            std::string p = socket_path + ext;
            if (lstat(p.c_str(), &st) != 0) continue;
            if (pass == 0 && (st.st_uid != prefer || (ext[1] == 'l' && !prefer_lock))) continue;
            o.known = true;
            o.uid = st.st_uid;
            o.why = format("%s %s", ext[1] == 'j' ? "its journal" : "its lock file", p.c_str());
            return o;
        }
    }
    return o;
}

/* The socket's directory resolved as the kernel resolves it (realpath), checking
 * each symbolic link on the way: one that belongs to someone other than
 * root or the queue's owner can be pointed elsewhere by them at any time
 * (between our check and our connect or bind), so it is refused. False with
 * *err for such a link; true with an empty *real if the path cannot be
 * resolved (bind or connect then says what is wrong). */
static bool resolve_dir(const std::string& socket_path, uid_t owner, std::string* real, std::string* err) {
    real->clear();
    std::string path = dir_name(socket_path);
    std::vector<std::string> todo;   // components still to walk, the next one last
    auto push = [&todo](const std::string& p) {
        std::vector<std::string> parts;
        for (size_t at = 0; at <= p.size();) {
            size_t slash = p.find('/', at);
            if (slash == std::string::npos) slash = p.size();
            if (slash > at) parts.push_back(p.substr(at, slash - at));
            at = slash + 1;
        }
        todo.insert(todo.end(), parts.rbegin(), parts.rend());
    };
    std::string cur = "/";
    if (path.empty() || path[0] != '/') {
        char cwd[4096];
        if (!getcwd(cwd, sizeof cwd)) return true;
        cur = cwd;
    }
    push(path);
    for (int links = 0; !todo.empty();) {
        std::string c = todo.back();
        todo.pop_back();
        if (c == ".") continue;
        if (c == "..") {
            cur = dir_name(cur);
            continue;
        }
        std::string next = cur == "/" ? "/" + c : cur + "/" + c;
        struct stat st;
        if (lstat(next.c_str(), &st) != 0) return true;
        if (!S_ISLNK(st.st_mode)) {
            cur = next;
            continue;
        }
        if (st.st_uid != 0 && st.st_uid != owner) {
            *err = format("The symbolic link %s belongs to uid %u, who could point it elsewhere at any "
                          "time: a queue (here %s) must be reached only through links that belong to "
                          "root or to the queue's owner (uid %u). Use the path it points to, or have "
                          "root or uid %u own the link.",
                          next.c_str(), unsigned(st.st_uid), socket_path.c_str(), unsigned(owner),
                          unsigned(owner));
            return false;
        }
        std::string target(4096, '\0');
        ssize_t n = readlink(next.c_str(), &target[0], target.size());
        if (n <= 0 || size_t(n) >= target.size() || ++links > 40) return true;   // ELOOP: bind says
        target.resize(size_t(n));
        if (target[0] == '/') cur = "/";
        push(target);
    }
    *real = cur;
    return true;
}

bool check_socket_dir(const std::string& socket_path, std::string* err, uid_t owner) {
    std::string dir;
    if (!resolve_dir(socket_path, owner, &dir, err)) return false;
    if (dir.empty()) return true;   // bind or connect says what is wrong
    for (;;) {
        struct stat st;
        if (lstat(dir.c_str(), &st) != 0) return true;
        if (st.st_uid != 0 && st.st_uid != owner) {
            *err = format("The directory %s belongs to uid %u, who could replace the queue's files below "
                          "it: a queue (here %s) must lie only below directories that belong to root "
                          "or to the queue's owner (uid %u). Move the queue, or have root or uid %u own "
                          "that directory.",
                          dir.c_str(), unsigned(st.st_uid), socket_path.c_str(), unsigned(owner),
                          unsigned(owner));
            return false;
        }
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
            *err = format("The directory %s can be written by other users and is not sticky (mode %04o): "
                          "any of them could replace the queue (%s) below it. Use directories that only "
                          "their owner can write (chmod g-w,o-w), or sticky ones (chmod +t).",
                          dir.c_str(), unsigned(st.st_mode & 07777), socket_path.c_str());
            return false;
        }
        if (dir == "/") return true;
        dir = dir_name(dir);
    }
}
