/* Baseline build of train_vec_body.h and the run-time choice between builds. */
#include <pthread.h>
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

/* Which builds this CPU runs, decided once: the list ends with the best one. */
static const train_vec *tv_all[4];
static const train_vec *tv_best;
static pthread_once_t tv_once = PTHREAD_ONCE_INIT;

static void tv_init(void) {
    int n = 0;
    tv_all[n++] = &tv_generic;
#ifdef HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2")) tv_all[n++] = &train_vec_avx2;
    if (__builtin_cpu_supports("avx512f")) tv_all[n++] = &train_vec_avx512;
#endif
    tv_all[n] = NULL;
    const char *force = getenv("ULM_TRAIN_VEC");
    tv_best = force && !strcmp(force, "generic") ? &tv_generic : tv_all[n - 1];
}

const train_vec *const *train_vec_all(void) {
    pthread_once(&tv_once, tv_init);
    return tv_all;
}

const train_vec *train_vec_best(void) {
    pthread_once(&tv_once, tv_init);
    return tv_best;
}
