#!/usr/bin/env python3
"""Prints the <wsj_nn> and <wsj_nns> rules of tasks/entities/data/grammar.txt: the N most
frequent singular and plural common nouns of the Wall Street Journal part-of-speech lexicon
in Debian's festlex-poslex, counted as tasks/haiku/make_lexicon.py counts words.

Offline data preparation, run once from the repository root; the generator reads only the
committed grammar:

    apt-get install festlex-poslex
    python3 tasks/entities/make_nouns.py 1000

A word is kept when it is lowercase a-z, at least three letters, and at least 80% of its
estimated count is one tag (nn or nns), so words that are as often verbs or names stay out."""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "haiku"))
from make_lexicon import wsj_tag_counts  # noqa: E402


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    kept = {"nn": [], "nns": []}
    for w, c in wsj_tag_counts().items():
        if not re.fullmatch(r"[a-z]{3,}", w) or not c:
            continue
        total = sum(c.values())
        best = max(c, key=c.get)
        if best in kept and c[best] / total > 0.8:
            kept[best].append((total, w))
    for tag in ("nn", "nns"):
        words = [w for _, w in sorted(kept[tag], reverse=True)[:n]]
        for i in range(0, len(words), 16):
            print("<wsj_%s> = %s" % (tag, " | ".join(words[i:i + 16])))


if __name__ == "__main__":
    main()
