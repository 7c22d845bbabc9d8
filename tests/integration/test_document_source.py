"""Unstructured files: originals kept, one row per file, bad PDFs recorded not dropped."""

from __future__ import annotations

import hashlib
from pathlib import Path

import yaml

from examples.shop.pdf import write_text_pdf
from ingest import run_ingest
from pipeline.config import load_project


def test_text_and_pdf_files_become_rows_and_originals(tmp_path: Path) -> None:
    d = tmp_path / "in"
    d.mkdir()
    (d / "ticket-1.txt").write_text("My order #42 arrived broken.\nPlease refund.")
    (d / "ticket-2.txt").write_bytes("Caf\xe9 order late".encode("latin-1"))
    write_text_pdf(d / "invoice-7.pdf", ["INVOICE 7", "Supplier: Acme", "Total: 1,234.50 EUR"])
    (d / "invoice-8.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    spec = {
        "lake": {"url": str(tmp_path / "lake")},
        "sources": [{"name": "support", "kind": "documents",
                     "tables": [{"name": "docs", "path": str(d / "*")}]}],
    }  # fmt: skip
    (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    project = load_project(tmp_path / "lakehouse.yml", env={})

    report = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert report.ok, report.failures()
    assert report.rows == 4 and len(report.tables[0].batches) == 1
    con = project.lake.connect()
    rows = {
        r[0]: r[1:]
        for r in con.execute(
            "SELECT file_name, media_type, page_count, text, extraction_error, original_key, "
            "size_bytes FROM lake.support.docs",
        ).fetchall()
    }
    assert rows["ticket-1.txt"][0] == "text/plain" and "refund" in rows["ticket-1.txt"][2]
    assert rows["ticket-2.txt"][2] == "Café order late"
    assert "decoded as Latin-1" in rows["ticket-2.txt"][3]
    assert rows["invoice-7.pdf"][:2] == ("application/pdf", 1)
    assert "Total: 1,234.50 EUR" in rows["invoice-7.pdf"][2]
    assert rows["invoice-8.pdf"][2] is None
    assert rows["invoice-8.pdf"][3].startswith("PDF could not be parsed")
    for name, (*_, key, size) in rows.items():  # originals are in the lake, byte for byte
        assert project.lake.storage.read_bytes(key) == (d / name).read_bytes(), name
        assert size == (d / name).stat().st_size

    again = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert again.rows == 0  # nothing new
    (d / "ticket-3.txt").write_text("Where is my parcel?")
    third = run_ingest(project.lake, project.spec.sources, project.base_dir)
    assert third.rows == 1  # only the new file


def test_a_document_over_the_text_cap_keeps_its_bytes_not_its_text(tmp_path: Path) -> None:
    """Files are hashed and stored as a stream; text is extracted up to `max_text_mb`."""
    d = tmp_path / "in"
    d.mkdir()
    big = d / "export.txt"
    with open(big, "wb") as fh:  # 3 MB of text, over a 1 MB cap
        for i in range(30_000):
            fh.write(f"line {i:08d} of a large export, padded to a hundred bytes.{' ' * 32}\n"
                     .encode())  # fmt: skip
    (d / "small.txt").write_text("fits")
    spec = {"lake": {"url": str(tmp_path / "lake")},
            "sources": [{"name": "support", "kind": "documents", "tables": [
                {"name": "docs", "path": str(d / "*"), "max_text_mb": 1}]}]}  # fmt: skip
    (tmp_path / "lakehouse.yml").write_text(yaml.safe_dump(spec))
    project = load_project(tmp_path / "lakehouse.yml", env={})
    assert run_ingest(project.lake, project.spec.sources, project.base_dir).rows == 2
    con = project.lake.connect()
    rows = {r[0]: r[1:] for r in con.execute(
        "SELECT file_name, text, extraction_error, size_bytes, sha256, original_key "
        "FROM lake.support.docs").fetchall()}  # fmt: skip
    text, error, size, sha, key = rows["export.txt"]
    assert text is None and error.startswith("too large: 3 MB") and "max_text_mb" in error
    assert size == big.stat().st_size
    assert sha == hashlib.sha256(big.read_bytes()).hexdigest()
    assert project.lake.storage.read_bytes(key) == big.read_bytes()
    assert rows["small.txt"][0] == "fits"
