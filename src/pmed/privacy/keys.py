"""The secret key file behind keyed pseudonyms and date shifts.

A pseudonym is ``HMAC-SHA-256(key, patient ID)``: without the key nobody can recompute it from
a guessed ID (a plain hash of an MRN can be reversed by hashing every possible MRN). The same key
gives the same pseudonym (and the same date shift) in every file and every run, so tables
de-identified separately still link; another key gives unrelated pseudonyms.

The key is 32 random bytes (:func:`secrets.token_bytes`) in a file readable by its owner only
(mode 0600), made only when asked for (:func:`create_key`, CLI ``--create-key``). It must never
travel with the released data: a key file in the output's folder is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
import tempfile
import warnings
from pathlib import Path

from pmed.errors import InputError, OptionError, PmedWarning

__all__ = ["load_key", "create_key", "key_id", "check_key_location", "KEY_BYTES", "MIN_KEY_BYTES"]

#: Bytes of a key made by :func:`create_key` (256 bits, the HMAC-SHA-256 block's natural size).
KEY_BYTES = 32
#: Fewest bytes a key file may hold (128 bits): a shorter key can be guessed.
MIN_KEY_BYTES = 16


def key_id(key: bytes) -> str:
    """A short public fingerprint of a key (which key made an export, without revealing it).

    Parameters
    ----------
    key
        The key's bytes.

    Returns
    -------
    str
        16 hexadecimal characters of ``HMAC-SHA-256(key, "pmed-key-id")``.
    """
    return hmac.new(key, b"pmed-key-id", hashlib.sha256).hexdigest()[:16]


def check_key_location(key_file: str | os.PathLike, out: str | os.PathLike | None) -> None:
    """Refuse a key file in the folder of an output; warn when it lies below that folder.

    Whoever receives the output's folder would receive the key, and with it the means to
    recompute every pseudonym from a guessed ID. A key in a subfolder (``release/keys/k``) is
    only warned about: the output's folder may be a home folder that is never shared whole.

    Parameters
    ----------
    key_file
        The key file.
    out
        An output file (its folder is checked) or, when it is an existing folder, that folder.

    Raises
    ------
    OptionError
        (exit 2) The key lies in the output's folder.

    Warns
    -----
    PmedWarning
        The key lies in a subfolder of the output's folder.
    """
    if out is None:
        return
    out = Path(out)
    folder = (out if out.is_dir() else out.parent).resolve()
    key = Path(key_file).resolve()
    if folder == key.parent:
        raise OptionError("the key file lies inside the output's folder, so it would be shared with the "
                          "de-identified data and let anyone recompute the pseudonyms", file=key_file,
                          fix="keep the key apart from the data, e.g. --key-file ~/.pmed/project.key, "
                              "or write the output to another folder")
    if folder in key.parents:
        warnings.warn(f"{key_file}: the key file lies in a subfolder of the output's folder ({folder}); do not "
                      "share that folder whole, or move the key apart from the data", PmedWarning, stacklevel=2)


def create_key(path: str | os.PathLike) -> Path:
    """Create a new key file: :data:`KEY_BYTES` random bytes, readable by its owner only (0600).

    The file appears whole or not at all, and an existing file is never replaced (a lost key
    breaks the link between old and new exports).

    Parameters
    ----------
    path
        Where to write the key. Its folder is created if needed (mode 0700).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    InputError
        The file already exists, or cannot be written.
    """
    path = Path(path)
    if path.exists():
        raise InputError("a key file already exists here; pmed never replaces a key (the pseudonyms "
                         "made with it could no longer be linked)", file=path,
                         fix="use it (drop --create-key), or name a new file")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # mode 0600
    except OSError as e:
        raise InputError(f"cannot create the key file ({e.strerror or type(e).__name__})", file=path,
                         fix="choose a folder you can write to") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(KEY_BYTES))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)  # fails if the file appeared meanwhile: never replaces a key
        except FileExistsError:
            raise InputError("a key file already exists here", file=path,
                             fix="use it (drop --create-key), or name a new file") from None
        except OSError:  # a file system without hard links
            fd2 = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd2, "wb") as fh:
                fh.write(Path(tmp).read_bytes())
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_key(path: str | os.PathLike) -> bytes:
    """Read a key file; warn when other users can read it.

    Parameters
    ----------
    path
        The key file (its bytes are the key, as written: a text key keeps its newline).

    Returns
    -------
    bytes
        The key.

    Raises
    ------
    InputError
        (exit 2) The file is missing (fix: ``--create-key``), a folder, empty or shorter than
        :data:`MIN_KEY_BYTES`.

    Warns
    -----
    PmedWarning
        The file is readable by its group or by every user (fix: ``chmod 600``).
    """
    path = Path(path)
    if not path.exists():
        raise InputError("key file not found", file=path,
                         fix="pass --create-key to make a new key (then keep it secret and apart from the "
                             "data), or give the key used for earlier exports")
    if path.is_dir():
        raise InputError("the key file is a folder", file=path, fix="name the key file itself")
    try:
        key = path.read_bytes()
    except OSError as e:
        raise InputError(f"cannot read the key file ({e.strerror or type(e).__name__})", file=path,
                         fix="check its permissions") from None
    if not key:
        raise InputError("the key file is empty", file=path,
                         fix="give the key used for earlier exports, or create a new one with --create-key "
                             "under another name")
    if len(key) < MIN_KEY_BYTES:
        raise InputError(f"the key file holds {len(key)} bytes, fewer than the {MIN_KEY_BYTES} a key needs",
                         file=path, fix="create a new key with --create-key under another name")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        who = "every user" if mode & stat.S_IROTH else "its group"
        warnings.warn(f"{path}: the key file is readable by {who} (mode {mode:04o}); anyone who reads it can "
                      f"recompute the pseudonyms — run: chmod 600 {path}", PmedWarning, stacklevel=2)
    return key
