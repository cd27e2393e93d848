"""The shipped reference data: code tables (data/codes) and division codes (data/divisions). No database."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

from gis.paths import DATA_DIR

CODE_TABLES = sorted((DATA_DIR / "codes").glob("*.csv"))


def read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def table(key: str) -> dict[str, str]:
    return {row["code"]: row["name_zh"] for row in read(DATA_DIR / "codes" / f"{key}.csv")[1]}


@pytest.mark.parametrize("path", CODE_TABLES, ids=lambda p: p.stem)
def test_every_code_table_is_a_clean_csv(path):
    header, rows = read(path)
    assert header == ["code", "name_zh", "name_en"]
    assert rows, "empty code table"
    codes = [row["code"] for row in rows]
    assert len(codes) == len(set(codes)), "duplicate codes"
    for row in rows:
        assert row["code"] and row["code"] == row["code"].strip()
        assert row["name_zh"].strip() and row["name_en"].strip()
        assert None not in row, f"row with extra columns: {row}"


def test_the_expected_tables_are_shipped():
    expected = {
        "sex", "ethnicity", "political", "education", "marital", "health", "relation", "nationality",
        "document_type", "hukou_type", "housing_nature", "stay_reason", "flow", "surveillance",
        "enclosure", "security_door",
    }  # fmt: skip
    assert expected <= {p.stem for p in CODE_TABLES}


def test_national_standard_codes():
    assert table("sex") == {"0": "未知的性别", "1": "男", "2": "女", "9": "未说明的性别"}
    ethnicity = table("ethnicity")
    assert [c for c in ethnicity] == [f"{i:02d}" for i in range(1, 57)] + ["97", "98"]
    assert (ethnicity["01"], ethnicity["10"], ethnicity["56"]) == ("汉族", "朝鲜族", "基诺族")
    political = table("political")
    assert political["01"] == "中国共产党党员" and political["03"] == "中国共产主义青年团团员"
    assert political["13"] == "群众"
    assert list(table("education")) == ["10", "20", "30", "40", "60", "70", "80", "90"]
    assert table("marital")["21"] == "初婚" and table("marital")["90"] == "未说明的婚姻状况"
    assert table("health") == {"1": "健康或良好", "2": "一般或较弱", "3": "有慢性病", "6": "残疾"}
    relation = table("relation")
    assert (relation["02"], relation["10"], relation["20"], relation["30"]) == ("户主", "配偶", "子", "女")
    for name in ("父亲", "母亲", "孙子", "孙女", "兄弟姐妹", "其他"):
        assert name in relation.values()
    documents = table("document_type")
    assert documents["111"] == "居民身份证" and documents["414"] == "普通护照"
    assert documents["553"] == "外国人永久居留身份证"


def test_nationality_uses_alpha3_codes():
    nationality = table("nationality")
    assert len(nationality) >= 60
    assert all(re.fullmatch(r"[A-Z]{3}", code) for code in nationality)
    for code in ("KOR", "JPN", "USA", "RUS", "VNM", "GBR", "FRA", "DEU", "CAN", "AUS", "IND", "PAK", "THA",
                 "MYS", "SGP", "PHL", "IDN", "MNG"):  # fmt: skip
        assert code in nationality
    assert nationality["KOR"] == "韩国" and nationality["PRK"] == "朝鲜"


def test_flow_codes_match_the_schema_check():
    # person_floating.flow has CHECK (flow IN ('inflow','outflow')).
    assert table("flow") == {"inflow": "流入", "outflow": "流出"}


def test_regions_csv():
    header, rows = read(DATA_DIR / "divisions" / "regions.csv")
    assert header == ["code", "name", "level"]
    codes = {row["code"]: row for row in rows}
    assert len(codes) == len(rows) > 3000
    for row in rows:
        assert re.fullmatch(r"\d{6}", row["code"])
        assert row["level"] in ("province", "city", "district")
        # Prefecture-level cities without districts (东莞, 中山, 儋州, 嘉峪关) keep their city row.
        if row["code"].endswith("0000"):
            assert row["level"] == "province"
        elif row["code"].endswith("00"):
            assert row["level"] == "city"
        else:
            assert row["level"] == "district"
    assert codes["320000"]["name"] == "江苏省" and codes["320100"]["name"] == "南京市"
    assert codes["320106"] == {"code": "320106", "name": "鼓楼区", "level": "district"}
    assert codes["441900"]["level"] == "city"


def test_regions_extra_csv_holds_only_codes_no_longer_current():
    current = {row["code"] for row in read(DATA_DIR / "divisions" / "regions.csv")[1]}
    header, rows = read(DATA_DIR / "divisions" / "regions_extra.csv")
    assert header == ["code", "name", "note"]
    extra = {row["code"]: row["name"] for row in rows}
    assert not current & set(extra)
    assert extra["320107"] == "江苏省南京市下关区"
    assert "830000" in extra
