/*
 * forge.c — a hostile user's client for tests/t-security.sh: it speaks ts's
 * protocol directly (protocol.h's frames: an 8-byte header {uint16 version;
 * uint16 type; uint32 len} in host byte order, then len bytes), sending what
 * the real ts never would. Compiled by the test at run time.
 *
 *   forge SOCK submit CMD...          Submit (of $FORGE_SLOTS slots, default 1) without the
 *                                     client-held flag, with our environment (and the job
 *                                     setting $FORGE_SETTING=TAG:INT32, if set); print the
 *                                     answers ("ok ID", "run", "error: TEXT", "eof");
 *                                     an argument @FILE is the content of FILE
 *   forge SOCK runner PID PATH NOTE CMD...
 *                                     Submit, and when Run comes report Started with
 *                                     that pid ("self": its own) and output path; then print "started",
 *                                     wait for a Signal ("signal N") or for stdin to
 *                                     close, report Finished with NOTE, wait for Done
 *   forge SOCK half N LEN             N connections, each sending a header that claims
 *                                     LEN bytes and then half of them; print how many
 *                                     the server closed within 15 s ("closed K")
 *   forge SOCK idle N                 N connections that send nothing; print "open K"
 *                                     (those still open after the server accepted them)
 *                                     and hold them until stdin closes
 *   forge SOCK unread N               N list requests whose answers are never read;
 *                                     hold them until stdin closes
 *                                     ($FORGE_DEAF set: after Started, read nothing more
 *                                     until stdin closes)
 *   forge SOCK kills ID N             N connections, each asking for SIGUSR1 to job ID
 *                                     (-k ID --signal=USR1); print "done K" and the first error
 *   forge SOCK attach ID              Attach to job ID as its runner; print the answer
 *   forge SOCK listen FILE            bind SOCK (an impostor server), accept, and keep
 *                                     "CONNS BYTES" up to date in FILE until SIGTERM
 *   forge SOCK squat FILE             bind the queue's guard name (connect.cpp: FNV-1a of
 *                                     SOCK's canonical path, in the abstract namespace)
 *                                     first, write "held" to FILE, accept and close
 *                                     connections until SIGTERM
 */
#include <limits.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum {
    V = 2, LIST = 101, SUBMIT = 102, KILL = 113, ATTACH = 114, R_ERROR = 201, R_SUBMITOK = 203, R_DONE = 209,
    R_RUN = 210, R_BYE = 212, R_SIGNAL = 213, STARTED = 300, FINISHED = 301, SUBMIT_BODY = 288
};
extern char **environ;
static const char *sock_path;

static int conn(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, sock_path, sizeof a.sun_path - 1);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("connect");
        exit(2);
    }
    return fd;
}

static void put(char **p, const void *d, size_t n) { memcpy(*p, d, n); *p += n; }
static void put_str(char **p, const char *s) {
    uint32_t n = (uint32_t)strlen(s);
    put(p, &n, 4);
    put(p, s, n);
}

static int send_frame(int fd, uint16_t type, const void *body, uint32_t len) {
    char h[8];
    uint16_t v = V;
    memcpy(h, &v, 2);
    memcpy(h + 2, &type, 2);
    memcpy(h + 4, &len, 4);
    return write(fd, h, 8) == 8 && (len == 0 || write(fd, body, len) == (ssize_t)len) ? 0 : -1;
}

/* One frame: its type, the payload in buf (NUL-terminated); -1 on EOF. */
static int recv_frame(int fd, char *buf, size_t cap, uint32_t *len) {
    char h[8];
    size_t got = 0;
    while (got < 8) {
        ssize_t n = read(fd, h + got, 8 - got);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    uint16_t type;
    memcpy(&type, h + 2, 2);
    memcpy(len, h + 4, 4);
    if (*len >= cap) return -1;
    for (got = 0; got < *len;) {
        ssize_t n = read(fd, buf + got, *len - got);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    buf[*len] = 0;
    return type;
}

/* "@FILE": the argument is that file's content (longer than a command line may be). */
static char *arg(char *a) {
    if (a[0] != '@') return a;
    FILE *f = fopen(a + 1, "r");
    if (!f) { perror(a + 1); exit(2); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (fread(s, 1, (size_t)n, f) != (size_t)n) exit(2);
    s[n] = 0;
    fclose(f);
    return s;
}

/* A Submit of argv with our whole environment, and no client-held flag. */
static void submit(int fd, char **argv, int argc) {
    for (int i = 0; i < argc; ++i) argv[i] = arg(argv[i]);
    size_t cap = SUBMIT_BODY + 4096;
    for (int i = 0; i < argc; ++i) cap += strlen(argv[i]) + 4;
    int envc = 0;
    for (char **e = environ; *e; ++e, ++envc) cap += strlen(*e) + 4;
    char *buf = calloc(1, cap), *p = buf;
    uint32_t body[8] = {0};
    body[0] = 1 | 32;          /* store output, keep finished */
    body[1] = getenv("FORGE_SLOTS") ? (uint32_t)atoi(getenv("FORGE_SLOTS")) : 1;   /* slots */
    body[2] = (uint32_t)-1;    /* depend_on */
    body[3] = 022;
    body[5] = (uint32_t)argc;
    body[6] = (uint32_t)envc;
    put(&p, body, sizeof body);
    p += SUBMIT_BODY - sizeof body;   /* no limits */
    for (int i = 0; i < argc; ++i) put_str(&p, argv[i]);
    for (char **e = environ; *e; ++e) put_str(&p, *e);
    put_str(&p, "/");
    const char *setting = getenv("FORGE_SETTING");   /* TAG:VALUE, one job setting of an int32 */
    if (setting && strchr(setting, ':')) {
        uint16_t tag = (uint16_t)atoi(setting);
        int32_t value = atoi(strchr(setting, ':') + 1);
        uint32_t four = 4, all = 2 + 4 + 4;
        put(&p, &all, 4);
        put(&p, &tag, 2);
        put(&p, &four, 4);
        put(&p, &value, 4);
        ((uint32_t *)buf)[0] |= 1u << 12;   /* kHasSettings: the tail ends with them */
    }
    send_frame(fd, SUBMIT, buf, (uint32_t)(p - buf));
    free(buf);
}

static char frame[1 << 20];

static int answer(int fd) {
    uint32_t len;
    int t = recv_frame(fd, frame, sizeof frame, &len);
    if (t < 0) printf("eof\n");
    else if (t == R_SUBMITOK) printf("ok %d\n", *(int32_t *)frame);
    else if (t == R_RUN) printf("run\n");
    else if (t == R_BYE) printf("bye\n");
    else if (t == R_DONE) printf("done\n");
    else if (t == R_SIGNAL) printf("signal %d\n", *(int32_t *)frame);
    else if (t == R_ERROR) printf("error: %s", frame + 4);
    else printf("type %d\n", t);
    fflush(stdout);
    return t;
}

static void hold_until_stdin_closes(void) {
    char c;
    while (read(0, &c, 1) > 0) {
    }
}

/* N requests, one connection each, to send job ID's runner SIGUSR1 (-k ID --signal=USR1); print
 * "done K" (how many were carried out), and the first error's text if any. */
static int kills(int id, int n) {
    int done = 0;
    char first[512] = "";
    for (int i = 0; i < n; ++i) {
        int fd = conn();
        int32_t body[2] = {id, 10};
        send_frame(fd, KILL, body, 8);
        uint32_t len;
        int t = recv_frame(fd, frame, sizeof frame, &len);
        if (t == R_DONE) ++done;
        else if (t == R_ERROR && !first[0]) snprintf(first, sizeof first, "%.500s", frame + 4);
        close(fd);
    }
    printf("done %d\n%s", done, first);
    return 0;
}

static int runner(int argc, char **argv) {
    int fd = conn();
    submit(fd, argv + 3, argc - 3);
    int t;
    while ((t = answer(fd)) >= 0 && t != R_RUN) {
    }
    if (t < 0) return 1;
    char body[16 + 4096] = {0};
    int32_t pid = !strcmp(argv[0], "self") ? (int32_t)getpid() : atoi(argv[0]);
    memcpy(body, &pid, 4);
    size_t plen = strlen(argv[1]);
    memcpy(body + 16, argv[1], plen);
    send_frame(fd, STARTED, body, (uint32_t)(16 + plen));
    printf("started\n");
    fflush(stdout);
    if (getenv("FORGE_DEAF")) {   /* a runner that never reads what the server sends it */
        hold_until_stdin_closes();
        return 0;
    }
    struct pollfd p[2] = {{0, POLLIN, 0}, {fd, POLLIN, 0}};
    for (;;) {
        if (poll(p, 2, -1) < 0) continue;
        if (p[1].revents) {
            if (answer(fd) < 0) return 1;
            break;
        }
        if (p[0].revents) {
            char c;
            if (read(0, &c, 1) <= 0) break;
        }
    }
    char fin[48 + 4096] = {0};
    size_t nlen = strlen(argv[2]);
    memcpy(fin + 48, argv[2], nlen);
    send_frame(fd, FINISHED, fin, (uint32_t)(48 + nlen));
    while ((t = answer(fd)) >= 0 && t != R_DONE) {
    }
    return 0;
}

static int half(int n, uint32_t len) {
    int *fds = calloc((size_t)n, sizeof *fds);
    char *junk = calloc(1, len / 2 + 1);
    for (int i = 0; i < n; ++i) {
        fds[i] = conn();
        char h[8];
        uint16_t v = V, type = SUBMIT;
        memcpy(h, &v, 2);
        memcpy(h + 2, &type, 2);
        memcpy(h + 4, &len, 4);
        if (write(fds[i], h, 8) != 8) continue;
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
        size_t sent = 0;
        for (int tries = 0; sent < len / 2 && tries < 2000; ++tries) {
            ssize_t k = write(fds[i], junk + sent, len / 2 - sent);
            if (k > 0) sent += (size_t)k;
            else if (errno == EAGAIN) usleep(1000);
            else break;
        }
    }
    int closed = 0;
    time_t end = time(NULL) + 15;
    while (closed < n && time(NULL) < end) {
        closed = 0;
        for (int i = 0; i < n; ++i) {
            struct pollfd p = {fds[i], POLLIN, 0};
            char c;
            if (poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLERR) || read(fds[i], &c, 1) == 0)) ++closed;
        }
        usleep(20000);
    }
    printf("closed %d\n", closed);
    return 0;
}

static int count_open(int *fds, int n) {
    int k = 0;
    for (int i = 0; i < n; ++i) {
        struct pollfd p = {fds[i], POLLIN, 0};
        if (!(poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLIN)))) ++k;
    }
    return k;
}

/* The server closes the connections it refuses as it accepts them: count
 * the open ones once that count has held still for 300 ms. */
static int idle(int n) {
    int *fds = calloc((size_t)n, sizeof *fds);
    for (int i = 0; i < n; ++i) fds[i] = conn();
    int last = -1, still = 0;
    for (int tries = 0; tries < 250 && still < 15; ++tries) {
        int k = count_open(fds, n);
        still = k == last ? still + 1 : 0;
        last = k;
        usleep(20000);
    }
    printf("open %d\n", last);
    fflush(stdout);
    hold_until_stdin_closes();
    return 0;
}

static int unread(int n) {
    for (int i = 0; i < n; ++i) {
        int fd = conn();
        int sz = 4096;
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        send_frame(fd, LIST, NULL, 0);
    }
    printf("sent %d\n", n);
    fflush(stdout);
    hold_until_stdin_closes();
    return 0;
}

static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

static int listen_as(const char *file) {
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, sock_path, sizeof a.sun_path - 1);
    if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 64) != 0) {
        perror("bind");
        return 2;
    }
    chmod(sock_path, 0666);
    signal(SIGTERM, on_term);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);   /* no SA_RESTART: poll returns */
    long conns = 0, bytes = 0;
    int fds[256];
    int nfds = 0;
    FILE *f = fopen(file, "w");
    fprintf(f, "0 0\n");
    fclose(f);
    while (!stop) {
        struct pollfd p[257];
        p[0].fd = l;
        p[0].events = POLLIN;
        for (int i = 0; i < nfds; ++i) {
            p[i + 1].fd = fds[i];
            p[i + 1].events = POLLIN;
        }
        if (poll(p, (nfds_t)nfds + 1, 200) < 0) continue;
        if (p[0].revents & POLLIN) {
            int c = accept(l, NULL, NULL);
            if (c >= 0 && nfds < 256) { fds[nfds++] = c; ++conns; }
        }
        for (int i = 0; i < nfds; ++i) {
            if (!p[i + 1].revents) continue;
            char buf[4096];
            ssize_t k = read(fds[i], buf, sizeof buf);
            if (k > 0) bytes += k;
            else { close(fds[i]); fds[i] = fds[--nfds]; --i; }
        }
        f = fopen(file, "w");
        fprintf(f, "%ld %ld\n", conns, bytes);
        fclose(f);
    }
    unlink(sock_path);
    return 0;
}

/* The guard's name for sock_path, as connect.cpp's guard_name makes it. */
static void guard_name(char *out, size_t size) {
    char dir[PATH_MAX], real[PATH_MAX], canon[2 * PATH_MAX];
    strncpy(dir, sock_path, sizeof dir - 1);
    dir[sizeof dir - 1] = 0;
    char *slash = strrchr(dir, '/');
    const char *base = slash ? slash + 1 : sock_path;
    if (slash) *slash = 0;
    if (realpath(slash ? (*dir ? dir : "/") : ".", real)) snprintf(canon, sizeof canon, "%s/%s", real, base);
    else snprintf(canon, sizeof canon, "%s", sock_path);
    uint64_t h = 0xcbf29ce484222325ull;
    for (const unsigned char *c = (const unsigned char *)canon; *c; ++c) h = (h ^ *c) * 0x100000001b3ull;
    snprintf(out, size, "ts-queue-%016llx", (unsigned long long)h);
}

static int squat(const char *file) {
    char name[64];
    guard_name(name, sizeof name);
    int l = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    size_t n = strlen(name);
    memcpy(a.sun_path + 1, name, n);
    if (bind(l, (struct sockaddr *)&a, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n)) != 0 ||
        listen(l, 64) != 0) {
        perror("bind");
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_term;
    sigaction(SIGTERM, &sa, NULL);   /* no SA_RESTART: accept returns */
    FILE *f = fopen(file, "w");
    fprintf(f, "held %s\n", name);
    fclose(f);
    while (!stop) {
        int c = accept(l, NULL, NULL);
        if (c >= 0) close(c);
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    sock_path = argv[1];
    signal(SIGPIPE, SIG_IGN);
    const char *mode = argv[2];
    if (!strcmp(mode, "submit") && argc > 3) {
        int fd = conn();
        submit(fd, argv + 3, argc - 3);
        int t;
        while ((t = answer(fd)) >= 0 && t != R_RUN && t != R_ERROR) {
        }
        return 0;
    }
    if (!strcmp(mode, "runner") && argc > 6) return runner(argc - 3, argv + 3);
    if (!strcmp(mode, "half") && argc == 5) return half(atoi(argv[3]), (uint32_t)strtoul(argv[4], 0, 0));
    if (!strcmp(mode, "idle") && argc == 4) return idle(atoi(argv[3]));
    if (!strcmp(mode, "unread") && argc == 4) return unread(atoi(argv[3]));
    if (!strcmp(mode, "attach") && argc == 4) {
        int fd = conn();
        int32_t body[4] = {atoi(argv[3]), (int32_t)getpid(), 0, 0};
        send_frame(fd, ATTACH, body, 16);
        answer(fd);
        return 0;
    }
    if (!strcmp(mode, "kills") && argc == 5) return kills(atoi(argv[3]), atoi(argv[4]));
    if (!strcmp(mode, "listen") && argc == 4) return listen_as(argv[3]);
    if (!strcmp(mode, "squat") && argc == 4) return squat(argv[3]);
    fprintf(stderr, "forge: bad usage\n");
    return 2;
}
