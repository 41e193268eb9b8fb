/* Baseline build of train_vec_body.h and the run-time choice between builds. */
#include <stdlib.h>
#include <string.h>
#define TV(name) name##_generic
#include "train_vec_body.h"

static const train_vec tv_generic = {"generic", tv_exp_generic, tv_softmax_generic, tv_softmax_bwd_generic, tv_silu_glu_fwd_generic,
                                     tv_silu_glu_bwd_generic, tv_xent_row_generic, tv_adamw_generic};

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
extern const train_vec train_vec_avx2, train_vec_avx512;
#define HAVE_X86 1
#endif

const train_vec *const *train_vec_all(void) {
    static const train_vec *all[4];
    int n = 0;
    all[n++] = &tv_generic;
#ifdef HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) all[n++] = &train_vec_avx2;
    if (__builtin_cpu_supports("avx512f")) all[n++] = &train_vec_avx512;
#endif
    all[n] = NULL;
    return all;
}

const train_vec *train_vec_best(void) {
#ifdef HAVE_X86
    const char *force = getenv("ULM_TRAIN_VEC");
    if (force && !strcmp(force, "generic")) return &tv_generic;
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return &train_vec_avx512;
    if (__builtin_cpu_supports("avx2")) return &train_vec_avx2;
#endif
    return &tv_generic;
}
