# ts — a job queue for the Unix command line.  `make`, `make check`, `make install`.
CXX      ?= c++
CXXFLAGS ?= -std=c++17 -O2 -Wall -Wextra -pedantic
PREFIX   ?= /usr/local
STATIC   ?= 1
SANITIZE ?= 0
B        := build

ifeq ($(STATIC),1)
LDFLAGS  ?= -static
endif
ifeq ($(SANITIZE),1)
B        := build-san
CXXFLAGS += -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS  := -fsanitize=address,undefined
endif

ifeq ($(VALGRIND),1)
B        := build-vg
CXXFLAGS += -g
LDFLAGS  :=
endif

# What the objects and the binary are built with, each kept in a file that is
# rewritten only when it changes, and that they depend on: `make STATIC=0`
# after `make` relinks ts, another CXXFLAGS recompiles.
COMPILE := $(strip $(CXX) $(CXXFLAGS))
LINK    := $(strip $(COMPILE) $(LDFLAGS))
$(shell mkdir -p $(B))
ifneq ($(file <$(B)/compile.flags),$(COMPILE))
$(file >$(B)/compile.flags,$(COMPILE))
endif
ifneq ($(file <$(B)/link.flags),$(LINK))
$(file >$(B)/link.flags,$(LINK))
endif
# (made again when a `make clean all` removed them after the lines above ran)
.DEFAULT_GOAL := all
$(B)/compile.flags $(B)/link.flags:
	$(shell mkdir -p $(B))$(file >$(B)/compile.flags,$(COMPILE))$(file >$(B)/link.flags,$(LINK))

LIB  := config.o ledger.o waits.o frame.o gpu.o gpu_parse.o gpu_probe.o gpu_broker.o jobs.o journal.o listing.o options.o client.o connect.o place.o bounds.o queue_files.o server_log.o context.o handlers.o handlers_waits.o server.o runner.o settings.o spawner.o runner_supply.o util.o
OBJS := $(addprefix $(B)/,$(LIB))
UNIT := $(B)/unit_tests
TESTS := $(wildcard tests/*_test.cpp)

BIN      := ts
ifneq ($(filter 1,$(SANITIZE) $(VALGRIND)),)
BIN      := $(B)/ts
endif

all: $(BIN)

$(BIN): $(B)/ts.o $(OBJS) $(B)/link.flags
	$(CXX) $(CXXFLAGS) -o $@ $(filter %.o,$^) $(LDFLAGS)

$(B)/%.o: %.cpp $(B)/compile.flags | $(B)
	$(CXX) $(CXXFLAGS) -MMD -MP -c -o $@ $<

$(B):
	mkdir -p $(B)

include tests/gtest.mk

TEST_OBJS := $(patsubst tests/%.cpp,$(B)/tests/%.o,$(TESTS))

# The test files themselves unoptimized (-O0): what they test is built as
# above, and GoogleTest's macros take the optimizer most of a minute a file.
$(B)/tests/%.o: tests/%.cpp $(GTEST_DEP) $(B)/compile.flags | $(B)
	@mkdir -p $(B)/tests
	$(CXX) $(CXXFLAGS) -O0 $(GTEST_CFLAGS) -I. -MMD -MP -c -o $@ $<

$(UNIT): $(TEST_OBJS) $(OBJS) $(GTEST_DEP) | $(B)
	$(CXX) $(CXXFLAGS) -o $@ $(TEST_OBJS) $(OBJS) $(GTEST_LIBS) -pthread

# Under the sanitizers (slow) the heaviest scripts do less: TS_TEST_LIGHT.
check: $(BIN) $(UNIT)
	TS="$(CURDIR)/$(BIN)" TS_TEST_LIGHT=$(SANITIZE) tests/run.sh $(UNIT)

# install: ts and a tsp link (with their man pages), which come before
# moreutils' ts and Debian's tsp in the usual PATH; install-tsp: tsp alone,
# as Debian's package names it.
BINDIR := $(DESTDIR)$(PREFIX)/bin
MANDIR := $(DESTDIR)$(PREFIX)/share/man/man1
install: ts
	install -d $(BINDIR) $(MANDIR)
	install -m 755 ts $(BINDIR)/ts
	ln -sf ts $(BINDIR)/tsp
	ln -sf ts.1 $(MANDIR)/tsp.1
	install -m 644 ts.1 $(MANDIR)/ts.1
install-tsp: ts
	install -d $(BINDIR) $(MANDIR)
	rm -f $(BINDIR)/tsp $(MANDIR)/tsp.1
	install -m 755 ts $(BINDIR)/tsp
	install -m 644 ts.1 $(MANDIR)/tsp.1

clean:
	rm -rf build build-san build-vg build-fuzz ts

# The integration suite with every server under valgrind (a dynamic build:
# memcheck cannot see malloc in a static binary); fails on any error or leak.
check-valgrind:
	$(MAKE) VALGRIND=1 build-vg/ts
	rm -f build-vg/vg.*
	TS="$(CURDIR)/build-vg/ts" TS_VALGRIND="$(CURDIR)/build-vg/vg" tests/run.sh
	tests/valgrind-report.sh build-vg/vg.*

# libFuzzer (clang): the decoders and every message handler, FUZZ_TIME seconds.
# Objects are built one per file (make -j2 fuzz builds two at a time).
FUZZ_TIME ?= 60
FUZZ_CXX  := clang++ -std=c++17 -g -O1 -fsanitize=fuzzer-no-link,address,undefined -I.
FUZZ_OBJS := $(addprefix build-fuzz/,$(LIB)) build-fuzz/fuzz_server.o
build-fuzz/%.o: %.cpp
	@mkdir -p build-fuzz
	$(FUZZ_CXX) -MMD -MP -c -o $@ $<
build-fuzz/fuzz_server.o: tests/fuzz_server.cpp
	@mkdir -p build-fuzz
	$(FUZZ_CXX) -MMD -MP -c -o $@ $<
build-fuzz/fuzz_server: $(FUZZ_OBJS)
	clang++ -g -fsanitize=fuzzer,address,undefined -o $@ $^
-include $(FUZZ_OBJS:.o=.d)
fuzz: build-fuzz/fuzz_server
	mkdir -p build-fuzz/corpus
	$(CXX) -std=c++17 -O1 -I. -o build-fuzz/fuzz_seeds tests/fuzz_seeds.cpp frame.cpp gpu.cpp gpu_parse.cpp jobs.cpp settings.cpp util.cpp
	build-fuzz/fuzz_seeds build-fuzz/corpus
	build-fuzz/fuzz_server -max_total_time=$(FUZZ_TIME) -max_len=65536 -timeout=10 \
	  -print_final_stats=1 build-fuzz/corpus

# make bench: ts against Debian's tsp (when installed), side by side; not part of `make check`.
# BENCHFLAGS=--quick for a short run; BENCHFLAGS="--only gpu" for the GPU scenario (a fake nvidia-smi, ts
# alone; not in the default set); python3 bench/bench.py --help for the rest.
bench: $(BIN)
	python3 bench/bench.py --ts "$(CURDIR)/$(BIN)" $(BENCHFLAGS)

# make profile: where ts's time goes (callgrind on the server and a runner, perf on clients).
profile: $(BIN)
	bench/profile.sh "$(CURDIR)/$(BIN)"

.PHONY: all check check-valgrind install install-tsp clean fuzz bench profile
-include $(wildcard $(B)/*.d $(B)/tests/*.d)
