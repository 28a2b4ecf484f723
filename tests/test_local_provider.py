"""The local provider against real SQLite files (no mocks)."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

import promptops
from promptops.digest import canonical_content, content_digest
from promptops.errors import PromptOpsError, ProviderError
from promptops.model import RemoteState
from promptops.providers.base import CAPABILITIES, NewVersion
from promptops.providers.local import SCHEMA_VERSION, LocalProvider

REPO = Path(__file__).resolve().parents[1]


def text(template: str, **model) -> dict:
    return canonical_content(type="text", template_format="mustache", template=template, model=model)


def chat(*messages: dict, **model) -> dict:
    return canonical_content(type="chat", template_format="jinja2", messages=list(messages), model=model)


def new(prompt: str, content: dict, **provenance) -> NewVersion:
    stamp = provenance or {"commit": "3f2c1ab", "subject": "Add prompt", "path": f"prompts/{prompt}.yaml",
                           "version": "v"}
    return NewVersion(prompt=prompt, content=content, digest=content_digest(content), provenance=stamp)


def rows(path: Path, sql: str, params=()) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / ".promptops" / "registry.db"


@pytest.fixture
def reg(db: Path):
    with LocalProvider(db) as provider:
        yield provider


# --------------------------------------------------------------------------- basics


def test_provider_identity(reg):
    assert reg.kind == "local"
    assert reg.capabilities is CAPABILITIES["local"]
    assert reg.capabilities.traffic


def test_read_of_missing_registry_is_empty_and_creates_nothing(db):
    provider = LocalProvider(db)
    assert provider.read() == RemoteState()
    assert provider.read(["a", "b"]) == RemoteState()
    assert not db.parent.exists()


def test_failed_writes_on_missing_registry_create_nothing(db):
    provider = LocalProvider(db)
    with pytest.raises(ProviderError, match="'greet' does not exist"):
        provider.move_label("greet", "production", "1")
    with pytest.raises(ProviderError):
        provider.delete_prompt("greet")
    content = text("hi")
    with pytest.raises(ProviderError, match="digest"):
        provider.create_version(NewVersion("greet", content, "sha256:" + "0" * 64, {}))
    assert not db.parent.exists()


def test_first_write_creates_directory_file_and_schema(db, reg):
    assert reg.create_version(new("greet", text("Hello {{name}}"))) == "1"
    assert db.is_file()
    meta = dict(rows(db, "SELECT key, value FROM meta"))
    assert meta == {"application": "promptops", "schema_version": str(SCHEMA_VERSION)}
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]


def test_empty_sqlite_file_reads_empty_then_initialises(db):
    db.parent.mkdir()
    db.touch()
    provider = LocalProvider(db)
    assert provider.read() == RemoteState()
    assert db.stat().st_size == 0
    assert provider.create_version(new("greet", text("x"))) == "1"
    assert set(provider.read().prompts) == {"greet"}


# --------------------------------------------------------------------------- round trip


WEIRD = ("Line one\r\nLine\ttwo \u00a0nbsp\u200bzero-width\u200d joiner \ufeffbom \u2014 \u00e9\u00e8 "
         "\u65e5\u672c\u8a9e \U0001f600 e\u0301\n\n  ")


@pytest.mark.parametrize("content", [
    text(WEIRD, temperature=1.0, top_p=0.95, max_tokens=256.0),
    text("no final newline"),
    chat({"role": "system", "content": WEIRD}, {"placeholder": "history"}, {"role": "user", "content": "{{q}}"},
         name="gpt-4o", temperature=0.3, stop=["\r\n", "\t"]),
])
def test_round_trip_keeps_the_digest(reg, db, content):
    digest = content_digest(content)
    vid = reg.create_version(new("p", content))
    version = reg.read().prompts["p"].versions[0]
    assert version.id == vid == "1"
    assert version.digest == digest
    assert content_digest(version.content) == digest
    # A second provider on the same file (a fresh process) reads the same thing.
    assert LocalProvider(db).read().prompts["p"].versions[0].digest == digest


def test_integral_floats_are_stored_normalised(reg, db):
    content = text("t", temperature=1.0)
    reg.create_version(new("p", content))
    stored = rows(db, "SELECT content FROM versions")[0][0]
    assert '"temperature":1}' in stored
    version = reg.read().prompts["p"].versions[0]
    assert version.content["model"] == {"temperature": 1}
    assert version.digest == content_digest(content) == content_digest(text("t", temperature=1))


def test_unicode_and_whitespace_are_stored_byte_exact(reg):
    reg.create_version(new("p", text(WEIRD)))
    assert reg.read().prompts["p"].versions[0].content["template"] == WEIRD


def test_provenance_round_trips(reg):
    reg.create_version(new("p", text("a"), commit="abc1234", subject="Tune \u00e9", path="prompts/p.yaml",
                           version="v1"))
    stamp = reg.read().prompts["p"].versions[0].provenance
    assert stamp == {"commit": "abc1234", "subject": "Tune \u00e9", "path": "prompts/p.yaml", "version": "v1"}


def test_version_made_outside_promptops_has_no_provenance(reg, db):
    reg.create_version(new("p", text("a")))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("INSERT INTO versions (prompt_id, number, digest, content, provenance, created_at) "
                     "SELECT prompt_id, 2, digest, content, NULL, created_at FROM versions")
    conn.close()
    assert [v.provenance is None for v in reg.read().prompts["p"].versions] == [False, True]


def test_hand_edited_row_cannot_lie_about_its_digest(reg, db):
    content = text("original")
    reg.create_version(new("p", content))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("DROP TRIGGER versions_immutable")
        conn.execute("UPDATE versions SET content = replace(content, 'original', 'edited')")
    conn.close()
    version = reg.read().prompts["p"].versions[0]
    assert version.content["template"] == "edited"
    assert version.digest == content_digest(text("edited")) != content_digest(content)


def test_versions_are_immutable_in_the_database(reg, db):
    reg.create_version(new("p", text("a")))
    conn = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError, match="immutable"):
        conn.execute("UPDATE versions SET content = '{}'")
    conn.close()


def test_corrupt_json_in_a_row_is_a_provider_error(reg, db):
    reg.create_version(new("p", text("a")))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE prompts SET tags = '[not json'")
    conn.close()
    with pytest.raises(ProviderError, match=r"tags of prompt 'p' is not valid JSON"):
        reg.read()


# --------------------------------------------------------------------------- versions


def test_numbers_increase_per_prompt_and_versions_read_oldest_first(reg):
    assert [reg.create_version(new("a", text(f"a{i}"))) for i in range(3)] == ["1", "2", "3"]
    assert reg.create_version(new("b", text("b0"))) == "1"
    assert reg.create_version(new("a", text("a0"))) == "4"  # same content again: a new version, never deduplicated
    versions = reg.read().prompts["a"].versions
    assert [v.id for v in versions] == ["1", "2", "3", "4"]
    assert [v.content["template"] for v in versions] == ["a0", "a1", "a2", "a0"]


def test_numbers_never_reused_after_delete_of_prompt_restart_at_one(reg):
    reg.create_version(new("a", text("1")))
    reg.create_version(new("a", text("2")))
    reg.delete_prompt("a")
    assert reg.create_version(new("a", text("3"))) == "1"


def test_wrong_digest_is_refused_and_nothing_is_stored(reg):
    reg.create_version(new("p", text("a")))
    with pytest.raises(ProviderError, match="refusing to store a version of prompt 'p'"):
        reg.create_version(NewVersion("p", text("b"), content_digest(text("a")), {}))
    assert [v.id for v in reg.read().prompts["p"].versions] == ["1"]


def test_content_that_cannot_be_stored_is_refused(reg, db):
    content = text("a")
    content["model"] = {"temperature": float("nan")}
    with pytest.raises(ProviderError, match="cannot store a version of prompt 'p'"):
        reg.create_version(NewVersion("p", content, "sha256:x", {}))
    assert not db.exists()


def test_read_selects_names(reg):
    for name in ("a", "b", "c"):
        reg.create_version(new(name, text(name)))
    assert set(reg.read().prompts) == {"a", "b", "c"}
    assert set(reg.read(["a", "c", "missing"]).prompts) == {"a", "c"}
    assert reg.read([]) == RemoteState()


def test_read_many_names_spans_query_chunks(reg):
    for i in range(3):
        reg.create_version(new(f"p{i}", text("x")))
    names = [f"n{i}" for i in range(1200)] + ["p0", "p2"]
    assert set(reg.read(names).prompts) == {"p0", "p2"}


# --------------------------------------------------------------------------- labels, traffic, metadata


def test_labels_move_and_are_removed(reg):
    for i in range(3):
        reg.create_version(new("p", text(str(i))))
    reg.move_label("p", "production", "1")
    reg.move_label("p", "staging", "3")
    assert reg.read().prompts["p"].labels == {"production": "1", "staging": "3"}
    reg.move_label("p", "production", "2")
    assert reg.read().prompts["p"].labels == {"production": "2", "staging": "3"}
    reg.remove_label("p", "staging")
    assert reg.read().prompts["p"].labels == {"production": "2"}
    with pytest.raises(ProviderError, match=r"prompt 'p' has no label 'staging'.*labels: production"):
        reg.remove_label("p", "staging")


def test_unknown_prompt_and_version_are_provider_errors_naming_them(reg):
    reg.create_version(new("p", text("a")))
    reg.create_version(new("p", text("b")))
    with pytest.raises(ProviderError, match=r"prompt 'nope' does not exist in registry .*registry\.db"):
        reg.move_label("nope", "production", "1")
    for bad in ("3", "0", "01", "v1", "", "1.0", "\u00b2"):
        with pytest.raises(ProviderError, match=r"prompt 'p' has no version .* versions: 1, 2"):
            reg.move_label("p", "production", bad)
    with pytest.raises(ProviderError, match="'nope' does not exist"):
        reg.set_traffic("nope", "production", {"1": 100})
    with pytest.raises(ProviderError, match="'nope' does not exist"):
        reg.update_metadata("nope", ["x"], None)
    with pytest.raises(ProviderError, match="'nope' does not exist"):
        reg.delete_prompt("nope")
    with pytest.raises(ProviderError, match="'nope' does not exist"):
        reg.remove_label("nope", "production")
    assert reg.read().prompts["p"].labels == {}


def test_traffic_set_replaced_and_removed(reg):
    reg.create_version(new("p", text("a")))
    reg.create_version(new("p", text("b")))
    reg.move_label("p", "production", "1")
    reg.set_traffic("p", "production", {"1": 90, "2": 10})
    assert reg.read().prompts["p"].traffic == {"production": {"1": 90, "2": 10}}
    reg.set_traffic("p", "production", {"2": 100, "1": 0})
    assert reg.read().prompts["p"].traffic == {"production": {"1": 0, "2": 100}}
    reg.set_traffic("p", "production", None)
    assert reg.read().prompts["p"].traffic == {}
    reg.set_traffic("p", "production", None)  # removing an absent split is a no-op
    assert reg.read().prompts["p"].labels == {"production": "1"}


@pytest.mark.parametrize("weights", [
    {"1": 90, "2": 9},          # sums to 99
    {"1": 90, "2": 11},
    {"1": 90.0, "2": 10},       # not an int
    {"1": True, "2": 99},       # bool is not a weight
    {"1": 110, "2": -10},
    {},
    {"1": 90, "3": 10},         # unknown version
    {"1": 90, "02": 10},        # not a version id
])
def test_bad_traffic_is_refused_and_leaves_the_old_split(reg, weights):
    reg.create_version(new("p", text("a")))
    reg.create_version(new("p", text("b")))
    reg.set_traffic("p", "production", {"1": 50, "2": 50})
    with pytest.raises(ProviderError, match="'p'"):
        reg.set_traffic("p", "production", weights)
    assert reg.read().prompts["p"].traffic == {"production": {"1": 50, "2": 50}}


def test_update_metadata(reg):
    reg.create_version(new("p", text("a")))
    prompt = reg.read().prompts["p"]
    assert (prompt.tags, prompt.description) == ((), None)
    reg.update_metadata("p", ["checkout", "caf\u00e9"], "Guides users")
    prompt = reg.read().prompts["p"]
    assert (prompt.tags, prompt.description) == (("checkout", "caf\u00e9"), "Guides users")
    reg.update_metadata("p", [], None)
    prompt = reg.read().prompts["p"]
    assert (prompt.tags, prompt.description) == ((), None)


def test_delete_prompt_cascades(reg, db):
    for name in ("gone", "kept"):
        reg.create_version(new(name, text("a")))
        reg.create_version(new(name, text("b")))
        reg.move_label(name, "production", "2")
        reg.set_traffic(name, "production", {"1": 50, "2": 50})
    reg.delete_prompt("gone")
    assert set(reg.read().prompts) == {"kept"}
    for table in ("versions", "labels", "traffic"):
        left = rows(db, f"SELECT DISTINCT p.name FROM {table} t JOIN prompts p ON p.id = t.prompt_id")
        assert left == [("kept",)]
        orphans = rows(db, f"SELECT count(*) FROM {table} WHERE prompt_id NOT IN (SELECT id FROM prompts)")
        assert orphans == [(0,)]


# --------------------------------------------------------------------------- foreign files


def test_non_sqlite_file_is_refused_with_its_path(db):
    db.parent.mkdir()
    db.write_text("name: not a database\n" * 100)
    before = db.read_bytes()
    provider = LocalProvider(db)
    expected = rf"{db.name} is not a promptops registry \(not a SQLite database\)"
    with pytest.raises(ProviderError, match=expected) as info:
        provider.read()
    assert str(db) in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)
    with pytest.raises(ProviderError, match="not a SQLite database"):
        provider.create_version(new("p", text("a")))
    assert db.read_bytes() == before


def test_foreign_sqlite_database_is_refused(db):
    db.parent.mkdir()
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, email TEXT)")
        conn.execute("CREATE TABLE meta (k TEXT, v TEXT)")
    conn.close()
    before = db.read_bytes()
    provider = LocalProvider(db)
    with pytest.raises(ProviderError, match="is not a promptops registry") as info:
        provider.read()
    assert str(db) in str(info.value)
    with pytest.raises(ProviderError, match="is not a promptops registry"):
        provider.create_version(new("p", text("a")))
    assert db.read_bytes() == before
    assert rows(db, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name") == [("meta",), ("users",)]


def test_newer_schema_version_is_refused(reg, db):
    reg.create_version(new("p", text("a")))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
    conn.close()
    with pytest.raises(ProviderError, match=r"newer promptops \(schema version 2.*upgrade promptops"):
        LocalProvider(db).read()


def test_provider_error_is_a_user_error(db):
    assert issubclass(ProviderError, PromptOpsError)


# --------------------------------------------------------------------------- atomicity and concurrency


def test_failed_create_leaves_no_partial_rows(reg, db):
    """The prompt row is inserted before the version row; when the version insert fails the whole
    transaction rolls back, so the new prompt does not exist either."""
    reg.create_version(new("existing", text("a")))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TRIGGER boom BEFORE INSERT ON versions BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
    with pytest.raises(ProviderError, match="create a version of prompt 'fresh'.*disk on fire") as info:
        reg.create_version(new("fresh", chat({"role": "user", "content": "x"})))
    assert isinstance(info.value.__cause__, sqlite3.Error)
    assert rows(db, "SELECT name, type FROM prompts") == [("existing", "text")]
    # the prompt-row update of an existing prompt (its type) is rolled back as well
    with pytest.raises(ProviderError):
        reg.create_version(new("existing", chat({"role": "user", "content": "x"})))
    assert rows(db, "SELECT name, type FROM prompts") == [("existing", "text")]
    # and the lock was released: the next write goes through
    with conn:
        conn.execute("DROP TRIGGER boom")
    conn.close()
    assert reg.create_version(new("fresh", text("x"))) == "1"
    assert set(reg.read().prompts) == {"existing", "fresh"}


def test_failed_set_traffic_mid_transaction_writes_nothing(reg, db):
    reg.create_version(new("p", text("a")))
    reg.create_version(new("p", text("b")))
    conn = sqlite3.connect(db)
    with conn:
        conn.execute("CREATE TRIGGER boom BEFORE INSERT ON traffic BEGIN SELECT RAISE(ABORT, 'no'); END")
    conn.close()
    with pytest.raises(ProviderError):
        reg.set_traffic("p", "production", {"1": 50, "2": 50})
    assert rows(db, "SELECT count(*) FROM traffic") == [(0,)]


def test_locked_registry_says_so_and_reads_still_work(db, reg):
    reg.create_version(new("p", text("a")))
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        impatient = LocalProvider(db, timeout=0.2)
        with pytest.raises(ProviderError, match=r"registry .*registry\.db is locked by another process.*retry"):
            impatient.move_label("p", "production", "1")
        assert set(impatient.read().prompts) == {"p"}  # WAL: readers are not blocked by the writer
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    impatient.move_label("p", "production", "1")
    assert reg.read().prompts["p"].labels == {"production": "1"}


def test_threads_creating_versions_get_distinct_numbers(reg):
    ids: list[str] = []
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(10):
                ids.append(reg.create_version(new("p", text(f"{n}-{i}"))))
                reg.read(["p"])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(ids, key=int) == [str(i) for i in range(1, 81)]
    assert len(reg.read().prompts["p"].versions) == 80


@pytest.mark.parametrize("round_", range(5))
def test_separate_providers_racing_on_a_fresh_file_serialise(tmp_path, round_):
    """Four writers and two readers, each with its own provider, start on a file that does not exist
    yet: initialisation (schema, WAL switch) and version numbering must both survive the race."""
    db = tmp_path / "fresh" / "registry.db"
    ids: list[str] = []
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def write(n: int) -> None:
        provider = LocalProvider(db)
        try:
            start.wait()
            for i in range(10):
                ids.append(provider.create_version(new("p", text(f"{n}-{i}"))))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            provider.close()

    def read() -> None:
        provider = LocalProvider(db)
        try:
            start.wait()
            for _ in range(20):
                provider.read()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            provider.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=read) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(ids, key=int) == [str(i) for i in range(1, 41)]
    assert rows(db, "PRAGMA journal_mode") == [("wal",)]


def test_two_providers_on_one_file_see_each_others_writes(db):
    a, b = LocalProvider(db), LocalProvider(db)
    assert a.read() == RemoteState()
    b.create_version(new("p", text("one")))
    assert [v.id for v in a.read().prompts["p"].versions] == ["1"]
    a.create_version(new("p", text("two")))
    a.move_label("p", "production", "2")
    prompt = b.read().prompts["p"]
    assert [v.id for v in prompt.versions] == ["1", "2"]
    assert prompt.labels == {"production": "2"}
    b.delete_prompt("p")
    assert a.read() == RemoteState()
    a.close()
    b.close()


def test_two_processes_creating_versions_get_distinct_numbers(db):
    LocalProvider(db).create_version(new("p", text("seed")))
    script = (
        "import sys\n"
        "from promptops.digest import canonical_content, content_digest\n"
        "from promptops.providers.base import NewVersion\n"
        "from promptops.providers.local import LocalProvider\n"
        "reg = LocalProvider(sys.argv[1])\n"
        "for i in range(25):\n"
        "    c = canonical_content(type='text', template_format='mustache', template=f'{sys.argv[2]}-{i}')\n"
        "    print(reg.create_version(NewVersion('p', c, content_digest(c), {'commit': None})))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(db), tag], cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in ("x", "y")]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    ids = [line for out, _ in outputs for line in out.split()]
    assert sorted(ids, key=int) == [str(i) for i in range(2, 52)]
    assert len(LocalProvider(db).read().prompts["p"].versions) == 51


def test_close_and_reopen(db):
    provider = LocalProvider(db)
    provider.create_version(new("p", text("a")))
    provider.close()
    provider.close()
    assert set(provider.read().prompts) == {"p"}
    provider.close()


# --------------------------------------------------------------------------- a registry we may read, not write
#
# Root bypasses file permissions, so the reader runs in a child process that, when started as
# root, gives up root for an unprivileged uid (nobody's, or 65534: no account has to exist or be
# created) after its imports and before it touches the registry. Dropping inside the child, rather
# than starting it with su or subprocess's user=, works wherever the interpreter is installed (a
# pyenv under /root is not executable by other users). As any other user the child runs as that
# user. The scenario is never skipped: when the child cannot drop root, the test fails saying why.

READ_ONLY_DRIVER = """\
import json, os, sys
from promptops.digest import canonical_content, content_digest
from promptops.errors import ProviderError
from promptops.providers.base import NewVersion
from promptops.providers.local import LocalProvider

db, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if os.geteuid() == 0:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)  # for good: real, effective and saved uid
out = {"euid": os.geteuid()}
try:
    open(db, "r+b").close()
    out["file_writable"] = True  # the condition under test does not hold
except PermissionError:
    out["file_writable"] = False
reg = LocalProvider(db)
try:
    out["read"] = sorted(reg.read().prompts)
except ProviderError as exc:
    out["read_error"] = str(exc)
c = canonical_content(type="text", template_format="mustache", template="new")
try:
    reg.create_version(NewVersion("new", c, content_digest(c), None))
    out["write"] = "ok"
except ProviderError as exc:
    out["write_error"] = str(exc)
try:
    out["read_after_write"] = sorted(reg.read().prompts)
except ProviderError as exc:
    out["read_after_write_error"] = str(exc)
reg.close()
print(json.dumps(out))
"""


def reader_ids() -> tuple[int, int]:
    """The uid and gid the reader runs as: unprivileged, whoever runs the tests."""
    if os.geteuid() != 0:
        return os.getuid(), os.getgid()
    try:
        entry = pwd.getpwnam("nobody")
        return entry.pw_uid, entry.pw_gid
    except KeyError:
        return 65534, 65534


@pytest.fixture
def shared_dir():
    """A folder an unprivileged user can reach (pytest's tmp_path is private to its owner)."""
    base = Path(tempfile.mkdtemp(prefix="promptops-ro-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        for folder, _dirs, _files in os.walk(base):
            os.chmod(folder, 0o755)  # a non-root user cannot delete from a 555 folder
        shutil.rmtree(base)


def run_as_reader(db: Path) -> dict:
    """Run READ_ONLY_DRIVER on ``db`` as the unprivileged reader; its JSON report."""
    uid, gid = reader_ids()
    package_root = Path(promptops.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": str(package_root), "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run([sys.executable, "-c", READ_ONLY_DRIVER, str(db), str(uid), str(gid)],
                          cwd=db.parent.parent, env=env, capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        pytest.fail(f"the read-only registry check could not run as uid {uid} (exit {proc.returncode}); it needs "
                    f"a process without root's power over file permissions:\n{proc.stderr}")
    report = json.loads(proc.stdout)
    if report["euid"] == 0 or report["file_writable"]:
        pytest.fail(f"the reader (uid {report['euid']}) can write {db}: the read-only condition does not hold")
    return report


def make_read_only(db: Path) -> None:
    """The registry file and its folder belong to the reader and are read-only (444 and 555)."""
    uid, gid = reader_ids()
    for path in (db, db.parent):
        if os.geteuid() == 0:
            os.chown(path, uid, gid)
    db.chmod(0o444)
    db.parent.chmod(0o555)


def test_read_only_registry_can_be_read_and_a_write_says_it_is_read_only(shared_dir):
    db = shared_dir / ".promptops" / "registry.db"
    with LocalProvider(db) as reg:
        reg.create_version(new("p", text("a")))
        reg.move_label("p", "production", "1")
    assert not db.with_name("registry.db-wal").exists()  # closed cleanly: nothing but the file
    make_read_only(db)

    report = run_as_reader(db)
    assert report.get("read") == ["p"], report
    assert report.get("read_after_write") == ["p"], report
    error = report.get("write_error", "")
    assert f"registry {db} is read-only: cannot write" in error, report
    assert "check the file and folder permissions" in error, report
    assert sorted(os.listdir(db.parent)) == ["registry.db"]  # the reader created nothing


def test_read_only_registry_in_use_by_a_writer_is_read_with_its_latest_commit(shared_dir):
    """While another process has the registry open, its newest commits are still in the -wal
    file: the reader must see them (an immutable open of the main file alone would not)."""
    db = shared_dir / ".promptops" / "registry.db"
    with LocalProvider(db) as reg:
        reg.create_version(new("p", text("a")))
    writer = LocalProvider(db)
    try:
        writer.create_version(new("q", text("b")))  # committed to the -wal; the writer stays open
        assert db.with_name("registry.db-wal").exists() and db.with_name("registry.db-shm").exists()
        make_read_only(db)
        report = run_as_reader(db)
    finally:
        writer.close()
    assert report.get("read") == ["p", "q"], report
    assert "is read-only: cannot write" in report.get("write_error", ""), report


def _as_if_read_only(monkeypatch, provider: LocalProvider) -> None:
    """Make ``provider`` fail its ordinary open the way a read-only registry does (for root, whom
    permissions cannot refuse), so its reads take the read-only path; other providers are unaffected."""
    original = LocalProvider._check_schema

    def check(self, conn):
        if self is provider and not self._read_only:
            raise sqlite3.OperationalError("attempt to write a readonly database")
        return original(self, conn)

    monkeypatch.setattr(LocalProvider, "_check_schema", check)


def test_read_only_path_reads_without_creating_files_and_detects_a_concurrent_write(db, monkeypatch):
    with LocalProvider(db) as reg:
        reg.create_version(new("p", text("a")))
    reader = LocalProvider(db)
    _as_if_read_only(monkeypatch, reader)
    assert set(reader.read().prompts) == {"p"}
    assert set(reader.read().prompts) == {"p"}  # each read opens afresh: no stale cache
    assert sorted(os.listdir(db.parent)) == ["registry.db"]

    # A writer that comes and goes during an immutable read changes the file under it.
    original = LocalProvider._read_prompts

    def read_during_a_write(self, conn, names):
        found = original(self, conn, names)
        with LocalProvider(db) as writer:
            writer.create_version(new("q", text("b")))
        return found

    monkeypatch.setattr(LocalProvider, "_read_prompts", read_during_a_write)
    with pytest.raises(ProviderError, match=r"registry .*registry\.db changed while it was being read.*run the command again"):
        reader.read()
    monkeypatch.setattr(LocalProvider, "_read_prompts", original)
    assert set(reader.read().prompts) == {"p", "q"}
