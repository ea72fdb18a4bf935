"""A small VCF writer and reader for modest files.

This package covers the common case of the demo and the tests: a few hundred to a few thousand
bi-allelic sites for a few thousand samples, genotypes only (``GT``). It reads plain, gzip and
BGZF files and writes plain text or real BGZF (the blocked gzip that ``bgzip``/``tabix``/
``bcftools`` expect), using only the standard library for compression.

- :mod:`pmed.io.vcf.write`: :func:`write_vcf`, the BGZF writer and the GRCh38 contig lengths.
- :mod:`pmed.io.vcf.read`: :func:`read_vcf` with its engine choice, and the pure-Python parser,
  which is the reference (simple, exact, and every refusal names the file, line and column) and
  the fallback.
- :mod:`pmed.io.vcf._htslib`: the cyvcf2 (htslib; the ``genomics`` extra) engine, about five
  times faster at decoding genotypes, used by :func:`read_vcf` when cyvcf2 is installed for the
  files that its byte pre-check finds it reads exactly like the pure parser. cyvcf2 is imported
  only when a VCF is read.
"""

# Two private names are re-exported (``as`` marks them so) because tests import or patch them
# through pmed.io.vcf: _bgzf_write and _read_vcf_python.
from pmed.io.vcf.read import _read_vcf_python as _read_vcf_python
from pmed.io.vcf.read import read_vcf
from pmed.io.vcf.write import BGZF_EOF, GRCH38_CONTIG_LENGTHS, write_vcf
from pmed.io.vcf.write import _bgzf_write as _bgzf_write

__all__ = ["read_vcf", "write_vcf", "GRCH38_CONTIG_LENGTHS", "BGZF_EOF"]
