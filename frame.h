/*
 * frame.h — turning messages into bytes and back (the layout is protocol.h):
 * frames, tails of strings, and the codec of every message that carries a job.
 *
 * A frame is Header + payload; the payload is the message's fixed body
 * followed by an optional tail of length-counted strings. Parsing works on a
 * byte buffer that may hold part of a frame, one frame or several: it never
 * allocates for a frame whose header claims more than proto::kMaxFrame, and
 * it never trusts a size it has not checked. Bodies are copied out with
 * memcpy after an exact size check, never reinterpret_cast in place.
 */
#pragma once

#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "jobs.h"
#include "protocol.h"

struct Frame {
    uint16_t version = 0;
    proto::MsgType type{};
    std::string payload;   // body + tail
};

/* Bytes of a whole frame. */
std::string encode_frame(proto::MsgType type, const void* body, size_t body_len,
                         std::string_view tail = {}, uint16_t version = proto::kVersion);

template <class Body>
std::string encode(proto::MsgType type, const Body& body, std::string_view tail = {}) {
    static_assert(std::is_trivially_copyable_v<Body>);
    return encode_frame(type, &body, sizeof body, tail);
}
inline std::string encode_empty(proto::MsgType type, std::string_view tail = {}) {
    return encode_frame(type, nullptr, 0, tail);
}

enum class ParseStatus { Incomplete, Ok, TooBig };

/* Take one frame from the front of buf. On Ok, *used is its size in bytes.
 * A header that claims more than max bytes is TooBig at once. */
ParseStatus parse_frame(std::string_view buf, Frame* out, size_t* used,
                        uint32_t max = proto::kMaxFrame);

/* Copy the fixed body out of a frame whose payload holds exactly the body
 * (allow_tail false) or the body and then a tail (allow_tail true). */
template <class Body>
bool decode_body(const Frame& f, Body* body, std::string_view* tail = nullptr) {
    static_assert(std::is_trivially_copyable_v<Body>);
    if (f.payload.size() < sizeof(Body)) return false;
    if (!tail && f.payload.size() != sizeof(Body)) return false;
    std::memcpy(body, f.payload.data(), sizeof(Body));
    if (tail) *tail = std::string_view(f.payload).substr(sizeof(Body));
    return true;
}

/* Builds a tail of length-counted strings. */
class TailWriter {
public:
    void add(std::string_view s);
    const std::string& str() const { return s_; }

private:
    std::string s_;
};

/* Reads strings back from a tail, checking every length against what is left. */
class TailReader {
public:
    explicit TailReader(std::string_view t) : t_(t) {}
    [[nodiscard]] bool next(std::string* out);
    bool at_end() const { return t_.empty(); }

private:
    std::string_view t_;
};

/* A tail of one string holding job ids (int32 each, host order): WaitList,
 * WaitingFor. Decoding refuses a tail that is not exactly one such string of
 * 1..max ids, each from 0 up. */
std::string encode_ids(const std::vector<int32_t>& ids);
[[nodiscard]] bool decode_ids(std::string_view tail, std::vector<int32_t>* ids, size_t max);

/* Blocking I/O for clients and runners. */
[[nodiscard]] bool send_frame(int fd, const std::string& bytes);
/* Read one whole frame; false on EOF, error or a frame over the limit. */
[[nodiscard]] bool recv_frame(int fd, Frame* out);

/* The messages that carry a job, and back: Submit <-> JobSpec (the tail
 * layout is in protocol.h), Finished's body <-> JobResult (the journal
 * records it the same way), and the Assign frame that hands job id to a
 * spare runner: the job's owner in the body (the spare refuses a job of
 * another uid than its own), the job's Submit frame (spec with its
 * environment and settings) in the tail. */
std::string encode_submit(const JobSpec& spec);
[[nodiscard]] bool decode_submit(const Frame& f, JobSpec* spec);
proto::FinishedBody finished_body(const JobResult& r, double end);
JobResult result_of(const proto::FinishedBody& b);
/* run: which run of the job (--retry), after the Submit in the tail
 * (absent: 0, as an Assign without it means). */
std::string encode_assign(JobId id, const JobSpec& spec, uint16_t run = 0);
[[nodiscard]] bool decode_assign(const Frame& f, JobId* id, JobSpec* spec, uid_t* owner, uint16_t* run = nullptr);
