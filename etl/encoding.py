"""Which text encoding a file from the field is in: UTF-8, or the GBK family (GB18030 covers GBK and
GB2312) that Chinese desktop GIS and Excel still write.

The test is strict UTF-8 decoding of the file's own text bytes: Chinese text in GBK is practically never
valid UTF-8 (its lead bytes 0x81–0xFE are followed by 0x40–0xFE, while UTF-8 needs 0x80–0xBF
continuations in exact counts), so a clean decode means UTF-8 and a failure means GB18030. Pure ASCII
decodes either way and is reported as UTF-8.
"""

from __future__ import annotations

import struct
from pathlib import Path

UTF8 = "UTF-8"
GB18030 = "GB18030"

# The DBF "language driver" byte (offset 29) some writers set; GDAL honours it when there is no .cpg.
_LDID_ENCODINGS = {0x4D: "CP936", 0x7A: "CP936", 0x57: None, 0x00: None}


def guess_bytes(data: bytes) -> str:
    """UTF-8 when ``data`` decodes strictly as UTF-8 (after a BOM, if any), else GB18030."""
    if data.startswith(b"\xef\xbb\xbf"):
        return UTF8
    try:
        data.decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        return GB18030
    return UTF8


def dbf_text_bytes(path: Path, limit_rows: int = 20_000) -> bytes:
    """The bytes of a DBF's character fields (first ``limit_rows`` records), for :func:`guess_bytes`.

    Only the C (character) fields: numeric fields are ASCII and would dilute nothing, but memo pointers
    and binary fields could look like anything."""
    with open(path, "rb") as f:
        header = f.read(32)
        if len(header) < 32:
            return b""
        n_records, header_len, record_len = struct.unpack("<IHH", header[4:12])
        fields = []
        offset = 1  # the deletion flag
        raw = f.read(header_len - 32)
        for i in range(0, len(raw) - 31, 32):
            desc = raw[i:i + 32]
            if desc[0] == 0x0D:
                break
            kind, length = chr(desc[11]), desc[16]
            if kind == "C":
                fields.append((offset, length))
            offset += length
        f.seek(header_len)
        chunks = []
        for _ in range(min(n_records, limit_rows)):
            record = f.read(record_len)
            if len(record) < record_len:
                break
            # Field by field: a multi-byte character never straddles two fields.
            chunks.extend(record[o:o + n].rstrip(b" \x00") for o, n in fields)
        return b"\n".join(chunks)


def dbf_ldid(path: Path) -> int:
    with open(path, "rb") as f:
        f.seek(29)
        byte = f.read(1)
    return byte[0] if byte else 0


def shapefile_encoding(shp: Path) -> tuple[str, str]:
    """``(encoding, why)`` for a shapefile: its ``.cpg`` if there is one, else detected from the DBF."""
    for cpg in (shp.with_suffix(".cpg"), shp.with_suffix(".CPG")):
        if cpg.exists():
            declared = cpg.read_text(encoding="ascii", errors="replace").strip() or UTF8
            return declared, f"由 {cpg.name} 声明 (declared by .cpg)"
    dbf = next((p for p in (shp.with_suffix(".dbf"), shp.with_suffix(".DBF")) if p.exists()), None)
    if dbf is None:
        return UTF8, "无 .dbf 属性表 (no .dbf)"
    found = guess_bytes(dbf_text_bytes(dbf))
    ldid = _LDID_ENCODINGS.get(dbf_ldid(dbf))
    why = ("无 .cpg，属性文本可按 UTF-8 严格解码 (no .cpg; strict UTF-8 decode succeeded)" if found == UTF8
           else "无 .cpg，属性文本不是合法 UTF-8，按 GB18030/GBK 读取 (no .cpg; not valid UTF-8, read as "
                "GB18030)")
    if ldid and found == UTF8:
        # ASCII-only text decodes as UTF-8; the language driver byte is then the better word.
        return ldid, f"无 .cpg，DBF 语言驱动标记为 {ldid} (no .cpg; DBF language driver {ldid})"
    return found, why


def text_file_encoding(path: Path, sample: int = 1 << 20) -> str:
    """UTF-8 or GB18030 for a CSV or other text file, from its first megabyte (cut at a line end)."""
    data = Path(path).read_bytes()[:sample]
    if len(data) == sample and b"\n" in data:
        data = data[: data.rindex(b"\n")]
    return guess_bytes(data)
