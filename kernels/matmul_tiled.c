/* Tile driver shared by the SIMD matmuls (see matmul_tiled.h). Plain C: no ISA flags. */
#include "matmul_tiled.h"
#include "quant.h"

size_t ulm_prepared_row_bytes(int dt, int k) {
    if (dt == ULM_DT_Q8 || dt == ULM_DT_Q4 || dt == ULM_DT_Q8_R16 || dt == ULM_DT_Q4_R16)
        return ulm_dtype_row_bytes(ULM_DT_Q8, (uint64_t)k);
    return (size_t)k * sizeof(float);
}

size_t ulm_prepare_size_common(int dt, int n, int k) { return (size_t)n * ulm_prepared_row_bytes(dt, k); }

void ulm_matmul_tiled(ulm_tile_fn tile, int MR, int NR, const void *w, size_t wrb, const void *x, size_t xrb,
                      int n, int k, float *y, int ldy, int r0, int r1) {
    const uint8_t *W = w, *X = x;
    int chunk = r1 - r0;
    if (n > NR) { /* weights of a chunk stay in L2 while every input tile passes over them */
        size_t rows = ULM_TILE_CHUNK_BYTES / (wrb ? wrb : 1);
        chunk = rows < (size_t)MR ? MR : (int)(rows - rows % (size_t)MR);
    }
    for (int rc = r0; rc < r1; rc += chunk) {
        int re = r1 - rc < chunk ? r1 : rc + chunk;
        for (int i = 0; i < n; i += NR) {
            int nx = n - i < NR ? n - i : NR;
            for (int r = rc; r < re; r += MR) {
                int nr = re - r < MR ? re - r : MR;
                tile(W + (size_t)r * wrb, wrb, nr, X + (size_t)i * xrb, xrb, nx, k, y + (size_t)i * ldy + r, ldy);
            }
        }
    }
}
