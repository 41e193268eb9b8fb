# ulm — build, test, cross-compile.
#   make                         build/ulm and build/libulm.a (+ engine/ulm.h)
#   make test                    every cmocka test (tests/test_*.c), then the golden-set evals
#   make asan                    the same suite under AddressSanitizer + UBSan (build-asan/)
#   make CROSS=aarch64-linux-gnu-        static aarch64 ulm (build-aarch64/)
#   make test-arm                unit tests under qemu-aarch64 -cpu max and -cpu cortex-a53
#   make fuzz                    the parsers' libFuzzer targets under ASan + UBSan (clang; build-fuzz/)
#   make CC=clang                any C11 compiler; -Werror is on
#   make BLAS=1                  optional OpenBLAS for f32 prefill (never required)
CROSS    ?=
CC       := $(if $(filter default,$(origin CC)),$(CROSS)gcc,$(CC))
AR       := $(CROSS)ar
MACHINE  := $(shell $(CC) -dumpmachine)
ifneq (,$(findstring aarch64,$(MACHINE)))
  ISA_DIR := kernels/arm
  DEFAULT_BUILD := build-aarch64
  STATIC := -static
else ifneq (,$(findstring x86_64,$(MACHINE)))
  ISA_DIR := kernels/x86
  DEFAULT_BUILD := build
  STATIC :=
else
  ISA_DIR :=
  DEFAULT_BUILD := build-$(MACHINE)
  STATIC := -static
endif
ifeq ($(CC),clang)
  DEFAULT_BUILD := $(DEFAULT_BUILD)-clang
endif
BUILD    ?= $(DEFAULT_BUILD)
OPT      ?= -O2
CFLAGS   ?=
CFLAGS   += -std=c11 $(OPT) -g -Wall -Wextra -Werror -Wno-unused-parameter -D_GNU_SOURCE \
            -fno-strict-aliasing -Iengine -Ikernels -Iformats -Itools -MMD -MP
LDLIBS   += -lm -lpthread
ifeq ($(BLAS),1)
  CFLAGS += -DULM_BLAS
  LDLIBS += -lopenblas
endif

# Per-ISA flags by file name: only the file that needs an extension is built with it,
# and the dispatcher (kernels/cpu.c) only calls it when the CPU reports it.
X86_AVX2    := -mavx2 -mfma -mf16c
X86_AVX512  := $(X86_AVX2) -mavx512f -mavx512bw -mavx512vl -mavx512dq
X86_VNNI    := $(X86_AVX512) -mavx512vnni
X86_AMX     := $(X86_VNNI) -mamx-tile -mamx-int8 -mamx-bf16 -mavx512bf16
ARM_DOTPROD := -march=armv8.2-a+dotprod+fp16
ARM_I8MM    := -march=armv8.6-a+dotprod+i8mm+fp16

LIB_SRC  := $(sort $(wildcard engine/*.c formats/*.c kernels/*.c kernels/ref/*.c) \
                   $(if $(ISA_DIR),$(wildcard $(ISA_DIR)/*.c)))
TOOL_SRC := $(sort $(wildcard tools/*.c tools/*/*.c))
ifneq ($(ISA_DIR),kernels/x86) # the trainer's per-ISA builds (train_vec_*.c, train_gemm_amx.c) are x86 only
  TOOL_SRC := $(filter-out %_avx2.c %_avx512.c %_amx.c,$(TOOL_SRC))
endif
TEST_SRC := $(sort $(wildcard tests/test_*.c))
GEN_SRC  := $(sort $(wildcard tasks/*/gen.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
TOOL_OBJ := $(TOOL_SRC:%.c=$(BUILD)/obj/%.o)
TESTS    := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
TOOL_LIB := $(BUILD)/obj/tools_lib.a
GENS     := $(GEN_SRC:tasks/%/gen.c=$(BUILD)/gen-%)

.PHONY: all tests test asan test-arm clean models model-haiku model-entities bench-kernels bench-constraint fuzz fuzz-targets
all: $(BUILD)/ulm $(BUILD)/libulm.a $(GENS)

V ?= 0
Q := $(if $(filter 1,$(V)),,@)
$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) $(XFLAGS) -c $< -o $@
# The v16f helpers of tools/train/train_vec_body.h are static inline: the vector-ABI note is moot.
$(BUILD)/obj/tools/train/train_vec.o $(BUILD)/obj/tools/train/train_vec_%.o: XFLAGS += -Wno-psabi
$(BUILD)/obj/%_avx2.o:       XFLAGS = $(X86_AVX2)
$(BUILD)/obj/%_avx512.o:     XFLAGS = $(X86_AVX512)
$(BUILD)/obj/%_avx512vnni.o: XFLAGS = $(X86_VNNI)
$(BUILD)/obj/%_amx.o:        XFLAGS = $(X86_AMX)
$(BUILD)/obj/%_dotprod.o:    XFLAGS = $(ARM_DOTPROD)
$(BUILD)/obj/%_i8mm.o:       XFLAGS = $(ARM_I8MM)

$(BUILD)/libulm.a: $(LIB_OBJ)
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

# Tool objects except main go into an archive so tests can call the CLI's commands too.
$(TOOL_LIB): $(filter-out $(BUILD)/obj/tools/ulm.o,$(TOOL_OBJ))
	@rm -f $@
	$(Q)$(AR) rcs $@ $^

$(BUILD)/ulm: $(BUILD)/obj/tools/ulm.o $(TOOL_LIB) $(BUILD)/libulm.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(STATIC) -o $@ $^ $(LDFLAGS) $(LDLIBS)

# Task data generators: tasks/<name>/gen.c -> $(BUILD)/gen-<name>.
$(BUILD)/gen-%: tasks/%/gen.c $(BUILD)/libulm.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) $(STATIC) -o $@ $< $(BUILD)/libulm.a $(LDFLAGS) $(LDLIBS)

CMOCKA_LIBS ?= -lcmocka
$(BUILD)/tests/%: tests/%.c $(TOOL_LIB) $(BUILD)/libulm.a tests/test_util.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -Itests -o $@ $< $(TOOL_LIB) $(BUILD)/libulm.a $(LDFLAGS) $(CMOCKA_LIBS) $(LDLIBS)

tests: $(TESTS)

# make test: unit tests, then the shipped tasks' golden-set evals (tasks/*/eval.sh).
test: all $(TESTS)
	@sh tests/run_tests.sh $(BUILD) $(TESTS)

# The golden-set evals are skipped under the sanitizers: they run the same code paths as the
# stories260K task tests (which do run here) and take minutes at -O1 with ASan.
asan:
	ULM_SKIP_EVALS=1 $(MAKE) BUILD=build-asan OPT="-O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	        LDFLAGS="-fsanitize=address,undefined" test

# make models: retrain both task models from scratch (tasks/<name>/train.sh: data, BPE,
# training, quantization, packing, golden eval). Haiku runs beside the first part of the
# entity run (PHASE=1), one thread each; when haiku is done (its recipe writes
# models/haiku.done, on failure too) the entity run stops at the end of its step and resumes
# on both cores (PHASE=2, THREADS=2): the same model as one uninterrupted run.
models: all
	rm -f $(BUILD)/models/haiku.done
	$(MAKE) -j2 model-haiku model-entities PHASE=1 STOP_FILE=$(BUILD)/models/haiku.done
	$(MAKE) model-entities PHASE=2 THREADS=2
PHASE ?=
THREADS ?= 1
STOP_FILE ?=
model-haiku model-entities: model-%: all
	mkdir -p $(BUILD)/models
	PHASE=$(PHASE) THREADS=$(THREADS) STOP_FILE=$(STOP_FILE) ULM=$(BUILD)/ulm GEN=$(BUILD)/gen-$* WORK=$(BUILD)/models/$* \
	    sh tasks/$*/train.sh $(if $(filter 2,$(PHASE)),>>,>) $(BUILD)/models-$*.log 2>&1; rc=$$?; touch $(BUILD)/models/$*.done; \
	    [ $$rc = 0 ] || { tail -20 $(BUILD)/models-$*.log; exit 1; }
	@tail -12 $(BUILD)/models-$*.log

# make fuzz: the fuzz targets (tests/fuzz/fuzz_*.c: model files, GGUF files and HF folders
# through the converter, safetensors, JSON, task specs, constraints, tokenizer importers,
# tokenizing, chat templates)
# under libFuzzer with ASan + UBSan, FUZZ_SECONDS each from their seeds (tests/fuzz/run.sh);
# FUZZ="json gguf" runs some. make test replays the committed corpus (tests/test_fuzz_corpus.c).
FUZZ_SECONDS ?= 60
FUZZ ?=
FUZZ_SAN := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
fuzz:
	@printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }\n' | \
	    clang -x c -fsanitize=fuzzer -o /dev/null - 2>/dev/null || \
	    { echo "make fuzz: clang cannot link libFuzzer (apt-get install clang libclang-rt-14-dev)"; exit 1; }
	$(MAKE) CC=clang BUILD=build-fuzz OPT="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" LDFLAGS="-fsanitize=address,undefined" \
	    build-fuzz/ulm fuzz-targets
	sh tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ)
fuzz-targets: $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(TOOL_LIB) $(BUILD)/libulm.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(CFLAGS) -DFUZZ_LIBFUZZER -fsanitize=fuzzer -o $@ $< $(TOOL_LIB) $(BUILD)/libulm.a $(LDFLAGS) $(LDLIBS)

# aarch64 tests link the arm64 cmocka (Debian multiarch libcmocka-dev:arm64) dynamically and
# run under qemu with the multiarch libc6:arm64 it pulls in. Not with -L /usr/aarch64-linux-gnu:
# under qemu 7.2, that cross libc hangs in pthread_create.
ARM_LIBDIR  ?= /usr/lib/aarch64-linux-gnu
test-arm:
	$(MAKE) CROSS=aarch64-linux-gnu- CC=aarch64-linux-gnu-gcc BUILD=build-aarch64 \
	    CMOCKA_LIBS="-L$(ARM_LIBDIR) -Wl,-rpath-link,$(ARM_LIBDIR) -lcmocka" build-aarch64/ulm \
	    $(TEST_SRC:tests/%.c=build-aarch64/tests/%)
	@for cpu in max cortex-a53; do \
	  echo "== qemu-aarch64 -cpu $$cpu"; \
	  ULM_TEST_RUNNER="qemu-aarch64 -cpu $$cpu" \
	  ULM_SKIP_EVALS=1 sh tests/run_tests.sh build-aarch64 $(TEST_SRC:tests/%.c=build-aarch64/tests/%) || exit 1; \
	done

# bench/kernels.c: matmul GB/s and GOP/s per ISA and format beside measured read bandwidth.
bench-kernels: $(BUILD)/bench_kernels
$(BUILD)/bench_kernels: bench/kernels.c $(BUILD)/libulm.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libulm.a $(LDFLAGS) $(LDLIBS)
# Constraint mask cost per step on a 262k-token synthetic vocabulary (bench/constraint_mask.c).
bench-constraint: $(BUILD)/libulm.a
	$(CC) $(CFLAGS) -o $(BUILD)/bench_constraint bench/constraint_mask.c $(BUILD)/libulm.a $(LDFLAGS) $(LDLIBS)

clean:
	rm -rf build build-* 

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
