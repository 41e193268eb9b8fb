/* Weight formats. Each dtype's row layout is defined here; the struct layout is the spec.
 *
 *   F32   float[cols]
 *   F16   IEEE binary16[cols]
 *   BF16  bfloat16[cols] (top 16 bits of an f32)
 *   Q8    block_q8[cols/32]: value = d * qs[j]            (bit-compatible with GGUF Q8_0)
 *   Q4    block_q4[cols/32]: value = d * (nibble - 8); qs[j] holds element j in its low
 *         nibble and element j+16 in its high nibble       (bit-compatible with GGUF Q4_0)
 *
 * Q8 and Q4 in detail (a row is cols/32 blocks back to back, no padding, no alignment):
 *
 *   block_q8, 34 bytes        byte 0-1: d, IEEE half, little-endian
 *                             byte 2+j: qs[j], int8, element j (j = 0..31)
 *   block_q4, 18 bytes        byte 0-1: d, IEEE half, little-endian
 *                             byte 2+j: element j in bits 0-3, element j+16 in bits 4-7 (j = 0..15)
 *
 * Quantizing (ulm_quantize_row, as GGUF's reference quantizers): q8 takes d = max|x|/127 and
 * q = roundf(x/d), so q is in [-127, 127]; q4 takes d = m/-8 where m is the value of largest
 * magnitude (so it maps to nibble 0 exactly) and nibble = min(15, (int)(x/d + 8.5)).
 * Kernels accept any int8 in a q8 block (-128 included) and any f16 scale; a non-finite scale
 * makes the outputs that read that block non-finite (inf or NaN, which one is unspecified).
 *
 * Activations multiplying q8 or q4 weights are quantized to block_q8 by prepare_input (same
 * quantizer; every ISA produces the reference's bytes), and each block's dot product is an
 * exact int32 sum scaled by d_w * d_x. The weights are read in this layout directly: no
 * interleaved repacking, so GGUF tensors are used as they lie in the file.
 */
#ifndef ULM_QUANT_H
#define ULM_QUANT_H
#include <stddef.h>
#include <stdint.h>

typedef enum {
    ULM_DT_F32 = 0,
    ULM_DT_F16 = 1,
    ULM_DT_BF16 = 2,
    ULM_DT_Q8 = 3,
    ULM_DT_Q4 = 4,
    ULM_DT_I32 = 5, /* plain integer data (not a weight) */
    ULM_DT_U8 = 6,
    ULM_DT_COUNT
} ulm_dtype;

#define QK 32 /* values per quant block */

typedef struct {
    uint16_t d;      /* f16 scale */
    int8_t qs[QK];
} block_q8;          /* 34 bytes */

typedef struct {
    uint16_t d;      /* f16 scale */
    uint8_t qs[QK / 2];
} block_q4;          /* 18 bytes */

_Static_assert(sizeof(block_q8) == 34, "block_q8 must be packed like GGUF Q8_0");
_Static_assert(sizeof(block_q4) == 18, "block_q4 must be packed like GGUF Q4_0");

const char *ulm_dtype_name(ulm_dtype dt);
int ulm_dtype_from_name(const char *name); /* -1 if unknown */
/* Bytes of one row of `cols` values, 0 if cols is not a multiple of the block size. */
size_t ulm_dtype_row_bytes(ulm_dtype dt, uint64_t cols);
int ulm_dtype_is_weight(ulm_dtype dt);

/* Reference (de)quantization of one row; cols must be a multiple of QK for Q8/Q4. */
void ulm_quantize_row(ulm_dtype dt, const float *x, void *out, int cols);
void ulm_dequantize_row(ulm_dtype dt, const void *in, float *out, int cols);

#endif
