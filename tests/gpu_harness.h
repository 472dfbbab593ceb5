/*
 * gpu_harness.h — a ServerHarness whose GPUs are a fake nvidia-smi (a shell
 * script in the test's directory answering from the files gpus and apps,
 * logging each call to smi.log, and sleeping `delay` seconds first when that
 * file exists) and whose runners the test plays (each job the server starts
 * hands the test the runner's end of its connection). Rounds of the loop run
 * until a condition holds, with a deadline: the probes are real processes.
 */
#pragma once

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vector>

#include "frame.h"
#include "harness_client.h"
#include "jobs.h"
#include "server.h"
#include "spawner.h"

/* Runners the test plays: every job started, and the far end of its runner's connection. */
struct PlayedRunners {
    std::vector<JobId> jobs;
    std::vector<Fd> ends;
    int fail_with = 0;   // errno for the next start (0: it works)
};

class PlayedLauncher : public Launcher {
public:
    explicit PlayedLauncher(PlayedRunners* r) : r_(r) {}
    bool start(const RunnerOrder& o, LocalRunner* out, LaunchError* why) override {
        why->what = "fork";
        if (r_->fail_with) {
            why->err = r_->fail_with;
            r_->fail_with = 0;
            return false;
        }
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return false;
        out->conn.reset(sv[0]);
        r_->ends.emplace_back(sv[1]);
        r_->jobs.push_back(o.id);
        out->pid = getpid();   // a live process of ours
        return true;
    }

private:
    PlayedRunners* r_;
};

class GpuHarnessTest : public ::testing::Test {
protected:
    static constexpr uint64_t kGiB = uint64_t(1) << 30;

    void SetUp() override {
        char templ[] = "/tmp/ts-gpu-harness.XXXXXX";
        ASSERT_NE(mkdtemp(templ), nullptr);
        dir_ = templ;
        std::string script = "#!/bin/sh\n"
                             "d='" + dir_ + "'\n"
                             "echo \"$1\" >>\"$d/smi.log\"\n"
                             "[ -f \"$d/delay\" ] && sleep \"$(cat \"$d/delay\")\"\n"
                             "case \"$1\" in\n"
                             "--query-gpu=*) cat \"$d/gpus\" ;;\n"
                             "--query-compute-apps=*) cat \"$d/apps\" 2>/dev/null ;;\n"
                             "*) exit 2 ;;\n"
                             "esac\n";
        write(dir_ + "/nvidia-smi", script);
        ASSERT_EQ(chmod((dir_ + "/nvidia-smi").c_str(), 0755), 0);
        write(dir_ + "/smi.log", "");
        cards(1);
        apps("");
        cfg_.journal = false;
        cfg_.nvidia_smi = dir_ + "/nvidia-smi";
        cfg_.gpu_sysfs.clear();
        cfg_.probe_interval = 60;   // no probe because the last one is old, unless a test says so
        cfg_.probe_timeout = 10;
        cfg_.gpu.settle = 0;
    }
    void TearDown() override {
        h_.reset();
        std::string cmd = "rm -rf '" + dir_ + "'";
        ASSERT_EQ(system(cmd.c_str()), 0);
    }
    /* The server, with cfg_ as the test left it. */
    void start() { h_ = std::make_unique<ServerHarness>(dir_ + "/s", cfg_, std::make_unique<PlayedLauncher>(&r_)); }

    static void write(const std::string& path, const std::string& text) {
        std::string tmp = path + ".new";
        FILE* f = fopen(tmp.c_str(), "w");
        ASSERT_NE(f, nullptr);
        fputs(text.c_str(), f);
        fclose(f);
        ASSERT_EQ(rename(tmp.c_str(), path.c_str()), 0);   // the fake never reads half of it
    }
    /* n cards of 80 GiB with used_gib of each in use. */
    void cards(int n, int used_gib = 0) {
        std::string t;
        for (int i = 0; i < n; ++i)
            t += format("%d, GPU-%d000-test, 00000000:%02X:00.0, 81920, %d, 0, Default, Disabled, NVIDIA H100\n", i, i,
                        0x17 + i, used_gib * 1024);
        write(dir_ + "/gpus", t);
    }
    /* A compute process of another user on card i (or none: ""). */
    void apps(const std::string& lines) { write(dir_ + "/apps", lines); }
    static std::string foreign_on(int card) { return format("GPU-%d000-test, 999999, 2048, python\n", card); }
    /* Probes begun so far (each begins with its --query-gpu call). */
    int probes() const {
        std::string log;
        (void)read_file(dir_ + "/smi.log", &log);
        int n = 0;
        for (size_t at = 0; (at = log.find("--query-gpu", at)) != std::string::npos; ++at) ++n;
        return n;
    }

    /* Rounds of the loop until done() holds; false after `seconds`. */
    bool rounds_until(const std::function<bool()>& done, double seconds = 10) {
        double give_up = mono_now() + seconds;
        while (!done()) {
            if (mono_now() > give_up) return false;
            h_->round();
            usleep(1000);
        }
        return true;
    }

    /* A connection that has sent a job (-G gpus, --gpu-mem mem): its answer comes in later rounds. */
    Fd send_job(int gpus, uint64_t mem = 0) {
        JobSpec s;
        s.argv = {"train"};
        s.cwd = "/";
        if (gpus) s.settings.set_gpus(uint32_t(gpus));
        s.num_slots = gpus ? 0 : 1;   // a GPU job takes slots only with -N
        if (mem) s.settings.set_gpu_mem(mem);
        Fd c = h_->connect(getuid());
        send_bytes(c, encode_submit(s));
        return c;
    }
    /* The id its answer gave, once it came; -1 for none (yet), -2 for another answer. */
    static JobId answer(const Fd& c, Received* so_far) {
        Received r = receive_now(c);
        so_far->frames.insert(so_far->frames.end(), r.frames.begin(), r.frames.end());
        if (so_far->frames.empty()) return -1;
        proto::JobRef ref{};
        if (so_far->frames[0].type != proto::MsgType::SubmitOk || !decode_body(so_far->frames[0], &ref)) return -2;
        return ref.id;
    }
    /* Submit a job and run rounds until it is queued; its id. */
    JobId submit(int gpus, uint64_t mem = 0) {
        Fd c = send_job(gpus, mem);
        Received got;
        JobId id = -1;
        EXPECT_TRUE(rounds_until([&] { return (id = answer(c, &got)) != -1; })) << "no answer to a submit";
        EXPECT_GE(id, 0) << "the submit was refused";
        return id;
    }
    bool started(JobId id) const {
        for (JobId j : r_.jobs)
            if (j == id) return true;
        return false;
    }
    /* The played runner of job id reports its end. */
    void finish(JobId id) {
        for (size_t i = 0; i < r_.jobs.size(); ++i)
            if (r_.jobs[i] == id) {
                JobResult r;
                send_bytes(r_.ends[i], encode(proto::MsgType::Finished, finished_body(r, wall_now())));
                return;
            }
        ADD_FAILURE() << "job " << id << " has no runner";
    }
    /* -i of a job. */
    std::string info(JobId id) {
        Fd c = h_->connect(getuid());
        proto::JobRef ref{};
        ref.id = id;
        send_bytes(c, encode(proto::MsgType::Info, ref));
        h_->round();
        Received r = receive_now(c);
        std::string text;
        if (!r.frames.empty()) {
            TailReader t(r.frames[0].payload);
            (void)t.next(&text);
        }
        return text;
    }
    std::string log() const {
        std::string t;
        (void)read_file(dir_ + "/s.error", &t);
        return t;
    }

    std::string dir_;
    ServerConfig cfg_;
    PlayedRunners r_;
    std::unique_ptr<ServerHarness> h_;
};
