/*
 * journal.h — the queue on disk, so that it outlives its server.
 *
 * The server appends a record for every change of the queue to
 * <socket>.journal (mode 0600): a job added (all of it, as a full job
 * record), a job started by the scheduler, its runner's pid, its start (pid,
 * output file), its end, removal, -u, -U, -S, -C, a held job let in. A new
 * server replays the file through the same Queue operations, so ids, order,
 * labels, dependencies, the finished list and the slot count come back.
 *
 * File: an 8-byte header ("TSJ" 0, uint32 format version), then records:
 * uint32 length, uint32 CRC-32 of the rest, uint16 type, uint16 zero, body.
 * A torn last record (a server killed in the middle of a write) fails its
 * length or CRC check and is dropped with everything after it. A file that is
 * not a journal at all, or of a newer format, is moved aside and logged:
 * it never stops a server from starting.
 *
 * Compaction: when the file is several times larger than the live queue, a
 * snapshot (the meta record and one full record per job, in list order) is
 * written to a temporary file and renamed over the journal.
 *
 * Writes are not fsync'ed per record: a server crash loses nothing, a power
 * cut may lose the last moments.
 */
#pragma once

#include <functional>
#include <string>
#include <unordered_map>

#include "jobs.h"
#include "util.h"

using EnvTable = std::unordered_map<uint32_t, EnvPtr>;

class Journal {
public:
    using Log = std::function<void(const std::string&)>;

    /* Open (creating) the journal at path and replay it into *q. Problems are
     * reported through log; the journal works from then on unless disabled. */
    Journal(std::string path, Queue* q, Log log);

    void job(const Job& j);                   // added (or its full state)
    void start(JobId id);
    void runner(JobId id, pid_t runner_pid);
    void started(JobId id, pid_t pid, const std::string& output, double start);
    void finished(JobId id, const JobResult& r, double end);
    void removed(JobId id);
    void urgent(JobId id);
    void swapped(JobId a, JobId b);
    void slots(int n);
    void cleared();
    void released(JobId id);
    void moved_before(JobId id, JobId before);

    /* Compact when the file has grown well beyond the live state. */
    void maybe_compact(const Queue& q);
    /* Write the live state now (after a change no record describes). */
    void compact(const Queue& q) { (void)write_snapshot(q); }
    /* ts -K: a fresh, empty queue. */
    void remove_file();

    size_t size() const { return size_; }
    bool replayed_anything() const { return replayed_; }
    /* Why the file at the journal's path was not used (a link, a FIFO, a file
     * of another user or with another name): then nothing is read or written. */
    const std::string& refused() const { return refused_; }

private:
    void append(uint16_t type, const std::string& body);
    void replay(Queue* q);
    bool apply(uint16_t type, std::string_view body, Queue* q);
    void set_aside(const std::string& why);
    bool write_snapshot(const Queue& q);
    uint32_t env_id(const EnvPtr& env);

    std::string path_;
    Log log_;
    Fd fd_;
    size_t size_ = 0;
    double job_bytes_ = 256;      // average record of a job added (with its environment)
    double done_bytes_ = 256;     // average record of an ended job (without it)
    bool replayed_ = false;
    std::string refused_;
    bool broken_ = false;   // a write failed: the file on disk is gone until a snapshot works
    // Environments written since the last snapshot (each once), and read back.
    std::unordered_map<const Env*, std::pair<uint32_t, EnvPtr>> env_ids_;
    uint32_t next_env_id_ = 0;
    EnvTable env_table_;
};

/* A whole job as bytes, and back (shared by the journal and its tests). With
 * env_id the environment is left out: a kEnv record with that id holds it. */
std::string encode_job(const Job& j, uint32_t env_id = 0);
[[nodiscard]] bool decode_job(std::string_view bytes, Job* j, const EnvTable* envs = nullptr);
uint32_t crc32(std::string_view data);
