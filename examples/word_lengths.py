"""A small program to trace: `tokenroll trace run examples/word_lengths.py --call 'longest_first("a bb ccc")'`."""


def longest_first(text):
    words = text.split()
    ordered = sorted(words, key=lambda word: -len(word))
    lengths = {word: len(word) for word in ordered}
    return ordered[0], lengths
