/*
 * gpu_parse_test.cpp — reading the probes (gpu_parse.cpp): nvidia-smi's
 * --query-gpu and --query-compute-apps listings, on fixtures shaped like what
 * real cards print (H100, A100 in MIG mode, V100, RTX 3090, K80, an old
 * GeForce, a card that needs a reset), with unknown values, units, CRLF,
 * bad lines and the error texts nvidia-smi prints instead of a listing; what
 * its exit codes mean; AMD cards from a fake sysfs drm tree; the sizes
 * --gpu-mem takes and --gpu-list shows; and a snapshot's lookup by UUID.
 */
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "gpu.h"
#include "scratch.h"
#include "util.h"

namespace {

using scratch::TempDir;

constexpr uint64_t kMiB = uint64_t(1) << 20;
constexpr uint64_t kGiB = uint64_t(1) << 30;

/* Lines joined with "\n", and a final one. */
std::string lines(const std::vector<std::string>& v, const char* eol = "\n") {
    std::string out;
    for (const std::string& l : v) out += l + eol;
    return out;
}

/* A --query-gpu line (kQueryGpuFields' order) of a card with the common values, with name and one field changed. */
std::string gpu_line(int index, const std::string& uuid, const std::string& name = "NVIDIA H100 80GB HBM3") {
    return format("%d, %s, 00000000:%02X:00.0, 81559, 0, 0, Default, Disabled, %s", index, uuid.c_str(),
                  0x18 + index, name.c_str());
}

std::string uuid_n(int n) { return format("GPU-5b9c3a1e-7d2f-4e6a-9b8c-%012x", n); }

bool has_warning(const std::vector<std::string>& w, const std::string& part) {
    for (const std::string& s : w)
        if (s.find(part) != std::string::npos) return true;
    return false;
}

std::string joined(const std::vector<std::string>& w) {
    std::string out;
    for (const std::string& s : w) out += "  " + s + "\n";
    return out;
}

// Eight H100 SXM cards of one node, idle but for one job on card 3 (nvidia-smi 535, HGX H100).
const char* const kH100 =
    "0, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e50, 00000000:18:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3\n"
    "1, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e51, 00000000:2A:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3\n"
    "2, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e52, 00000000:3A:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3\n"
    "3, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e53, 00000000:5D:00.0, 81559, 40117, 97, Default, Disabled, NVIDIA H100 80GB HBM3\n"
    "4, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e54, 00000000:9A:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3\n"
    "5, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e55, 00000000:AB:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3\n"
    "6, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e56, 00000000:BA:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3\n"
    "7, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e57, 00000000:DB:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3\n";

// A mixed box: an A100 in MIG mode (utilization is not reported then), a
// V100 in EXCLUSIVE_PROCESS mode, a GeForce with the desktop on it, a K80
// (no MIG: [N/A]) and an old GeForce that reports little ([Not Supported]).
const char* const kMixed =
    "0, GPU-1d2e3f40-5a6b-7c8d-9e0f-a1b2c3d4e5f6, 00000000:07:00.0, 40960, 13, [N/A], Default, Enabled, NVIDIA A100-SXM4-40GB\n"
    "1, GPU-a75cda02-62ce-2c30-9150-555ef08935e2, 00000000:86:00.0, 16160, 3, 0, Exclusive_Process, [N/A], Tesla V100-SXM2-16GB\n"
    "2, GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, 00000000:01:00.0, 24576, 1135, 7, Default, [N/A], NVIDIA GeForce RTX 3090\n"
    "3, GPU-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0, 00000000:05:00.0, 11441, 0, 0, Default, [N/A], Tesla K80\n"
    "4, GPU-6e5d4c3b-2a19-0817-2635-44536271809a, 00000000:02:00.0, 1998, [Not Supported], [Not Supported], [Not Supported], [Not Supported], GeForce GTX 770\n";

// What nvidia-smi prints instead of a listing (stdout), by exit code.
const char* const kNoDriver =   // 9
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA "
    "driver is installed and running.\n\n";
const char* const kMismatch =   // 18
    "Failed to initialize NVML: Driver/library version mismatch\nNVML library version: 535.161\n";
const char* const kBadField =   // 2, an old driver that does not know MIG
    "Field \"mig.mode.current\" is not a valid field to query.\n\n";
const char* const kNoLibrary =  // 12
    "NVIDIA-SMI couldn't find libnvidia-ml.so library in your system. Please make sure that the NVIDIA Display Driver "
    "is properly installed and present in your system.\nPlease also try adding directory that contains "
    "libnvidia-ml.so to your system PATH.\n";

// ------------------------------------------------------------------------------------------- the queries

TEST(GpuParseFields, AreWhatTheParsersRead) {
    EXPECT_STREQ(kQueryGpuFields,
                 "index,uuid,pci.bus_id,memory.total,memory.used,utilization.gpu,compute_mode,mig.mode.current,name");
    EXPECT_STREQ(kQueryAppsFields, "gpu_uuid,pid,used_memory,process_name");
}

// ------------------------------------------------------------------------------------------ --query-gpu

TEST(GpuParseQueryGpu, ReadsEightH100s) {
    std::vector<GpuCard> cards;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(kH100, &cards, &err, &w)) << err;
    EXPECT_TRUE(w.empty()) << joined(w);
    EXPECT_TRUE(err.empty());
    ASSERT_EQ(cards.size(), 8u);
    for (int i = 0; i < 8; ++i) {
        const GpuCard& c = cards[size_t(i)];
        EXPECT_EQ(c.index, i);
        EXPECT_EQ(c.uuid, format("GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e5%d", i));
        EXPECT_EQ(c.vendor, GpuVendor::Nvidia);
        EXPECT_EQ(c.name, "NVIDIA H100 80GB HBM3");
        EXPECT_EQ(c.mem_total, 81559 * kMiB);
        EXPECT_TRUE(c.mem_known);
        EXPECT_EQ(c.mode, ComputeMode::Default);
        EXPECT_FALSE(c.mig);
    }
    EXPECT_EQ(cards[0].bus_id, "00000000:18:00.0");
    EXPECT_EQ(cards[7].bus_id, "00000000:DB:00.0");
    EXPECT_EQ(cards[3].mem_used, 40117 * kMiB);
    EXPECT_EQ(cards[3].util, 97);
    EXPECT_EQ(cards[0].mem_used, 0u);
    EXPECT_EQ(cards[0].util, 0);
}

TEST(GpuParseQueryGpu, ReadsEveryFieldOfSeveralModels) {
    std::vector<GpuCard> cards;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(kMixed, &cards, &err)) << err;
    ASSERT_EQ(cards.size(), 5u);

    const GpuCard& a100 = cards[0];
    EXPECT_EQ(a100.name, "NVIDIA A100-SXM4-40GB");
    EXPECT_TRUE(a100.mig);
    EXPECT_EQ(a100.util, -1);   // [N/A] in MIG mode
    EXPECT_EQ(a100.mem_total, 40960 * kMiB);
    EXPECT_EQ(a100.mem_used, 13 * kMiB);

    const GpuCard& v100 = cards[1];
    EXPECT_EQ(v100.uuid, "GPU-a75cda02-62ce-2c30-9150-555ef08935e2");
    EXPECT_EQ(v100.bus_id, "00000000:86:00.0");
    EXPECT_EQ(v100.mode, ComputeMode::ExclusiveProcess);
    EXPECT_FALSE(v100.mig);
    EXPECT_EQ(v100.mem_total, 16160 * kMiB);

    const GpuCard& rtx = cards[2];
    EXPECT_EQ(rtx.index, 2);
    EXPECT_EQ(rtx.name, "NVIDIA GeForce RTX 3090");
    EXPECT_EQ(rtx.mem_used, 1135 * kMiB);
    EXPECT_TRUE(rtx.mem_known);
    EXPECT_EQ(rtx.util, 7);
    EXPECT_FALSE(rtx.mig);

    const GpuCard& k80 = cards[3];
    EXPECT_EQ(k80.name, "Tesla K80");
    EXPECT_EQ(k80.mem_total, 11441 * kMiB);
    EXPECT_FALSE(k80.mig);

    const GpuCard& gtx = cards[4];
    EXPECT_EQ(gtx.name, "GeForce GTX 770");
    EXPECT_EQ(gtx.mem_total, 1998 * kMiB);
    EXPECT_FALSE(gtx.mem_known);
    EXPECT_EQ(gtx.mem_used, 0u);
    EXPECT_EQ(gtx.util, -1);
    EXPECT_EQ(gtx.mode, ComputeMode::Unknown);
    EXPECT_FALSE(gtx.mig);
}

TEST(GpuParseQueryGpu, TheNameKeepsItsCommas) {
    std::vector<GpuCard> cards;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(
        "0, GPU-3f2e1d0c-b9a8-7654-3210-fedcba987654, 00000000:41:00.0, 49140, 512, 3, Default, Disabled, "
        "NVIDIA RTX A6000, Custom, Rev. 2  \n",
        &cards, &err))
        << err;
    ASSERT_EQ(cards.size(), 1u);
    EXPECT_EQ(cards[0].name, "NVIDIA RTX A6000, Custom, Rev. 2");
    EXPECT_EQ(cards[0].mem_total, 49140 * kMiB);
    EXPECT_EQ(cards[0].mem_used, 512 * kMiB);
}

TEST(GpuParseQueryGpu, ValuesNvidiaSmiDoesNotHaveAreUnknown) {
    for (const char* v : {"[N/A]", "N/A", "n/a", "[Not Supported]", "[Unknown Error]", "[GPU requires reset]",
                          "[Insufficient Permissions]", "[GPU is lost]"}) {
        std::vector<GpuCard> cards;
        std::vector<std::string> w;
        std::string err;
        std::string line = format("0, GPU-11111111-2222-3333-4444-555555555555, 00000000:3B:00.0, %s, %s, %s, %s, %s, "
                                  "Tesla T4",
                                  v, v, v, v, v);
        ASSERT_TRUE(parse_query_gpu(line, &cards, &err, &w)) << v << ": " << err;
        ASSERT_EQ(cards.size(), 1u) << v;
        EXPECT_EQ(cards[0].mem_total, 0u) << v;
        EXPECT_FALSE(cards[0].mem_known) << v;
        EXPECT_EQ(cards[0].mem_used, 0u) << v;
        EXPECT_EQ(cards[0].util, -1) << v;
        EXPECT_EQ(cards[0].mode, ComputeMode::Unknown) << v;
        EXPECT_FALSE(cards[0].mig) << v;
        EXPECT_EQ(cards[0].name, "Tesla T4");
        EXPECT_TRUE(w.empty()) << v << ":\n" << joined(w);   // expected of a card, not worth a note
        // ...but what the allocator needs is said to be unreadable (the card is then busy).
        EXPECT_EQ(cards[0].unreadable,
                  format("memory.total: %s; memory.used: %s; compute_mode: %s", v, v, v)) << v;
    }
}

TEST(GpuParseQueryGpu, ACardThatRequiresAResetIsListedWithNothingKnown) {
    std::vector<GpuCard> cards;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(
        "0, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e50, 00000000:18:00.0, 81559, 3, 0, Default, Disabled, NVIDIA H100 80GB HBM3\n"
            "1, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e51, 00000000:2A:00.0, [GPU requires reset], [GPU requires reset], "
            "[GPU requires reset], [GPU requires reset], [GPU requires reset], NVIDIA H100 80GB HBM3\n",
        &cards, &err))
        << err;
    ASSERT_EQ(cards.size(), 2u);
    EXPECT_TRUE(cards[0].mem_known);
    EXPECT_EQ(cards[1].uuid, "GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e51");
    EXPECT_EQ(cards[1].index, 1);
    EXPECT_EQ(cards[1].mem_total, 0u);
    EXPECT_FALSE(cards[1].mem_known);
    EXPECT_EQ(cards[1].util, -1);
    EXPECT_EQ(cards[1].mode, ComputeMode::Unknown);
    EXPECT_EQ(cards[0].unreadable, "");
    EXPECT_EQ(cards[1].unreadable, "memory.total: [GPU requires reset]; memory.used: [GPU requires reset]; "
                                   "compute_mode: [GPU requires reset]");
}

TEST(GpuParseQueryGpu, UnitsAreToleratedWhenNounitsIsIgnored) {
    std::vector<GpuCard> cards;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(
        "0, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e50, 00000000:18:00.0, 81559 MiB, 12 MiB, 12 %, Default, Disabled, NVIDIA H100 80GB HBM3\n"
        "1, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e51, 00000000:2A:00.0, 81559MiB, 0mib, 100%, Default, Disabled, NVIDIA H100 80GB HBM3\n",
        &cards, &err, &w))
        << err;
    EXPECT_TRUE(w.empty()) << joined(w);
    ASSERT_EQ(cards.size(), 2u);
    EXPECT_EQ(cards[0].mem_total, 81559 * kMiB);
    EXPECT_EQ(cards[0].mem_used, 12 * kMiB);
    EXPECT_EQ(cards[0].util, 12);
    EXPECT_EQ(cards[1].mem_total, 81559 * kMiB);
    EXPECT_TRUE(cards[1].mem_known);
    EXPECT_EQ(cards[1].util, 100);
}

TEST(GpuParseQueryGpu, ValuesThatAreNotNumbersAreUnknownWithANote) {
    std::vector<GpuCard> cards;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_query_gpu("0, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e50, 00000000:18:00.0, 80 GB, "
                                "99999999999999999999, 101, Default, Disabled, NVIDIA H100 80GB HBM3\n"
                                "1, GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e51, 00000000:2A:00.0, 17592186044416, "
                                "-5, -1, Default, Disabled, NVIDIA H100 80GB HBM3\n",
                                &cards, &err, &w))
        << err;
    ASSERT_EQ(cards.size(), 2u);
    EXPECT_EQ(cards[0].mem_total, 0u);         // a unit that is not MiB
    EXPECT_FALSE(cards[0].mem_known);          // too big for 64 bits
    EXPECT_EQ(cards[0].util, -1);              // not a percentage
    EXPECT_EQ(cards[1].mem_total, 0u);         // 2^44 MiB: too big in bytes
    EXPECT_FALSE(cards[1].mem_known);
    EXPECT_EQ(cards[1].util, -1);
    EXPECT_TRUE(has_warning(w, "memory.total \"80 GB\"")) << joined(w);
    EXPECT_TRUE(has_warning(w, "GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e50: memory.used")) << joined(w);
    EXPECT_TRUE(has_warning(w, "memory.used \"-5\"")) << joined(w);
    EXPECT_EQ(w.size(), 4u) << joined(w);
}

TEST(GpuParseQueryGpu, ComputeModes) {
    const std::pair<const char*, ComputeMode> kModes[] = {
        {"Default", ComputeMode::Default},
        {"Exclusive_Process", ComputeMode::ExclusiveProcess},
        {"Exclusive_Thread", ComputeMode::ExclusiveProcess},   // drivers before CUDA 8
        {"Prohibited", ComputeMode::Prohibited},
        {"[N/A]", ComputeMode::Unknown},
        {"Exclusive", ComputeMode::Unknown},
        {"", ComputeMode::Unknown},
    };
    for (const auto& [text, mode] : kModes) {
        std::vector<GpuCard> cards;
        std::string err;
        ASSERT_TRUE(parse_query_gpu(
            format("0, GPU-a75cda02-62ce-2c30-9150-555ef08935e2, 00000000:86:00.0, 16160, 3, 0, %s, [N/A], Tesla V100-SXM2-16GB",
                   text),
            &cards, &err))
            << text << ": " << err;
        ASSERT_EQ(cards.size(), 1u) << text;
        EXPECT_EQ(cards[0].mode, mode) << text;
        EXPECT_EQ(cards[0].unreadable.empty(), mode != ComputeMode::Unknown) << text << ": " << cards[0].unreadable;
    }
}

TEST(GpuParseQueryGpu, MigModes) {
    const std::pair<const char*, bool> kMig[] = {
        {"Enabled", true}, {"Disabled", false}, {"[N/A]", false}, {"[Not Supported]", false}, {"Pending", false},
    };
    for (const auto& [text, mig] : kMig) {
        std::vector<GpuCard> cards;
        std::string err;
        ASSERT_TRUE(parse_query_gpu(
            format("0, GPU-1d2e3f40-5a6b-7c8d-9e0f-a1b2c3d4e5f6, 00000000:07:00.0, 40960, 13, [N/A], Default, %s, "
                   "NVIDIA A100-SXM4-40GB\n",
                   text),
            &cards, &err))
            << text << ": " << err;
        ASSERT_EQ(cards.size(), 1u) << text;
        EXPECT_EQ(cards[0].mig, mig) << text;
        EXPECT_EQ(cards[0].unreadable, "") << text;   // [N/A] on every card without MIG: nothing to doubt
    }
}

TEST(GpuParseQueryGpu, CrlfBlankLinesAndSpacesAreTolerated) {
    std::string text = "\r\n  " + gpu_line(0, uuid_n(0)) + "  \r\n\r\n\t" + gpu_line(1, uuid_n(1)) + "\r\n" +
                       gpu_line(2, uuid_n(2)) + "\n   \n" +
                       "3 ,GPU-5b9c3a1e-7d2f-4e6a-9b8c-000000000003,00000000:1B:00.0 ,81559,0,0,Default,Disabled,NVIDIA H100 80GB HBM3";
    std::vector<GpuCard> cards;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(text, &cards, &err, &w)) << err;
    EXPECT_TRUE(w.empty()) << joined(w);
    ASSERT_EQ(cards.size(), 4u);
    for (int i = 0; i < 4; ++i) {
        EXPECT_EQ(cards[size_t(i)].index, i);
        EXPECT_EQ(cards[size_t(i)].uuid, uuid_n(i));
        EXPECT_EQ(cards[size_t(i)].name, "NVIDIA H100 80GB HBM3");   // no \r, no spaces
        EXPECT_EQ(cards[size_t(i)].mode, ComputeMode::Default);
        EXPECT_EQ(cards[size_t(i)].mem_total, 81559 * kMiB);
    }
    EXPECT_EQ(cards[3].bus_id, "00000000:1B:00.0");
}

TEST(GpuParseQueryGpu, LinesWithoutAUuidOrAnIndexAreCardsThatCannotBeRead) {
    // Such a card is there: dropping it would only hide it (and what runs on it).
    std::string text = lines({
        gpu_line(0, uuid_n(0)),
        gpu_line(1, "[N/A]"),
        "2, , 00000000:1A:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3",
        "x, " + uuid_n(3) + ", 00000000:1B:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3",
        "-1, " + uuid_n(4) + ", 00000000:1C:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3",
        "[N/A], " + uuid_n(5) + ", 00000000:1D:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3",
        "6, GPU-has a space, 00000000:1E:00.0, 81559, 0, 0, Default, Disabled, NVIDIA H100 80GB HBM3",
        gpu_line(7, uuid_n(7)),
    });
    std::vector<GpuCard> cards;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(text, &cards, &err, &w)) << err;
    EXPECT_TRUE(w.empty()) << joined(w);
    ASSERT_EQ(cards.size(), 8u);
    EXPECT_EQ(cards[0].uuid, uuid_n(0));
    EXPECT_EQ(cards[0].unreadable, "");
    EXPECT_EQ(cards[1].index, 1);
    EXPECT_EQ(cards[1].uuid, "");
    EXPECT_EQ(cards[1].unreadable, "uuid: [N/A]");
    EXPECT_EQ(cards[2].unreadable, "uuid: (empty)");
    EXPECT_EQ(cards[3].index, -1);
    EXPECT_EQ(cards[3].uuid, uuid_n(3));
    EXPECT_EQ(cards[3].unreadable, "index: x");
    EXPECT_EQ(cards[4].unreadable, "index: -1");
    EXPECT_EQ(cards[5].unreadable, "index: [N/A]");
    EXPECT_EQ(cards[6].uuid, "");
    EXPECT_EQ(cards[6].unreadable, "uuid: GPU-has a space");
    EXPECT_EQ(cards[7].uuid, uuid_n(7));
    EXPECT_EQ(cards[7].index, 7);
    EXPECT_EQ(cards[7].unreadable, "");
}

TEST(GpuParseQueryGpu, TwoCardsWithoutAUuidAreNotTheSameCard) {
    std::vector<GpuCard> cards;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(lines({gpu_line(0, "[N/A]"), gpu_line(1, "[N/A]")}), &cards, &err)) << err;
    ASSERT_EQ(cards.size(), 2u);
    EXPECT_EQ(cards[1].index, 1);
}

TEST(GpuParseQueryGpu, NoDevicesWereFoundIsAListingOfNone) {
    for (const char* text : {"No devices were found\n", "No devices were found\r\n", "\nNo devices were found"}) {
        std::vector<GpuCard> cards{GpuCard{}};
        std::string err = "untouched";
        EXPECT_TRUE(parse_query_gpu(text, &cards, &err)) << text;
        EXPECT_TRUE(cards.empty());
        EXPECT_EQ(err, "untouched");
    }
}

TEST(GpuParseQueryGpu, EmptyOutputIsAListingOfNone) {
    for (const char* text : {"", "\n", "  \r\n\n"}) {
        std::vector<GpuCard> cards{GpuCard{}};
        std::string err;
        EXPECT_TRUE(parse_query_gpu(text, &cards, &err)) << text;
        EXPECT_TRUE(cards.empty());
        EXPECT_TRUE(err.empty());
    }
}

TEST(GpuParseQueryGpu, AnErrorTextIsNotAListing) {
    const std::pair<const char*, const char*> kErrors[] = {
        {kNoDriver,
         "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest "
         "NVIDIA driver is installed and running."},
        {kMismatch, "Failed to initialize NVML: Driver/library version mismatch"},
        {kBadField, "Field \"mig.mode.current\" is not a valid field to query."},
        {kNoLibrary,
         "NVIDIA-SMI couldn't find libnvidia-ml.so library in your system. Please make sure that the NVIDIA Display "
         "Driver is properly installed and present in your system."},
        {"\r\n  Unable to determine the device handle for GPU0000:C1:00.0: Unknown Error\r\n",
         "Unable to determine the device handle for GPU0000:C1:00.0: Unknown Error"},
        {"0, 1, 2, 3\n", "0, 1, 2, 3"},   // commas, but too few fields for a card
    };
    for (const auto& [text, first] : kErrors) {
        std::vector<GpuCard> cards{GpuCard{}};
        std::string err;
        EXPECT_FALSE(parse_query_gpu(text, &cards, &err)) << text;
        EXPECT_TRUE(cards.empty());
        EXPECT_EQ(err, first);
    }
}

TEST(GpuParseQueryGpu, TheErrorIsOneShortPrintableLine) {
    std::string text = "Error:\x1b[31m " + std::string(5000, 'x') + "\nsecond line\n";
    std::vector<GpuCard> cards;
    std::string err;
    ASSERT_FALSE(parse_query_gpu(text, &cards, &err));
    EXPECT_LE(err.size(), 200u);
    EXPECT_GE(err.size(), 150u);
    EXPECT_EQ(err.substr(0, 16), "Error:\\x1b[31m x");
    EXPECT_EQ(err.substr(err.size() - 3), "...");
    EXPECT_EQ(err.find('\x1b'), std::string::npos);
    EXPECT_EQ(err.find("second"), std::string::npos);
}

TEST(GpuParseQueryGpu, AnErrorLineAmongCardsIsAWarning) {
    std::string text = "Unable to determine the device handle for GPU0000:C1:00.0: Unknown Error\n" +
                       gpu_line(0, uuid_n(0)) + "\n" + gpu_line(1, uuid_n(1)) + "\n";
    std::vector<GpuCard> cards;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(text, &cards, &err, &w)) << err;
    EXPECT_EQ(cards.size(), 2u);
    EXPECT_TRUE(err.empty());
    ASSERT_EQ(w.size(), 1u) << joined(w);
    EXPECT_EQ(w[0], "nvidia-smi: line 1 left out (not a card): Unable to determine the device handle for "
                    "GPU0000:C1:00.0: Unknown Error");
}

TEST(GpuParseQueryGpu, ADuplicateUuidKeepsTheFirstCard) {
    std::string text = lines({gpu_line(0, uuid_n(0), "first"), gpu_line(1, uuid_n(1)), gpu_line(2, uuid_n(0), "second")});
    std::vector<GpuCard> cards;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(text, &cards, &err, &w)) << err;
    ASSERT_EQ(cards.size(), 2u);
    EXPECT_EQ(cards[0].name, "first");
    EXPECT_EQ(cards[0].index, 0);
    EXPECT_EQ(cards[1].uuid, uuid_n(1));
    ASSERT_EQ(w.size(), 1u) << joined(w);
    EXPECT_TRUE(has_warning(w, "line 3 left out (the UUID of card 0 again)")) << joined(w);
}

TEST(GpuParseQueryGpu, AtMost256Cards) {
    std::vector<std::string> v;
    for (int i = 0; i < 300; ++i) v.push_back(gpu_line(i, uuid_n(i)));
    std::vector<GpuCard> cards;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(lines(v), &cards, &err, &w)) << err;
    ASSERT_EQ(cards.size(), 256u);
    EXPECT_EQ(cards.back().index, 255);
    ASSERT_EQ(w.size(), 1u) << joined(w);
    EXPECT_EQ(w[0], "nvidia-smi: 44 cards beyond the first 256 left out");
}

TEST(GpuParseQueryGpu, LinesLongerThan4KiBAreLeftOut) {
    std::string text = lines({gpu_line(0, uuid_n(0)), gpu_line(1, uuid_n(1), std::string(5000, 'N')),
                              gpu_line(2, uuid_n(2), std::string(3900, 'n'))});
    std::vector<GpuCard> cards;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(text, &cards, &err, &w)) << err;
    ASSERT_EQ(cards.size(), 2u);
    EXPECT_EQ(cards[1].uuid, uuid_n(2));
    EXPECT_LE(cards[1].name.size(), 256u);   // a name is bounded too
    EXPECT_EQ(cards[1].name.substr(0, 10), "nnnnnnnnnn");
    ASSERT_EQ(w.size(), 1u) << joined(w);
    EXPECT_EQ(w[0], "nvidia-smi: line 2 left out: longer than 4096 bytes");
}

TEST(GpuParseQueryGpu, WarningsAreBounded) {
    std::vector<std::string> v;
    for (int i = 0; i < 100; ++i) v.push_back(format("junk line %d, not a card", i));
    v.push_back(gpu_line(100, uuid_n(100)));
    std::vector<GpuCard> cards;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(lines(v), &cards, &err, &w)) << err;
    ASSERT_EQ(cards.size(), 1u);
    ASSERT_EQ(w.size(), 17u);
    EXPECT_TRUE(has_warning({w[15]}, "line 16 left out")) << w[15];
    EXPECT_EQ(w[16], "... and 84 more warnings");
}

TEST(GpuParseQueryGpu, ControlBytesInTheNameAreEscaped) {
    std::vector<GpuCard> cards;
    std::string err;
    ASSERT_TRUE(parse_query_gpu(gpu_line(0, uuid_n(0), "Tesla\x1b[2J T4\x07"), &cards, &err)) << err;
    ASSERT_EQ(cards.size(), 1u);
    EXPECT_EQ(cards[0].name, "Tesla\\x1b[2J T4\\x07");
}

TEST(GpuParseQueryGpu, WarningsMayBeLeftUnasked) {
    std::vector<GpuCard> cards;
    std::string err;
    std::string text = lines({"junk, not a card", "junk", gpu_line(1, uuid_n(1)), gpu_line(2, uuid_n(1))});
    ASSERT_TRUE(parse_query_gpu(text, &cards, &err, nullptr)) << err;
    ASSERT_EQ(cards.size(), 1u);
    EXPECT_EQ(cards[0].index, 1);
}

// ---------------------------------------------------------------------------------- --query-compute-apps

const char* const kApps =
    "GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e53, 2104771, 40108, /home/ana/venv/bin/python3\n"
    "GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e53, 2104772, 8, python\n"
    "GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e56, 998, 1024, /opt/my app/bin/serve, --fast, a b\n";

TEST(GpuParseApps, ReadsProcesses) {
    std::vector<GpuProcess> procs;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_compute_apps(kApps, &procs, &err, &w)) << err;
    EXPECT_TRUE(w.empty()) << joined(w);
    ASSERT_EQ(procs.size(), 3u);
    EXPECT_EQ(procs[0].uuid, "GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e53");
    EXPECT_EQ(procs[0].pid, 2104771);
    EXPECT_TRUE(procs[0].mem_known);
    EXPECT_EQ(procs[0].mem, 40108 * kMiB);
    EXPECT_EQ(procs[0].name, "/home/ana/venv/bin/python3");
    EXPECT_FALSE(procs[0].ours);
    EXPECT_EQ(procs[1].pid, 2104772);
    EXPECT_EQ(procs[1].mem, 8 * kMiB);
    EXPECT_EQ(procs[2].uuid, "GPU-9c6f0b8e-3d2a-4b71-8f6e-0a1b2c3d4e56");
    EXPECT_EQ(procs[2].name, "/opt/my app/bin/serve, --fast, a b");   // commas and spaces kept
    EXPECT_EQ(procs[2].mem, 1024 * kMiB);
}

TEST(GpuParseApps, NoProcessesIsEmpty) {
    for (const char* text : {"", "\n", "No running processes found\n", "No devices were found\r\n"}) {
        std::vector<GpuProcess> procs{GpuProcess{}};
        std::string err = "untouched";
        EXPECT_TRUE(parse_compute_apps(text, &procs, &err)) << text;
        EXPECT_TRUE(procs.empty());
        EXPECT_EQ(err, "untouched");
    }
}

TEST(GpuParseApps, UnknownMemoryIsNotKnown) {
    // WSL, Windows (WDDM) and MIG instances do not report a process's memory.
    std::vector<GpuProcess> procs;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_compute_apps("GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, 4242, [N/A], /usr/bin/python3\r\n"
                                   "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, 4243, [Not Supported], blender\r\n"
                                   "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, 4244, 300 MiB, ffmpeg\r\n",
                                   &procs, &err, &w))
        << err;
    EXPECT_TRUE(w.empty()) << joined(w);
    ASSERT_EQ(procs.size(), 3u);
    EXPECT_FALSE(procs[0].mem_known);
    EXPECT_EQ(procs[0].mem, 0u);
    EXPECT_EQ(procs[0].pid, 4242);
    EXPECT_EQ(procs[0].name, "/usr/bin/python3");
    EXPECT_FALSE(procs[1].mem_known);
    EXPECT_TRUE(procs[2].mem_known);
    EXPECT_EQ(procs[2].mem, 300 * kMiB);
    EXPECT_EQ(procs[2].name, "ffmpeg");
    // Kept, and said to be unreadable: the allocator cannot judge such a process by its memory.
    EXPECT_EQ(procs[0].unreadable, "used_memory: [N/A]");
    EXPECT_EQ(procs[1].unreadable, "used_memory: [Not Supported]");
    EXPECT_EQ(procs[2].unreadable, "");
    EXPECT_EQ(procs[0].uuid, "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0");
}

TEST(GpuParseApps, LinesThatCannotBeReadAreKeptAsSuch) {
    // Nothing is dropped: a 60 GB process listed with pid [N/A] (containers, some driver states) must keep its card busy.
    std::string text = lines({
        "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, 0, 10, zero",
        "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, -5, 10, negative",
        "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, abc, 10, word",
        "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, 99999999999, 10, too big",
        "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, [N/A], 61440, unknown",
        "[N/A], 77, 10, no card",
        "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, 78, 10",
        "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, [N/A], [N/A], [N/A]",
        "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, 79, 10, good",
    });
    std::vector<GpuProcess> procs;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_compute_apps(text, &procs, &err, &w)) << err;
    ASSERT_EQ(procs.size(), 9u);
    const char* const kPid[] = {"0", "-5", "abc", "99999999999", "[N/A]"};
    for (size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(procs[i].uuid, "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0") << i;
        EXPECT_EQ(procs[i].pid, 0) << i;
        EXPECT_EQ(procs[i].unreadable, std::string("pid: ") + kPid[i]) << i;
        EXPECT_TRUE(procs[i].mem_known) << i;
    }
    EXPECT_EQ(procs[4].mem, 61440 * kMiB);
    EXPECT_EQ(procs[4].name, "unknown");
    EXPECT_EQ(procs[5].uuid, "");   // its card is not known: it counts against every card
    EXPECT_EQ(procs[5].pid, 77);
    EXPECT_EQ(procs[5].unreadable, "gpu_uuid: [N/A]");
    EXPECT_EQ(procs[6].uuid, "");
    EXPECT_EQ(procs[6].unreadable, "line 7: GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, 78, 10");
    EXPECT_EQ(procs[7].unreadable, "pid: [N/A]; used_memory: [N/A]");
    EXPECT_FALSE(procs[7].mem_known);
    EXPECT_EQ(procs[8].pid, 79);
    EXPECT_EQ(procs[8].unreadable, "");
    ASSERT_EQ(w.size(), 1u) << joined(w);
    EXPECT_TRUE(has_warning(w, "line 7 left out (not a process)")) << joined(w);
}

TEST(GpuParseApps, AnErrorLineAmongProcessesIsAProcessOnSomeCard) {
    std::vector<GpuProcess> procs;
    std::string err;
    ASSERT_TRUE(parse_compute_apps("GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, 12, 10, good\n"
                                   "Unable to determine the device handle for GPU0000:C1:00.0: Unknown Error\n",
                                   &procs, &err))
        << err;
    ASSERT_EQ(procs.size(), 2u);
    EXPECT_EQ(procs[1].uuid, "");
    EXPECT_EQ(procs[1].unreadable, "line 2: Unable to determine the device handle for GPU0000:C1:00.0: Unknown Error");
}

TEST(GpuParseApps, AnErrorTextIsNotAListing) {
    const std::pair<const char*, const char*> kErrors[] = {
        {kNoDriver,
         "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest "
         "NVIDIA driver is installed and running."},
        {kMismatch, "Failed to initialize NVML: Driver/library version mismatch"},
        {"Field \"gpu_uuid,pid\" is not a valid field to query.\n", "Field \"gpu_uuid,pid\" is not a valid field to query."},
        // A sentence with enough commas is not a listing either: a listing's line starts with a UUID.
        {"Error: the device, the driver, the library, or all three\n", "Error: the device, the driver, the library, or all three"},
    };
    for (const auto& [text, first] : kErrors) {
        std::vector<GpuProcess> procs{GpuProcess{}};
        std::string err;
        EXPECT_FALSE(parse_compute_apps(text, &procs, &err)) << text;
        EXPECT_TRUE(procs.empty());
        EXPECT_EQ(err, first);
    }
}

TEST(GpuParseApps, LongLinesAreLeftOutAndNamesBounded) {
    std::string text = "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, 1, 10, " + std::string(5000, 'a') + "\n" +
                       "GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, 2, 10, " + std::string(1000, 'b') + "\x01\n";
    std::vector<GpuProcess> procs;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_compute_apps(text, &procs, &err, &w)) << err;
    ASSERT_EQ(procs.size(), 2u);
    EXPECT_EQ(procs[0].uuid, "");   // too long to read: on some card
    EXPECT_EQ(procs[0].unreadable, "line 1: longer than 4096 bytes");
    EXPECT_EQ(procs[1].pid, 2);
    EXPECT_LE(procs[1].name.size(), 256u);
    EXPECT_EQ(procs[1].name.substr(procs[1].name.size() - 3), "...");
    ASSERT_EQ(w.size(), 1u) << joined(w);
    EXPECT_EQ(w[0], "nvidia-smi: line 1 left out: longer than 4096 bytes");
}

TEST(GpuParseApps, AtMost4096Processes) {
    std::string text;
    for (int i = 1; i <= 5000; ++i) text += format("GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0, %d, 1, p\n", i);
    std::vector<GpuProcess> procs;
    std::vector<std::string> w;
    std::string err;
    ASSERT_TRUE(parse_compute_apps(text, &procs, &err, &w)) << err;
    ASSERT_EQ(procs.size(), 4097u);
    EXPECT_EQ(procs.back().uuid, "");   // those left out may be on any card
    EXPECT_EQ(procs.back().unreadable, "904 processes beyond the first 4096");
    ASSERT_EQ(w.size(), 1u) << joined(w);
    EXPECT_EQ(w[0], "nvidia-smi: 904 processes beyond the first 4096 left out");
}

// ----------------------------------------------------------------------------------------- exit codes

TEST(GpuParseFailure, DocumentedExitCodesAreNamed) {
    EXPECT_EQ(nvidia_smi_failure(9), "nvidia-smi failed (exit code 9: the NVIDIA driver is not loaded)");
    EXPECT_EQ(nvidia_smi_failure(6), "nvidia-smi failed (exit code 6: no matching device was found)");
    const std::pair<int, const char*> kWords[] = {
        {2, "not valid"},  {3, "not available"}, {4, "permission"},   {8, "power cables"},
        {10, "interrupt"}, {12, "NVML shared library"}, {13, "does not implement"}, {14, "infoROM"},
        {15, "fallen off the bus"}, {18, "versions do not match"}, {255, "other error"},
    };
    for (const auto& [code, word] : kWords) {
        std::string s = nvidia_smi_failure(code);
        EXPECT_EQ(s.rfind(format("nvidia-smi failed (exit code %d: ", code), 0), 0u) << s;
        EXPECT_NE(s.find(word), std::string::npos) << s;
        EXPECT_EQ(s.back(), ')') << s;
    }
}

TEST(GpuParseFailure, OtherExitCodesAreJustTheNumber) {
    for (int code : {0, 1, 5, 7, 11, 16, 17, 19, 127, 254, 256, -1})
        EXPECT_EQ(nvidia_smi_failure(code), format("nvidia-smi failed (exit code %d)", code));
}

// -------------------------------------------------------------------------------------------------- AMD

void write_file(const std::string& path, const std::string& text) {
    FILE* f = fopen(path.c_str(), "w");
    ASSERT_NE(f, nullptr) << path;
    fwrite(text.data(), 1, text.size(), f);
    fclose(f);
}

void make_dirs(const std::string& path) {
    for (size_t i = 1; i <= path.size(); ++i)
        if (i == path.size() || path[i] == '/') mkdir(path.substr(0, i).c_str(), 0755);
}

/* A card under root/drm, its device a link to root/devices/<pci> as in
 * sysfs (or, with link false, a directory of its own); files in device/. */
void make_card(const TempDir& root, const std::string& card, const std::string& pci,
               const std::vector<std::pair<std::string, std::string>>& files, bool link = true) {
    std::string dev = link ? root / ("devices/pci0000:00/" + pci) : root / ("drm/" + card + "/device");
    make_dirs(dev);
    make_dirs(root / ("drm/" + card));
    if (link) {
        std::string target = "../../devices/pci0000:00/" + pci;
        ASSERT_EQ(symlink(target.c_str(), (root / ("drm/" + card + "/device")).c_str()), 0) << strerror(errno);
    }
    for (const auto& [name, text] : files) write_file(dev + "/" + name, text);
}

std::vector<std::pair<std::string, std::string>> amd_files(uint64_t total, uint64_t used, int busy,
                                                           const std::string& unique_id = "") {
    std::vector<std::pair<std::string, std::string>> f = {
        {"vendor", "0x1002\n"},
        {"device", "0x740f\n"},
        {"mem_info_vram_total", format("%llu\n", static_cast<unsigned long long>(total))},
        {"mem_info_vram_used", format("%llu\n", static_cast<unsigned long long>(used))},
        {"gpu_busy_percent", format("%d\n", busy)},
    };
    if (!unique_id.empty()) f.push_back({"unique_id", unique_id + "\n"});
    return f;
}

TEST(GpuParseAmd, ReadsCardsInPciOrder) {
    TempDir root;
    // card0 is the later PCI address: the index follows the address, not the card number.
    auto f0 = amd_files(68702699520, 10485760, 0, "5d1a3e21f8c0b4a2");
    f0.push_back({"product_name", "AMD Instinct MI210\n"});
    make_card(root, "card0", "0000:c3:00.0", f0);
    make_card(root, "card1", "0000:03:00.0", amd_files(17163091968, 1234567890, 42, "cafe0123456789ab"));
    std::vector<std::string> w;
    std::vector<GpuCard> cards = read_amd_cards(root / "drm", &w);
    EXPECT_TRUE(w.empty()) << joined(w);
    ASSERT_EQ(cards.size(), 2u);

    EXPECT_EQ(cards[0].index, 0);
    EXPECT_EQ(cards[0].bus_id, "0000:03:00.0");
    EXPECT_EQ(cards[0].uuid, "AMD-cafe0123456789ab");
    EXPECT_EQ(cards[0].name, "AMD card");
    EXPECT_EQ(cards[0].vendor, GpuVendor::Amd);
    EXPECT_EQ(cards[0].mem_total, 17163091968u);
    EXPECT_EQ(cards[0].mem_used, 1234567890u);
    EXPECT_TRUE(cards[0].mem_known);
    EXPECT_EQ(cards[0].util, 42);
    EXPECT_EQ(cards[0].mode, ComputeMode::Default);
    EXPECT_FALSE(cards[0].mig);

    EXPECT_EQ(cards[1].index, 1);
    EXPECT_EQ(cards[1].bus_id, "0000:c3:00.0");
    EXPECT_EQ(cards[1].uuid, "AMD-5d1a3e21f8c0b4a2");
    EXPECT_EQ(cards[1].name, "AMD card (AMD Instinct MI210)");
    EXPECT_EQ(cards[1].mem_total, 68702699520u);
    EXPECT_EQ(cards[1].mem_used, 10485760u);
    EXPECT_EQ(cards[1].util, 0);
}

TEST(GpuParseAmd, OnlyAmdCardNodesAreRead) {
    TempDir root;
    make_card(root, "card1", "0000:03:00.0", amd_files(17163091968, 0, 0));
    // Connectors and render nodes look like the card (sysfs has device links there too): not cards.
    make_card(root, "card1-DP-1", "0000:03:00.0", {}, true);
    make_card(root, "renderD128", "0000:04:00.0", amd_files(17163091968, 0, 0));
    make_card(root, "card", "0000:05:00.0", amd_files(17163091968, 0, 0));
    make_card(root, "card2x", "0000:06:00.0", amd_files(17163091968, 0, 0));
    // An NVIDIA card and a simple framebuffer (a platform device: no vendor file) are quietly not AMD's.
    make_card(root, "card0", "0000:01:00.0", {{"vendor", "0x10de\n"}, {"mem_info_vram_total", "1024\n"}});
    make_card(root, "card3", "simple-framebuffer.0", {{"uevent", "DRIVER=simple-framebuffer\n"}});
    write_file(root / "drm/version", "drm 1.1.0 20060810\n");
    std::vector<std::string> w;
    std::vector<GpuCard> cards = read_amd_cards(root / "drm", &w);
    EXPECT_TRUE(w.empty()) << joined(w);
    ASSERT_EQ(cards.size(), 1u);
    EXPECT_EQ(cards[0].bus_id, "0000:03:00.0");
    EXPECT_EQ(cards[0].index, 0);
}

TEST(GpuParseAmd, TheUuidIsThePciAddressWithoutAUniqueId) {
    TempDir root;
    make_card(root, "card0", "0000:03:00.0", amd_files(8589934592, 0, 0));
    make_card(root, "card1", "0000:04:00.0", amd_files(8589934592, 0, 0, "not hex!"));
    make_card(root, "card2", "0000:05:00.0", amd_files(8589934592, 0, 0, std::string(40, 'a')));
    std::vector<GpuCard> cards = read_amd_cards(root / "drm");
    ASSERT_EQ(cards.size(), 3u);
    EXPECT_EQ(cards[0].uuid, "AMD-0000:03:00.0");
    EXPECT_EQ(cards[1].uuid, "AMD-0000:04:00.0");
    EXPECT_EQ(cards[2].uuid, "AMD-0000:05:00.0");
}

TEST(GpuParseAmd, ThePciAddressCanComeFromUevent) {
    TempDir root;
    auto f = amd_files(8589934592, 4096, 3);
    f.push_back({"uevent", "DRIVER=amdgpu\nPCI_CLASS=30000\nPCI_ID=1002:73BF\nPCI_SLOT_NAME=0000:0b:00.0\n"});
    make_card(root, "card0", "", f, false);
    std::vector<std::string> w;
    std::vector<GpuCard> cards = read_amd_cards(root / "drm", &w);
    EXPECT_TRUE(w.empty()) << joined(w);
    ASSERT_EQ(cards.size(), 1u);
    EXPECT_EQ(cards[0].bus_id, "0000:0b:00.0");
    EXPECT_EQ(cards[0].uuid, "AMD-0000:0b:00.0");
    EXPECT_EQ(cards[0].mem_used, 4096u);
}

TEST(GpuParseAmd, ACardThatCannotBeReadIsLeftOutWithAWarning) {
    TempDir root;
    make_card(root, "card0", "0000:03:00.0", {{"vendor", "0x1002\n"}, {"mem_info_vram_used", "0\n"}});   // radeon, not amdgpu
    make_card(root, "card1", "0000:04:00.0", {{"vendor", "0x1002\n"}, {"mem_info_vram_total", "lots\n"}});
    make_card(root, "card2", "0000:05:00.0", {{"vendor", "0x1002\n"}, {"mem_info_vram_total", "0\n"}});
    make_card(root, "card3", "", amd_files(8589934592, 0, 0), false);   // no link, no uevent: no address
    make_card(root, "card4", "0000:07:00.0", amd_files(8589934592, 0, 0));
    std::vector<std::string> w;
    std::vector<GpuCard> cards = read_amd_cards(root / "drm", &w);
    ASSERT_EQ(cards.size(), 1u);
    EXPECT_EQ(cards[0].bus_id, "0000:07:00.0");
    EXPECT_EQ(cards[0].index, 0);
    ASSERT_EQ(w.size(), 4u) << joined(w);
    EXPECT_TRUE(has_warning(w, "AMD card0 (0000:03:00.0) left out: device/mem_info_vram_total")) << joined(w);
    EXPECT_TRUE(has_warning(w, "AMD card1 (0000:04:00.0) left out")) << joined(w);
    EXPECT_TRUE(has_warning(w, "AMD card2 (0000:05:00.0) left out")) << joined(w);
    EXPECT_TRUE(has_warning(w, "AMD card3 left out: its PCI address cannot be read")) << joined(w);
}

TEST(GpuParseAmd, OptionalFilesMayBeMissing) {
    TempDir root;
    make_card(root, "card0", "0000:03:00.0", {{"vendor", "0x1002"}, {"mem_info_vram_total", "8589934592"}});
    make_card(root, "card1", "0000:04:00.0",
              {{"vendor", "0x1002\n"}, {"mem_info_vram_total", "8589934592\n"}, {"mem_info_vram_used", "x\n"},
               {"gpu_busy_percent", "150\n"}});
    std::vector<std::string> w;
    std::vector<GpuCard> cards = read_amd_cards(root / "drm", &w);
    ASSERT_EQ(cards.size(), 2u);
    for (const GpuCard& c : cards) {
        EXPECT_FALSE(c.mem_known) << c.bus_id;
        EXPECT_EQ(c.mem_used, 0u) << c.bus_id;
        EXPECT_EQ(c.util, -1) << c.bus_id;
        EXPECT_EQ(c.mem_total, 8589934592u) << c.bus_id;
        EXPECT_EQ(c.name, "AMD card") << c.bus_id;
    }
    ASSERT_EQ(w.size(), 2u) << joined(w);
    EXPECT_TRUE(has_warning(w, "AMD card0 (0000:03:00.0): device/mem_info_vram_used cannot be read")) << joined(w);
    for (const GpuCard& c : cards) EXPECT_EQ(c.unreadable, "device/mem_info_vram_used") << c.bus_id;
}

TEST(GpuParseAmd, TwoCardsWithOneIdKeepTheFirst) {
    TempDir root;
    make_card(root, "card0", "0000:03:00.0", amd_files(8589934592, 0, 0, "0123456789abcdef"));
    make_card(root, "card1", "0000:04:00.0", amd_files(8589934592, 0, 0, "0123456789abcdef"));
    std::vector<std::string> w;
    std::vector<GpuCard> cards = read_amd_cards(root / "drm", &w);
    ASSERT_EQ(cards.size(), 1u);
    EXPECT_EQ(cards[0].uuid, "AMD-0123456789abcdef");
    EXPECT_EQ(cards[0].bus_id, "0000:03:00.0");   // card0's, the first card
    ASSERT_EQ(w.size(), 1u) << joined(w);
    EXPECT_TRUE(has_warning(w, "the same id as")) << joined(w);
}

TEST(GpuParseAmd, NoDrmDirectoryIsNoCards) {
    TempDir root;
    std::vector<std::string> w;
    EXPECT_TRUE(read_amd_cards(root / "nothing-here", &w).empty());
    EXPECT_TRUE(read_amd_cards(root.path(), nullptr).empty());
    EXPECT_TRUE(w.empty()) << joined(w);
}

// ------------------------------------------------------------------------------------------------ sizes

TEST(GpuParseSize, Text) {
    const std::pair<uint64_t, const char*> kSizes[] = {
        {0, "0 B"},
        {1, "1 B"},
        {1023, "1023 B"},
        {1024, "1 KiB"},
        {kMiB - 1, "1023 KiB"},
        {kMiB, "1 MiB"},
        {512 * kMiB, "512 MiB"},
        {kGiB - 1, "1023 MiB"},
        {kGiB, "1 GiB"},
        {kGiB + kGiB / 2, "1.5 GiB"},
        {8 * kGiB, "8 GiB"},
        {16160 * kMiB, "15.8 GiB"},   // V100 16GB
        {40960 * kMiB, "40 GiB"},     // A100 40GB
        {81559 * kMiB, "79.6 GiB"},   // H100 80GB
        {80 * kGiB, "80 GiB"},
        {80 * kGiB - 10 * kMiB, "80 GiB"},   // 79.99: rounds up, no ".0"
        {2 * kGiB + kGiB / 20 + 1, "2.1 GiB"},   // just past 2.05: rounds up
        {2 * kGiB + kGiB / 20 - 1, "2 GiB"},     // just short of it: down
        {UINT64_MAX, "17179869184 GiB"},
    };
    for (const auto& [bytes, text] : kSizes) EXPECT_EQ(size_text(bytes), text) << bytes;
}

TEST(GpuParseMem, Parse) {
    const std::pair<const char*, uint64_t> kSizes[] = {
        {"8G", 8 * kGiB},
        {"8g", 8 * kGiB},
        {"8GB", 8 * kGiB},
        {"8GiB", 8 * kGiB},
        {"8gib", 8 * kGiB},
        {" 8 GiB ", 8 * kGiB},
        {"512", 512 * kMiB},
        {"512M", 512 * kMiB},
        {"512MiB", 512 * kMiB},
        {"1024K", kMiB},
        {"1kb", 1024},
        {"1T", uint64_t(1) << 40},
        {"1.5G", kGiB + kGiB / 2},
        {"0.5", kMiB / 2},
        {"2.25t", (uint64_t(9) << 40) / 4},
        {"1.0000001G", kGiB},   // digits past the sixth are ignored
        {"16777215T", uint64_t(16777215) << 40},
    };
    for (const auto& [text, bytes] : kSizes) EXPECT_EQ(parse_gpu_mem(text), bytes) << text;
}

TEST(GpuParseMem, GarbageIsZero) {
    for (const char* text : {"", " ", "G", "-1G", "-5", "+5", "abc", "8X", "8GG", "8Gi", "8iB", "8B", "8 G B", "1.G",
                             ".5G", "1..5G", "1,5G", "8G!", "0", "0G", "0.0000001K", "16777216T", "16777217T", "17179869185G",
                             "18446744073709551616", "99999999999999999999999G", "1e3", "0x10"})
        EXPECT_EQ(parse_gpu_mem(text), 0u) << text;
}

// -------------------------------------------------------------------------------------------- snapshot

TEST(GpuParseSnapshot, CardFindsByUuid) {
    GpuSnapshot s;
    EXPECT_EQ(s.card("GPU-x"), nullptr);
    std::string err;
    ASSERT_TRUE(parse_query_gpu(kMixed, &s.cards, &err)) << err;
    const GpuCard* c = s.card("GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe0");
    ASSERT_NE(c, nullptr);
    EXPECT_EQ(c, &s.cards[2]);
    EXPECT_EQ(c->name, "NVIDIA GeForce RTX 3090");
    EXPECT_EQ(s.card("GPU-647d1415-d8d5-e1b9-7251-0ad2bee4efe"), nullptr);   // a prefix is not the UUID
    EXPECT_EQ(s.card(""), nullptr);
}

}  // namespace
