"""Per-patient HTML section of the PGx calls and recommendations (a Jinja2 fragment)."""

from __future__ import annotations

from pmed.errors import InputError
from pmed.genomics.pgx.call import PgxResult

__all__ = ["render_pgx_section"]


def render_pgx_section(result: PgxResult, sample: str, *, drugs: list[str] | None = None) -> str:
    """Render one sample's PGx section as an HTML fragment.

    Parameters
    ----------
    result
        Output of :func:`~pmed.genomics.pgx.call_vcf`.
    sample
        The sample (patient) to render.
    drugs
        Restrict the recommendation table to these drugs (default: all matched).

    Returns
    -------
    str
        A ``<section class="pgx">`` element, HTML-escaped, to embed in a patient report.
    """
    import jinja2

    calls = result.calls_table()
    calls = calls[(calls["sample"] == sample) & (calls["diplotypes"] != "no data")]
    if calls.empty:
        # neither the sample asked for nor the result's samples are named: patient identifiers
        known = sample in result.sample_ids
        raise InputError(
            "the sample asked for " + ("has no PGx calls in this result" if known else
                                       "is not in this result"),
            fix=f"the result has {len(result.samples)} sample(s); choose one of "
            "result.sample_ids with calls",
        )
    recs = result.recommendations_table()
    recs = recs[recs["sample"] == sample]
    if drugs is not None:
        recs = recs[recs["drug"].isin(drugs)]
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("pmed.genomics.pgx", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    tpl = env.get_template("pgx_section.html.j2")
    return tpl.render(
        sample=sample,
        data_version=result.data_version,
        build_check=result.build_check,
        calls=calls.fillna("").to_dict(orient="records"),
        recommendations=recs.sort_values(["drug", "source"]).fillna("").to_dict(orient="records"),
    )
