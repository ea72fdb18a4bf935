"""Readers and writers, one per format, returning plain tables or arrays."""

from pmed.io._atomic import (
    atomic_dir,
    atomic_path,
    check_output_folder,
    output_folder,
    write_text_atomic,
)
from pmed.io.names import check_inside, check_not_input, safe_filename
from pmed.io.tables import read_table, write_table
from pmed.io.text import open_text
from pmed.io.vcf import read_vcf, write_vcf

__all__ = [
    "atomic_dir",
    "atomic_path",
    "write_text_atomic",
    "output_folder",
    "check_output_folder",
    "safe_filename",
    "check_inside",
    "check_not_input",
    "open_text",
    "read_table",
    "write_table",
    "read_vcf",
    "write_vcf",
]
