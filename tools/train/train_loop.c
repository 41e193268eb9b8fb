/* The training loop: batches from the set, forward/backward, AdamW, progress and checkpoints. */
#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "train_loop.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void fmt_time(char *buf, size_t n, double s) {
    if (s < 0 || !isfinite(s)) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

ulm_status train_eval_loss(train_model *m, train_ws *ws, const train_set *s, int n, double *loss, ulm_error *err) {
    train_batch b = {0};
    double sum = 0;
    long count = 0;
    ulm_status st = ULM_OK;
    if (n > s->n) n = s->n;
    for (int i = 0; i < n && !st; i += 64) {
        if (train_make_batch_range(s, i, n - i < 64 ? n - i : 64, &b)) {
            st = ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory");
            break;
        }
        double l;
        int nt;
        st = train_forward(m, ws, &b, 0, &l, &nt, NULL, err);
        sum += l;
        count += nt;
    }
    train_batch_free(&b);
    *loss = count ? sum / count : 0.0;
    return st;
}

ulm_status train_run(train_model *m, int start_step, const train_run_opts *o, train_run_result *res,
                     ulm_error *err) {
    memset(res, 0, sizeof *res);
    if (!o->train || o->train->n == 0) return ulm_set_error(err, ULM_ERR_ARG, "train: no training examples");
    if (o->batch <= 0 || o->steps < 0) return ulm_set_error(err, ULM_ERR_ARG, "train: bad batch or step count");
    tpool *pool = tpool_new(o->threads);
    train_ws *ws = pool ? train_ws_new(pool) : NULL;
    if (!ws) { tpool_free(pool); return ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory"); }
    if (o->precision != TRAIN_PREC_F32 && !tgemm_set_bf16(train_ws_gemm(ws), 1) && o->precision == TRAIN_PREC_BF16) {
        train_ws_free(ws);
        tpool_free(pool);
        return ulm_set_error(err, ULM_ERR_UNSUPPORTED, "train: bf16 needs a CPU with AMX-BF16 or AVX512-BF16 (use f32)");
    }
    if (o->log && start_step < o->steps)
        fprintf(o->log, "matmul: %s\n", tgemm_kernel_name(train_ws_gemm(ws)));
    train_batch b = {0};
    b.prompt_weight = o->prompt_loss;
    ulm_status st = ULM_OK;
    double t0 = now_s(), window_t = t0, loss_acc = 0, ploss_acc = 0;
    long window_tok = 0, loss_n = 0, ploss_n = 0;
    res->val_loss = NAN;
    int step;
    for (step = start_step; step < o->steps; step++) {
        if (train_make_batch(o->train, o->seed, step, o->batch, &b)) {
            st = ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory");
            break;
        }
        double loss;
        int nt;
        if ((st = train_forward(m, ws, &b, 1, &loss, &nt, NULL, err))) break;
        float gnorm = train_adamw_step(m, &o->opt, step, pool);
        if (o->average_from > 0 && step >= o->average_from && train_average_add(m)) {
            st = ulm_set_error(err, ULM_ERR_NOMEM, "train: out of memory");
            break;
        }
        res->last_loss = nt ? loss / nt : 0;
        res->tokens += b.n;
        window_tok += b.n;
        loss_acc += loss;
        loss_n += nt;
        int prows;
        ploss_acc += train_ws_prompt_loss(ws, &prows);
        ploss_n += prows;
        int done = step + 1;
        int eval = o->val && o->eval_every > 0 && (done % o->eval_every == 0 || done == o->steps);
        if (eval && (st = train_eval_loss(m, ws, o->val, o->val_examples > 0 ? o->val_examples : 256,
                                          &res->val_loss, err)))
            break;
        if (o->log && o->log_every > 0 && (done % o->log_every == 0 || done == o->steps || eval)) {
            double t = now_s(), tps = window_tok / fmax(t - window_t, 1e-9);
            char el[32], left[32], val[32] = "-", pl[40] = "";
            fmt_time(el, sizeof el, t - t0);
            fmt_time(left, sizeof left, (t - t0) / (done - start_step) * (o->steps - done));
            if (!isnan(res->val_loss)) snprintf(val, sizeof val, "%.4f", res->val_loss);
            if (ploss_n) snprintf(pl, sizeof pl, "  prompt loss %.4f", ploss_acc / ploss_n);
            fprintf(o->log, "step %6d/%d  loss %.4f%s  val %s  lr %.2e  gnorm %.2f  %.0f tok/s  elapsed %s  left %s\n",
                    done, o->steps, loss_n ? loss_acc / loss_n : 0.0, pl, val, train_lr_at(&o->opt, step), gnorm, tps, el,
                    left);
            fflush(o->log);
            window_t = t;
            window_tok = 0;
            loss_acc = ploss_acc = 0;
            loss_n = ploss_n = 0;
        }
        int stop = (o->stop_after > 0 && done >= o->stop_after) || (o->stop_file && access(o->stop_file, F_OK) == 0);
        if (o->checkpoint && ((o->checkpoint_every > 0 && done % o->checkpoint_every == 0) || done == o->steps || stop)) {
            train_state ts = {done, o->seed};
            if ((st = train_save_checkpoint(m, o->tok, &ts, o->checkpoint, err))) break;
        }
        if (stop) { step++; break; }
    }
    res->steps_done = step;
    res->avg_val_loss = NAN;
    if (!st && m->avg_n > 0 && o->val) {
        train_average_swap(m);
        st = train_eval_loss(m, ws, o->val, o->val_examples > 0 ? o->val_examples : 256, &res->avg_val_loss, err);
        train_average_swap(m);
        if (!st && o->log)
            fprintf(o->log, "averaged weights of steps %d..%d: val %.4f\n", step - m->avg_n + 1, step,
                    res->avg_val_loss);
    }
    res->tokens_per_s = res->tokens / fmax(now_s() - t0, 1e-9);
    train_batch_free(&b);
    train_ws_free(ws);
    tpool_free(pool);
    return st;
}
