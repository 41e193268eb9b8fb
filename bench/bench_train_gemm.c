/* Trainer GEMM throughput for the shapes of a ~2M-parameter model (N = tokens per step).
 *   make && cc -O2 -Iengine -Ikernels -Iformats -Itools bench/bench_train_gemm.c build/obj/tools_lib.a \
 *        build/libulm.a -lm -lpthread -o build/bench_train_gemm && build/bench_train_gemm [threads]
 * Prints GFLOP/s per shape for forward (X W^T), dX (dY W) and dW (dY^T X). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "train/train_gemm.h"

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    tpool *pool = tpool_new(threads);
    tgemm *g = tgemm_new(pool);
    static const int shapes[][3] = {{2048, 192, 192}, {2048, 512, 192}, {2048, 192, 512}, {1024, 259, 192}};
    printf("kernel %s, %d thread(s)\n", tgemm_kernel_name(g), threads);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        int N = shapes[s][0], out = shapes[s][1], in = shapes[s][2];
        float *x = calloc((size_t)N * in, 4), *w = calloc((size_t)out * in, 4), *y = calloc((size_t)N * out, 4);
        for (size_t i = 0; i < (size_t)N * in; i++) x[i] = (float)(i % 7) * 0.1f;
        for (size_t i = 0; i < (size_t)out * in; i++) w[i] = (float)(i % 5) * 0.1f;
        const char *names[3] = {"fwd  X W^T", "dX   dY W ", "dW   dY^T X"};
        for (int kind = 0; kind < 3; kind++) {
            int reps = 0;
            double t0 = now(), t;
            do {
                if (kind == 0) tgemm_run(g, N, out, in, x, in, 0, w, in, 1, y, out, 0);
                else if (kind == 1) tgemm_run(g, N, in, out, y, out, 0, w, in, 0, x, in, 0);
                else tgemm_run(g, out, in, N, y, out, 1, x, in, 0, w, in, 1);
                reps++;
                t = now() - t0;
            } while (t < 0.3);
            printf("N %5d out %4d in %4d  %s  %6.1f GFLOP/s\n", N, out, in, names[kind],
                   2.0 * N * out * in * reps / t * 1e-9);
        }
        free(x); free(w); free(y);
    }
    tgemm_free(g);
    tpool_free(pool);
    return 0;
}
