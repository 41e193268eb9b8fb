/* ISA detection and kernel table selection.
 *
 * x86-64: cpuid says what the core implements, xgetbv whether the OS saves the wider register
 * state on context switches (without that the instructions fault or corrupt state), so both
 * are required. aarch64 Linux: NEON is baseline; dot product (asimddp) and int8 matrix multiply
 * (i8mm) come from the kernel's hwcaps. Each table lives in its own object built with its
 * ISA's flags, and nothing from it runs unless the check here said yes. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "kernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Linux keeps AMX tile data (8 KiB per thread) off until a process asks: without this, the
 * first tile instruction faults. Granted per process, once; refused on old kernels. */
static int request_amx(void) {
#ifdef SYS_arch_prctl
    enum { ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18 };
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
#else
    return 0;
#endif
}

static uint64_t xgetbv0(void) {
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

static int detect(const char *isa) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    int osxsave = c >> 27 & 1, avx = c >> 28 & 1, fma = c >> 12 & 1, f16c = c >> 29 & 1;
    if (!osxsave || !avx) return 0;
    uint64_t xcr0 = xgetbv0();
    int os_avx = (xcr0 & 0x6) == 0x6;       /* XMM and YMM state */
    int os_avx512 = (xcr0 & 0xe6) == 0xe6;  /* + opmask, ZMM_Hi256, Hi16_ZMM */
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return 0;
    int avx2 = os_avx && fma && f16c && (b >> 5 & 1);
    int avx512 = avx2 && os_avx512 && (b >> 16 & 1) /* F */ && (b >> 17 & 1) /* DQ */ && (b >> 30 & 1) /* BW */ &&
                 (b >> 31 & 1) /* VL */;
    int vnni = avx512 && (c >> 11 & 1);
    /* AMX: tile + int8 in cpuid, tile config and data state enabled in XCR0 (bits 17, 18) */
    int amx = vnni && (d >> 24 & 1) && (d >> 25 & 1) && (xcr0 & 0x60000) == 0x60000;
    if (!strcmp(isa, "amx")) return amx && request_amx();
    if (!strcmp(isa, "avx2")) return avx2;
    if (!strcmp(isa, "avx512")) return avx512;
    if (!strcmp(isa, "avx512vnni")) return vnni;
    return 0;
}

static const ulm_kernels *const all_tables[] = {&ulm_kernels_amx, &ulm_kernels_avx512vnni, &ulm_kernels_avx512, &ulm_kernels_avx2,
                                                &ulm_kernels_scalar};

#elif defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1UL << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1UL << 13)
#endif

static int detect(const char *isa) {
    unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    int dot = (hw & HWCAP_ASIMDDP) != 0, i8mm = dot && (hw2 & HWCAP2_I8MM) != 0;
    if (!strcmp(isa, "neon")) return 1;
    if (!strcmp(isa, "neon-dotprod")) return dot;
    if (!strcmp(isa, "neon-i8mm")) return i8mm;
    return 0;
}

static const ulm_kernels *const all_tables[] = {&ulm_kernels_neon_i8mm, &ulm_kernels_neon_dotprod,
                                                &ulm_kernels_neon, &ulm_kernels_scalar};
#else
static int detect(const char *isa) { return 0; }
static const ulm_kernels *const all_tables[] = {&ulm_kernels_scalar};
#endif

#define NTABLES (sizeof all_tables / sizeof *all_tables)

/* Detection runs once; cpuid can trap to the hypervisor, so it is not redone per call. */
static int supported[NTABLES];
static pthread_once_t detect_once = PTHREAD_ONCE_INIT;
static void detect_all(void) {
    for (size_t i = 0; i < NTABLES; i++)
        supported[i] = all_tables[i] == &ulm_kernels_scalar || detect(all_tables[i]->isa);
}

const char *const *ulm_isa_names(void) {
    static const char *const names[] = {"scalar", "avx2", "avx512", "avx512vnni", "amx", "neon", "neon-dotprod",
                                        "neon-i8mm", NULL};
    return names;
}

const ulm_kernels *ulm_kernels_by_name(const char *isa) {
    pthread_once(&detect_once, detect_all);
    for (size_t i = 0; i < NTABLES; i++)
        if (strcmp(all_tables[i]->isa, isa) == 0) return supported[i] ? all_tables[i] : NULL;
    return NULL;
}

const ulm_kernels *ulm_kernels_best(void) {
    const char *force = getenv("ULM_ISA");
    if (force && *force) return ulm_kernels_by_name(force);
    pthread_once(&detect_once, detect_all);
    for (size_t i = 0; i < NTABLES; i++) /* all_tables is ordered best first */
        if (supported[i]) return all_tables[i];
    return &ulm_kernels_scalar;
}
