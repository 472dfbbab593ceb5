/*
 * protocol.h — the wire contract between ts clients, runners and the server,
 * and nothing else (encoding helpers live in frame.h).
 *
 * Every message is one frame: an 8-byte Header, then `len` bytes made of a
 * fixed-size body (one trivially copyable struct per message type, built
 * from fixed-width integers with explicit padding) and, for some types, a
 * tail of length-counted strings (uint32 length + bytes, see frame.h).
 * Integers are in the host's byte order: both ends are on one machine.
 *
 * The version is in every header. A server that gets a frame of another
 * version answers MsgType::Version and closes. KillServer and Version keep
 * their numbers and (empty/tiny) bodies in every version, so `ts -K` can stop
 * a server of any version. The header starts with the version and then the
 * type, so that a task-spooler 1.x server, which reads the first 4 bytes as its
 * message type, sees a type it does not know (>= 65536) and just closes the
 * connection instead of acting on it.
 *
 * Types are numbered in blocks: 1xx client -> server, 2xx server -> client,
 * 3xx runner -> server. Numbers are never reused. Every change that a peer
 * of the previous version would misread raises kVersion; the runner's
 * messages (Attach, Started, Finished) and Wait keep their layout, so that a
 * newer server can take the results of jobs that run under an older binary.
 */
#pragma once

#include <cstdint>
#include <type_traits>

namespace proto {

constexpr uint16_t kVersion = 2;
// Runners and -f clients of version 1 (ts before the journal's format 2) are
// still served: their messages (Attach, Started, Finished, Wait) have not
// changed, so that jobs running under an older binary keep their results
// across `ts --restart`. Answers to them carry version 1.
constexpr uint16_t kOldestRunnerVersion = 1;
constexpr uint32_t kMaxFrame = 32u << 20;   // body + tail; bigger frames are refused
constexpr int kNumLimits = 16;              // resource limits carried by Submit

struct Header {
    uint16_t version;
    uint16_t type;
    uint32_t len;   // bytes after the header
};
static_assert(sizeof(Header) == 8);

enum class MsgType : uint16_t {
    // client -> server
    KillServer = 100,   // no body; honoured whatever the version
    List = 101,         // no body -> Text
    Submit = 102,       // Submit + tail -> SubmitOk | QueueFull (| Run later, foreground)
    State = 103,        // JobRef -> StateReply | Error
    Output = 104,       // JobRef -> OutputReply | Error
    Wait = 105,         // JobRef -> WaitDone (when the job ends) | Error
    SetSlots = 106,     // Slots -> Done
    GetSlots = 107,     // no body -> Slots
    Remove = 108,       // JobRef -> Done | Error
    Urgent = 109,       // JobRef -> Done | Error
    Swap = 110,         // JobPair -> Done | Error
    Info = 111,         // JobRef -> Text | Error
    Clear = 112,        // no body -> Done
    Kill = 113,         // JobRef (pad: the signal, 0 for SIGTERM: --signal) -> Done | Error
                        // (the job's runner signals it)
    Attach = 114,       // AttachBody: a runner or -f client is back after a server restart
    GpuList = 115,      // no body -> Text (after a probe of the GPUs, if the last one is old)
    Drain = 116,        // Slots (1: --drain, 0: --resume) -> Text: what it did
    Hold = 117,         // HoldBody (--hold=ID, --release=ID|all) -> Text: what it did | Error
    Cancel = 120,       // JobRef -> Text: a queued job removed, or a running one told to end (--cancel)
    WaitList = 124,     // no body, tail: one string of int32 ids (-w 3,4,5) -> WaitingFor, then WaitDone
                        // (the status of the first listed job that did not end well, else 0) | Error
    WaitAll = 125,      // no body (--wait-all) -> WaitingFor, then WaitDone as WaitList;
                        // none of the caller's jobs queued or running: Warning, then WaitDone 0
    WaitStart = 126,    // JobRef (--wait-start) -> Waiting, then WaitDone 0 once the job runs
                        // | Error (it ended, or was removed, without running)
    Requeue = 127,      // JobPair (a: job id; b: 1 for every failed job of the caller's) -> Text:
                        // the new ids, one a line | Error
    // server -> client
    Version = 200,      // VersionBody: the server's version, then the server closes
    Error = 201,        // tail: one message line, printed as "Error in the request: ..."
    Text = 202,         // tail: text for stdout
    SubmitOk = 203,     // JobRef: the id given to the job
    QueueFull = 204,    // no body (-B and the queue is full)
    StateReply = 205,   // StateBody
    OutputReply = 206,  // OutputBody + tail: output path
    WaitDone = 207,     // WaitBody
    Slots = 208,        // Slots
    Done = 209,         // no body: the request was carried out
    Run = 210,          // RunBody [+ tail: NAME=value strings for the job's environment, its GPUs]:
                        // a runner held by a client (-f, another uid) may start its job now
    Waiting = 211,      // JobRef: a Wait is registered for this job (sent before WaitDone)
    Bye = 212,          // no body: the server stops for good (-K); do not reconnect
    Signal = 213,       // Slots (the signal number): a runner signals its job's process group
    Assign = 214,       // AssignBody + tail: the job's Submit frame (with its environment); a spare runs it
    TextPart = 215,     // tail: a piece of a long text; more follow, the last piece comes as Text
    Warning = 216,      // tail: a line for stderr (the journal cannot be written); the answer follows
    CancelJob = 218,    // no body: a runner ends its job (SIGTERM, SIGKILL after its --kill-after) as cancelled
    Duplicate = 220,    // JobRef: --unique, and this job of the same user has the same command line
    WaitingFor = 221,   // tail: one string of int32 ids: a WaitList of them is registered (sent
                        // before WaitDone, so the client can ask again after a restart)
    Again = 222,        // no body: to a runner held by a client, instead of Done after its Finished:
                        // that run was an attempt (--retry); the job is queued again, wait for Run
    // runner -> server
    Started = 300,      // StartedBody + tail: output path (empty if not stored)
    Finished = 301,     // FinishedBody + tail: why the job could not start (usually empty)
    Spare = 302,        // no body: a spare runner from the spawner, ready for Assign (server's uid only)
    Unstarted = 303,    // Slots (an errno): no process or memory to fork the job now: queue it again (-> Done)
    NotRun = 304,       // no body: sent by the job's child, at its gate, when its runner ended (or gave up)
                        // after Started but before the go: the job never ran (nothing answers)
};

// Submit::flags
constexpr uint32_t kStoreOutput = 1u << 0;   // not -n
constexpr uint32_t kGzip = 1u << 1;          // -g
constexpr uint32_t kStderrApart = 1u << 2;   // -E
constexpr uint32_t kMail = 1u << 3;          // -m
constexpr uint32_t kForeground = 1u << 4;    // the client runs the job (-f)
constexpr uint32_t kKeepFinished = 1u << 5;  // not (-n and -f)
constexpr uint32_t kNoBlock = 1u << 6;       // -B
constexpr uint32_t kDepend = 1u << 7;        // -d / -D: depend_on is valid
constexpr uint32_t kHasLabel = 1u << 8;      // tail carries a label
constexpr uint32_t kHasEnvInfo = 1u << 9;    // tail carries TS_ENV output
constexpr uint32_t kRunByClient = 1u << 10;   // the submitting client runs the job (another uid)
constexpr uint32_t kHasToken = 1u << 11;     // tail carries the submit's token (version 2)
constexpr uint32_t kHasSettings = 1u << 12;  // tail ends with the job's settings (never empty)
constexpr uint32_t kTakesRunEnv = 1u << 13;  // the client that runs the job reads Run's environment tail

struct RLimit {
    uint64_t cur;
    uint64_t max;
};
static_assert(sizeof(RLimit) == 16);

/* Submit tail, in order: argc argv strings, envc environment strings, cwd,
 * [label], [TS_ENV output], [token], [settings]. The token (random, made by
 * the client) names this submit: sent again after a lost connection, it gets
 * the id already given instead of a second job. The settings are one string
 * holding fields `uint16 tag, uint32 length, bytes`, in increasing tag order,
 * at most 64 of them and 64 KiB in all (settings.h): a job without settings
 * sends no flag and no string, so its Submit is the same as before settings
 * existed and needs no new version. A server refuses a job whose settings it
 * must understand (tags 1..0x7fff) but does not, with an Error. */
struct Submit {
    uint32_t flags;
    int32_t num_slots;
    int32_t depend_on;      // job id; -1 = "the job before" (-d)
    uint32_t umask;
    int32_t nice;
    uint32_t argc;
    uint32_t envc;
    uint32_t limits_valid;  // bit i set: limits[i] was read on the client
    RLimit limits[kNumLimits];
};
static_assert(sizeof(Submit) == 32 + 16 * kNumLimits);

struct JobRef {
    int32_t id;             // -1 = "the last job", as task-spooler
    uint32_t pad;
};
static_assert(sizeof(JobRef) == 8);

struct AssignBody {
    int32_t id;
    uint32_t uid;           // the job's owner: a spare runs only a job of its own uid
};
static_assert(sizeof(AssignBody) == 8);

struct JobPair {
    int32_t a;
    int32_t b;
};
static_assert(sizeof(JobPair) == 8);

struct Slots {
    int32_t n;
    uint32_t pad;
};
static_assert(sizeof(Slots) == 8);

struct VersionBody {
    uint16_t version;
    uint16_t pad;
};
static_assert(sizeof(VersionBody) == 4);

// Wire values of a job's state.
// kHeld and kDelayed are queued jobs that wait for --release or their start
// time (an older client that does not know them says the request failed).
enum WireState : uint8_t {
    kQueued = 0, kRunning = 1, kFinished = 2, kSkipped = 3, kOverflow = 4, kHeld = 5, kDelayed = 6
};

struct HoldBody {
    int32_t id;             // the job (-1: none, with all)
    uint8_t hold;           // 1: --hold=ID; 0: --release
    uint8_t all;            // 1: --release=all: every held job of the caller's
    uint8_t pad[2];
};
static_assert(sizeof(HoldBody) == 8);

struct StateBody {
    uint8_t state;          // WireState
    uint8_t pad[7];
};
static_assert(sizeof(StateBody) == 8);

struct OutputBody {
    int32_t id;
    int32_t pid;            // 0 when the job has not started
    uint8_t stored;         // 1: output goes to a file (tail: its path, may be empty)
    uint8_t state;          // WireState
    uint8_t pid_unknown;    // 1: the job started, but no pid is known (pid 0: its runner's was refused)
    uint8_t pad[5];         // (pid_unknown was padding, always 0, before: older peers ignore it)
};
static_assert(sizeof(OutputBody) == 16);

struct WaitBody {
    int32_t errorlevel;     // signed, as the list shows it
    uint8_t how;            // EndHow (jobs.h): 1 timed out (-w exits 124), 2 cancelled; was padding
    uint8_t pad[3];
};
static_assert(sizeof(WaitBody) == 8);

struct RunBody {
    int32_t id;
    uint8_t skip;           // 1: a dependency failed; report Finished with skipped
    uint8_t pad;
    uint16_t run;           // which run of the job (0: its first; --retry: 1, 2, ...); was padding
};
static_assert(sizeof(RunBody) == 8);

struct AttachBody {
    int32_t id;
    int32_t runner_pid;
    uint8_t started;        // 1: the job runs (Started follows); 0: still waiting for Run
    uint8_t pad0;
    uint16_t run;           // which run of the job (0: its first; --retry: 1, 2, ...), as Assign said; was padding
    uint32_t pad1;
};
static_assert(sizeof(AttachBody) == 16);

struct StartedBody {
    int32_t pid;
    uint32_t pad;
    int64_t start_us;       // wall clock, microseconds since the epoch
};
static_assert(sizeof(StartedBody) == 16);

struct FinishedBody {
    int32_t errorlevel;     // (signed char) exit status, -1 if signalled
    int32_t signal;         // 0 unless killed by a signal
    uint8_t skipped;
    uint8_t how;            // EndHow (jobs.h): 1 timed out, 2 cancelled (padding, 0, before)
    uint8_t pad[6];
    int64_t real_us;
    int64_t user_us;
    int64_t sys_us;
    int64_t end_us;         // wall clock, microseconds since the epoch
};
static_assert(sizeof(FinishedBody) == 48);

static_assert(std::is_trivially_copyable_v<Header> && std::is_trivially_copyable_v<Submit> &&
              std::is_trivially_copyable_v<JobRef> && std::is_trivially_copyable_v<OutputBody> &&
              std::is_trivially_copyable_v<StartedBody> && std::is_trivially_copyable_v<FinishedBody>);

}  // namespace proto
