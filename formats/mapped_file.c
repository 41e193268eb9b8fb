#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mapped_file.h"
#include "ulm_file.h"

ulm_status map_file(const char *path, uint64_t min_size, const char *what, const void **base, uint64_t *size,
                    ulm_error *err) {
    *base = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ulm_set_error(err, ULM_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return ulm_set_error(err, ULM_ERR_IO, "%s is not a regular file", path);
    }
    if ((uint64_t)sb.st_size < min_size) {
        close(fd);
        return ulm_set_error(err, ULM_ERR_FORMAT, "%s: truncated %s file (%lld bytes)", path, what, (long long)sb.st_size);
    }
    void *p = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return ulm_set_error(err, ULM_ERR_IO, "cannot map %s: %s", path, strerror(errno));
    *base = p;
    *size = (uint64_t)sb.st_size;
    return ULM_OK;
}

void unmap_file(const void *base, uint64_t size) {
    if (base) munmap((void *)base, (size_t)size);
}

void error_prefix_path(ulm_error *err, const char *path) {
    if (!err) return;
    char tmp[sizeof err->msg];
    memcpy(tmp, err->msg, sizeof tmp);
    snprintf(err->msg, sizeof err->msg, "%.200s: %.300s", path, tmp);
}
