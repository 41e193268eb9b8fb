/* NEON with the dot product extension (sdot): q8/q4 (body: matmul_neon_body.h; reference:
 * kernels/ref/matmul_ref.c). Float weights use the plain NEON kernels, Q8_R16/Q4_R16
 * matmul_r16_dotprod.c. */
#define ULM_DOTPROD 1
#include "matmul_neon_body.h"

void ulm_matmul_neon_dotprod(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy,
                             int r0, int r1) {
    if (dt == ULM_DT_Q8_R16 || dt == ULM_DT_Q4_R16) { /* interleaved rows: matmul_r16_dotprod.c */
        ulm_matmul_r16_dotprod(dt, w, xprep, n, k, y, ldy, r0, r1);
        return;
    }
    ulm_tile_fn f = dt == ULM_DT_Q8 ? tile_q8 : dt == ULM_DT_Q4 ? tile_q4 : NULL;
    if (!f) {
        ulm_matmul_neon(dt, w, xprep, n, k, y, ldy, r0, r1);
        return;
    }
    ulm_matmul_tiled(f, 1, NR, w, ulm_dtype_row_bytes(dt, (uint64_t)k), xprep, ulm_prepared_row_bytes(dt, k), n, k,
                     y, ldy, r0, r1);
}

static size_t prepare_size(ulm_dtype dt, int n, int k) { return ulm_prepare_size_common(dt, n, k); }

const ulm_kernels ulm_kernels_neon_dotprod = {
    .isa = "neon-dotprod",
    .prepare_size = prepare_size,
    .prepare_input = ulm_prepare_input_neon,
    .matmul = ulm_matmul_neon_dotprod,
    ULM_OPS_NEON,
};
