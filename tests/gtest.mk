# GoogleTest for the unit tests only (ts itself never links it).  Use the
# system's library when present, else build the system's sources, else
# download one pinned release into the build directory.
GTEST_VERSION := 1.14.0
GTEST_SRC ?= $(firstword $(wildcard /usr/src/googletest/googletest) $(B)/googletest-$(GTEST_VERSION)/googletest)
ifneq ($(and $(wildcard /usr/include/gtest/gtest.h),$(wildcard /usr/lib/*/libgtest.a /usr/lib/libgtest.a /usr/lib*/libgtest.so)),)
GTEST_CFLAGS :=
GTEST_LIBS   := -lgtest_main -lgtest
GTEST_DEP    :=
else
GTEST_CFLAGS := -isystem $(GTEST_SRC)/include
GTEST_LIBS   := $(B)/libgtest.a
GTEST_DEP    := $(B)/libgtest.a
endif

$(B)/googletest-$(GTEST_VERSION)/googletest/src/gtest-all.cc: | $(B)
	cd $(B) && (curl -fsSL -o gtest.tgz https://github.com/google/googletest/archive/refs/tags/v$(GTEST_VERSION).tar.gz \
	  || wget -q -O gtest.tgz https://github.com/google/googletest/archive/refs/tags/v$(GTEST_VERSION).tar.gz) \
	  && tar xzf gtest.tgz && rm gtest.tgz

$(B)/libgtest.a: $(GTEST_SRC)/src/gtest-all.cc | $(B)
	$(CXX) $(CXXFLAGS) -w -isystem $(GTEST_SRC)/include -I$(GTEST_SRC) -c -o $(B)/gtest-all.o $(GTEST_SRC)/src/gtest-all.cc
	$(CXX) $(CXXFLAGS) -w -isystem $(GTEST_SRC)/include -I$(GTEST_SRC) -c -o $(B)/gtest_main.o $(GTEST_SRC)/src/gtest_main.cc
	ar rcs $@ $(B)/gtest-all.o $(B)/gtest_main.o
