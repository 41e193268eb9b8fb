/* bench/kernels: matmul throughput per ISA and weight format, beside the streaming read
 * bandwidth this program measures on the same machine. A benchmark, not a test.
 *
 *   build/bench_kernels [--isa NAME] [--fmt NAME] [--quick] [--no-matmul] [--prefill]
 *
 * Matrix x vector (decode) on the shapes of the target models and their output projections,
 * with 1 and 2 threads (each thread a contiguous range of rows, as the engine's pool splits
 * them), and matrix x matrix with 128 inputs (prefill). Weights rotate through enough copies
 * that every call streams them from memory (working set >= 512 MiB, well past L3), as a real
 * decode step does; the read bandwidth is measured the same way. prepare_input (quantizing x)
 * runs once per call on the first thread and is inside the timing.
 * GB/s counts weight bytes; GOP/s counts 2 * rows * cols * inputs. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "kernels.h"

#define WORKSET (512u << 20)
#define MIN_SECONDS 0.25

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
/* CPU time of the calling thread: on a shared machine it leaves out time spent descheduled. */
static double cpu_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* ---- a minimal fork/join for 2 threads: the worker spins on a generation counter ---- */
typedef void (*job_fn)(void *arg, int tid, int nthreads);
static struct {
    _Atomic int gen, done, quit, spinning;
    job_fn fn;
    void *arg;
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

/* The worker spins only while 2-thread runs are being timed, and sleeps otherwise, so it takes
 * no core from 1-thread runs. */
static void *worker(void *p) {
    int seen = 0, tid = (int)(intptr_t)p;
    for (;;) {
        int g;
        while ((g = atomic_load(&pool.gen)) == seen && !atomic_load(&pool.quit)) {
            if (!atomic_load(&pool.spinning)) {
                pthread_mutex_lock(&pool.mu);
                while (!atomic_load(&pool.spinning) && !atomic_load(&pool.quit)) pthread_cond_wait(&pool.cv, &pool.mu);
                pthread_mutex_unlock(&pool.mu);
            }
        }
        if (atomic_load(&pool.quit)) return NULL;
        seen = g;
        pool.fn(pool.arg, tid, pool.nthreads);
        atomic_fetch_add(&pool.done, 1);
    }
}

static void set_spinning(int on) {
    pthread_mutex_lock(&pool.mu);
    atomic_store(&pool.spinning, on);
    pthread_cond_broadcast(&pool.cv);
    pthread_mutex_unlock(&pool.mu);
}

static void run_job(job_fn fn, void *arg, int nthreads) {
    pool.fn = fn, pool.arg = arg, pool.nthreads = nthreads;
    atomic_store(&pool.done, 0);
    if (nthreads > 1) atomic_fetch_add(&pool.gen, 1);
    fn(arg, 0, nthreads);
    while (nthreads > 1 && atomic_load(&pool.done) < nthreads - 1) {
    }
}

/* ---- streaming read bandwidth ---- */
typedef uint64_t v4u64 __attribute__((vector_size(32)));
struct readjob {
    const v4u64 *buf;
    size_t n; /* vectors */
    uint64_t sink[2];
};
static void read_job(void *p, int tid, int nt) {
    struct readjob *j = p;
    size_t a = j->n * tid / nt, b = j->n * (tid + 1) / nt;
    v4u64 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    for (size_t i = a; i + 4 <= b; i += 4) s0 += j->buf[i], s1 += j->buf[i + 1], s2 += j->buf[i + 2], s3 += j->buf[i + 3];
    v4u64 s = s0 + s1 + s2 + s3;
    j->sink[tid] = s[0] + s[1] + s[2] + s[3];
}

static double read_bw_cpu; /* 1 thread, by CPU time */
static double read_bw_best[3]; /* by the fastest 8 MiB piece (as short as a matmul call) */
static double read_bandwidth(int nthreads) {
    size_t bytes = WORKSET;
    v4u64 *buf = aligned_alloc(64, bytes);
    memset(buf, 1, bytes);
    struct readjob j = {buf, bytes / sizeof(v4u64), {0, 0}};
    double best = 0;
    set_spinning(nthreads > 1);
    for (int rep = 0; rep < 9; rep++) {
        double t = now(), c = cpu_now();
        run_job(read_job, &j, nthreads);
        t = now() - t, c = cpu_now() - c;
        if (bytes / t > best) best = bytes / t;
        if (nthreads == 1 && bytes / c / 1e9 > read_bw_cpu) read_bw_cpu = bytes / c / 1e9;
    }
    const size_t piece = 8u << 20;
    for (int rep = 0; rep < 3; rep++)
        for (size_t off = 0; off + piece <= bytes; off += piece) {
            struct readjob p = {buf + off / sizeof(v4u64), piece / sizeof(v4u64), {0, 0}};
            double t = now();
            run_job(read_job, &p, nthreads);
            t = now() - t;
            if (piece / t / 1e9 > read_bw_best[nthreads]) read_bw_best[nthreads] = piece / t / 1e9;
        }
    set_spinning(0);
    free(buf);
    return best / 1e9;
}

/* ---- matmul ---- */
struct mmjob {
    const ulm_kernels *K;
    ulm_dtype dt;
    const void *w;
    const float *x;
    void *xprep;
    float *y;
    int rows, k, n;
};
static void mm_job(void *p, int tid, int nt) {
    struct mmjob *j = p;
    if (tid == 0 && nt == 1) j->K->prepare_input(j->dt, j->x, j->n, j->k, j->xprep);
    /* as the engine's pool splits rows: chunks of 16 */
    int chunks = (j->rows + 15) / 16, c0 = (int)((long)chunks * tid / nt), c1 = (int)((long)chunks * (tid + 1) / nt);
    int r0 = c0 * 16, r1 = c1 * 16 < j->rows ? c1 * 16 : j->rows;
    j->K->matmul(j->dt, j->w, j->xprep, j->n, j->k, j->y, j->rows, r0, r1);
}

/* Seconds per call, the weights cycling through ncopies copies. */
/* *best_sec: the fastest single call, the figure least disturbed by other load on a shared
 * machine (the call that ran with its core and memory to itself). */
static double time_matmul(struct mmjob *j, uint8_t *copies, size_t wbytes, int ncopies, int nthreads,
                          double *cpu_sec, double *best_sec) {
    int calls = 0, c = 0;
    set_spinning(nthreads > 1);
    double t0 = now(), c0 = cpu_now(), t;
    *best_sec = 1e30;
    do {
        j->w = copies + (size_t)c * wbytes;
        c = (c + 1) % ncopies;
        double t1 = now();
        if (nthreads > 1) j->K->prepare_input(j->dt, j->x, j->n, j->k, j->xprep); /* first thread, serial */
        run_job(mm_job, j, nthreads);
        calls++;
        t = now() - t0;
        if (now() - t1 < *best_sec) *best_sec = now() - t1;
    } while (t < MIN_SECONDS || calls < 2);
    *cpu_sec = (cpu_now() - c0) / calls;
    set_spinning(0);
    return t / calls;
}

static const char *cpu_model(char *buf, size_t n) {
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(buf, n, "unknown");
    if (!f) return buf;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char *c = strchr(line, ':');
        if (c && (!strncmp(line, "model name", 10) || !strncmp(line, "CPU part", 8))) {
            snprintf(buf, n, "%s", c + 2);
            buf[strcspn(buf, "\n")] = 0;
            if (!strncmp(line, "model name", 10)) break;
        }
    }
    fclose(f);
    return buf;
}

static uint32_t rng = 12345;
static float rndf(void) {
    rng = rng * 1664525u + 1013904223u;
    return (float)(rng >> 8) / 16777216.0f - 0.5f;
}

int main(int argc, char **argv) {
    const char *only_isa = NULL, *only_fmt = NULL;
    int quick = 0, do_matmul = 1, hot = 0, do_matvec = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--isa") && i + 1 < argc) only_isa = argv[++i];
        else if (!strcmp(argv[i], "--fmt") && i + 1 < argc) only_fmt = argv[++i];
        else if (!strcmp(argv[i], "--quick")) quick = 1;
        else if (!strcmp(argv[i], "--no-matmul")) do_matmul = 0;
        else if (!strcmp(argv[i], "--hot")) hot = 1; /* one copy: weights stay in cache if they fit */
        else if (!strcmp(argv[i], "--prefill")) do_matvec = 0; /* only the matrix x matrix table */
        else {
            fprintf(stderr, "usage: %s [--isa NAME] [--fmt f32|f16|bf16|q8|q8r16|q4|q4r16] [--quick] [--no-matmul] [--hot] [--prefill]\n", argv[0]);
            return 2;
        }
    }
    char model[256], cmd[1024] = "";
    for (int i = 0; i < argc; i++) snprintf(cmd + strlen(cmd), sizeof cmd - strlen(cmd), "%s%s", i ? " " : "", argv[i]);
    time_t tt = time(NULL);
    char load[128] = "?";
    FILE *lf = fopen("/proc/loadavg", "r");
    if (lf) {
        if (!fgets(load, sizeof load, lf)) load[0] = 0;
        load[strcspn(load, "\n")] = 0;
        fclose(lf);
    }
    printf("command: %s\nmachine: %s, %ld online cpus\nload average at start: %s\ndate: %s", cmd,
           cpu_model(model, sizeof model), sysconf(_SC_NPROCESSORS_ONLN), load, ctime(&tt));

    pthread_t th;
    pthread_create(&th, NULL, worker, (void *)(intptr_t)1);
    double bw[3] = {0, read_bandwidth(1), read_bandwidth(2)};
    printf("streaming read bandwidth (%u MiB buffer, best of 9 passes): 1 thread %.1f GB/s (%.1f GB/s by thread "
           "CPU time), 2 threads %.1f GB/s\nbest 8 MiB piece: 1 thread %.1f GB/s, 2 threads %.1f GB/s\n\n",
           WORKSET >> 20, bw[1], read_bw_cpu, bw[2], read_bw_best[1], read_bw_best[2]);

    const ulm_kernels *isas[8];
    int nisa = 0;
    for (const char *const *nm = ulm_isa_names(); *nm; nm++) {
        const ulm_kernels *K = ulm_kernels_by_name(*nm);
        if (K && (!only_isa || !strcmp(only_isa, *nm))) isas[nisa++] = K;
    }
    static const int shapes[][2] = {{576, 1536}, {1536, 576}, {640, 2048}, {2048, 8192}, {49152, 576}, {262144, 640}};
    int nshapes = quick ? 4 : 6;
    static const ulm_dtype fmts[] = {ULM_DT_Q8, ULM_DT_Q8_R16, ULM_DT_Q4, ULM_DT_Q4_R16, ULM_DT_F16, ULM_DT_BF16,
                                     ULM_DT_F32};

    printf("## matrix x vector (rows x cols, weights streamed from memory)\n\n");
    printf("GB/s and %% by wall time over all calls ('best': the fastest single call) against the read\n"
           "bandwidth of the same thread count; 'cpu' columns (1 thread) by the thread's CPU time, against\n"
           "the read bandwidth measured the same way.\n\n");
    printf("| isa | fmt | rows x cols | MB | threads | us/call | GB/s | GOP/s | %% of read BW | best GB/s | best %% "
           "| cpu GB/s | cpu %% |\n");
    printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            if (!do_matmul) break;
            printf("\n## matrix x matrix, 128 inputs (prefill), 1 thread\n\n");
            printf("| isa | fmt | rows x cols | MB | threads | ms/call | GB/s | GOP/s | best GOP/s | cpu GOP/s |\n"
                   "|---|---|---|---|---|---|---|---|---|---|\n");
        }
        for (int s = 0; s < (pass ? 4 : do_matvec ? nshapes : 0); s++)
            for (size_t f = 0; f < sizeof fmts / sizeof *fmts; f++) {
                ulm_dtype dt = fmts[f];
                if (only_fmt && strcmp(only_fmt, ulm_dtype_name(dt))) continue;
                int rows = shapes[s][0], k = shapes[s][1], n = pass ? 128 : 1;
                size_t wbytes = (size_t)rows * ulm_dtype_row_bytes(dt, (uint64_t)k);
                int ncopies = hot ? 1 : (int)((WORKSET + wbytes - 1) / wbytes);
                uint8_t *copies = malloc(wbytes * ncopies);
                float *row = malloc((size_t)k * sizeof(float)), *x = malloc((size_t)n * k * sizeof(float));
                size_t rb = ulm_dtype_row_bytes(dt, (uint64_t)k);
                ulm_dtype plain = ulm_dtype_plain(dt);
                uint8_t *pw = plain != dt ? malloc(wbytes) : copies; /* interleaved: quantize, then repack */
                for (int r = 0; r < rows; r++) {
                    for (int j = 0; j < k; j++) row[j] = rndf();
                    ulm_quantize_row(plain, row, pw + (size_t)r * rb, k);
                }
                if (pw != copies) ulm_interleave_rows(plain, pw, (uint64_t)rows, (uint64_t)k, copies), free(pw);
                for (int c = 1; c < ncopies; c++) memcpy(copies + (size_t)c * wbytes, copies, wbytes);
                for (int j = 0; j < n * k; j++) x[j] = rndf();
                float *y = malloc((size_t)n * rows * sizeof(float));
                for (int t = 0; t < nisa; t++) {
                    const ulm_kernels *K = isas[t];
                    void *xprep = malloc(K->prepare_size(dt, n, k));
                    struct mmjob j = {K, dt, copies, x, xprep, y, rows, k, n};
                    for (int nt = 1; nt <= (pass ? 1 : 2); nt++) {
                        if (pass && !strcmp(K->isa, "scalar") && (quick || s == 3)) continue; /* minutes */
                        double csec, bsec, sec = time_matmul(&j, copies, wbytes, ncopies, nt, &csec, &bsec);
                        double gbs = wbytes / sec / 1e9, gops = 2.0 * rows * k * n / sec / 1e9;
                        if (!pass)
                        {
                            printf("| %s | %s | %dx%d | %.1f | %d | %.1f | %.1f | %.1f | %.0f%% | %.1f | %.0f%% |",
                                   K->isa, ulm_dtype_name(dt), rows, k, wbytes / 1e6, nt, sec * 1e6, gbs, gops,
                                   100 * gbs / bw[nt], wbytes / bsec / 1e9, 100 * wbytes / bsec / 1e9 / read_bw_best[nt]);
                            if (nt == 1) printf(" %.1f | %.0f%% |\n", wbytes / csec / 1e9, 100 * wbytes / csec / 1e9 / read_bw_cpu);
                            else printf(" | |\n");
                        }
                        else
                            printf("| %s | %s | %dx%d | %.1f | %d | %.2f | %.1f | %.1f | %.1f | %.1f |\n", K->isa,
                                   ulm_dtype_name(dt), rows, k, wbytes / 1e6, nt, sec * 1e3, gbs, gops,
                                   2.0 * rows * k * n / bsec / 1e9, 2.0 * rows * k * n / csec / 1e9);
                        fflush(stdout);
                    }
                    free(xprep);
                }
                free(copies), free(row), free(x), free(y);
            }
    }
    atomic_store(&pool.quit, 1);
    set_spinning(0);
    pthread_join(th, NULL);
    return 0;
}
