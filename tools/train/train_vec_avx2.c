/* train_vec_body.h built with -mavx2 (Makefile, by file name); called only when the CPU has it. */
#define TV(name) name##_avx2
#include "train_vec_body.h"

const train_vec train_vec_avx2 = {"avx2", tv_exp_avx2, tv_softmax_avx2, tv_softmax_bwd_avx2, tv_silu_glu_fwd_avx2,
                                   tv_silu_glu_bwd_avx2, tv_xent_row_avx2, tv_adamw_avx2};
