/* The trainer's pool is the engine's fork-join pool (engine/threadpool.c: a brief spin, then a
 * condition variable), so a step's ~200 parallel sections do not each pay a futex wake-up;
 * a NULL pool or one thread runs inline. */
#include <stdlib.h>
#include "threadpool.h"
#include "train_pool.h"

struct tpool {
    int n;
    threadpool *tp;
};

tpool *tpool_new(int n_threads) {
    tpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads < 1 ? 1 : n_threads;
    if (!(p->tp = tp_new(p->n))) { free(p); return NULL; }
    return p;
}

void tpool_free(tpool *p) {
    if (!p) return;
    tp_free(p->tp);
    free(p);
}

int tpool_size(const tpool *p) { return p ? p->n : 1; }

void tpool_run(tpool *p, tpool_fn fn, void *ctx) {
    if (!p || p->n == 1) { fn(ctx, 0, 1); return; }
    tp_run(p->tp, fn, ctx);
}

void tpool_split(int n, int align, int ith, int nth, int *b0, int *b1) {
    int blocks = (n + align - 1) / align;
    int per = blocks / nth, extra = blocks % nth;
    int s = ith * per + (ith < extra ? ith : extra);
    int e = s + per + (ith < extra);
    *b0 = s * align < n ? s * align : n;
    *b1 = e * align < n ? e * align : n;
}

typedef struct {
    tpool_range_fn fn;
    void *ctx;
    int n, align;
} for_job;

static void for_thread(void *ctx, int ith, int nth) {
    const for_job *j = ctx;
    int i0, i1;
    tpool_split(j->n, j->align, ith, nth, &i0, &i1);
    if (i0 < i1) j->fn(j->ctx, i0, i1);
}

void tpool_for(tpool *p, int n, int align, tpool_range_fn fn, void *ctx) {
    if (n <= 0) return;
    if (align < 1) align = 1;
    if (tpool_size(p) == 1 || n <= align) { fn(ctx, 0, n); return; }
    for_job j = {fn, ctx, n, align};
    tpool_run(p, for_thread, &j);
}
