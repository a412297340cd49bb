"""Documents of every supported type, made by the tests themselves, each holding facts to ask about."""

from __future__ import annotations

import io
import json


def pdf(lines: list[str]) -> bytes:
    """A minimal one-page PDF with Helvetica text (ASCII)."""
    text = (
        "BT /F1 12 Tf 72 720 Td 14 TL "
        + " ".join(
            "(" + line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ") '" for line in lines
        )
        + " ET"
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(text) + text.encode() + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def docx(title: str, sections: list[tuple[str, str]]) -> bytes:
    import docx as python_docx

    document = python_docx.Document()
    document.add_heading(title, level=1)
    for heading, paragraph in sections:
        document.add_heading(heading, level=2)
        document.add_paragraph(paragraph)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


FILLER_EN = ("This paragraph is general background about the company history and culture. " * 6).strip()
FILLER_ZH = "这一段是关于公司历史和文化的一般背景介绍。" * 6

ENGLISH: dict[str, bytes] = {
    "router.txt": f"{FILLER_EN}\n\nThe Zephyr-9 router supports 48 ports and ships in March.\n\n{FILLER_EN}".encode(),
    "guide.md": (
        f"# Zephyr Guide\n\n{FILLER_EN}\n\n## Warranty\n\nThe warranty of the Zephyr-9 lasts seven years "
        f"from the date of purchase.\n\n## Setup\n\n{FILLER_EN}\n"
    ).encode(),
    "pricing.html": (
        f"<html><body><h1>Pricing</h1><p>{FILLER_EN}</p><h2>Plans</h2>"
        "<p>The Nimbus plan costs 42 dollars per month.</p><script>var x = 1;</script></body></html>"
    ).encode(),
    "falcon.pdf": pdf(
        [
            "Project Falcon briefing.",
            "The launch code of project Falcon is 7391.",
            "Keep this document confidential.",
        ]
    ),
    "support.docx": docx(
        "Support", [("Hours", "Support hours are 9am to 5pm in Lisbon."), ("Other", FILLER_EN)]
    ),
    "people.csv": b"name,city,age\nAlice,Oslo,31\nBob,Kyoto,45\nCarol,Lima,27\n",
    "battery.json": json.dumps(
        [{"product": "Quasar", "battery_hours": 19}, {"product": "Pulsar", "battery_hours": 8}]
    ).encode(),
}

CHINESE: dict[str, bytes] = {
    "咖啡机.txt": f"{FILLER_ZH}\n\n量子咖啡机的保修期是五年。\n\n{FILLER_ZH}".encode(),
    "价格.md": f"# 产品\n\n{FILLER_ZH}\n\n## 价格\n\n星云套餐每月收费八十八元。\n".encode(),
    "门店.html": f"<html><body><h1>门店</h1><p>{FILLER_ZH}</p><p>杭州门店的营业时间是早上十点到晚上八点。</p></body></html>".encode(),
    "客服.docx": docx("客服", [("热线", "客服热线号码是九五五八八。"), ("其他", FILLER_ZH)]),
    "员工.csv": "姓名,城市,部门\n张伟,成都,研发\n李娜,西安,销售\n".encode(),
    "电池.json": json.dumps([{"产品": "极光手环", "续航小时": 36}], ensure_ascii=False).encode(),
}

# question -> (file that answers it, a phrase of the answer)
QUESTIONS: list[tuple[str, str, str]] = [
    ("How many ports does the Zephyr-9 router support?", "router.txt", "48 ports"),
    ("How long is the Zephyr-9 warranty?", "guide.md", "seven years"),
    ("How much does the Nimbus plan cost?", "pricing.html", "42 dollars"),
    ("What is the launch code of project Falcon?", "falcon.pdf", "7391"),
    ("When are the support hours?", "support.docx", "9am to 5pm"),
    ("Which city does Bob live in?", "people.csv", "Kyoto"),
    ("How many battery hours does the Quasar have?", "battery.json", "19"),
    ("量子咖啡机的保修期是多久？", "咖啡机.txt", "五年"),
    ("星云套餐每月多少钱？", "价格.md", "八十八元"),
    ("杭州门店几点开门？", "门店.html", "早上十点"),
    ("客服热线号码是多少？", "客服.docx", "九五五八八"),
    ("张伟在哪个城市？", "员工.csv", "成都"),
    ("极光手环的续航是多少小时？", "电池.json", "36"),
]
