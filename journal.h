/*
 * journal.h — the queue on disk, so that it outlives its server.
 *
 * The server appends a record for every change of the queue to
 * <socket>.journal (mode 0600): a job added (all of it, as a full job
 * record), a job started by the scheduler, its runner's pid, its start (pid,
 * output file), its end, removal, -u, -U, -S, -C, an overflow job let in,
 * --hold=ID and --release=ID (a job held at submit, or delayed, says so in
 * its settings; a snapshot writes them as they are then), a failed run
 * retried (--retry), --drain and --resume (a snapshot of a drained queue says so twice, after
 * the meta record and at the end, as it does the settings). A new
 * server replays the file through the same Queue operations, so ids, order,
 * labels, dependencies, the finished list and the slot count come back.
 *
 * File (format 2): a 32-byte header ("TSJ" 0, uint32 format version, a
 * random 64-bit salt and the CRC-32 of those 16 bytes, then the salt again
 * and the CRC-32 of magic, version and that copy: either copy does), then
 * records: uint32 length, uint32 CRC-32 of the salt and the rest, uint16
 * type, uint16 check (of length and type, over the salt), body. The salt is secret (the file is the owner's,
 * mode 0600): another user's strings inside a job can hold no byte sequence
 * that a reader looking for the next intact record would take for one. Each
 * file written has a salt of its own. The records are the journal's own,
 * not copies of wire messages: a job is a list of tagged fields (uint16 tag,
 * uint32 length, bytes; a reader skips the tags it does not know, as an older
 * one skips the field of a job's settings), and a fixed
 * record may grow at its end (a reader ignores what follows the fields it
 * knows; a meta record's growth is tagged fields, the first a filler of
 * zeros). An incompatible change raises the format version.
 *
 * Layout: one bad aligned 512-byte sector or 4 KiB region costs no more
 * than the records inside it (a record reaching into it counts as inside),
 * because nothing that many records need has all its copies inside one:
 * a meta record (next id, slot count; the CRC run backwards gives the key
 * when the header is lost) sits at offset 32 and starts exactly at offsets
 * 512 and 4096 once the file reaches them (a meta record grown by a filler
 * pads up to each); an environment has a copy before the first job that
 * uses it and one more after any job whose record does not touch every
 * sector and region that its copies share (one to four per file); the
 * queue's settings, which every job needs, have copies so too (a snapshot
 * writes one after the meta record and one at the end; a record appended
 * that does not touch every unit their copies share is followed by one
 * more). Costs:
 * two pads per file at most, each shorter than the record it keeps off the
 * offset (plus 34 bytes), 28 bytes per anchor. Files of format 2 written
 * before had the copies side by side: they are read the same way.
 *
 * Reading: format 1 (ts before this layout) is read and rewritten as format 2.
 * A newer format is left untouched, and the server refuses to start (refused()).
 * A damaged record (its length, CRC or contents wrong) costs that record alone:
 * the reader looks for the next intact record and goes on from there, and the
 * log says which bytes and which jobs were lost; an id that a record names
 * is never given again, even when its job's own record was lost. Before the
 * damaged file is rewritten it is kept aside as <journal>.bad.TIME (a hard
 * link made just before the snapshot's rename, so even a full disk keeps it,
 * and removed again if the rename fails). A job whose environment's copies
 * were all lost is marked lost, if it was still to run. A file that is not a
 * journal at all is moved aside.
 *
 * Writing never destroys state: every record is one write(2) at the end of
 * the file, and a write that fails cuts off only its own partial bytes. A
 * record goes only to the file still at the journal's path (at_path()): a
 * removed one is written again by a snapshot first, another file put there
 * stops all writing until it is moved away. Then
 * the journal is failing (ok() false, why() says why) until recover() works:
 * the server refuses changes meanwhile, and whatever it had to keep in memory
 * (pending()) is saved by a snapshot when space returns. Snapshots (at start,
 * and compaction when the file is several times larger than the live queue)
 * are written to a new file and renamed over the journal only once complete
 * and fsync'ed; a snapshot that fails leaves the journal as it was. Where the
 * file system allows, 64 KiB beyond the end are kept allocated
 * (fallocate), so that the records of running jobs still fit when the disk
 * fills up; when that room cannot be renewed, ok() is false already.
 *
 * The queue's settings (config.h: TS_FSYNC, the GPU settings, the caps) are
 * a record of their own (NAME=value strings in a tagged field), written when
 * a server journals them (the queue's first start, ts --reconfigure) and in
 * every snapshot; the last one read is the queue's. A journal without one
 * (a new queue, or one of a ts before them) has no settings yet.
 *
 * A record is written (accepted by the kernel) before the client hears of
 * the change: it survives the death of any ts process. A power cut may lose
 * the last moments, unless TS_FSYNC=1 makes every record fdatasync'ed.
 */
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <sys/types.h>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config.h"
#include "jobs.h"
#include "util.h"

using EnvTable = std::unordered_map<uint32_t, EnvPtr>;
struct JournalReading;   // how a file is read (journal.cpp)
struct JournalSnapshot;  // a snapshot's file before it is written (journal.cpp)

/* An environment in the file being written: its record's id, and the bytes
 * [start, end) of each copy written so far (where they go: journal.cpp). */
struct EnvCopies {
    uint32_t id = 0;
    EnvPtr env;   // keeps it alive: the pointer stays unique
    std::vector<std::pair<size_t, size_t>> at;
};

class Journal {
public:
    using Log = std::function<void(const std::string&)>;

    /* Open (creating) the journal at path and replay it into *q. Problems are
     * reported through log. An empty path: no journal (everything works, nothing is written). */
    Journal(std::string path, Queue* q, Log log, bool sync = false);

    /* Records of changes, each true once written. False: the journal is
     * failing; with kept, the change stays in memory and pending() is true
     * (a snapshot saves it when the journal works again); without, the caller
     * undoes the change. */
    bool job(const Job& j, bool kept = true);   // added (or its full state)
    // A start, with the GPUs it was given and what they put in its environment.
    bool start(JobId id, bool kept = true, const std::vector<std::string>& gpus = {},
               const std::vector<std::string>& env = {});
    bool runner(JobId id, pid_t runner_pid);
    bool started(JobId id, pid_t pid, const std::string& output, double start);
    bool ended(JobId id, const JobResult& r, double end);
    bool retried(JobId id, const JobResult& r, double end);   // a failed run; the job is queued again (--retry)
    bool removed(JobId id);
    bool urgent(JobId id);
    bool swapped(JobId a, JobId b);
    bool slots(int n);
    bool drained(bool on);   // --drain (true), --resume (false)
    bool held(JobId id, bool on);   // --hold=ID (true), --release=ID (false)
    bool cleared();
    bool admitted(JobId id);
    bool moved_before(JobId id, JobId before);
    bool unstarted(JobId id);   // a started job went back to the queue (it never ran)

    /* The queue's settings (config.h) as the journal has them; nullopt when
     * it has none (a new queue, or a journal of a ts before them). */
    const std::optional<QueueSettings>& settings() const { return settings_; }
    /* These are the queue's settings from now on: written now, and in every
     * snapshot. False as the records above (they are kept in memory). */
    bool set_settings(const QueueSettings& s);
    /* TS_FSYNC, once the queue's settings are known: every record is
     * fdatasync'ed from now on (and the directory, for the start's snapshot). */
    void set_sync(bool on);

    /* Whether changes can be written now; why() says what is wrong when not. */
    bool ok() const { return err_ == 0; }
    /* ok(), and the disk has room beyond what is kept ahead: a change a
     * client asks for may be made (else the journal is failing from now on:
     * the room ahead is for running jobs' records). */
    bool room();
    std::string why() const;
    /* Changes held in memory only (written by the next snapshot). */
    bool pending() const { return dirty_; }
    /* Try to write again: a snapshot when changes are pending or the file
     * cannot take records, else renewing the room ahead. True when ok(). */
    bool recover(const Queue& q);

    /* Compact when the file has grown well beyond the live state (after a
     * failure, not again for a while). */
    void maybe_compact(const Queue& q, double now);
    void maybe_compact(const Queue& q) { maybe_compact(q, mono_now()); }
    /* Write the live state now. */
    bool compact(const Queue& q) { return write_snapshot(q); }
    /* ts -K: a fresh, empty queue (the file is removed only if it is still
     * the one this journal writes). */
    void remove_file();
    /* Whether the path still names the file written to: Gone (a cleaner
     * removed it, or its directory: compact() writes it again) or Replaced
     * (another file is there now: never written over, appended to or removed). */
    enum class FileState { Same, Gone, Replaced };
    FileState file_state() const;
    /* Whether the path still names the file written to. Else the journal is
     * failing from now on, with the queue held in memory (pending()): a
     * record appended to a file no longer at the path would be lost with the
     * server, so none is; recover() writes the journal again where none is,
     * and leaves another file alone (why() says to move it away). Every
     * record is checked so (an fstat and an lstat). */
    bool at_path();

    size_t size() const { return size_; }
    bool replayed_anything() const { return replayed_; }
    /* Why the server must not use the file at the journal's path (a link, a
     * FIFO, a file of another user, a newer format): it refuses to start. */
    const std::string& refused() const { return refused_; }

private:
    bool append(uint16_t type, const std::string& body, bool kept = true);
    bool write_record(const std::string& rec);
    void fail(int err, const char* what);
    void replay(Queue* q);
    bool load(std::string* data);
    bool read_header(std::string* data, struct JournalReading* how, std::string* damaged);
    size_t apply_records(const std::string& data, const JournalReading& how, Queue* q, std::string* damaged);
    bool after_replay(Queue* q, std::string* damaged);
    void start_writing(const Queue& q, const std::string& data, const JournalReading& how,
                       const std::string& damaged, bool changed);
    bool apply(uint16_t type, std::string_view body, Queue* q, uint32_t format, JobId* about);
    bool keep_aside(const std::string& why, std::string* kept_as);
    void set_aside(const std::string& why);
    bool write_snapshot(const Queue& q);
    bool install_snapshot(const std::string& bytes, Fd* fd);
    void use_snapshot(JournalSnapshot&& s, Fd fd);
    void note_file(int fd);
    void keep_settings_apart(size_t off);
    void reserve();
    Queue::Meta live_meta() const;

    std::string path_;
    Log log_;
    Fd fd_;
    dev_t file_dev_ = 0;            // the file at path_ that is the journal (note_file)
    ino_t file_ino_ = 0;
    bool sync_ = false;
    size_t size_ = 0;
    size_t allocated_ = 0;          // bytes of the file allocated ahead (fallocate)
    bool can_reserve_ = true;       // the file system supports fallocate
    double job_bytes_ = 256;      // average record of a job added (with its environment)
    double done_bytes_ = 256;     // average record of an ended job (without it)
    bool replayed_ = false;
    std::string refused_;
    int err_ = 0;                   // errno of the failure while failing, else 0
    bool low_ = false;              // only the room ahead could not be renewed: records still fit
    std::string err_what_;          // what failed
    bool dirty_ = false;            // changes in memory that the file lacks
    double compact_after_ = 0;      // a failed compaction is not tried again before then
    double compact_delay_ = 1;
    double snapshot_tried_ = 0;
    std::string unkept_;            // why the file is damaged, until a snapshot has kept a copy aside
    uint32_t key_init_ = 0xFFFFFFFFu;   // the CRC register after this file's salt
    const Queue* live_ = nullptr;       // the queue: its meta goes into the anchors (journal.cpp)
    // Environments in the file being written, and those read back.
    std::unordered_map<const Env*, EnvCopies> env_ids_;
    uint32_t next_env_id_ = 0;
    EnvTable env_table_;
    // Replay: jobs whose environment no record read so far held (a later copy may).
    std::vector<std::pair<JobId, uint32_t>> env_missing_;
    std::optional<QueueSettings> settings_;   // the queue's settings (the last record of them)
    // The bytes [start, end) of each copy of them in the file being written.
    std::vector<std::pair<size_t, size_t>> settings_at_;
};

/* A whole job as the journal's tagged fields, and back (shared by the journal
 * and its tests). With env_id the environment is left out: a kEnv record with
 * that id holds it. */
std::string encode_job(const Job& j, uint32_t env_id = 0);
/* An environment id that envs lacks (its record was damaged, or comes later)
 * fails, unless env_missing is given: then the job comes back without it,
 * and *env_missing is set to that id. */
[[nodiscard]] bool decode_job(std::string_view bytes, Job* j, const EnvTable* envs = nullptr,
                              uint32_t* env_missing = nullptr);
/* A job record of format 1 (a fixed part and the job's Submit frame). */
std::string encode_job_v1(const Job& j, uint32_t env_id = 0);
[[nodiscard]] bool decode_job_v1(std::string_view bytes, Job* j, const EnvTable* envs = nullptr,
                                 uint32_t* env_missing = nullptr);
/* The queue's settings as a record's body, and back: tagged fields, a
 * reader skips the tags it does not know. False when the fields do not add
 * up or a value is not NAME=value. */
std::string encode_queue_settings(const QueueSettings& s);
[[nodiscard]] bool decode_queue_settings(std::string_view bytes, QueueSettings* out);
/* The name of a record type of the journal (each has a row: journal.cpp);
 * nullptr for a type this ts does not know, which a reader takes for damage. */
const char* journal_record_name(uint16_t type);
uint32_t crc32(std::string_view data);
/* The CRC-32 register before data, given the one after it (the CRC run
 * backwards: a file's key comes back from a record when its salt is lost). */
uint32_t crc_back(uint32_t reg, std::string_view data);
constexpr uint32_t kJournalFormat = 2;
/* A format 2 file's header with this salt, and a record of it (for tests). */
std::string journal_header(uint32_t version, uint64_t salt);
std::string journal_record(uint64_t salt, uint16_t type, const std::string& body);
