"""send-key's codeset tables: every codeset translates to QEMU's qnum, names work in any
codeset, and unknown keys and codesets are refused with virsh's wording."""

from __future__ import annotations

import pytest

from pyvirt.drivers.qemu.keycodes import CODESETS, lookup, to_qnum
from pyvirt.errors import InvalidConfigError

#: (codeset, code of the key in it, the key's qnum)
CASES = [
    ("linux", "30", 0x1E),  # A
    ("linux", "KEY_A", 0x1E),
    ("linux", "key_enter", 0x1C),
    ("linux", "LEFTCTRL", 0x1D),
    ("linux", "103", 0xC8),  # UP: prefixed in set 1 -> 0x80 | 0x48
    ("xt", "0x1e", 0x1E),
    ("xt_kbd", "0xc8", 0xC8),
    ("qnum", "0x9d", 0x9D),  # RIGHTCTRL
    ("rfb", "0x1c", 0x1C),
    ("atset1", "0xe048", 0xC8),  # UP as E0 48
    ("atset2", "0x1c", 0x1E),  # A
    ("atset2", "0xe075", 0xC8),  # UP
    ("atset2", "0x83", 0x41),  # F7
    ("atset3", "0x1c", 0x1E),  # A: sets 2 and 3 agree
    ("atset3", "0x07", 0x3B),  # F1 differs
    ("usb", "4", 0x1E),  # A
    ("usb", "40", 0x1C),  # ENTER
    ("usb", "224", 0x1D),  # LEFTCTRL
    ("win32", "0x41", 0x1E),  # VK_A
    ("win32", "0x0d", 0x1C),  # VK_RETURN
    ("os_x", "0x00", 0x1E),  # ANSI_A
    ("os_x", "0x24", 0x1C),  # Return
    ("os_x", "0x7e", 0xC8),  # UpArrow
]


@pytest.mark.parametrize(("codeset", "key", "qnum"), CASES)
def test_codeset_to_qnum(codeset: str, key: str, qnum: int) -> None:
    assert to_qnum(codeset, [key]) == [qnum]


def test_ctrl_alt_del_in_every_codeset_by_name() -> None:
    for codeset in CODESETS:
        assert to_qnum(codeset, ["KEY_LEFTCTRL", "KEY_LEFTALT", "KEY_DELETE"]) == [0x1D, 0x38, 0xD3]


def test_letters_agree_across_codesets() -> None:
    """A key's code in each codeset leads back to the same key."""
    for letter in "QWERTYUIOPASDFGHJKLZXCVBNM":
        key = lookup("linux", f"KEY_{letter}")
        for codeset, code in key.codes.items():
            assert code is not None, (letter, codeset)
            assert lookup(codeset, str(code)).name == key.name, (letter, codeset)


def test_usb_letters_are_alphabetical() -> None:
    for i, letter in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
        assert lookup("usb", str(4 + i)).name == f"KEY_{letter}"


@pytest.mark.parametrize(
    ("codeset", "keys", "message"),
    [
        ("dvorak", ["KEY_A"], "unknown codeset 'dvorak'"),
        ("linux", ["KEY_NOPE"], "invalid keycode: 'KEY_NOPE'"),
        ("usb", ["999"], "is not a key of codeset 'usb'"),
        ("xt", ["0xc8"], "is not a key of codeset 'xt'"),  # xt has no prefixed keys
        ("linux", [], "at least one keycode"),
        ("linux", ["KEY_A"] * 17, "too many keycodes"),
    ],
)
def test_refusals(codeset: str, keys: list[str], message: str) -> None:
    with pytest.raises(InvalidConfigError, match=message):
        to_qnum(codeset, keys)
