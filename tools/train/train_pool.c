/* Persistent workers waiting on a generation counter; a NULL pool or one thread runs inline. */
#include <pthread.h>
#include <stdlib.h>
#include "train_pool.h"

struct tpool {
    int n;
    pthread_t *th;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    unsigned gen;
    int pending, quit;
    tpool_fn fn;
    void *ctx;
};

typedef struct { tpool *p; int ith; } worker_arg;

static void *worker(void *arg) {
    worker_arg *wa = arg;
    tpool *p = wa->p;
    int ith = wa->ith;
    free(wa);
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        while (p->gen == seen && !p->quit) pthread_cond_wait(&p->wake, &p->mu);
        if (p->quit) { pthread_mutex_unlock(&p->mu); return NULL; }
        seen = p->gen;
        tpool_fn fn = p->fn;
        void *ctx = p->ctx;
        pthread_mutex_unlock(&p->mu);
        fn(ctx, ith, p->n);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
        pthread_mutex_unlock(&p->mu);
    }
}

tpool *tpool_new(int n_threads) {
    tpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->n = n_threads < 1 ? 1 : n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (p->n > 1) {
        p->th = calloc((size_t)p->n, sizeof *p->th);
        if (!p->th) { free(p); return NULL; }
        for (int i = 1; i < p->n; i++) {
            worker_arg *wa = malloc(sizeof *wa);
            if (wa) { wa->p = p; wa->ith = i; }
            if (!wa || pthread_create(&p->th[i], NULL, worker, wa)) {
                free(wa);
                p->n = i; /* run with the threads we got */
                break;
            }
        }
    }
    return p;
}

void tpool_free(tpool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i < p->n; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->th);
    free(p);
}

int tpool_size(const tpool *p) { return p ? p->n : 1; }

void tpool_run(tpool *p, tpool_fn fn, void *ctx) {
    if (!p || p->n == 1) { fn(ctx, 0, 1); return; }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    fn(ctx, 0, p->n);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
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
    if (!p || p->n == 1 || n <= align) { fn(ctx, 0, n); return; }
    for_job j = {fn, ctx, n, align};
    tpool_run(p, for_thread, &j);
}
