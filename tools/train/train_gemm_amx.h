/* The trainer's bf16 AMX product (train_gemm_amx.c), used by tgemm when the trainer runs in
 * mixed precision. x86-64 only; built with AMX flags, so nothing here runs before
 * train_gemm.c's CPU check said yes. */
#ifndef ULM_TRAIN_GEMM_AMX_H
#define ULM_TRAIN_GEMM_AMX_H
#include <stddef.h>

typedef struct { /* as tgemm_run's arguments */
    int K, lda, ldb, ldc, transA, transB, accumulate;
    const float *A, *B;
    float *C;
} tgemm_amx_job;

/* Bytes of one thread's pack buffer (64-byte aligned). */
size_t tgemm_amx_pack_bytes(void);
/* C[m0:m1, n0:n1] on the calling thread. */
void tgemm_amx_region(const tgemm_amx_job *j, void *pack, int m0, int m1, int n0, int n1);
#endif
