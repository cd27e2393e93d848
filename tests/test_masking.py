"""De-identification of ID and phone numbers, alone and inside free text. No database."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gis.masking import mask_id_number, mask_phone, mask_text
from gis.validation import known_region_codes, make_id_number

REGIONS = sorted(code for code in known_region_codes() if code[0] != "0")

id_numbers = st.builds(
    make_id_number,
    region_code=st.sampled_from(REGIONS),
    birth_date=st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date.today()),
    sequence=st.integers(0, 99),
    sex=st.sampled_from(["1", "2"]),
)
mobiles = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
# Free text around the numbers: anything but digits (a digit glued to a number makes it another number)
# and '*' (so the stars counted afterwards are all ours).
filler = st.text(
    alphabet=st.characters(blacklist_categories=("Nd", "Cs"), blacklist_characters="*"), min_size=1
)


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("110101199003071234", "110101********1234"),
        ("11010519491231002X", "110105********002X"),
        (" 110101199003071234 ", "110101********1234"),
        ("320106800307123", "320106******123"),  # old 15-digit number
        ("E12345678", "E1*****78"),  # passport
        ("USA110050122001", "US***********01"),  # old foreigner's permanent residence card
        ("G1234", "G***4"),
        ("AB1", "***"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_id_number_examples(value, masked):
    assert mask_id_number(value) == masked


@pytest.mark.parametrize(
    ("value", "masked"),
    [
        ("13812348000", "138****8000"),
        ("+86 138-1234-8000", "138****8000"),
        ("025-83451234", "025-****1234"),
        ("02583451234", "025-****1234"),
        ("(025)8345 1234 转 808", "025-****1234-808"),
        ("0755-8888666", "0755-****666"),
        ("83451234", "****1234"),
        ("not a phone", "no*******ne"),
        ("", ""),
        (None, None),
    ],
)
def test_mask_phone_examples(value, masked):
    assert mask_phone(value) == masked


@given(id_numbers)
def test_a_masked_id_number_never_shows_the_birth_date(number):
    masked = mask_id_number(number)
    assert masked == number[:6] + "********" + number[14:]
    assert number[6:14] not in masked
    assert mask_id_number(masked) == masked


@given(mobiles)
def test_a_masked_mobile_never_shows_the_middle_digits(mobile):
    masked = mask_phone(mobile)
    assert masked == mobile[:3] + "****" + mobile[7:]
    assert mask_phone(masked) == masked


@given(st.text(min_size=0, max_size=20))
def test_other_document_numbers_show_at_most_half(value):
    stripped = value.strip()
    masked = mask_id_number(value)
    assert len(masked) == len(stripped)
    if len(stripped) in (15, 18) or "*" in stripped:
        return  # citizen-number rules, or a value that is already (partly) masked
    assert 2 * (len(masked) - masked.count("*")) <= len(stripped)
    assert mask_id_number(masked) == masked


@given(
    numbers=st.lists(st.one_of(id_numbers, mobiles), min_size=1, max_size=6),
    gaps=st.lists(filler, min_size=7, max_size=7),
)
def test_mask_text_masks_every_embedded_number(numbers, gaps):
    text = gaps[0] + "".join(number + gap for number, gap in zip(numbers, gaps[1:], strict=False))
    masked = mask_text(text)
    assert len(masked) == len(text)
    for number in numbers:
        assert number not in masked
    ids = sum(1 for n in numbers if len(n) == 18)
    assert masked.count("*") == 8 * ids + 4 * (len(numbers) - ids)


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("身份证110101199003071234，电话13812348000。", "身份证110101********1234，电话138****8000。"),
        ("id=11010519491231002x&tel=138-1234-8000", "id=110105********002x&tel=138-****-8000"),
        ("备用 +86 139 0000 1111", "备用 +86 139 **** 1111"),
        ("旧号 320106800307123", "旧号 320106******123"),
        ("订单号 20240101123456789012 金额 13.80 元", "订单号 20240101123456789012 金额 13.80 元"),
        ("no numbers here", "no numbers here"),
        ("", ""),
    ],
)
def test_mask_text_examples(text, masked):
    assert mask_text(text) == masked
    assert mask_text(masked) == masked


def test_mask_text_passes_none_through():
    assert mask_text(None) is None


@given(st.text(alphabet=st.characters(blacklist_categories=("Nd", "Cs"))))
def test_text_without_digits_is_left_alone(text):
    assert mask_text(text) == text
