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
