# gwbench, the load generator (bench/README.md). Included by the top-level
# Makefile, whose CC, CFLAGS, LDFLAGS, CPPFLAGS, WARN, B and DEB_BUILD it
# uses; objects go to $(B)/bench so that every flavour keeps its own.
#
#   make bench-build   bench/gwbench
#   make bench/ceiling the machine's raw loopback fan-out ceiling, one
#                      sendmsg per frame against io_uring batches (run by
#                      make bench; bench/ceiling -h)
#   make bench         the default suite (bench/suite.sh), under 5 minutes
#   make bench-compare gatewayd beside the peers of ../shared/peers
#                      (ref-node-ws, nginx+nchan, uWebSockets when UWS_DIR
#                      and USOCKETS_DIR name its source trees) on the same
#                      idle and fanout workloads, an overload step, with
#                      ratios and shares of bench/ceiling (bench/compare.sh,
#                      ~6 minutes)
#   make bench-sweep   fanout at rising --event-rate up to the first that
#                      fails, then --workers 1 vs 2 (bench/sweep.sh, < 5 min)
#   make bench-storm   the connect storm, RUNS x `gwbench connect -n 19000`,
#                      min / median / max; B_GATEWAYD=PATH interleaves a
#                      second gatewayd run for run (bench/storm.sh, ~1 min)
#   make bench-unit    the load generator's unit tests
#   make bench/parsecost  a callgrind subject: the broker's parse per event
#   make bench-cost    callgrind instructions per delivery of the fan-out
#                      path (bench/fanoutcost.sh, about 15 s)
#   make bench-presence a reconnect storm on three instances sharing one
#                      Redis: presence view settling, announcements, Redis
#                      calls per session change (bench/presence.sh, ~20 s)
#   make bench-resume  resume under churn (nothing lost or twice, resume
#                      latency) and server RSS per parked session, three
#                      runs each (bench/resume.sh, about 5 minutes)
#   make bench-tls     wss:// beside ws://: full and resumed handshakes per
#                      second (ECDSA, RSA), idle memory, fan-out per server
#                      CPU-second, a TLS connect storm beside a worker's
#                      fan-out with and without the handshake budget
#                      (bench/tls.sh, about 5 minutes)
#   make bench-handshake the server's CPU per full and resumed TLS handshake
#                      with openssl s_time as the client: gatewayd's wss://
#                      beside HAProxy terminating TLS (bench/handshake.sh,
#                      about a minute)
#   make bench-scale   scale-out: fanout --instances K for K = 1, 2, 4, 8, the
#                      old design (every instance reads every event) against
#                      targeted channels, three rounds; CPU per event summed
#                      over the instances, Redis per subscription
#                      (bench/scale.sh, about 13 minutes)
#   make bench-drain   the drain handoff: two instances behind HAProxy, one
#                      drained with SIGTERM while events flow (nothing lost
#                      or twice, time to all resumed, handoff counters),
#                      three runs at margin 1000 and at 0 (bench/drain.sh,
#                      about 2 minutes)
#
# `make unit` (and so `make test`) already builds and runs
# $(B)/test_bench_*: UNITBIN takes every test/unit/test_*.c, and the rule
# below, more specific than the top-level $(B)/test_%, links them with the
# bench sources they test. BENCH_UNITBIN names them for anyone wiring them
# in by hand.

BENCH_MAINS   := bench/gwbench.c bench/parsecost.c bench/ceiling.c
BENCH_SRC     := $(filter-out $(BENCH_MAINS),$(wildcard bench/*.c))
BENCH_OBJ     := $(BENCH_SRC:bench/%.c=$(B)/bench/%.o)
BENCH_LIBS    := -luv -lwslay -lcjson -lmbedtls -lmbedx509 -lmbedcrypto -lrabbitmq -lpthread -lm
BENCH_CFLAGS  := $(CPPFLAGS) -Ibench $(CFLAGS) $(WARN)
BENCH_UNITSRC := $(wildcard test/unit/test_bench_*.c)
BENCH_UNITBIN := $(BENCH_UNITSRC:test/unit/%.c=$(B)/%)
DEB_BENCH     := redis-server rabbitmq-server gnuplot-nox libcmocka-dev valgrind \
                 liburing-dev haproxy openssl

.PHONY: bench bench-build bench-unit bench-deps bench-format bench-format-check \
	bench-cost

bench-build: bench/gwbench

# Allocation is the daemon's own module (abort on out-of-memory).
bench/gwbench: $(B)/bench/gwbench.o $(B)/bench/libgwbench.a $(B)/alloc.o
	$(CC) $(LDFLAGS) -o $@ $^ $(BENCH_LIBS)

# It runs the daemon's own parser, so it links the daemon's archive.
bench/parsecost: $(B)/bench/parsecost.o $(B)/bench/libgwbench.a $(B)/libgw.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LIBS)

# The machine's raw fan-out ceiling: sendmsg against io_uring batches.
bench/ceiling: $(B)/bench/ceiling.o
	$(CC) $(LDFLAGS) -o $@ $^ -luring

$(B)/bench/%.o: bench/%.c $(wildcard bench/*.h) | $(B)/bench
	$(CC) $(BENCH_CFLAGS) -c -o $@ $<

$(B)/bench/libgwbench.a: $(BENCH_OBJ)
	$(AR) rcs $@ $^

$(B)/bench:
	mkdir -p $@

$(B)/test_bench_%: test/unit/test_bench_%.c $(B)/bench/libgwbench.a \
		$(B)/alloc.o | $(B)
	$(CC) $(BENCH_CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $^ \
		$(BENCH_LIBS) -lcmocka

bench-unit: $(BENCH_UNITBIN)
	@./test/run-unit.sh $(BENCH_UNITBIN)

bench-cost: gatewayd bench/gwbench
	@./bench/fanoutcost.sh ./gatewayd

bench-deps:
	@./test/install-deps.sh $(DEB_BUILD) $(DEB_BENCH)

# The suite measures a release build of the daemon.
bench: bench-deps
	$(MAKE) FLAVOR=release gatewayd bench/gwbench bench/ceiling
	./bench/suite.sh

# Side by side and the overload sweep, on the same release build. Both take
# /tmp/gw-measure.lock for each run themselves (do not wrap them in flock);
# compare.sh installs the peers' packages (nginx-light libnginx-mod-nchan)
# and builds the uWebSockets peer from $UWS_DIR and $USOCKETS_DIR (make
# passes the environment on) into build/uws-peer.
.PHONY: bench-compare bench-sweep
bench-compare: bench-deps
	$(MAKE) FLAVOR=release gatewayd bench/gwbench bench/ceiling
	./bench/compare.sh

bench-sweep: bench-deps
	$(MAKE) FLAVOR=release gatewayd bench/gwbench
	./bench/sweep.sh

# A reconnect storm on three gatewayd sharing one Redis (presence), on the
# same release build. The script takes no lock itself: it runs under
# /tmp/gw-measure.lock here (bench/presence.sh, about 20 s).
.PHONY: bench-presence
bench-presence: bench-deps
	$(MAKE) FLAVOR=release gatewayd bench/gwbench
	flock -w 600 /tmp/gw-measure.lock ./bench/presence.sh

bench-format:
	clang-format -i bench/*.c bench/*.h test/unit/test_bench_*.c
bench-format-check:
	clang-format --dry-run --Werror bench/*.c bench/*.h test/unit/test_bench_*.c

# Resume under churn and the memory of parked sessions, on the same release
# build. The script takes /tmp/gw-measure.lock for each run itself (do not
# wrap it in flock): bench/resume.sh, about 5 minutes of runs.
.PHONY: bench-resume
bench-resume: bench-deps
	$(MAKE) FLAVOR=release gatewayd bench/gwbench
	./bench/resume.sh

# The drain handoff on two instances behind HAProxy (deploy/haproxy.cfg),
# on the same release build. The script takes /tmp/gw-measure.lock for each
# run itself (do not wrap it in flock): bench/drain.sh, about 2 minutes.
.PHONY: bench-drain
bench-drain: bench-deps
	@./test/install-deps.sh haproxy
	$(MAKE) FLAVOR=release gatewayd bench/gwbench
	./bench/drain.sh

# Scale-out from one instance to eight, the old design against targeted
# channels, on the same release build. The script takes
# /tmp/gw-measure.lock for each run itself (do not wrap it in flock):
# bench/scale.sh, about 13 minutes.
.PHONY: bench-scale
bench-scale: bench-deps
	$(MAKE) FLAVOR=release gatewayd bench/gwbench
	./bench/scale.sh

# wss:// beside ws:// on the same release build (bench/tls.sh makes its
# certificates with openssl). The script takes /tmp/gw-measure.lock for each
# run itself (do not wrap it in flock): about 5 minutes.
.PHONY: bench-tls
bench-tls: bench-deps
	$(MAKE) FLAVOR=release gatewayd bench/gwbench
	./bench/tls.sh

# The server's CPU per TLS handshake with OpenSSL's s_time as the client:
# gatewayd's own wss:// beside HAProxy terminating TLS (bench/handshake.sh,
# about a minute; it takes /tmp/gw-measure.lock for each run itself).
.PHONY: bench-handshake
bench-handshake: bench-deps
	$(MAKE) FLAVOR=release gatewayd
	./bench/handshake.sh

# The connect storm, repeated (A/B with B_GATEWAYD=path/to/gatewayd), on the
# same release build. The script takes /tmp/gw-measure.lock for each run
# itself (do not wrap it in flock).
.PHONY: bench-storm
bench-storm: bench-deps
	$(MAKE) FLAVOR=release gatewayd bench/gwbench
	./bench/storm.sh $(B_GATEWAYD)
