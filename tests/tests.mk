# C tests: each tests/test_*.c is one program (exit 0 pass, 1 fail, 77 skip),
# run by tests/run_tests.sh with a per-test timeout. The same programs are
# built again with ASan+UBSan and with TSan, against the library's sources.

C_TESTS     := $(patsubst tests/%.c,%,$(wildcard tests/test_*.c))
TEST_CFLAGS := -std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wno-unused-parameter -Wno-unused-function -Iinclude -Isrc -Itests
TEST_LIBS   := -lpthread

SAN_CC      ?= $(shell command -v clang >/dev/null 2>&1 && echo clang || echo $(CC))
ASAN_FLAGS  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
TSAN_FLAGS  := -fsanitize=thread

# Plain build: the tests link the static library (hidden symbols included).
$(BUILD)/tests/%: tests/%.c tests/helpers.h $(BUILD)/libtachyon.a
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CFLAGS) $< $(BUILD)/libtachyon.a $(TEST_LIBS) -o $@

# Sanitizer builds compile the library sources into each test.
$(BUILD)/asan/%: tests/%.c tests/helpers.h $(LIB_SRCS) $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(SAN_CC) $(TEST_CFLAGS) -O1 $(ASAN_FLAGS) $< $(LIB_SRCS) $(TEST_LIBS) -o $@

$(BUILD)/tsan/%: tests/%.c tests/helpers.h $(LIB_SRCS) $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(SAN_CC) $(TEST_CFLAGS) -O1 $(TSAN_FLAGS) $< $(LIB_SRCS) $(TEST_LIBS) -o $@

.PHONY: test-c test-sanitize test-tsan
TEST_TARGETS += test-c test-sanitize test-tsan

test-c: lib $(C_TESTS:%=$(BUILD)/tests/%)
	@bash tests/run_tests.sh "C" $(C_TESTS:%=$(BUILD)/tests/%)

# Under sanitizers the long stress runs use fewer messages (they are 3-10x slower).
test-sanitize: $(C_TESTS:%=$(BUILD)/asan/%)
	@TACHYON_STRESS_MSGS=1000000 ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 bash tests/run_tests.sh "ASan+UBSan" $(C_TESTS:%=$(BUILD)/asan/%)

test-tsan: $(C_TESTS:%=$(BUILD)/tsan/%)
	@TACHYON_STRESS_MSGS=300000 TACHYON_STRESS_THREADS=1 TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 \
	 bash tests/run_tests.sh "TSan" $(C_TESTS:%=$(BUILD)/tsan/%)

# The library builds warning-free (-Werror) as C11 with gcc and with clang,
# and exports only the API's symbols.
.PHONY: test-build
TEST_TARGETS := test-build $(TEST_TARGETS)
test-build:
	@for cc in gcc clang; do \
		command -v $$cc >/dev/null || { echo "test-build: $$cc not found"; exit 1; }; \
		$(MAKE) -s BUILD=$(BUILD)/check-$$cc CC=$$cc EXTRA_CFLAGS="-Werror -Wpedantic" lib >/dev/null || exit 1; \
		bad=$$(nm -D --defined-only $(BUILD)/check-$$cc/libtachyon.so | awk '$$2 ~ /[TDBR]/ && $$3 !~ /^tachyon_/ {print $$3}'); \
		if [ -n "$$bad" ]; then echo "test-build: $$cc exports non-API symbols: $$bad"; exit 1; fi; \
		echo "PASS build with $$cc: -std=c11 -Wall -Wextra -Wpedantic -Werror, only tachyon_* exported"; \
	done

# make install PREFIX=... gives a library that pkg-config finds and links.
.PHONY: test-install
TEST_TARGETS := test-install $(TEST_TARGETS)
test-install: lib
	@prefix=$$(mktemp -d) && \
	$(MAKE) -s install PREFIX=$$prefix >/dev/null && \
	flags=$$(PKG_CONFIG_PATH=$$prefix/lib/pkgconfig pkg-config --cflags --libs tachyon) && \
	printf '#include <tachyon.h>\n#include <stdio.h>\nint main(void){puts(tachyon_strerror(TACHYON_ERR_FULL));return 0;}\n' > $$prefix/t.c && \
	$(CC) $$prefix/t.c $$flags -o $$prefix/t && LD_LIBRARY_PATH=$$prefix/lib $$prefix/t >/dev/null && \
	echo "PASS make install PREFIX=... + pkg-config: compiled, linked and ran against the installed library" && \
	rm -rf $$prefix

# tachyon.h from C++: C linkage, noexcept, the published macros (g++ and
# clang++, C++11 to C++20), linked against the C library and run.
.PHONY: test-cxx
TEST_TARGETS += test-cxx
test-cxx: $(BUILD)/libtachyon.a
	@mkdir -p $(BUILD)/cxx
	@for cxx in g++ clang++; do for std in c++11 c++17 c++20; do \
		$$cxx -std=$$std -Wall -Wextra -Werror -Iinclude tests/cxx/test_header.cpp $(BUILD)/libtachyon.a \
			-lpthread -o $(BUILD)/cxx/test_header || exit 1; \
		$(BUILD)/cxx/test_header >/dev/null || { echo "FAIL tachyon.h with $$cxx -std=$$std"; exit 1; }; \
	done; echo "PASS tachyon.h from C++ with $$cxx (-std=c++11, c++17, c++20)"; done
