# gatewayd build. `make` builds ./gatewayd and ./gwctl, its command-line
# client (src/gwctl/gwctl.mk); `make run` and `make test` also
# install the Debian packages they need (see third_party/README.md).

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CPPFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude
LIBS    := -luv -luring -lwslay -lhttp_parser -lcjson -lmbedtls -lmbedx509 -lmbedcrypto -lck -lhiredis -lrabbitmq -lpthread -lm

SRC     := $(wildcard src/*.c)
LIBSRC  := $(filter-out src/main.c,$(SRC))
UNITSRC := $(wildcard test/unit/test_*.c)
FUZZSRC := $(wildcard fuzz/fuzz_*.c)

# One object tree per flavour, so release and sanitizer builds coexist.
FLAVOR  ?= release
B       := build/$(FLAVOR)
ifeq ($(FLAVOR),asan)
  CFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(FLAVOR),tsan)
  CFLAGS := -O1 -g -fsanitize=thread
  LDFLAGS += -fsanitize=thread
endif

LIBOBJ  := $(LIBSRC:src/%.c=$(B)/%.o)
UNITBIN := $(UNITSRC:test/unit/%.c=$(B)/%)

DEB_BUILD := build-essential pkg-config libuv1-dev liburing-dev libwslay-dev libhttp-parser-dev \
             libcjson-dev libmbedtls-dev libck-dev libhiredis-dev librabbitmq-dev
DEB_TEST  := libcmocka-dev libjansson-dev python3-websockets python3-pytest python3-cryptography openssl clang libclang-rt-14-dev \
             redis-server rabbitmq-server python3-pika python3-redis python3-seccomp haproxy systemd \
             chromium

.PHONY: all run test unit e2e sdk-test asan tsan fuzz deps test-deps clean format format-check

all: gatewayd gwctl

gatewayd: $(B)/main.o $(LIBOBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/%.o: src/%.c $(wildcard include/gw/*.h) | $(B)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -c -o $@ $<

# The presence script is Lua in its own file, compiled in as a string.
build/lua/presence.lua.h: src/presence.lua
	@mkdir -p build/lua
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $< > $@
$(B)/presence.o build/fuzz/presence.o: build/lua/presence.lua.h
$(B)/presence.o: CPPFLAGS += -Ibuild/lua
build/fuzz/presence.o: FUZZFLAGS += -Ibuild/lua

# So is the dashboard page (GET /dashboard): one HTML file, CSS and JS inline.
build/dashboard/dashboard.html.h: dashboard/dashboard.html
	@mkdir -p build/dashboard
	sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$$/\\n"/' $< > $@
$(B)/dashboard.o build/fuzz/dashboard.o: build/dashboard/dashboard.html.h
$(B)/dashboard.o: CPPFLAGS += -Ibuild/dashboard
build/fuzz/dashboard.o: FUZZFLAGS += -Ibuild/dashboard

# Tests link the archive, so each pulls in only the modules it uses.
$(B)/libgw.a: $(LIBOBJ)
	$(AR) rcs $@ $^

$(B)/test_%: test/unit/test_%.c $(B)/libgw.a | $(B)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(WARN) -Wno-missing-prototypes $(LDFLAGS) -o $@ $^ $(LIBS) -lcmocka

$(B):
	mkdir -p $@

# Installs missing Debian packages; a no-op when everything is present.
deps:
	@./test/install-deps.sh $(DEB_BUILD)

# The SDK's dev dependencies (typescript, ws, puppeteer-core) go into
# sdk/js/node_modules from its package-lock.json; no browser is downloaded
# (puppeteer-core drives Debian's chromium).
test-deps: deps
	@./test/install-deps.sh $(DEB_TEST)
	@[ sdk/js/node_modules/.package-lock.json -nt sdk/js/package-lock.json ] || \
	    (cd sdk/js && npm ci --no-audit --no-fund --loglevel=error)

run: deps gatewayd gwctl
	./gatewayd -c conf/gateway.toml

# The sanitizer flavours build into their own trees and binaries.
asan:
	$(MAKE) FLAVOR=asan gatewayd-asan gwctl-asan
tsan:
	$(MAKE) FLAVOR=tsan gatewayd-tsan gwctl-tsan
gatewayd-asan gatewayd-tsan: $(B)/main.o $(LIBOBJ)
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

unit: $(UNITBIN)
	@./test/run-unit.sh $(UNITBIN)

e2e: gatewayd gwctl
	@./test/run-e2e.sh ./gatewayd

sdk-test: gatewayd
	@./test/run-sdk.sh

test: test-deps
	@./test/run-all.sh

# libFuzzer drivers: one binary per parser, built with clang; the library
# is compiled once with coverage instrumentation and shared by all drivers.
FUZZFLAGS := -std=c11 -D_GNU_SOURCE -Iinclude -g -O1 -fsanitize=address,undefined -Wall -Wextra -Werror
FUZZOBJ := $(LIBSRC:src/%.c=build/fuzz/%.o)
fuzz: $(FUZZSRC:fuzz/fuzz_%.c=build/fuzz/fuzz_%)
build/fuzz/%.o: src/%.c $(wildcard include/gw/*.h)
	@mkdir -p build/fuzz
	clang $(FUZZFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<
build/fuzz/libgw.a: $(FUZZOBJ)
	$(AR) rcs $@ $^
# fuzz_json checks our JSON validator against Jansson's.
FUZZLIBS_json := -ljansson
build/fuzz/fuzz_%: fuzz/fuzz_%.c build/fuzz/libgw.a
	clang $(FUZZFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS) $(FUZZLIBS_$*)

# The load generator (bench/README.md) keeps its rules beside it.
-include bench/bench.mk

# So does the command-line client.
include src/gwctl/gwctl.mk

format:
	clang-format -i src/*.c include/gw/*.h test/unit/*.c fuzz/*.c bench/*.c bench/*.h \
	    src/gwctl/*.c src/gwctl/*.h
format-check:
	clang-format --dry-run --Werror src/*.c include/gw/*.h test/unit/*.c fuzz/*.c bench/*.c bench/*.h \
	    src/gwctl/*.c src/gwctl/*.h

clean:
	rm -rf build gatewayd gatewayd-asan gatewayd-tsan gwctl gwctl-asan gwctl-tsan
