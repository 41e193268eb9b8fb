/* Kernels: arithmetic on buffers, nothing else (no models, files or tokens).
 *
 * Every operation has a scalar reference in kernels/ref/ that is its specification. SIMD
 * variants live in kernels/x86/ and kernels/arm/, one file per ISA, implementing the same
 * signatures; kernels/cpu.c picks the best table at run time (ULM_ISA=... forces one).
 *
 * Matrices are row-major [rows][cols]; a weight row is `cols` values in its dtype's layout
 * (see quant.h). Matmul computes, for output rows r in [r0, r1) and inputs i in [0, n):
 *     y[i*ldy + r] = sum_k W[r][k] * x[i][k]
 * where x has first been converted by `prepare_input` into the form that dtype's kernel
 * reads (f32 copy, q8 blocks, ...), so threads splitting the rows share one conversion.
 * Every table prepares the same bytes (the reference's), so one table's prepared input is
 * valid for another's matmul.
 *
 * How SIMD tables agree with the scalar one (tests/test_kernels.c checks each):
 *  - prepare_input: bit-identical.
 *  - matmul: the q8/q4 per-block int32 dot and the f16/bf16 widening are exact in every
 *    table, so on data where all partial sums are representable the outputs are identical.
 *    In general the float terms are summed in another order (lanes, fused multiply-add):
 *    |y - y_ref| <= (terms + 4) * FLT_EPSILON * sum_j |w_j x_j| (terms = k, or k/32 + 16).
 *  - matmul never allocates and only writes y[i*ldy + r] for r in [r0, r1), so threads may
 *    split one call's rows; each SIMD file names its scalar reference in its header comment.
 */
#ifndef ULM_KERNELS_H
#define ULM_KERNELS_H
#include <stddef.h>
#include <stdint.h>
#include "quant.h"

typedef struct ulm_kernels {
    const char *isa; /* "scalar", "avx2", "avx512", "avx512vnni", "amx", "neon", "neon-dotprod", ... */

    /* Bytes of prepared input for n rows of k values of a weight of dtype dt: n times the bytes
     * of one row, so rows prepared by separate calls can be laid side by side. */
    size_t (*prepare_size)(ulm_dtype dt, int n, int k);
    void (*prepare_input)(ulm_dtype dt, const float *x, int n, int k, void *out);
    /* y[i*ldy + r] for r in [r0,r1), i in [0,n). */
    void (*matmul)(ulm_dtype dt, const void *w, const void *xprep, int n, int k, float *y, int ldy,
                   int r0, int r1);

    /* Small ops: the k_* functions below (their specification), vectorized. Elementwise ops and
     * rope_apply are bit-identical to the reference in every table; rmsnorm, softmax and dot sum
     * in another order, and the SIMD exp (softmax, swiglu, geglu) is a polynomial: within 4 ulp
     * per element of the reference's, plus the summation bound of kernels.h for the sums.
     * Never allocate; in-place calls (out == x or g) are allowed where the reference allows them. */
    void (*rmsnorm)(float *out, const float *x, const float *w, int n, float eps, float w_offset);
    void (*softmax)(float *x, int n);
    float (*dot)(const float *a, const float *b, int n);
    void (*axpy)(float *y, float a, const float *x, int n);
    void (*add)(float *y, const float *x, int n);
    void (*scale)(float *y, float s, int n);
    void (*swiglu)(float *out, const float *g, const float *u, int n);
    void (*geglu)(float *out, const float *g, const float *u, int n);
    /* k_rope with the angles precomputed by k_rope_cs (once per position, for every head). */
    void (*rope_apply)(float *x, int hd, int rot_dim, int interleaved, const float *cs);
    /* y += w[t] * x[t] for t = 0..m-1 in that order, each a rounded multiply then add (m axpy
     * calls, bit for bit; the y values stay in registers across the m rows): attention's
     * weights times value rows. */
    void (*axpy_rows)(float *y, const float *w, const float *const *x, int m, int n);
    /* out[i] = x[i] as f32 (exact; a NaN stays NaN, maybe quieted): the f16 KV cache rows
     * attention reads. */
    void (*f16_to_f32)(float *out, const uint16_t *x, int n);
    /* out[i] = x[i] rounded to f16, to nearest even (a NaN stays NaN): KV cache stores. */
    void (*f32_to_f16)(uint16_t *out, const float *x, int n);
} ulm_kernels;

/* Tables. Only those of the build's architecture exist (kernels/x86 or kernels/arm is linked);
 * calling one the CPU lacks faults, so go through ulm_kernels_by_name / ulm_kernels_best. */
extern const ulm_kernels ulm_kernels_scalar;
#if defined(__x86_64__)
extern const ulm_kernels ulm_kernels_avx2, ulm_kernels_avx512, ulm_kernels_avx512vnni, ulm_kernels_amx;
#elif defined(__aarch64__)
extern const ulm_kernels ulm_kernels_neon, ulm_kernels_neon_dotprod, ulm_kernels_neon_i8mm;
#endif

/* The best table this CPU supports, or the one named by ULM_ISA (NULL if that ISA is unknown,
 * not built, or not supported by this CPU). */
const ulm_kernels *ulm_kernels_best(void);
/* The table named isa if this build has it and this CPU runs it, else NULL. */
const ulm_kernels *ulm_kernels_by_name(const char *isa);
/* Every ISA name ulm knows, NULL-terminated (for listing and tests; most are not available). */
const char *const *ulm_isa_names(void);

/* ---- small ops (scalar reference; hot enough to vectorize later) ---- */
/* out[i] = x[i] / rms(x) * (w[i] + w_offset); w_offset is 1 for Gemma's (1 + w) convention. */
void k_rmsnorm(float *out, const float *x, const float *w, int n, float eps, float w_offset);
void k_softmax(float *x, int n);
/* Rotate pairs of one head of size hd at position pos. interleaved: (x[2i],x[2i+1]) (llama2.c,
 * GGUF llama); else NeoX halves (x[i], x[i+hd/2]). freq_i = pos * base^(-2i/rot_dim). */
void k_rope(float *x, int hd, int rot_dim, int pos, float base, int interleaved, const float *freq_factors);
/* out[i] = silu(g[i]) * u[i]  and  gelu_tanh(g[i]) * u[i] */
/* cs[i] = cos(pos * freq_i), cs[rot_dim/2 + i] = sin(pos * freq_i) for i < rot_dim/2 (freq_i as
 * in k_rope; rot_dim floats); k_rope_apply(x, ..., cs) then gives exactly k_rope(x, ..., pos,
 * base, ...). */
void k_rope_cs(float *cs, int rot_dim, int pos, float base, const float *freq_factors);
void k_rope_apply(float *x, int hd, int rot_dim, int interleaved, const float *cs);
/* k_rope_apply on the pairs i >= from only (the SIMD versions' scalar tail). */
void k_rope_apply_from(float *x, int hd, int rot_dim, int interleaved, const float *cs, int from);
void k_swiglu(float *out, const float *g, const float *u, int n);
void k_geglu(float *out, const float *g, const float *u, int n);
void k_add(float *y, const float *x, int n);          /* y += x */
void k_scale(float *y, float s, int n);               /* y *= s */
float k_dot_f32(const float *a, const float *b, int n);
void k_axpy(float *y, float a, const float *x, int n); /* y += a*x */
void k_f16_to_f32(float *out, const uint16_t *x, int n);
void k_f32_to_f16(uint16_t *out, const float *x, int n);
void k_axpy_rows(float *y, const float *w, const float *const *x, int m, int n);

/* f16 / bf16 scalar conversions (IEEE half: subnormals, inf and NaN kept). */
float ulm_f16_to_f32(uint16_t h);
uint16_t ulm_f32_to_f16(float f);
float ulm_bf16_to_f32(uint16_t h);
uint16_t ulm_f32_to_bf16(float f);

#endif
