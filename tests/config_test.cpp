/*
 * config_test.cpp — the server's settings from its environment (config.h).
 */
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "config.h"

namespace {

ServerConfig read(const std::map<std::string, std::string>& vars, size_t nofile = 0) {
    return read_server_config(
        [&vars](const char* name) -> const char* {
            auto it = vars.find(name);
            return it == vars.end() ? nullptr : it->second.c_str();
        },
        nofile);
}

}  // namespace

TEST(Config, Defaults) {
    ServerConfig c = read({});
    EXPECT_EQ(c.slots, 0);
    EXPECT_EQ(c.max_jobs, 0u);
    EXPECT_EQ(c.max_finished, 1000u);
    EXPECT_EQ(c.user_max_jobs, 1000u);
    EXPECT_EQ(c.user_max_size, size_t(64) << 20);
    EXPECT_TRUE(c.journal);
    EXPECT_FALSE(c.fsync);
    EXPECT_TRUE(c.savelist.empty());
    EXPECT_TRUE(c.notes.empty());
    EXPECT_TRUE(c.error.empty());
}

TEST(Config, Slots) {
    EXPECT_EQ(read({{"TS_SLOTS", "4"}}).slots, 4);
    EXPECT_EQ(read({{"TS_SLOTS", "-3"}}).slots, 3);   // task-spooler's abs(atoi())
    ServerConfig c = read({{"TS_SLOTS", "x"}});
    EXPECT_EQ(c.slots, 0);
    ASSERT_EQ(c.notes.size(), 1u);
    EXPECT_EQ(c.notes[0], "TS_SLOTS=x ignored: it must be a number of at least 1");
}

TEST(Config, MaxConn) {
    EXPECT_EQ(read({{"TS_MAXCONN", "10"}}).max_jobs, 5u);       // max_conn - 6 jobs queued or running
    EXPECT_TRUE(read({{"TS_MAXCONN", "7"}}).notes.empty());     // one job
    ServerConfig none = read({{"TS_MAXCONN", "3"}});             // none: task-spooler's limit, said in the log
    EXPECT_EQ(none.max_jobs, 1u);
    ASSERT_EQ(none.notes.size(), 1u);
    EXPECT_EQ(none.notes[0], "TS_MAXCONN=3: the queue holds TS_MAXCONN - 6 jobs, so none: every job waits for room "
                             "(or fails with -B)");
    EXPECT_EQ(read({{"TS_MAXCONN", "5000"}}).max_jobs, 995u);   // at most 1000 connections
    EXPECT_EQ(read({{"TS_MAXCONN", "100"}}, 40).max_jobs, 30u); // bounded by the descriptors
    ServerConfig c = read({{"TS_MAXCONN", "0"}});
    EXPECT_EQ(c.error, "TS_MAXCONN=0: it must be at least 1");
    EXPECT_EQ(c.max_jobs, 0u);
}

TEST(Config, UserBounds) {
    ServerConfig c = read({{"TS_USER_MAXJOBS", "7"}, {"TS_USER_MAXSIZE", "10K"}});
    EXPECT_EQ(c.user_max_jobs, 7u);
    EXPECT_EQ(c.user_max_size, 10240u);
    c = read({{"TS_USER_MAXJOBS", "7x"}, {"TS_USER_MAXSIZE", "lots"}});
    EXPECT_EQ(c.user_max_jobs, 1000u);
    EXPECT_EQ(c.user_max_size, size_t(64) << 20);
    ASSERT_EQ(c.notes.size(), 2u);
    EXPECT_EQ(c.notes[1], "TS_USER_MAXSIZE=lots ignored: it must be a size such as 64M");
}

TEST(Config, Switches) {
    ServerConfig c = read({{"TS_JOURNAL", "0"}, {"TS_FSYNC", "1"}, {"TS_SAVELIST", "/x/list"},
                           {"TS_MAXFINISHED", "3"}});
    EXPECT_FALSE(c.journal);
    EXPECT_TRUE(c.fsync);
    EXPECT_EQ(c.savelist, "/x/list");
    EXPECT_EQ(c.max_finished, 3u);
    c = read({{"TS_JOURNAL", "1"}, {"TS_FSYNC", "yes"}});
    EXPECT_TRUE(c.journal);
    EXPECT_FALSE(c.fsync);   // only "1"
}

TEST(Config, ParseSize) {
    EXPECT_EQ(parse_size("12"), 12u);
    EXPECT_EQ(parse_size("2k"), 2048u);
    EXPECT_EQ(parse_size("3M"), size_t(3) << 20);
    EXPECT_EQ(parse_size("1G"), size_t(1) << 30);
    EXPECT_EQ(parse_size(""), 0u);
    EXPECT_EQ(parse_size("5MB"), 0u);
    EXPECT_EQ(parse_size("M"), 0u);
}

TEST(ConfigGpus, Defaults) {
    ServerConfig c = read({});
    EXPECT_EQ(c.gpu.jobs_per_gpu, 1);
    EXPECT_FALSE(c.gpu.judge_by_memory);
    EXPECT_EQ(c.gpu.min_free, uint64_t(1) << 30);
    EXPECT_EQ(c.gpu.settle, 30);
    EXPECT_TRUE(c.gpu.visible.empty());
    EXPECT_FALSE(c.gpu_hide);
    EXPECT_EQ(c.nvidia_smi, "nvidia-smi");
    EXPECT_EQ(c.gpu_sysfs, "/sys/class/drm");
    EXPECT_EQ(c.probe_interval, 5);
    EXPECT_EQ(c.probe_timeout, 10);
}

TEST(ConfigGpus, Settings) {
    ServerConfig c = read({{"TS_GPU_SLOTS", "3"}, {"TS_GPU_FOREIGN", "memory"}, {"TS_GPU_MIN_FREE", "2G"},
                           {"TS_GPU_SETTLE", "1.5"}, {"TS_VISIBLE_DEVICES", "1,GPU-abc"}, {"TS_GPU_HIDE", "1"},
                           {"TS_NVIDIA_SMI", "/opt/bin/nvidia-smi"}, {"TS_GPU_SYSFS", ""},
                           {"TS_GPU_PROBE_INTERVAL", "0.2"}, {"TS_GPU_PROBE_TIMEOUT", "3"}});
    EXPECT_TRUE(c.notes.empty());
    EXPECT_TRUE(c.error.empty()) << c.error;
    EXPECT_EQ(c.gpu.jobs_per_gpu, 3);
    EXPECT_TRUE(c.gpu.judge_by_memory);
    EXPECT_EQ(c.gpu.min_free, uint64_t(2) << 30);
    EXPECT_EQ(c.gpu.settle, 1.5);
    EXPECT_EQ(c.gpu.visible, (std::vector<std::string>{"1", "GPU-abc"}));
    EXPECT_TRUE(c.gpu_hide);
    EXPECT_EQ(c.nvidia_smi, "/opt/bin/nvidia-smi");
    EXPECT_EQ(c.gpu_sysfs, "");
    EXPECT_EQ(c.probe_interval, 0.2);
    EXPECT_EQ(c.probe_timeout, 3);
}

TEST(ConfigGpus, HarmlessMistakesAreNotesWithTheDefaultKept) {
    for (auto [name, value] : std::vector<std::pair<const char*, const char*>>{
             {"TS_GPU_SLOTS", "0"}, {"TS_GPU_SLOTS", "2x"}, {"TS_GPU_SLOTS", "5000"}, {"TS_GPU_FOREIGN", "maybe"},
             {"TS_GPU_MIN_FREE", "lots"}, {"TS_GPU_SETTLE", "-1"}, {"TS_GPU_PROBE_INTERVAL", "0"},
             {"TS_GPU_PROBE_TIMEOUT", "abc"}}) {
        ServerConfig c = read({{name, value}});
        ASSERT_EQ(c.notes.size(), 1u) << name << "=" << value;
        EXPECT_NE(c.notes[0].find(name), std::string::npos) << c.notes[0];
        EXPECT_TRUE(c.error.empty());
        EXPECT_EQ(c.gpu.jobs_per_gpu, 1);
        EXPECT_FALSE(c.gpu.judge_by_memory);
        EXPECT_EQ(c.probe_interval, 5);
    }
}

TEST(ConfigGpus, AVisibleDevicesListThatCannotBeReadStopsTheServer) {
    // Running jobs on every GPU when the owner meant some would trample the others.
    for (const char* bad : {"0,,1", "foo", "MIG-1234", "0,0"}) {
        ServerConfig c = read({{"TS_VISIBLE_DEVICES", bad}});
        EXPECT_NE(c.error.find("TS_VISIBLE_DEVICES"), std::string::npos) << bad << ": " << c.error;
    }
    EXPECT_TRUE(read({{"TS_VISIBLE_DEVICES", ""}}).error.empty());   // empty: not set
}

// ---- the queue's settings (journaled; keep_journaled) ----

TEST(QueueSettings, WhichAreTheQueues) {
    for (const char* name : {"TS_FSYNC", "TS_MAXCONN", "TS_MAXFINISHED", "TS_USER_MAXJOBS", "TS_USER_MAXSIZE",
                             "TS_SAVELIST", "TS_VISIBLE_DEVICES", "TS_GPU_SLOTS", "TS_GPU_FOREIGN",
                             "TS_GPU_MIN_FREE", "TS_GPU_SETTLE", "TS_GPU_HIDE", "TS_NVIDIA_SMI", "TS_GPU_SYSFS",
                             "TS_GPU_PROBE_INTERVAL", "TS_GPU_PROBE_TIMEOUT"})
        EXPECT_TRUE(is_queue_setting(name)) << name;
    // The start's own: whether there is a journal at all, where the socket is,
    // the slot count (journaled already: -S), a test's fault.
    for (const char* name : {"TS_JOURNAL", "TS_SOCKET", "TS_SLOTS", "TS_TEST_CRASH_AFTER_SUBMIT", "TS_ENV",
                             "TS_ONFINISH", "TS_MAILTO", "PATH"})
        EXPECT_FALSE(is_queue_setting(name)) << name;
    ServerConfig c = read({{"TS_FSYNC", "1"}, {"TS_SLOTS", "3"}, {"TS_GPU_SLOTS", "x"}, {"HOME", "/h"}});
    EXPECT_EQ(queue_settings(c), (QueueSettings{{"TS_FSYNC", "1"}, {"TS_GPU_SLOTS", "x"}}));
    EXPECT_TRUE(queue_settings(read({})).empty());
}

TEST(QueueSettings, TheJournalsAreKeptAndEveryDifferenceIsNamed) {
    // The queue was started with fsync and two cards, in this order.
    QueueSettings journaled{{"TS_FSYNC", "1"}, {"TS_VISIBLE_DEVICES", "1,0"}, {"TS_GPU_SLOTS", "2"}};
    // A bare shell: none of them, but a slot count and a setting the journal lacks.
    ServerConfig now = read({{"TS_SLOTS", "3"}, {"TS_GPU_HIDE", "1"}, {"TS_GPU_SLOTS", "2"}});
    std::vector<SettingChange> changes;
    ServerConfig kept = keep_journaled(now, journaled, &changes);
    EXPECT_TRUE(kept.fsync);
    EXPECT_EQ(kept.gpu.visible, (std::vector<std::string>{"1", "0"}));
    EXPECT_EQ(kept.gpu.jobs_per_gpu, 2);
    EXPECT_FALSE(kept.gpu_hide) << "unset in the journal: the default, whatever this environment says";
    EXPECT_EQ(kept.slots, 3) << "not one of the queue's settings: this environment's";
    ASSERT_EQ(changes.size(), 3u);
    EXPECT_EQ(describe_changes(changes),
              "TS_FSYNC=1 (this environment does not set it), TS_VISIBLE_DEVICES=1,0 (this environment "
              "does not set it), TS_GPU_HIDE unset (this environment has 1)");
    EXPECT_EQ(describe_changes(changes, true),
              "TS_FSYNC unset (was 1), TS_VISIBLE_DEVICES unset (was 1,0), TS_GPU_HIDE=1 (was unset)");
    EXPECT_EQ(describe_settings(journaled), "TS_FSYNC=1, TS_GPU_SLOTS=2, TS_VISIBLE_DEVICES=1,0");
    EXPECT_EQ(describe_settings({}), "none (the defaults)");
}

TEST(QueueSettings, ASpellingThatMeansTheSameIsNoChange) {
    std::vector<SettingChange> changes;
    keep_journaled(read({{"TS_FSYNC", "0"}, {"TS_GPU_SLOTS", "1"}, {"TS_GPU_FOREIGN", "busy"},
                         {"TS_GPU_SETTLE", "30.0"}, {"TS_VISIBLE_DEVICES", ""}}),
                   {}, &changes);
    EXPECT_TRUE(changes.empty()) << describe_changes(changes);
    ServerConfig kept = keep_journaled(read({{"TS_FSYNC", "yes"}}), {{"TS_FSYNC", "1"}}, &changes);
    EXPECT_TRUE(kept.fsync);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(describe_changes(changes), "TS_FSYNC=1 (this environment has yes)");
}

TEST(QueueSettings, AValueThatWouldStopTheServerIsIgnoredForTheJournals) {
    std::vector<SettingChange> changes;
    ServerConfig now = read({{"TS_VISIBLE_DEVICES", "0,,1"}});
    ASSERT_FALSE(now.error.empty());
    ServerConfig kept = keep_journaled(now, {{"TS_VISIBLE_DEVICES", "1"}}, &changes);
    EXPECT_TRUE(kept.error.empty()) << kept.error;
    EXPECT_EQ(kept.gpu.visible, std::vector<std::string>{"1"});
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(changes[0].name, "TS_VISIBLE_DEVICES");
    // And one the journal lacks is a change too (all cards is not what was asked for).
    kept = keep_journaled(now, {}, &changes);
    EXPECT_TRUE(kept.gpu.visible.empty());
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(describe_changes(changes), "TS_VISIBLE_DEVICES unset (this environment has 0,,1)");
}

TEST(QueueSettings, ValuesAreShownEscaped) {
    std::vector<SettingChange> changes;
    keep_journaled(read({{"TS_SAVELIST", "/x\x1b[2J"}}), {{"TS_SAVELIST", "/y"}}, &changes);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(describe_changes(changes).find('\x1b'), std::string::npos);
}
