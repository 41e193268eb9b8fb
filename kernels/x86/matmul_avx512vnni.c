/* AVX-512 VNNI: q8/q4 with vpdpbusd (body: matmul_avx512_body.h; reference:
 * kernels/ref/matmul_ref.c); float weights are the plain AVX-512 kernels. */
#define ULM_VNNI 1
#include "matmul_avx512_body.h"

void ulm_matmul_avx512vnni(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy, int r0,
                        int r1) {
    if (dt == ULM_DT_Q8_R16 || dt == ULM_DT_Q4_R16) {
        ulm_matmul_r16_vnni(dt, w, xprep, n, k, y, ldy, r0, r1);
        return;
    }
    ulm_tile_fn f = dt == ULM_DT_Q8 ? tile_q8 : dt == ULM_DT_Q4 ? tile_q4 : NULL;
    if (!f) {
        ulm_matmul_avx512(dt, w, xprep, n, k, y, ldy, r0, r1);
        return;
    }
    ulm_matmul_tiled(f, MR, NR, w, ulm_dtype_row_bytes(dt, (uint64_t)k), xprep, ulm_prepared_row_bytes(dt, k), n, k,
                     y, ldy, r0, r1);
}

static size_t prepare_size(ulm_dtype dt, int n, int k) { return ulm_prepare_size_common(dt, n, k); }

const ulm_kernels ulm_kernels_avx512vnni = {
    .isa = "avx512vnni",
    .prepare_size = prepare_size,
    .prepare_input = ulm_prepare_input_avx2,
    .matmul = ulm_matmul_avx512vnni,
    ULM_OPS_AVX512,
};
