"""Input encoders for the neural learner: (question, facts) -> a fixed-length vector.

An encoder is the model's input layer: it writes the question and the instance's facts as
numbers, and computes nothing about the answer (no look-up is followed, no sum is taken). One
per task where the layout is obvious (permutation powering, wildcard search); any other task gets
the generic encoder, a hashed bag of the question's words and the facts' lines, which is weak.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from hch.tasks import permutation_powering, wildcard_search
from hch.tasks.base import NAMES, header

Vector = npt.NDArray[np.float32]
INDEX = {name: i for i, name in enumerate(NAMES)}
K_BITS = 6
GENERIC_WIDTH = 2048


@dataclass(frozen=True)
class Encoder:
    """A named encoding of (question, context) pairs."""

    name: str
    width: int
    encode: Callable[[str, str], Vector]


def _permutation(question: str, context: str) -> Vector:
    """x one-hot, k one-hot and in bits, then sigma as a 64 x 64 one-hot table (x -> sigma(x))."""
    match = re.search(r"sigma\^(\d+)\(\s*([a-h]{2})\s*\)", question)
    vector = np.zeros(64 + 64 + K_BITS + 64 * 64, dtype=np.float32)
    if match is not None:
        k, x = int(match[1]), match[2]
        vector[INDEX[x]] = 1
        vector[64 + min(k, 63)] = 1
        vector[128 : 128 + K_BITS] = [(k >> bit) & 1 for bit in range(K_BITS)]
    vector[128 + K_BITS :] = _sigma_table(context)
    return vector


@lru_cache(maxsize=256)
def _sigma_table(context: str) -> Vector:
    table = np.zeros((64, 64), dtype=np.float32)
    for x, y in permutation_powering.parse(context).items():
        if x in INDEX and y in INDEX:
            table[INDEX[x], INDEX[y]] = 1
    return table.reshape(-1)


STRINGS = [format(i, "06b").replace("0", "a").replace("1", "b") for i in range(64)]


def _wildcard(question: str, context: str) -> Vector:
    """The pattern, 6 positions one-hot over {a, b, *}, then the 64 strings' values (0 if unlisted)."""
    match = re.search(r"matching\s+([ab*]{6})", question)
    vector = np.zeros(18 + 64, dtype=np.float32)
    if match is not None:
        for position, char in enumerate(match[1]):
            vector[3 * position + "ab*".index(char)] = 1
    vector[18:] = _values(context)
    return vector


@lru_cache(maxsize=256)
def _values(context: str) -> Vector:
    values = wildcard_search.parse(context)
    return np.array([values.get(s, 0) for s in STRINGS], dtype=np.float32)


def _bucket(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % GENERIC_WIDTH


def _generic(question: str, context: str) -> Vector:
    """Question words in one half, fact lines in the other, hashed into buckets."""
    vector = np.zeros(2 * GENERIC_WIDTH, dtype=np.float32)
    for word in re.findall(r"\w+", question.lower()):
        vector[_bucket(word)] += 1
    vector[GENERIC_WIDTH:] = _lines(context)
    return vector


@lru_cache(maxsize=256)
def _lines(context: str) -> Vector:
    vector = np.zeros(GENERIC_WIDTH, dtype=np.float32)
    for line in context.splitlines()[1:]:
        vector[_bucket(" ".join(line.split()))] += 1
    return vector


ENCODERS = {
    permutation_powering.HEADER: Encoder("permutation-powering@1", 64 + 64 + K_BITS + 64 * 64, _permutation),
    wildcard_search.HEADER: Encoder("wildcard-search@1", 18 + 64, _wildcard),
}
GENERIC = Encoder("generic@1", 2 * GENERIC_WIDTH, _generic)


def encoder_for(context: str) -> Encoder:
    """The encoder of the task whose header starts `context` (the generic one for other tasks)."""
    return ENCODERS.get(header(context), GENERIC)


def by_name(name: str) -> Encoder:
    for encoder in (*ENCODERS.values(), GENERIC):
        if encoder.name == name:
            return encoder
    raise KeyError(name)


def matrix(encoder: Encoder, inputs: list[tuple[str, str]]) -> Vector:
    """The encoded inputs as rows of one matrix."""
    if not inputs:
        return np.zeros((0, encoder.width), dtype=np.float32)
    return np.stack([encoder.encode(question, context) for question, context in inputs])
