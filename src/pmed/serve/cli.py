"""``pmed serve``: run the service, and ``pmed serve token create`` (Typer; no logic here).

Imports nothing of the web stack until a command runs, so ``pmed --help`` stays fast and works
without the ``serve`` extra.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from pmed.cli._params import choice

__all__ = ["app"]

DEFAULT_DB = "sqlite:///pmed-serve.sqlite"
#: Days the token printed at the first start (a database without any token) stays valid.
FIRST_RUN_DAYS = 1.0

# no completion, no pretty tracebacks: pmed's errors are printed by the CLI's own handler
_PLAIN = {"no_args_is_help": True, "add_completion": False, "pretty_exceptions_enable": False}
app = typer.Typer(name="serve", help="Serve model bundles over HTTP (FastAPI): predictions, reports, PGx calls, audit.",
                  **_PLAIN)
token_app = typer.Typer(name="token", help="Bearer tokens of the service.", **_PLAIN)
app.add_typer(token_app, name="token")


def _require_serve() -> None:
    from pmed.errors import require

    for module in ("fastapi", "uvicorn", "sqlalchemy", "alembic"):
        require(module, extra="serve", feature="pmed serve")


@app.callback(invoke_without_command=True)
def serve(
    ctx: typer.Context,
    models: Annotated[Path | None, typer.Option("--models", "-m", help="folder searched for model bundles",
                                                exists=True, file_okay=False)] = None,
    db: Annotated[str, typer.Option("--db", help="database URL (sqlite:///FILE or postgresql+psycopg://…); "
                                    "it holds patient data")] = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port", min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes", min=1, max=64)] = 1,
    max_body_bytes: Annotated[int, typer.Option(help="largest request body (413 above)", min=1)] = 1_000_000,
    rate_limit: Annotated[int, typer.Option(help="requests per token and minute, per worker (429 above)",
                                            min=1)] = 120,
    cors_origin: Annotated[list[str] | None, typer.Option(help="browser origin allowed (repeatable; "
                                                                "default: no CORS)")] = None,
) -> None:
    """Serve model bundles over HTTP (FastAPI): predictions, reports, PGx calls, audit."""
    if ctx.invoked_subcommand is not None:
        return
    if models is None:
        raise typer.BadParameter("--models is required to run the server", param_hint="--models")
    _require_serve()
    import uvicorn

    from pmed.serve.app import ENV_PREFIX
    from pmed.serve.db import first_run_token, prepare_database
    from pmed.serve.registry import register_folder

    # migrations and registration once, here: N workers doing them at once would race
    engine = prepare_database(db)
    names = register_folder(engine, models)
    first = first_run_token(engine, days=FIRST_RUN_DAYS)
    engine.dispose()
    typer.echo(f"{len(names)} model(s) registered: {', '.join(names) or '(none)'}")
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
    if first is not None:
        # the bootstrap (as Jupyter's start-up token): a new database has no token to sign in
        # with; once any token exists nothing is printed
        typer.echo(f"the database had no token: an admin token for 'first-run', valid {FIRST_RUN_DAYS:g} day, "
                   f"was created (pmed serve token create makes more). Open http://{shown}:{port}/ "
                   "and sign in with:")
        typer.echo(first)
    else:
        typer.echo(f"open http://{shown}:{port}/ and sign in with a token of pmed serve token create")
    env = {"MODELS": str(models.resolve()), "DB": db, "MAX_BODY_BYTES": str(max_body_bytes),
           "RATE_LIMIT": str(rate_limit), "CORS_ORIGINS": ",".join(cors_origin or []), "INIT": "0"}
    os.environ.update({ENV_PREFIX + k: v for k, v in env.items()})
    # the access log is off: its lines would carry query strings; the service logs its own lines
    # (method, route, status, time) and writes the audit trail to the database
    import copy

    from uvicorn.config import LOGGING_CONFIG

    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["pmed.serve"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    uvicorn.run("pmed.serve.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                access_log=False, log_level="info", log_config=log_config)


@token_app.command("create")
def token_create(
    role: Annotated[str, typer.Option(help="clinician (predict, reports, PGx) or admin (also register "
                                      "models, read the audit)", **choice("clinician", "admin"))],
    db: Annotated[str, typer.Option("--db", help="database URL (as for pmed serve)")] = DEFAULT_DB,
    user: Annotated[str, typer.Option(help="who the token is for (in every audit row)")] = "user",
    days: Annotated[float, typer.Option(help="days until it expires", min=0.001)] = 90,
) -> None:
    """Create a bearer token; it is printed once (last line) and stored only as its SHA-256."""
    _require_serve()
    from pmed.serve.db import create_token

    token = create_token(db, role=role, user=user, days=days)
    typer.echo(f"token for {user!r} ({role}), expires in {days:g} days; store it now, it is not shown again:")
    typer.echo(token)


@app.command("versions")
def versions(
    name: Annotated[str, typer.Argument(help="the model's name (as GET /api/models lists it)")],
    db: Annotated[str, typer.Option("--db", help="database URL (as for pmed serve)")] = DEFAULT_DB,
) -> None:
    """The versions registered under a model's name, and which one serves."""
    _require_serve()
    from pmed.serve.db import prepare_database
    from pmed.serve.registry import list_versions

    rows, serving = list_versions(prepare_database(db), name)
    for v in rows:
        mark = "serving" if v.version == serving else (v.decision or "registered")
        typer.echo(f"{v.version:>3}  {mark:<10} {v.sha256[:12]}  {v.path}")


@app.command("use")
def use(
    name: Annotated[str, typer.Argument(help="the model's name")],
    version: Annotated[int, typer.Option("--version", help="the version to serve from now on", min=1)],
    db: Annotated[str, typer.Option("--db", help="database URL (as for pmed serve)")] = DEFAULT_DB,
) -> None:
    """Serve another version of a model (a promotion by hand, or a rollback); running workers follow
    within a second."""
    _require_serve()
    from pmed.serve.db import prepare_database
    from pmed.serve.registry import serve_version

    m = serve_version(prepare_database(db), name, version, user="cli")
    typer.echo(f"{m.name} now serves version {m.version} ({m.sha256[:12]}, {m.path})")
