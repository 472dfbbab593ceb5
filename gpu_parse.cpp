/*
 * gpu_parse.cpp — reading what the probes say of the cards (gpu.h): the text
 * of nvidia-smi's --query-gpu and --query-compute-apps listings (csv,
 * noheader, nounits), what its exit status means, AMD cards from sysfs, and
 * the sizes --gpu-mem takes and --gpu-list shows.
 *
 * None of that text is trusted. nvidia-smi writes its errors to stdout as
 * well, a field can read "[N/A]", "[Not Supported]" or "[GPU requires
 * reset]", a process name is whatever the process chose, and a driver
 * upgrade can change the format. So what ts cannot read is said, never
 * dropped: a card whose index, UUID, memory or compute mode cannot be read
 * is kept with what could not be (GpuCard::unreadable), and so is a process
 * line whatever could not be read of it, even a line that is no process at
 * all (GpuProcess::unreadable): the allocator counts them against the cards
 * (gpu.cpp), so that a 60 GB process listed with pid [N/A] keeps its card
 * busy. A line of the card listing that is no card is left out with a
 * warning (that card is then not used), values nothing depends on (the
 * utilization, the bus id) are merely unknown, and output with no line
 * shaped like a listing at all is an error described by its first line.
 * The name, the last field, keeps its commas: the fields before it are split
 * off at the first commas. The work is bounded: kMaxCards cards, kMaxProcs
 * processes, lines of at most kMaxLine bytes and kMaxWarnings warnings.
 */
#include "gpu.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <dirent.h>
#include <fcntl.h>
#include <memory>
#include <unistd.h>

#include "util.h"

const char* const kQueryGpuFields =
    "index,uuid,pci.bus_id,memory.total,memory.used,utilization.gpu,compute_mode,mig.mode.current,name";
const char* const kQueryAppsFields = "gpu_uuid,pid,used_memory,process_name";

namespace {

constexpr size_t kMaxLine = 4096;      // longer lines are left out
constexpr size_t kMaxCards = 256;
constexpr size_t kMaxProcs = 4096;
constexpr size_t kMaxWarnings = 16;    // then one line saying how many more
constexpr size_t kMaxError = 200;      // *err, and the excerpts of lines in warnings (shorter)
constexpr size_t kMaxExcerpt = 80;
constexpr size_t kMaxName = 256;
constexpr size_t kMaxUuid = 128;
constexpr size_t kQueryGpuFieldCount = 9;
constexpr size_t kQueryAppsFieldCount = 4;
constexpr uint64_t kMiB = uint64_t(1) << 20;
constexpr uint64_t kGiB = uint64_t(1) << 30;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

/* Text for one line of a message: trimmed, control bytes escaped, at most max bytes. */
std::string one_line(std::string_view s, size_t max) {
    s = trim(s);
    std::string out = printable(std::string(s.substr(0, max)));
    if (out.size() > max || s.size() > max) out = out.substr(0, max - 3) + "...";
    return out;
}

/* What nvidia-smi writes for a value it does not have: "[N/A]", "[Not
 * Supported]", "[Unknown Error]", "[GPU requires reset]", ..., or "N/A". */
bool is_unknown(std::string_view v) {
    return v.empty() || (v.front() == '[' && v.back() == ']') || iequals(v, "N/A");
}

/* A decimal number that fits in max, then, after optional spaces, unit (any case) if given. */
bool parse_uint(std::string_view s, uint64_t max, std::string_view unit, uint64_t* out) {
    size_t i = 0;
    uint64_t v = 0;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
        uint64_t d = uint64_t(s[i] - '0');
        if (v > (max - d) / 10) return false;
        v = v * 10 + d;
    }
    if (i == 0) return false;
    std::string_view rest = trim(s.substr(i));
    if (!rest.empty() && (unit.empty() || !iequals(rest, unit))) return false;
    *out = v;
    return true;
}

/* The fields of a line: n - 1 split off at the first commas, the last one the rest. */
bool split_fields(std::string_view line, size_t n, std::vector<std::string_view>* f) {
    f->clear();
    for (size_t i = 0; i + 1 < n; ++i) {
        size_t comma = line.find(',');
        if (comma == std::string_view::npos) return false;
        f->push_back(trim(line.substr(0, comma)));
        line.remove_prefix(comma + 1);
    }
    f->push_back(trim(line));
    return true;
}

/* Warnings, at most kMaxWarnings of them and then how many more there were. */
class Notes {
public:
    explicit Notes(std::vector<std::string>* out) : out_(out) {}
    Notes(const Notes&) = delete;
    Notes& operator=(const Notes&) = delete;
    ~Notes() {
        if (out_ && more_) out_->push_back(format("... and %zu more warnings", more_));
    }
    void add(std::string s) {
        if (!out_) return;
        if (added_ < kMaxWarnings) {
            out_->push_back(std::move(s));
            ++added_;
        } else {
            ++more_;
        }
    }

private:
    std::vector<std::string>* out_;
    size_t added_ = 0;
    size_t more_ = 0;
};

/* A size in MiB as nvidia-smi writes it (units tolerated), in bytes. Unknown
 * values are false quietly; anything else that is not a size is noted. */
bool mib_value(std::string_view v, const char* what, const std::string& who, Notes* notes, uint64_t* bytes) {
    uint64_t mib = 0;
    if (is_unknown(v)) return false;
    if (!parse_uint(v, UINT64_MAX >> 20, "MiB", &mib)) {
        notes->add(format("nvidia-smi: %s: %s \"%s\" is not a size in MiB", who.c_str(), what,
                          one_line(v, kMaxExcerpt).c_str()));
        return false;
    }
    *bytes = mib * kMiB;
    return true;
}

ComputeMode compute_mode(std::string_view v) {
    if (iequals(v, "Default")) return ComputeMode::Default;
    if (iequals(v, "Exclusive_Process")) return ComputeMode::ExclusiveProcess;
    if (iequals(v, "Exclusive_Thread")) return ComputeMode::ExclusiveProcess;   // before CUDA 8: one context, treated as one process
    if (iequals(v, "Prohibited")) return ComputeMode::Prohibited;
    return ComputeMode::Unknown;
}

/* A UUID as a listing writes it: a word, not a value nvidia-smi does not have. */
bool uuid_ok(std::string_view u) {
    if (is_unknown(u) || u.size() > kMaxUuid) return false;
    return std::all_of(u.begin(), u.end(), [](char c) { return c > ' ' && c != 0x7f; });
}

/* "field: value" added to what could not be read (*to, "; " between). */
void note_unreadable(std::string* to, const char* field, std::string_view value) {
    if (!to->empty()) *to += "; ";
    *to += format("%s: %s", field, value.empty() ? "(empty)" : one_line(value, kMaxExcerpt).c_str());
}

/* One card from the fields of one --query-gpu line; what cannot be read of
 * what the allocator depends on goes in c->unreadable (the card is busy). */
void read_card(const std::vector<std::string_view>& f, GpuCard* c, Notes* notes) {
    uint64_t index = 0;
    c->index = -1;
    if (parse_uint(f[0], INT_MAX, "", &index)) c->index = int(index);
    else note_unreadable(&c->unreadable, "index", f[0]);
    if (uuid_ok(f[1])) c->uuid = std::string(f[1]);
    else note_unreadable(&c->unreadable, "uuid", f[1]);
    c->vendor = GpuVendor::Nvidia;
    c->bus_id = is_unknown(f[2]) ? std::string() : one_line(f[2], kMaxExcerpt);
    std::string who = !c->uuid.empty() ? c->uuid : format("card %s", one_line(f[0], kMaxExcerpt).c_str());
    c->mem_total = 0;
    if (!mib_value(f[3], "memory.total", who, notes, &c->mem_total)) note_unreadable(&c->unreadable, "memory.total", f[3]);
    c->mem_known = mib_value(f[4], "memory.used", who, notes, &c->mem_used);
    if (!c->mem_known) {
        c->mem_used = 0;
        note_unreadable(&c->unreadable, "memory.used", f[4]);
    }
    uint64_t util = 0;
    c->util = !is_unknown(f[5]) && parse_uint(f[5], 100, "%", &util) ? int(util) : -1;
    c->mode = compute_mode(f[6]);
    if (c->mode == ComputeMode::Unknown) note_unreadable(&c->unreadable, "compute_mode", f[6]);
    c->mig = iequals(f[7], "Enabled");
    c->name = one_line(f[8], kMaxName);
}

/* The lines of text, each trimmed (CR of CRLF too); blank ones left out. */
template <typename Fn>
void for_each_line(std::string_view text, Fn fn) {
    size_t number = 0;
    while (!text.empty()) {
        size_t nl = text.find('\n');
        std::string_view line = text.substr(0, nl);
        text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
        ++number;
        line = trim(line);
        if (!line.empty() && !fn(number, line)) return;
    }
}

/* What the parsers share: a line too long, a line that is not a listing's, the error. */
struct ListingState {
    std::string_view first;   // the first line that is not blank
    bool listing = false;     // a line was shaped like the listing's
    bool none = false;        // nvidia-smi said there was nothing to list
    size_t beyond = 0;        // lines past the bound

    /* Whether to read this line as a listing's (false: it was dealt with). */
    bool take(size_t number, std::string_view line, Notes* notes) {
        if (first.empty()) first = line;
        if (line.size() > kMaxLine) {
            notes->add(format("nvidia-smi: line %zu left out: longer than %zu bytes", number, kMaxLine));
            return false;
        }
        if (line == "No devices were found" || line == "No running processes found") {
            none = true;
            return false;
        }
        return true;
    }
    bool finish(std::string* err) const {
        if (listing || none || first.empty()) return true;
        *err = one_line(first, kMaxError);
        return false;
    }
};

std::string left_out(size_t number, std::string_view why, std::string_view line) {
    return format("nvidia-smi: line %zu left out (%.*s): %s", number, int(why.size()), why.data(),
                  one_line(line, kMaxExcerpt).c_str());
}

/* A pid as a listing writes it: a positive number that fits pid_t. */
bool parse_pid(std::string_view v, pid_t* pid) {
    uint64_t n = 0;
    if (!parse_uint(v, INT_MAX, "", &n) || n == 0) return false;
    *pid = pid_t(n);
    return true;
}

// ---- sysfs ---------------------------------------------------------------------------------------------------

/* A small file (sysfs attribute), at most max bytes; false when it cannot be
 * read. O_NONBLOCK: a FIFO in a tree that is not really sysfs is not waited on. */
bool read_small(const std::string& path, std::string* out, size_t max = 4096) {
    Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    if (!fd) return false;
    out->assign(max, '\0');
    size_t got = 0;
    while (got < max) {
        ssize_t n = ::read(fd.get(), &(*out)[got], max - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) break;
        got += size_t(n);
    }
    out->resize(got);
    return true;
}

bool read_number(const std::string& path, uint64_t max, uint64_t* v) {
    std::string text;
    return read_small(path, &text) && parse_uint(trim(text), max, "", v);
}

bool pci_address_ok(std::string_view a) {
    return !a.empty() && a.size() <= 64 && std::all_of(a.begin(), a.end(), [](char c) {
        return (c >= '0' && c <= '9') || (lower(c) >= 'a' && lower(c) <= 'f') || c == ':' || c == '.';
    });
}

/* The card's PCI address: the name its device link points to, else PCI_SLOT_NAME in device/uevent. */
std::string pci_address(const std::string& card_dir) {
    std::string target(PATH_MAX, '\0');
    ssize_t n = ::readlink((card_dir + "/device").c_str(), &target[0], target.size());
    if (n > 0 && size_t(n) < target.size()) {
        target.resize(size_t(n));
        while (!target.empty() && target.back() == '/') target.pop_back();
        std::string base = target.substr(target.rfind('/') + 1);   // npos + 1 == 0: the whole target
        if (pci_address_ok(base)) return base;
    }
    std::string uevent, slot;
    if (!read_small(card_dir + "/device/uevent", &uevent)) return "";
    for_each_line(uevent, [&](size_t, std::string_view line) {
        if (line.substr(0, 14) != "PCI_SLOT_NAME=") return true;
        slot = std::string(trim(line.substr(14)));
        return false;
    });
    return pci_address_ok(slot) ? slot : "";
}

/* One drm cardN: false (quietly) when it is not an AMD card, with a note when it is one that cannot be used. */
bool read_amd_card(const std::string& dir, const std::string& card, GpuCard* c, Notes* notes) {
    std::string text;
    if (!read_small(dir + "/device/vendor", &text) || !iequals(trim(text), "0x1002")) return false;
    c->bus_id = pci_address(dir);
    if (c->bus_id.empty()) {
        notes->add(format("sysfs: AMD %s left out: its PCI address cannot be read", card.c_str()));
        return false;
    }
    if (!read_number(dir + "/device/mem_info_vram_total", UINT64_MAX, &c->mem_total) || c->mem_total == 0) {
        notes->add(format("sysfs: AMD %s (%s) left out: device/mem_info_vram_total cannot be read", card.c_str(),
                          c->bus_id.c_str()));
        return false;
    }
    c->mem_known = read_number(dir + "/device/mem_info_vram_used", UINT64_MAX, &c->mem_used);
    if (!c->mem_known) {
        c->mem_used = 0;
        c->unreadable = "device/mem_info_vram_used";
        notes->add(format("sysfs: AMD %s (%s): device/mem_info_vram_used cannot be read; memory used unknown",
                          card.c_str(), c->bus_id.c_str()));
    }
    uint64_t busy = 0;
    c->util = read_number(dir + "/device/gpu_busy_percent", 100, &busy) ? int(busy) : -1;
    std::string id;
    bool hex = read_small(dir + "/device/unique_id", &text) && !(id = std::string(trim(text))).empty() &&
               id.size() <= 32 && std::all_of(id.begin(), id.end(), [](char ch) {
                   return (ch >= '0' && ch <= '9') || (lower(ch) >= 'a' && lower(ch) <= 'f');
               });
    c->uuid = "AMD-" + (hex ? id : c->bus_id);
    c->name = "AMD card";
    if (read_small(dir + "/device/product_name", &text) && !trim(text).empty())
        c->name += " (" + one_line(text, kMaxName) + ")";
    c->vendor = GpuVendor::Amd;
    c->mode = ComputeMode::Default;
    c->mig = false;
    return true;
}

/* "card" and digits only: not a connector (card0-DP-1) nor a render node (renderD128). */
bool is_card_name(const char* name) {
    if (std::string_view(name).substr(0, 4) != "card" || name[4] == '\0') return false;
    for (const char* p = name + 4; *p; ++p)
        if (*p < '0' || *p > '9') return false;
    return true;
}

struct DirCloser {
    void operator()(DIR* d) const { closedir(d); }
};

}  // namespace

const GpuCard* GpuSnapshot::card(const std::string& uuid) const {
    for (const GpuCard& c : cards)
        if (c.uuid == uuid) return &c;
    return nullptr;
}

bool parse_query_gpu(std::string_view text, std::vector<GpuCard>* cards, std::string* err,
                     std::vector<std::string>* warnings) {
    cards->clear();
    Notes notes(warnings);
    ListingState st;
    std::vector<std::string_view> f;
    for_each_line(text, [&](size_t number, std::string_view line) {
        if (!st.take(number, line, &notes)) return true;
        if (!split_fields(line, kQueryGpuFieldCount, &f)) {
            notes.add(left_out(number, "not a card", line));
            return true;
        }
        st.listing = true;
        if (cards->size() >= kMaxCards) {
            ++st.beyond;
            return true;
        }
        GpuCard c;
        read_card(f, &c, &notes);
        auto dup = std::find_if(cards->begin(), cards->end(),
                                [&](const GpuCard& o) { return !c.uuid.empty() && o.uuid == c.uuid; });
        if (dup != cards->end())
            notes.add(left_out(number, format("the UUID of card %d again", dup->index), line));
        else
            cards->push_back(std::move(c));
        return true;
    });
    if (st.beyond)
        notes.add(format("nvidia-smi: %s beyond the first %zu left out", counted(st.beyond, "card", "cards").c_str(), kMaxCards));
    return st.finish(err);
}

bool parse_compute_apps(std::string_view text, std::vector<GpuProcess>* procs, std::string* err,
                        std::vector<std::string>* warnings) {
    procs->clear();
    Notes notes(warnings);
    ListingState st;
    std::vector<std::string_view> f;
    // A line ts cannot read may be a process on any card: it is kept as one whose card is not known.
    auto on_some_card = [&](std::string what) {
        GpuProcess p;
        p.unreadable = std::move(what);
        procs->push_back(std::move(p));
    };
    for_each_line(text, [&](size_t number, std::string_view line) {
        if (!st.take(number, line, &notes)) {
            if (line.size() > kMaxLine) on_some_card(format("line %zu: longer than %zu bytes", number, kMaxLine));
            return true;
        }
        // A listing's line starts with a word (the UUID): an error sentence with commas is not one.
        if (!split_fields(line, kQueryAppsFieldCount, &f) || f[0].empty() ||
            std::any_of(f[0].begin(), f[0].end(), is_space)) {
            notes.add(left_out(number, "not a process", line));
            on_some_card(format("line %zu: %s", number, one_line(line, kMaxExcerpt).c_str()));
            return true;
        }
        st.listing = true;
        if (procs->size() >= kMaxProcs) {
            ++st.beyond;
            return true;
        }
        GpuProcess p;
        if (uuid_ok(f[0])) p.uuid = std::string(f[0]);
        else note_unreadable(&p.unreadable, "gpu_uuid", f[0]);
        if (!parse_pid(f[1], &p.pid)) {
            p.pid = 0;
            note_unreadable(&p.unreadable, "pid", f[1]);
        }
        std::string who = p.pid ? format("pid %d", int(p.pid)) : format("line %zu", number);
        p.mem_known = mib_value(f[2], "used_memory", who, &notes, &p.mem);
        if (!p.mem_known) {
            p.mem = 0;
            note_unreadable(&p.unreadable, "used_memory", f[2]);
        }
        p.name = one_line(f[3], kMaxName);
        procs->push_back(std::move(p));
        return true;
    });
    if (st.beyond) {
        notes.add(format("nvidia-smi: %s beyond the first %zu left out", counted(st.beyond, "process", "processes").c_str(), kMaxProcs));
        on_some_card(format("%zu processes beyond the first %zu", st.beyond, kMaxProcs));
    }
    if (!st.finish(err)) {
        procs->clear();
        return false;
    }
    return true;
}

namespace {

/* nvidia-smi(1), RETURN VALUE. 18 is not in every version of the page: it is
 * NVML's "driver/library version mismatch", which is what nvidia-smi reports
 * with it ("Failed to initialize NVML: Driver/library version mismatch"). */
struct SmiFailure {
    int code;
    const char* what;
};
constexpr SmiFailure kSmiFailures[] = {
    {2, "an argument or field is not valid"},
    {3, "the operation is not available on the device"},
    {4, "no permission to access the device or perform the operation"},
    {6, "no matching device was found"},
    {8, "a device's external power cables are not attached"},
    {9, "the NVIDIA driver is not loaded"},
    {10, "the NVIDIA kernel module detected an interrupt issue with a GPU"},
    {12, "the NVML shared library could not be found or loaded"},
    {13, "the local NVML does not implement this function"},
    {14, "the infoROM is corrupted"},
    {15, "the GPU has fallen off the bus or become inaccessible"},
    {18, "the NVIDIA driver and library versions do not match"},
    {255, "other error or internal driver error"},
};

}  // namespace

std::string nvidia_smi_failure(int exit_code) {
    for (const SmiFailure& f : kSmiFailures)
        if (f.code == exit_code) return format("nvidia-smi failed (exit code %d: %s)", exit_code, f.what);
    return format("nvidia-smi failed (exit code %d)", exit_code);
}

std::vector<GpuCard> read_amd_cards(const std::string& drm_dir, std::vector<std::string>* warnings) {
    std::vector<GpuCard> cards;
    std::vector<std::string> names;
    {
        std::unique_ptr<DIR, DirCloser> d(opendir(drm_dir.c_str()));
        if (!d) return cards;   // no drm directory: no cards, and nothing to say
        while (const dirent* e = readdir(d.get()))
            if (is_card_name(e->d_name) && names.size() < 4 * kMaxCards) names.emplace_back(e->d_name);
    }
    // In card number order (readdir's is none), so that "the first" of two cards is card0 before card1.
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
        return a.size() != b.size() ? a.size() < b.size() : a < b;
    });
    Notes notes(warnings);
    for (const std::string& name : names) {
        GpuCard c;
        if (!read_amd_card(drm_dir + "/" + name, name, &c, &notes)) continue;
        auto same = std::find_if(cards.begin(), cards.end(), [&](const GpuCard& o) { return o.uuid == c.uuid; });
        if (same != cards.end()) {
            notes.add(format("sysfs: AMD %s (%s) left out: the same id as %s", name.c_str(), c.bus_id.c_str(),
                             same->bus_id.c_str()));
            continue;
        }
        if (cards.size() >= kMaxCards) break;
        cards.push_back(std::move(c));
    }
    std::sort(cards.begin(), cards.end(), [](const GpuCard& a, const GpuCard& b) { return a.bus_id < b.bus_id; });
    for (size_t i = 0; i < cards.size(); ++i) cards[i].index = int(i);
    return cards;
}

// ---- sizes ---------------------------------------------------------------------------------------------------

/* Below 1 GiB whole units, rounded down (B, KiB, MiB); from 1 GiB GiB with
 * one decimal, rounded to the nearest, without a trailing ".0". */
std::string size_text(uint64_t bytes) {
    if (bytes < 1024) return format("%llu B", static_cast<unsigned long long>(bytes));
    if (bytes < kMiB) return format("%llu KiB", static_cast<unsigned long long>(bytes >> 10));
    if (bytes < kGiB) return format("%llu MiB", static_cast<unsigned long long>(bytes >> 20));
    uint64_t whole = bytes / kGiB;
    uint64_t tenths = ((bytes % kGiB) * 10 + kGiB / 2) / kGiB;
    if (tenths == 10) {
        ++whole;
        tenths = 0;
    }
    if (tenths == 0) return format("%llu GiB", static_cast<unsigned long long>(whole));
    return format("%llu.%llu GiB", static_cast<unsigned long long>(whole), static_cast<unsigned long long>(tenths));
}

uint64_t parse_gpu_mem(std::string_view s) {
    s = trim(s);
    uint64_t whole = 0, frac = 0, scale = 1;   // the number is whole + frac / scale
    size_t i = 0;
    for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
        if (whole > (UINT64_MAX - 9) / 10) return 0;
        whole = whole * 10 + uint64_t(s[i] - '0');
    }
    if (i == 0) return 0;
    if (i < s.size() && s[i] == '.') {
        size_t start = ++i;
        for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
            if (scale >= 1000000) continue;   // past the sixth digit (< 1 MiB of a TiB): ignored
            frac = frac * 10 + uint64_t(s[i] - '0');
            scale *= 10;
        }
        if (i == start) return 0;
    }
    std::string_view unit = trim(s.substr(i));
    int shift = 20;   // a plain number is MiB
    if (!unit.empty()) {
        switch (lower(unit[0])) {
        case 'k': shift = 10; break;
        case 'm': shift = 20; break;
        case 'g': shift = 30; break;
        case 't': shift = 40; break;
        default: return 0;
        }
        std::string_view rest = unit.substr(1);
        if (!rest.empty() && !iequals(rest, "b") && !iequals(rest, "ib")) return 0;
    }
    if (whole > (UINT64_MAX >> shift)) return 0;
    uint64_t bytes = whole << shift;
    uint64_t part = (frac << shift) / scale;   // frac < 10^6 < 2^20 and shift <= 40: fits
    if (bytes > UINT64_MAX - part) return 0;
    return bytes + part;
}
