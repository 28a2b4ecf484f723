"""The ``local`` provider: a real prompt registry in one SQLite file.

It is the default target (works with no account and no network) and the reference implementation
the platform adapters are tested against (design.md section 4).

Schema (``meta.schema_version`` = :data:`SCHEMA_VERSION`)::

    meta     (key TEXT PRIMARY KEY, value TEXT)          application=promptops, schema_version=1
    prompts  (id, name UNIQUE, type, description, tags JSON list, created_at)
    versions (prompt_id -> prompts, number 1,2,3… per prompt, digest, content canonical JSON,
              provenance JSON or NULL, created_at)        PRIMARY KEY (prompt_id, number); immutable
    labels   (prompt_id -> prompts, label, version -> versions.number)  PRIMARY KEY (prompt_id, label)
    traffic  (prompt_id -> prompts, label, weights JSON {"<number>": weight})  PRIMARY KEY (prompt_id, label)

Foreign keys are on and every child row cascades from its prompt, so ``delete_prompt`` is one
statement. Version ids exposed to the core are the numbers as strings ("1", "2").

Transactions: the connection runs in autocommit mode (``isolation_level=None``) and every public
method is exactly one explicit transaction — ``BEGIN IMMEDIATE`` … ``COMMIT`` for writes (so two
writers serialise on the database lock instead of failing half-way), ``BEGIN`` … ``COMMIT`` for
reads (one consistent snapshot). Any exception rolls back, so a failed call leaves no partial change.
The journal is WAL, so readers never block the writer; the busy timeout (10 s by default) makes a
second process wait for the lock rather than fail at once.

Threads: one connection per provider, guarded by a lock. SQLite admits one writer at a time however
many connections there are, so per-thread connections would buy no write parallelism; they would
leave a connection open per pool thread, could not be closed by :meth:`LocalProvider.close` from
another thread, and would turn in-process contention into busy-timeout polling. The lock hands the
connection from thread to thread cheaply; contention between processes is still handled by SQLite.
"""
from __future__ import annotations

import json
import os
import re
import sqlite3
import threading
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Collection, ContextManager, Iterator, Mapping, Sequence

from ..digest import canonical_json, content_digest
from ..errors import ProviderError
from ..locking import file_lock
from ..model import RemotePrompt, RemoteState, RemoteVersion
from .base import CAPABILITIES, NewVersion

SCHEMA_VERSION = 1
APPLICATION = "promptops"
APPLICATION_ID = 0x50724F70  # "PrOp" in the SQLite header, so `file` and tools can recognise it

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS prompts (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        type        TEXT NOT NULL,
        description TEXT,
        tags        TEXT NOT NULL DEFAULT '[]',
        created_at  TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS versions (
        prompt_id   INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
        number      INTEGER NOT NULL CHECK (number >= 1),
        digest      TEXT NOT NULL,
        content     TEXT NOT NULL,
        provenance  TEXT,
        created_at  TEXT NOT NULL,
        PRIMARY KEY (prompt_id, number))""",
    "CREATE INDEX IF NOT EXISTS versions_by_digest ON versions (prompt_id, digest)",
    """CREATE TRIGGER IF NOT EXISTS versions_immutable BEFORE UPDATE ON versions
        BEGIN SELECT RAISE(ABORT, 'versions are immutable'); END""",
    """CREATE TABLE IF NOT EXISTS labels (
        prompt_id   INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
        label       TEXT NOT NULL,
        version     INTEGER NOT NULL,
        PRIMARY KEY (prompt_id, label),
        FOREIGN KEY (prompt_id, version) REFERENCES versions (prompt_id, number) ON DELETE CASCADE)""",
    """CREATE TABLE IF NOT EXISTS traffic (
        prompt_id   INTEGER NOT NULL REFERENCES prompts(id) ON DELETE CASCADE,
        label       TEXT NOT NULL,
        weights     TEXT NOT NULL,
        PRIMARY KEY (prompt_id, label))""",
)
_TABLES = frozenset({"meta", "prompts", "versions", "labels", "traffic"})
_VERSION_ID = re.compile(r"[1-9][0-9]{0,17}")
_CHUNK = 500  # names per IN (...) query, well under SQLite's bound-parameter limit


def _is_busy(exc: sqlite3.Error) -> bool:
    """True when ``exc`` means another connection holds the lock."""
    name = getattr(exc, "sqlite_errorname", "")  # Python 3.11+
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in str(exc)


def _needs_write_access(exc: sqlite3.Error) -> bool:
    """True when ``exc`` means SQLite could not write the registry or create a file next to it."""
    name = getattr(exc, "sqlite_errorname", "")  # Python 3.11+
    text = str(exc)
    return (name.startswith(("SQLITE_READONLY", "SQLITE_CANTOPEN")) or "readonly" in text
            or "unable to open" in text)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


class LocalProvider:
    """A prompt registry in the SQLite file ``path`` (created with its directory on first write)."""

    kind = "local"
    capabilities = CAPABILITIES["local"]

    def __init__(self, path: Path | str, *, timeout: float = 10.0):
        self.path = Path(path)
        self.timeout = timeout
        self._mutex = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._ready = False  # schema checked and present
        self._read_only = False  # the connection was opened read-only (we may not write the registry)
        self._immutable: tuple | None = None  # fingerprint of the file, for an immutable connection

    def __repr__(self) -> str:
        return f"LocalProvider({str(self.path)!r})"

    def __enter__(self) -> "LocalProvider":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------- reads

    def lock(self, timeout: float) -> ContextManager[None]:
        """The apply lock: an flock on ``<registry>.lock`` beside the registry file (created on
        first apply), so a second promptops process waits or stops instead of racing."""
        return file_lock(Path(f"{self.path}.lock"), timeout=timeout, what=f"registry {self.path}")

    def list_names(self) -> list[str]:
        """Every prompt name in the registry, sorted (an empty list for a missing registry)."""
        with self._transaction("read", write=False) as conn:
            if conn is None:
                return []
            return [row[0] for row in conn.execute("SELECT name FROM prompts ORDER BY name")]

    def read(self, names: Collection[str] | None = None) -> RemoteState:
        """The named prompts (all when None). A missing registry reads as empty and is not created."""
        wanted = None if names is None else sorted(set(names))
        if wanted == []:
            return RemoteState()
        prompts: dict[str, RemotePrompt] = {}
        with self._transaction("read", write=False) as conn:
            if conn is None:
                return RemoteState()
            chunks = [None] if wanted is None else [wanted[i:i + _CHUNK] for i in range(0, len(wanted), _CHUNK)]
            for chunk in chunks:
                prompts.update(self._read_prompts(conn, chunk))
        return RemoteState(prompts=dict(sorted(prompts.items())))

    def _read_prompts(self, conn: sqlite3.Connection, names: list[str] | None) -> dict[str, RemotePrompt]:
        where, params = "", ()
        if names is not None:
            where, params = f"WHERE p.name IN ({','.join('?' * len(names))})", tuple(names)
        rows = {pid: (name, desc, tags) for pid, name, desc, tags in conn.execute(
            f"SELECT p.id, p.name, p.description, p.tags FROM prompts p {where}", params)}
        versions: dict[int, list[RemoteVersion]] = {pid: [] for pid in rows}
        labels: dict[int, dict[str, str]] = {pid: {} for pid in rows}
        traffic: dict[int, dict[str, dict[str, int]]] = {pid: {} for pid in rows}
        for pid, number, content, provenance, created_at in conn.execute(
            f"SELECT v.prompt_id, v.number, v.content, v.provenance, v.created_at FROM versions v "
            f"JOIN prompts p ON p.id = v.prompt_id {where} ORDER BY v.prompt_id, v.number", params):
            versions[pid].append(self._decode_version(rows[pid][0], number, content, provenance, created_at))
        for pid, label, number in conn.execute(
            f"SELECT l.prompt_id, l.label, l.version FROM labels l "
            f"JOIN prompts p ON p.id = l.prompt_id {where}", params):
            labels[pid][label] = str(number)
        for pid, label, weights in conn.execute(
            f"SELECT t.prompt_id, t.label, t.weights FROM traffic t "
            f"JOIN prompts p ON p.id = t.prompt_id {where}", params):
            traffic[pid][label] = self._decode_weights(rows[pid][0], label, weights)
        out = {}
        for pid, (name, description, tags) in rows.items():
            out[name] = RemotePrompt(
                name=name,
                versions=tuple(versions[pid]),
                labels=dict(sorted(labels[pid].items())),
                traffic=dict(sorted(traffic[pid].items())),
                tags=tuple(self._decode(f"the tags of prompt {name!r}", tags, list)),
                description=description,
            )
        return out

    def _decode(self, what: str, text: str, expected: type) -> Any:
        """Parse a JSON column; a hand-edited row that is not valid JSON is a ProviderError."""
        try:
            value = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ProviderError(f"registry {self.path}: {what} is not valid JSON ({exc}); "
                                "the file was edited by hand: restore it from a backup") from exc
        if not isinstance(value, expected):
            raise ProviderError(f"registry {self.path}: {what} is not a JSON {expected.__name__}; "
                                "the file was edited by hand: restore it from a backup")
        return value

    def _decode_version(self, prompt: str, number: int, content: str, provenance: str | None,
                        created_at: str | None) -> RemoteVersion:
        what = f"version {number} of prompt {prompt!r}"
        data = self._decode(f"the content of {what}", content, dict)
        try:
            digest = content_digest(data)  # recomputed, so a hand-edited row cannot claim another digest
        except ValueError as exc:
            raise ProviderError(f"registry {self.path}: the content of {what} is not valid prompt content "
                                f"({exc}); restore the file from a backup") from exc
        stamp = None if provenance is None else self._decode(f"the provenance of {what}", provenance, dict)
        return RemoteVersion(id=str(number), digest=digest, content=data, provenance=stamp, created_at=created_at)

    def _decode_weights(self, prompt: str, label: str, text: str) -> dict[str, int]:
        weights = self._decode(f"the traffic split of {prompt!r} label {label!r}", text, dict)
        return {str(k): int(v) for k, v in weights.items()}

    # ----------------------------------------------------------------------- writes

    def create_version(self, new: NewVersion) -> str:
        """Store ``new`` as the next version number (creating the prompt); return the number."""
        try:
            digest = content_digest(new.content)
            content = canonical_json(new.content)
            provenance = None if new.provenance is None else canonical_json(new.provenance)
        except (ValueError, TypeError, KeyError) as exc:
            raise ProviderError(f"cannot store a version of prompt {new.prompt!r}: {exc}") from exc
        if digest != new.digest:
            raise ProviderError(
                f"refusing to store a version of prompt {new.prompt!r}: its content has digest {digest}, "
                f"not {new.digest}; the plan does not match its content (run promptops plan again)")
        kind = new.content.get("type")
        if not isinstance(kind, str):
            raise ProviderError(f"cannot store a version of prompt {new.prompt!r}: its content has no type")
        with self._transaction(f"create a version of prompt {new.prompt!r}", write=True, create=True) as conn:
            pid = self._ensure_prompt(conn, new.prompt, kind)
            number = conn.execute(
                "SELECT COALESCE(MAX(number), 0) + 1 FROM versions WHERE prompt_id = ?", (pid,)).fetchone()[0]
            conn.execute(
                "INSERT INTO versions (prompt_id, number, digest, content, provenance, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)", (pid, number, digest, content, provenance, _now()))
        return str(number)

    def _ensure_prompt(self, conn: sqlite3.Connection, name: str, kind: str) -> int:
        row = conn.execute("SELECT id FROM prompts WHERE name = ?", (name,)).fetchone()
        if row is not None:
            conn.execute("UPDATE prompts SET type = ? WHERE id = ?", (kind, row[0]))
            return row[0]
        return conn.execute(
            "INSERT INTO prompts (name, type, created_at) VALUES (?, ?, ?)", (name, kind, _now())).lastrowid

    def move_label(self, prompt: str, label: str, version_id: str) -> None:
        """Point ``label`` at version ``version_id`` (creating the label if needed)."""
        self.move_labels(prompt, (label,), version_id)

    def move_labels(self, prompt: str, labels: Sequence[str], version_id: str) -> None:
        """Point every label of ``labels`` at version ``version_id``, in one transaction."""
        names = ", ".join(map(repr, labels))
        with self._transaction(f"move label{'s' if len(labels) > 1 else ''} {names} of prompt {prompt!r}",
                               write=True) as conn:
            pid = self._prompt_id(conn, prompt)
            number = self._version_number(conn, pid, prompt, version_id)
            conn.executemany(
                "INSERT INTO labels (prompt_id, label, version) VALUES (?, ?, ?) "
                "ON CONFLICT (prompt_id, label) DO UPDATE SET version = excluded.version",
                [(pid, label, number) for label in labels])

    def remove_label(self, prompt: str, label: str) -> None:
        """Remove ``label`` (its traffic split, if any, is a separate thing and stays)."""
        with self._transaction(f"remove label {label!r} of prompt {prompt!r}", write=True) as conn:
            pid = self._prompt_id(conn, prompt)
            if conn.execute("DELETE FROM labels WHERE prompt_id = ? AND label = ?", (pid, label)).rowcount == 0:
                have = [r[0] for r in conn.execute(
                    "SELECT label FROM labels WHERE prompt_id = ? ORDER BY label", (pid,))]
                raise ProviderError(f"prompt {prompt!r} has no label {label!r} in registry {self.path}; "
                                    f"labels: {', '.join(have) or 'none'}")

    def set_traffic(self, prompt: str, label: str, weights: Mapping[str, int] | None) -> None:
        """Set the split of ``label`` ({version id: weight}, ints summing to 100); None removes it."""
        what = f"traffic split of prompt {prompt!r} label {label!r}"
        if weights is not None:
            ints = all(isinstance(w, int) and not isinstance(w, bool) and 0 <= w <= 100 for w in weights.values())
            if not weights or not ints or sum(weights.values()) != 100:
                raise ProviderError(
                    f"invalid {what}: {dict(weights)!r}; weights must be integers 0-100 summing to 100")
        with self._transaction(f"set the {what}", write=True) as conn:
            pid = self._prompt_id(conn, prompt)
            if weights is None:
                conn.execute("DELETE FROM traffic WHERE prompt_id = ? AND label = ?", (pid, label))
                return
            numbers = {self._version_number(conn, pid, prompt, vid): w for vid, w in weights.items()}
            text = json.dumps({str(n): numbers[n] for n in sorted(numbers)}, separators=(",", ":"))
            conn.execute(
                "INSERT INTO traffic (prompt_id, label, weights) VALUES (?, ?, ?) "
                "ON CONFLICT (prompt_id, label) DO UPDATE SET weights = excluded.weights", (pid, label, text))

    def update_metadata(self, prompt: str, tags: Collection[str], description: str | None) -> None:
        """Replace the prompt's tags and description."""
        text = json.dumps([str(t) for t in tags], ensure_ascii=False)
        with self._transaction(f"update the metadata of prompt {prompt!r}", write=True) as conn:
            pid = self._prompt_id(conn, prompt)
            conn.execute("UPDATE prompts SET tags = ?, description = ? WHERE id = ?", (text, description, pid))

    def delete_prompt(self, prompt: str) -> None:
        """Delete the prompt with its versions, labels and traffic splits (foreign keys cascade)."""
        with self._transaction(f"delete prompt {prompt!r}", write=True) as conn:
            pid = self._prompt_id(conn, prompt)  # raises when there is no registry (conn is None)
            conn.execute("DELETE FROM prompts WHERE id = ?", (pid,))

    def close(self) -> None:
        """Close the connection (a later call opens it again)."""
        with self._mutex:
            conn, self._conn, self._ready = self._conn, None, False
            self._read_only, self._immutable = False, None
            if conn is not None:
                conn.close()

    # ----------------------------------------------------------------------- lookups

    def _prompt_id(self, conn: sqlite3.Connection | None, prompt: str) -> int:
        row = None if conn is None else conn.execute("SELECT id FROM prompts WHERE name = ?", (prompt,)).fetchone()
        if row is None:
            raise ProviderError(f"prompt {prompt!r} does not exist in registry {self.path}")
        return row[0]

    def _version_number(self, conn: sqlite3.Connection, pid: int, prompt: str, version_id: str) -> int:
        vid = str(version_id)
        if _VERSION_ID.fullmatch(vid) and conn.execute(
                "SELECT 1 FROM versions WHERE prompt_id = ? AND number = ?", (pid, int(vid))).fetchone():
            return int(vid)
        have = [str(r[0]) for r in conn.execute(
            "SELECT number FROM versions WHERE prompt_id = ? ORDER BY number", (pid,))]
        raise ProviderError(f"prompt {prompt!r} has no version {vid!r} in registry {self.path}; "
                            f"versions: {', '.join(have) or 'none'}")

    # ----------------------------------------------------------------------- connection and transactions

    @contextmanager
    def _transaction(self, what: str, *, write: bool, create: bool = False) -> Iterator[sqlite3.Connection | None]:
        """One transaction under the lock; yields None when there is no registry (and create is False).

        Commits when the body returns, rolls back on any exception. sqlite3 errors are translated here.
        """
        with self._mutex, self._translate(what, write=write):
            conn = self._connect(create=create, write=write)
            if conn is None:
                if self._immutable is not None:
                    self.close()  # an empty database: nothing was read, nothing to check
                yield None
                return
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        pass  # the original error is the one to report; SQLite rolls back on its own
                if self._immutable is not None:
                    self.close()
                raise
            if self._immutable is not None:
                self._end_immutable_read()

    def _connect(self, *, create: bool, write: bool) -> sqlite3.Connection | None:
        """The open connection to an initialised registry, or None when there is none and not create.

        A registry we may read but not write (its file or its folder is read-only to us) is opened
        read-only for reads; see :meth:`_open_read_only`. A write never uses such a connection.
        """
        if self._conn is not None and write and self._read_only:
            self.close()  # opened read-only for an earlier read: let the write meet the real error
        if self._conn is None:
            if not create and not self.path.exists():
                return None
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = self._open("rwc" if create else "rw")
        try:
            try:
                if not self._ready:
                    self._ready = self._check_schema(self._conn)
            except sqlite3.OperationalError as exc:
                if write or self._read_only or not _needs_write_access(exc):
                    raise
                # WAL needs to create (or write) registry.db-shm next to the file even to read.
                self.close()
                self._open_read_only()
                self._ready = self._check_schema(self._conn)
            if not self._ready and create:
                self._initialise(self._conn)
                self._ready = True
        except BaseException:
            self.close()
            raise
        return self._conn if self._ready else None

    def _open(self, mode: str, extra: str = "") -> sqlite3.Connection:
        uri = f"{self.path.resolve().as_uri()}?mode={mode}{extra}"
        return sqlite3.connect(uri, uri=True, timeout=self.timeout, isolation_level=None, check_same_thread=False)

    def _open_read_only(self) -> None:
        """Open a registry we may read but not write, for reading.

        With a ``-wal`` file present, another connection has the registry open (or one ended
        without cleaning up): its latest commits may be in that file, so read through it
        (``mode=ro``, which uses the existing ``-shm`` read-only). Without one, the main file holds
        everything and is opened ``immutable`` (no ``-shm`` needed). Immutable means SQLite takes
        no locks and assumes nobody writes, so the file is fingerprinted before opening and checked
        after every transaction (:meth:`_end_immutable_read`); such a connection serves one
        transaction only, so it never answers from a cache that a writer has made stale.
        """
        if self.path.with_name(self.path.name + "-wal").exists():
            self._conn, self._read_only = self._open("ro"), True
            return
        fingerprint = self._fingerprint()
        self._conn, self._read_only = self._open("ro", "&immutable=1"), True
        self._immutable = fingerprint

    def _fingerprint(self) -> tuple[int, int, int, bool]:
        stat = self.path.stat()
        return stat.st_ino, stat.st_size, stat.st_mtime_ns, self.path.with_name(self.path.name + "-wal").exists()

    def _end_immutable_read(self) -> None:
        """Close the one-transaction immutable connection; fail if the registry changed meanwhile."""
        before = self._immutable
        self.close()
        try:
            changed = self._fingerprint() != before
        except OSError:
            changed = True
        if changed:
            raise ProviderError(f"registry {self.path} changed while it was being read (it is read-only to "
                                "promptops, so it was read without locking); run the command again")

    def _check_schema(self, conn: sqlite3.Connection) -> bool:
        """True for a promptops registry, False for an empty database, ProviderError otherwise."""
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            return False
        meta: dict[Any, Any] = {}
        if "meta" in tables:
            try:
                meta = dict(conn.execute("SELECT key, value FROM meta"))
            except sqlite3.OperationalError as exc:  # someone else's "meta" table, other columns
                if "no such column" not in str(exc):
                    raise
        if meta.get("application") != APPLICATION:
            raise ProviderError(f"{self.path} is not a promptops registry (it holds other tables: "
                                f"{', '.join(sorted(tables))}); set the target's path to another file")
        version = str(meta.get("schema_version", ""))
        if not version.isdigit():
            raise ProviderError(f"registry {self.path} has an invalid schema version {version!r}; "
                                "restore it from a backup")
        if int(version) > SCHEMA_VERSION:
            raise ProviderError(f"registry {self.path} was written by a newer promptops (schema version "
                                f"{version}, this one reads {SCHEMA_VERSION}); upgrade promptops")
        if missing := _TABLES - tables:
            raise ProviderError(f"registry {self.path} is damaged: tables {', '.join(sorted(missing))} are "
                                "missing; restore it from a backup")
        conn.execute("PRAGMA foreign_keys = ON")
        return True

    def _initialise(self, conn: sqlite3.Connection) -> None:
        """Create the schema in an empty database (idempotent if another process races us)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            conn.executemany("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                             [("application", APPLICATION), ("schema_version", str(SCHEMA_VERSION))])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        self._enable_wal(conn)
        conn.execute("PRAGMA foreign_keys = ON")

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        """Switch the registry to WAL (persistent), so readers never wait for a writer.

        The switch needs a moment when no other connection is inside a transaction, and SQLite
        reports BUSY at once instead of calling the busy handler, so retry until the timeout. A
        registry left in rollback-journal mode is still correct, only less concurrent.
        """
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    return
                time.sleep(0.01)

    @contextmanager
    def _translate(self, what: str, *, write: bool = False) -> Iterator[None]:
        """The one place sqlite3 and file-system errors become ProviderErrors that say what to do."""
        try:
            yield
        except sqlite3.Error as exc:
            raise ProviderError(self._explain(what, exc, write=write)) from exc
        except OSError as exc:
            raise ProviderError(f"cannot create registry {self.path}: {exc.strerror or exc}; "
                                "check the target's path and the directory's permissions") from exc

    def _explain(self, what: str, exc: sqlite3.Error, *, write: bool = False) -> str:
        name = getattr(exc, "sqlite_errorname", "")  # Python 3.11+
        text = str(exc)
        if _is_busy(exc):
            return (f"registry {self.path} is locked by another process (waited {self.timeout:g}s to "
                    f"{what}); retry when the other promptops run has finished")
        if name.startswith("SQLITE_NOTADB") or "not a database" in text:
            return (f"{self.path} is not a promptops registry (not a SQLite database); "
                    "move it away or set the target's path to another file")
        if write and (_needs_write_access(exc) or self._not_writable()) and self._readable():
            return (f"registry {self.path} is read-only: cannot write, so could not {what}{self._why_read_only()}; "
                    "check the file and folder permissions")
        if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
            return f"cannot open registry {self.path}; check that the path is a file you can read and write"
        if name.startswith("SQLITE_READONLY") or "readonly" in text:
            return (f"registry {self.path} is read-only and could not be read ({text}); check the file and "
                    "folder permissions")
        if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
            return f"registry {self.path} is corrupted ({text}); restore it from a backup"
        if name.startswith("SQLITE_FULL") or "is full" in text:
            return f"cannot {what}: the disk holding registry {self.path} is full"
        return f"registry {self.path}: could not {what}: {text}"

    def _readable(self) -> bool:
        """True when the registry file can be read (or does not exist yet)."""
        return not self.path.exists() or os.access(self.path, os.R_OK)

    def _not_writable(self) -> bool:
        try:
            return self.path.exists() and not (os.access(self.path, os.W_OK) and os.access(self.path.parent, os.W_OK))
        except OSError:
            return False

    def _why_read_only(self) -> str:
        """Which of the file and its folder we may not write, when that can be told."""
        file_ok = not self.path.exists() or os.access(self.path, os.W_OK)
        folder_ok = os.access(self.path.parent, os.W_OK)
        if not file_ok and not folder_ok:
            return " (neither the file nor its folder is writable)"
        if not file_ok:
            return " (the file is not writable)"
        if not folder_ok:
            return f" (its folder is not writable, and SQLite creates {self.path.name}-wal and -shm files there)"
        return ""
