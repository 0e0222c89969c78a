# gwctl, the command-line client (README "Quick start"; `gwctl --help`).
# Included by the top-level Makefile, whose CC, CFLAGS, LDFLAGS, CPPFLAGS,
# WARN, LIBS, B and FUZZFLAGS it uses; objects go to $(B)/gwctl so that
# every flavour keeps its own.
#
#   make gwctl                     ./gwctl (`make` builds it beside gatewayd)
#   make asan / make tsan          also ./gwctl-asan / ./gwctl-tsan, which
#                                  the end-to-end runs of those flavours use
#
# It links the daemon's archive for the modules it shares, so that it
# reads the gateway's configuration and checks tokens exactly as the
# daemon does (config, toml, sni, authkeys, jwt, jwks, json, buf,
# alloc). `make unit` builds and runs $(B)/test_gwctl_*: UNITBIN takes
# every test/unit/test_*.c, and the rule below, more specific than the
# top-level $(B)/test_%, links them with gwctl's modules. `make fuzz`
# builds fuzz/fuzz_gwctl.c with them.

GWCTL_SRC    := $(wildcard src/gwctl/*.c)
GWCTL_LIBSRC := $(filter-out src/gwctl/gwctl.c,$(GWCTL_SRC))
GWCTL_OBJ    := $(GWCTL_LIBSRC:src/gwctl/%.c=$(B)/gwctl/%.o)
GWCTL_CFLAGS := $(CPPFLAGS) -Isrc/gwctl $(CFLAGS) $(WARN)
GWCTL_DEPS   := $(wildcard src/gwctl/*.h) $(wildcard include/gw/*.h)

gwctl gwctl-asan gwctl-tsan: $(B)/gwctl/gwctl.o $(B)/gwctl/libgwctl.a \
		$(B)/libgw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

$(B)/gwctl/%.o: src/gwctl/%.c $(GWCTL_DEPS) | $(B)/gwctl
	$(CC) $(GWCTL_CFLAGS) -c -o $@ $<

$(B)/gwctl/libgwctl.a: $(GWCTL_OBJ)
	$(AR) rcs $@ $^

$(B)/gwctl:
	mkdir -p $@

$(B)/test_gwctl_%: test/unit/test_gwctl_%.c $(B)/gwctl/libgwctl.a \
		$(B)/libgw.a | $(B)
	$(CC) $(GWCTL_CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $^ \
		$(LIBS) -lcmocka

# The fuzz driver takes gwctl's modules after the daemon's archive in its
# link line, so the archive comes again after them (FUZZLIBS_gwctl).
build/fuzz/gwctl/%.o: src/gwctl/%.c $(GWCTL_DEPS)
	@mkdir -p build/fuzz/gwctl
	clang $(FUZZFLAGS) -Isrc/gwctl -fsanitize=fuzzer-no-link -c -o $@ $<
build/fuzz/gwctl/libgwctl.a: $(GWCTL_LIBSRC:src/gwctl/%.c=build/fuzz/gwctl/%.o)
	$(AR) rcs $@ $^
build/fuzz/fuzz_gwctl: build/fuzz/gwctl/libgwctl.a
build/fuzz/fuzz_gwctl: FUZZFLAGS += -Isrc/gwctl
FUZZLIBS_gwctl := build/fuzz/gwctl/libgwctl.a build/fuzz/libgw.a
