# select lab - build, test and demonstrate the select() server and client.
#
#   make            build select_server and select_client
#   make test       build, install the test tools if missing, run the bats suite
#   make sanitize   rebuild with AddressSanitizer + UBSan and run the suite
#   make demo       a narrated, self-running demonstration (about 15 s)
#   make bench      select_server against the alternatives: bench/RESULTS.md
#   make stress     a seeded, mixed, misbehaving load against one server
#   make fuzz       fuzz the server's line splitter and escaper (clang)
#   make lab        run every lab experiment in turn (lab/README.md)
#   make clean      remove everything the build made
#
# The standard variables work as usual: make CC=clang, make CFLAGS=-O0 ...

CC       ?= cc
CPPFLAGS ?= -D_FORTIFY_SOURCE=2
CFLAGS   ?= -std=c11 -O2 -g -Wall -Wextra -Wpedantic -Werror
LDFLAGS  ?=
LDLIBS   ?=

PROGRAMS = select_server select_client
TEST_PROGRAMS = tests/testpeer tests/test_text
# Deliberately naive or wrong programs the lab compares the real ones with.
LAB_PROGRAMS = lab/byteorder lab/naive_server lab/naive_client \
	lab/fork_server lab/iterative_server lab/naive_udp_echo lab/udp_blast \
	lab/bug_strlen_client lab/bug_one_recv lab/bug_eintr lab/bug_no_listen \
	lab/bug_fork_noclose lab/bug_fork_nowait lab/bug_sigpipe_server
# Measuring instruments for make bench and make stress (Linux: epoll).
BENCH_PROGRAMS = bench/loadgen bench/shutdown_latency bench/stress

# Debian packages that `make test` needs, and the command that shows each is
# present.  Keep these two lists in the same order.
TEST_PACKAGES = bats bats-support bats-assert netcat-openbsd iproute2 procps \
	net-tools nftables tcpdump python3 strace tmux util-linux
TEST_CHECKS   = command -v bats && test -f /usr/lib/bats/bats-support/load.bash \
	&& test -f /usr/lib/bats/bats-assert/load.bash && command -v nc \
	&& command -v ss && command -v ps && command -v netstat \
	&& command -v nft && command -v tcpdump && command -v python3 \
	&& command -v strace && command -v tmux && command -v taskset

SANITIZE_FLAGS = -std=c11 -O1 -g -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=all \
	-Wall -Wextra -Wpedantic -Werror

.PHONY: all test sanitize demo lab lab-programs bench stress fuzz clean \
	test-deps bench-deps fuzz-deps

all: $(PROGRAMS)

# select_server is several files read as one program (server.h says which
# holds what); one compiler call builds it.
SERVER_SOURCES = select_server.c chat.c udp.c console.c output.c text.c
SERVER_HEADERS = server.h text.h common.h

select_server: $(SERVER_SOURCES) $(SERVER_HEADERS)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $(SERVER_SOURCES) $(LDLIBS)

select_client: select_client.c common.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ select_client.c $(LDLIBS)

tests/testpeer: tests/testpeer.c common.h
	$(CC) $(CPPFLAGS) -I. $(CFLAGS) $(LDFLAGS) -o $@ tests/testpeer.c $(LDLIBS)

# Unit tests of the pure part of the server, text.c.
tests/test_text: tests/test_text.c text.c text.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ tests/test_text.c text.c $(LDLIBS)

lab/byteorder: lab/byteorder.c common.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/byteorder.c $(LDLIBS)

lab/naive_server: lab/naive_server.c common.h lab/server_args.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/naive_server.c $(LDLIBS)

lab/naive_client: lab/naive_client.c common.h lab/connect_to.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/naive_client.c $(LDLIBS)

lab/naive_udp_echo: lab/naive_udp_echo.c common.h lab/server_args.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/naive_udp_echo.c $(LDLIBS)

lab/udp_blast: lab/udp_blast.c common.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/udp_blast.c $(LDLIBS)

lab/bug_strlen_client: lab/bug_strlen_client.c common.h lab/connect_to.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/bug_strlen_client.c $(LDLIBS)

lab/bug_one_recv: lab/bug_one_recv.c common.h lab/blocking_server.h lab/server_args.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/bug_one_recv.c $(LDLIBS)

lab/bug_eintr: lab/bug_eintr.c common.h lab/blocking_server.h lab/server_args.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/bug_eintr.c $(LDLIBS)

lab/bug_no_listen: lab/bug_no_listen.c common.h lab/server_args.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/bug_no_listen.c $(LDLIBS)

lab/bug_fork_noclose: lab/bug_fork_noclose.c common.h lab/blocking_echo.h lab/blocking_server.h lab/server_args.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/bug_fork_noclose.c $(LDLIBS)

lab/bug_fork_nowait: lab/bug_fork_nowait.c common.h lab/blocking_echo.h lab/blocking_server.h lab/server_args.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/bug_fork_nowait.c $(LDLIBS)

lab/bug_sigpipe_server: lab/bug_sigpipe_server.c common.h lab/server_args.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/bug_sigpipe_server.c $(LDLIBS)

lab/fork_server: lab/fork_server.c common.h lab/blocking_echo.h lab/blocking_server.h lab/server_args.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/fork_server.c $(LDLIBS)

lab/iterative_server: lab/iterative_server.c common.h lab/blocking_echo.h lab/blocking_server.h lab/server_args.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ lab/iterative_server.c $(LDLIBS)

bench/loadgen: bench/loadgen.c common.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ bench/loadgen.c $(LDLIBS)

bench/shutdown_latency: bench/shutdown_latency.c common.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ bench/shutdown_latency.c $(LDLIBS)

bench/stress: bench/stress.c common.h
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ bench/stress.c $(LDLIBS)

# install_missing WHAT,PACKAGES,CHECKS - when the shell command CHECKS
# fails, install PACKAGES with apt-get if we are root; otherwise say exactly
# what to run, and fail.
define install_missing
	@if ! ( $(3) ) >/dev/null 2>&1; then \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	        echo "installing $(1): $(2)"; \
	        apt-get update -qq && \
	        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	            $(2) >/dev/null || exit 1; \
	    else \
	        echo "missing $(1); install them with:" >&2; \
	        echo "  sudo apt-get install $(2)" >&2; \
	        exit 1; \
	    fi; \
	fi
endef

test-deps:
	$(call install_missing,test tools,$(TEST_PACKAGES),$(TEST_CHECKS))

test: all $(TEST_PROGRAMS) $(LAB_PROGRAMS) $(BENCH_PROGRAMS) test-deps
	bats --timing tests/

# A separate build directory keeps sanitizer binaries away from the normal
# ones; the suite finds the programs through SELECT_LAB_BIN.  The lab's
# experiments are left out: their scripts run the programs of the project
# directory, which `make test` has just tested.
SANITIZE_TESTS = $(filter-out tests/lab_%.bats,$(wildcard tests/*.bats))
sanitize: all $(LAB_PROGRAMS) $(BENCH_PROGRAMS) test-deps
	mkdir -p build/sanitize/tests
	$(CC) $(SANITIZE_FLAGS) -o build/sanitize/select_server $(SERVER_SOURCES)
	$(CC) $(SANITIZE_FLAGS) -o build/sanitize/select_client select_client.c
	$(CC) $(SANITIZE_FLAGS) -I. -o build/sanitize/tests/testpeer tests/testpeer.c
	$(CC) $(SANITIZE_FLAGS) -o build/sanitize/tests/test_text tests/test_text.c text.c
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	SELECT_LAB_BIN=$(CURDIR)/build/sanitize bats --timing $(SANITIZE_TESTS)

demo: all
	./demo.sh

# The benchmark needs python3 (the runner, the asyncio server), strace
# (counting system calls), and netcat and socat (the clients select_client
# is measured against; socat is a comparison server too).
BENCH_PACKAGES = python3 strace netcat-openbsd socat
BENCH_CHECKS   = command -v python3 && command -v strace && command -v nc \
	&& command -v socat
bench-deps:
	$(call install_missing,benchmark tools,$(BENCH_PACKAGES),$(BENCH_CHECKS))

# Every scenario against every server it can run; about 5 minutes on two
# cores.  BENCH_ARGS passes options to bench/run.py (see its --help).
bench: all $(LAB_PROGRAMS) $(BENCH_PROGRAMS) bench-deps
	python3 bench/run.py $(BENCH_ARGS)

# A seeded 60 s run of well-behaved and misbehaving clients and console junk
# against one select_server; it prints its seed and the command that repeats
# it.  STRESS_ARGS passes options (see bench/stress --help), for example
# STRESS_ARGS="--seconds 15 --server build/sanitize/select_server".
stress: all bench/stress
	bench/stress $(STRESS_ARGS)

# libFuzzer (clang only) on the line splitter and the escaper, with
# AddressSanitizer and UBSan, for FUZZ_SECONDS; a finding is saved in
# build/fuzz/ and the target fails.  libFuzzer's runtime is Debian's
# libclang-rt-dev.
FUZZ_SECONDS  ?= 60
FUZZ_PACKAGES  = clang libclang-rt-dev
FUZZ_CHECKS    = printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)\
	{ (void)d; (void)n; return 0; }' | clang -fsanitize=fuzzer -x c - \
	-o /dev/null
fuzz-deps:
	$(call install_missing,the fuzzer,$(FUZZ_PACKAGES),$(FUZZ_CHECKS))

fuzz: fuzz-deps
	mkdir -p build/fuzz/corpus
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all -Wall -Wextra -Wpedantic -Werror \
	    -o build/fuzz/fuzz_text tests/fuzz_text.c text.c
	build/fuzz/fuzz_text -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
	    -artifact_prefix=build/fuzz/ build/fuzz/corpus

# The lab's own programs, naive or deliberately wrong (see LAB_PROGRAMS).
lab-programs: $(LAB_PROGRAMS)

# Every lab experiment in turn (lab/NN-name.sh); see lab/README.md.  The
# ones that build network namespaces run as root, or for anyone else in a
# user namespace of their own; where the kernel allows neither they exit
# with status 4, and are skipped with the reason they gave.
LAB_NETNS = lab/04-connect-errors.sh lab/07-link-failure.sh \
	lab/11-packet-capture.sh lab/15-hidden-states.sh
lab: all $(LAB_PROGRAMS) $(TEST_PROGRAMS)
	@for script in lab/[0-9][0-9]-*.sh; do \
	    echo "==== $$script"; \
	    status=0; "$$script" || status=$$?; \
	    case " $(LAB_NETNS) " in *" $$script "*) \
	        if [ $$status = 4 ]; then \
	            echo "(skipped: this kernel allows this user no network namespaces; see above)"; \
	            continue; \
	        fi;; \
	    esac; \
	    [ $$status = 0 ] || exit 1; \
	done

clean:
	rm -f $(PROGRAMS) $(TEST_PROGRAMS) $(LAB_PROGRAMS) $(BENCH_PROGRAMS)
	rm -rf build
