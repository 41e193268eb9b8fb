/* A small persistent thread pool for the trainer: run one function on every thread, wait. */
#ifndef ULM_TRAIN_POOL_H
#define ULM_TRAIN_POOL_H

typedef struct tpool tpool;
/* fn(ctx, ith, nth) runs once on each of the nth threads; the caller is thread 0. */
typedef void (*tpool_fn)(void *ctx, int ith, int nth);

tpool *tpool_new(int n_threads); /* n_threads <= 1: everything runs on the caller */
void tpool_free(tpool *p);
int tpool_size(const tpool *p);
void tpool_run(tpool *p, tpool_fn fn, void *ctx);

/* fn(ctx, i0, i1) over [0, n) in contiguous shares of multiples of `align`, one per thread
 * (inline on the caller when n <= align). For loops whose items are independent: the result
 * does not depend on the thread count. */
typedef void (*tpool_range_fn)(void *ctx, int i0, int i1);
void tpool_for(tpool *p, int n, int align, tpool_range_fn fn, void *ctx);

/* [*b0, *b1): the share of n items (in multiples of `align`) for thread ith of nth. */
void tpool_split(int n, int align, int ith, int nth, int *b0, int *b1);
#endif
