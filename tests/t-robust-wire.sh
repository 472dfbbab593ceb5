#!/bin/bash
# Robustness on the wire (README "Reliability": a malformed or oversized frame closes that connection and
# nothing else; no client can make the server exit or block). A raw-socket helper, compiled at run time
# into $T, throws thousands of malformed connections at a live server (random bytes, huge and negative
# lengths, truncated frames, unknown types, wrong versions, one-byte writes, valid frames followed by
# garbage) while hundreds of idle connections are held open; then clients that never read their reply or
# stop in the middle of a frame, clients that close at once (SIGPIPE), a client killed in the middle of a
# Submit, and a server with a tiny descriptor limit (EMFILE). Through all of it the server keeps its pid
# and its jobs, and `ts -l` keeps answering within a second. ts-only: the frames are ts's protocol.
. "$(dirname "$0")/lib.sh"
skip_all_if_tsp "ts's own wire protocol and server"

extra_cleanup() {
    : >"$T/release-all"
    TS_SOCKET="$T/s32" "$TS" -K
}

# ---- the raw-socket helper ------------------------------------------------------------------------------
# Frames are protocol.h's: an 8-byte header {uint16 version; uint16 type; uint32 len} in host byte order,
# then len bytes. Only the header layout, a few type numbers and the body sizes are used here.
cat >"$T/rawc.c" <<'EOF'
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { V = 2, KILLSERVER = 100, LIST = 101, SUBMIT = 102, STATE = 103, GETSLOTS = 107, ATTACH = 114,
       FINISHED = 301, R_VERSION = 200, R_TEXT = 202, R_SLOTS = 208, R_BYE = 212, SUBMIT_BODY = 288 };
static const uint32_t kMaxFrame = 32u << 20;
static const char *sock_path;
static int nfail;
static uint64_t rng = 88172645463325252ull;

static uint32_t rnd(void) { rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17; return (uint32_t)(rng >> 11); }

static void bad(int conn, const char *what) {
    if (++nfail <= 20) fprintf(stderr, "connection %d: %s\n", conn, what);
}

static int conn(void) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) { perror("socket"); exit(2); }
    struct sockaddr_un a;
    memset(&a, 0, sizeof a);
    a.sun_family = AF_UNIX;
    strncpy(a.sun_path, sock_path, sizeof a.sun_path - 1);
    for (int tries = 0;; ++tries) {
        if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
        if ((errno == EAGAIN || errno == EINTR) && tries < 5000) { usleep(1000); continue; }
        perror("connect");
        exit(2);
    }
}

static size_t hdr(unsigned char *b, uint16_t ver, uint16_t type, uint32_t len) {
    memcpy(b, &ver, 2);
    memcpy(b + 2, &type, 2);
    memcpy(b + 4, &len, 4);
    return 8;
}

static void wr(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t k = write(fd, c, n);
        if (k < 0) { if (errno == EINTR) continue; return; }   /* the server may have closed: fine */
        c += k;
        n -= (size_t)k;
    }
}

/* Read exactly n bytes within the deadline (ms since start). 1 ok, 0 EOF, -1 timeout/error. */
static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
static int rd(int fd, void *p, size_t n, long long deadline) {
    char *c = p;
    while (n) {
        long long left = deadline - now_ms();
        if (left <= 0) return -1;
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, (int)left) <= 0) continue;
        ssize_t k = read(fd, c, n);
        if (k < 0) { if (errno == EINTR || errno == EAGAIN) continue; return errno == ECONNRESET ? 0 : -1; }
        if (k == 0) return 0;
        c += k;
        n -= (size_t)k;
    }
    return 1;
}
/* The reply frame's type (its payload is skipped), 0 on EOF, -1 on timeout. */
static int reply_type(int fd, long long deadline) {
    unsigned char h[8];
    int r = rd(fd, h, 8, deadline);
    if (r <= 0) return r;
    uint16_t ver, type;
    uint32_t len;
    memcpy(&ver, h, 2);
    memcpy(&type, h + 2, 2);
    memcpy(&len, h + 4, 4);
    if (len > kMaxFrame) return -2;
    char buf[65536];
    while (len) {
        size_t n = len < sizeof buf ? len : sizeof buf;
        r = rd(fd, buf, n, deadline);
        if (r <= 0) return -3;
        len -= (uint32_t)n;
    }
    return type;
}
/* The server closes the connection (EOF) within the deadline, after any number of reply bytes. */
static int closes(int fd, long long deadline) {
    char buf[4096];
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) return 0;
        struct pollfd pf = {fd, POLLIN, 0};
        if (poll(&pf, 1, (int)left) <= 0) continue;
        ssize_t k = read(fd, buf, sizeof buf);
        if (k == 0 || (k < 0 && errno == ECONNRESET)) return 1;
        if (k < 0 && errno != EINTR && errno != EAGAIN) return 1;
    }
}

/* No request type of ours in random bytes: a random KillServer, Clear or Remove would be a real request. */
static uint16_t harmless(uint16_t t) {
    if ((t >= 100 && t <= 199) || (t >= 300 && t <= 399)) t = (uint16_t)(t + 1000);
    return t;
}

static void fuzz_one(int i) {
    unsigned char b[4096];
    size_t n = 0, k;
    int fd = conn(), kind = i % 16, t;
    long long dl = now_ms() + 3000;
    uint16_t vers[] = {0, 1, 3, 0x0100};   /* 1: only old runners are served in it */
    uint16_t unknown[] = {0, 1, 99, 116, 199, 200, 202, 299, 399, 999, 0x8000, 0xffff};
    switch (kind) {
    case 0:   /* random bytes */
        n = 1 + rnd() % 600;
        for (k = 0; k < n; ++k) b[k] = (unsigned char)rnd();
        if (n >= 4) { uint16_t ty; memcpy(&ty, b + 2, 2); ty = harmless(ty); memcpy(b + 2, &ty, 2); }
        wr(fd, b, n);
        break;
    case 1:   /* len 0xFFFFFFFF */
        n = hdr(b, V, LIST, 0xffffffffu);
        wr(fd, b, n);
        if (!closes(fd, dl)) bad(i, "len 0xFFFFFFFF: the server did not close the connection");
        break;
    case 2:   /* len 0x80000000 (negative as int32) */
        n = hdr(b, V, SUBMIT, 0x80000000u);
        memset(b + n, 'A', 64);
        wr(fd, b, n + 64);
        if (!closes(fd, dl)) bad(i, "len 0x80000000: the server did not close the connection");
        break;
    case 3:   /* one byte over the frame limit */
        n = hdr(b, V, SUBMIT, kMaxFrame + 1);
        wr(fd, b, n);
        if (!closes(fd, dl)) bad(i, "len kMaxFrame+1: the server did not close the connection");
        break;
    case 4:   /* truncated Submit, then close */
        n = hdr(b, V, SUBMIT, SUBMIT_BODY + 40);
        for (k = 0; k < 100; ++k) b[n + k] = (unsigned char)rnd();
        wr(fd, b, n + 1 + rnd() % 100);
        break;
    case 5:   /* unknown type (including server->client types) */
        n = hdr(b, V, unknown[(i / 16) % 12], (i / 16) % 2 ? 8 : 0);
        memset(b + n, 0, 8);
        wr(fd, b, n + ((i / 16) % 2 ? 8 : 0));
        if (!closes(fd, dl)) bad(i, "unknown type: the server did not close the connection");
        break;
    case 6:   /* another version: Version reply, then close */
        n = hdr(b, vers[(i / 16) % 4], LIST, 0);
        wr(fd, b, n);
        t = reply_type(fd, dl);
        if (t != R_VERSION) { char m[80]; snprintf(m, sizeof m, "wrong version: reply type %d, not Version", t); bad(i, m); }
        else if (!closes(fd, dl)) bad(i, "wrong version: the server did not close the connection");
        break;
    case 7:   /* a valid List in one-byte writes */
        n = hdr(b, V, LIST, 0);
        for (k = 0; k < n; ++k) wr(fd, b + k, 1);
        t = reply_type(fd, dl);
        if (t != R_TEXT) { char m[80]; snprintf(m, sizeof m, "one-byte List: reply type %d, not Text", t); bad(i, m); }
        break;
    case 8:   /* a valid List followed by garbage */
        n = hdr(b, V, LIST, 0);
        for (k = 0; k < 64; ++k) b[n + k] = (unsigned char)rnd();
        { uint16_t ty; memcpy(&ty, b + n + 2, 2); ty = harmless(ty); memcpy(b + n + 2, &ty, 2); }
        wr(fd, b, n + 64);
        t = reply_type(fd, dl);
        if (t != R_TEXT) { char m[80]; snprintf(m, sizeof m, "List+garbage: reply type %d, not Text", t); bad(i, m); }
        else if (!closes(fd, dl)) bad(i, "List+garbage: the server did not close the connection");
        break;
    case 9:   /* State with a body of the wrong size */
        n = hdr(b, V, STATE, 4);
        memset(b + n, 0, 4);
        wr(fd, b, n + 4);
        if (!closes(fd, dl)) bad(i, "short State body: the server did not close the connection");
        break;
    case 10:  /* part of a header, then close */
        n = hdr(b, V, LIST, 0);
        wr(fd, b, 1 + rnd() % 7);
        break;
    case 11:  /* Submit whose argc cannot fit its tail */
        n = hdr(b, V, SUBMIT, SUBMIT_BODY + 16);
        memset(b + n, 0, SUBMIT_BODY + 16);
        { uint32_t argc = 0xffffffffu; memcpy(b + n + 20, &argc, 4); }
        wr(fd, b, n + SUBMIT_BODY + 16);
        if (!closes(fd, dl)) bad(i, "Submit argc 0xFFFFFFFF: the server did not close the connection");
        break;
    case 12:  /* Submit whose first string claims more bytes than the tail has */
        n = hdr(b, V, SUBMIT, SUBMIT_BODY + 16);
        memset(b + n, 0, SUBMIT_BODY + 16);
        { uint32_t one = 1, big = 0x7fffffffu; memcpy(b + n + 20, &one, 4); memcpy(b + n + SUBMIT_BODY, &big, 4); }
        wr(fd, b, n + SUBMIT_BODY + 16);
        if (!closes(fd, dl)) bad(i, "Submit string overrun: the server did not close the connection");
        break;
    case 13:  /* a runner's Finished on a client connection */
        n = hdr(b, V, FINISHED, 48);
        memset(b + n, 0, 48);
        wr(fd, b, n + 48);
        if (!closes(fd, dl)) bad(i, "stray Finished: the server did not close the connection");
        break;
    case 14:  /* Attach for a job that does not exist */
        n = hdr(b, V, ATTACH, 16);
        memset(b + n, 0, 16);
        { int32_t id = 999999 + i; memcpy(b + n, &id, 4); }
        wr(fd, b, n + 16);
        t = reply_type(fd, dl);
        if (t != R_BYE && t != 0) { char m[80]; snprintf(m, sizeof m, "Attach to no job: reply type %d", t); bad(i, m); }
        if (!closes(fd, dl)) bad(i, "Attach to no job: the server did not close the connection");
        break;
    case 15:  /* GetSlots followed by 0xFF bytes */
        n = hdr(b, V, GETSLOTS, 0);
        memset(b + n, 0xff, 20);
        wr(fd, b, n + 20);
        t = reply_type(fd, dl);
        if (t != R_SLOTS) { char m[80]; snprintf(m, sizeof m, "GetSlots+garbage: reply type %d, not Slots", t); bad(i, m); }
        break;
    }
    close(fd);
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    if (argc < 3) { fprintf(stderr, "usage: rawc SOCKET MODE ARGS...\n"); return 2; }
    sock_path = argv[1];
    const char *mode = argv[2];
    if (!strcmp(mode, "fuzz") && argc == 5) {   /* fuzz N SEED */
        int n = atoi(argv[3]);
        rng ^= (uint64_t)strtoull(argv[4], 0, 10) * 0x9E3779B97F4A7C15ull;
        for (int i = 0; i < n; ++i) fuzz_one(i);
        printf("%d connections, %d unexpected\n", n, nfail);
        return nfail ? 1 : 0;
    }
    if (!strcmp(mode, "hold") && argc == 7) {   /* hold N idle|half|list READY RELEASE */
        int n = atoi(argv[3]);
        const char *how = argv[4];
        int *fds = calloc((size_t)n, sizeof *fds);
        unsigned char b[SUBMIT_BODY + 64];
        memset(b, 0, sizeof b);
        for (int i = 0; i < n; ++i) {
            fds[i] = conn();
            if (!strcmp(how, "list")) wr(fds[i], b, hdr(b, V, LIST, 0));
            else if (!strcmp(how, "half")) { hdr(b, V, SUBMIT, SUBMIT_BODY + 64); wr(fds[i], b, 8 + 50); }
        }
        FILE *f = fopen(argv[5], "w");
        if (f) fclose(f);
        for (int w = 0; w < 6000 && access(argv[6], F_OK) != 0 && getppid() != 1; ++w) usleep(20000);
        return 0;
    }
    if (!strcmp(mode, "listclose") && argc == 4) {   /* listclose N: send List, close at once */
        int n = atoi(argv[3]);
        unsigned char b[8];
        for (int i = 0; i < n; ++i) {
            int fd = conn();
            wr(fd, b, hdr(b, V, LIST, 0));
            if (i % 2) { char c; (void)!read(fd, &c, 1); }   /* half of them: after the first byte */
            close(fd);
        }
        return 0;
    }
    if (!strcmp(mode, "partial") && argc == 3) {   /* part of a Submit, then close */
        unsigned char b[SUBMIT_BODY + 8];
        memset(b, 0, sizeof b);
        int fd = conn();
        hdr(b, V, SUBMIT, SUBMIT_BODY + 200);
        wr(fd, b, 8 + 150);
        close(fd);
        return 0;
    }
    fprintf(stderr, "rawc: bad arguments\n");
    return 2;
}
EOF
if ! command -v cc >/dev/null 2>&1; then
    echo "1..0 # SKIP no C compiler (cc) for the raw-socket helper"
    exit 0
fi
cc -O1 -o "$T/rawc" "$T/rawc.c" 2>"$T/cc.err"
ok $? "the raw-socket helper compiles" || sed 's/^/# /' "$T/cc.err"
[ -x "$T/rawc" ] || { done_testing; exit 1; }
RAW="$T/rawc"

# ---- sizes ---------------------------------------------------------------------------------------------
# Full size with a plain build. Under `make check SANITIZE=1` every ts command costs ~10 ms, and under
# `make check-valgrind` the server runs ~50 times slower: fewer jobs (with longer labels, so that the
# list still far exceeds a socket buffer) and fewer List requests, and 3 s instead of 1 s under valgrind.
NJOBS=5000 LABEL=100 NLISTCLOSE=500 NIDLE=300 LIMIT_MS=1000
if [ -n "${TS_VALGRIND-}" ]; then
    NJOBS=1000 LABEL=500 NLISTCLOSE=60 NIDLE=200 LIMIT_MS=3000
    echo "# server under valgrind: $NJOBS jobs, $NLISTCLOSE List requests closed at once, limit $LIMIT_MS ms"
elif grep -qa -e __asan_init -e AddressSanitizer "$TS"; then
    NJOBS=1000 LABEL=500 NLISTCLOSE=200
    echo "# sanitizer build: $NJOBS jobs, $NLISTCLOSE List requests closed at once"
fi

# ---- helpers -------------------------------------------------------------------------------------------
nfds() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# sockets PID: the number of sockets the process holds (the server: its listener, one per runner, one
# per client connection).
sockets() { find "/proc/$1/fd" -mindepth 1 -lname 'socket:*' 2>/dev/null | wc -l; }
# dump_fds PID: the process's descriptors, as diagnostics (after a failed count).
dump_fds() { ls -l "/proc/$1/fd" 2>&1 | awk 'NR > 1 {print "#     " $(NF - 2), $(NF - 1), $NF}' | head -n 40; }
# fds_are PID OP N / sockets_are PID OP N: the count compares (test's -eq, -ge...) with N, evaluated afresh
# at each call (for eventually).
fds_are() { test "$(nfds "$1")" "$2" "$3"; }
sockets_are() { test "$(sockets "$1")" "$2" "$3"; }
# ms CMD...: run CMD (output to $T/.out, $T/.err), put its status in RC and its duration in ms in MS.
ms() {
    local a b
    a=$(date +%s%N)
    "$@" >"$T/.out" 2>"$T/.err" </dev/null
    RC=$?
    b=$(date +%s%N)
    MS=$(( (b - a) / 1000000 ))
}
# fast DESC CMD...: CMD succeeds within a second ($LIMIT_MS ms).
fast() {
    local desc=$1
    shift
    ms "$@"
    if [ "$RC" = 0 ] && [ "$MS" -lt "$LIMIT_MS" ]; then
        pass "$desc (${MS} ms)"
    else
        fail "$desc" "status $RC after ${MS} ms (want 0 within $LIMIT_MS ms)" "stderr: $(head -c 300 "$T/.err")"
    fi
}
# hold TAG N MODE [SOCKET]: keep N connections open in the background until `unhold TAG`.
declare -A hold_pid
hold() {
    rm -f "$T/ready-$1"
    "$RAW" "${4:-$TS_SOCKET}" hold "$2" "$3" "$T/ready-$1" "$T/$1" >"$T/hold-$1.log" 2>&1 &
    hold_pid[$1]=$!
}
ready() { [ -e "$T/ready-$1" ]; }
unhold() {
    release "$1"
    wait "${hold_pid[$1]}"
}

# ---- a live queue: one finished job, one running, one queued ----------------------------------------
check "job 0" 0 $'0\n' '' -- "$TS" echo done0
check "-w 0" 0 '' '' -- "$TS" -w 0
check "job 1 (runs until released)" 0 $'1\n' '' -- "$TS" waitfor blk
wait_running 1
check "job 2 (queued behind it)" 0 $'2\n' '' -- "$TS" echo queued2
run_cmd "$TS" -l
list0=$OUT
is "$(printf '%s' "$list0" | wc -l)" 4 "the list: header and 3 jobs"
spid=$(server_pids)
is "$(echo $spid | wc -w)" 1 "one server (pid $spid)"
# job 0's runner may still be saying goodbye: wait until only the listener, the queue's guard, the idle
# spare runner and job 1's runner are left
eventually "the server holds 4 sockets: its listener, its guard, the spare runner and job 1's runner" 10 -- \
    sockets_are "$spid" -eq 4 || dump_fds "$spid"
fd0=$(nfds "$spid")
lim=$(awk '/^Max open files/ {print $4}' "/proc/$spid/limits")
nidle=$NIDLE
if [ "$lim" != unlimited ] && [ $((lim - 80)) -lt $nidle ]; then nidle=$((lim - 80)); fi
echo "# server fds at rest: $fd0; descriptor limit: $lim; idle connections: $nidle"

# same_server DESC: the server is still the same process and still has exactly the same jobs.
# (Jobs with ids above 3 are the $NJOBS added below: they are left out of the comparison.)
same_server() {
    is "$(server_pids)" "$spid" "$1: the same server process"
    run_cmd "$TS" -l
    is "$RC" 0 "$1: ts -l succeeds"
    is "$(printf '%s' "$OUT" | awk 'NR == 1 || $1 <= 3')"$'\n' "$list0" "$1: the jobs are listed exactly as before"
}

# ---- hundreds of idle connections, thousands of malformed ones -----------------------------------------
hold idle "$nidle" idle
eventually "$nidle idle connections are connected" 20 -- ready idle
eventually "the server accepted all $nidle" 20 -- fds_are "$spid" -ge $((fd0 + nidle)) || dump_fds "$spid"
fast "ts -l answers within a second while $nidle idle connections are held" "$TS" -l
_read_file "$T/.out" OUT
is "$OUT" "$list0" "... with the full list"

ms "$RAW" "$TS_SOCKET" fuzz 3200 "$$"
if [ "$RC" = 0 ]; then
    pass "3200 malformed connections: each closed or answered as expected ($(cat "$T/.out"), ${MS} ms)"
else
    fail "3200 malformed connections: each closed or answered as expected" "status $RC: $(cat "$T/.out")" \
        "$(sed 's/^/  /' "$T/.err")"
fi
same_server "after the malformed connections"
fast "ts -l still answers within a second (idle connections still held)" "$TS" -l
eventually "the server holds exactly the idle connections (no malformed one kept)" 10 -- \
    fds_are "$spid" -eq "$((fd0 + nidle))" || dump_fds "$spid"
unhold idle
eventually "the idle connections closed: the server is back to $fd0 descriptors" 10 -- \
    fds_are "$spid" -eq "$fd0" || dump_fds "$spid"
check "a new job is accepted" 0 $'3\n' '' -- "$TS" true
check "-r 3 (keep the list as it was)" 0 '' '' -- "$TS" -r 3

# ---- clients that block: one never reads a 5,000-job list, one stops in the middle of a frame ---------
label=$(printf "%${LABEL}s" '' | tr ' ' L)
for k in 0 1 2 3; do
    ( for _ in $(seq $((NJOBS / 4))); do "$TS" -n -L "$label" true >/dev/null || echo x; done ) >"$T/enq.$k" 2>&1 &
done
wait
is "$(cat "$T"/enq.*)" "" "$NJOBS jobs queued behind the running job"
run_cmd "$TS" -l
nlines=$(printf '%s' "$OUT" | wc -l)
is "$nlines" $((NJOBS + 4)) "the list has $((NJOBS + 4)) lines ($(printf '%s' "$OUT" | wc -c) bytes)"
hold noread 1 list
hold half 1 half
eventually "a client sent List and reads nothing; another sent half a Submit frame" 10 -- \
    sh -c "[ -e '$T/ready-noread' ] && [ -e '$T/ready-half' ]"
eventually "the server took both connections" 10 -- fds_are "$spid" -ge $((fd0 + 2)) || dump_fds "$spid"
fast "ts -l meanwhile, within a second" "$TS" -l
is "$(wc -l <"$T/.out")" "$nlines" "... the whole list"
fast "ts true meanwhile, within a second" "$TS" true
read -r newid <"$T/.out"
fast "ts -s meanwhile, within a second" "$TS" -s "$newid"
is "$(cat "$T/.out")" queued "... job $newid is queued"
check "-r the new job" 0 '' '' -- "$TS" -r "$newid"
unhold noread
unhold half
is "$(server_pids)" "$spid" "the same server after the blocking clients"

# ---- SIGPIPE: 500 clients send List (the long list) and close at once --------------------------------
ms "$RAW" "$TS_SOCKET" listclose "$NLISTCLOSE"
ok "$RC" "$NLISTCLOSE List requests closed at once (${MS} ms)"
is "$(server_pids)" "$spid" "SIGPIPE did not kill the server: same pid"
fast "ts -l after them, within a second" "$TS" -l
is "$(wc -l <"$T/.out")" "$nlines" "... the whole list"

# ---- clients killed in the middle of a Submit ---------------------------------------------------------
"$RAW" "$TS_SOCKET" partial
ok $? "a raw client sent part of a Submit frame and closed"
hold killed 1 half
eventually "another raw client sent part of a Submit frame and waits" 10 -- ready killed
kill -9 "${hold_pid[killed]}"
wait "${hold_pid[killed]}" 2>/dev/null
is "$(server_pids)" "$spid" "the same server after the half Submits"
run_cmd "$TS" -l
is "$(printf '%s' "$OUT" | wc -l)" "$nlines" "no job added or lost"
eventually "the killed clients' connections are closed (back to $fd0 descriptors)" 10 -- \
    fds_are "$spid" -eq "$fd0" || dump_fds "$spid"

same_server "at the end"
release blk
check "job 1 ends" 0 '' '' -- "$TS" -w 1
check "job 2 then runs" 0 '' '' -- "$TS" -w 2
check "its output" 0 $'queued2\n' '' -- sh -c 'cat "$("$TS" -o 2)"'
check "-K (the $NJOBS queued jobs need not run)" 0 '' '' -- "$TS" -K

# ---- EMFILE: a server with 32 descriptors and 40 idle connections -------------------------------------
S32="$T/s32"
check "a server started under ulimit -n 32" 0 $'1\n' '' -- sh -c "ulimit -n 32 && TS_SOCKET='$S32' exec '$TS' -S"
p32=$(TS_SOCKET=$S32 server_pids)
is "$(awk '/^Max open files/ {print $4}' "/proc/$p32/limits" 2>/dev/null)" 32 "its descriptor limit is 32"
hold many 40 idle "$S32"
eventually "40 idle connections are connected" 20 -- ready many
if [ -z "${TS_VALGRIND-}" ]; then
    eventually "the server is out of descriptors (holds 32)" 10 -- fds_are "$p32" -eq 32 || dump_fds "$p32"
else
    skip "the server is out of descriptors (holds 32)" "valgrind holds descriptors of its own"
fi
is "$(TS_SOCKET=$S32 server_pids)" "$p32" "EMFILE: the server is still up"
unhold many
ms env TS_SOCKET="$S32" timeout 10 "$TS" -l
if [ "$RC" = 0 ] && [ "$MS" -lt 3000 ]; then
    pass "once they closed, ts -l gets through (${MS} ms)"
else
    fail "once they closed, ts -l gets through" "status $RC after ${MS} ms" "stderr: $(head -c 300 "$T/.err")"
fi
check "a job runs there" 0 $'0\n' '' -- env TS_SOCKET="$S32" timeout 10 "$TS" echo fine
check "-w" 0 '' '' -- env TS_SOCKET="$S32" timeout 10 "$TS" -w 0
check "its output" 0 $'fine\n' '' -- env TS_SOCKET="$S32" sh -c 'cat "$("$TS" -o 0)"'
is "$(TS_SOCKET=$S32 server_pids)" "$p32" "the same server throughout"

done_testing
