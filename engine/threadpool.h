/* A fixed pool of worker threads owned by a context. tp_run runs fn on every thread (the
 * caller is thread 0) and returns when all are done: a fork-join barrier, no allocation. */
#ifndef ULM_THREADPOOL_H
#define ULM_THREADPOOL_H

typedef struct threadpool threadpool;
typedef void (*tp_fn)(void *arg, int ith, int nth);

threadpool *tp_new(int n_threads); /* NULL on failure; n_threads >= 1 */
void tp_free(threadpool *tp);
int tp_size(const threadpool *tp);
void tp_run(threadpool *tp, tp_fn fn, void *arg);

#endif
