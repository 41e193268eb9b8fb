#!/usr/bin/env python3
"""Regenerates tasks/haiku/lexicon.tsv: word -> syllable count for the haiku task.

Offline data preparation (the generator itself, gen.c, is C). Needs Debian's festlex-cmu
(the CMU pronouncing dictionary, syllabified, in Festival's format) and festlex-poslex
(Festival's part-of-speech lexicon from the Wall Street Journal, used as a frequency proxy):

    apt-get install festlex-cmu festlex-poslex
    python3 tasks/haiku/make_lexicon.py > tasks/haiku/lexicon.tsv

Rules (documented in tasks/README.md):
- syllables = number of syllables in the CMU entry, each of which must hold exactly one vowel
  phone (entries where that cross-check fails are dropped);
- words: lowercase a-z only, at least two letters (plus "a"); every CMU entry of the word
  (one per part of speech) must agree on the count, else the word is ambiguous and dropped;
- words with a vowel-only syllable right after a vowel-final one ("fire", "hour", "every",
  "idea") are dropped: people count those differently and the task needs one truth;
- frequency proxy: estimated Wall Street Journal count from the POS lexicon (log P(word|tag)
  turned back into counts, see wsj_counts); proper nouns (tagged mostly NNP/NNPS) dropped;
- a short stop list (abbreviations, foreign particles, a few topics out of place in a demo);
- the N most frequent survivors are kept, plus a hand-written list of haiku words (EXTRA)
  whatever their frequency;
- every 20th word in frequency order past rank 1000 (never an EXTRA word) is marked "oov":
  the generator never puts those into training data, only into golden_oov.jsonl.

Output columns: word, syllables, split (train|oov), rank (1 = most frequent).
"""
import math
import re
import sys

CMU = "/usr/share/festival/dicts/cmu/cmudict-0.4.out"
POS = "/usr/share/festival/dicts/wsj.wp39.poslexR"
N_KEEP = 3000
OOV_EVERY = 20
OOV_FROM = 1000  # the 1000 commonest words ("what", "off") always stay in training
# Not words a formatter's example inputs should show (abbreviations, foreign particles, or
# topics out of place in a demo).
# Words a haiku reader expects (nature, seasons, the classic frog-and-pond poem) that a
# financial newspaper rarely prints: kept whatever their frequency, always in training.
EXTRA = """
an old silent pond frog jumps into splash silence again moon moonlight sun sunlight sunset
sunrise dawn dusk twilight evening morning night noon shadow shadows light dark star stars
sky cloud clouds rain rainy snow snowy snowfall frost ice wind winds breeze storm thunder
lightning fog mist dew spring summer autumn winter season leaf leaves tree trees branch
branches root roots blossom blossoms flower flowers petal petals bloom rose lily lotus
cherry plum pine willow maple oak bamboo moss grass meadow field fields hill hills mountain
mountains valley river rivers stream creek lake sea ocean wave waves shore beach sand stone
stones rock rocks pebble island forest woods garden path road bridge gate temple bell bells
lantern candle fire smoke ash ember warm cold cool chill quiet still calm soft gentle lonely
alone empty deep shallow wide narrow bright pale golden silver green blue red white black
grey gray purple yellow orange bird birds crow crows sparrow swallow heron crane owl hawk
eagle duck geese goose fish carp butterfly moth bee bees cricket crickets cicada firefly
fireflies spider snail deer fox rabbit horse cat dog mouse wolf bear song sing sings
singing sleep sleeping dream dreams wake walk walking fall falling falls drift drifting
float floating fly flying flies rise rising sink rest wait waiting listen hear look watch
smell taste touch breath breathe whisper whispers echo echoes voice heart mind soul memory
tear tears smile laugh cry home house roof door window wall village town city boat sail
tea cup bowl rice bread salt honey apple apples peach pear grape melon seed seeds harvest
""".split()
STOP = {"ok", "de", "la", "du", "abortion", "rape", "sex", "incest"}
VOWELS = {"aa", "ae", "ah", "ao", "aw", "ax", "axr", "ay", "eh", "er", "ey", "ih", "ix", "iy",
          "ow", "oy", "uh", "uw"}

ENTRY = re.compile(r'^\("([^"]*)" \S* \((.*)\)\)\s*$')
SYL = re.compile(r"\(\(([a-z0-9 ]+)\) ([0-9])\)")


def cmu_syllables():
    counts = {}  # word -> set of syllable counts (None = entry failed a check)
    with open(CMU, encoding="latin-1") as f:
        for line in f:
            m = ENTRY.match(line)
            if not m:
                continue
            word, body = m.group(1), m.group(2)
            syls = [s.group(1).split() for s in SYL.finditer(body)]
            n = len(syls)
            ok = n > 0 and all(sum(p in VOWELS for p in s) == 1 for s in syls)
            for i in range(1, n):  # hiatus: vowel-only syllable after a vowel-final one
                if all(p in VOWELS for p in syls[i]) and syls[i - 1][-1] in VOWELS:
                    ok = False
            counts.setdefault(word, set()).add(n if ok else None)
    return {w: next(iter(c)) for w, c in counts.items() if len(c) == 1 and None not in c}


def wsj_tag_counts():
    """{word: {tag: count}}: count(word, tag) = P(word|tag) * count(tag). The lexicon stores log
    P(word|tag); count(tag) is estimated as 1 / (smallest P(word|tag) seen), i.e. the rarest
    word of an open tag is taken to be a singleton. Closed tags (few words: determiners,
    the tags 'of', 'to', 'ex', ...) have no singletons, so their count is taken as large instead.
    (tasks/entities/make_nouns.py uses it too.)"""
    entries = []
    by_tag = {}
    with open(POS, encoding="latin-1") as f:
        for line in f:
            m = re.match(r'^\("([^"]*)" \((.*?)\) \(\) \)', line)
            if not m:
                continue
            tags = [(t, float(p)) for t, p in re.findall(r"\(([a-z$]+) (-?[0-9.]+)\)", m.group(2))]
            entries.append((m.group(1), tags))
            for t, p in tags:
                by_tag.setdefault(t, []).append(p)
    tag_count = {}
    for t, ps in by_tag.items():
        tag_count[t] = math.exp(-min(ps)) if len(ps) >= 50 else 20000.0
    return {w: {t: math.exp(p) * tag_count[t] for t, p in tags} for w, tags in entries}


def wsj_counts():
    """{word: (estimated count, fraction of it tagged as a proper noun)}."""
    out = {}
    for w, c in wsj_tag_counts().items():
        total = sum(c.values())
        proper = c.get("nnp", 0) + c.get("nnps", 0)
        out[w] = (total, proper / total if total else 1.0)
    return out


def main():
    syl = cmu_syllables()
    freq = wsj_counts()
    cands = []
    for w, n in syl.items():
        if not re.fullmatch(r"[a-z]+", w) or (len(w) < 2 and w != "a"):
            continue
        if w in STOP or w in EXTRA or w not in freq:
            continue
        total, proper = freq[w]
        if proper > 0.5:
            continue
        cands.append((-total, w, n))
    cands.sort()
    kept = cands[:N_KEEP]
    extra = sorted(set(w for w in EXTRA if w in syl))
    missing = sorted(set(EXTRA) - set(extra))
    if missing:
        sys.stderr.write("make_lexicon: not in CMU or ambiguous, left out: %s\n" % " ".join(missing))
    # extras slot in by frequency (0 when the WSJ lexicon lacks them); ties alphabetical
    rows = kept + [(-freq.get(w, (0.0, 0))[0], w, syl[w]) for w in extra]
    rows.sort()
    out = sys.stdout
    out.write("# word\tsyllables\tsplit\trank  (generated by tasks/haiku/make_lexicon.py)\n")
    for rank, (_, w, n) in enumerate(rows, 1):
        split = "oov" if rank % OOV_EVERY == 0 and rank > OOV_FROM and w not in EXTRA else "train"
        out.write(f"{w}\t{n}\t{split}\t{rank}\n")


if __name__ == "__main__":
    main()
