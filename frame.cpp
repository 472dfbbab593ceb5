/*
 * frame.cpp — see frame.h.
 */
#include "frame.h"

#include <cerrno>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

std::string encode_frame(proto::MsgType type, const void* body, size_t body_len,
                         std::string_view tail, uint16_t version) {
    proto::Header h{};
    h.version = version;
    h.type = static_cast<uint16_t>(type);
    h.len = static_cast<uint32_t>(body_len + tail.size());
    std::string out;
    out.reserve(sizeof h + body_len + tail.size());
    out.append(reinterpret_cast<const char*>(&h), sizeof h);
    if (body_len) out.append(static_cast<const char*>(body), body_len);
    out.append(tail);
    return out;
}

ParseStatus parse_frame(std::string_view buf, Frame* out, size_t* used, uint32_t max) {
    proto::Header h;
    if (buf.size() < sizeof h) return ParseStatus::Incomplete;
    std::memcpy(&h, buf.data(), sizeof h);
    if (h.len > max) return ParseStatus::TooBig;
    if (buf.size() - sizeof h < h.len) return ParseStatus::Incomplete;
    out->version = h.version;
    out->type = static_cast<proto::MsgType>(h.type);
    out->payload.assign(buf.data() + sizeof h, h.len);
    *used = sizeof h + h.len;
    return ParseStatus::Ok;
}

void TailWriter::add(std::string_view s) {
    uint32_t n = static_cast<uint32_t>(s.size());
    s_.append(reinterpret_cast<const char*>(&n), sizeof n);
    s_.append(s);
}

bool TailReader::next(std::string* out) {
    uint32_t n;
    if (t_.size() < sizeof n) return false;
    std::memcpy(&n, t_.data(), sizeof n);
    if (t_.size() - sizeof n < n) return false;
    out->assign(t_.data() + sizeof n, n);
    t_.remove_prefix(sizeof n + n);
    return true;
}

bool send_frame(int fd, const std::string& bytes) {
    const char* p = bytes.data();
    size_t len = bytes.size();
    while (len > 0) {
        // MSG_NOSIGNAL: a closed peer is an error to handle, not a SIGPIPE.
        ssize_t n = ::send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOTSOCK) return write_all(fd, p, len);
            return false;
        }
        p += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

bool recv_frame(int fd, Frame* out) {
    proto::Header h;
    if (!read_exact(fd, &h, sizeof h)) return false;
    if (h.len > proto::kMaxFrame) return false;
    out->version = h.version;
    out->type = static_cast<proto::MsgType>(h.type);
    out->payload.resize(h.len);
    return h.len == 0 || read_exact(fd, &out->payload[0], h.len);
}

proto::FinishedBody finished_body(const JobResult& r, double end) {
    auto us = [](double s) { return static_cast<int64_t>(s * 1e6); };
    proto::FinishedBody b{};
    b.errorlevel = r.errorlevel;
    b.signal = r.signal;
    b.skipped = r.skipped ? 1 : 0;
    b.how = uint8_t(r.how);
    b.real_us = us(r.real);
    b.user_us = us(r.user);
    b.sys_us = us(r.sys);
    b.end_us = us(end);
    return b;
}

JobResult result_of(const proto::FinishedBody& b) {
    JobResult r;
    r.errorlevel = b.errorlevel;
    r.signal = b.signal;
    r.skipped = b.skipped != 0;
    if (b.how <= uint8_t(EndHow::Cancelled)) r.how = EndHow(b.how);
    r.real = double(b.real_us) / 1e6;
    r.user = double(b.user_us) / 1e6;
    r.sys = double(b.sys_us) / 1e6;
    return r;
}


std::string encode_submit(const JobSpec& s) {
    proto::Submit b{};
    b.flags = s.flags;
    if (s.label) b.flags |= proto::kHasLabel;
    if (s.env_info) b.flags |= proto::kHasEnvInfo;
    if (s.depends) b.flags |= proto::kDepend;
    b.num_slots = s.num_slots;
    b.depend_on = s.depend_on;
    b.umask = s.umask;
    b.nice = s.nice;
    b.argc = static_cast<uint32_t>(s.argv.size());
    b.envc = static_cast<uint32_t>(s.env.size());
    if (s.limits) {
        b.limits_valid = s.limits->valid;
        for (int i = 0; i < proto::kNumLimits; ++i) b.limits[i] = s.limits->v[i];
    }
    TailWriter t;
    for (const auto& a : s.argv) t.add(a);
    for (const auto& e : s.env) t.add(e);
    t.add(s.cwd);
    if (s.label) t.add(*s.label);
    if (s.env_info) t.add(*s.env_info);
    if (!s.token.empty()) {
        b.flags |= proto::kHasToken;
        t.add(s.token);
    }
    if (!s.settings.empty()) {   // none: the frame ts sent before settings existed
        b.flags |= proto::kHasSettings;
        t.add(encode_settings(s.settings));
    }
    return encode(proto::MsgType::Submit, b, t.str());
}

bool decode_submit(const Frame& f, JobSpec* s) {
    proto::Submit b;
    std::string_view tail;
    if (!decode_body(f, &b, &tail)) return false;
    // Each string costs at least its 4-byte length: refuse counts the tail cannot hold
    // before reserving anything.
    if (b.argc == 0 || b.argc > tail.size() / 4 || b.envc > tail.size() / 4) return false;
    TailReader r(tail);
    s->argv.resize(b.argc);
    for (auto& a : s->argv)
        if (!r.next(&a)) return false;
    s->env.resize(b.envc);
    for (auto& e : s->env)
        if (!r.next(&e)) return false;
    if (!r.next(&s->cwd)) return false;
    std::string x;
    if (b.flags & proto::kHasLabel) {
        if (!r.next(&x)) return false;
        s->label = x;
    }
    if (b.flags & proto::kHasEnvInfo) {
        if (!r.next(&x)) return false;
        s->env_info = x;
    }
    s->token.clear();
    if (b.flags & proto::kHasToken) {
        if (!r.next(&s->token) || s->token.empty() || s->token.size() > 64) return false;
    }
    s->settings = JobSettings();
    if (b.flags & proto::kHasSettings) {
        if (!r.next(&x) || !decode_settings(x, &s->settings) || s->settings.empty()) return false;
    }
    if (!r.at_end()) return false;
    s->flags = b.flags & ~(proto::kHasLabel | proto::kHasEnvInfo | proto::kDepend | proto::kHasToken |
                           proto::kHasSettings);
    s->depends = b.flags & proto::kDepend;
    s->num_slots = std::max(0, b.num_slots);
    s->depend_on = b.depend_on;
    s->umask = b.umask & 0777;
    s->nice = b.nice;
    s->limits.reset();
    if (b.limits_valid) {
        auto l = std::make_shared<Limits>();
        l->valid = b.limits_valid;
        for (int i = 0; i < proto::kNumLimits; ++i)
            if (b.limits_valid & (1u << i)) l->v[i] = b.limits[i];
        s->limits = std::move(l);
    }
    return true;
}

std::string encode_assign(JobId id, const JobSpec& spec, uint16_t run) {
    proto::AssignBody r{};
    r.id = id;
    r.uid = static_cast<uint32_t>(spec.uid);
    TailWriter t;
    t.add(encode_submit(spec));
    if (run != 0) t.add(std::string(reinterpret_cast<const char*>(&run), sizeof run));
    return encode(proto::MsgType::Assign, r, t.str());
}

bool decode_assign(const Frame& f, JobId* id, JobSpec* spec, uid_t* owner, uint16_t* run) {
    proto::AssignBody r;
    std::string_view tail;
    std::string submit, run_bytes;
    if (f.type != proto::MsgType::Assign || !decode_body(f, &r, &tail) || r.id < 0) return false;
    TailReader t(tail);
    if (!t.next(&submit)) return false;
    uint16_t n = 0;
    if (!t.at_end() && (!t.next(&run_bytes) || run_bytes.size() != sizeof n)) return false;
    if (!t.at_end()) return false;
    if (!run_bytes.empty()) memcpy(&n, run_bytes.data(), sizeof n);
    if (run) *run = n;
    Frame inner;
    size_t used = 0;
    if (parse_frame(submit, &inner, &used) != ParseStatus::Ok || used != submit.size() ||
        inner.type != proto::MsgType::Submit || !decode_submit(inner, spec))
        return false;
    *id = r.id;
    *owner = static_cast<uid_t>(r.uid);
    spec->uid = *owner;
    return true;
}


std::string encode_ids(const std::vector<int32_t>& ids) {
    TailWriter t;
    t.add(std::string_view(reinterpret_cast<const char*>(ids.data()), ids.size() * sizeof(int32_t)));
    return t.str();
}

bool decode_ids(std::string_view tail, std::vector<int32_t>* ids, size_t max) {
    ids->clear();
    TailReader r(tail);
    std::string bytes;
    if (!r.next(&bytes) || !r.at_end() || bytes.empty() || bytes.size() % sizeof(int32_t) ||
        bytes.size() / sizeof(int32_t) > max)
        return false;
    ids->resize(bytes.size() / sizeof(int32_t));
    std::memcpy(ids->data(), bytes.data(), bytes.size());
    for (int32_t id : *ids)
        if (id < 0) return false;
    return true;
}
