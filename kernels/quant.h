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
 * quantizer; every ISA produces the reference's bytes; a block holding an inf or NaN gets scale
 * NaN and zero quants, so the outputs reading it are NaN), and each block's dot product is an
 * exact int32 sum scaled by d_w * d_x. The weights are read in this layout directly, so GGUF
 * tensors are used as they lie in the file.
 *
 * Q8_R16 and Q4_R16: the same blocks, 16 rows interleaved (written once by `ulm convert`,
 * never at load time). A tensor of rows x cols (rows a multiple of 16) is rows/16 groups, each
 * cols/32 group blocks back to back; group block b of group g holds block b of rows 16g..16g+15:
 *
 *   block_q8x16, 544 bytes    byte 2r..2r+1: d of row r (r = 0..15), IEEE half
 *                             byte 32 + 64*(m/4) + 4*r + m%4: qs[m] of row r  (m = 0..31)
 *   block_q4x16, 288 bytes    byte 2r..2r+1: d of row r
 *                             byte 32 + 64*(m/4) + 4*r + m%4: byte m of row r's block_q4
 *                             (elements m and m+16 in its low and high nibble; m = 0..15)
 *
 * i.e. the scales of 16 rows side by side, then the quants in runs of 4 bytes per row. A
 * 64-byte line thus holds 4 consecutive quant bytes of each of the 16 rows, which is one
 * vpdpbusd (16 int32 lanes, one per row) against 4 input bytes broadcast, an AMX B tile row,
 * or four sdot by element on NEON: the dot products of 16 rows come out in 16 lanes with no
 * horizontal sums and one scale conversion per 16 blocks. Per row the bytes and the
 * arithmetic are those of Q8 / Q4 (same size, same results: the reference matmul reads either
 * layout and gives bit-identical outputs).
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
    ULM_DT_Q8_R16 = 7, /* Q8 with 16 rows interleaved (block_q8x16) */
    ULM_DT_Q4_R16 = 8, /* Q4 with 16 rows interleaved (block_q4x16) */
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

#define ULM_R16 16 /* rows per interleaved group */
#define ULM_F16_NAN 0x7e00 /* the scale of a q8 block quantized from an inf or NaN */

typedef struct {
    uint16_t d[ULM_R16];
    int8_t qs[ULM_R16 * QK]; /* [QK/4][16 rows][4] */
} block_q8x16;               /* 544 bytes */

typedef struct {
    uint16_t d[ULM_R16];
    uint8_t qs[ULM_R16 * QK / 2]; /* [QK/8][16 rows][4] */
} block_q4x16;                    /* 288 bytes */

_Static_assert(sizeof(block_q8) == 34, "block_q8 must be packed like GGUF Q8_0");
_Static_assert(sizeof(block_q8x16) == 16 * 34 && sizeof(block_q4x16) == 16 * 18, "16 blocks, no padding");
_Static_assert(sizeof(block_q4) == 18, "block_q4 must be packed like GGUF Q4_0");

const char *ulm_dtype_name(ulm_dtype dt);
int ulm_dtype_from_name(const char *name); /* -1 if unknown */
/* Bytes of one row of `cols` values, 0 if cols is not a multiple of the block size. For the
 * interleaved dtypes a row is not contiguous: this is the tensor's size divided by its rows. */
size_t ulm_dtype_row_bytes(ulm_dtype dt, uint64_t cols);
int ulm_dtype_is_weight(ulm_dtype dt);
/* Rows a tensor of dtype dt must come in multiples of (16 for _R16, else 1). */
int ulm_dtype_row_group(ulm_dtype dt);
/* Q8 -> Q8_R16, Q4 -> Q4_R16; any other dtype is returned as is. */
ulm_dtype ulm_dtype_interleaved(ulm_dtype dt);
/* The plain dtype an interleaved one is made of (Q8_R16 -> Q8, Q4_R16 -> Q4), else dt. */
ulm_dtype ulm_dtype_plain(ulm_dtype dt);

/* Repack rows x cols of plain Q8/Q4 (row-major blocks) into the _R16 layout and back.
 * 0 on success, -1 if dt is not Q8/Q4, rows % 16 or cols % 32. in and out must not overlap. */
int ulm_interleave_rows(ulm_dtype plain, const void *in, uint64_t rows, uint64_t cols, void *out);
/* The same into a new malloc'd buffer; NULL when the shape does not allow it (or out of memory). */
void *ulm_interleave_rows_new(ulm_dtype plain, const void *in, uint64_t rows, uint64_t cols);
int ulm_deinterleave_rows(ulm_dtype plain, const void *in, uint64_t rows, uint64_t cols, void *out);
/* Row r of a tensor (any weight dtype, interleaved ones included) as floats: the embedding
 * lookup for a tensor that may be stored interleaved. */
void ulm_dequantize_row_at(ulm_dtype dt, const void *data, uint64_t cols, uint64_t r, float *out);

/* Reference (de)quantization of one row; cols must be a multiple of QK for Q8/Q4. */
void ulm_quantize_row(ulm_dtype dt, const float *x, void *out, int cols);
void ulm_dequantize_row(ulm_dtype dt, const void *in, float *out, int cols);

#endif
