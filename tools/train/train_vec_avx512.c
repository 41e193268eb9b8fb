/* train_vec_body.h built with -mavx512 (Makefile, by file name); called only when the CPU has it. */
#define TV(name) name##_avx512
#include "train_vec_body.h"

const train_vec train_vec_avx512 = {"avx512", tv_exp_avx512, tv_softmax_avx512, tv_softmax_bwd_avx512, tv_silu_glu_fwd_avx512,
                                   tv_silu_glu_bwd_avx512, tv_xent_row_avx512, tv_adamw_avx512};
