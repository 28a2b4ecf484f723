"""promptops.provenance: the stamp, its commit label, and the one-line commit message form."""
from __future__ import annotations

import pytest

from promptops.provenance import ELLIPSIS, commit_label, message, parse_message, stamp

SHA = "3f2c1ab9d0e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8"
LIMIT = 72  # PromptLayer's commit_message limit


def test_stamp():
    assert stamp(SHA, "Tighten the refund tone", False, "prompts/support/reply.yaml", "concise") == {
        "commit": "3f2c1ab", "dirty": False, "subject": "Tighten the refund tone", "path": "prompts/support/reply.yaml",
        "version": "concise"}
    assert stamp(SHA, None, True, "prompts/a.yaml", "v1") == {
        "commit": "3f2c1ab", "dirty": True, "subject": None, "path": "prompts/a.yaml", "version": "v1"}
    assert stamp(None, "", None, "prompts/a.yaml", "v1") == {
        "commit": None, "dirty": False, "subject": None, "path": "prompts/a.yaml", "version": "v1"}


@pytest.mark.parametrize("provenance, label", [
    ({"commit": "3f2c1ab", "dirty": False}, "3f2c1ab"),
    ({"commit": "3f2c1ab", "dirty": True}, "3f2c1ab-dirty"),
    ({"commit": "3f2c1ab"}, "3f2c1ab"),
    ({"commit": None, "dirty": False}, "-"),
    ({"commit": None, "dirty": True}, "-"),
    ({"commit": ""}, "-"),
    ({}, "-"),
    (None, "-"),
])
def test_commit_label(provenance, label):
    assert commit_label(provenance) == label


def test_message_form():
    assert message(stamp(SHA, "Tighten the refund tone", False, "prompts/support/reply.yaml", "concise")) == (
        "Tighten the refund tone [promptops 3f2c1ab prompts/support/reply.yaml#concise]")
    assert message(stamp(SHA, "Tighten", True, "prompts/a.yaml", "v1")) == "Tighten [promptops 3f2c1ab-dirty prompts/a.yaml#v1]"
    assert message(stamp(SHA, None, False, "prompts/a.yaml", "v1")) == "[promptops 3f2c1ab prompts/a.yaml#v1]"
    assert message(stamp(None, None, False, "prompts/a.yaml", "v1")) == "[promptops - prompts/a.yaml#v1]"
    assert message(stamp(None, "Local try", False, "prompts/a.yaml", "v1")) == "Local try [promptops - prompts/a.yaml#v1]"
    # whitespace collapses to single spaces
    assert message(stamp(SHA, "  Tighten \t the   tone ", False, "p.yaml", "v")) == "Tighten the tone [promptops 3f2c1ab p.yaml#v]"


ROUND_TRIPS = [
    stamp(SHA, "Tighten the refund tone", False, "prompts/support/reply.yaml", "concise"),
    stamp(SHA, "Tighten the refund tone", True, "prompts/support/reply.yaml", "concise"),
    stamp(SHA, None, False, "prompts/a.yaml", "v1"),
    stamp(SHA, None, True, "prompts/a.yaml", "v1"),
    stamp(None, None, False, "prompts/a.yaml", "v1"),
    stamp(None, "Created outside git", False, "prompts/a.yaml", "v1"),
    stamp(SHA, "Fix: [brackets], #hashes and 100% ümlauts — done", False, "prompts/a.yaml", "v1.2-rc_3"),
    stamp(SHA, "Subject ending in a bracket]", False, "prompts/a.yaml", "V2"),
    stamp(SHA, "x", False, "p", "0"),
    stamp(SHA, "Spaces in the path", False, "prompts/my prompt.yaml", "default"),
    stamp(SHA, "A hash in the path", True, "prompts/a#b.yaml", "default"),
    stamp(SHA, "Brackets in the path", False, "prompts/[draft]/a.yaml", "default"),
    stamp(SHA, "Longest key", False, "prompts/a.yaml", "k" + "a1_.-" * 12 + "xyz"),
    stamp(SHA, "Long " * 40, False, "prompts/" + "deep/" * 30 + "a.yaml", "v1"),
    stamp(SHA[:12], "A longer abbreviation", True, "prompts/a.yaml", "v1"),
]


@pytest.mark.parametrize("provenance", ROUND_TRIPS)
def test_message_round_trips_without_a_limit(provenance):
    text = message(provenance)
    expected = dict(provenance, subject=" ".join(provenance["subject"].split()) if provenance["subject"] else None)
    assert parse_message(text) == expected
    assert message(provenance, limit=len(text)) == text          # a limit that is not reached changes nothing
    assert parse_message(text + "\n") == expected                 # a platform may add a newline
    assert parse_message(message(parse_message(text))) == expected


def test_parse_message_values():
    assert parse_message("Tighten the refund tone [promptops 3f2c1ab-dirty prompts/support/reply.yaml#concise]") == {
        "commit": "3f2c1ab", "dirty": True, "subject": "Tighten the refund tone", "path": "prompts/support/reply.yaml",
        "version": "concise"}
    assert parse_message("[promptops - prompts/a.yaml#v1]") == {
        "commit": None, "dirty": False, "subject": None, "path": "prompts/a.yaml", "version": "v1"}
    assert parse_message("Short… [promptops 3f2c1ab …ort/reply.yaml#v1]") == {
        "commit": "3f2c1ab", "dirty": False, "subject": "Short…", "path": "…ort/reply.yaml", "version": "v1"}


@pytest.mark.parametrize("text", [
    None,
    "",
    "   ",
    "fix typo",
    "[promptops]",
    "[promptops ]",
    "[promptops 3f2c1ab]",
    "[promptops 3f2c1ab prompts/a.yaml]",                  # no version key
    "[promptops 3f2c1ab prompts/a.yaml#]",                 # empty version key
    "[promptops 3f2c1ab prompts/a.yaml#v1 v2]",            # a space in the version key
    "[promptops 3F2C1AB prompts/a.yaml#v1]",               # not a lowercase hex sha
    "[promptops 3f2 prompts/a.yaml#v1]",                   # too short for a sha
    "[promptops 3f2c1ab-clean prompts/a.yaml#v1]",
    "[promptops 3f2c1ab prompts/a.yaml#v1",                # unterminated
    "Tighten [promptops 3f2c1ab prompts/a.yaml#v1] later",  # not at the end
    "Tighten[promptops 3f2c1ab prompts/a.yaml#v1]",        # glued to a word
    "promptops 3f2c1ab prompts/a.yaml#v1",
])
def test_parse_message_ignores_messages_promptops_did_not_write(text):
    assert parse_message(text) is None


# ---------------------------------------------------------------------------- the length limit

_WORDS = "Tighten the refund tone for angry customers and keep it short please "


def _subjects(length: int) -> list[str]:
    """Subjects of ``length`` characters: plain words, irregular whitespace, and several lines."""
    plain = (_WORDS * 4)[:length]
    return [plain, plain.replace(" ", " \t  "), plain.replace(" ", "\n", 3) + "\n\nA body paragraph.\n"]


def _paths():
    base = "prompts/support/" + "reply-" * 30
    return [base[:n] for n in range(1, 151)]


def _versions():
    base = "concise" + "-2.x_b" * 11
    return [base[:k] for k in (1, 2, 7, 8, 20, 30, 36, 40, 45, 47, 48, 49, 50, 51, 52, 56, 57, 60, 64)]


COMMITS = [("3f2c1ab", False), ("3f2c1ab", True), (None, False)]


def _check(provenance: dict, single_line: bool) -> None:
    text = message(provenance, LIMIT)
    assert len(text) <= LIMIT, (provenance, text)
    assert "\n" not in text and "\t" not in text
    subject = " ".join((provenance["subject"] or "").split())
    full = message(provenance)
    trailer = f"[promptops {commit_label(provenance)} {provenance['path']}#{provenance['version']}]"
    if len(full) <= LIMIT:
        assert text == full
        if single_line:
            assert parse_message(text) == dict(provenance, subject=subject or None)
        return
    parsed = parse_message(text) if len(trailer) <= LIMIT or len(trailer) - len(provenance["path"]) + 2 <= LIMIT else None
    if len(trailer) <= LIMIT:  # the trailer fits whole: only the subject is shortened
        assert (parsed["commit"], parsed["dirty"], parsed["path"], parsed["version"]) == (
            provenance["commit"], bool(provenance["commit"]) and provenance["dirty"], provenance["path"],
            provenance["version"]), text
        if subject and len(trailer) + 3 <= LIMIT:  # room for a space, a character and the ellipsis
            assert len(text) == LIMIT
            assert parsed["subject"].endswith(ELLIPSIS), text
            assert parsed["subject"] != ELLIPSIS
            if single_line:
                assert subject.startswith(parsed["subject"][:-1]), text
        else:
            assert text == trailer
            assert parsed["subject"] is None
    elif parsed is not None:  # the path is shortened from the left; commit and version stay whole
        assert len(text) == LIMIT
        assert (parsed["commit"], parsed["dirty"], parsed["subject"], parsed["version"]) == (
            provenance["commit"], bool(provenance["commit"]) and provenance["dirty"], None, provenance["version"]), text
        assert parsed["path"] == "" or (parsed["path"].startswith(ELLIPSIS)
                                        and provenance["path"].endswith(parsed["path"][1:])), text


@pytest.mark.parametrize("commit, dirty", COMMITS)
def test_message_fits_the_limit_for_every_subject_path_and_version_length(commit, dirty):
    checked = 0
    for length in range(0, 201, 6):
        for kind, subject in enumerate(_subjects(length)):
            for path in _paths()[::9] + _paths()[38:60]:
                for version in _versions():
                    _check(stamp(commit, subject, dirty, path, version) if commit else
                           {"commit": None, "dirty": False, "subject": subject or None, "path": path,
                            "version": version}, single_line=kind < 2)
                    checked += 1
    assert checked == 34 * 3 * (17 + 22) * 19


@pytest.mark.parametrize("commit, dirty", COMMITS)
def test_message_fits_the_limit_for_every_path_and_version_length(commit, dirty):
    for subject in (_subjects(200)[0], _subjects(5)[0], None):
        for path in _paths():
            for k in range(1, 65):
                version = ("v" + "a1_.-" * 13)[:k]
                _check({"commit": commit, "dirty": dirty, "subject": subject, "path": path, "version": version},
                       single_line=True)


@pytest.mark.parametrize("commit, dirty", COMMITS)
def test_message_fits_the_limit_for_every_length_near_the_edge(commit, dirty):
    # every subject length and every path length, with a short and the longest version key
    for length in range(0, 201):
        subject = _subjects(length)[0]
        for path in _paths():
            for version in ("v1", "concise" + "-2.x_b" * 9 + "ab"):
                assert len(version) in (2, 63)
                _check({"commit": commit, "dirty": dirty, "subject": subject or None, "path": path, "version": version},
                       single_line=True)


def test_message_shortens_the_subject_first():
    provenance = stamp(SHA, "Tighten the refund tone so that angry customers feel heard and calm down",
                       False, "prompts/support/reply.yaml", "concise")
    text = message(provenance, LIMIT)
    trailer = " [promptops 3f2c1ab prompts/support/reply.yaml#concise]"
    assert text.endswith(trailer)
    assert len(text) == LIMIT
    assert text == provenance["subject"][: LIMIT - len(trailer) - 1] + ELLIPSIS + trailer
    assert parse_message(text) == dict(provenance, subject=provenance["subject"][: LIMIT - len(trailer) - 1] + ELLIPSIS)


def test_message_drops_the_subject_then_shortens_the_path_from_the_left():
    path = "prompts/" + "very-long-folder-name/" * 3 + "reply.yaml"   # 84 characters
    provenance = stamp(SHA, "Tighten", True, path, "concise")
    text = message(provenance, LIMIT)
    head, tail = "[promptops 3f2c1ab-dirty ", "#concise]"
    kept = LIMIT - len(head) - len(tail) - 1
    assert text == head + ELLIPSIS + path[-kept:] + tail
    assert len(text) == LIMIT
    assert parse_message(text) == {"commit": "3f2c1ab", "dirty": True, "subject": None, "path": ELLIPSIS + path[-kept:],
                                   "version": "concise"}
    # the trailer alone fits: the subject goes
    path = "prompts/" + "x" * (LIMIT - len(head) - len(tail) - 8)
    text = message(stamp(SHA, "Tighten", True, path, "concise"), LIMIT)
    assert text == head + path + tail
    assert len(text) == LIMIT


def test_message_with_a_tiny_limit_never_exceeds_it():
    provenance = stamp(SHA, "Tighten the refund tone", True, "prompts/support/reply.yaml", "concise")
    for limit in range(0, 120):
        assert len(message(provenance, limit)) <= limit


def test_message_keeps_only_the_first_line_of_a_multi_line_subject():
    provenance = stamp(SHA, "Tighten  the\trefund tone\n\nCustomers found it curt.\nSee ticket 42.", False,
                       "prompts/support/reply.yaml", "concise")
    assert message(provenance) == "Tighten the refund tone [promptops 3f2c1ab prompts/support/reply.yaml#concise]"
    short = stamp(SHA, "Fix typo\n\n" + "A long body paragraph. " * 5, False, "p.yaml", "v1")
    assert message(short, 72) == "Fix typo [promptops 3f2c1ab p.yaml#v1]"


def test_parse_message_with_trailer_like_text_in_the_subject():
    provenance = stamp(SHA, "Document the [promptops abcd path#key] format", False, "prompts/a.yaml", "v1")
    assert parse_message(message(provenance)) == provenance


def test_the_longest_key_key_room_allows_survives_with_the_path_left_out():
    from promptops.provenance import key_room

    key = "k" * key_room(72)
    text = message(stamp("3f2c1ab" * 5 + "abcde", "A long subject line", True, "prompts/a/very/long/path.yaml", key), 72)
    assert len(text) <= 72
    parsed = parse_message(text)
    assert (parsed["commit"], parsed["dirty"], parsed["version"], parsed["path"]) == ("3f2c1ab", True, key, "")
