/*
 * gpu.h — GPUs as a resource: what the machine's cards are (a snapshot made
 * by a probe), how a job's need is written, and the allocator that decides
 * which cards a queued job gets. Like the queue, it knows nothing of
 * processes or sockets: the server runs the probes (nvidia-smi as a child
 * process, AMD's sysfs) and feeds their text to the parsers here, and unit
 * tests drive the parsers and the allocator directly.
 *
 * Cards are keyed by UUID (indices can change at boot). A job's allocation
 * is the list of its cards' UUIDs; the index a job's environment names
 * (CUDA_VISIBLE_DEVICES with CUDA_DEVICE_ORDER=PCI_BUS_ID, which is
 * nvidia-smi's order) is looked up in the snapshot when the job starts.
 *
 * The rules (README "GPUs"):
 *   - a card takes at most jobs_per_gpu ts jobs (TS_GPU_SLOTS), one in
 *     EXCLUSIVE_PROCESS compute mode, none when PROHIBITED or in MIG mode;
 *   - a card with a compute process that is not a ts job is busy, unless the
 *     policy judges by free memory (TS_GPU_FOREIGN=memory);
 *   - whatever the probe could not read about a card (its index, UUID,
 *     memory or compute mode) or about a process that may be on it (its
 *     pid, its memory, its card, or a line that is no process at all) makes
 *     the card busy, whatever the policy: a decision fails closed;
 *   - a job that declares its memory (--gpu-mem) fits where the declarations
 *     of the card's ts jobs plus its own fit in the card's memory, and, once
 *     the card has settled, where the memory measured free holds it too;
 *   - measured memory is not trusted for `settle` seconds after a job started
 *     on the card, nor from a snapshot taken before that;
 *   - decisions fail closed: a job is placed only by a probe that began
 *     after it was queued, and on a card only by a probe that began after
 *     the last ts job on it ended (else the plan wants a probe);
 *   - cards are tried in the order of preference (TS_VISIBLE_DEVICES, else
 *     the probe's order), and a job's cards are all of one vendor;
 *   - the first GPU job in queue order that cannot start reserves the cards
 *     it could use: no later job is placed on them, so a stream of one-GPU
 *     jobs cannot starve a job that needs several.
 */
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

enum class GpuVendor : uint8_t { Nvidia, Amd };
enum class ComputeMode : uint8_t { Default, ExclusiveProcess, Prohibited, Unknown };

struct GpuCard {
    std::string uuid;              // "GPU-..." (NVIDIA); "AMD-<unique_id or PCI address>"; "" when unreadable
    int index = -1;                // nvidia-smi's index; AMD: position in PCI order; -1 when unreadable
    GpuVendor vendor = GpuVendor::Nvidia;
    std::string name;
    std::string bus_id;            // PCI address, as the probe wrote it
    uint64_t mem_total = 0;        // bytes; 0 when not known
    uint64_t mem_used = 0;         // bytes, when mem_known
    bool mem_known = false;        // memory.used was a number
    int util = -1;                 // percent; -1 when not known
    ComputeMode mode = ComputeMode::Default;
    bool mig = false;              // MIG mode is on: its instances are not scheduled
    std::string unreadable;        // what of it could not be read ("memory.used: [N/A]"); "": all it takes
};

/* A compute process on a card, as nvidia-smi lists it. One ts cannot read
 * (unreadable set) is kept all the same: it counts against its card, or,
 * when its card is not known (uuid empty), against every NVIDIA card. */
struct GpuProcess {
    std::string uuid;              // of its card; "" when not known
    pid_t pid = 0;                 // 0 when not known
    uint64_t mem = 0;              // bytes, when mem_known
    bool mem_known = false;
    std::string name;
    bool ours = false;             // a ts job's (set by the server, which can read /proc)
    std::string unreadable;        // what of its line could not be read ("pid: [N/A]"); "": all of it
};

/* What one probe saw. ok false: the probe failed, and error says why (for
 * -i, --gpu-list and the log); the cards of a failed probe are not used. */
struct GpuSnapshot {
    bool ok = false;
    std::string error;
    double when = 0;               // when the probe began (mono_now, util.h): what it measured is no older
    double ended = 0;              // when it ended (mono_now): its result is used for a while from then
    std::vector<GpuCard> cards;    // in the probe's order
    std::vector<GpuProcess> procs;
    std::string source;            // "nvidia-smi", "sysfs", "nvidia-smi, sysfs"
    bool no_nvidia_smi = false;    // nvidia-smi was not found (so no NVIDIA card is known)
    // What the probe's answers held that ts could not read (a line that is no
    // card, cards beyond the limit...): what they name is never used.
    std::vector<std::string> unread;

    const GpuCard* card(const std::string& uuid) const;
};

// ---- parsers (gpu_parse.cpp) ------------------------------------------------------------------------------

/* The fields ts asks nvidia-smi for, in this order (name last: it may hold commas):
 *   nvidia-smi --query-gpu=<kQueryGpuFields> --format=csv,noheader,nounits */
extern const char* const kQueryGpuFields;
/* The same without mig.mode.current, for drivers older than MIG (which fail
 * the first with exit code 2); its answer gets the field as [N/A]. */
extern const char* const kQueryGpuFieldsOld;
/*   nvidia-smi --query-compute-apps=<kQueryAppsFields> --format=csv,noheader,nounits */
extern const char* const kQueryAppsFields;

/* Parse --query-gpu output (one line a card). A card whose index, UUID,
 * memory or compute mode cannot be read is kept with GpuCard::unreadable
 * set; lines that are not a card's are left out with a note in *warnings;
 * false (and *err) when the output is not such a listing at all ("No devices
 * were found" is true with no cards). */
bool parse_query_gpu(std::string_view text, std::vector<GpuCard>* cards, std::string* err,
                     std::vector<std::string>* warnings = nullptr);
/* Parse --query-compute-apps output (one line a process; none is empty).
 * Every line of a listing is a process: one that cannot be read (a pid or
 * memory of [N/A] or garbage, no card's UUID, not shaped like a process,
 * too long, past the bound) is kept with GpuProcess::unreadable set. */
bool parse_compute_apps(std::string_view text, std::vector<GpuProcess>* procs, std::string* err,
                        std::vector<std::string>* warnings = nullptr);
/* What an exit status of nvidia-smi means, for a message ("the NVIDIA driver
 * is not loaded" for 9, ...). */
std::string nvidia_smi_failure(int exit_code);
/* AMD cards under a sysfs drm directory (normally /sys/class/drm): every
 * cardN whose device/vendor is 0x1002 and that has mem_info_vram_total. */
std::vector<GpuCard> read_amd_cards(const std::string& drm_dir, std::vector<std::string>* warnings = nullptr);

// ---- the policy and the allocator (gpu.cpp) ----------------------------------------------------------------

struct GpuPolicy {
    int jobs_per_gpu = 1;                    // TS_GPU_SLOTS
    bool judge_by_memory = false;            // TS_GPU_FOREIGN=memory: foreign processes only take memory
    uint64_t min_free = uint64_t(1) << 30;   // TS_GPU_MIN_FREE: judged by memory, a job without --gpu-mem needs this
    double settle = 30;                      // TS_GPU_SETTLE: seconds measured memory is not trusted after a start
    std::vector<std::string> visible;        // TS_VISIBLE_DEVICES: indices or UUIDs, in order of preference; empty: all
};

/* A job's need: count cards, each with mem bytes free for it (0: not declared). */
struct GpuNeed {
    int count = 0;
    uint64_t mem = 0;
    double queued = 0;             // when the job was queued (mono_now): a probe begun before is no answer for it
};

/* What ts jobs hold of one card. */
struct CardUse {
    int jobs = 0;
    uint64_t claimed = 0;          // the --gpu-mem of those jobs, together
    double last_start = -1e18;     // when a job last started on it (mono_now)
    double last_end = -1e18;       // when a job on it last ended (mono_now): a probe begun before saw it there
};
using GpuUse = std::map<std::string, CardUse>;   // by UUID

/* TS_VISIBLE_DEVICES: a comma-separated list of indices (0, 1) or UUIDs
 * ("GPU-..."; "MIG-..." is refused: MIG is not scheduled). False with *err
 * for a malformed list. */
bool parse_visible_devices(std::string_view text, std::vector<std::string>* out, std::string* err);

/* The cards of the snapshot a policy lets jobs use, in order of preference,
 * and why the others are not used (one line each, for --gpu-list and the log). */
struct UsableCards {
    std::vector<const GpuCard*> cards;
    std::vector<std::string> notes;
};
UsableCards usable_cards(const GpuSnapshot& s, const GpuPolicy& p);
UsableCards usable_cards(const GpuSnapshot&& s, const GpuPolicy& p) = delete;   // it points into s

/* Whether a process listed by a probe may be on card c: its card is c, or
 * its card is not known and c is an NVIDIA card (nvidia-smi listed it). */
bool gpu_process_on(const GpuProcess& p, const GpuCard& c);
/* What the probe could not read about card c or a process (not a ts job's)
 * that may be on it, as a sentence ("GPU 0 has a process ts cannot read
 * (pid: [N/A]; 60000 MiB, python)"); "" when nothing. Such a card is busy. */
std::string gpu_card_doubt(const GpuSnapshot& s, const GpuCard& c);
/* "GPU 1"; a card whose index cannot be read is named by its PCI address. */
std::string gpu_card_name(const GpuCard& c);

/* Whether a job with this need can ever run on the usable cards (enough
 * cards of one vendor, with enough memory); if not, *why is a sentence. */
bool could_ever_fit(const GpuNeed& need, const UsableCards& u, std::string* why);

/* One scheduling pass over the GPUs: made from a snapshot and what ts jobs
 * hold, it places queued jobs in queue order (place), each placement taking
 * its share at once, and keeps the first job that could not be placed's reservation. */
class GpuPlan {
public:
    /* now: mono_now(), as the snapshot's times and use's. */
    GpuPlan(const GpuSnapshot& s, const GpuPolicy& p, GpuUse use, double now);
    /* Place a job: true with its cards' UUIDs in *uuids. False with why it
     * waits in *why (for -i); the first job refused reserves the cards it could use. */
    bool place(const GpuNeed& need, std::vector<std::string>* uuids, std::string* why);
    /* No card has room for any job (placing more is pointless this pass). */
    bool full() const;
    /* The snapshot is too old to place a job (one queued since it began,
     * a card whose ts job ended since, memory to measure once settled): a
     * probe would help. Set by place(). */
    bool wants_probe() const { return wants_probe_; }
    /* How many jobs place() was asked about. */
    size_t asked() const { return asked_; }

private:
    struct Slot {
        const GpuCard* card;
        CardUse use;
        int capacity;          // jobs it takes
        uint64_t foreign_mem;  // measured memory of processes that are not ts jobs
        bool foreign;          // such a process is on it
        std::string doubt;     // what the probe could not read about it (gpu_card_doubt): busy
        bool reserved = false;
    };
    bool fits(const Slot& s, const GpuNeed& need, std::string* why);
    // fits(), in parts (gpu.cpp).
    bool takes_another(const Slot& s, std::string* why);
    bool fits_declared(const Slot& s, uint64_t mem, bool settling, bool fresh, std::string* why);
    bool fits_undeclared(const Slot& s, bool settling, bool fresh, std::string* why);
    bool could_get_from_ts_jobs(const GpuNeed& need) const;
    std::vector<Slot> slots_;    // in order of preference
    const GpuSnapshot& snap_;
    GpuPolicy policy_;
    double now_;
    bool reserving_done_ = false;
    bool wants_probe_ = false;
    size_t asked_ = 0;
};

/* The environment a job's cards give it: CUDA_VISIBLE_DEVICES,
 * CUDA_DEVICE_ORDER=PCI_BUS_ID and TS_GPUS for NVIDIA cards,
 * ROCR_VISIBLE_DEVICES, HIP_VISIBLE_DEVICES and TS_GPUS for AMD ones.
 * With no cards, hide: the variables that hide every card (TS_GPU_HIDE). */
std::vector<std::string> gpu_environment(const std::vector<const GpuCard*>& cards, bool hide);
/* Whether var is one gpu_environment makes: one of its names, with a value
 * of indices (or -1, or PCI_BUS_ID for CUDA_DEVICE_ORDER). A runner of
 * another user's queue takes from its server nothing else: the server's
 * owner must not set, say, LD_PRELOAD in a submitter's job. */
bool is_gpu_environment(const std::string& var);
/* env with each NAME=value of vars set (replacing NAME's old value). */
void set_environment(std::vector<std::string>* env, const std::vector<std::string>& vars);

/* "NVIDIA" or "AMD". */
const char* gpu_vendor_name(GpuVendor v);
/* "8 GiB", "512 MiB": a size as --gpu-list and -i show it. */
std::string size_text(uint64_t bytes);
/* --gpu-mem's SIZE: a number with K, M, G or T (powers of 1024; a plain
 * number is MiB); 0 when it is not one. */
uint64_t parse_gpu_mem(std::string_view s);
