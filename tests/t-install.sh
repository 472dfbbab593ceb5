#!/bin/bash
# t-install.sh — the Makefile: what it rebuilds on, and what each install target puts where.
#
# Runs the project's real Makefile on a copy of the tree whose sources are empty files, with a stand-in
# compiler that writes its own command line into the file it is asked to make. So nothing is compiled,
# the checkout's own build is never touched, and "./ts" says how it was linked. Installs go to DESTDIR
# under this script's temporary directory.
source "$(dirname "$0")/lib.sh"
skip_all_if_tsp "tests ts's own Makefile"

src=$T/src
mkdir -p "$src/tests"
cp "$_repo_root/Makefile" "$src/" && cp "$_repo_root/tests/gtest.mk" "$src/tests/" && cp "$_repo_root/ts.1" "$src/"
for f in "$_repo_root"/*.cpp; do : >"$src/$(basename "$f")"; done
cat >"$T/bin/fakecxx" <<'EOF'
#!/bin/sh
# Writes its command line into the file named after -o, and counts its runs.
echo run >>"${0%/*}/../fakecxx.runs"
out=
prev=
for a in "$@"; do [ "$prev" = -o ] && out=$a; prev=$a; done
[ -n "$out" ] && printf '%s\n' "$*" >"$out"
EOF
chmod +x "$T/bin/fakecxx"

# mk ARGS...: make in the copy, with the stand-in compiler and nothing from an outer make
mk() {
    env -u MAKEFLAGS -u MAKELEVEL -u MFLAGS -u CXXFLAGS -u LDFLAGS -u STATIC -u SANITIZE \
        make -C "$src" CXX="$T/bin/fakecxx" "$@" >"$T/mk.out" 2>&1
}
runs() { wc -l <"$T/fakecxx.runs" 2>/dev/null || echo 0; }
linked_static() { grep -q -- ' -static' "$src/ts"; }

mk; ok $? "make builds"
ok "$(linked_static; echo $?)" "make links ts statically"
n=$(runs)
mk; ok $? "make again"
is "$(runs)" "$n" "a second make with nothing changed runs no compiler"
mk STATIC=0; ok $? "make STATIC=0"
ok "$(! linked_static; echo $?)" "make STATIC=0 after make relinks ts dynamically"
is "$(runs)" "$((n + 1))" "make STATIC=0 relinks only (one run, no object recompiled)"
mk STATIC=0
is "$(runs)" "$((n + 1))" "make STATIC=0 again does nothing"
mk
ok "$(linked_static; echo $?)" "make after make STATIC=0 links statically again"
n=$(runs)
mk CXXFLAGS=-O0
ok "$(grep -q -- '-O0' "$src/build/util.o"; echo $?)" "another CXXFLAGS recompiles the objects"
m=$(runs); mk CXXFLAGS=-O0
is "$(runs)" "$m" "the same CXXFLAGS again does nothing"

# ---- install: ts, a tsp link, both man pages ----------------------------------------------------------
root=$T/root
mk install DESTDIR="$root" PREFIX=/usr; ok $? "make install"
ok "$(cmp -s "$src/ts" "$root/usr/bin/ts" && [ -x "$root/usr/bin/ts" ]; echo $?)" "make install: bin/ts is the binary"
is "$(readlink "$root/usr/bin/tsp")" ts "make install: bin/tsp links to ts"
ok "$(cmp -s "$src/ts.1" "$root/usr/share/man/man1/ts.1"; echo $?)" "make install: ts.1"
is "$(readlink "$root/usr/share/man/man1/tsp.1")" ts.1 "make install: tsp.1 links to ts.1"

# ---- install-tsp: tsp alone, as Debian's package has it -----------------------------------------------
root=$T/root-tsp
mk install-tsp DESTDIR="$root" PREFIX=/usr; ok $? "make install-tsp"
ok "$(cmp -s "$src/ts" "$root/usr/bin/tsp" && [ -x "$root/usr/bin/tsp" ] && [ ! -L "$root/usr/bin/tsp" ]; echo $?)" \
    "make install-tsp: bin/tsp is the binary"
ok "$(cmp -s "$src/ts.1" "$root/usr/share/man/man1/tsp.1" && [ ! -L "$root/usr/share/man/man1/tsp.1" ]; echo $?)" \
    "make install-tsp: tsp.1 is the man page"
is "$(cd "$root" && find . \( -type f -o -type l \) | sort)" "./usr/bin/tsp
./usr/share/man/man1/tsp.1" "make install-tsp installs no ts and no ts.1"

# over an earlier make install: the links become files, and ts is left as it was
root=$T/root
mk install-tsp DESTDIR="$root" PREFIX=/usr; ok $? "make install-tsp over make install"
ok "$(cmp -s "$src/ts" "$root/usr/bin/tsp" && [ ! -L "$root/usr/bin/tsp" ] && [ ! -L "$root/usr/share/man/man1/tsp.1" ]; echo $?)" \
    "make install-tsp over make install: files in place of the links"
ok "$(cmp -s "$src/ts.1" "$root/usr/share/man/man1/ts.1" && cmp -s "$src/ts" "$root/usr/bin/ts"; echo $?)" \
    "make install-tsp over make install: ts and ts.1 untouched"

# clean and build in one make: the flag files are gone by the time the build needs them
mk clean all; ok $? "make clean all"
case $(cat "$src/ts" 2>/dev/null) in *-static*) pass "... builds ts, statically" ;; *) fail "... builds ts, statically" "$(cat "$T/mk.out")" ;; esac

done_testing
