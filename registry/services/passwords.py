"""The password policy (OWASP ASVS 5.0, level 2, chapter 6): long enough, not common, not one's own name.

* A password is measured in Unicode code points after NFC normalisation, so that "é" typed as one
  character or as "e" plus a combining accent counts the same: at least ``MIN_LENGTH`` (12), at
  most ``MAX_LENGTH`` (1000, the most the sign-in form accepts; ASVS asks for at least 64).
* No composition rules (no "a digit and a capital"): ASVS and NIST SP 800-63B advise against them.
* Refused when, case-folded, it is on the list of breached and common passwords shipped in
  ``registry/data/common-passwords.txt`` (from SecLists, MIT licence; see ``registry/data/README.md``),
  or when it is the user's e-mail address, the part before its @, or the user's name.

Spaces are allowed anywhere and kept: a passphrase is a good password. The password itself is
never changed (no trimming); only the checks compare normalised forms.
"""

from __future__ import annotations

import unicodedata
from functools import cache
from pathlib import Path

from flask_babel import lazy_gettext as _l

MIN_LENGTH = 12
MAX_LENGTH = 1000
COMMON_LIST = Path(__file__).resolve().parent.parent / "data" / "common-passwords.txt"

TOO_SHORT = _l("Use at least 12 characters.")
TOO_LONG = _l("Use at most 1000 characters.")
TOO_COMMON = _l(
    "This password is too common: it is on a list of passwords known to attackers. Choose another."
)
OWN_NAME = _l("Do not use your e-mail address or your name as your password.")


def _fold(text: str) -> str:
    """``text`` as the checks compare it: NFC-normalised and case-folded."""
    return unicodedata.normalize("NFC", text).casefold()


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common and breached passwords, case-folded (read once per process)."""
    with COMMON_LIST.open(encoding="utf-8") as fh:
        return frozenset(_fold(line.rstrip("\n")) for line in fh if line.strip())


def problems(password: str, email: str = "", names: tuple[str, ...] = ()) -> list[str]:
    """What is wrong with ``password`` for the user of ``email`` and ``names``: [] when it may be used.

    The messages are lazy strings, translated where they are shown (English on the command line).
    """
    length = len(unicodedata.normalize("NFC", password))
    if length < MIN_LENGTH:
        return [TOO_SHORT]
    if length > MAX_LENGTH:
        return [TOO_LONG]
    folded = _fold(password)
    email = _fold(email.strip())
    own = {email, email.partition("@")[0]} if email else set()
    own |= {_fold(name.strip()) for name in names if name.strip()}
    joined = " ".join(_fold(name.strip()) for name in names if name.strip())
    if joined:
        own |= {joined, joined.replace(" ", "")}
    if folded.strip() in own or folded.replace(" ", "") in own:
        return [OWN_NAME]
    if folded in common_passwords() or folded.strip() in common_passwords():
        return [TOO_COMMON]
    return []
