/*
 * frame_test.cpp — frame.cpp and protocol.h: every message's layout,
 * encoding, incremental parsing, size checks, the string tail, the codecs of
 * the messages that carry a job, and a job's settings (settings.cpp) on the wire.
 */
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "frame.h"
#include "jobs.h"
#include "protocol.h"

using proto::MsgType;

namespace {

/* Raw header bytes, built without encode_frame. */
std::string raw_header(uint16_t version, uint16_t type, uint32_t len) {
    proto::Header h{};
    h.version = version;
    h.type = type;
    h.len = len;
    return std::string(reinterpret_cast<const char*>(&h), sizeof h);
}

proto::Header header_of(const std::string& bytes) {
    proto::Header h{};
    EXPECT_GE(bytes.size(), sizeof h);
    std::memcpy(&h, bytes.data(), sizeof h);
    return h;
}

std::string u32(uint32_t n) { return std::string(reinterpret_cast<const char*>(&n), sizeof n); }

Frame make_frame(MsgType type, std::string payload) {
    Frame f;
    f.version = proto::kVersion;
    f.type = type;
    f.payload = std::move(payload);
    return f;
}

/* Parse exactly one frame that must fill the whole buffer. */
Frame parse_whole(const std::string& bytes) {
    Frame f;
    size_t used = 12345;
    EXPECT_EQ(parse_frame(bytes, &f, &used), ParseStatus::Ok);
    EXPECT_EQ(used, bytes.size());
    return f;
}

}  // namespace

// ---------------------------------------------------------------- encoding

TEST(Frame, EncodeLayoutOfFixedBody) {
    proto::JobRef r{7, 0};
    std::string b = encode(MsgType::State, r);
    ASSERT_EQ(b.size(), 16u);
    proto::Header h = header_of(b);
    EXPECT_EQ(h.version, proto::kVersion);
    EXPECT_EQ(h.type, 103);
    EXPECT_EQ(h.len, 8u);
    int32_t id;
    std::memcpy(&id, b.data() + 8, 4);
    EXPECT_EQ(id, 7);
}

TEST(Frame, EncodeEmptyIsHeaderOnly) {
    std::string b = encode_empty(MsgType::List);
    ASSERT_EQ(b, raw_header(proto::kVersion, 101, 0));
    Frame f = parse_whole(b);
    EXPECT_EQ(f.version, proto::kVersion);
    EXPECT_EQ(f.type, MsgType::List);
    EXPECT_TRUE(f.payload.empty());
}

TEST(Frame, EncodeFrameKeepsExplicitVersion) {
    std::string b = encode_frame(MsgType::KillServer, nullptr, 0, {}, 42);
    Frame f = parse_whole(b);
    EXPECT_EQ(f.version, 42);
    EXPECT_EQ(f.type, MsgType::KillServer);
}

TEST(Frame, RoundTripJobRefNegativeId) {
    proto::JobRef r{-1, 0};
    Frame f = parse_whole(encode(MsgType::Wait, r));
    EXPECT_EQ(f.type, MsgType::Wait);
    EXPECT_EQ(f.payload.size(), sizeof(proto::JobRef));
    proto::JobRef back{99, 99};
    ASSERT_TRUE(decode_body(f, &back));
    EXPECT_EQ(back.id, -1);
}

TEST(Frame, RoundTripJobPair) {
    proto::JobPair p{3, 11};
    Frame f = parse_whole(encode(MsgType::Swap, p));
    EXPECT_EQ(f.type, MsgType::Swap);
    proto::JobPair back{};
    ASSERT_TRUE(decode_body(f, &back));
    EXPECT_EQ(back.a, 3);
    EXPECT_EQ(back.b, 11);
}

TEST(Frame, RoundTripFinishedBody) {
    proto::FinishedBody fb{};
    fb.errorlevel = -56;
    fb.signal = 15;
    fb.skipped = 1;
    fb.real_us = 1234567;
    fb.user_us = -1;
    fb.sys_us = std::numeric_limits<int64_t>::max();
    fb.end_us = 1700000000123456LL;
    Frame f = parse_whole(encode(MsgType::Finished, fb));
    EXPECT_EQ(f.type, MsgType::Finished);
    ASSERT_EQ(f.payload.size(), 48u);
    proto::FinishedBody back{};
    ASSERT_TRUE(decode_body(f, &back));
    EXPECT_EQ(back.errorlevel, -56);
    EXPECT_EQ(back.signal, 15);
    EXPECT_EQ(back.skipped, 1);
    EXPECT_EQ(back.real_us, 1234567);
    EXPECT_EQ(back.user_us, -1);
    EXPECT_EQ(back.sys_us, std::numeric_limits<int64_t>::max());
    EXPECT_EQ(back.end_us, 1700000000123456LL);
}

TEST(Frame, RoundTripOutputReplyWithTail) {
    proto::OutputBody ob{};
    ob.id = 4;
    ob.pid = 31337;
    ob.stored = 1;
    ob.state = proto::kRunning;
    TailWriter t;
    t.add("/tmp/ts-out.abcdef");
    std::string b = encode(MsgType::OutputReply, ob, t.str());
    EXPECT_EQ(header_of(b).len, 16u + 4u + 18u);
    Frame f = parse_whole(b);
    EXPECT_EQ(f.type, MsgType::OutputReply);
    proto::OutputBody back{};
    std::string_view tail;
    ASSERT_TRUE(decode_body(f, &back, &tail));
    EXPECT_EQ(back.id, 4);
    EXPECT_EQ(back.pid, 31337);
    EXPECT_EQ(back.stored, 1);
    EXPECT_EQ(back.state, proto::kRunning);
    EXPECT_EQ(tail.size(), 22u);
    TailReader r(tail);
    std::string path;
    ASSERT_TRUE(r.next(&path));
    EXPECT_EQ(path, "/tmp/ts-out.abcdef");
    EXPECT_TRUE(r.at_end());
    // Without a tail pointer the same frame is refused: it is not exactly the body.
    EXPECT_FALSE(decode_body(f, &back));
}

TEST(Frame, RoundTripTextTailOnly) {
    TailWriter t;
    t.add("ID   State\nline 2\n");
    Frame f = parse_whole(encode_empty(MsgType::Text, t.str()));
    EXPECT_EQ(f.type, MsgType::Text);
    EXPECT_EQ(f.payload, t.str());
    TailReader r(f.payload);
    std::string s;
    ASSERT_TRUE(r.next(&s));
    EXPECT_EQ(s, "ID   State\nline 2\n");
    EXPECT_TRUE(r.at_end());
}

TEST(Frame, RoundTripStartedBodyWithEmptyPath) {
    proto::StartedBody sb{};
    sb.pid = 4242;
    sb.start_us = 99;
    TailWriter t;
    t.add("");
    Frame f = parse_whole(encode(MsgType::Started, sb, t.str()));
    EXPECT_EQ(f.type, MsgType::Started);
    EXPECT_EQ(f.payload.size(), 16u + 4u);
    proto::StartedBody back{};
    std::string_view tail;
    ASSERT_TRUE(decode_body(f, &back, &tail));
    EXPECT_EQ(back.pid, 4242);
    EXPECT_EQ(back.start_us, 99);
    TailReader r(tail);
    std::string path = "not empty";
    ASSERT_TRUE(r.next(&path));
    EXPECT_EQ(path, "");
    EXPECT_TRUE(r.at_end());
}

// ----------------------------------------------------------------- parsing

TEST(Frame, ParsePartialHeaderIsIncomplete) {
    std::string b = encode(MsgType::State, proto::JobRef{1, 0});
    for (size_t n = 0; n < sizeof(proto::Header); ++n) {
        Frame f;
        f.payload = "untouched";
        size_t used = 777;
        EXPECT_EQ(parse_frame(std::string_view(b).substr(0, n), &f, &used),
                  ParseStatus::Incomplete)
            << "n=" << n;
        EXPECT_EQ(used, 777u) << "n=" << n;
        EXPECT_EQ(f.payload, "untouched") << "n=" << n;
    }
}

TEST(Frame, ParsePartialBodyIsIncomplete) {
    TailWriter t;
    t.add("hello");
    std::string b = encode(MsgType::OutputReply, proto::OutputBody{}, t.str());
    ASSERT_EQ(b.size(), 8u + 16u + 9u);
    for (size_t n = sizeof(proto::Header); n < b.size(); ++n) {
        Frame f;
        size_t used = 777;
        EXPECT_EQ(parse_frame(std::string_view(b).substr(0, n), &f, &used),
                  ParseStatus::Incomplete)
            << "n=" << n;
        EXPECT_EQ(used, 777u) << "n=" << n;
    }
    Frame f;
    size_t used = 0;
    EXPECT_EQ(parse_frame(b, &f, &used), ParseStatus::Ok);
    EXPECT_EQ(used, b.size());
}

TEST(Frame, TwoFramesBackToBack) {
    std::string a = encode(MsgType::Kill, proto::JobRef{5, 0});
    TailWriter t;
    t.add("Error text\n");
    std::string b = encode_empty(MsgType::Error, t.str());
    std::string c = encode(MsgType::Slots, proto::Slots{3, 0});
    std::string buf = a + b + c.substr(0, 5);

    Frame f;
    size_t used = 0;
    ASSERT_EQ(parse_frame(buf, &f, &used), ParseStatus::Ok);
    EXPECT_EQ(used, a.size());
    EXPECT_EQ(used, 16u);
    EXPECT_EQ(f.type, MsgType::Kill);
    proto::JobRef r{};
    ASSERT_TRUE(decode_body(f, &r));
    EXPECT_EQ(r.id, 5);

    std::string_view rest = std::string_view(buf).substr(used);
    ASSERT_EQ(parse_frame(rest, &f, &used), ParseStatus::Ok);
    EXPECT_EQ(used, b.size());
    EXPECT_EQ(used, 8u + 4u + 11u);
    EXPECT_EQ(f.type, MsgType::Error);
    EXPECT_EQ(f.payload, t.str());

    rest = rest.substr(used);
    EXPECT_EQ(rest.size(), 5u);
    size_t used3 = 777;
    EXPECT_EQ(parse_frame(rest, &f, &used3), ParseStatus::Incomplete);
    EXPECT_EQ(used3, 777u);
}

TEST(Frame, HeaderClaimingFourGigabytesIsTooBig) {
    std::string b = raw_header(proto::kVersion, 102, 0xFFFFFFFFu);
    ASSERT_EQ(b.size(), 8u);
    Frame f;
    f.payload = "keep";
    const size_t cap = f.payload.capacity();
    size_t used = 777;
    EXPECT_EQ(parse_frame(b, &f, &used), ParseStatus::TooBig);
    EXPECT_EQ(used, 777u);
    EXPECT_EQ(f.payload, "keep");
    EXPECT_EQ(f.payload.capacity(), cap);   // nothing was reserved for the claimed size
}

TEST(Frame, MaxFrameBoundary) {
    Frame f;
    size_t used = 777;
    EXPECT_EQ(parse_frame(raw_header(1, 202, proto::kMaxFrame + 1), &f, &used),
              ParseStatus::TooBig);
    // Exactly kMaxFrame is allowed: with only the header at hand it is still incomplete.
    EXPECT_EQ(parse_frame(raw_header(1, 202, proto::kMaxFrame), &f, &used),
              ParseStatus::Incomplete);
    EXPECT_EQ(used, 777u);
}

TEST(Frame, ParseKeepsUnknownTypeAndVersion) {
    std::string b = raw_header(9, 65000, 3) + "abc";
    Frame f = parse_whole(b);
    EXPECT_EQ(f.version, 9);
    EXPECT_EQ(static_cast<uint16_t>(f.type), 65000);
    EXPECT_EQ(f.payload, "abc");
}

// ------------------------------------------------------------- decode_body

TEST(DecodeBody, TooShortIsRefused) {
    proto::JobRef r{55, 66};
    Frame f = make_frame(MsgType::State, std::string(7, '\x01'));
    EXPECT_FALSE(decode_body(f, &r));
    std::string_view tail = "sentinel";
    EXPECT_FALSE(decode_body(f, &r, &tail));
    EXPECT_EQ(r.id, 55);   // untouched on failure
    EXPECT_EQ(r.pad, 66u);
    EXPECT_EQ(tail, "sentinel");
    Frame empty = make_frame(MsgType::State, "");
    EXPECT_FALSE(decode_body(empty, &r));
}

TEST(DecodeBody, TooLongWithoutTailIsRefused) {
    proto::JobRef r{55, 0};
    Frame f = make_frame(MsgType::State, std::string(9, '\0'));
    EXPECT_FALSE(decode_body(f, &r));
    EXPECT_EQ(r.id, 55);
}

TEST(DecodeBody, ExactSizeWithoutTail) {
    int32_t id = 12;
    std::string p(reinterpret_cast<const char*>(&id), 4);
    p += std::string(4, '\0');
    Frame f = make_frame(MsgType::State, p);
    proto::JobRef r{};
    ASSERT_TRUE(decode_body(f, &r));
    EXPECT_EQ(r.id, 12);
}

TEST(DecodeBody, WithTail) {
    int32_t id = -3;
    std::string p(reinterpret_cast<const char*>(&id), 4);
    p += std::string(4, '\0');
    Frame exact = make_frame(MsgType::State, p);
    proto::JobRef r{};
    std::string_view tail = "sentinel";
    ASSERT_TRUE(decode_body(exact, &r, &tail));
    EXPECT_EQ(r.id, -3);
    EXPECT_TRUE(tail.empty());

    Frame longer = make_frame(MsgType::State, p + "xyz");
    ASSERT_TRUE(decode_body(longer, &r, &tail));
    EXPECT_EQ(r.id, -3);
    EXPECT_EQ(tail, "xyz");
}

// -------------------------------------------------------------------- tail

TEST(Tail, RoundTripWithEmptyNulAndNewlines) {
    const std::vector<std::string> in = {
        "", "abc", std::string("a\0b\0", 4), "line1\nline2\n", std::string(1, '\0'), "",
        std::string(300, 'x'),
    };
    TailWriter w;
    size_t expect_size = 0;
    for (const auto& s : in) {
        w.add(s);
        expect_size += 4 + s.size();
    }
    EXPECT_EQ(w.str().size(), expect_size);
    // The first string is empty: its length is four zero bytes.
    EXPECT_EQ(w.str().substr(0, 4), std::string(4, '\0'));
    EXPECT_EQ(w.str().substr(4, 4), u32(3));

    TailReader r(w.str());
    for (size_t i = 0; i < in.size(); ++i) {
        EXPECT_FALSE(r.at_end()) << i;
        std::string out = "garbage";
        ASSERT_TRUE(r.next(&out)) << i;
        EXPECT_EQ(out, in[i]) << i;
    }
    EXPECT_TRUE(r.at_end());
    std::string out = "kept";
    EXPECT_FALSE(r.next(&out));
    EXPECT_EQ(out, "kept");
}

TEST(Tail, EmptyTail) {
    TailWriter w;
    EXPECT_TRUE(w.str().empty());
    TailReader r("");
    EXPECT_TRUE(r.at_end());
    std::string s;
    EXPECT_FALSE(r.next(&s));
}

TEST(Tail, ReaderRefusesLengthPastTheEnd) {
    std::string t = u32(10) + "abc";
    TailReader r(t);
    std::string out = "kept";
    EXPECT_FALSE(r.next(&out));
    EXPECT_EQ(out, "kept");
    EXPECT_FALSE(r.at_end());

    std::string off_by_one = u32(4) + "abc";
    TailReader r2(off_by_one);
    EXPECT_FALSE(r2.next(&out));

    std::string huge = u32(0xFFFFFFFFu) + "abcdefgh";
    TailReader r3(huge);
    EXPECT_FALSE(r3.next(&out));
    EXPECT_EQ(out, "kept");
}

TEST(Tail, ReaderRefusesPartialLength) {
    for (size_t n = 1; n < 4; ++n) {
        TailReader r(std::string(n, '\0'));
        std::string out;
        EXPECT_FALSE(r.next(&out)) << n;
    }
}

TEST(Tail, SecondStringRunningPastTheEnd) {
    std::string t = u32(2) + "ok" + u32(5) + "abcd";
    TailReader r(t);
    std::string out;
    ASSERT_TRUE(r.next(&out));
    EXPECT_EQ(out, "ok");
    EXPECT_FALSE(r.next(&out));
    EXPECT_EQ(out, "ok");
}

// ------------------------------------------------------------------ Submit

namespace {

JobSpec full_spec() {
    JobSpec s;
    s.argv = {"sh", "-c", "echo a\nb", std::string("nul\0in", 6), ""};
    s.env = {"A=1", "EMPTY=", "PATH=/usr/bin:/bin"};
    s.cwd = "/tmp/dir with space";
    s.label = "my label";
    s.env_info = "ENV line 1\nENV line 2\n";
    s.flags = proto::kStoreOutput | proto::kGzip | proto::kStderrApart | proto::kNoBlock |
              proto::kKeepFinished;
    s.num_slots = 3;
    s.depends = true;
    s.depend_on = 17;
    s.umask = 027;
    s.nice = 7;
    auto l = std::make_shared<Limits>();
    l->valid = (1u << 0) | (1u << 2) | (1u << 15);
    l->v[0] = {1, 2};
    l->v[2] = {std::numeric_limits<uint64_t>::max(), 5};
    l->v[15] = {1ull << 40, 1ull << 41};
    s.limits = l;
    return s;
}

std::string submit_payload(const JobSpec& s) {
    std::string b = encode_submit(s);
    Frame f;
    size_t used = 0;
    EXPECT_EQ(parse_frame(b, &f, &used), ParseStatus::Ok);
    EXPECT_EQ(f.type, MsgType::Submit);
    return f.payload;
}

/* A Submit payload built by hand. */
std::string raw_submit(uint32_t flags, uint32_t argc, uint32_t envc,
                       const std::vector<std::string>& strings) {
    proto::Submit b{};
    b.flags = flags;
    b.num_slots = 1;
    b.depend_on = -1;
    b.umask = 022;
    b.argc = argc;
    b.envc = envc;
    TailWriter t;
    for (const auto& s : strings) t.add(s);
    return std::string(reinterpret_cast<const char*>(&b), sizeof b) + t.str();
}

}  // namespace

TEST(Submit, FullSpecRoundTrip) {
    const JobSpec in = full_spec();
    std::string bytes = encode_submit(in);
    Frame f = parse_whole(bytes);
    EXPECT_EQ(f.version, proto::kVersion);
    EXPECT_EQ(f.type, MsgType::Submit);

    // The body announces the optional parts.
    proto::Submit body{};
    std::string_view tail;
    ASSERT_TRUE(decode_body(f, &body, &tail));
    EXPECT_EQ(body.argc, 5u);
    EXPECT_EQ(body.envc, 3u);
    EXPECT_TRUE(body.flags & proto::kHasLabel);
    EXPECT_TRUE(body.flags & proto::kHasEnvInfo);
    EXPECT_TRUE(body.flags & proto::kDepend);
    EXPECT_EQ(body.depend_on, 17);

    JobSpec out;
    ASSERT_TRUE(decode_submit(f, &out));
    EXPECT_EQ(out.argv, in.argv);
    EXPECT_EQ(out.env, in.env);
    EXPECT_EQ(out.cwd, "/tmp/dir with space");
    ASSERT_TRUE(out.label.has_value());
    EXPECT_EQ(*out.label, "my label");
    ASSERT_TRUE(out.env_info.has_value());
    EXPECT_EQ(*out.env_info, "ENV line 1\nENV line 2\n");
    EXPECT_EQ(out.flags, in.flags);   // the tail-layout bits are not job flags
    EXPECT_EQ(out.num_slots, 3);
    EXPECT_TRUE(out.depends);
    EXPECT_EQ(out.depend_on, 17);
    EXPECT_EQ(out.umask, 027u);
    EXPECT_EQ(out.nice, 7);
    ASSERT_TRUE(out.limits);
    EXPECT_EQ(out.limits->valid, in.limits->valid);
    for (int i = 0; i < proto::kNumLimits; ++i) {
        EXPECT_EQ(out.limits->v[i].cur, in.limits->v[i].cur) << i;
        EXPECT_EQ(out.limits->v[i].max, in.limits->v[i].max) << i;
    }
    EXPECT_EQ(out.command(), in.command());
}

TEST(Submit, MinimalSpecRoundTrip) {
    JobSpec in;
    in.argv = {"true"};
    in.cwd = "/";
    in.flags = proto::kForeground | proto::kMail | proto::kStoreOutput | proto::kKeepFinished;
    in.depend_on = -1;
    Frame f = parse_whole(encode_submit(in));
    EXPECT_EQ(f.payload.size(), sizeof(proto::Submit) + 4 + 4 + 4 + 1);
    JobSpec out;
    ASSERT_TRUE(decode_submit(f, &out));
    EXPECT_EQ(out.argv, std::vector<std::string>{"true"});
    EXPECT_TRUE(out.env.empty());
    EXPECT_EQ(out.cwd, "/");
    EXPECT_FALSE(out.label.has_value());
    EXPECT_FALSE(out.env_info.has_value());
    EXPECT_EQ(out.flags, in.flags);
    EXPECT_FALSE(out.depends);
    EXPECT_EQ(out.depend_on, -1);
    EXPECT_EQ(out.num_slots, 1);
    EXPECT_EQ(out.umask, 022u);
    EXPECT_EQ(out.nice, 0);
    EXPECT_FALSE(out.limits);
}

TEST(Submit, EmptyLabelAndEnvInfoArePresent) {
    JobSpec in;
    in.argv = {"x"};
    in.label = "";
    in.env_info = "";
    in.depends = true;
    in.depend_on = -1;   // -d
    Frame f = parse_whole(encode_submit(in));
    JobSpec out;
    ASSERT_TRUE(decode_submit(f, &out));
    ASSERT_TRUE(out.label.has_value());
    EXPECT_EQ(*out.label, "");
    ASSERT_TRUE(out.env_info.has_value());
    EXPECT_EQ(*out.env_info, "");
    EXPECT_TRUE(out.depends);
    EXPECT_EQ(out.depend_on, -1);
}

TEST(Submit, TokenRoundTripAndBounds) {
    JobSpec in;
    in.argv = {"x"};
    in.label = "l";
    in.token = "00112233445566778899aabbccddeeff";
    JobSpec out;
    ASSERT_TRUE(decode_submit(parse_whole(encode_submit(in)), &out));
    EXPECT_EQ(out.token, in.token);
    EXPECT_EQ(out.flags & proto::kHasToken, 0u) << "the flag says how the tail is laid out only";
    EXPECT_EQ(*out.label, "l");
    in.token.clear();   // no token (an older client): none
    ASSERT_TRUE(decode_submit(parse_whole(encode_submit(in)), &out));
    EXPECT_TRUE(out.token.empty());
    // An empty or an oversized token is refused.
    for (size_t n : {size_t(0), size_t(65), size_t(4096)}) {
        JobSpec bad;
        bad.argv = {"x"};
        std::string frame = encode_submit(bad);
        Frame f = parse_whole(frame);
        proto::Submit body;
        std::memcpy(&body, f.payload.data(), sizeof body);
        body.flags |= proto::kHasToken;
        TailWriter t;
        t.add(std::string(n, 'a'));
        std::string payload(reinterpret_cast<const char*>(&body), sizeof body);
        payload += f.payload.substr(sizeof body) + t.str();
        Frame g;
        g.version = proto::kVersion;
        g.type = MsgType::Submit;
        g.payload = payload;
        JobSpec o;
        EXPECT_FALSE(decode_submit(g, &o)) << "token of " << n << " bytes";
    }
}

TEST(Submit, DecodeClampsSlotsAndUmask) {
    JobSpec in;
    in.argv = {"x"};
    in.num_slots = -4;
    in.umask = 0177777;
    Frame f = parse_whole(encode_submit(in));
    JobSpec out;
    ASSERT_TRUE(decode_submit(f, &out));
    EXPECT_EQ(out.num_slots, 0);
    EXPECT_EQ(out.umask, 0777u);
}

TEST(Submit, TruncatedPayloadsAreRefused) {
    const std::string payload = submit_payload(full_spec());
    ASSERT_GT(payload.size(), sizeof(proto::Submit));
    {
        JobSpec whole;
        ASSERT_TRUE(decode_submit(make_frame(MsgType::Submit, payload), &whole));
    }
    for (size_t n = 0; n < payload.size(); ++n) {
        JobSpec out;
        EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, payload.substr(0, n)), &out))
            << "accepted a payload cut to " << n << " of " << payload.size() << " bytes";
    }
}

TEST(Submit, ArgcZeroIsRefused) {
    JobSpec in;
    in.cwd = "/tmp";
    in.argv.clear();
    JobSpec out;
    EXPECT_FALSE(decode_submit(parse_whole(encode_submit(in)), &out));
    EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, raw_submit(0, 0, 0, {"/tmp"})), &out));
}

TEST(Submit, HandBuiltPayloadIsAccepted) {
    // Baseline for the refusals below: the same builder with sane counts works.
    JobSpec out;
    ASSERT_TRUE(decode_submit(
        make_frame(MsgType::Submit, raw_submit(0, 2, 1, {"echo", "hi", "A=b", "/w"})), &out));
    EXPECT_EQ(out.argv, (std::vector<std::string>{"echo", "hi"}));
    EXPECT_EQ(out.env, std::vector<std::string>{"A=b"});
    EXPECT_EQ(out.cwd, "/w");
}

TEST(Submit, CountsLargerThanTheTailAreRefused) {
    const std::vector<std::string> strs = {"echo", "hi", "A=b", "/w"};   // 4 strings, 27 bytes of tail
    JobSpec out;
    EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, raw_submit(0, 0xFFFFFFFFu, 0, strs)), &out));
    EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, raw_submit(0, 1, 0xFFFFFFFFu, strs)), &out));
    EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, raw_submit(0, 0x7FFFFFFFu, 0x7FFFFFFFu, strs)), &out));
    // Plausible but still more strings than the tail holds.
    EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, raw_submit(0, 4, 1, strs)), &out));
    EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, raw_submit(0, 2, 2, strs)), &out));
    EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, raw_submit(0, 7, 0, strs)), &out));
}

TEST(Submit, MissingOptionalStringsAreRefused) {
    JobSpec out;
    EXPECT_FALSE(decode_submit(
        make_frame(MsgType::Submit, raw_submit(proto::kHasLabel, 1, 0, {"true", "/w"})), &out));
    EXPECT_FALSE(decode_submit(
        make_frame(MsgType::Submit, raw_submit(proto::kHasEnvInfo | proto::kHasLabel, 1, 0,
                                               {"true", "/w", "lab"})),
        &out));
    ASSERT_TRUE(decode_submit(
        make_frame(MsgType::Submit, raw_submit(proto::kHasLabel, 1, 0, {"true", "/w", "lab"})),
        &out));
    EXPECT_EQ(out.label, std::optional<std::string>("lab"));
}

TEST(Submit, TrailingGarbageIsRefused) {
    const std::string payload = submit_payload(full_spec());
    JobSpec out;
    EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, payload + "x"), &out));
    EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, payload + std::string(3, '\0')), &out));
    // A whole extra (empty) string is garbage too.
    EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, payload + u32(0)), &out));
    EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, raw_submit(0, 1, 0, {"true", "/w", "extra"})), &out));
}

// ---------------------------------------------------------------- settings

namespace {

/* One settings field built by hand: uint16 tag, uint32 length, bytes. */
std::string field(uint16_t tag, const std::string& v) {
    std::string f(reinterpret_cast<const char*>(&tag), sizeof tag);
    return f + u32(static_cast<uint32_t>(v.size())) + v;
}

JobSettings some_settings() {
    JobSettings s;
    s.set_bytes(0x8002, std::string("a\0b", 3));   // set out of order: kept in tag order
    s.set_u32(7, 3);
    s.set_u64(0x7fff, 1ull << 40);
    s.set_bytes(9, "");
    return s;
}

/* A Submit payload (spec's, from encode_submit) with one more tail string and flag bits. */
std::string payload_plus(const JobSpec& spec, uint32_t flags, const std::string& extra) {
    std::string p = submit_payload(spec);
    proto::Submit b;
    std::memcpy(&b, p.data(), sizeof b);
    b.flags |= flags;
    std::memcpy(&p[0], &b, sizeof b);
    return p + u32(static_cast<uint32_t>(extra.size())) + extra;
}

uint64_t fnv1a(const std::string& s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (unsigned char c : s) {
        h ^= c;
        h *= 0x100000001b3ull;
    }
    return h;
}

}  // namespace

TEST(Settings, TypedValuesAndTagOrder) {
    JobSettings s;
    EXPECT_TRUE(s.empty());
    EXPECT_EQ(s.u32(7), std::nullopt);
    EXPECT_EQ(s.bytes(7), nullptr);
    s = some_settings();
    ASSERT_EQ(s.fields().size(), 4u);
    std::vector<uint16_t> tags;
    for (const auto& f : s.fields()) tags.push_back(f.first);
    EXPECT_EQ(tags, (std::vector<uint16_t>{7, 9, 0x7fff, 0x8002}));
    EXPECT_EQ(s.u32(7), 3u);
    EXPECT_EQ(s.u64(0x7fff), 1ull << 40);
    ASSERT_NE(s.bytes(9), nullptr);
    EXPECT_EQ(*s.bytes(9), "");
    EXPECT_EQ(*s.bytes(0x8002), std::string("a\0b", 3));
    EXPECT_EQ(s.u64(7), std::nullopt) << "a number of another size is no number";
    EXPECT_EQ(s.u32(0x7fff), std::nullopt);
    s.set_u32(7, 4);   // set again: replaced, not added
    EXPECT_EQ(s.u32(7), 4u);
    EXPECT_EQ(s.fields().size(), 4u);
    s.erase(9);
    s.erase(10);   // not there: nothing
    EXPECT_EQ(s.bytes(9), nullptr);
    EXPECT_EQ(s.fields().size(), 3u);
}

TEST(Settings, EncodingRoundTripAndLayout) {
    EXPECT_EQ(encode_settings(JobSettings()), "");
    JobSettings none = some_settings();
    ASSERT_TRUE(decode_settings("", &none));
    EXPECT_TRUE(none.empty()) << "no bytes are no settings, and what was there is gone";

    JobSettings s;
    s.set_u32(7, 3);
    s.set_bytes(0x8002, "xy");
    uint32_t three = 3;
    EXPECT_EQ(encode_settings(s),
              field(7, std::string(reinterpret_cast<const char*>(&three), 4)) + field(0x8002, "xy"));
    JobSettings back;
    ASSERT_TRUE(decode_settings(encode_settings(some_settings()), &back));
    EXPECT_EQ(back, some_settings());
}

TEST(Settings, DecoderRefusals) {
    const std::string good = encode_settings(some_settings());
    JobSettings out;
    ASSERT_TRUE(decode_settings(good, &out));
    // Truncated: every cut that is not at a field boundary.
    std::set<size_t> bounds;
    for (size_t off = 0; off < good.size();) {
        bounds.insert(off);
        uint32_t n;
        std::memcpy(&n, good.data() + off + 2, 4);
        off += 6 + n;
    }
    for (size_t n = 1; n < good.size(); ++n) {
        if (bounds.count(n)) continue;
        EXPECT_FALSE(decode_settings(good.substr(0, n), &out)) << "cut at " << n;
    }
    EXPECT_FALSE(decode_settings(field(3, "a") + field(3, "b"), &out)) << "the same tag twice";
    EXPECT_FALSE(decode_settings(field(4, "a") + field(3, "b"), &out)) << "tags out of order";
    EXPECT_FALSE(decode_settings(field(0, "a"), &out)) << "tag 0";
    EXPECT_FALSE(decode_settings(field(3, "a") + u32(0), &out)) << "half a field at the end";
    EXPECT_TRUE(out.empty()) << "a refused encoding leaves no settings behind";
    EXPECT_FALSE(decode_settings(field(3, "").substr(0, 2) + u32(0xFFFFFFFFu), &out))
        << "a length past the end";

    // At most kMaxSettings fields...
    std::string many;
    for (uint16_t t = 1; t <= kMaxSettings; ++t) many += field(t, "v");
    ASSERT_TRUE(decode_settings(many, &out));
    EXPECT_EQ(out.fields().size(), kMaxSettings);
    EXPECT_FALSE(decode_settings(many + field(uint16_t(kMaxSettings + 1), "v"), &out))
        << "one field too many";
    // ...and kMaxSettingsBytes in all.
    std::string big = field(1, std::string(kMaxSettingsBytes - 6, 'b'));
    ASSERT_TRUE(decode_settings(big, &out));
    EXPECT_FALSE(decode_settings(field(1, std::string(kMaxSettingsBytes - 5, 'b')), &out))
        << "a byte too big";
}

TEST(Settings, TheServerRefusesSettingsItMustKnowAndDoesNot) {
    std::string err;
    EXPECT_TRUE(check_settings(JobSettings(), &err));
    JobSettings s;
    s.set_u32(0x7123, 2);
    ASSERT_FALSE(check_settings(s, &err));
    EXPECT_EQ(err, "The server does not know the job setting 28963 (it runs an older ts: see ts --restart)");
    JobSettings hint;
    hint.set_bytes(0x8000, "a hint it may ignore");
    EXPECT_TRUE(check_settings(hint, &err)) << err;
    {
        TestSetting row({0x7123, "test-count",
                         [](std::string_view v, std::string* why) { return valid_u32_in(v, 1, 8, why); }});
        ASSERT_NE(find_setting(0x7123), nullptr);
        EXPECT_STREQ(find_setting(0x7123)->name, "test-count");
        EXPECT_TRUE(check_settings(s, &err)) << err;
        s.set_u32(0x7123, 9);
        ASSERT_FALSE(check_settings(s, &err));
        EXPECT_EQ(err, "The job setting 28963 (test-count) is not valid: 9 is not in 1..8");
        s.set_bytes(0x7123, "x");
        ASSERT_FALSE(check_settings(s, &err));
        EXPECT_EQ(err, "The job setting 28963 (test-count) is not valid: 1 byte, not a 4-byte number");
    }
    EXPECT_EQ(find_setting(0x7123), nullptr) << "a test's row is gone with it";
}

TEST(Settings, EveryRowOfTheTableIsWhole) {
    for (uint32_t tag = 0; tag <= 0xffff; ++tag) {
        const SettingDef* d = find_setting(uint16_t(tag));
        if (!d) continue;
        EXPECT_NE(tag, 0u) << "tag 0 is never a setting";
        EXPECT_EQ(d->tag, tag);
        EXPECT_TRUE(d->name && *d->name) << tag;
        EXPECT_TRUE(d->valid) << tag;
    }
}

TEST(Submit, SettingsRoundTrip) {
    JobSpec in = full_spec();
    in.token = "00112233445566778899aabbccddeeff";
    in.settings = some_settings();
    Frame f = parse_whole(encode_submit(in));
    proto::Submit body{};
    std::string_view tail;
    ASSERT_TRUE(decode_body(f, &body, &tail));
    EXPECT_TRUE(body.flags & proto::kHasSettings);
    EXPECT_TRUE(body.flags & proto::kHasToken);
    JobSpec out;
    ASSERT_TRUE(decode_submit(f, &out));
    EXPECT_EQ(out.settings, in.settings);
    EXPECT_EQ(out.flags, in.flags) << "kHasSettings says how the tail is laid out only";
    EXPECT_EQ(out.token, in.token);
    EXPECT_EQ(out.argv, in.argv);
    EXPECT_EQ(*out.env_info, *in.env_info);
    // Without a token and label too: the settings string comes right after what is there.
    JobSpec plain;
    plain.argv = {"x"};
    plain.settings.set_u32(5, 1);
    ASSERT_TRUE(decode_submit(parse_whole(encode_submit(plain)), &out));
    EXPECT_EQ(out.settings, plain.settings);
    EXPECT_TRUE(out.token.empty());
    // A spec decoded over one with settings has none when the frame has none.
    ASSERT_TRUE(decode_submit(parse_whole(encode_submit(full_spec())), &out));
    EXPECT_TRUE(out.settings.empty());
}

// A job without settings is sent exactly as before settings existed, so a
// server of the same version that predates them serves it.
TEST(Submit, WithoutSettingsTheFrameIsTheOneBeforeSettings) {
    JobSpec in = full_spec();
    in.token = "00112233445566778899aabbccddeeff";
    // The frame by hand: header, the body, the tail strings in their order.
    proto::Submit b{};
    b.flags = in.flags | proto::kHasLabel | proto::kHasEnvInfo | proto::kDepend | proto::kHasToken;
    b.num_slots = 3;
    b.depend_on = 17;
    b.umask = 027;
    b.nice = 7;
    b.argc = 5;
    b.envc = 3;
    b.limits_valid = in.limits->valid;
    for (int i = 0; i < proto::kNumLimits; ++i) b.limits[i] = in.limits->v[i];
    TailWriter t;
    for (const auto& s : in.argv) t.add(s);
    for (const auto& s : in.env) t.add(s);
    for (const char* s : {"/tmp/dir with space", "my label", "ENV line 1\nENV line 2\n",
                          "00112233445566778899aabbccddeeff"})
        t.add(s);
    std::string body(reinterpret_cast<const char*>(&b), sizeof b);
    std::string want = raw_header(proto::kVersion, uint16_t(MsgType::Submit),
                                  uint32_t(body.size() + t.str().size())) + body + t.str();
    std::string got = encode_submit(in);
    EXPECT_EQ(got, want);
    // Pinned: what the encoder made before settings existed (this spec, and a minimal one).
    const uint16_t one = 1;
    if (*reinterpret_cast<const char*>(&one) != 1) GTEST_SKIP() << "pinned on a little-endian machine";
    EXPECT_EQ(got.size(), 470u);
    EXPECT_EQ(fnv1a(got), 0xd5ae9648f78719f0ull);
    JobSpec minimal;
    minimal.argv = {"true"};
    minimal.cwd = "/";
    EXPECT_EQ(encode_submit(minimal).size(), 309u);
    EXPECT_EQ(fnv1a(encode_submit(minimal)), 0x60bf5912fdca7fceull);
}

TEST(Submit, BadSettingsAreRefused) {
    JobSpec plain;
    plain.argv = {"x"};
    plain.cwd = "/";
    JobSpec out;
    auto with = [&](uint32_t flags, const std::string& settings) {
        return make_frame(MsgType::Submit, payload_plus(plain, flags, settings));
    };
    ASSERT_TRUE(decode_submit(with(proto::kHasSettings, field(2, "v")), &out));
    EXPECT_EQ(*out.settings.bytes(2), "v");
    std::string too_many;
    for (uint16_t t = 1; t <= kMaxSettings + 1; ++t) too_many += field(t, "");
    const std::string bad[] = {
        std::string(),                              // the flag says there are some
        field(2, "v") + field(2, "w"),              // twice
        field(3, "v") + field(2, "w"),              // out of order
        field(2, "v").substr(0, 5),                 // truncated
        field(0, "v"),                              // tag 0
        too_many,
        field(1, std::string(kMaxSettingsBytes, 'b')),
    };
    for (const std::string& b : bad)
        EXPECT_FALSE(decode_submit(with(proto::kHasSettings, b), &out))
            << "settings of " << b.size() << " bytes";
    // The flag without its string, and the string without its flag.
    Frame no_string = parse_whole(encode_submit(plain));
    proto::Submit b;
    std::memcpy(&b, no_string.payload.data(), sizeof b);
    b.flags |= proto::kHasSettings;
    std::memcpy(&no_string.payload[0], &b, sizeof b);
    EXPECT_FALSE(decode_submit(no_string, &out));
    EXPECT_FALSE(decode_submit(with(0, field(2, "v")), &out));
    // Every truncation of a Submit with settings.
    JobSpec in = full_spec();
    in.settings = some_settings();
    const std::string payload = submit_payload(in);
    for (size_t n = 0; n < payload.size(); ++n)
        EXPECT_FALSE(decode_submit(make_frame(MsgType::Submit, payload.substr(0, n)), &out))
            << "cut to " << n;
}

TEST(Assign, CarriesTheSettings) {
    JobSpec in = full_spec();
    in.uid = 4321;
    in.settings = some_settings();
    JobId id = -1;
    JobSpec out;
    uid_t owner = 0;
    ASSERT_TRUE(decode_assign(parse_whole(encode_assign(42, in)), &id, &out, &owner));
    EXPECT_EQ(id, 42);
    EXPECT_EQ(owner, 4321u);
    EXPECT_EQ(out.settings, in.settings);
    EXPECT_EQ(out.argv, in.argv);
}

/* --retry: an Assign says which run of the job it is, so that a runner of an
 * earlier run that comes back after a restart is told apart; the first run's
 * Assign is the frame it always was. */
TEST(Assign, CarriesWhichRunOfTheJob) {
    JobSpec in = full_spec();
    JobId id = -1;
    JobSpec out;
    uid_t owner = 0;
    uint16_t run = 99;
    ASSERT_TRUE(decode_assign(parse_whole(encode_assign(7, in, 3)), &id, &out, &owner, &run));
    EXPECT_EQ(run, 3);
    EXPECT_EQ(out.argv, in.argv);
    EXPECT_EQ(encode_assign(7, in, 0), encode_assign(7, in)) << "the first run: no more bytes than before";
    ASSERT_TRUE(decode_assign(parse_whole(encode_assign(7, in)), &id, &out, &owner, &run));
    EXPECT_EQ(run, 0);
    // A run that is not two bytes, or something more after it: not an Assign.
    TailWriter t;
    t.add(encode_submit(in));
    t.add("abc");
    proto::AssignBody b{};
    b.id = 7;
    EXPECT_FALSE(decode_assign(parse_whole(encode(proto::MsgType::Assign, b, t.str())), &id, &out, &owner, &run));
}
