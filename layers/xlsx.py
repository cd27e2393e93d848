"""Report workbooks as offices expect them: a merged, bold title line (the period and the unit) above a
bold header, the header frozen, columns wide enough for their Chinese headings."""

from __future__ import annotations

from typing import Any


def titled_sheet(book, name: str, heading: str, header: list[str], rows: list[list], *,
                 freeze: str = "A3") -> Any:
    from openpyxl.styles import Alignment, Font

    sheet = book.create_sheet(name)
    sheet.append([heading])
    sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=max(1, len(header)))
    sheet["A1"].font = Font(bold=True, size=13)
    sheet["A1"].alignment = Alignment(horizontal="center")
    sheet.append(header)
    for cell in sheet[2]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append(row)
    sheet.freeze_panes = freeze
    for column, text_ in zip(sheet.iter_cols(min_row=2, max_row=2), header, strict=True):
        sheet.column_dimensions[column[0].column_letter].width = max(8, 2 * len(text_) + 2)
    return sheet
