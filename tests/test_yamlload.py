"""promptops.yamlload: located YAML loading and its guards."""
from __future__ import annotations

import concurrent.futures
import os
from pathlib import Path

import pytest

from promptops.yamlload import (
    MAX_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    load_yaml,
    load_yaml_file,
)


def load(text: str | bytes):
    return load_yaml(text.encode("utf-8") if isinstance(text, str) else text, "f.yaml")


def only_problem(loaded) -> tuple[int, int, str]:
    assert loaded.data is None
    assert len(loaded.diagnostics) == 1, loaded.diagnostics
    d = loaded.diagnostics[0]
    assert d.file == "f.yaml"
    return d.line, d.column, d.message


# --------------------------------------------------------------------------- positions


def test_key_and_value_positions() -> None:
    loaded = load("name: summarizer\nmodel:\n  name: gpt-4o\n  temperature:   0.3\nlabels: [a, b]\n")
    assert not loaded.diagnostics
    assert loaded.data == {"name": "summarizer", "model": {"name": "gpt-4o", "temperature": 0.3},
                           "labels": ["a", "b"]}
    assert loaded.where(("name",)) == (1, 7)
    assert loaded.where(("name",), key=True) == (1, 1)
    assert loaded.where(("model", "temperature")) == (4, 18)
    assert loaded.where(("model", "temperature"), key=True) == (4, 3)
    assert loaded.where(("labels", 1)) == (5, 13)
    # a mapping is located at its key (its first child is on the next line)
    assert loaded.where(("model",)) == (2, 1)
    # a missing path falls back to the nearest enclosing value, then to 1:1
    assert loaded.where(("model", "top_p")) == (2, 1)
    assert loaded.where(("nothing", "here")) == (1, 1)


def test_list_item_positions() -> None:
    loaded = load("messages:\n  - role: system\n    content: Hi\n  - placeholder: history\n")
    assert loaded.where(("messages", 0)) == (2, 5)
    assert loaded.where(("messages", 0, "content")) == (3, 14)
    assert loaded.where(("messages", 1, "placeholder"), key=True) == (4, 5)


@pytest.mark.parametrize("text, style", [
    ("template: |\n  Hello {{name}}\n  bye\n", "|"),
    ("template: |-\n  Hello {{name}}\n  bye\n", "|"),
    ("template: >\n  Hello {{name}}\n  bye\n", ">"),
    ("template: |2\n  Hello {{name}}\n  bye\n", "|"),
])
def test_block_scalars_are_recorded(text: str, style: str) -> None:
    loaded = load(text + "labels: [x]\n")
    assert not loaded.diagnostics
    line, column, found_style, end_line = loaded.block_scalars[("template",)]
    assert (line, column, found_style) == (1, 11, style)
    assert end_line >= 3
    assert loaded.where(("template",)) == (1, 11)
    assert loaded.where(("labels",), key=True) == (4, 1)


def test_single_line_scalars_are_recorded_with_their_style() -> None:
    loaded = load("a: plain\nb: 'single'\nc: \"double\"\nd: two\n  lines\n")
    assert loaded.block_scalars[("a",)] == (1, 4, "", 1)
    assert loaded.block_scalars[("b",)] == (2, 4, "'", 2)
    assert loaded.block_scalars[("c",)] == (3, 4, '"', 3)
    assert ("d",) not in loaded.block_scalars  # a plain scalar over two lines cannot be mapped exactly


def test_crlf_line_endings_keep_positions() -> None:
    loaded = load("name: x\r\nlabels:\r\n  - prod\r\n")
    assert loaded.data == {"name": "x", "labels": ["prod"]}
    assert loaded.where(("labels", 0)) == (3, 5)


def test_number_keys_keep_their_spelling() -> None:
    loaded = load("versions:\n  1.10: {template: a}\n  1.1: {template: b}\n  2: {template: c}\n")
    assert not loaded.diagnostics
    assert list(loaded.data["versions"]) == ["1.10", "1.1", "2"]


# --------------------------------------------------------------------------- merge keys and aliases


def test_merge_key_merges_and_own_keys_win() -> None:
    text = ("base: &base\n  name: gpt-4o\n  temperature: 0.3\n"
            "model:\n  <<: *base\n  temperature: 0.1\n")
    loaded = load(text)
    assert not loaded.diagnostics
    assert loaded.data["model"] == {"name": "gpt-4o", "temperature": 0.1}
    # the overriding key keeps its own position, the merged one points at its definition
    assert loaded.where(("model", "temperature")) == (6, 16)
    assert loaded.where(("model", "temperature"), key=True) == (6, 3)
    assert loaded.where(("model", "name")) == (2, 9)


def test_merge_key_list_earlier_sources_win() -> None:
    text = "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc:\n  <<: [*a, *b]\n  w: 0\n"
    loaded = load(text)
    assert not loaded.diagnostics
    assert loaded.data["c"] == {"w": 0, "x": 1, "y": 1, "z": 2}


def test_merge_key_of_a_scalar_is_refused() -> None:
    line, column, message = only_problem(load("a: &a hello\nb:\n  <<: *a\n"))
    assert (line, column) == (1, 4)
    assert "'<<' merges mappings only" in message


def test_aliases_within_budget_are_expanded() -> None:
    text = ("a: &a [x, x, x, x, x, x, x, x, x, x]\n"
            "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
            "c: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n")
    loaded = load(text)
    assert not loaded.diagnostics
    assert len(loaded.data["c"]) == 10
    assert sum(len(inner) for outer in loaded.data["c"] for inner in outer) == 1000


def test_alias_bomb_is_reported_at_the_alias() -> None:
    lines = ["a0: &a0 [" + ", ".join(["x"] * 10) + "]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    line, column, message = only_problem(load("\n".join(lines) + "\n"))
    assert f"more than {MAX_NODES:,} values" in message
    assert line == 5  # a4 is the first level big enough to cross the budget
    assert lines[line - 1][column - 1 :].startswith("*a3")


def test_alias_expansion_counts_towards_depth() -> None:
    # each anchor nests 20 levels and includes the previous one: shallow on the page, deep expanded
    lines = ["a0: &a0 " + "[" * 20 + "x" + "]" * 20]
    for i in range(1, 5):
        lines.append(f"a{i}: &a{i} " + "[" * 20 + f"*a{i - 1}" + "]" * 20)
    line, _column, message = only_problem(load("\n".join(lines) + "\n"))
    assert f"nesting is deeper than {MAX_DEPTH} levels once *a" in message
    assert line == 4


def test_self_referencing_alias_is_refused() -> None:
    line, column, message = only_problem(load("a: &a\n  b: *a\n"))
    assert (line, column) == (2, 6)
    assert "refers to a node that contains it" in message


# --------------------------------------------------------------------------- size and encoding


def exactly(size: int) -> bytes:
    raw = b"template: " + b"x" * (size - len(b"template: ") - 1) + b"\n"
    assert len(raw) == size
    return raw


def test_max_bytes_is_allowed() -> None:
    loaded = load(exactly(MAX_BYTES))
    assert not loaded.diagnostics
    assert len(loaded.data["template"]) == MAX_BYTES - 11


def test_one_byte_over_max_bytes_is_refused() -> None:
    line, column, message = only_problem(load(exactly(MAX_BYTES + 1)))
    assert (line, column) == (1, 1)
    assert f"file is {MAX_BYTES + 1:,} bytes; the limit is {MAX_BYTES:,} (1 MiB)" in message


def test_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(8 * 1024 ** 3)  # sparse: 8 GiB that would not fit in memory
    loaded = load_yaml_file(path, "huge.yaml")
    assert [d.message for d in loaded.diagnostics] == [(f"file is {8 * 1024 ** 3:,} bytes; the limit is "
                                                       f"{MAX_BYTES:,} (1 MiB)")]


def test_file_boundary_through_load_yaml_file(tmp_path: Path) -> None:
    ok, big = tmp_path / "ok.yaml", tmp_path / "big.yaml"
    ok.write_bytes(exactly(MAX_BYTES))
    big.write_bytes(exactly(MAX_BYTES + 1))
    assert not load_yaml_file(ok, "ok.yaml").diagnostics
    assert "limit is" in load_yaml_file(big, "big.yaml").diagnostics[0].message


def test_unreadable_file_is_a_diagnostic(tmp_path: Path) -> None:
    loaded = load_yaml_file(tmp_path / "missing.yaml", "missing.yaml")
    assert loaded.data is None
    assert [(d.line, d.column) for d in loaded.diagnostics] == [(1, 1)]
    assert "cannot read file" in loaded.diagnostics[0].message


def test_utf8_bom_is_accepted_and_positions_ignore_it() -> None:
    loaded = load(b"\xef\xbb\xbfname: x\nlabels: [prod]\n")
    assert not loaded.diagnostics
    assert loaded.data == {"name": "x", "labels": ["prod"]}
    assert loaded.where(("name",)) == (1, 7)
    assert not loaded.text.startswith("\ufeff")


def test_bad_byte_position_after_a_bom() -> None:
    assert only_problem(load(b"\xef\xbb\xbfname: caf\xe9\n"))[:2] == (1, 10)


def test_bad_byte_position_counts_characters() -> None:
    line, column, message = only_problem(load("a: ok\nb: h\u00e9h\u00e9 ".encode() + b"\x80\n"))
    assert (line, column) == (2, 9)
    assert "byte 0x80" in message


# --------------------------------------------------------------------------- other guards


def test_empty_document_is_not_an_error_here() -> None:
    for text in ("", "# just a comment\n", "\n\n"):
        loaded = load(text)
        assert loaded.data is None and loaded.empty and not loaded.diagnostics


@pytest.mark.parametrize("text", ["~\n", "---\n", "null\n"])
def test_null_document_is_not_empty(text: str) -> None:
    loaded = load(text)
    assert loaded.data is None and not loaded.empty and not loaded.diagnostics


@pytest.mark.parametrize("text, where, fragment", [
    ("a: [1, 2\n", (1, 4), "'[' is never closed"),
    ("a: {b: 1\n", (1, 4), "'{' is never closed"),
    ('a: "open\n', (1, 4), "quoted string is never closed"),
    ("a: 1\nb\nc: 2\n", (2, 1), "this key has no ':' after it"),
    ("a:\n\t- x\n", (2, 1), "tab character"),
    ("a: b: c\n", (1, 5), "a ': ' where no new key can start"),
    ("a: 1\n- b\n", (2, 1), "does not fit the indentation"),
    ('a: "\\q"\n', (1, 6), "unknown escape character"),
    ("a: @x\n", (1, 4), "cannot start any token"),
    ("a: 1\n---\nb: 2\n", (2, 1), "one YAML document"),
    ("a: 1\na: 2\n", (2, 1), "duplicate key 'a'"),
    ("? [a, b]\n: c\n", (1, 3), "mapping keys must be plain strings"),
    ("true: x\n", (1, 1), "mapping key 'true' is not a string"),
    ("2024-01-01: x\n", (1, 1), "mapping key '2024-01-01' is not a string"),
    ("a: !!int nope\n", (1, 4), "is not a valid !!int value"),
    ("a: !!set {x, y}\n", (1, 4), "unsupported YAML tag !!set"),
    ("a: !custom x\n", (1, 4), "unsupported YAML tag !custom"),
    ("a: .inf\n", (1, 4), "not a finite number"),
    ("a: *nope\n", (1, 4), "alias *nope has no anchor"),
    ("a: &x 1\nb: &x 2\n", (2, 4), "anchor &x is defined twice"),
    ("a: x\x00y\n", (1, 5), "control character U+0000"),
])
def test_problems_are_located(text: str, where: tuple[int, int], fragment: str) -> None:
    line, column, message = only_problem(load(text))
    assert (line, column) == where
    assert fragment in message
    assert load(text).diagnostics[0].hint  # every problem says how to fix it


@pytest.mark.parametrize("text, where", [
    ("template: Hello: {{name}}\n", (1, 16)),
    ("template: Hi, see: {{x}}\n", (1, 18)),
    ("a: b: {{c}}\n", (1, 5)),
    ("messages:\n  - role: user\n    content: Note: {{x}}\n", (3, 18)),
])
def test_brace_after_a_second_colon_is_not_blamed_on_the_brace(text: str, where: tuple[int, int]) -> None:
    """The value starts with a word, not '{': the unquoted ': ' inside it is the problem."""
    loaded = load(text)
    line, column, message = only_problem(loaded)
    assert (line, column) == where
    assert "a ': ' where no new key can start" in message
    assert "quote the value if it contains ': '" in loaded.diagnostics[0].hint
    assert "starts with '{'" not in loaded.diagnostics[0].hint


@pytest.mark.parametrize("text, where", [
    ("template: {{name}} says hi\n", (1, 11)),
    ("template:   {{name}} says hi\n", (1, 13)),
    ("labels: [production]\ntemplate: {{name}} says hi\n", (2, 11)),
    ("messages:\n  - role: user\n    content: {{x}} hi\n", (3, 14)),
    ("- {{x}} y\n", (1, 3)),
    ("template:\n  {{x}} hi\n", (2, 3)),
    ("'it''s': {{x}} y\n", (1, 10)),
    ("\"a: b\": {{x}} y\n", (1, 9)),
    ("http://x: {{y}} z\n", (1, 11)),
])
def test_value_starting_with_mustache_braces_gets_the_quote_hint(text: str, where: tuple[int, int]) -> None:
    loaded = load(text)
    line, column, _message = only_problem(loaded)
    assert (line, column) == where
    assert "a value that starts with '{' is a YAML mapping" in loaded.diagnostics[0].hint


def test_deep_nesting_is_refused_before_anything_recursive_runs() -> None:
    for text in ("a: " + "[" * 100_000 + "]" * 100_000 + "\n", "a: " + "{b: " * 5000 + "1" + "}" * 5000 + "\n"):
        line, _column, message = only_problem(load(text))
        assert line == 1
        assert f"deeper than {MAX_DEPTH} levels" in message


def test_too_many_plain_values_are_not_blamed_on_aliases() -> None:
    text = "a: [" + ", ".join(["1"] * (MAX_NODES + 10)) + "]\n"
    message = only_problem(load(text))[2]
    assert f"the file holds more than {MAX_NODES:,} values" in message


# --------------------------------------------------------------------------- surrogates, non-files


@pytest.mark.parametrize("text, where, hint", [
    ('a: "\\ud800"', (1, 5), "remove it"),
    ('a:\n  - ok\n  - "x \\U0000DBFF y"', (3, 8), "remove it"),
    ('a: "\\ud83d\\ude00"', (1, 5), "write \\U0001F600 or the character itself"),
    ('"k\\udc00": 1', (1, 3), "remove it"),
    ('a: "one \\\n  \\ud800"', (2, 3), "remove it"),  # a folded double-quoted line
])
def test_a_surrogate_escape_is_refused_at_the_escape(text: str, where: tuple[int, int], hint: str) -> None:
    loaded = load(text)
    line, column, message = only_problem(loaded)
    assert (line, column) == where
    assert "is a UTF-16 surrogate, not a character" in message
    assert hint in loaded.diagnostics[0].hint


@pytest.mark.parametrize("text, value", [('a: "\\\\ud800"', "\\ud800"), ("a: '\\ud800'", "\\ud800"),
                                         ('a: "\\u00e9 \\U0001F600"', "é 😀")])
def test_text_that_only_looks_like_a_surrogate_loads(text: str, value: str) -> None:
    assert load(text).data == {"a": value}


def test_reading_a_fifo_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "f.yaml"
    os.mkfifo(fifo)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        # a regression blocks in open(); the test then fails after 10 s (and the writer below
        # releases the thread so the suite can go on)
        future = pool.submit(load_yaml_file, fifo, "f.yaml")
        try:
            loaded = future.result(timeout=10)
        except concurrent.futures.TimeoutError:
            with open(fifo, "wb"):
                pass
            raise
    assert only_problem(loaded) == (1, 1, "not a regular file: it is a FIFO (named pipe)")


def test_reading_a_folder_or_a_symlink_loop_is_a_diagnostic(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").mkdir()
    (tmp_path / "loop.yaml").symlink_to("loop.yaml")
    assert only_problem(load_yaml_file(tmp_path / "d.yaml", "f.yaml")) == (1, 1, "not a regular file: it is a folder")
    assert only_problem(load_yaml_file(tmp_path / "loop.yaml", "f.yaml")) == (1, 1, "file is a symlink that loops")
