/*
 * fuzz_server.cpp — libFuzzer target (`make fuzz`): the frame decoder, the
 * submit, settings and journal-record decoders, and every message handler of
 * a real server (a ServerHarness: no listener, no fork, no exit).
 *
 * Input: the raw bytes go through the decoders first. Then they are read as
 * a script of chunks, [op][len: 2 bytes][bytes]: op % 8 in 0..3 writes the
 * bytes on connection op (of four: the server's uid, root and another uid),
 * 4..5 closes a connection and opens a new one, 6 reads and drops what the
 * server sent, 7 runs an extra round. After every chunk the server runs one
 * round of its loop.
 */
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <fcntl.h>
#include <string>
#include <unistd.h>

#include "frame.h"
#include "jobs.h"
#include "listing.h"
#include "journal.h"
#include "server.h"
#include "util.h"

namespace {

std::string temp_dir() {
    static std::string dir;
    if (dir.empty()) {
        char templ[] = "/tmp/ts-fuzz.XXXXXX";
        const char* d = mkdtemp(templ);
        dir = d ? d : "/tmp";
    }
    return dir;
}

void decoders(std::string_view in) {
    Frame f;
    size_t used = 0;
    while (!in.empty() && parse_frame(in, &f, &used) == ParseStatus::Ok) {
        JobSpec spec;
        (void)decode_submit(f, &spec);
        proto::FinishedBody fb;
        std::string_view tail;
        (void)decode_body(f, &fb, &tail);
        in.remove_prefix(used);
    }
    JobSettings settings;
    std::string why;
    if (decode_settings(in, &settings)) (void)check_settings(settings, &why);
    Job j, j1;
    (void)decode_job(in, &j);
    uint32_t missing = 0;
    (void)decode_job_v1(in, &j1, nullptr, &missing);
    // The whole input as a journal file (either format), replayed into a queue.
    if (!in.empty() && (in[0] & 7) == 0) {
        std::string path = temp_dir() + "/fuzz.journal";
        std::string bytes;
        if (in.size() >= 2 && (in[1] & 1)) {   // format 1: the input as it is
            bytes.assign("TSJ\0\1\0\0\0", 8);
            bytes.append(in.substr(1));
        } else {   // format 2: the input cut into records of the types it names
            bytes = journal_header(kJournalFormat, 0);
            std::string_view rest = in.substr(1);
            while (rest.size() >= 2) {
                size_t n = std::min<size_t>(rest.size() - 2, uint8_t(rest[1]));
                bytes += journal_record(0, uint16_t(uint8_t(rest[0]) % 17), std::string(rest.substr(2, n)));
                rest.remove_prefix(2 + n);
            }
        }
        Fd fd(open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
        if (fd && write_all(fd.get(), bytes.data(), bytes.size())) {
            fd.reset();
            Queue q;
            Journal jr(path, &q, [](const std::string&) {});
            (void)list_text(q);
            (void)q.schedule();
        }
        if (DIR* d = opendir(temp_dir().c_str())) {   // the journal, and what was kept aside
            while (struct dirent* e = readdir(d))
                if (std::strncmp(e->d_name, "fuzz.journal", 12) == 0) unlink((temp_dir() + "/" + e->d_name).c_str());
            closedir(d);
        }
    }
    TailReader r(in);
    std::string s;
    while (r.next(&s)) {
    }
}

void drain(int fd) {
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    decoders(in);

    static const uid_t kUids[4] = {getuid(), getuid(), 0, 4242};
    ServerHarness h(temp_dir() + "/s");
    Fd conns[4];
    for (int i = 0; i < 4; ++i) {
        conns[i] = h.connect(kUids[i]);
        set_nonblock(conns[i].get());
    }
    while (in.size() >= 3 && !h.stopped()) {
        uint8_t op = static_cast<uint8_t>(in[0]) % 8;
        size_t len = static_cast<uint8_t>(in[1]) | (size_t(static_cast<uint8_t>(in[2])) << 8);
        in.remove_prefix(3);
        std::string_view chunk = in.substr(0, len);
        in.remove_prefix(chunk.size());
        if (op < 4) {
            (void)!write(conns[op].get(), chunk.data(), chunk.size());
        } else if (op < 6) {
            int k = op - 4 + (chunk.empty() ? 0 : 2 * (chunk[0] & 1));
            conns[k] = h.connect(kUids[k]);
            set_nonblock(conns[k].get());
        } else if (op == 6) {
            for (auto& c : conns) drain(c.get());
        } else {
            h.round();
        }
        h.round();
    }
    for (int i = 0; i < 3 && !h.stopped(); ++i) h.round();
    return 0;
}
