# jobfs — job distribution daemon with a FUSE face.
#
#   make            build build/jobfs, build/jobctl, build/mount.jobfs
#   make run        install the missing packages of $(RUN_DEPS) only, build, run the daemon
#                   mounted on $(MNT) (/mnt/jobs as root; else $XDG_RUNTIME_DIR/jobs, or
#                   build/mnt without it), its jobs kept in $(DATA), its web face
#                   (dashboard) on port $(HTTP)
#   make deb        build build/jobfs_$(VERSION)_ARCH.deb (debian/) and check it with lintian
#   make test       install the missing packages of $(DEPS) (the test kit too), run the
#                   whole suite (bats, C unit tests, client libraries) under ASan+UBSan,
#                   the build-dependent part again on the plain build, and each
#                   fuzzer for $(FUZZ_TEST_SECONDS) s
#   make test-full  the same, with the whole suite on the plain build too
#   make unit       build and run the C unit tests (tests/unit/test_*.c)
#   make layers     check that each folder of src/ uses only the layers below it
#   make fuzz       run each libFuzzer harness (tests/fuzz/fuzz_*.c) for $(FUZZ_SECONDS) s
#   make bench      benchmark against a frame relay, gearmand and beanstalkd
#   make bench-web  the web face's rows: HTTP round trip, --http-route, SSE fan-out
#   make bench-redis  cluster mode's rows: jobfs on Redis beside the embedded daemon
#   make install    PREFIX=/usr/local DESTDIR= (and the systemd unit in $(UNITDIR));
#                   libjobfs (header, libraries, jobfs.pc) too unless INSTALL_LIB=no
#   make examples   build $(B)/examples/worker, a C worker on libjobfs

PREFIX  ?= /usr/local
SBINDIR ?= /sbin
MANDIR  ?= $(PREFIX)/share/man
LIBDIR  ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
INSTALL_LIB ?= yes
# make run mounts the tree here: /mnt/jobs as root, else a directory the
# user owns ($XDG_RUNTIME_DIR/jobs when set, else build/mnt).
MNT     ?= $(shell if [ "$$(id -u)" = 0 ]; then echo /mnt/jobs; \
		elif [ -n "$$XDG_RUNTIME_DIR" ] && [ -d "$$XDG_RUNTIME_DIR" ]; then \
		echo "$$XDG_RUNTIME_DIR/jobs"; else echo $(CURDIR)/$(B)/mnt; fi)
UNITDIR ?= /etc/systemd/system
# make run keeps jobs here, in the build tree even as root: /var/lib/jobfs
# belongs to the package's jobfs user (debian/), which a root-owned journal
# left there by make run would lock out.
DATA    ?= $(CURDIR)/$(B)/data
B       ?= build
# make run serves HTTP (REST, SSE, metrics, the dashboard) on this port.
HTTP    ?= 9997

# Debian packages `make run` needs: the build and FUSE, nothing else.
# libmicrohttpd parses HTTP (the web face), and speaks its HTTPS through
# GnuTLS (libgnutls28-dev: the web face loads its certificates itself, so
# that SIGHUP reloads them); xxd embeds the dashboard page; tokens are
# kept hashed and both TCP ports speak TLS through OpenSSL; cluster mode talks to Redis through hiredis (its libev adapter).
RUN_DEPS = build-essential pkg-config libev-dev libjansson-dev libfuse3-dev fuse3 \
           uthash-dev libmicrohttpd-dev libgnutls28-dev xxd libssl-dev libhiredis-dev
# `make deb` builds the package with these (and checks it with lintian).
DEB_DEPS = debhelper dpkg-dev fakeroot lintian
# Everything `make test` needs beyond: bats (with GNU parallel, which runs
# several tests at once), jq, python3, mandoc (the man pages' lint), procps,
# psmisc and util-linux; clang for the fuzzers; curl and chromium drive
# the web tests (certutil, of libnss3-tools, puts the test CA in the
# browser's profile); openssl(1) makes the tests' certificates, ip(8) the
# network namespace of the protected-mode tests; the tests start a real
# redis-server, and with redis-sentinel (Debian's Sentinel, what
# redis-sentinel:// URLs point at) three sentinels, run as `redis-server
# --sentinel` on configs of their own (tests/redis_sentinel.bats: a master
# killed under load fails over); tests/deb.bats builds and installs the package; promtool(1),
# of Debian's prometheus, checks /metrics (tests/web_metrics.bats).
# tmux gives jobctl top a real terminal (tests/jobctl_top.bats); pytest
# and node run the client libraries' own suites (clients/*/test).
DEPS = $(RUN_DEPS) $(DEB_DEPS) \
       bats parallel jq python3 mandoc procps psmisc util-linux \
       clang libclang-rt-14-dev curl chromium libnss3-tools openssl iproute2 redis-server \
       redis-sentinel prometheus tmux python3-pytest nodejs

# What the benchmarks add (not `make test`): the cluster benchmark's peer
# columns run Sidekiq (Debian's ruby-sidekiq) and BullMQ (npm, installed by
# tests/bench/redis.sh into tests/bench/peers/node_modules with npm); a
# peer whose tools cannot be installed is skipped with a note.
BENCH_DEPS = redis-server ruby-sidekiq nodejs

PKGS   = jansson fuse3 openssl libmicrohttpd gnutls
CFLAGS ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Werror -MMD -MP -D_GNU_SOURCE -DFUSE_USE_VERSION=314 \
	$(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS  = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhiredis -lev -pthread

# The sources, one folder per layer (README, "Layout"); tests/layers checks
# that each uses only what it may.  The daemon is every layer but the CLI
# and the client library; the CLI links the client library and base/.
BASE_SRCS   = $(wildcard src/base/*.c)
CORE_SRCS   = $(wildcard src/core/*.c)
TCP_SRCS    = $(wildcard src/tcp/*.c)
TREE_SRCS   = $(wildcard src/tree/*.c)
WEB_SRCS    = $(wildcard src/web/*.c)
STORE_SRCS  = $(wildcard src/store/*.c)
SERVER_SRCS = src/server.c src/main.c
CLI_SRCS    = $(wildcard src/cli/*.c)
CLIENT_SRCS = $(wildcard src/client/*.c)
DAEMON_SRCS = $(BASE_SRCS) $(CORE_SRCS) $(TCP_SRCS) $(TREE_SRCS) $(WEB_SRCS) \
              $(STORE_SRCS) $(SERVER_SRCS)
# Files made from data: the dashboard page and the Redis functions.
GEN_OBJS    = $(B)/web/web_dashboard_html.o $(B)/store/redis_scripts_lua.o
DAEMON_OBJS = $(DAEMON_SRCS:src/%.c=$(B)/%.o) $(GEN_OBJS)
CLI_OBJS    = $(CLI_SRCS:src/%.c=$(B)/%.o) $(CLIENT_SRCS:src/%.c=$(B)/%.o) \
              $(BASE_SRCS:src/%.c=$(B)/%.o)
# libjobfs: the client library and base/, compiled again as PIC (in
# $(B)/pic/); the version script exports only the jfc_ API.
LIBJOBFS_OBJS = $(CLIENT_SRCS:src/%.c=$(B)/pic/%.o) $(BASE_SRCS:src/%.c=$(B)/pic/%.o)
LIBJOBFS_LIBS = $(shell pkg-config --libs jansson openssl 2>/dev/null) -lev
LIBJOBFS      = $(B)/libjobfs.so.0 $(B)/libjobfs.so $(B)/libjobfs.a $(B)/jobfs.pc

all: $(B)/jobfs $(B)/jobctl $(B)/mount.jobfs $(LIBJOBFS)

$(B)/jobfs: $(DAEMON_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/jobctl: $(CLI_OBJS)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(B)/mount.jobfs: mount-helper/mount.jobfs.c | $(B)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $<

$(B)/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Isrc -c -o $@ $<

$(B)/pic/%.o: src/%.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -fPIC -Isrc -c -o $@ $<

$(B)/libjobfs.so.0: $(LIBJOBFS_OBJS) src/client/libjobfs.map
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,libjobfs.so.0 \
		-Wl,--version-script=src/client/libjobfs.map -Wl,-z,defs \
		-o $@ $(LIBJOBFS_OBJS) $(LIBJOBFS_LIBS)

$(B)/libjobfs.so: $(B)/libjobfs.so.0
	ln -sf libjobfs.so.0 $@

# The static archive: one object, every symbol but the jfc_ API made
# local, so that base/'s names cannot clash with a program's.
$(B)/libjobfs.a: $(LIBJOBFS_OBJS)
	$(LD) -r -o $(B)/pic/libjobfs.o $(LIBJOBFS_OBJS)
	objcopy -w --keep-global-symbol='jfc_*' $(B)/pic/libjobfs.o
	rm -f $@
	$(AR) rcs $@ $(B)/pic/libjobfs.o

$(B)/jobfs.pc: dist/jobfs.pc.in src/base/base.h Makefile | $(B)
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' $< >$@

examples: $(B)/examples/worker

$(B)/examples/worker: examples/worker.c $(B)/libjobfs.a src/client/jobfs_client.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Isrc/client $(LDFLAGS) -o $@ $< $(B)/libjobfs.a \
		$(LIBJOBFS_LIBS) $(LDLIBS)

$(B):
	mkdir -p $@

# The dashboard page, compiled in as web_dashboard_html[] (web_dash.c).
$(B)/web/web_dashboard_html.c: src/web/web_dashboard.html
	@mkdir -p $(@D)
	cd src/web && xxd -i web_dashboard.html >$(abspath $@).tmp
	mv $@.tmp $@

# The Redis functions (cluster mode), loaded by every daemon as it connects:
# compiled in as redis_scripts_lua[] (store_redis.c).
$(B)/store/redis_scripts_lua.c: src/store/redis_scripts.lua
	@mkdir -p $(@D)
	cd src/store && xxd -i redis_scripts.lua >$(abspath $@).tmp
	mv $@.tmp $@

$(GEN_OBJS): %.o: %.c
	$(CC) $(CFLAGS) -c -o $@ $<

-include $(wildcard $(B)/*.d $(B)/*/*.d $(B)/pic/*/*.d)

# The layering check: which folder uses which, read from the objects'
# symbols (nm); fails on a use the layers forbid, and prints the graph.
layers: $(DAEMON_OBJS) $(CLI_OBJS)
	@tests/layers $(B)

# C unit tests and fuzz harnesses link every daemon object but main.o.
LIB_OBJS  = $(filter-out $(B)/main.o,$(DAEMON_OBJS))
UNIT_BINS = $(patsubst tests/unit/%.c,$(B)/unit/%,$(wildcard tests/unit/test_*.c))

$(B)/unit/%: tests/unit/%.c $(LIB_OBJS) | $(B)/unit
	$(CC) $(CFLAGS) -Isrc $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

$(B)/unit:
	mkdir -p $@

-include $(wildcard $(B)/unit/*.d)

unit-bins: $(UNIT_BINS)

# libFuzzer harnesses, built by clang in build/fuzz with ASan and UBSan: the
# daemon objects with -fsanitize=fuzzer-no-link, each harness with
# -fsanitize=fuzzer.  Every tests/fuzz/fuzz_NAME.c is one, with its seed
# corpus in tests/fuzz/corpus/NAME/.
FUZZ_CC           ?= clang
FUZZ_CFLAGS       ?= -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
                     -fno-sanitize-recover=all
FUZZ_SECONDS      ?= 60
FUZZ_TEST_SECONDS ?= 10
FUZZ_BINS = $(patsubst tests/fuzz/%.c,$(B)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

$(B)/fuzz/%: tests/fuzz/%.c $(LIB_OBJS) | $(B)/fuzz
	$(CC) $(CFLAGS) -fsanitize=fuzzer -Isrc $(LDFLAGS) -o $@ $< $(LIB_OBJS) $(LDLIBS)

$(B)/fuzz:
	mkdir -p $@

-include $(wildcard $(B)/fuzz/*.d)

fuzz-bins: $(FUZZ_BINS)

fuzz-build:
	@$(MAKE) --no-print-directory B=build/fuzz CC=$(FUZZ_CC) \
		CFLAGS="$(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link" fuzz-bins

# install-missing PACKAGES: apt-get install those not installed yet (as
# root, or through sudo).
define install-missing
missing=$$(for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
if [ -n "$$missing" ]; then \
	echo "installing:" $$missing; \
	SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	$$SUDO apt-get update -q && \
	DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q $$missing; \
fi
endef

# Install whatever of $(DEPS) is missing: the build, the tests, the package.
deps:
	@$(call install-missing,$(DEPS))

run-deps:
	@$(call install-missing,$(RUN_DEPS))

deb-deps:
	@$(call install-missing,$(RUN_DEPS) $(DEB_DEPS))

# Not fatal: without them the peer columns say skip.
bench-deps:
	-@$(call install-missing,$(BENCH_DEPS))

run: run-deps
	@$(MAKE) --no-print-directory all
	mkdir -p $(MNT)
	@echo "jobfs: tree on $(MNT), jobs kept in $(DATA)"
	@echo "jobfs: dashboard at http://127.0.0.1:$(HTTP)/"
	$(B)/jobfs -f --data $(DATA) --http $(HTTP) $(JOBFS_OPTS) $(MNT)

# make test: the whole suite (bats files, C unit tests, the client
# libraries' suites) runs once, on the build under ASan and UBSan, which
# fails on what the plain build would only risk.  The suite's time goes to
# its shells, jq and curl, not to the daemon, so a second full pass on the
# plain -O2 build would double it; that build runs the files whose outcome
# depends on the build (memory bounds that ASan's shadow and quarantine
# blur: durable, limits, retain_bytes), the protocol's core files, the
# unit tests and the clients.  deb.bats and make_run.bats build and run
# the plain binaries themselves.  Each fuzzer runs briefly, failing on a
# crash; tests/run counts it and prints the one summary line.
# make test-full runs the whole suite on both builds.
# The builds of make test compile on every core unless the caller chose -j.
TEST_J = $(if $(filter -j%,$(MAKEFLAGS)),,-j$(shell nproc 2>/dev/null || echo 2))
ASAN_CFLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
PLAIN_TESTS = durable,limits,retain_bytes,framing,master,worker,clients,unit

test-builds: deps
	@$(MAKE) --no-print-directory $(TEST_J) all unit-bins
	@$(MAKE) --no-print-directory $(TEST_J) B=build/asan CFLAGS="$(ASAN_CFLAGS)" all unit-bins
	@$(MAKE) --no-print-directory $(TEST_J) fuzz-build
	@tests/layers build

test: test-builds
	@FUZZ_DIR=build/fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) tests/run build/asan build:$(PLAIN_TESTS)

test-full: test-builds
	@FUZZ_DIR=build/fuzz FUZZ_SECONDS=$(FUZZ_TEST_SECONDS) tests/run build/asan build

check: all unit-bins
	@tests/run $(B)

unit: unit-bins
	@TESTS=unit tests/run $(B)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run build/fuzz $(FUZZ_SECONDS)

# The main table (tests/bench/run.sh), then the web face's rows, the
# delayed-jobs row and cluster mode's rows, each its own small table, all
# scaled by BENCH_SCALE.
bench: deps bench-deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory -C tests/bench run
	@BENCH_SCALE=$${BENCH_SCALE:-1} bash tests/bench/web.sh
	@python3 tests/bench/delayed.py $(B)/jobfs \
		$$(awk "BEGIN {print int(100000 * $${BENCH_SCALE:-1})}") \
		$$(awk "BEGIN {print int(1000000 * $${BENCH_SCALE:-1})}")
	@BENCH_SCALE=$${BENCH_SCALE:-1} JOBFS=$(CURDIR)/$(B)/jobfs bash tests/bench/redis.sh

bench-web: all
	@bash tests/bench/web.sh

bench-redis: all bench-deps
	@JOBFS=$(CURDIR)/$(B)/jobfs bash tests/bench/redis.sh

# libjobfs: the header, both libraries, jobfs.pc (made here, for this
# PREFIX) and libjobfs(3).
# install-lib-files copies only (no build): a test installs from a build
# made with other CFLAGS (ASan) without rebuilding it.
install-lib: $(LIBJOBFS)
	@$(MAKE) --no-print-directory install-lib-files

install-lib-files:
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR) \
		$(DESTDIR)$(MANDIR)/man3
	install -m 644 src/client/jobfs_client.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 755 $(B)/libjobfs.so.0 $(DESTDIR)$(LIBDIR)/
	ln -sf libjobfs.so.0 $(DESTDIR)$(LIBDIR)/libjobfs.so
	install -m 644 $(B)/libjobfs.a $(DESTDIR)$(LIBDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
	    -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	    dist/jobfs.pc.in >$(DESTDIR)$(LIBDIR)/pkgconfig/jobfs.pc
	chmod 644 $(DESTDIR)$(LIBDIR)/pkgconfig/jobfs.pc
	install -m 644 man/libjobfs.3 $(DESTDIR)$(MANDIR)/man3/

install: all $(if $(filter yes,$(INSTALL_LIB)),install-lib)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(MANDIR)/man8
	install -m 755 $(B)/jobfs $(B)/jobctl $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(B)/mount.jobfs $(DESTDIR)$(SBINDIR)/mount.jobfs
	ln -sf mount.jobfs $(DESTDIR)$(SBINDIR)/mount.fuse.jobfs
	for p in man/*.[15678]; do \
		install -m 644 $$p $(DESTDIR)$(MANDIR)/man$${p##*.}/; done
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|@BINDIR@|$(PREFIX)/bin|g' \
	    -e "s|@FUSERMOUNT@|$$(command -v fusermount3 || echo /usr/bin/fusermount3)|g" \
	    dist/jobfs.service.in >$(B)/jobfs.service
	install -m 644 $(B)/jobfs.service $(DESTDIR)$(UNITDIR)/jobfs.service
	install -d $(DESTDIR)$(PREFIX)/share/bash-completion/completions
	install -m 644 dist/bash-completion/jobfs dist/bash-completion/jobctl \
		$(DESTDIR)$(PREFIX)/share/bash-completion/completions/

# The Debian package (debian/), built by dpkg-buildpackage in a copy of
# the tree under $(B)/deb (so that the tree stays clean), then checked by
# lintian: any error fails the target.  Rebuilt only when a source is newer.
VERSION  = $(shell sed -n 's/^\#define JOBFS_VERSION "\(.*\)"/\1/p' src/base/base.h)
DEB_ARCH = $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
DEB      = $(B)/jobfs_$(VERSION)_$(DEB_ARCH).deb
DEB_SRCS = Makefile README.md $(wildcard src/* src/*/* mount-helper/* man/* dist/* dist/*/* debian/* debian/*/*)

deb: deb-deps
	@$(MAKE) --no-print-directory $(DEB)

$(DEB): $(DEB_SRCS)
	@v=$$(dpkg-parsechangelog -S Version); [ "$$v" = "$(VERSION)" ] || \
		{ echo "debian/changelog is at $$v, src/base/base.h at $(VERSION)"; exit 1; }
	rm -rf $(B)/deb
	mkdir -p $(B)/deb/jobfs-$(VERSION)
	tar -cf - Makefile README.md src mount-helper man dist debian | \
		tar -C $(B)/deb/jobfs-$(VERSION) -xf -
	cd $(B)/deb/jobfs-$(VERSION) && dpkg-buildpackage -b -us -uc -j2 >../build.log 2>&1 || \
		{ tail -n 40 ../build.log; exit 1; }
	lintian $(B)/deb/jobfs_$(VERSION)_$(DEB_ARCH).deb
	cp $(B)/deb/jobfs_$(VERSION)_$(DEB_ARCH).deb $@
	@echo "jobfs: $@ ($$(stat -c %s $@) bytes)"

lint-man:
	mandoc -Tlint -W warning man/*.[1-8]

clean:
	rm -rf build
	-$(MAKE) -C tests/bench clean

.PHONY: all examples install-lib install-lib-files layers deps run-deps deb-deps bench-deps deb run test test-builds test-full check unit unit-bins fuzz fuzz-build fuzz-bins bench bench-web bench-redis install lint-man \
	clean
