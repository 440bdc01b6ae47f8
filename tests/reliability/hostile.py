"""The hostile-file corpus: (name, key under incoming/, bytes, expected outcome). Generated, so
nothing binary is checked in; each case reads as a sentence in the test report."""

from __future__ import annotations

import gzip
import io
import zipfile
import zlib
from dataclasses import dataclass

HEADER = "age,sex,bmi,children,smoker,region"
ROWS = [
    "40,female,29.67,1,no,northwest",
    "42,male,32.78,1,no,southwest",
    "53,male,25.08,0,yes,northwest",
    "62,female,31.52,1,no,southeast",
    "19,female,26.61,3,no,northeast",
]


@dataclass(frozen=True)
class Expect:
    status: str  # ok | partial | failed
    code: str | None = None  # reason code when failed, else a rejection code that must appear
    rows_in: int | None = None
    rows_scored: int | None = None


def csv_text(rows: list[str] = ROWS, header: str = HEADER, nl: str = "\n") -> str:
    return nl.join([header, *rows]) + nl


def good(nl: str = "\n") -> bytes:
    return csv_text(nl=nl).encode()


def _zip(name: str, data: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, data)
    return buf.getvalue()


def _xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        zf.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook/>')
        zf.writestr("xl/worksheets/sheet1.xml", '<?xml version="1.0"?><worksheet/>')
    return buf.getvalue()


def bomb(size: int) -> bytes:
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    return z.compress(good() + b" " * size) + z.flush()


WIDE = 3000
_wide_header = HEADER + "," + ",".join(f"extra_{i}" for i in range(WIDE))
_wide_row = ROWS[0] + "," + ",".join(str(i) for i in range(WIDE))
_big_cell = "x" * (900 * 1024)

CASES: list[tuple[str, str, bytes, Expect]] = [
    # encodings and byte-order marks
    ("plain UTF-8 is scored", "plain.csv", good(), Expect("ok", None, 5, 5)),
    ("a UTF-8 BOM is ignored", "bom.csv", b"\xef\xbb\xbf" + good(), Expect("ok", None, 5, 5)),
    ("BOM and CRLF", "bomcrlf.csv", b"\xef\xbb\xbf" + good("\r\n"), Expect("ok", None, 5, 5)),
    ("old-Mac CR line endings", "cr.csv", good("\r"), Expect("ok", None, 5, 5)),
    (
        "mixed line endings",
        "mixed.csv",
        (HEADER + "\r\n" + ROWS[0] + "\n" + ROWS[1] + "\r\n").encode(),
        Expect("ok", None, 2, 2),
    ),
    (
        "Latin-1 text is refused",
        "latin1.csv",
        csv_text([*ROWS, "40,männlich,30,2,no,se"]).encode("latin-1"),
        Expect("failed", "NOT_UTF8"),
    ),
    (
        "Windows-1252 smart quotes are refused",
        "cp1252.csv",
        csv_text(["40,\u201cmale\u201d,30,2,no,se"]).encode("cp1252"),
        Expect("failed", "NOT_UTF8"),
    ),
    (
        "UTF-16 LE with BOM is refused",
        "utf16le.csv",
        good().decode().encode("utf-16"),
        Expect("failed", "NOT_UTF8"),
    ),
    (
        "UTF-16 BE with BOM is refused",
        "utf16be.csv",
        b"\xfe\xff" + good().decode().encode("utf-16-be"),
        Expect("failed", "NOT_UTF8"),
    ),
    (
        "UTF-16 without a BOM is binary",
        "utf16nobom.csv",
        good().decode().encode("utf-16-le"),
        Expect("failed", "BINARY_CONTENT"),
    ),
    (
        "an overlong UTF-8 sequence is refused",
        "overlong.csv",
        good() + b"40,ma\xc0\xafle,30,2,no,se\n",
        Expect("failed", "NOT_UTF8"),
    ),
    (
        "a UTF-8 BOM in the middle is not a header",
        "midbom.csv",
        good() + "\ufeff40,male,30,2,no,southeast\n".encode(),
        Expect("partial", "WRONG_TYPE", 6, 5),
    ),
    # delimiters and quoting
    (
        "semicolons are read when the header names the model's columns",
        "semi.csv",
        good().replace(b",", b";"),
        Expect("ok", None, 5, 5),
    ),
    (
        "a European export (';' and decimal comma) is read",
        "european.csv",
        good().replace(b",", b";").replace(b".", b","),
        Expect("ok", None, 5, 5),
    ),
    (
        "semicolons without every model column are refused",
        "semi-short.csv",
        csv_text(header=HEADER.removesuffix(",region")).replace(",", ";").encode(),
        Expect("failed", "WRONG_DELIMITER"),
    ),
    (
        "tabs are refused",
        "tabs.csv",
        good().replace(b",", b"\t"),
        Expect("failed", "WRONG_DELIMITER"),
    ),
    (
        "pipes are refused",
        "pipes.csv",
        good().replace(b",", b"|"),
        Expect("failed", "WRONG_DELIMITER"),
    ),
    (
        "every cell quoted",
        "quoted.csv",
        "\n".join(",".join(f'"{c}"' for c in line.split(",")) for line in [HEADER, *ROWS]).encode()
        + b"\n",
        Expect("ok", None, 5, 5),
    ),
    (
        "a quoted newline inside a cell stays in its row",
        "qnl.csv",
        (HEADER + ",note\n" + ROWS[0] + ',"two\nlines"\n' + ROWS[1] + ",x\n").encode(),
        Expect("ok", None, 2, 2),
    ),
    (
        "doubled quotes inside a cell",
        "dq.csv",
        (HEADER + ",note\n" + ROWS[0] + ',"say ""hi"""\n').encode(),
        Expect("ok", None, 1, 1),
    ),
    (
        "an unclosed quote is refused",
        "unclosed.csv",
        good() + b'40,"male,30,2,no,se\n',
        Expect("failed", "MALFORMED_CSV"),
    ),
    (
        "text after a closing quote is refused",
        "afterquote.csv",
        good() + b'40,"male"x,30,2,no,se\n',
        Expect("failed", "MALFORMED_CSV"),
    ),
    # shape of rows and headers
    (
        "ragged rows are rejected, not padded",
        "ragged.csv",
        csv_text([*ROWS, "40,male,30", "40,male,30,2,no,se,extra"]).encode(),
        Expect("partial", "TOO_FEW_FIELDS", 7, 5),
    ),
    (
        "a trailing comma on every row",
        "trailing.csv",
        "\n".join(line + "," for line in [HEADER, *ROWS]).encode() + b"\n",
        Expect("failed", "BLANK_HEADER"),
    ),
    (
        "a duplicate header is refused",
        "dup.csv",
        csv_text(header="age," + HEADER).encode().replace(b"\n40,", b"\n40,40,", 1),
        Expect("failed", "DUPLICATE_HEADER"),
    ),
    (
        "a missing column is refused",
        "missing.csv",
        csv_text([r.rsplit(",", 1)[0] for r in ROWS], header=HEADER.rsplit(",", 1)[0]).encode(),
        Expect("failed", "MISSING_COLUMNS"),
    ),
    (
        "extra columns are carried and warned",
        "extra.csv",
        csv_text([r + ",a,b" for r in ROWS], header=HEADER + ",id,comment").encode(),
        Expect("ok", None, 5, 5),
    ),
    (
        "columns in another order",
        "order.csv",
        csv_text(
            [",".join(reversed(r.split(","))) for r in ROWS],
            header=",".join(reversed(HEADER.split(","))),
        ).encode(),
        Expect("ok", None, 5, 5),
    ),
    (
        "a column named like an output is refused",
        "reserved.csv",
        csv_text([r + ",1" for r in ROWS], header=HEADER + ",prediction").encode(),
        Expect("failed", "RESERVED_COLUMN"),
    ),
    ("empty file", "empty.csv", b"", Expect("failed", "EMPTY")),
    ("only blank lines", "blank.csv", b"\n\r\n\n", Expect("failed", "EMPTY")),
    ("header only", "header.csv", (HEADER + "\n").encode(), Expect("failed", "HEADER_ONLY", 0)),
    (
        "header and blank lines",
        "headerblank.csv",
        (HEADER + "\n\n\n").encode(),
        Expect("failed", "HEADER_ONLY", 0),
    ),
    (
        "blank lines between rows are not rows",
        "gaps.csv",
        ("\n\n" + HEADER + "\n\n" + "\n\n".join(ROWS) + "\n\n").encode(),
        Expect("ok", None, 5, 5),
    ),
    (
        "a cell over 1 MiB is refused",
        "hugefield.csv",
        csv_text(
            [r + "," + "y" * (1100 * 1024) for r in ROWS[:1]], header=HEADER + ",blob"
        ).encode(),
        Expect("failed", "FIELD_TOO_LARGE"),
    ),
    (
        "a 900 KiB cell in an extra column is carried",
        "bigcell.csv",
        csv_text([ROWS[0] + "," + _big_cell], header=HEADER + ",blob").encode(),
        Expect("ok", None, 1, 1),
    ),
    (
        f"a file {WIDE + 6} columns wide",
        "wide.csv",
        f"{_wide_header}\n{_wide_row}\n".encode(),
        Expect("ok", None, 1, 1),
    ),
    # values
    (
        "inf, NaN and 1e309 are rejected per row",
        "nonfinite.csv",
        csv_text(
            [
                *ROWS,
                "40,male,inf,2,no,se",
                "40,male,NaN,2,no,se",
                "40,male,1e309,2,no,se",
                "-inf,male,30,2,no,se",
            ]
        ).encode(),
        Expect("partial", "NON_FINITE", 9, 5),
    ),
    (
        "decimal commas are rejected with a hint",
        "comma.csv",
        csv_text([*ROWS, '40,male,"30,5",2,no,se']).encode(),
        Expect("partial", "WRONG_TYPE", 6, 5),
    ),
    (
        "a NUL byte is binary",
        "nul.csv",
        good() + b"40,ma\x00le,30,2,no,se\n",
        Expect("failed", "BINARY_CONTENT"),
    ),
    (
        "formula cells are scored and written safely",
        "formula.csv",
        csv_text(
            [r + ',=HYPERLINK("http://x")' for r in ROWS] + ["@SUM(1),male,30,2,no,se,+1"],
            header=HEADER + ",note",
        ).encode(),
        Expect("partial", "WRONG_TYPE", 6, 5),
    ),
    (
        "every row bad",
        "allbad.csv",
        csv_text(["x,male,30,2,no,se"] * 3).encode(),
        Expect("failed", "ALL_ROWS_REJECTED", 3, 0),
    ),
    (
        "an HTML error page saved as CSV",
        "html.csv",
        b"<html><body><h1>502 Bad Gateway</h1></body></html>\n",
        Expect("failed", "NOT_CSV"),
    ),
    (
        "JSON saved as CSV",
        "json.csv",
        b'[{"age": 40, "sex": "male"}]\n',
        Expect("failed", "MISSING_COLUMNS"),
    ),
    # compression and containers
    ("gzip is scored like plain", "gz.csv.gz", gzip.compress(good()), Expect("ok", None, 5, 5)),
    (
        "gzip named .csv is still gzip",
        "gzname.csv",
        gzip.compress(good()),
        Expect("ok", None, 5, 5),
    ),
    (
        "concatenated gzip members",
        "multi.csv.gz",
        gzip.compress(good()) + gzip.compress(("\n".join(ROWS) + "\n").encode()),
        Expect("ok", None, 10, 10),
    ),
    (
        "corrupt gzip is refused",
        "corrupt.csv.gz",
        b"\x1f\x8b\x08\x00" + b"garbage" * 10,
        Expect("failed", "GZIP_CORRUPT"),
    ),
    (
        "truncated gzip is refused",
        "trunc.csv.gz",
        gzip.compress(good() * 50)[:60],
        Expect("failed", "GZIP_CORRUPT"),
    ),
    (
        "a gzip bomb is refused",
        "bomb.csv.gz",
        bomb(6 * 1024 * 1024),
        Expect("failed", "DECOMPRESSION_BOMB"),
    ),
    (
        "gzip of a Latin-1 file is refused",
        "gzlatin.csv.gz",
        gzip.compress(csv_text(["40,männlich,30,2,no,se"]).encode("latin-1")),
        Expect("failed", "NOT_UTF8"),
    ),
    (
        "a ZIP named .csv is refused",
        "zip.csv",
        _zip("claims.csv", good()),
        Expect("failed", "NOT_CSV"),
    ),
    ("an Excel workbook named .csv is refused", "excel.csv", _xlsx(), Expect("failed", "NOT_CSV")),
    (
        "an old Excel file named .csv is refused",
        "xls.csv",
        b"\xd0\xcf\x11\xe0" + b"\x00" * 64,
        Expect("failed", "NOT_CSV"),
    ),
    ("a PDF named .csv is refused", "pdf.csv", b"%PDF-1.4\n%...", Expect("failed", "NOT_CSV")),
    (
        "a PNG named .csv is refused",
        "png.csv",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 32,
        Expect("failed", "NOT_CSV"),
    ),
    # odd keys
    ("a key with spaces and parentheses", "my file (1).csv", good(), Expect("ok", None, 5, 5)),
    ("a key with unicode", "café/データ 2026.csv", good(), Expect("ok", None, 5, 5)),
    ("a key with % and +", "100% sure+more.csv", good(), Expect("ok", None, 5, 5)),
    ("a deep key with dots", "a/b/../c/./d.v2.csv", good(), Expect("ok", None, 5, 5)),
]
