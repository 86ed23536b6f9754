"""The reserved tokens every vocabulary starts with, and their ids:
``[PAD]`` = 0, ``[START]`` = 1, ``[END]`` = 2, ``[UNK]`` = 3 (no TensorFlow
here, so numpy code can use them)."""

PAD, START, END, UNK = "[PAD]", "[START]", "[END]", "[UNK]"
RESERVED_TOKENS = (PAD, START, END, UNK)
PAD_ID, START_ID, END_ID, UNK_ID = range(4)
