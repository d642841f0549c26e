"""Token sequences for text models: the language of a word, from the word lists Debian ships.

    apt-get install wamerican wngerman wfrench wspanish witalian      # → /usr/share/dict/
    juanji train --model text_cnn --data words --optimizer adam --lr 0.003 --epochs 4

Task ``words``: a lower-cased word (``stadtbahn``, ``aujourd`` …) → english, german, french, spanish or
italian.  Words are sequences of character ids (0 pads a word shorter than ``SEQ_LEN``; longer words
keep their first ``SEQ_LEN`` letters).  Words found in more than one list (``hotel``, ``piano``) are left
out: their language is undecidable.  Letter n-grams (``sch``, ``ght``, ``ción``, ``eaux``, ``zz``) give the
language away, which is what a text CNN's filters with max-over-time pooling detect.  A character-level
CNN gets most held-out words right (tests/models/test_text_cnn.py asks for at least 86 % after 3 epochs);
the words it misses are mostly short or loan-like.
"""
from __future__ import annotations

import os

import numpy as np

DICT_DIR = "/usr/share/dict"
LANGUAGES = {"english": "american-english", "german": "ngerman", "french": "french", "spanish": "spanish",
             "italian": "italian"}
PACKAGES = "wamerican wngerman wfrench wspanish witalian"
SEQ_LEN = 16
TRAIN_PER_LANGUAGE, TEST_PER_LANGUAGE = 6000, 1000
SEED = 0


class SequenceDataset:
    """Token ids (N, L) int64 with labels (N,) int64 in [0, len(classes)); id 0 is padding and id i ≥ 1
    is ``alphabet[i − 1]``.  ``dataset[index_array]`` is a batch (tokens (B, L), labels (B,)), as for
    ``ArrayDataset``, so ``DataLoader`` batches it unchanged."""

    def __init__(self, tokens, labels, classes, alphabet: str):
        tokens, labels = np.asarray(tokens), np.asarray(labels)
        if tokens.ndim != 2 or tokens.dtype.kind not in "iu":
            raise ValueError(f"tokens must be a 2-d integer array (N, L), got {tokens.dtype} {tokens.shape}")
        if labels.shape != (len(tokens),) or labels.dtype.kind not in "iu":
            raise ValueError(f"labels must be {len(tokens)} integers, got {labels.dtype} {labels.shape}")
        if tokens.size and (tokens.min() < 0 or tokens.max() > len(alphabet)):
            raise ValueError(f"token ids must lie in 0..{len(alphabet)} (the alphabet and padding)")
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(f"labels must lie in 0..{len(classes) - 1} ({len(classes)} classes)")
        self.tokens, self.labels = tokens.astype(np.int64), labels.astype(np.int64)
        self.classes, self.alphabet = list(classes), alphabet

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index):
        return self.tokens[index], self.labels[index]

    @property
    def input_shape(self) -> tuple[int]:
        return (self.tokens.shape[1],)

    def model_kwargs(self) -> dict:
        """What a text model needs to know of the data: ``vocab_size`` (ids incl. padding) and ``seq_len``."""
        return {"vocab_size": len(self.alphabet) + 1, "seq_len": self.tokens.shape[1]}


def encode(words, alphabet: str, seq_len: int = SEQ_LEN) -> np.ndarray:
    """(N, seq_len) int64 character ids of ``words``: 0-padded on the right, cut after ``seq_len``."""
    ids = {char: i + 1 for i, char in enumerate(alphabet)}
    tokens = np.zeros((len(words), seq_len), dtype=np.int64)
    for row, word in enumerate(words):
        unknown = [c for c in word if c not in ids]
        if unknown:
            raise ValueError(f"word {word!r}: character {unknown[0]!r} is not in the alphabet")
        codes = [ids[c] for c in word[:seq_len]]
        tokens[row, :len(codes)] = codes
    return tokens


def read_word_lists(root: str = DICT_DIR) -> dict[str, list[str]]:
    """language → sorted lower-case words (letters only) of Debian's list, minus words in several lists."""
    words = {}
    for language, file_name in LANGUAGES.items():
        path = os.path.join(root, file_name)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{path} not found: the 'words' task needs Debian's word lists "
                                    f"(apt-get install {PACKAGES})")
        with open(path, encoding="utf-8") as file:
            words[language] = {w for w in (line.strip().lower() for line in file) if len(w) > 1 and w.isalpha()}
    shared = set()
    languages = list(words)
    for i, a in enumerate(languages):
        for b in languages[i + 1:]:
            shared |= words[a] & words[b]
    return {language: sorted(found - shared) for language, found in words.items()}


def word_languages(root: str = DICT_DIR, train_per_language: int = TRAIN_PER_LANGUAGE,
                   test_per_language: int = TEST_PER_LANGUAGE, seq_len: int = SEQ_LEN, seed: int = SEED):
    """(train, test) SequenceDatasets of words drawn (seeded) from each language's list, disjoint, balanced."""
    lists = read_word_lists(root)
    rng = np.random.default_rng(seed)
    per_language = train_per_language + test_per_language
    picked = {}
    for language, words in lists.items():
        if len(words) < per_language:
            raise ValueError(f"{LANGUAGES[language]}: {len(words)} usable words, fewer than the "
                             f"{per_language} asked for")
        picked[language] = [words[i] for i in rng.choice(len(words), per_language, replace=False)]
    alphabet = "".join(sorted({c for words in picked.values() for word in words for c in word}))
    classes = list(lists)

    def dataset(part: slice):
        words = [w for language in classes for w in picked[language][part]]
        labels = np.repeat(np.arange(len(classes)), len(range(per_language)[part]))
        order = rng.permutation(len(words))
        return SequenceDataset(encode([words[i] for i in order], alphabet, seq_len), labels[order], classes,
                               alphabet)

    return dataset(slice(0, train_per_language)), dataset(slice(train_per_language, per_language))


TASKS = {"words": word_languages}


def is_task(data) -> bool:
    """True when ``--data`` names a sequence task (``words``) rather than a folder."""
    return data in TASKS


def load_task(name: str, limit: int | None = None):
    """(train, test) of the task ``name``; ``limit`` keeps the first ``limit`` training sequences."""
    if name not in TASKS:
        raise ValueError(f"unknown sequence task '{name}' (known: {', '.join(TASKS)})")
    if limit is not None and limit < 1:
        raise ValueError(f"--limit must be at least 1, got {limit}")
    train, test = TASKS[name]()
    if limit is not None:
        train = SequenceDataset(train.tokens[:limit], train.labels[:limit], train.classes, train.alphabet)
    return train, test
