/* gen-entities: data for the entity extractor task (tasks/entities/task.json).
 *
 *   gen-entities [--split train|valid|golden|dev] [--n N] [--seed S] [--novel PERCENT]
 *                [--shapes PERCENT] [--letters PERCENT] [--compound PERCENT] [--orgs PERCENT]
 *                [--place-shapes PERCENT] [--last-shapes PERCENT] [--of PERCENT] [--the-org PERCENT]
 *                [--grammar PERCENT]
 *                [--grammar-file grammar.txt]
 *                [--data tasks/entities/data] [-o FILE]
 *
 * Writes JSONL, one {"input": "...", "output": "..."} per line. The input is one or two
 * sentences made from templates (data/templates.txt) whose slots are filled with people,
 * organizations, places and dates; the output is the compact JSON
 *   {"people":[...],"organizations":[...],"places":[...],"dates":[...]}
 * with each string exactly as it appears in the input, in order of appearance, no repeats.
 *
 * Held out: every data file has a "## golden" line; entries below it (first names, last
 * names, organization roots, places, templates) are used only by the golden split, entries
 * above it only by train and valid. So a golden case has unseen wording and unseen entity
 * strings; only the date formats and organization forms are shared. templates.txt may end with
 * a "## dev" section: the dev split (400 cases) fills those templates with the golden names, a
 * second held-out set to develop against, so the golden set is not the only guide.
 *
 *   people         "First Last" (85%) or "First M. Last"; titles such as "Dr." stay in the
 *                  template and are not part of the name
 *   organizations  "<root> <suffix>" (75%), "<root>" alone, an acronym of 3-4 letters, or
 *                  "<Last> & <Last>" (a firm); slot {R} is always the bare "<root>"
 *   dates          {D}: "March 3, 2021", "3 March 2021", "2021-03-03", "3/14/2021",
 *                  "14.03.2021", "Mar 3, 2021", "Sept. 3, 2021", "March 3", "March 3rd",
 *                  "Tuesday, March 3, 2021"; {M}: "March 2021", "Mar 2021", "2021";
 *                  {Y}: "2021". Years 1950-2035, real calendar (weekdays are right).
 * Run from the repository root (the default data path is relative). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../gen_util.h"

#define EN_GOLDEN_SEED 0x454E54495459ull /* "ENTITY" */
#define EN_GOLDEN_N 400
#define EN_VALID_SALT 0x56414C4944ull
#define EN_DEV_SEED 0x444556ull /* "DEV" */
#define EN_MAX_ENT 16

enum { EN_FIRST, EN_LAST, EN_ORG, EN_PLACE, EN_TEMPLATE, EN_N_LISTS };
static const char *const en_files[EN_N_LISTS] = {"first_names.txt", "last_names.txt", "org_roots.txt",
                                                 "places.txt", "templates.txt"};

typedef struct {
    char **s;
    int n;
} en_list;

/* One grammar rule: <name> and its alternatives (space-separated words, <names>, slots). */
typedef struct {
    const char *name; /* "<name>" */
    en_list alt;
} en_rule;

typedef struct {
    char *text[EN_N_LISTS];       /* file contents, entries point into them */
    en_list list[EN_N_LISTS][3];  /* [kind][0 train, 1 golden, 2 dev]; dev names are the golden ones */
    char *gram_text;              /* data/grammar.txt, rules point into it */
    en_rule *rule;
    int n_rule;
} en_data;

typedef enum { EN_TRAIN, EN_VALID, EN_GOLDEN, EN_DEV } en_split;
enum { EN_PEOPLE, EN_ORGS, EN_PLACES, EN_DATES, EN_N_FIELDS };
static const char *const en_fields[EN_N_FIELDS] = {"people", "organizations", "places", "dates"};

static void en_data_free(en_data *d) {
    for (int k = 0; k < EN_N_LISTS; k++) {
        free(d->text[k]);
        int own = k == EN_TEMPLATE ? 3 : 2; /* the names' dev lists share the golden ones */
        for (int g = 0; g < own; g++) free(d->list[k][g].s);
    }
    for (int i = 0; i < d->n_rule; i++) free(d->rule[i].alt.s);
    free(d->rule);
    free(d->gram_text);
    memset(d, 0, sizeof *d);
}

static int en_list_push(en_list *l, int *cap, char *s) {
    if (l->n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        char **ns = realloc(l->s, (size_t)*cap * sizeof *ns);
        if (!ns) return -1;
        l->s = ns;
    }
    l->s[l->n++] = s;
    return 0;
}

static int en_is_name(const char *w, size_t n) {
    if (n < 3 || w[0] != '<' || w[n - 1] != '>') return 0;
    for (size_t i = 1; i + 1 < n; i++)
        if (!((w[i] >= 'a' && w[i] <= 'z') || w[i] == '_')) return 0;
    return 1;
}

static en_rule *en_rule_find(const en_data *d, const char *w, size_t n) {
    for (int i = 0; i < d->n_rule; i++)
        if (strlen(d->rule[i].name) == n && !memcmp(d->rule[i].name, w, n)) return &d->rule[i];
    return NULL;
}

/* The next line of a data file at *cur (NUL-terminated in place, trailing CR and spaces
 * dropped), counting line numbers; NULL at the end. */
static char *en_next_line(char **cur, int *line_no) {
    char *line = *cur;
    if (!line || !*line) return NULL;
    char *next = strchr(line, '\n');
    if (next) *next++ = 0;
    *cur = next;
    (*line_no)++;
    size_t len = strlen(line);
    while (len && (line[len - 1] == '\r' || line[len - 1] == ' ')) line[--len] = 0;
    return line;
}

static int en_template_ok(const char *t);

/* --grammar-file NAME: the grammar in the data directory (grammar_fillers.txt adds {w} words). */
static const char *en_grammar_file = "grammar.txt";

/* Loads dir/<en_grammar_file>: "<name> = alt | alt"; every <name> used must be defined,
 * <sentence> must exist, and slots must be well formed. */
static int en_grammar_load(const char *dir, en_data *d, char *err, size_t errcap) {
    char path[1024];
    if (strchr(en_grammar_file, '/')) { snprintf(err, errcap, "%.200s: a file name in the data directory", en_grammar_file); return -1; }
    snprintf(path, sizeof path, "%s/%.100s", dir, en_grammar_file);
    char *text = d->gram_text = gen_read_file(path, NULL);
    if (!text) { snprintf(err, errcap, "%.400s: cannot read: %.80s", path, strerror(errno)); return -1; }
    int rcap = 0, *acap = NULL, line_no = 0;
    for (char *cur = text, *line; (line = en_next_line(&cur, &line_no));) {
        if (line[0] == '#' || line[0] == 0) continue;
        char *eq = strstr(line, " = ");
        if (!eq || !en_is_name(line, (size_t)(eq - line)) || strchr(line, '"') || strchr(line, '\\') ||
            strchr(line, '\t')) {
            snprintf(err, errcap, "%.400s:%d: bad rule", path, line_no);
            goto fail;
        }
        *eq = 0;
        en_rule *r = en_rule_find(d, line, strlen(line));
        if (!r) {
            if (d->n_rule == rcap) {
                rcap = rcap ? 2 * rcap : 64;
                en_rule *nr = realloc(d->rule, (size_t)rcap * sizeof *nr);
                int *nc = realloc(acap, (size_t)rcap * sizeof *nc);
                if (nc) acap = nc;
                if (!nr || !nc) { if (nr) d->rule = nr; snprintf(err, errcap, "out of memory"); goto fail; }
                d->rule = nr;
            }
            r = &d->rule[d->n_rule];
            memset(r, 0, sizeof *r);
            r->name = line;
            acap[d->n_rule++] = 0;
        }
        for (char *a = eq + 3, *bar; a; a = bar) {
            bar = strstr(a, " | ");
            if (bar) { *bar = 0; bar += 3; }
            while (*a == ' ') a++;
            size_t an = strlen(a);
            while (an && a[an - 1] == ' ') a[--an] = 0;
            if (!an || strchr(a, '|') || !en_template_ok(a)) {
                snprintf(err, errcap, "%.400s:%d: bad alternative", path, line_no);
                goto fail;
            }
            if (!strcmp(a, "~")) a[0] = 0;
            if (en_list_push(&r->alt, &acap[r - d->rule], a)) { snprintf(err, errcap, "out of memory"); goto fail; }
        }
    }
    for (int i = 0; i < d->n_rule; i++)
        for (int j = 0; j < d->rule[i].alt.n; j++)
            for (const char *w = d->rule[i].alt.s[j]; *w;) {
                size_t n = strcspn(w, " ");
                if (n && w[0] == '<' && (!en_is_name(w, n) || !en_rule_find(d, w, n))) {
                    snprintf(err, errcap, "%.300s: %.100s uses an undefined or malformed name", path, d->rule[i].name);
                    goto fail;
                }
                w += n;
                while (*w == ' ') w++;
            }
    if (!en_rule_find(d, "<sentence>", 10)) { snprintf(err, errcap, "%.400s: no <sentence> rule", path); goto fail; }
    free(acap);
    return 0;
fail:
    free(acap);
    return -1;
}

/* Appends a random expansion of rule r to out (words joined by single spaces). Depth-bounded,
 * so a recursive grammar cannot run away. */
static int en_expand(const en_data *d, const en_rule *r, gen_rng *rng, gen_str *out, int depth) {
    if (depth > 24) return -1;
    const char *a = r->alt.s[gen_rng_below(rng, (uint32_t)r->alt.n)];
    for (const char *w = a; *w;) {
        size_t n = strcspn(w, " ");
        if (w[0] == '<') {
            if (en_expand(d, en_rule_find(d, w, n), rng, out, depth + 1)) return -1;
        } else {
            if (out->n && out->p[out->n - 1] != ' ') gen_str_add(out, " ", 1);
            gen_str_add(out, w, n);
        }
        w += n;
        while (*w == ' ') w++;
    }
    return 0;
}

/* A template from the grammar: <sentence> expanded, spaces before , . 's dropped, doubled
 * commas merged, first letter capitalized. Returns -1 when it came out too long. */
static int en_grammar_template(const en_data *d, gen_rng *rng, gen_str *raw, char *t, size_t cap) {
    gen_str_clear(raw);
    if (en_expand(d, en_rule_find(d, "<sentence>", 10), rng, raw, 0) || raw->oom) return -1;
    size_t n = 0;
    for (size_t i = 0; i < raw->n; i++) {
        char c = raw->p[i];
        if (c == ' ' && (n == 0 || t[n - 1] == ' ')) continue;
        if (c == ',' && n && t[n - 1] == ',') continue;
        if ((c == ',' || c == '.' || (c == '\'' && i + 1 < raw->n && raw->p[i + 1] == 's')) && n && t[n - 1] == ' ') n--;
        if ((c == ',' || c == '.') && n && t[n - 1] == ',') n--; /* ", ." from an empty tail */
        if (n + 2 >= cap) return -1;
        t[n++] = c;
    }
    while (n && t[n - 1] == ' ') n--;
    t[n] = 0;
    if (t[0] >= 'a' && t[0] <= 'z') t[0] = (char)(t[0] - 'a' + 'A');
    return 0;
}

/* Validates one template: known slots only, braces balanced. */
static int en_template_ok(const char *t) {
    for (const char *p = t; *p; p++) {
        if (*p == '}') return 0;
        if (*p != '{') continue;
        if (!strchr("POLRDMYw", p[1]) || p[2] != '}') return 0;
        p += 2;
    }
    return 1;
}

/* Loads dir/<file> for each list: one entry a line, '#' comments, "## golden" splits. */
static int en_data_load(const char *dir, en_data *d, char *err, size_t errcap) {
    memset(d, 0, sizeof *d);
    for (int k = 0; k < EN_N_LISTS; k++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, en_files[k]);
        char *text = d->text[k] = gen_read_file(path, NULL);
        if (!text) { snprintf(err, errcap, "%.400s: cannot read: %.80s", path, strerror(errno)); goto fail; }
        int g = 0, cap[3] = {0, 0, 0}, line_no = 0;
        for (char *cur = text, *line; (line = en_next_line(&cur, &line_no));) {
            if (!strcmp(line, "## golden")) {
                if (g) { snprintf(err, errcap, "%.400s:%d: second '## golden'", path, line_no); goto fail; }
                g = 1;
                continue;
            }
            if (!strcmp(line, "## dev")) { /* templates only: a second held-out set, for development */
                if (k != EN_TEMPLATE || g != 1) { snprintf(err, errcap, "%.400s:%d: '## dev' only after '## golden' of templates", path, line_no); goto fail; }
                g = 2;
                continue;
            }
            if (line[0] == '#' || line[0] == 0) continue;
            if (strchr(line, '"') || strchr(line, '\\') || strchr(line, '\t') ||
                (k == EN_TEMPLATE && !en_template_ok(line)) || (k != EN_TEMPLATE && strchr(line, '{'))) {
                snprintf(err, errcap, "%.400s:%d: bad entry", path, line_no);
                goto fail;
            }
            en_list *l = &d->list[k][g];
            if (l->n == cap[g]) {
                cap[g] = cap[g] ? 2 * cap[g] : 256;
                char **ns = realloc(l->s, (size_t)cap[g] * sizeof *ns);
                if (!ns) { snprintf(err, errcap, "out of memory"); goto fail; }
                l->s = ns;
            }
            l->s[l->n++] = line;
        }
        if (!d->list[k][0].n || !d->list[k][1].n) {
            snprintf(err, errcap, "%.400s: needs entries above and below '## golden'", path);
            goto fail;
        }
        if (k != EN_TEMPLATE) d->list[k][2] = d->list[k][1]; /* shared, freed once */
    }
    if (en_grammar_load(dir, d, err, errcap)) goto fail;
    return 0;
fail:
    en_data_free(d);
    return -1;
}

static const char *const en_months[12] = {"January", "February", "March",     "April",   "May",      "June",
                                          "July",    "August",   "September", "October", "November", "December"};
static const char *const en_mon3[12] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
/* AP style: five months are never abbreviated. */
static const char *const en_mon_ap[12] = {"Jan.", "Feb.", "March", "April", "May",  "June",
                                          "July", "Aug.", "Sept.", "Oct.",  "Nov.", "Dec."};
static const char *const en_wdays[7] = {"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"};
/* --place-shapes P (with --novel): an invented place is, with probability P%, either an English
 * compound ("Stonebrook", the shape of the compound organization roots; real towns have it too)
 * or two plain capitalized words ("Belo Tarun", the shape of a person's name), so neither shape
 * tells a place from an organization or a person: the sentence has to. */
static int en_place_shape_pct = 0;
/* --last-shapes P (with --novel): an invented last name is, with probability P%, an English
 * compound ("Ashcombe", "Blackwood": many English surnames have that shape), so a compound does
 * not by itself mark an organization root. */
static int en_last_shape_pct = 0;

static const char *const en_org_suffix[] = {
    "Labs",     "Group",    "Systems",  "Foundation", "Institute", "Bank",    "Airlines",       "Motors",
    "Capital",  "Media",    "Energy",   "Health",     "Partners",  "Robotics", "Pharmaceuticals", "Logistics",
    "Insurance", "Records", "Studios",  "Holdings",   "Analytics", "Software", "Foods",          "Mining",
    "University", "Press",  "Trust",    "Ventures",   "Telecom",   "Shipping"};

/* --orgs P (train and valid only): an organization takes, with probability P%, a form that real
 * ones have and the golden ones do not: its root alone (40%: "Siemens", "Gazprom") or the root
 * with one of these (no suffix ends in '.', since a name ends where a word does). */
static int en_orgs_pct = 0;
static const char *const en_org_suffix_more[] = {
    "Corp", "Corporation", "Inc", "Ltd", "LLC", "PLC", "GmbH", "AG", "SA", "Company", "Traders", "Trading",
    "Industries", "Enterprises", "Brothers", "Consulting", "Electronics", "Airways", "Pictures", "Networks",
    "Technologies", "Solutions", "Services", "Hotels", "Steel", "Chemicals", "Textiles", "Brewery", "Books",
    "Games", "Aerospace", "Automotive", "Dynamics", "Cooperative", "Council", "Society", "Association", "Club",
    "Union", "Agency", "Hospital", "College", "Museum", "Orchestra", "Theatre", "Cross", "Bakery", "Markets"};

/* --of P (train and valid only): an organization is, with probability P%, a form with "of",
 * which no golden one has and real ones often do: "<head> of <place>" (half: "Bank of X",
 * "University of X"), else "<head> of <field>" ("Ministry of Health"), half of those after a
 * root ("Halcyon Institute of Technology"). So neither a place after "of" nor a capitalized
 * "of" phrase is by itself a place. */
static int en_of_pct = 0;
static const char *const en_of_head[] = {
    "Bank", "University", "Museum", "Church", "Academy", "College", "Port Authority", "Chamber of Commerce",
    "National Bank", "State University", "Royal Society", "Symphony Orchestra", "City Council", "Archdiocese",
    "Federal Reserve Bank", "Central Bank", "Stock Exchange", "Football Club", "Metropolitan Museum", "Commonwealth"};
static const char *const en_of_field_head[] = {
    "Ministry", "Department", "Institute", "Academy", "School", "Museum", "Bureau", "Office", "Board", "College",
    "Society", "Federation", "Council", "Court", "Association", "Center", "Centre", "Conservatory", "Order", "League"};
static const char *const en_of_field[] = {
    "Health", "Energy", "Technology", "Sciences", "Economics", "Modern Art", "Justice", "Commerce", "Trade",
    "Agriculture", "Finance", "Defence", "Defense", "Education", "Fine Arts", "Music", "Engineering", "Statistics",
    "Investigation", "Appeal", "Medicine", "Natural History", "Transport", "Labor", "Human Rights", "Public Health",
    "Science and Technology", "Arts and Sciences", "Foreign Affairs", "Veterans Affairs"};

/* --the-org P (train and valid only): an organization whose name ends in an institution noun, or
 * has "of", is with probability P% written after "the" ("the Halcyon Foundation", "the Bank
 * of X"), which is not part of the name: real text does this, and the generator's places
 * "the X Islands" otherwise teach that a "the" before a name belongs to it. */
static int en_the_org_pct = 0;
static const char *const en_the_noun[] = {
    "Foundation", "Institute", "University", "Society", "Association", "Council", "Museum", "Orchestra", "Agency",
    "Hospital", "College", "Union", "Group", "Trust", "Bank", "Partners", "Institution", "Cooperative", "Club",
    "Corporation", "Company", "Press", "Theatre", "Cross"};

static int en_the_org(const char *v) {
    if (strstr(v, " of ")) return 1;
    const char *sp = strrchr(v, ' ');
    if (!sp) return 0;
    for (size_t k = 0; k < sizeof en_the_noun / sizeof *en_the_noun; k++)
        if (!strcmp(sp + 1, en_the_noun[k])) return 1;
    return 0;
}

static int en_leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int en_days_in(int y, int m) {
    static const int dm[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return dm[m - 1] + (m == 2 && en_leap(y));
}

static int en_weekday(int y, int m, int d) { /* Sakamoto: 0 = Sunday */
    static const int t[12] = {0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4};
    if (m < 3) y -= 1;
    return (y + y / 4 - y / 100 + y / 400 + t[m - 1] + d) % 7;
}

static const char *en_ordinal(int d) {
    if (d % 100 >= 11 && d % 100 <= 13) return "th";
    return d % 10 == 1 ? "st" : d % 10 == 2 ? "nd" : d % 10 == 3 ? "rd" : "th";
}

/* Writes a date for slot kind ('D' day, 'M' month or year, 'Y' year) into buf. */
static void en_date(gen_rng *r, char kind, char *buf, size_t cap) {
    int y = 1950 + (int)gen_rng_below(r, 86), m = 1 + (int)gen_rng_below(r, 12);
    int d = 1 + (int)gen_rng_below(r, (uint32_t)en_days_in(y, m));
    if (kind == 'Y') { snprintf(buf, cap, "%d", y); return; }
    if (kind == 'M') {
        switch (gen_rng_below(r, 3)) {
        case 0: snprintf(buf, cap, "%s %d", en_months[m - 1], y); break;
        case 1: snprintf(buf, cap, "%s %d", en_mon3[m - 1], y); break;
        default: snprintf(buf, cap, "%d", y); break;
        }
        return;
    }
    switch (gen_rng_below(r, 10)) {
    case 0: snprintf(buf, cap, "%s %d, %d", en_months[m - 1], d, y); break;
    case 1: snprintf(buf, cap, "%d %s %d", d, en_months[m - 1], y); break;
    case 2: snprintf(buf, cap, "%d-%02d-%02d", y, m, d); break;
    case 3: snprintf(buf, cap, "%d/%d/%d", m, d, y); break;
    case 4: snprintf(buf, cap, "%02d.%02d.%d", d, m, y); break;
    case 5: snprintf(buf, cap, "%s %d, %d", en_mon3[m - 1], d, y); break;
    case 6: snprintf(buf, cap, "%s %d, %d", en_mon_ap[m - 1], d, y); break;
    case 7: snprintf(buf, cap, "%s %d", en_months[m - 1], d); break;
    case 8: snprintf(buf, cap, "%s %d%s", en_months[m - 1], d, en_ordinal(d)); break;
    default: snprintf(buf, cap, "%s, %s %d, %d", en_wdays[en_weekday(y, m, d)], en_months[m - 1], d, y); break;
    }
}

/* --novel P (train and valid only; 0 by default, which draws nothing extra, so the default
 * output is unchanged): a name, organization root or place is, with probability P%, an
 * invented word instead of a list entry. A model that can recall a closed list of ~200 names
 * has little reason to learn copying; invented words leave it no other way, which is what the
 * held-out golden names need. */
static int en_novel_pct = 0;

/* --shapes P (with --novel): an invented word gets, with probability P%, one of the shapes
 * real names have and plain syllables lack: an accented letter, a hyphenated first name
 * ("Xa-lo"), an O' or Mc last name or one with a particle ("van der X", "al-X"), a place of
 * two or three words ("Port X", "X Bay", "X de Y", "X upon Y"). */
static int en_shape_pct = 0;

/* 2-3 pronounceable syllables, lowercase, into w (at least 32 bytes). */
static void en_syllables(gen_rng *r, char *w) {
    static const char *const on[] = {"b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "kr", "l", "m",
                                     "n", "p", "r", "s", "sh", "st", "t", "tr", "v", "w", "z"};
    static const char *const nu[] = {"a", "e", "i", "o", "u", "ai", "ei", "ou", "ia", "y"};
    static const char *const co[] = {"", "", "", "n", "r", "l", "s", "m", "th", "x", "nd", "rk"};
    int syl = 2 + (int)gen_rng_below(r, 2);
    w[0] = 0;
    for (int k = 0; k < syl; k++) {
        if (k == 0 ? gen_rng_chance(r, 80, 100) : 1) strcat(w, on[gen_rng_below(r, sizeof on / sizeof *on)]);
        strcat(w, nu[gen_rng_below(r, sizeof nu / sizeof *nu)]);
        if (k == syl - 1 || gen_rng_chance(r, 30, 100)) strcat(w, co[gen_rng_below(r, sizeof co / sizeof *co)]);
    }
}

/* --shapes: a broader inventory (every letter, clusters of many languages) and common surname
 * endings, so the invented names exercise the tokenizer pieces real names are made of. */
static void en_syllables_broad(gen_rng *r, char *w, int last_name) {
    static const char *const on[] = {"b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "q", "r", "s", "t",
                                     "v", "w", "x", "y", "z", "bl", "br", "ch", "cl", "cr", "dr", "fl", "fr", "gl",
                                     "gr", "kh", "kl", "kr", "ph", "pl", "pr", "sh", "sk", "sl", "sm", "sn", "sp",
                                     "st", "sv", "sw", "th", "tr", "ts", "vl", "zh", "dz", "gw", "kw", "ny", "qu"};
    static const char *const nu[] = {"a", "e", "i", "o", "u", "a", "e", "i", "o", "u", "y", "aa", "ae", "ai", "ao",
                                     "au", "ea", "ee", "ei", "eo", "ia", "ie", "io", "iu", "oa", "oe", "oi", "oo",
                                     "ou", "ua", "ue", "ui", "uo"};
    static const char *const co[] = {"", "", "", "", "b", "c", "d", "f", "g", "h", "k", "l", "m", "n", "p", "r", "s",
                                     "t", "v", "x", "z", "ck", "ff", "gh", "ld", "lk", "ll", "lm", "ls", "lt", "mb",
                                     "mp", "nd", "ng", "nk", "ns", "nt", "nz", "rd", "rg", "rk", "rm", "rn", "rs",
                                     "rt", "sh", "sk", "ss", "st", "th", "tz"};
    static const char *const end[] = {"son", "sen", "ez", "es", "ov", "ova", "ev", "eva", "ski", "ska", "ic", "escu",
                                      "ian", "yan", "oglu", "elli", "ini", "etti", "berg", "stein", "mann", "wood",
                                      "ford", "ton", "ley", "field", "er", "ura", "oto", "aki", "ides", "opoulos",
                                      "enko", "uk", "ak", "ek", "idze", "ashvili", "ssen", "ier", "eau", "ard"};
    int syl = 1 + (int)gen_rng_below(r, 3);
    w[0] = 0;
    for (int k = 0; k < syl; k++) {
        if (k == 0 ? gen_rng_chance(r, 85, 100) : 1) strcat(w, on[gen_rng_below(r, sizeof on / sizeof *on)]);
        strcat(w, nu[gen_rng_below(r, sizeof nu / sizeof *nu)]);
        if (gen_rng_chance(r, 40, 100)) strcat(w, co[gen_rng_below(r, sizeof co / sizeof *co)]);
    }
    if (last_name && gen_rng_chance(r, 40, 100)) strcat(w, end[gen_rng_below(r, sizeof end / sizeof *end)]);
}

/* --compound P (with --novel): an invented organization root is, with probability P%, a
 * compound of two everyday English parts ("Stonebrook", "Harborlight"), the shape most real
 * brand names have, which syllables lack; the same shape as many English last names, so the
 * suffix and the sentence, not the root, have to tell an organization from a person. */
static int en_compound_pct = 0;

static void en_compound(gen_rng *r, char *w) {
    static const char *const head[] = {"North", "South", "East", "West", "Stone", "Iron", "Silver", "Gold", "Red",
                                       "Blue", "Green", "Black", "White", "Grey", "Oak", "Pine", "Ash", "Elm", "Rose",
                                       "Fox", "Wolf", "Bear", "Hawk", "Raven", "Sun", "Moon", "Frost", "Storm",
                                       "River", "Sea", "Bright", "High", "Deep", "Wild", "Old", "Fair", "Glen",
                                       "King", "Lark", "Wren", "Copper", "Cedar", "Maple", "Birch", "Thorn", "Briar",
                                       "Harbor", "Cliff", "Crown", "Bell", "Swift", "Hollow", "Golden", "Winter",
                                       "Summer", "Spring", "Morning", "Even", "Ember", "Cloud", "Rain", "Snow",
                                       "Heather", "Fern", "Moss", "Sand", "Clay", "Flint", "Steel", "Tin", "Lion",
                                       "Eagle", "Owl", "Crow", "Swan", "Dove", "Finch", "Otter", "Mill", "Bridge",
                                       "Castle", "Tower", "Anchor", "Sail", "Wind", "Fire", "Star", "Brook"};
    static const char *const tail[] = {"wood", "field", "gate", "bridge", "stone", "brook", "ford", "haven", "mere",
                                       "port", "water", "view", "crest", "ridge", "vale", "dale", "well", "wick",
                                       "worth", "ton", "hurst", "land", "moor", "mark", "light", "wing", "fall",
                                       "hill", "way", "line", "point", "peak", "field", "bank", "works", "craft",
                                       "forge", "yard", "stead", "glen", "holm", "shaw", "more", "bury", "combe",
                                       "leigh", "ley", "thorne", "fire", "star", "song", "spire", "cove", "reach"};
    snprintf(w, 48, "%s%s", head[gen_rng_below(r, sizeof head / sizeof *head)],
             tail[gen_rng_below(r, sizeof tail / sizeof *tail)]);
}

static void en_capitalize(char *w) {
    if (w[0] >= 'a' && w[0] <= 'z') w[0] = (char)(w[0] - 'a' + 'A');
}

/* Replaces one vowel after the first letter of w (ASCII) with an accented one (UTF-8). */
static void en_accent(gen_rng *r, char *w, size_t cap) {
    static const char *const vow = "aeioun";
    static const char *const acc[6][3] = {{"\xc3\xa1", "\xc3\xa4", "\xc3\xa3"}, {"\xc3\xa9", "\xc3\xab", "\xc3\xa8"},
                                          {"\xc3\xad", "\xc3\xaf", "\xc3\xae"}, {"\xc3\xb3", "\xc3\xb6", "\xc3\xb8"},
                                          {"\xc3\xba", "\xc3\xbc", "\xc3\xbb"}, {"\xc3\xb1", "\xc3\xb1", "\xc5\x84"}};
    size_t n = strlen(w), cand[32];
    int nc = 0;
    for (size_t i = 1; i < n && nc < 32; i++)
        if (strchr(vow, w[i])) cand[nc++] = i;
    if (!nc || n + 2 >= cap) return;
    size_t i = cand[gen_rng_below(r, (uint32_t)nc)];
    const char *a = acc[strchr(vow, w[i]) - vow][gen_rng_below(r, 3)];
    memmove(w + i + 2, w + i + 1, n - i); /* with the NUL */
    memcpy(w + i, a, 2);
}

/* --letters P (with --shapes): an accented invented word takes, with probability P%, a letter
 * of the wider Latin alphabets (Polish, Czech, Turkish, Romanian, Hungarian, Nordic ...) in
 * place of one of its letters, the first one included, instead of one of en_accent's vowels.
 * A byte-level model can only copy bytes it has seen: without this, training never shows "Ł",
 * "ł" or "ś", and every held-out name with one of them came out wrong. */
static int en_letters_pct = 0;

/* Replaces one ASCII letter of w (the first with probability 40%) by an accented form of it. */
static void en_diacritic(gen_rng *r, char *w, size_t cap) {
    /* letter, then its accented forms (lowercase; an uppercase letter takes the uppercase form,
     * which is the code point minus 0x20 in Latin-1, but U+0178 for U+00FF, and minus 1 in
     * Latin Extended-A for the letters listed here) */
    static const struct { char c; uint16_t cp[9]; } tab[] = {
        {'a', {0xE1, 0xE0, 0xE2, 0xE4, 0xE3, 0xE5, 0x105, 0x103, 0x101}}, {'c', {0xE7, 0x107, 0x10D, 0x109, 0x10B}},
        {'d', {0x10F, 0x111}}, {'e', {0xE9, 0xE8, 0xEA, 0xEB, 0x119, 0x11B, 0x113, 0x117}},
        {'g', {0x11F, 0x121, 0x123}}, {'i', {0xED, 0xEC, 0xEE, 0xEF, 0x12B, 0x12F}},
        {'l', {0x142, 0x13E, 0x13A, 0x13C}}, {'n', {0xF1, 0x144, 0x148, 0x146}},
        {'o', {0xF3, 0xF2, 0xF4, 0xF6, 0xF5, 0xF8, 0x151, 0x14D}}, {'r', {0x159, 0x155}},
        {'s', {0x15B, 0x161, 0x15F}}, {'t', {0x165, 0x163}},
        {'u', {0xFA, 0xF9, 0xFB, 0xFC, 0x16F, 0x171, 0x16B, 0x173}}, {'y', {0xFD, 0xFF}},
        {'z', {0x17A, 0x17C, 0x17E}}};
    size_t n = strlen(w), cand[48];
    int nc = 0;
    for (size_t i = 0; i < n && nc < 48; i++) {
        char c = (char)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] + 32 : w[i]);
        for (size_t k = 0; k < sizeof tab / sizeof *tab; k++)
            if (tab[k].c == c) { cand[nc++] = i; break; }
    }
    if (!nc || n + 2 >= cap) return;
    size_t i = cand[0] == 0 && gen_rng_chance(r, 40, 100) ? 0 : cand[gen_rng_below(r, (uint32_t)nc)];
    int upper = w[i] >= 'A' && w[i] <= 'Z';
    char c = (char)(upper ? w[i] + 32 : w[i]);
    size_t k = 0;
    while (tab[k].c != c) k++;
    int m = 0;
    while (m < 9 && tab[k].cp[m]) m++;
    uint32_t cp = tab[k].cp[gen_rng_below(r, (uint32_t)m)];
    if (upper) cp = cp == 0xFF ? 0x178 : cp < 0x100 ? cp - 0x20 : cp - 1;
    memmove(w + i + 2, w + i + 1, n - i); /* with the NUL; every letter here is 2 bytes of UTF-8 */
    w[i] = (char)(0xC0 | (cp >> 6)), w[i + 1] = (char)(0x80 | (cp & 0x3F));
}

/* An invented capitalized name of kind (first, last, organization root, place) that is no
 * held-out entry: syllables, and with --shapes a real-name shape. */
static const char *en_novel_word(const en_data *d, int kind, gen_rng *r) {
    static const char *const pre[] = {"Port", "San", "Santa", "Saint", "New", "Mount", "Cape", "Lake", "La", "North"};
    static const char *const suf[] = {"Bay", "City", "Island", "Valley", "Springs", "Falls", "Heights", "Beach"};
    /* name particles, which keep a lowercase word (or a hyphen) inside one name */
    static const char *const last_part[] = {"van ", "Van ", "van der ", "Van der ", "van den ", "de ", "De ", "de la ",
                                            "del ", "della ", "di ", "da ", "dos ", "du ", "von ", "von der ", "ter ",
                                            "ten ", "bin ", "ibn ", "ben ", "al-", "el-", "Al-", "le ", "La "};
    static const char *const place_part[] = {"de", "del", "do", "da", "la", "am", "upon", "on", "en", "di", "sur",
                                             "es", "el", "al", "los", "las", "les", "le", "im", "an der", "of"};
    /* places named with "the", which is part of the name ("the Alps", "the Hague") */
    static const char *const the_suf[] = {"s", "s", " Islands", " Mountains", " Hills", " Delta", " Coast", " Highlands"};
    static char ring[4][112];
    static int slot;
    char *w = ring[slot++ & 3], a[48], b[48];
    for (;;) {
        if (en_place_shape_pct && kind == EN_PLACE && gen_rng_chance(r, (uint32_t)en_place_shape_pct, 100)) {
            if (gen_rng_chance(r, 50, 100)) { /* "Stonebrook": a compound, as organization roots are */
                en_compound(r, a);
                snprintf(w, 112, "%s", a);
            } else { /* "Belo Tarun": two plain words, as a person's name is */
                en_syllables(r, a), en_syllables(r, b);
                en_capitalize(a), en_capitalize(b);
                snprintf(w, 112, "%s %s", a, b);
            }
            goto check;
        }
        if (en_last_shape_pct && kind == EN_LAST && gen_rng_chance(r, (uint32_t)en_last_shape_pct, 100)) {
            en_compound(r, a);
            snprintf(w, 112, "%s", a);
            goto check;
        }
        if (en_shape_pct && kind != EN_ORG && gen_rng_chance(r, 50, 100)) en_syllables_broad(r, a, kind == EN_LAST);
        else if (en_compound_pct && kind == EN_ORG && gen_rng_chance(r, (uint32_t)en_compound_pct, 100)) en_compound(r, a);
        else en_syllables(r, a);
        en_capitalize(a);
        snprintf(w, 112, "%s", a);
        if (en_shape_pct && kind != EN_ORG && gen_rng_chance(r, (uint32_t)en_shape_pct, 100)) {
            uint32_t u = gen_rng_below(r, 100);
            if (u < 40) {
                if (en_letters_pct && gen_rng_chance(r, (uint32_t)en_letters_pct, 100)) en_diacritic(r, w, 112);
                else en_accent(r, w, 112);
            } else if (kind == EN_FIRST) {
                en_syllables(r, b);
                b[gen_rng_below(r, 2) + 2] = 0; /* a short second part */
                snprintf(w, 112, "%s-%s", a, b);
            } else if (kind == EN_LAST) {
                if (u < 70) snprintf(w, 112, "%s%s", u < 60 ? "O'" : "Mc", a);
                else snprintf(w, 112, "%s%s", last_part[gen_rng_below(r, sizeof last_part / sizeof *last_part)], a);
            } else {
                en_syllables(r, b);
                en_capitalize(b);
                if (u < 60) snprintf(w, 112, "%s %s", pre[gen_rng_below(r, sizeof pre / sizeof *pre)], a);
                else if (u < 82) snprintf(w, 112, "%s %s", a, suf[gen_rng_below(r, sizeof suf / sizeof *suf)]);
                else if (u < 92) snprintf(w, 112, "%s %s %s", a, place_part[gen_rng_below(r, sizeof place_part / sizeof *place_part)], b);
                else snprintf(w, 112, "the %s%s", a, the_suf[gen_rng_below(r, sizeof the_suf / sizeof *the_suf)]);
            }
        }
    check:;
        int held = 0; /* no held-out entry of any kind: a compound root can be a golden last name */
        for (int k = EN_FIRST; k <= EN_PLACE && !held; k++) {
            const en_list *g = &d->list[k][1];
            for (int i = 0; i < g->n && !held; i++) held = !strcmp(g->s[i], w);
        }
        if (!held && strlen(a) >= 3) return w;
    }
}

static const char *en_pick(const en_data *d, int kind, int g, gen_rng *r) {
    const en_list *l = &d->list[kind][g];
    if (!g && en_novel_pct && kind != EN_TEMPLATE && gen_rng_chance(r, (uint32_t)en_novel_pct, 100))
        return en_novel_word(d, kind, r);
    return l->s[gen_rng_below(r, (uint32_t)l->n)];
}

/* Writes a fresh entity for slot c into buf. */
static void en_entity(const en_data *d, int g, char c, gen_rng *r, char *buf, size_t cap) {
    if (c == 'P') {
        const char *f = en_pick(d, EN_FIRST, g, r), *l = en_pick(d, EN_LAST, g, r);
        if (gen_rng_chance(r, 85, 100)) snprintf(buf, cap, "%s %s", f, l);
        else snprintf(buf, cap, "%s %c. %s", f, 'A' + (int)gen_rng_below(r, 26), l);
    } else if (c == 'O') {
        if (!g && en_of_pct && gen_rng_chance(r, (uint32_t)en_of_pct, 100)) {
            uint32_t u = gen_rng_below(r, 100);
            if (u < 50) {
                size_t nh = sizeof en_of_head / sizeof *en_of_head;
                snprintf(buf, cap, "%s of %s", en_of_head[gen_rng_below(r, (uint32_t)nh)], en_pick(d, EN_PLACE, g, r));
            } else {
                size_t nh = sizeof en_of_field_head / sizeof *en_of_field_head, nf = sizeof en_of_field / sizeof *en_of_field;
                const char *h = en_of_field_head[gen_rng_below(r, (uint32_t)nh)], *f = en_of_field[gen_rng_below(r, (uint32_t)nf)];
                if (u < 75) snprintf(buf, cap, "%s of %s", h, f);
                else snprintf(buf, cap, "%s %s of %s", en_pick(d, EN_ORG, g, r), h, f);
            }
            return;
        }
        if (!g && en_orgs_pct && gen_rng_chance(r, (uint32_t)en_orgs_pct, 100)) {
            const char *root = en_pick(d, EN_ORG, g, r);
            size_t ns = sizeof en_org_suffix_more / sizeof *en_org_suffix_more;
            if (gen_rng_chance(r, 40, 100)) snprintf(buf, cap, "%s", root);
            else snprintf(buf, cap, "%s %s", root, en_org_suffix_more[gen_rng_below(r, (uint32_t)ns)]);
            return;
        }
        uint32_t u = gen_rng_below(r, 100);
        if (u < 75) {
            const char *root = en_pick(d, EN_ORG, g, r);
            size_t ns = sizeof en_org_suffix / sizeof *en_org_suffix;
            snprintf(buf, cap, "%s %s", root, en_org_suffix[gen_rng_below(r, (uint32_t)ns)]);
        } else if (u < 85) {
            snprintf(buf, cap, "%s", en_pick(d, EN_ORG, g, r));
        } else if (u < 95) {
            int n = 3 + (int)gen_rng_below(r, 2);
            for (int i = 0; i < n; i++) buf[i] = (char)('A' + gen_rng_below(r, 26));
            buf[n] = 0;
        } else {
            const char *a = en_pick(d, EN_LAST, g, r), *b;
            do b = en_pick(d, EN_LAST, g, r); while (b == a);
            snprintf(buf, cap, "%s & %s", a, b);
        }
    } else if (c == 'R') { /* an organization as its bare root ("Rampart"): its form tells nothing of its kind */
        snprintf(buf, cap, "%s", en_pick(d, EN_ORG, g, r));
    } else if (c == 'L') {
        snprintf(buf, cap, "%s", en_pick(d, EN_PLACE, g, r));
    } else {
        en_date(r, c, buf, cap);
    }
}

typedef struct {
    char val[EN_N_FIELDS][EN_MAX_ENT][96];
    int n[EN_N_FIELDS];
} en_found;

/* Whether the text so far ends in a determiner and a space ("the ", "its "), where a "the"
 * would be one too many; start: the slot opens a sentence (no word before it counts). */
static int en_after_det(const gen_str *in, int start) {
    static const char *const det[] = {"the", "The", "a", "A", "an", "An", "its", "Its", "their", "Their", "his",
                                      "His", "her", "Her", "our", "Our", "this", "This", "that", "That", "every", "no"};
    if (start || in->n < 2 || in->p[in->n - 1] != ' ') return 0;
    size_t e = in->n - 1, b = e;
    while (b > 0 && in->p[b - 1] != ' ') b--;
    for (size_t k = 0; k < sizeof det / sizeof *det; k++)
        if (strlen(det[k]) == e - b && !memcmp(in->p + b, det[k], e - b)) return 1;
    return 0;
}

/* Fills one template into `in`, recording entities in order. Returns -1 when a value would
 * repeat one already in the example (the caller draws again). */
static int en_fill(const en_data *d, int g, const char *t, gen_rng *r, gen_str *in, en_found *f) {
    for (const char *p = t; *p; p++) {
        if (*p != '{') { gen_str_add(in, p, 1); continue; }
        char c = p[1], v[96];
        if (c == 'w') { /* an invented lowercase word that is no entity (capitalized first in a sentence) */
            if (gen_rng_chance(r, 50, 100)) en_syllables_broad(r, v, 0);
            else en_syllables(r, v);
            if (p == t) en_capitalize(v);
            gen_str_cat(in, v);
            p += 2;
            continue;
        }
        int field = c == 'P' ? EN_PEOPLE : c == 'O' || c == 'R' ? EN_ORGS : c == 'L' ? EN_PLACES : EN_DATES;
        en_entity(d, g, c, r, v, sizeof v);
        if (p == t && v[0] >= 'a' && v[0] <= 'z') return -1; /* "the Alps" cannot open a sentence verbatim */
        for (int k = 0; k < EN_N_FIELDS; k++)
            for (int i = 0; i < f->n[k]; i++)
                if (!strcmp(f->val[k][i], v)) return -1;
        if (f->n[field] == EN_MAX_ENT) return -1;
        strcpy(f->val[field][f->n[field]++], v);
        if (c == 'O' && !g && en_the_org_pct && en_the_org(v) && !en_after_det(in, p == t) &&
            gen_rng_chance(r, (uint32_t)en_the_org_pct, 100))
            gen_str_cat(in, p == t ? "The " : "the ");
        gen_str_cat(in, v);
        p += 2;
    }
    return 0;
}

/* --grammar P (train and valid only; 0 by default, which draws nothing extra): each sentence
 * is, with probability P%, expanded from data/grammar.txt instead of taken from the template
 * list, so training sees many more sentence shapes than the 89 templates. */
static int en_grammar_pct = 0;

/* The template for one sentence: the listed one, or (see --grammar) a grammar expansion. */
static const char *en_sentence(const en_data *d, int g, const char *listed, gen_rng *r, char *buf, size_t cap) {
    static gen_str raw; /* scratch, kept between calls (the generator is single-threaded) */
    if (g || !en_grammar_pct || !gen_rng_chance(r, (uint32_t)en_grammar_pct, 100)) return listed;
    while (en_grammar_template(d, r, &raw, buf, cap)) {}
    return buf;
}

/* One example: 1 template (60%) or 2 distinct ones. */
static int en_example(const en_data *d, int g, gen_rng *r, gen_str *in, gen_str *out) {
    const en_list *tl = &d->list[EN_TEMPLATE][g];
    char gt[2][240]; /* a grammar sentence longer than this is drawn again */
    for (;;) {
        en_found f;
        memset(f.n, 0, sizeof f.n);
        gen_str_clear(in);
        int nt = gen_rng_chance(r, 40, 100) && tl->n > 1 ? 2 : 1;
        uint32_t t0 = gen_rng_below(r, (uint32_t)tl->n), t1 = t0;
        if (nt == 2) while (t1 == t0) t1 = gen_rng_below(r, (uint32_t)tl->n);
        if (en_fill(d, g, en_sentence(d, g, tl->s[t0], r, gt[0], sizeof gt[0]), r, in, &f)) continue;
        if (nt == 2) {
            gen_str_add(in, " ", 1);
            if (en_fill(d, g, en_sentence(d, g, tl->s[t1], r, gt[1], sizeof gt[1]), r, in, &f)) continue;
        }
        gen_str_clear(out);
        gen_str_add(out, "{", 1);
        for (int k = 0; k < EN_N_FIELDS; k++) {
            if (k) gen_str_add(out, ",", 1);
            gen_str_json(out, en_fields[k], strlen(en_fields[k]));
            gen_str_add(out, ":[", 2);
            for (int i = 0; i < f.n[k]; i++) {
                if (i) gen_str_add(out, ",", 1);
                gen_str_json(out, f.val[k][i], strlen(f.val[k][i]));
            }
            gen_str_add(out, "]", 1);
        }
        gen_str_add(out, "}", 1);
        return in->oom || out->oom ? -1 : 0;
    }
}

static int en_emit(FILE *fp, const gen_str *in, const gen_str *out, gen_str *line) {
    gen_str_clear(line);
    gen_str_cat(line, "{\"input\": ");
    gen_str_json(line, in->p, in->n);
    gen_str_cat(line, ", \"output\": ");
    gen_str_json(line, out->p, out->n);
    gen_str_cat(line, "}\n");
    if (line->oom) return -1;
    return fwrite(line->p, 1, line->n, fp) == line->n ? 0 : -1;
}

/* Writes n examples of split (golden: always EN_GOLDEN_N from EN_GOLDEN_SEED, no duplicate
 * inputs). Train and valid never use a held-out entry, so they cannot meet a golden input;
 * they are still checked against the golden inputs' hashes, as the haiku generator does. */
static int en_generate(const en_data *d, en_split split, long n, uint64_t seed, FILE *fp) {
    gen_set golden = {0};
    gen_str in = {0}, out = {0}, line = {0};
    gen_rng r;
    int rc = 0;
    gen_rng_seed(&r, EN_GOLDEN_SEED);
    for (long i = 0; i < EN_GOLDEN_N && rc == 0;) {
        if (en_example(d, 1, &r, &in, &out)) { rc = -1; break; }
        int added = gen_set_add(&golden, gen_hash(in.p, in.n));
        if (added < 0) rc = -1;
        else if (added) {
            if (split == EN_GOLDEN) rc = en_emit(fp, &in, &out, &line);
            i++;
        }
    }
    if (split == EN_TRAIN || split == EN_VALID) {
        gen_rng_seed(&r, split == EN_VALID ? seed ^ EN_VALID_SALT : seed);
        for (long i = 0; i < n && rc == 0;) {
            if (en_example(d, 0, &r, &in, &out)) { rc = -1; break; }
            if (gen_set_has(&golden, gen_hash(in.p, in.n))) continue;
            rc = en_emit(fp, &in, &out, &line);
            i++;
        }
    }
    if (split == EN_DEV) { /* golden names in the dev templates: a second held-out set */
        gen_set dev = {0};
        if (!d->list[EN_TEMPLATE][2].n) rc = -1;
        gen_rng_seed(&r, EN_DEV_SEED);
        for (long i = 0; i < EN_GOLDEN_N && rc == 0;) {
            if (en_example(d, 2, &r, &in, &out)) { rc = -1; break; }
            int added = gen_set_add(&dev, gen_hash(in.p, in.n));
            if (added < 0) rc = -1;
            else if (added) rc = en_emit(fp, &in, &out, &line), i++;
        }
        gen_set_free(&dev);
    }
    gen_set_free(&golden);
    gen_str_free(&in);
    gen_str_free(&out);
    gen_str_free(&line);
    return rc;
}

#ifndef GEN_NO_MAIN
static int usage(void) {
    fprintf(stderr, "usage: gen-entities [--split train|valid|golden|dev] [--n N] [--seed S] [--novel PERCENT] [--data DIR]\n"
                    "                    [--shapes PERCENT] [--letters PERCENT] [--compound PERCENT] [--orgs PERCENT]\n"
                    "                    [--place-shapes PERCENT] [--last-shapes PERCENT] [--of PERCENT] [--the-org PERCENT]\n"
                    "                    [--grammar PERCENT] [--grammar-file NAME]\n"
                    "                    [-o FILE]\n");
    return 2;
}

int main(int argc, char **argv) {
    /* the options that take a percentage */
    static const struct { const char *name; int *pct; } pct_opts[] = {
        {"--shapes", &en_shape_pct},   {"--grammar", &en_grammar_pct},         {"--letters", &en_letters_pct},
        {"--of", &en_of_pct},          {"--the-org", &en_the_org_pct},         {"--orgs", &en_orgs_pct},
        {"--last-shapes", &en_last_shape_pct}, {"--place-shapes", &en_place_shape_pct},
        {"--compound", &en_compound_pct}, {"--novel", &en_novel_pct}};
    const char *dir = "tasks/entities/data", *out_path = NULL, *split_name = "train";
    long n = -1;
    uint64_t seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc) return usage();
        const char *v = argv[++i];
        char *end;
        if (!strcmp(a, "--split")) split_name = v;
        else if (!strcmp(a, "--data")) dir = v;
        else if (!strcmp(a, "-o")) out_path = v;
        else if (!strcmp(a, "--n")) { n = strtol(v, &end, 10); if (*end || n < 0) return usage(); }
        else if (!strcmp(a, "--seed")) { seed = strtoull(v, &end, 10); if (*end) return usage(); }
        else if (!strcmp(a, "--grammar-file")) en_grammar_file = v;
        else {
            size_t k = 0;
            while (k < sizeof pct_opts / sizeof *pct_opts && strcmp(a, pct_opts[k].name)) k++;
            if (k == sizeof pct_opts / sizeof *pct_opts) return usage();
            long p = strtol(v, &end, 10);
            if (*end || p < 0 || p > 100) {
                fprintf(stderr, "gen-entities: %s takes a percentage from 0 to 100, not '%s'\n", a, v);
                return 2;
            }
            *pct_opts[k].pct = (int)p;
        }
    }
    en_split split;
    if (!strcmp(split_name, "train")) split = EN_TRAIN;
    else if (!strcmp(split_name, "valid")) split = EN_VALID;
    else if (!strcmp(split_name, "golden")) split = EN_GOLDEN;
    else if (!strcmp(split_name, "dev")) split = EN_DEV;
    else return usage();
    if (n < 0) n = split == EN_VALID ? 2000 : 50000;
    char err[512];
    en_data d;
    if (en_data_load(dir, &d, err, sizeof err)) { fprintf(stderr, "gen-entities: %s\n", err); return 1; }
    if (split == EN_DEV && !d.list[EN_TEMPLATE][2].n) { /* before -o truncates anything */
        fprintf(stderr, "gen-entities: %s/templates.txt has no '## dev' section\n", dir);
        en_data_free(&d);
        return 1;
    }
    FILE *fp = out_path ? fopen(out_path, "wb") : stdout;
    if (!fp) { fprintf(stderr, "gen-entities: %s: %s\n", out_path, strerror(errno)); en_data_free(&d); return 1; }
    int rc = en_generate(&d, split, n, seed, fp);
    if (fp != stdout) rc |= fclose(fp);
    else rc |= fflush(fp);
    en_data_free(&d);
    if (rc) { fprintf(stderr, "gen-entities: write failed\n"); return 1; }
    return 0;
}
#endif
