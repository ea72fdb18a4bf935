"""Running pmed's work on a Dask cluster: one place that opens, and closes, the Dask client.

``"local"`` starts a :class:`~dask.distributed.LocalCluster` on this machine; any other value is
the address of a running scheduler (``tcp://head:8786``, from ``dask scheduler``); an existing
:class:`~dask.distributed.Client` is used as it is. Work written with :mod:`joblib`
(``Parallel(...)(delayed(f)(...) ...)``, as :func:`pmed.evaluate.cv.out_of_fold_predictions`) runs on
the cluster inside ``joblib.parallel_config(backend="dask", client=client)``; outside it, the same
code runs in this process. See ``docs/scale.md``.

Dask is optional (``pip install "pmed[scale]"``) and imported only when a client is made, so
importing this module costs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pmed.errors import InputError, OptionError, require

if TYPE_CHECKING:  # pragma: no cover - types only
    from dask.distributed import Client

__all__ = ["LOCAL", "check_scheduler", "connect", "close", "dask_client"]

#: The ``scheduler`` value that starts a LocalCluster on this machine.
LOCAL = "local"

_ADDRESS = re.compile(r"[a-z][a-z0-9+.-]*://\S+|[\w.-]+:\d+")


def check_scheduler(scheduler: str) -> str:
    """Check that ``scheduler`` is ``"local"`` or looks like a scheduler address.

    Only the form is checked (nothing is contacted), so a typo is refused before any work.

    Parameters
    ----------
    scheduler
        ``"local"``, or an address such as ``tcp://head:8786`` or ``head:8786``.

    Returns
    -------
    str
        ``scheduler`` unchanged.

    Raises
    ------
    pmed.errors.OptionError
        When it is neither.
    """
    if scheduler == LOCAL or _ADDRESS.fullmatch(scheduler):
        return scheduler
    shown = scheduler if len(scheduler) <= 40 else scheduler[:40] + "…"
    raise OptionError(f"scheduler {shown!r} is neither 'local' nor an address such as tcp://host:8786",
                      fix="give 'local', or the address 'dask scheduler' printed")


def connect(scheduler: str, *, n_workers: int = 2, timeout: str = "10s") -> Client:
    """A Dask client: ``"local"`` starts a LocalCluster, anything else is a scheduler's address.

    The caller closes it with :func:`close` (or uses :func:`dask_client`, which does).

    Parameters
    ----------
    scheduler
        ``"local"`` or a scheduler address (``tcp://head:8786``).
    n_workers
        Worker processes of a LocalCluster (one thread each); ignored for an address, whose
        workers are started apart (``dask worker``).
    timeout
        How long to wait for the scheduler to answer.

    Returns
    -------
    dask.distributed.Client
        Set as the default client of this process.

    Raises
    ------
    pmed.errors.MissingDependencyError
        When dask or distributed is not installed (extra ``scale``).
    pmed.errors.OptionError
        When ``scheduler`` is not an address or ``n_workers`` is below 1.
    pmed.errors.InputError
        When no scheduler answers at the address.
    """
    check_scheduler(scheduler)
    if n_workers < 1:
        raise OptionError(f"n_workers must be at least 1, not {n_workers}", fix="give --workers 1 or more")
    require("dask", extra="scale", feature="running on a Dask cluster")
    require("distributed", extra="scale", package="distributed", feature="running on a Dask cluster")
    from dask.distributed import Client, LocalCluster

    if scheduler == LOCAL:
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        try:
            return Client(cluster)
        except BaseException:
            cluster.close()
            raise
    try:
        return Client(scheduler, timeout=timeout)
    except (OSError, ValueError, TypeError) as e:  # unreachable (TimeoutError is an OSError), or not an address
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {detail}",
                         fix="start it with 'dask scheduler' and check the address/port") from None


def close(client: Client) -> None:
    """Close a client made by :func:`connect`, and its LocalCluster if it started one."""
    cluster = getattr(client, "cluster", None)
    client.close()
    if cluster is not None:
        cluster.close()


@contextmanager
def dask_client(scheduler: str | Client, *, n_workers: int = 2) -> Iterator[Client]:
    """A Dask client for the duration of a ``with`` block.

    Parameters
    ----------
    scheduler
        ``"local"`` (a LocalCluster started here and stopped at the end), a scheduler address
        (connected to here, disconnected at the end; the cluster keeps running), or an existing
        :class:`~dask.distributed.Client` (used as it is, left open).
    n_workers
        Worker processes of a LocalCluster.

    Yields
    ------
    dask.distributed.Client

    Raises
    ------
    pmed.errors.MissingDependencyError, pmed.errors.OptionError, pmed.errors.InputError
        As :func:`connect`.

    Examples
    --------
    >>> with dask_client("local", n_workers=2) as client:  # doctest: +SKIP
    ...     client.submit(sum, [1, 2]).result()
    3
    """
    if not isinstance(scheduler, str):  # a client made by the caller: the caller closes it
        yield scheduler
        return
    client = connect(scheduler, n_workers=n_workers)
    try:
        yield client
    finally:
        close(client)
