/*
 * harness_client.h — the client side of a ServerHarness connection in unit
 * tests: send bytes, and take every frame that has arrived so far.
 */
#pragma once

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "frame.h"
#include "util.h"

/* What a connection has received so far. */
struct Received {
    std::vector<Frame> frames;
    std::string rest;     // bytes of an incomplete frame
    bool closed = false;  // EOF: the server closed it
};

inline void send_bytes(const Fd& c, const std::string& bytes) {
    ASSERT_TRUE(write_all(c.get(), bytes.data(), bytes.size()));
}

/* Everything that arrived on c until now (it does not wait). */
inline Received receive_now(const Fd& c) {
    Received r;
    set_nonblock(c.get());
    std::string in;
    char buf[65536];
    for (;;) {
        ssize_t n = read(c.get(), buf, sizeof buf);
        if (n > 0) {
            in.append(buf, size_t(n));
            continue;
        }
        if (n == 0) r.closed = true;
        else if (errno == EINTR) continue;
        else EXPECT_TRUE(errno == EAGAIN || errno == EWOULDBLOCK || errno == ECONNRESET) << strerror(errno);
        break;
    }
    size_t off = 0;
    for (;;) {
        Frame f;
        size_t used = 0;
        if (parse_frame(std::string_view(in).substr(off), &f, &used) != ParseStatus::Ok) break;
        r.frames.push_back(f);
        off += used;
    }
    r.rest = in.substr(off);
    return r;
}
