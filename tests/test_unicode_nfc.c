/* Unicode NFC (engine/unicode_nfc.c) against Python's unicodedata on the cases of
 * tests/fixtures/unicode/nfc_cases.txt (make_nfc_cases.py), the quick check, and long inputs. */
#include "test_util.h"
#include "unicode.h"

static size_t put_utf8(uint32_t cp, char *o) {
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | cp >> 6); o[1] = (char)(0x80 | (cp & 63)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | (cp >> 6 & 63)), o[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | (cp >> 12 & 63)), o[2] = (char)(0x80 | (cp >> 6 & 63));
    o[3] = (char)(0x80 | (cp & 63));
    return 4;
}

/* Hex code points up to ';' or the end of the line, as UTF-8 into o; returns the length. */
static size_t parse_cps(char **p, char *o) {
    size_t n = 0;
    for (;;) {
        while (**p == ' ') (*p)++;
        char *e;
        unsigned long v = strtoul(*p, &e, 16);
        if (e == *p) break;
        n += put_utf8((uint32_t)v, o + n);
        *p = e;
    }
    return n;
}

static void test_nfc_cases(void **state) {
    FILE *fp = fopen("tests/fixtures/unicode/nfc_cases.txt", "rb");
    assert_non_null(fp);
    char line[4096], in[1024], want[1024];
    char *out = NULL;
    size_t cap = 0;
    int cases = 0, bad = 0, changed = 0;
    while (fgets(line, sizeof line, fp)) {
        char *p = line;
        size_t ni = parse_cps(&p, in);
        assert_true(*p == ';');
        p++;
        size_t nw = parse_cps(&p, want);
        size_t no;
        assert_int_equal(unicode_nfc(in, ni, &out, &cap, &no), 0);
        if (no != nw || memcmp(out, want, nw)) {
            if (bad++ < 10) print_message("case %d: %s", cases + 1, line);
        }
        /* the quick check may be unsure about NFC text, never sure about non-NFC text */
        if (unicode_nfc_prefix(in, ni) == ni) assert_true(ni == nw && !memcmp(in, want, ni));
        changed += ni != nw || memcmp(in, want, ni);
        cases++;
    }
    fclose(fp);
    free(out);
    print_message("%d cases (%d change under NFC), %d wrong; Unicode %s\n", cases, changed, bad, unicode_data_version);
    assert_true(cases > 10000);
    assert_int_equal(bad, 0);
}

static void test_nfc_prefix(void **state) {
    const char *s = "plain ASCII text";
    assert_int_equal(unicode_nfc_prefix(s, strlen(s)), strlen(s));
    s = "caf\xc3\xa9 \xe4\xb8\xad\xe6\x96\x87"; /* precomposed é, CJK: NFC */
    assert_int_equal(unicode_nfc_prefix(s, strlen(s)), strlen(s));
    s = "abc cafe\xcc\x81"; /* e + combining acute: unsure from the 'e' on */
    assert_int_equal(unicode_nfc_prefix(s, strlen(s)), 7);
    s = "xy\xe2\x84\xab"; /* U+212B ANGSTROM SIGN: never in NFC; redone from the starter before */
    assert_int_equal(unicode_nfc_prefix(s, strlen(s)), 1);
    char *out = NULL;
    size_t cap = 0, n;
    assert_int_equal(unicode_nfc("", 0, &out, &cap, &n), 0);
    assert_int_equal(n, 0);
    s = "abc cafe\xcc\x81 \xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8";  /* é, and jamo G A G -> U+AC01 */
    assert_int_equal(unicode_nfc(s, strlen(s), &out, &cap, &n), 0);
    const char *want = "abc caf\xc3\xa9 \xea\xb0\x81";
    assert_int_equal(n, strlen(want));
    assert_memory_equal(out, want, n);
    free(out);
}

/* 1 MB of "e + acute" pairs and one base with 300k marks: linear work, right answers. */
static void test_nfc_long(void **state) {
    size_t reps = 1 << 18, n = 3 * reps;
    char *s = malloc(n), *out = NULL;
    for (size_t i = 0; i < reps; i++) memcpy(s + 3 * i, "e\xcc\x81", 3);
    size_t cap = 0, no;
    assert_int_equal(unicode_nfc(s, n, &out, &cap, &no), 0);
    assert_int_equal(no, 2 * reps);
    for (size_t i = 0; i < reps; i++) assert_memory_equal(out + 2 * i, "\xc3\xa9", 2);
    /* 'a', then marks of classes 230, 220, 1 repeated: sorted stably to 1..., 220..., 230... */
    size_t marks = 300000;
    s = realloc(s, 1 + 2 * marks);
    s[0] = 'a';
    static const char *const m[3] = {"\xcc\x81", "\xcc\x96", "\xcc\xb4"}; /* U+0301 230, U+0316 220, U+0334 1 */
    for (size_t i = 0; i < marks; i++) memcpy(s + 1 + 2 * i, m[i % 3], 2);
    assert_int_equal(unicode_nfc(s, 1 + 2 * marks, &out, &cap, &no), 0);
    /* reordered to classes 1, 220, 230; the first acute still composes with 'a' (the marks
     * between have lower classes, so they do not block it): U+00E1, then the other marks */
    assert_int_equal(no, 2 * marks);
    assert_memory_equal(out, "\xc3\xa1", 2);
    for (size_t i = 0; i < marks - 1; i++) assert_memory_equal(out + 2 + 2 * i, m[2 - i / (marks / 3)], 2);
    free(s), free(out);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nfc_cases),
        cmocka_unit_test(test_nfc_prefix),
        cmocka_unit_test(test_nfc_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
