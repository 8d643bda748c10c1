# zolder: one Makefile, no autotools. Sources are found by folder, so adding a file to a
# folder adds it to the build:
#   reference/lib/*.c      -> libzbase.a    (generic: buffers, strings, log, config lexing)
#   reference/proto/*.c    -> libzproto.a   (pure parsers and writers)
#   reference/<service>/   -> libzsvc.a     (smtpd, queue, deliver, ...)
#   reference/cmd/X.c      -> bin/X         (main()s only)
#   simulator/*.c          -> libzsim.a, simulator/main/ispsim.c -> bin/ispsim
#   tests/unit/test_X.c    -> tests/test_X  (cmocka)
#   tests/fuzz/fuzz_X.c    -> fuzz/fuzz_X   (libFuzzer, clang)
#   bench/X.c              -> bench/X       (bench tools: libc only, never installed)
# Variants: BUILD=build (default), `make SAN=1 BUILD=build/asan` for ASan+UBSan.

BUILD    ?= build
SAN      ?=
CC       ?= cc
FUZZ_CC  ?= clang
FUZZ_SECONDS ?= 5
PYTHON   ?= python3
VERSION  := 0.1

PKGS     := libevent libevent_openssl openssl libcares ldns gmime-3.0 libcrypt libarchive libseccomp
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread
CMOCKA_LIBS := $(shell pkg-config --libs cmocka 2>/dev/null)

WARN     := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wno-format-nonliteral
CFLAGS   ?= -O2 -g
ifeq ($(SAN),1)
CFLAGS   := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS  += -fsanitize=address,undefined
endif
ALL_CFLAGS := -std=c11 -D_GNU_SOURCE -DZOLDER_VERSION='"$(VERSION)"' $(WARN) $(CFLAGS) \
              -Ireference/lib -Ireference/proto -Ireference -Isimulator $(PKG_CFLAGS) -MMD -MP

LIB_SRC   := $(wildcard reference/lib/*.c)
PROTO_SRC := $(wildcard reference/proto/*.c)
SVC_DIRS  := $(filter-out reference/lib/ reference/proto/ reference/cmd/,$(sort $(dir $(wildcard reference/*/*.c))))
SVC_SRC   := $(foreach d,$(SVC_DIRS),$(wildcard $(d)*.c))
CMD_SRC   := $(wildcard reference/cmd/*.c)
SIM_SRC   := $(wildcard simulator/*.c)
SIM_MAIN  := $(wildcard simulator/main/*.c)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz_*.c)
BENCH_SRC := $(wildcard bench/*.c)

# Quiet by default (one short line per file); `make V=1` shows every command.
ifeq ($(V),1)
Q :=
say = @:
else
Q := @
say = @printf '  %-6s %s\n' $(1) $(2)
endif

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))

LIBZBASE  := $(BUILD)/libzbase.a
LIBZPROTO := $(BUILD)/libzproto.a
LIBZSVC   := $(BUILD)/libzsvc.a
LIBZSIM   := $(BUILD)/libzsim.a
BINS      := $(patsubst reference/cmd/%.c,$(BUILD)/bin/%,$(CMD_SRC)) \
             $(patsubst simulator/main/%.c,$(BUILD)/bin/%,$(SIM_MAIN))
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRC))
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

.PHONY: all tests check unit integration scenarios bench-tools-check valgrind asan fuzz fuzz-build demo deps clean \
        bench-spool bench-sink bench-imap bench-outbound tidy certs
.DEFAULT_GOAL := all
# Fuzz objects are intermediate to make; keep them so a second `make fuzz` does not rebuild.
.SECONDARY:

# The bench tools are built with everything else so they cannot rot; they stay out of bin/.
all: $(BINS) $(BENCH_BINS)

tests: $(UNIT_BINS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,CC,$<)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIBZBASE): $(call obj,$(LIB_SRC))
$(LIBZPROTO): $(call obj,$(PROTO_SRC))
$(LIBZSVC): $(call obj,$(SVC_SRC))
$(LIBZSIM): $(call obj,$(SIM_SRC))
$(BUILD)/%.a:
	@mkdir -p $(dir $@)
	@rm -f $@
	$(call say,AR,$@)
	$(Q)ar rcs $@ $^ $(if $^,,$(BUILD)/empty.o)

# ar needs at least one member; an empty folder gets an empty object.
$(BUILD)/empty.o:
	@mkdir -p $(dir $@)
	$(Q)echo 'typedef int zolder_empty_unit;' | $(CC) -x c -c - -o $@
$(LIBZSVC) $(LIBZSIM) $(LIBZPROTO): | $(BUILD)/empty.o

REF_LIBS := $(LIBZSVC) $(LIBZPROTO) $(LIBZBASE)

$(BUILD)/bin/%: reference/cmd/%.c $(REF_LIBS)
	@mkdir -p $(dir $@) $(dir $(call obj,$<))
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $(call obj,$<)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(call obj,$<) $(REF_LIBS) $(PKG_LIBS)

$(BUILD)/bin/ispsim: simulator/main/ispsim.c $(LIBZSIM) $(LIBZBASE)
	@mkdir -p $(dir $@) $(dir $(call obj,$<))
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $(call obj,$<)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(call obj,$<) $(LIBZSIM) $(LIBZBASE) $(PKG_LIBS)

$(BUILD)/tests/%: tests/unit/%.c $(REF_LIBS) $(LIBZSIM)
	@mkdir -p $(dir $@) $(dir $(call obj,$<))
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -Itests/unit -c $< -o $(call obj,$<)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(call obj,$<) $(LIBZSIM) $(REF_LIBS) $(PKG_LIBS) $(CMOCKA_LIBS)

# bench/imapload.c: the IMAP load generator of bench/imap.py (libc only)
$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(dir $@) $(dir $(call obj,$<))
	$(call say,LD,$@)
	$(Q)$(CC) $(ALL_CFLAGS) -c $< -o $(call obj,$<)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(call obj,$<)

# --- tests --------------------------------------------------------------------------------
unit: tests
	@tools/run-unit $(BUILD)/tests

# Unit tests under memcheck, then zolderd itself under memcheck through the SMTP
# integration tests, and ispsim under memcheck through its own (a non-zero exit at SIGTERM,
# i.e. any error or definite leak, fails).
valgrind: tests all
	@tools/run-unit --valgrind $(BUILD)/tests
	ZOLDERD_VALGRIND=1 ZOLDER_BUILD=$(BUILD) $(PYTHON) -m unittest tests/integration/test_smtpd.py
	ISPSIM_WRAPPER="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite" \
	  ZOLDER_BUILD=$(BUILD) $(PYTHON) -m unittest discover -s tests/integration -p 'test_ispsim*.py'

# ASan+UBSan build: unit tests, then every integration test against the sanitized programs.
asan:
	$(MAKE) SAN=1 BUILD=build/asan tests all
	@tools/run-unit build/asan/tests
	ZOLDER_BUILD=build/asan $(PYTHON) -m unittest discover -s tests/integration -p 'test_*.py'

integration: all
	ZOLDER_BUILD=$(BUILD) $(PYTHON) -m unittest discover -s tests/integration -p 'test_*.py' -v

# Every scenario under scenarios/ (docs/scenarios.md); pending ones are listed, not run.
# The bench's own tools (bench/imapload against a hostile fake server; no fixed ports).
bench-tools-check: all
	$(PYTHON) bench/imapload_check.py --imapload $(BUILD)/bench/imapload

scenarios: all
	ZOLDER_BUILD=$(BUILD) $(PYTHON) tools/scenario --junit $(BUILD)/scenarios.xml

# --- fuzzing (clang libFuzzer; parsers only, no I/O) ------------------------------------------
FUZZ_OBJ_SRC := $(LIB_SRC) $(PROTO_SRC) $(SIM_SRC)
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -DZOLDER_VERSION='"$(VERSION)"' -g -O1 \
               -fsanitize=fuzzer-no-link,address,undefined -Ireference/lib -Ireference/proto \
               -Ireference -Isimulator $(PKG_CFLAGS)
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call say,FUZZCC,$<)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
$(BUILD)/fuzz/%: tests/fuzz/%.c $(patsubst %.c,$(BUILD)/fuzzobj/%.o,$(FUZZ_OBJ_SRC))
	@mkdir -p $(dir $@)
	$(call say,FUZZLD,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@ $(PKG_LIBS)

fuzz-build: $(FUZZ_BINS)
fuzz: fuzz-build
	@tools/run-fuzz $(BUILD)/fuzz $(FUZZ_SECONDS)

# --- the README's two commands ----------------------------------------------------------------
deps:
	@tools/deps

certs:
	@tools/gen-certs fixtures/certs

check: deps
	$(MAKE) certs
	$(MAKE) all tests
	$(MAKE) tidy
	$(MAKE) unit
	$(MAKE) integration
	$(MAKE) bench-tools-check
	$(MAKE) scenarios
	$(MAKE) valgrind
	$(MAKE) asan
	$(MAKE) fuzz

demo: deps
	$(MAKE) all
	@$(PYTHON) tools/demo
	@printf '\nThe seed suite (scenarios/seed/: the seven needs and the journey; docs/scenarios.md):\n\n'
	@$(PYTHON) tools/scenario scenarios/seed
	@printf '\nThe route of the seed article'"'"'s own message (tools/route), the chain our journey reproduces:\n\n'
	@$(PYTHON) tools/route fixtures/messages/seed-journey.eml

bench-spool: deps
	$(MAKE) all
	@$(PYTHON) bench/spool.py

bench-sink: deps
	$(MAKE) all
	@$(PYTHON) bench/ispsim_sink.py

bench-imap: deps
	$(MAKE) all
	@$(PYTHON) bench/imap.py

# outbound delivery (issue 5 section 7): a queue of 5000 x 4 KiB flushed to ispsim's smarthost
bench-outbound: deps
	$(MAKE) all
	@$(PYTHON) bench/outbound.py

tidy:
	clang-tidy --quiet -warnings-as-errors='*' -checks='-*,bugprone-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier' \
	  $(LIB_SRC) $(PROTO_SRC) $(SVC_SRC) $(CMD_SRC) $(SIM_SRC) $(BENCH_SRC) -- $(ALL_CFLAGS:-MMD=)

clean:
	rm -rf build

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
