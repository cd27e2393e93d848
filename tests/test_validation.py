"""Citizen ID numbers (GB 11643-1999) and phone numbers refused or accepted at the door. No database."""

from __future__ import annotations

import csv
import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gis.paths import DATA_DIR
from gis.validation import (
    IdNumber,
    ValidationError,
    check_digit,
    make_id_number,
    parse_id_number,
    validate_id_number,
    validate_mobile,
    validate_phone,
)

TODAY = dt.date.today()

with (DATA_DIR / "divisions" / "regions.csv").open(encoding="utf-8") as _f:
    CURRENT_REGIONS = sorted(row["code"] for row in csv.DictReader(_f))


def iso7064_holds(number: str) -> bool:
    """The standard's own definition, independent of the code under test: Σ aᵢ·2^(18−i) ≡ 1 (mod 11)."""
    values = [10 if c == "X" else int(c) for c in number]
    return sum(a * 2 ** (17 - i) for i, a in enumerate(values)) % 11 == 1


def message_of(value, **kwargs) -> str:
    with pytest.raises(ValidationError) as caught:
        validate_id_number(value, **kwargs)
    return caught.value.message


valid_numbers = st.builds(
    make_id_number,
    region_code=st.sampled_from(CURRENT_REGIONS),
    birth_date=st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY),
    sequence=st.integers(0, 99),
    sex=st.sampled_from(["1", "2"]),
)


# ---------------------------------------------------------------- valid numbers


def test_the_standards_example_parses():
    parsed = parse_id_number("11010519491231002X")
    assert parsed == IdNumber("11010519491231002X", "110105", dt.date(1949, 12, 31), "2")
    assert check_digit("11010519491231002") == "X"


@given(
    region=st.sampled_from(CURRENT_REGIONS),
    birth=st.dates(min_value=dt.date(1900, 1, 1), max_value=TODAY),
    sequence=st.integers(0, 99),
    sex=st.sampled_from(["1", "2"]),
)
def test_generated_numbers_pass_and_round_trip(region, birth, sequence, sex):
    number = make_id_number(region, birth, sequence, sex)
    assert len(number) == 18 and iso7064_holds(number)
    parsed = validate_id_number(number, sex=sex, birth_date=birth)
    assert (parsed.number, parsed.region_code, parsed.birth_date, parsed.sex) == (number, region, birth, sex)
    # The order code's parity is the sex: odd for men, even for women.
    assert int(number[16]) % 2 == (1 if sex == "1" else 0)


def test_each_sequence_gives_a_distinct_number():
    birth = dt.date(1985, 6, 1)
    numbers = {make_id_number("320106", birth, s, sex) for s in range(100) for sex in "12"}
    assert len(numbers) == 200


def test_lower_case_x_full_width_digits_and_spaces_are_accepted():
    assert parse_id_number(" 11010519491231002x ").number == "11010519491231002X"
    assert parse_id_number("１１０１０５１９４９１２３１００２Ｘ").number == "11010519491231002X"


def test_abolished_and_residence_permit_codes_are_accepted():
    # 下关区 (320107) merged into 鼓楼区 in 2013; its people keep their numbers.
    old = make_id_number("320106", dt.date(1970, 1, 1), 0, "1").replace("320106", "320107", 1)
    old = old[:17] + check_digit(old[:17])
    assert parse_id_number(old).region_code == "320107"
    taiwan_permit = "83000019900101002"
    assert parse_id_number(taiwan_permit + check_digit(taiwan_permit)).region_code == "830000"


# ---------------------------------------------------------------- every single-character change is caught


@given(
    number=valid_numbers,
    position=st.integers(0, 17),
    replacement=st.sampled_from(list("0123456789X")),
)
def test_any_single_character_change_fails(number, position, replacement):
    if replacement == number[position] or (replacement == "X" and position < 17):
        return
    changed = number[:position] + replacement + number[position + 1 :]
    with pytest.raises(ValidationError):
        parse_id_number(changed, today=TODAY)


# ---------------------------------------------------------------- each failure has its own message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "请填写身份证号"),
        ("  ", "请填写身份证号"),
        ("11010519491231002", "身份证号应为18位，实际为17位"),
        ("11010519491231002X1", "身份证号应为18位，实际为19位"),
        ("110105491231002", "这是15位旧身份证号，已停止使用，请填写18位公民身份号码"),
        ("11010519491231A02X", "身份证号第15位“A”无效：只能是数字，最后一位可以是 X"),
        ("X10105194912310021", "身份证号第1位“X”无效：只能是数字，最后一位可以是 X"),
        ("000000199001010010", "身份证号前6位地址码 000000 不是有效的行政区划代码"),
        ("110105199002300010", "身份证号中的出生日期 19900230 不是有效日期"),
        ("110105199013010010", "身份证号中的出生日期 19901301 不是有效日期"),
        ("440524188001010014", "身份证号中的出生日期 1880-01-01 早于1900年"),
        ("110105194912310025", "身份证号校验位错误：应为 X，实际为 5"),
        ("110105199003071237", "身份证号校验位错误：应为 9，实际为 7"),
    ],
)
def test_failure_messages(value, message):
    with pytest.raises(ValidationError) as caught:
        parse_id_number(value)
    assert caught.value.message == message
    assert caught.value.field == "id_number"
    assert isinstance(caught.value, ValueError) and str(caught.value) == message


def test_a_birth_date_in_the_future_is_refused():
    body = "320106" + "20300101" + "001"
    number = body + check_digit(body)
    with pytest.raises(ValidationError, match="出生日期 2030-01-01 晚于今天"):
        parse_id_number(number, today=dt.date(2029, 12, 31))
    assert parse_id_number(number, today=dt.date(2030, 1, 1)).birth_date == dt.date(2030, 1, 1)


def test_sex_and_birth_date_must_agree_with_the_number():
    number = "11010519491231002X"  # a woman born 1949-12-31
    assert message_of(number, sex="1") == "性别与身份证号不符：身份证号显示为女性"
    with pytest.raises(ValidationError) as caught:
        validate_id_number(number, sex="1")
    assert caught.value.field == "sex"
    assert message_of(number, birth_date=dt.date(1949, 12, 30)) == (
        "出生日期与身份证号不符：身份证号中为 1949-12-31"
    )
    assert message_of(number, birth_date="not a date").startswith("出生日期 not a date 不是有效日期")
    # Agreeing values, ISO strings, and the "unknown"/"unspecified" sex codes all pass.
    assert validate_id_number(number, sex="2", birth_date="1949-12-31").sex == "2"
    assert validate_id_number(number, sex="9", birth_date=dt.datetime(1949, 12, 31, 8, 0)).sex == "2"
    assert validate_id_number(number, sex="0").sex == "2"


def test_make_id_number_refuses_what_it_cannot_build():
    birth = dt.date(1990, 1, 1)
    with pytest.raises(ValidationError, match="地址码 999999"):
        make_id_number("999999", birth, 0, "1")
    with pytest.raises(ValidationError, match="顺序号应在 0 到 99 之间"):
        make_id_number("320106", birth, 100, "1")
    with pytest.raises(ValidationError, match="性别代码应为"):
        make_id_number("320106", birth, 0, "9")
    with pytest.raises(ValidationError, match="17位数字"):
        check_digit("1234")


# ---------------------------------------------------------------- phones


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_every_mainland_mobile_is_accepted(mobile):
    assert validate_mobile(mobile) == mobile
    assert validate_mobile(f"+86 {mobile[:3]}-{mobile[3:7]}-{mobile[7:]}") == mobile
    assert validate_phone(mobile) == mobile


@given(st.from_regex(r"1[0-2][0-9]{9}", fullmatch=True))
def test_mobiles_with_an_unused_second_digit_are_refused(mobile):
    with pytest.raises(ValidationError, match="应以 13–19 开头"):
        validate_mobile(mobile)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "请填写手机号码"),
        ("1381234800", "手机号码应为11位数字，实际为10位"),
        ("138123480001", "手机号码应为11位数字，实际为12位"),
        ("1381234800a", "只能包含数字"),
        ("12812348000", "格式不正确：应以 13–19 开头"),
    ],
)
def test_mobile_failure_messages(value, message):
    with pytest.raises(ValidationError, match=message) as caught:
        validate_mobile(value)
    assert caught.value.field == "phone"


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("025-83451234", "025-83451234"),
        ("02583451234", "025-83451234"),
        ("010-88886666", "010-88886666"),
        ("0755 8888 6666", "0755-88886666"),
        ("(025)83451234", "025-83451234"),
        ("025-83451234-808", "025-83451234-808"),
        ("025-83451234转808", "025-83451234-808"),
        ("025-83451234 ext. 12", "025-83451234-12"),
        ("83451234", "83451234"),
        ("86123456", "86123456"),  # a local number that merely starts with 86
        ("400-810-8888", "400-810-8888"),
        ("138 1234 8000", "13812348000"),
    ],
)
def test_landlines_and_mobiles_are_accepted_as_phones(value, canonical):
    assert validate_phone(value) == canonical


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "请填写联系电话"),
        ("025-1234", "格式不正确"),
        ("025-03451234", "格式不正确"),
        ("phone me", "格式不正确"),
        ("1381234800", "手机号码应为11位数字，实际为10位"),
    ],
)
def test_phone_failure_messages(value, message):
    with pytest.raises(ValidationError, match=message):
        validate_phone(value)
