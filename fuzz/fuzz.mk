# fuzz/fuzz.mk - the robustness and security suite (included by the top Makefile).
#
#   make test-security   hostile peers, credentials, bad input, peer death, signals (ASan+UBSan)
#   make test-fuzz       each libFuzzer target for FUZZ_TEST_SECONDS (60) from the seed corpora
#   make test-soak       two processes, random sizes and pauses, SOAK_TEST_SECONDS (60)
#   make fuzz            the fuzzers for FUZZ_SECONDS each (600), corpora kept in fuzz/corpus-work/
#   make soak            the soak for SOAK_SECONDS (600)
#
# Everything is built with clang, sanitizers on, straight from src/*.c (so the
# tests may use the library's internal headers).

FUZZ_CC           ?= clang
FUZZ_SECONDS      ?= 600
FUZZ_TEST_SECONDS ?= 60
SOAK_SECONDS      ?= 600
SOAK_TEST_SECONDS ?= 60
SEC_TEST_TIMEOUT  ?= 180

SEC_DIR    := $(BUILD)/security
FUZZ_DIR   := $(BUILD)/fuzz
SEC_SAN    := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
SEC_CFLAGS := -std=gnu11 -g -O1 $(WARN) -Wno-missing-prototypes -Iinclude -Isrc -Itests/security -Ifuzz
SEC_PROGS  := peer_death credentials hostile_handshake hostile_ring hostile_fan bad_api signals misuse
SEC_BINS   := $(SEC_PROGS:%=$(SEC_DIR)/%) $(SEC_DIR)/soak
SEC_LIB_OBJS  := $(LIB_SRCS:src/%.c=$(SEC_DIR)/obj/%.o)
FUZZ_LIB_OBJS := $(LIB_SRCS:src/%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_TARGETS  := fuzz_ring fuzz_handshake fuzz_rpc_handshake fuzz_fan
SEC_CLANG_OK  := $(BUILD)/.clang-fuzzer-ok

.PHONY: test-security test-fuzz test-soak fuzz soak security-build fuzz-build
TEST_TARGETS += test-security test-fuzz test-soak

# Keep the instrumented objects (make would delete them as intermediates).
.SECONDARY: $(SEC_LIB_OBJS) $(FUZZ_LIB_OBJS) $(SEC_DIR)/helpers.o $(SEC_DIR)/ring_harness.o

# clang with libFuzzer and the sanitizer runtimes (scripts/setup.sh installs
# them): checked once, so a broken toolchain fails here with its own message.
$(SEC_CLANG_OK): | setup
	@mkdir -p $(BUILD)
	@probe='int LLVMFuzzerTestOneInput(const unsigned char *d, unsigned long n) { return 0; }'; \
	echo "$$probe" | $(FUZZ_CC) -fsanitize=fuzzer,address,undefined -x c - -o $(BUILD)/.clang-probe || \
		{ echo "fuzz.mk: $(FUZZ_CC) cannot build a libFuzzer target (make setup installs clang and libclang-rt-14-dev)"; exit 1; }; \
	rm -f $(BUILD)/.clang-probe; touch $@

$(SEC_DIR)/obj/%.o: src/%.c $(LIB_HDRS) | $(SEC_CLANG_OK)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(SEC_CFLAGS) $(SEC_SAN) -c $< -o $@

$(FUZZ_DIR)/obj/%.o: src/%.c $(LIB_HDRS) | $(SEC_CLANG_OK)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(SEC_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -c $< -o $@

$(SEC_DIR)/helpers.o: tests/security/helpers.c tests/security/helpers.h | $(SEC_CLANG_OK)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(SEC_CFLAGS) $(SEC_SAN) -c $< -o $@

$(SEC_DIR)/ring_harness.o: fuzz/ring_harness.c fuzz/ring_harness.h $(LIB_HDRS) | $(SEC_CLANG_OK)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(SEC_CFLAGS) $(SEC_SAN) -c $< -o $@

$(SEC_DIR)/hostile_ring: $(SEC_DIR)/ring_harness.o

$(SEC_DIR)/%: tests/security/%.c $(SEC_DIR)/helpers.o $(SEC_LIB_OBJS) tests/security/helpers.h fuzz/send_fds.h
	$(FUZZ_CC) $(SEC_CFLAGS) $(SEC_SAN) $< $(filter %.o,$^) -lpthread -o $@

$(FUZZ_DIR)/fuzz_ring: fuzz/fuzz_ring.c fuzz/ring_harness.c fuzz/ring_harness.h $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(SEC_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		fuzz/fuzz_ring.c fuzz/ring_harness.c $(FUZZ_LIB_OBJS) -o $@

$(FUZZ_DIR)/fuzz_handshake: fuzz/fuzz_handshake.c fuzz/send_fds.h fuzz/fake_peer.h $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(SEC_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		fuzz/fuzz_handshake.c $(FUZZ_LIB_OBJS) -lpthread -o $@

$(FUZZ_DIR)/fuzz_rpc_handshake: fuzz/fuzz_rpc_handshake.c fuzz/send_fds.h fuzz/fake_peer.h $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(SEC_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		fuzz/fuzz_rpc_handshake.c $(FUZZ_LIB_OBJS) -lpthread -o $@

$(FUZZ_DIR)/fuzz_fan: fuzz/fuzz_fan.c fuzz/send_fds.h fuzz/fake_peer.h $(FUZZ_LIB_OBJS)
	$(FUZZ_CC) $(SEC_CFLAGS) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
		fuzz/fuzz_fan.c $(FUZZ_LIB_OBJS) -lpthread -o $@

security-build: $(SEC_BINS)
fuzz-build: $(FUZZ_TARGETS:%=$(FUZZ_DIR)/%)

test-security: security-build
	@sh tests/security/run.sh $(SEC_DIR) $(SEC_TEST_TIMEOUT) $(SEC_PROGS)

# Run the fuzzers side by side (one core each) from a copy of the seeds; any
# crash, sanitizer report or leak fails the target and leaves the input in
# $(FUZZ_DIR)/artifacts/. -print_funcs=0: printing NEW_FUNC lines starts
# llvm-symbolizer, whose two pipes would show up in fuzz_handshake's
# descriptor-leak check as if the library had leaked them.
define run_fuzzers
	@mkdir -p $(FUZZ_DIR)/artifacts
	@fail=0; for t in $(FUZZ_TARGETS); do \
		mkdir -p $(2)/$$t; \
		( $(FUZZ_DIR)/$$t -max_total_time=$(1) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -print_funcs=0 \
			-artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- $(2)/$$t fuzz/corpus/$$t \
			> $(FUZZ_DIR)/$$t.log 2>&1; echo $$? > $(FUZZ_DIR)/$$t.rc ) & \
	done; wait; \
	for t in $(FUZZ_TARGETS); do \
		rc=$$(cat $(FUZZ_DIR)/$$t.rc); \
		runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/$$t.log); \
		rate=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $(FUZZ_DIR)/$$t.log); \
		units=$$(ls $(2)/$$t | wc -l); \
		if [ "$$rc" = 0 ]; then echo "$$t: ok, $$runs executions ($$rate/s), corpus $$units"; \
		else echo "$$t: FAILED (exit $$rc); see $(FUZZ_DIR)/$$t.log"; grep -E 'ERROR|violated|SUMMARY|Test unit written' $(FUZZ_DIR)/$$t.log | head -n 20; fail=1; fi; \
	done; \
	if [ $$fail = 0 ]; then echo "fuzz: $(words $(FUZZ_TARGETS)) passed, 0 failed"; else echo "fuzz: failures found"; exit 1; fi
endef

test-fuzz: fuzz-build
	@rm -rf $(FUZZ_DIR)/corpus-test
	$(call run_fuzzers,$(FUZZ_TEST_SECONDS),$(FUZZ_DIR)/corpus-test)

fuzz: fuzz-build
	$(call run_fuzzers,$(FUZZ_SECONDS),fuzz/corpus-work)

test-soak: $(SEC_DIR)/soak
	@timeout --signal=KILL $$(( $(SOAK_TEST_SECONDS) + 60 )) $(SEC_DIR)/soak $(SOAK_TEST_SECONDS)

soak: $(SEC_DIR)/soak
	@timeout --signal=KILL $$(( $(SOAK_SECONDS) + 120 )) $(SEC_DIR)/soak $(SOAK_SECONDS)
