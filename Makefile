# Makefile -- builds s3ring into build/ (library, daemon, tools, tests).
#
# Sources are found by wildcard so that adding a file needs no edit here:
#   common/*.c                      ring layout, futex, CRC32C, time, logging
#   producer/*.c                    libs3ring.{a,so} (with common/)
#   uploader/*.c except main.c      the S3 client and daemon internals
#   uploader/main.c                 s3ring-uploader
#   tools/NAME.c tools/NAME-*.c     build/bin/NAME
#   tests/test_*.c                  cmocka unit tests, one binary each
#   tests/fuzz/fuzz_*.c             libFuzzer harnesses (make fuzz)
#   tests/servers/*.c               test servers, build/tests/NAME (libc + libbsd only)
#
# Variants: `make check` builds into build/asan with ASan+UBSan and runs the
# suite, `make tsan` builds into build/tsan with TSan and runs the suite.

CC      ?= cc
BUILD   ?= build
SAN     ?=
V       ?= 0

WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wformat=2 -Wno-unused-parameter
ifeq ($(CI),true)
WARN    += -Werror
endif

OPT     ?= -O2 -g
CFLAGS  ?=
CFLAGS  += -std=gnu11 $(OPT) $(WARN) -fvisibility=hidden -fPIC -pthread \
           -D_GNU_SOURCE -I. -Icommon -Iproducer -Iuploader -Itests/helpers \
           $(shell pkg-config --cflags libbsd-overlay 2>/dev/null)
LDLIBS  := -lcurl -lssl -lcrypto -lz -lzstd -lbsd -lpthread -lrt -lm

ifneq ($(SAN),)
CFLAGS  += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SAN)
endif

OBJ     := $(BUILD)/obj

COMMON_SRC   := $(sort $(wildcard common/*.c))
PRODUCER_SRC := $(sort $(wildcard producer/*.c))
UPLOADER_SRC := $(sort $(filter-out uploader/main.c,$(wildcard uploader/*.c)))
TEST_SRC     := $(sort $(wildcard tests/test_*.c))
TEST_HELPERS := $(sort $(wildcard tests/helpers/*.c))
TEST_TOOLS   := $(sort $(wildcard tests/tool_*.c))
TEST_SERVERS := $(sort $(wildcard tests/servers/*.c))
# Tool code that tests and fuzzers exercise directly (no main()).
TOOLLIB_SRC  := $(sort $(wildcard tools/*-render.c))
TOOLS        := s3ring-put shmstat s3ring-bench

COMMON_OBJ   := $(COMMON_SRC:%.c=$(OBJ)/%.o)
PRODUCER_OBJ := $(PRODUCER_SRC:%.c=$(OBJ)/%.o)
UPLOADER_OBJ := $(UPLOADER_SRC:%.c=$(OBJ)/%.o)
HELPER_OBJ   := $(TEST_HELPERS:%.c=$(OBJ)/%.o)
TOOLLIB_OBJ  := $(TOOLLIB_SRC:%.c=$(OBJ)/%.o)

# libs3ring.a is what applications link: one relocatable object whose
# hidden symbols are made local, so that nothing but s3ring_* is global in
# it (an application's own crc32c or ring_open cannot clash). The tools,
# the uploader and the tests link the unlocalized libs3ring-internal.a,
# which also holds logging (kept out of the producer library).
LIB_A        := $(BUILD)/lib/libs3ring.a
LIB_INT      := $(BUILD)/lib/libs3ring-internal.a
LIB_SO       := $(BUILD)/lib/libs3ring.so
SHIM_OBJ     := $(filter-out $(OBJ)/common/log.o,$(COMMON_OBJ)) $(PRODUCER_OBJ)
UPLOADER_A   := $(BUILD)/lib/libs3ring-uploader.a
TOOLLIB_A    := $(BUILD)/lib/libs3ring-tools.a
# Binaries whose main source exists (the tree is built up piece by piece).
BINS         := $(if $(wildcard uploader/main.c),$(BUILD)/bin/s3ring-uploader) \
                $(foreach t,$(TOOLS),$(if $(wildcard tools/$(t).c),$(BUILD)/bin/$(t)))
TESTS        := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%) \
                $(TEST_TOOLS:tests/%.c=$(BUILD)/tests/%) \
                $(TEST_SERVERS:tests/servers/%.c=$(BUILD)/tests/%)

ALL_SRC      := $(COMMON_SRC) $(PRODUCER_SRC) $(UPLOADER_SRC) uploader/main.c \
                $(TEST_SRC) $(TEST_HELPERS) $(TEST_TOOLS) $(TEST_SERVERS) $(wildcard tools/*.c)

.PHONY: all test check tsan fuzz deps run-tests clean install uninstall demo examples
.SECONDARY:
all: $(LIB_A) $(LIB_INT) $(LIB_SO) $(BINS) $(TESTS) examples

ifeq ($(V),0)
Q := @
endif

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

-include $(ALL_SRC:%.c=$(OBJ)/%.d)

$(LIB_A): $(SHIM_OBJ)
	@mkdir -p $(dir $@)
	$(Q)ld -r -o $(OBJ)/libs3ring.o $^
	$(Q)objcopy --localize-hidden $(OBJ)/libs3ring.o
	$(Q)rm -f $@ && ar rcs $@ $(OBJ)/libs3ring.o

$(LIB_INT): $(COMMON_OBJ) $(PRODUCER_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

# The shared library exports only what producer/s3ring.h marks S3RING_API;
# tests/it/exports.sh checks that with nm -D (and the archive with nm -g).
$(LIB_SO): $(SHIM_OBJ)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -shared -Wl,-soname,libs3ring.so.1 $(LDFLAGS) -o $@ $^ -lpthread -lrt

$(UPLOADER_A): $(UPLOADER_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(TOOLLIB_A): $(TOOLLIB_OBJ)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/s3ring-uploader: $(OBJ)/uploader/main.o $(UPLOADER_A) $(LIB_INT)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# A tool is tools/NAME.c plus any tools/NAME-*.c.
define tool_rule
$(BUILD)/bin/$(1): $(patsubst %.c,$(OBJ)/%.o,$(wildcard tools/$(1).c tools/$(1)-*.c)) $(UPLOADER_A) $(LIB_INT)
	@mkdir -p $$(dir $$@)
	$(Q)$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rule,$(t))))
# shmstat --listen serves /metrics with libmicrohttpd; nothing else links it.
$(BUILD)/bin/shmstat: LDLIBS += $(shell pkg-config --libs libmicrohttpd 2>/dev/null || echo -lmicrohttpd)

# A test server stands alone: it links nothing of s3ring, so what it
# measures is the client in front of it.
$(BUILD)/tests/%: $(OBJ)/tests/servers/%.o
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ -lbsd

$(BUILD)/tests/%: $(OBJ)/tests/%.o $(HELPER_OBJ) $(TOOLLIB_A) $(UPLOADER_A) $(LIB_INT)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# ---------------------------------------------------------------- tests
deps:
	@tests/install-deps.sh

run-tests: all
	@BUILD=$(BUILD) SAN=$(SAN) tests/run.sh

test: deps
	@$(MAKE) --no-print-directory run-tests

check: deps
	@$(MAKE) --no-print-directory BUILD=build/asan SAN=address,undefined OPT="-O1 -g" run-tests

tsan: deps
	@$(MAKE) --no-print-directory BUILD=build/tsan SAN=thread OPT="-O1 -g" run-tests

FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
fuzz: $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
build/fuzz/%: tests/fuzz/%.c $(COMMON_SRC) $(UPLOADER_SRC) $(TOOLLIB_SRC)
	@mkdir -p $(dir $@)
	$(Q)clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE \
	    -I. -Icommon -Iproducer -Iuploader $(shell pkg-config --cflags libbsd-overlay 2>/dev/null) \
	    -o $@ $< $(COMMON_SRC) $(UPLOADER_SRC) $(TOOLLIB_SRC) $(LDLIBS)

# The example application, built the way an application would: against the
# public header and the static library only.
EXAMPLES := $(BUILD)/examples/example
examples: $(EXAMPLES)
$(BUILD)/examples/%: producer/examples/%.c producer/s3ring.h $(LIB_A)
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=gnu11 $(OPT) $(WARN) $(filter -fsanitize=%,$(CFLAGS)) -Iproducer \
	    $(LDFLAGS) -o $@ $< $(LIB_A) -lpthread -lrt

# ---------------------------------------------------------------- install
PREFIX  ?= /usr/local
DESTDIR ?=
MAN_PAGES := $(wildcard producer/*.3 tools/*.1 uploader/*.8)

# install builds only what it installs: no test (so no cmocka), and not
# s3ring-bench, which measures from the source tree. The daemon goes to
# sbin/, the commands a user runs to bin/.
INSTALL_BIN  := $(BUILD)/bin/shmstat $(BUILD)/bin/s3ring-put
INSTALL_SBIN := $(BUILD)/bin/s3ring-uploader
INSTALLED    := bin/shmstat bin/s3ring-put sbin/s3ring-uploader lib/libs3ring.a \
                lib/libs3ring.so.1 lib/libs3ring.so lib/pkgconfig/s3ring.pc \
                include/s3ring.h share/s3ring/s3ring-uploader.service \
                share/s3ring/s3ring-uploader@.service \
                share/s3ring/uploader.conf.example share/s3ring/example.c \
                $(foreach m,$(MAN_PAGES),share/man/man$(subst .,,$(suffix $(m)))/$(notdir $(m)))

install: $(LIB_A) $(LIB_SO) $(INSTALL_BIN) $(INSTALL_SBIN) install-bindings
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/lib/pkgconfig \
	    $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/s3ring \
	    $(DESTDIR)$(PREFIX)/share/man/man1 $(DESTDIR)$(PREFIX)/share/man/man3 \
	    $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 755 $(INSTALL_BIN) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 $(INSTALL_SBIN) $(DESTDIR)$(PREFIX)/sbin/
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/libs3ring.so.1
	ln -sf libs3ring.so.1 $(DESTDIR)$(PREFIX)/lib/libs3ring.so
	install -m 644 producer/s3ring.h $(DESTDIR)$(PREFIX)/include/
	sed 's|@PREFIX@|$(PREFIX)|' producer/s3ring.pc.in >$(DESTDIR)$(PREFIX)/lib/pkgconfig/s3ring.pc
	sed 's|/usr/local/sbin/|$(PREFIX)/sbin/|' uploader/s3ring-uploader.service \
	    >$(DESTDIR)$(PREFIX)/share/s3ring/s3ring-uploader.service
	sed 's|/usr/local/sbin/|$(PREFIX)/sbin/|' uploader/s3ring-uploader@.service \
	    >$(DESTDIR)$(PREFIX)/share/s3ring/s3ring-uploader@.service
	install -m 644 uploader/uploader.conf.example producer/examples/example.c \
	    $(DESTDIR)$(PREFIX)/share/s3ring/
	for m in $(MAN_PAGES); do \
	    s=$${m##*.}; install -m 644 $$m $(DESTDIR)$(PREFIX)/share/man/man$$s/; done

# Removes exactly what install put there (and the share/s3ring directory
# if it is then empty); a unit copied to /etc/systemd stays.
uninstall: uninstall-bindings
	rm -f $(addprefix $(DESTDIR)$(PREFIX)/,$(INSTALLED))
	-rmdir $(DESTDIR)$(PREFIX)/share/s3ring 2>/dev/null

# ---------------------------------------------------------------- bindings
# The JVM and Python bindings (producer/java/, producer/python/,
# producer/examples/*.kt). Each is built when its toolchain is present
# (javac and the JDK's jni.h; kotlinc; /usr/bin/python3 with Python.h) and
# skipped otherwise; `make test` installs the toolchains first, and the
# bindings tests fail, not skip, when they are missing there. A sanitized
# build leaves the bindings out: an ASan/TSan module cannot be loaded into
# the unsanitized java and python3 (the plain build tests them).
BINDINGS_JAVAC   := $(shell command -v javac 2>/dev/null)
BINDINGS_JDK     := $(if $(BINDINGS_JAVAC),$(patsubst %/bin/javac,%,$(realpath $(BINDINGS_JAVAC))))
BINDINGS_KOTLINC := $(shell command -v kotlinc 2>/dev/null)
PYTHON3          ?= /usr/bin/python3
BINDINGS_PYINC   := $(shell $(PYTHON3) -c 'import sysconfig; print(sysconfig.get_paths()["include"])' 2>/dev/null)
BINDINGS_PYEXT   := $(shell $(PYTHON3) -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))' 2>/dev/null)
BINDINGS_PYVER   := $(shell $(PYTHON3) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
JUNIT_JAR        ?= /usr/share/java/junit-platform-console-standalone.jar

JAVA_SRC      := $(sort $(wildcard producer/java/src/org/s3ring/*.java))
JAVA_TEST_SRC := $(sort $(wildcard producer/java/test/org/s3ring/*.java))
S3RING_JAR    := $(BUILD)/lib/s3ring.jar
JNI_SO        := $(BUILD)/lib/libs3ring_jni.so
JAVA_TESTS    := $(BUILD)/java/test-classes/.built
KOTLIN_JAR    := $(BUILD)/examples/StoreMessages.jar
PY_SO         := $(BUILD)/python/s3ring$(BINDINGS_PYEXT)

# The modules link the static library, and export nothing of it: only the
# JNI entry points and PyInit_s3ring are visible.
BINDINGS_LDFLAGS := -shared -Wl,--exclude-libs,ALL -Wl,-z,defs

BINDINGS :=
ifeq ($(SAN),)
ifneq ($(and $(BINDINGS_JDK),$(wildcard $(BINDINGS_JDK)/include/jni.h)),)
BINDINGS += $(S3RING_JAR) $(JNI_SO)
ifneq ($(wildcard $(JUNIT_JAR)),)
BINDINGS += $(JAVA_TESTS)
endif
ifneq ($(BINDINGS_KOTLINC),)
BINDINGS += $(KOTLIN_JAR)
endif
endif
ifneq ($(and $(BINDINGS_PYEXT),$(wildcard $(BINDINGS_PYINC)/Python.h)),)
BINDINGS += $(PY_SO)
endif
endif

.PHONY: bindings install-bindings uninstall-bindings
all: bindings
bindings: $(BINDINGS)

$(BUILD)/java/classes/.built: $(JAVA_SRC)
	@rm -rf $(dir $@) $(BUILD)/java/include && mkdir -p $(dir $@)
	$(if $(Q),@echo "  JAVAC   producer/java/src")
	$(Q)javac --release 11 -Xlint:all -Werror -h $(BUILD)/java/include -d $(dir $@) $^
	@touch $@

$(S3RING_JAR): $(BUILD)/java/classes/.built
	@mkdir -p $(dir $@)
	$(Q)jar --create --file $@ -C $(BUILD)/java/classes org

$(JNI_SO): producer/java/s3ring_jni.c producer/s3ring.h $(BUILD)/java/classes/.built $(LIB_A)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) -std=gnu11 $(OPT) $(WARN) -fPIC -fvisibility=hidden -Iproducer \
	    -I$(BUILD)/java/include -I$(BINDINGS_JDK)/include -I$(BINDINGS_JDK)/include/linux \
	    $(BINDINGS_LDFLAGS) -o $@ $< $(LIB_A) -lpthread -lrt

$(JAVA_TESTS): $(JAVA_TEST_SRC) $(S3RING_JAR)
	@rm -rf $(dir $@) && mkdir -p $(dir $@)
	$(if $(Q),@echo "  JAVAC   producer/java/test")
	$(Q)javac --release 11 -Xlint:all,-options -cp $(S3RING_JAR):$(JUNIT_JAR) -d $(dir $@) $(JAVA_TEST_SRC)
	@touch $@

$(KOTLIN_JAR): producer/examples/StoreMessages.kt $(S3RING_JAR)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  KOTLINC $<")
	$(Q)kotlinc -nowarn -cp $(S3RING_JAR) -include-runtime -d $@ $< 2>&1 | \
	    { grep -v 'Options -Xverify:none and -noverify were deprecated' || true; }; test -s $@

$(PY_SO): producer/python/s3ring_module.c producer/s3ring.h $(LIB_A)
	@mkdir -p $(dir $@)
	$(if $(Q),@echo "  CC      $<")
	$(Q)$(CC) -std=gnu11 $(OPT) $(WARN) -fPIC -fvisibility=hidden -Iproducer -I$(BINDINGS_PYINC) \
	    -shared -Wl,--exclude-libs,ALL -o $@ $< $(LIB_A) -lpthread -lrt

# Installs whichever bindings were built: the jar under share/java, the JNI
# library next to libs3ring, the Python module where Debian's python3 looks
# for site packages under PREFIX.
PY_SITE := $(PREFIX)/lib/python$(BINDINGS_PYVER)/dist-packages
install-bindings: $(filter-out $(JAVA_TESTS),$(BINDINGS))
	$(if $(filter $(S3RING_JAR),$(BINDINGS)),install -d $(DESTDIR)$(PREFIX)/share/java $(DESTDIR)$(PREFIX)/lib && \
	    install -m 644 $(S3RING_JAR) $(DESTDIR)$(PREFIX)/share/java/ && \
	    install -m 755 $(JNI_SO) $(DESTDIR)$(PREFIX)/lib/ && \
	    install -d $(DESTDIR)$(PREFIX)/share/s3ring && \
	    install -m 644 producer/examples/StoreMessages.kt $(DESTDIR)$(PREFIX)/share/s3ring/ && \
	    echo "installed $(PREFIX)/share/java/s3ring.jar $(PREFIX)/lib/libs3ring_jni.so",@echo "no JVM binding built: skipped")
	$(if $(filter $(PY_SO),$(BINDINGS)),install -d $(DESTDIR)$(PY_SITE) && \
	    install -m 644 $(PY_SO) $(DESTDIR)$(PY_SITE)/ && \
	    echo "installed $(PY_SITE)/$(notdir $(PY_SO)) (for /usr/bin/python3)",@echo "no Python binding built: skipped")

uninstall-bindings:
	rm -f $(DESTDIR)$(PREFIX)/share/java/s3ring.jar $(DESTDIR)$(PREFIX)/lib/libs3ring_jni.so \
	    $(DESTDIR)$(PREFIX)/share/s3ring/StoreMessages.kt $(DESTDIR)$(PY_SITE)/$(notdir $(PY_SO))
	-rmdir $(DESTDIR)$(PREFIX)/share/java 2>/dev/null

demo:
	@tests/install-deps.sh
	@$(MAKE) --no-print-directory all
	@tools/demo.sh

clean:
	rm -rf build
