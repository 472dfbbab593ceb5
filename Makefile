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

LIB  := frame.o jobs.o journal.o options.o client.o server.o runner.o util.o
OBJS := $(addprefix $(B)/,$(LIB))
UNIT := $(B)/unit_tests
TESTS := $(wildcard tests/*_test.cpp)

BIN      := ts
ifeq ($(SANITIZE),1)
BIN      := $(B)/ts
endif

all: $(BIN)

$(BIN): $(B)/ts.o $(OBJS)
	$(CXX) $(CXXFLAGS) -o $@ $^ $(LDFLAGS)

$(B)/%.o: %.cpp | $(B)
	$(CXX) $(CXXFLAGS) -MMD -MP -c -o $@ $<

$(B):
	mkdir -p $(B)

include tests/gtest.mk

$(UNIT): $(TESTS) $(OBJS) $(GTEST_DEP) | $(B)
	$(CXX) $(CXXFLAGS) $(GTEST_CFLAGS) -I. -o $@ $(TESTS) $(OBJS) $(GTEST_LIBS) -pthread

check: $(BIN) $(UNIT)
	TS="$(CURDIR)/$(BIN)" tests/run.sh $(UNIT)

install: ts
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 ts $(DESTDIR)$(PREFIX)/bin/ts
	ln -sf ts $(DESTDIR)$(PREFIX)/bin/tsp
	ln -sf ts.1 $(DESTDIR)$(PREFIX)/share/man/man1/tsp.1
	install -m 644 ts.1 $(DESTDIR)$(PREFIX)/share/man/man1/ts.1

clean:
	rm -rf build build-san ts

.PHONY: all check install clean
-include $(wildcard $(B)/*.d)
