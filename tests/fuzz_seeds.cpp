/*
 * fuzz_seeds.cpp — writes the fuzzer's seed corpus: one file per valid
 * request (every client message, a runner's Started/Finished, a -f submit,
 * submits with settings, a spare runner), in the chunk format of fuzz_server.cpp.
 * Usage: fuzz_seeds DIR
 */
#include <cstdio>
#include <string>

#include "frame.h"
#include "jobs.h"

namespace {

std::string chunk(int conn, const std::string& bytes) {
    std::string s(1, char(conn));
    s += char(bytes.size() & 0xff);
    s += char((bytes.size() >> 8) & 0xff);
    return s + bytes;
}

void put(const std::string& dir, const std::string& name, const std::string& data) {
    FILE* f = fopen((dir + "/" + name).c_str(), "wb");
    if (!f) return;
    fwrite(data.data(), 1, data.size(), f);
    fclose(f);
}

std::string submit(bool foreground, bool depends, const JobSettings& settings = JobSettings()) {
    JobSpec s;
    s.settings = settings;
    s.argv = {"sh", "-c", "echo hi"};
    s.env = {"PATH=/bin", "TMPDIR=/tmp"};
    s.cwd = "/";
    s.label = "lab";
    if (foreground) s.flags |= proto::kForeground;
    s.depends = depends;
    return encode_submit(s);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    std::string d = argv[1];
    using proto::MsgType;
    proto::JobRef r{};
    r.id = 0;
    proto::JobRef last{};
    last.id = -1;
    proto::Slots sl{};
    sl.n = 3;
    proto::JobPair p{};
    p.a = 1;
    p.b = 2;
    proto::AttachBody at{};
    put(d, "list", chunk(0, encode_empty(MsgType::List)));
    put(d, "submit", chunk(0, submit(false, false)) + chunk(1, encode_empty(MsgType::List)));
    put(d, "submit-f", chunk(0, submit(true, false)) + chunk(7, "") + chunk(6, ""));
    put(d, "submit-d", chunk(0, submit(false, false)) + chunk(1, submit(false, true)) +
                           chunk(2, encode(MsgType::Wait, last)));
    std::string ops;
    for (MsgType t : {MsgType::State, MsgType::Output, MsgType::Wait, MsgType::Remove,
                      MsgType::Urgent, MsgType::Info, MsgType::Kill, MsgType::Cancel})
        ops += chunk(4, "") + chunk(0, encode(t, r)) + chunk(6, "");
    put(d, "job-ops", chunk(1, submit(false, false)) + chunk(1, submit(false, false)) + ops);
    put(d, "slots", chunk(0, encode(MsgType::SetSlots, sl)) + chunk(5, "") +
                        chunk(1, encode_empty(MsgType::GetSlots)));
    put(d, "swap", chunk(0, submit(false, false)) + chunk(1, submit(false, false)) +
                       chunk(2, submit(false, false)) + chunk(3, encode(MsgType::Swap, p)));
    put(d, "clear", chunk(3, encode_empty(MsgType::Clear)));
    put(d, "drain", chunk(0, submit(false, false)) + chunk(1, encode(MsgType::Drain, proto::Slots{1, 0})) +
                        chunk(2, encode_empty(MsgType::List)) + chunk(3, encode(MsgType::Drain, proto::Slots{})));
    put(d, "attach", chunk(0, encode(MsgType::Attach, at)));
    put(d, "kill-server", chunk(2, encode_empty(MsgType::KillServer)));
    // A spare runner (conn 0, the server's uid) gets the job of conn 1 and
    // reports it; one of another uid (conn 3) is refused.
    proto::StartedBody st{};
    st.pid = 1234;
    JobResult res;
    res.errorlevel = 3;
    put(d, "spare", chunk(0, encode_empty(MsgType::Spare)) + chunk(3, encode_empty(MsgType::Spare)) +
                        chunk(1, submit(false, false)) + chunk(6, "") +
                        chunk(0, encode(MsgType::Started, st, "/tmp/ts-out.AAAAAA")) +
                        chunk(0, encode(MsgType::Finished, finished_body(res, 1.0))));
    // Settings: one a server may ignore (kept), and one it must know but does not (refused).
    JobSettings hint, unknown;
    hint.set_bytes(0x8001, "hint");
    unknown.set_u32(7, 2);
    unknown.set_bytes(0x8001, "hint");
    put(d, "submit-settings", chunk(0, submit(false, false, hint)) + chunk(1, submit(false, false, unknown)) +
                                  chunk(2, submit(true, false, hint)) + chunk(3, encode_empty(MsgType::List)));
    // GPU jobs (the harness sees no GPU: refused, or queued to wait), and --gpu-list.
    JobSettings gpus, gpu_mem;
    gpus.set_gpus(2);
    gpu_mem.set_gpus(1);
    gpu_mem.set_gpu_mem(uint64_t(8) << 30);
    put(d, "gpus", chunk(0, submit(false, false, gpus)) + chunk(1, submit(true, false, gpu_mem)) +
                       chunk(2, encode_empty(MsgType::GpuList)) + chunk(3, encode(MsgType::Info, last)));
    put(d, "old-version", chunk(0, encode_frame(MsgType::List, nullptr, 0, {}, 99)));
    return 0;
}
