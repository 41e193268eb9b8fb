/* The trainer's f32 matrix multiply: C = A·B (+ C), blocked and packed (GotoBLAS-style), with
 * an AVX-512 / AVX2+FMA micro-kernel picked at run time and a portable C one otherwise.
 * Threads split C by rows or columns, so each element is summed by one thread in the same
 * k order whatever the thread count: results do not depend on the number of threads. */
#ifndef ULM_TRAIN_GEMM_H
#define ULM_TRAIN_GEMM_H
#include "train_pool.h"

typedef struct tgemm tgemm;

/* The f32 SIMD kernels' rounding, their specification to the bit: each element of C is
 * summed in blocks of TGEMM_KC values of k; within a block one fused multiply-add chain from
 * +0 in k order (s = fma(A(m,k), B(k,n), s)); blocks are added to C in order (C = s + C; the
 * first block is stored as it is unless accumulating). Every SIMD build and thread count gives
 * those bits, so training is reproducible across x86 machines (test_gemm_f32_is_fma_blocks).
 * The portable kernel multiplies and adds separately. */
#define TGEMM_KC 256

tgemm *tgemm_new(tpool *pool); /* pool may be NULL (one thread); keeps per-thread pack buffers */
void tgemm_free(tgemm *g);
const char *tgemm_kernel_name(const tgemm *g);
/* Mixed precision (on = 1): tgemm_run rounds A and B to bf16 and sums in f32, on AMX tiles
 * (train_gemm_amx.c) or else with AVX512-BF16 dot products; tgemm_run_local stays f32.
 * Returns 0, leaving the GEMM f32, where the CPU has neither. on = 0 goes back to f32. */
int tgemm_set_bf16(tgemm *g, int on);
/* Forces the portable kernel (tests compare it against the SIMD one). */
void tgemm_force_portable(tgemm *g);

/* C[M,N] = A·B + (accumulate ? C : 0), all row-major.
 * A(m,k) = transA ? A[k*lda + m] : A[m*lda + k];  B(k,n) = transB ? B[n*ldb + k] : B[k*ldb + n]. */
void tgemm_run(tgemm *g, int M, int N, int K, const float *A, int lda, int transA, const float *B, int ldb,
               int transB, float *C, int ldc, int accumulate);
/* The same on the calling thread alone, with the buffers of pool thread ith: for products made
 * inside a tpool_run job (attention, one segment and head per call). */
void tgemm_run_local(tgemm *g, int ith, int M, int N, int K, const float *A, int lda, int transA, const float *B,
                     int ldb, int transB, float *C, int ldc, int accumulate);
#endif
