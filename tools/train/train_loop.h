/* The training loop behind `ulm train`, callable from tests: data in, .ulm out. */
#ifndef ULM_TRAIN_LOOP_H
#define ULM_TRAIN_LOOP_H
#include <stdio.h>
#include "train_data.h"
#include "train_model.h"

/* Matrix products: f32, or bf16 operands with f32 sums on AMX or AVX512-BF16 (mixed precision:
 * weights, gradients and optimizer state stay f32); auto = bf16 where the CPU has either. */
typedef enum { TRAIN_PREC_F32 = 0, TRAIN_PREC_BF16, TRAIN_PREC_AUTO } train_precision;

typedef struct train_run_opts {
    const train_set *train, *val; /* val may be NULL */
    const train_tok *tok;
    train_opt opt;
    int steps, batch;             /* optimizer steps; examples per step */
    uint64_t seed;
    int threads;
    train_precision precision;    /* TRAIN_PREC_BF16 fails where the CPU has neither */
    int log_every, eval_every, val_examples;
    const char *checkpoint;       /* written every checkpoint_every steps and at the end (may be NULL) */
    int checkpoint_every;
    int stop_after;               /* > 0: stop (after checkpointing) once this step is reached: tests */
    const char *stop_file;        /* stop (after checkpointing) at the first step end where this file
                                     exists: make models hands the run to two threads when haiku is done */
    int average_from;             /* > 0: keep m->avg, the mean of the weights after each step past
                                     this one (tail averaging, which evens out the noise of small
                                     batches); 0 = off */
    float prompt_loss;            /* > 0: also train on the prompt's tokens (the input), each
                                     weighted so against an output token; 0 = off */
    FILE *log;                    /* progress lines; NULL = silent */
} train_run_opts;

typedef struct train_run_result {
    double last_loss, val_loss; /* mean loss per target token of the last step / last evaluation */
    double avg_val_loss;        /* the same for the averaged weights at the end (NAN: none) */
    double tokens_per_s;
    long tokens;
    int steps_done;
} train_run_result;

/* Trains m in place from step `start_step` (0, or a checkpoint's step) up to opts->steps. */
ulm_status train_run(train_model *m, int start_step, const train_run_opts *o, train_run_result *res,
                     ulm_error *err);
/* Mean loss per target token over examples [0, n) of s. */
ulm_status train_eval_loss(train_model *m, train_ws *ws, const train_set *s, int n, double *loss, ulm_error *err);
#endif
