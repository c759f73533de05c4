"""The canonical expression labels and the mappings from each data set's own codes.

Every data set in attnfer stores labels as indices into ``CANONICAL``: FER2013's order, with
contempt (CK+ only) appended so that seven-class data never has a gap.
"""

from __future__ import annotations

CANONICAL: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
    "contempt",
)
BASIC7: tuple[str, ...] = CANONICAL[:7]

# Common spellings of label folder names and file codes -> canonical name.
ALIASES: dict[str, str] = {
    "angry": "angry", "anger": "angry", "an": "angry", "ang": "angry",
    "disgust": "disgust", "disgusted": "disgust", "di": "disgust", "dis": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear", "fe": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "ha": "happy", "hap": "happy",
    "sad": "sad", "sadness": "sad", "sa": "sad",
    "surprise": "surprise", "surprised": "surprise", "su": "surprise", "sur": "surprise",
    "neutral": "neutral", "neutrality": "neutral", "calm": "neutral", "ne": "neutral",
    "contempt": "contempt", "co": "contempt",
}  # fmt: skip

# Each data set's integer codes -> canonical names.
FER2013_CODES: dict[int, str] = dict(enumerate(BASIC7))
RAFDB_CODES: dict[int, str] = {
    1: "surprise", 2: "fear", 3: "disgust", 4: "happy", 5: "sad", 6: "angry", 7: "neutral",
}  # fmt: skip
CKPLUS_CODES: dict[int, str] = {
    0: "neutral", 1: "angry", 2: "contempt", 3: "disgust", 4: "fear", 5: "happy", 6: "sad",
    7: "surprise",
}  # fmt: skip
# AffectNet's codes 8 none, 9 uncertain and 10 no face are not expressions.
AFFECTNET_CODES: dict[int, str] = {
    0: "neutral", 1: "happy", 2: "sad", 3: "surprise", 4: "fear", 5: "disgust", 6: "angry",
    7: "contempt",
}  # fmt: skip
FERPLUS_COLUMNS: tuple[str, ...] = (
    "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt",
    "unknown", "NF",
)  # fmt: skip


def canonical_name(name: str) -> str | None:
    """The canonical label for a spelling such as ``Happiness`` or ``AN``, or None."""
    return ALIASES.get(name.strip().lower())


def index_map(codes: dict[int, str]) -> dict[int, int]:
    """A data set's code -> canonical index mapping, from its code -> name table."""
    return {code: CANONICAL.index(name) for code, name in codes.items()}


def label_names_for(indices) -> tuple[str, ...]:
    """The label names a data set needs: the basic seven, plus contempt when it occurs."""
    return CANONICAL if any(int(i) == 7 for i in indices) else BASIC7
