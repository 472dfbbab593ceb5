/*
 * gpu_probe.cpp — reading what probes say of the cards (gpu.h).
 */
#include "gpu.h"
// TEMPORARY stand-ins until the parsers land (replaced by the gpu-probe branch).
#include <cstdlib>
#include "util.h"
const char* const kQueryGpuFields = "index,uuid,pci.bus_id,memory.total,memory.used,utilization.gpu,compute_mode,mig.mode.current,name";
const char* const kQueryAppsFields = "gpu_uuid,pid,used_memory,process_name";
std::string size_text(uint64_t b) { return b >= (1ull << 30) ? format("%.1f GiB", b / 1073741824.0) : format("%llu MiB", (unsigned long long)(b >> 20)); }
uint64_t parse_gpu_mem(std::string_view s) {
    std::string t(s); char* e = nullptr; double d = strtod(t.c_str(), &e); if (e == t.c_str() || d <= 0) return 0;
    uint64_t m = 1ull << 20; if (*e == 'G' || *e == 'g') m = 1ull << 30, ++e; else if (*e == 'M' || *e == 'm') ++e; else if (*e == 'T' || *e == 't') m = 1ull << 40, ++e; else if (*e == 'K' || *e == 'k') m = 1ull << 10, ++e;
    return *e ? 0 : uint64_t(d * double(m));
}
static std::vector<std::string> fields(std::string_view line, size_t n) {
    std::vector<std::string> f; size_t pos = 0;
    while (f.size() + 1 < n) { size_t c = line.find(", ", pos); if (c == std::string_view::npos) break; f.emplace_back(line.substr(pos, c - pos)); pos = c + 2; }
    f.emplace_back(line.substr(pos)); return f;
}
static bool num(const std::string& s, unsigned long long* v) { char* e = nullptr; *v = strtoull(s.c_str(), &e, 10); return e != s.c_str(); }
bool parse_query_gpu(std::string_view text, std::vector<GpuCard>* cards, std::string* err, std::vector<std::string>*) {
    cards->clear();
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos); if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(pos, nl - pos); pos = nl + 1;
        if (line.empty()) continue;
        if (line.find("No devices were found") != std::string_view::npos) return true;
        auto f = fields(line, 9);
        if (f.size() != 9) { *err = std::string(line.substr(0, 200)); return false; }
        GpuCard c; unsigned long long v;
        if (!num(f[0], &v)) { *err = std::string(line.substr(0, 200)); return false; }
        c.index = int(v); c.uuid = f[1]; c.bus_id = f[2];
        if (num(f[3], &v)) c.mem_total = v << 20;
        if (num(f[4], &v)) { c.mem_used = v << 20; c.mem_known = true; }
        if (num(f[5], &v)) c.util = int(v);
        c.mode = f[6] == "Default" ? ComputeMode::Default : f[6] == "Exclusive_Process" ? ComputeMode::ExclusiveProcess : f[6] == "Prohibited" ? ComputeMode::Prohibited : ComputeMode::Unknown;
        c.mig = f[7] == "Enabled"; c.name = f[8];
        cards->push_back(c);
    }
    return true;
}
bool parse_compute_apps(std::string_view text, std::vector<GpuProcess>* procs, std::string*, std::vector<std::string>*) {
    procs->clear();
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos); if (nl == std::string_view::npos) nl = text.size();
        std::string_view line = text.substr(pos, nl - pos); pos = nl + 1;
        if (line.empty() || line.find("No running") != std::string_view::npos) continue;
        auto f = fields(line, 4); if (f.size() != 4) continue;
        GpuProcess p; unsigned long long v; p.uuid = f[0]; if (!num(f[1], &v)) continue; p.pid = pid_t(v);
        if (num(f[2], &v)) { p.mem = v << 20; p.mem_known = true; }
        p.name = f[3]; procs->push_back(p);
    }
    return true;
}
std::string nvidia_smi_failure(int code) { return format("nvidia-smi failed (exit code %d)", code); }
std::vector<GpuCard> read_amd_cards(const std::string&, std::vector<std::string>*) { return {}; }
const GpuCard* GpuSnapshot_card_unused = nullptr;
