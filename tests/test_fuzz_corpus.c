/* Replays the fuzz corpus (tests/fuzz/corpus/<target>/: seeds, and every input a fuzzer once
 * broke) through the fuzz targets (tests/fuzz/fuzz_*.c), so they stay fixed under make test,
 * make asan and qemu; make fuzz runs the same targets under libFuzzer. The model target also
 * gets tiny models of each weight type written here, with truncations and byte flips of their
 * headers. */
#include <dirent.h>
#include "test_util.h"
#include "fuzz/fuzz.h"
#include "fuzz/fuzz_chat_template.c"
#include "fuzz/fuzz_constraint.c"
#include "fuzz/fuzz_gguf.c"
#include "fuzz/fuzz_hf.c"
#include "fuzz/fuzz_json.c"
#include "fuzz/fuzz_llama2c.c"
#include "fuzz/fuzz_safetensors.c"
#include "fuzz/fuzz_task_spec.c"
#include "fuzz/fuzz_tok_import.c"
#include "fuzz/fuzz_tokenize.c"
#include "fuzz/fuzz_ulm_model.c"

/* Runs fn on every file of tests/fuzz/corpus/<name>; returns how many. */
static int replay(const char *name, int (*fn)(const uint8_t *, size_t)) {
    char dir[256], path[512];
    snprintf(dir, sizeof dir, "tests/fuzz/corpus/%s", name);
    DIR *d = opendir(dir);
    if (!d) fail_msg("%s: cannot open (run from the repository root)", dir);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        size_t len = 0;
        char *buf = test_read_file(path, &len);
        assert_non_null(buf);
        /* an exact-size copy, so ASan sees a read one past the input */
        uint8_t *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, buf, len);
        fn(copy, len);
        free(copy);
        free(buf);
        n++;
    }
    closedir(d);
    print_message("%s: %d inputs\n", name, n);
    return n;
}

#define REPLAY_TEST(name)                                        \
    static void test_##name(void **state) {                      \
        (void)state;                                             \
        assert_true(replay(#name, fuzz_##name) > 0);             \
    }
REPLAY_TEST(chat_template)
REPLAY_TEST(constraint)
REPLAY_TEST(gguf)
REPLAY_TEST(hf)
REPLAY_TEST(json)
REPLAY_TEST(llama2c)
REPLAY_TEST(safetensors)
REPLAY_TEST(task_spec)
REPLAY_TEST(tok_import)
REPLAY_TEST(tokenize)
REPLAY_TEST(ulm_model)

/* Tiny models of each weight type, whole, cut short, and with header bytes flipped. */
static void test_ulm_model_mutations(void **state) {
    (void)state;
    static const char *types[] = {"f32", "q8", "q4"};
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (int t = 0; t < 3; t++) {
        char path[256];
        test_tmp_path(path, sizeof path, "fuzz-tiny.ulm");
        char *argv[] = {"mkmodel", "--preset", "tiny", "--type", (char *)types[t], "-o", path, NULL};
        assert_int_equal(cmd_mkmodel(7, argv), 0);
        size_t len = 0;
        uint8_t *buf = (uint8_t *)test_read_file(path, &len);
        assert_non_null(buf);
        unlink(path);
        fuzz_ulm_model(buf, len);
        for (size_t cut = 0; cut < len; cut += len / 40 + 1) fuzz_ulm_model(buf, cut);
        for (int k = 0; k < 60; k++) { /* the header, metadata and tensor table: the first 12 KiB */
            uint8_t *m = malloc(len);
            assert_non_null(m);
            memcpy(m, buf, len);
            for (int f = 0; f < 4; f++) {
                rng = rng * 6364136223846793005ull + 1442695040888963407ull;
                size_t at = (size_t)(rng >> 33) % (len < 12288 ? len : 12288);
                m[at] ^= (uint8_t)(1u << ((rng >> 20) & 7));
            }
            fuzz_ulm_model(m, len);
            free(m);
        }
        free(buf);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chat_template), cmocka_unit_test(test_constraint),
        cmocka_unit_test(test_gguf),          cmocka_unit_test(test_hf),
        cmocka_unit_test(test_json),          cmocka_unit_test(test_llama2c),
        cmocka_unit_test(test_safetensors),   cmocka_unit_test(test_task_spec),
        cmocka_unit_test(test_tok_import),    cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_ulm_model),     cmocka_unit_test(test_ulm_model_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
