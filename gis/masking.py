"""Server-side de-identification (脱敏) of ID numbers and phone numbers.

Lists, exports and API responses show these masked by default; the full value needs a permission and
a stated reason (see the access log). Masking happens on the server so the full value never reaches a
browser that was not allowed to see it. Every function here passes ``None`` through, puts one ``*`` in
place of each hidden character (so a masked column still lines up) and is idempotent: masking a masked
value changes nothing.

>>> mask_id_number("110101199003071234")
'110101********1234'
>>> mask_phone("13812348000")
'138****8000'
>>> mask_text("张三，身份证110101199003071234，电话138 1234 8000")
'张三，身份证110101********1234，电话138 **** 8000'
"""

from __future__ import annotations

import re

from gis.validation import ValidationError, validate_phone

_STAR = "*"


def _keep_ends(value: str, head: int, tail: int) -> str:
    hidden = len(value) - head - tail
    return value[:head] + _STAR * hidden + value[len(value) - tail :]


def _mask_short(value: str) -> str:
    # Keep at most two characters at each end and hide at least half: a 9-character passport number
    # shows 2 + 2, a 4-character one 1 + 1, anything shorter nothing.
    keep = min(2, len(value) // 4)
    return _keep_ends(value, keep, keep)


def mask_id_number(value: str | None) -> str | None:
    """Mask an identity document number.

    18-character citizen numbers keep the address code and the last four (order code + check
    character), hiding the birth date; old 15-digit numbers keep the address code and the 3-digit
    order code. Any other document number (passport, permit) keeps at most two characters at each end.

    >>> mask_id_number("320106800307123")
    '320106******123'
    >>> mask_id_number("E12345678")
    'E1*****78'
    """
    if value is None:
        return None
    value = value.strip()
    if len(value) == 18:
        return _keep_ends(value, 6, 4)
    if re.fullmatch(r"[\d*]{15}", value):  # '*' too: a masked value masks to itself
        return _keep_ends(value, 6, 3)
    return _mask_short(value)


def mask_phone(value: str | None) -> str | None:
    """Mask a phone number: mobiles keep the first 3 and last 4 digits, landlines the area code and the
    last 2–4 digits of the local number (an extension is not personal and stays). Numbers come back in
    the canonical form of :func:`gis.validation.validate_phone`.

    >>> mask_phone("+86 138-1234-8000")
    '138****8000'
    >>> mask_phone("(025)8345 1234 转 808")
    '025-****1234-808'
    >>> mask_phone("8345123")
    '****123'
    """
    if value is None:
        return None
    text = value.strip()
    try:
        text = validate_phone(text)
    except ValidationError:
        pass  # malformed, or masked already: mask what is there
    if re.fullmatch(r"1[\d*]{10}", text):
        return _keep_ends(text, 3, 4)
    landline = re.fullmatch(r"(?:(?P<area>0\d{2,3})-)?(?P<local>[\d*]{5,8})(?P<ext>-\d{1,6})?", text)
    if landline:
        local = landline["local"]
        shown = min(4, max(2, len(local) - 4))  # hide at least four digits where there are enough
        area = f"{landline['area']}-" if landline["area"] else ""
        return f"{area}{_keep_ends(local, 0, shown)}{landline['ext'] or ''}"
    return _mask_short(text)


# Digit boundaries only (not letters): "tel13812348000" and "ID110101199003071234" in a log line must
# still be caught; over-masking a look-alike number is the safe mistake.
_ID18 = r"[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx]"
_ID15 = r"[1-9]\d{5}\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}"
_MOBILE = r"(?:\+?86[-\s]?)?1[3-9]\d[-\s]?\d{4}[-\s]?\d{4}"
_SENSITIVE = re.compile(
    rf"(?<!\d)(?:(?P<id18>{_ID18})|(?P<id15>{_ID15})|(?P<mobile>{_MOBILE}))(?!\d)", re.ASCII
)


def _mask_match(match: re.Match[str]) -> str:
    found = match.group()
    if match["mobile"] is None:
        return mask_id_number(found)
    # Star the middle four digits in place, so "138 1234 8000" keeps its spacing.
    digit_positions = [i for i, char in enumerate(found) if char.isdigit()]
    middle = set(digit_positions[-8:-4])
    return "".join(_STAR if i in middle else char for i, char in enumerate(found))


def mask_text(text: str | None) -> str | None:
    """Mask every citizen ID number and mobile number found in free text (log lines, event contents).

    >>> mask_text("联系人 13812348000，备用 +86 139-0000-1111")
    '联系人 138****8000，备用 +86 139-****-1111'
    """
    if text is None:
        return None
    return _SENSITIVE.sub(_mask_match, text)
