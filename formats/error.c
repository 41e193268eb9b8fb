#include <stdarg.h>
#include <stdio.h>
#include "ulm_file.h"

ulm_status ulm_set_error(ulm_error *err, ulm_status code, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}
