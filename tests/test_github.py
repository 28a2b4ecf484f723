"""promptops.github against the fake GitHub API served on 127.0.0.1: the sticky plan comment,
the job summary, the drift issue, errors; and its command line."""
from __future__ import annotations

import json
import logging
import re

import httpx
import pytest

from promptops.github import (
    COMMENT_LIMIT,
    GitHub,
    GitHubError,
    Marker,
    _network,
    annotations,
    append_summary,
    comment_bodies,
    drift_issue,
    main,
    split_markdown,
    sticky_comment,
)
from tests.emulators.github import GitHubEmulator, Token

TOKEN = "ghs_s3cr3tT0kenValue0123456789"
REPO = "octo/prompts"
PLAN = Marker("plan", "local", ".")


def plan_markdown(prompts: int = 1, lines: int = 3, text: str = "hello") -> str:
    """A plan shaped as render_markdown writes it: heading, then a <details> + diff fence per prompt."""
    out = ["### promptops plan: `local` (local)", "", f"**Plan: {prompts} versions to create.**"]
    for p in range(prompts):
        out += ["", f"<details><summary><code>p{p}</code> will be created</summary>", "", "```diff"]
        out += [f"+ {text} {p}.{i} " + "x" * 60 for i in range(lines)]
        out += ["```", "", "</details>"]
    return "\n".join(out) + "\n"


@pytest.fixture
def emu():
    return GitHubEmulator(repo=REPO, tokens={
        TOKEN: Token(),
        "ghs_readonly": Token(permissions={"contents": "read", "pull_requests": "read", "issues": "read"}),
        "ghp_pat_of_ada": Token(login="ada", type="User", installation=False),
    })


@pytest.fixture
def server(emu):
    with emu.serve() as srv:
        yield srv


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def gh(server, sleeps):
    with GitHub(TOKEN, REPO, api_url=server.url, sleep=sleeps.append) as client:
        yield client


def bodies(emu: GitHubEmulator, number: int) -> list[str]:
    return [c["body"] for c in emu.comments(number)]


# --------------------------------------------------------------------------- sticky comment


def test_comment_is_created_once_then_edited_in_place(emu, gh):
    pr = emu.open_pull()
    first = sticky_comment(gh, pr, PLAN, plan_markdown(text="one"))
    assert [len(first.created), len(first.updated)] == [1, 0]
    [comment] = emu.comments(pr)
    assert comment["body"].startswith("<!-- promptops:plan target=local dir=. part=1 -->\n### promptops plan")
    assert "one 0.0" in comment["body"]
    assert "created the promptops comment on pull request #1: https://github.com/" in first.describe(pr)

    second = sticky_comment(gh, pr, PLAN, plan_markdown(text="two"))
    [after] = emu.comments(pr)
    assert after["id"] == comment["id"] and len(second.updated) == 1
    assert "two 0.0" in after["body"] and "one 0.0" not in after["body"]
    assert second.describe(pr).startswith("updated the promptops comment")

    third = sticky_comment(gh, pr, PLAN, plan_markdown(text="two"))
    assert third.unchanged and not third.updated  # nothing to edit: no request, no "edited" mark
    assert emu.calls("PATCH") == 1 and emu.calls("POST") == 1


def test_each_target_and_project_has_its_own_comment(emu, gh):
    pr = emu.open_pull()
    emu.add_comment(pr, "LGTM")
    keys = [Marker("plan", "local", "."), Marker("plan", "prod", "."), Marker("plan", "prod", "services/chat")]
    for round_ in ("a", "b"):
        for marker in keys:
            sticky_comment(gh, pr, marker, plan_markdown(text=f"{round_}-{marker.target}"))
    texts = bodies(emu, pr)
    assert len(texts) == 4 and texts[0] == "LGTM"
    assert [t.split("\n", 1)[0] for t in texts[1:]] == [
        "<!-- promptops:plan target=local dir=. part=1 -->",
        "<!-- promptops:plan target=prod dir=. part=1 -->",
        "<!-- promptops:plan target=prod dir=services/chat part=1 -->"]
    assert all("b-" in t for t in texts[1:])


def test_marker_values_cannot_end_the_html_comment():
    marker = Marker("plan", "a --> b", "./x y/")
    assert marker.line(2) == "<!-- promptops:plan target=a%20--%3E%20b dir=x%20y part=2 -->"
    assert marker.part_of(marker.line(2) + "\nbody") == 2
    assert Marker("plan", "a", "x y").part_of(marker.line(2)) is None


def test_a_long_plan_is_split_into_parts_and_joined_again(emu, gh):
    pr = emu.open_pull()
    big = plan_markdown(prompts=12, lines=180)  # about 160,000 characters
    assert len(big) > 2 * COMMENT_LIMIT
    result = sticky_comment(gh, pr, PLAN, big)
    parts = bodies(emu, pr)
    assert len(parts) == len(result.created) == 3
    for i, body in enumerate(parts, 1):
        assert len(body) <= COMMENT_LIMIT
        assert body.startswith(f"<!-- promptops:plan target=local dir=. part={i} -->\n")
        assert body.count("```") % 2 == 0, "every part closes the fences it opens"
        assert body.count("<details>") == body.count("</details>")
    assert "_Continued in the next comment (part 2 of 3)._" in parts[0]
    assert "_Part 3 of 3, continued from the previous comment._" in parts[2]
    content = [line for body in parts for line in body.split("\n") if line.startswith("+ hello")]
    assert content == [line for line in big.split("\n") if line.startswith("+ hello")]
    first_id = emu.comments(pr)[0]["id"]

    shorter = sticky_comment(gh, pr, PLAN, plan_markdown(text="short"))
    [only] = emu.comments(pr)
    assert only["id"] == first_id and "short 0.0" in only["body"]
    assert len(shorter.deleted) == 2 and "deleted 2 leftover parts" in shorter.describe(pr)

    again = sticky_comment(gh, pr, PLAN, big)  # longer again: part 1 edited, parts 2 and 3 created
    assert [len(again.updated), len(again.created)] == [1, 2] and len(emu.comments(pr)) == 3


def test_split_closes_and_reopens_fences_and_details():
    text = plan_markdown(prompts=1, lines=50)
    parts = split_markdown(text, 1200)
    assert len(parts) > 3
    for part in parts:
        assert len(part) <= 1200
        assert part.count("```") % 2 == 0
    assert parts[1].startswith("<details><summary><code>p0</code> will be created</summary>\n\n```diff\n")
    joined = "\n".join(parts)
    assert [x for x in joined.split("\n") if x.startswith("+")] == [x for x in text.split("\n") if x.startswith("+")]


def test_split_keeps_longer_fences_and_cuts_a_line_longer_than_a_part():
    text = "intro\n````diff\n+ ``` not a closing fence\n" + "+ " + "y" * 500 + "\n````\nafter\n"
    parts = split_markdown(text, 120)
    for part in parts:
        assert len(part) <= 120
        lines = part.split("\n")
        fences = [x for x in lines if x.startswith("````")]
        assert len(fences) % 2 == 0, part
    assert "".join(p.replace("````diff\n", "").replace("\n````", "") for p in parts).count("y") == 500


def test_split_measures_bytes_when_asked():
    text = "\n".join(["ü" * 50] * 40)
    parts = split_markdown(text, 1000, lambda s: len(s.encode()))
    assert all(len(p.encode()) <= 1000 for p in parts) and len(parts) >= 4


def test_comments_written_by_someone_else_are_never_touched(emu, gh):
    pr = emu.open_pull()
    spoof = emu.add_comment(pr, PLAN.line(1) + "\nfake plan: nothing to see", login="mallory")
    emu.add_comment(pr, PLAN.line(2) + "\nmy notes", login="mallory")
    sticky_comment(gh, pr, PLAN, plan_markdown())
    texts = bodies(emu, pr)
    assert texts[0] == spoof["body"] and texts[1].endswith("my notes")
    assert len(texts) == 3 and "hello 0.0" in texts[2]
    assert emu.calls("GET", r"^/user$") == 1  # asked who the token is once; installation tokens cannot say


def test_a_personal_token_finds_its_own_comment(emu, server):
    pr = emu.open_pull()
    with GitHub("ghp_pat_of_ada", REPO, api_url=server.url) as pat:
        sticky_comment(pat, pr, PLAN, plan_markdown(text="one"))
        sticky_comment(pat, pr, PLAN, plan_markdown(text="two"))
    [comment] = emu.comments(pr)
    assert comment["user"]["login"] == "ada" and "two 0.0" in comment["body"]


def test_duplicates_from_racing_runs_are_folded_into_one(emu, gh):
    pr = emu.open_pull()
    gh.create_comment(pr, PLAN.line(1) + "\nrun A")
    gh.create_comment(pr, PLAN.line(1) + "\nrun B")
    sticky_comment(gh, pr, PLAN, plan_markdown(text="run C"))
    [comment] = emu.comments(pr)
    assert "run C" in comment["body"]


def test_pages_through_more_than_a_hundred_comments(emu, gh):
    pr = emu.open_pull()
    for i in range(230):
        emu.add_comment(pr, f"review comment {i}")
    sticky_comment(gh, pr, PLAN, plan_markdown(text="one"))
    emu.log.clear()
    sticky_comment(gh, pr, PLAN, plan_markdown(text="two"))
    assert len(emu.comments(pr)) == 231 and "two 0.0" in emu.comments(pr)[-1]["body"]
    assert emu.calls("GET", "/comments$") == 3  # 100 + 100 + 31, following Link rel="next"
    assert emu.calls("POST") == 0 and emu.calls("PATCH") == 1


def test_a_next_page_on_another_host_is_not_followed():
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[], headers={"Link": '<https://evil.example/x?page=2>; rel="next"'})

    with GitHub(TOKEN, REPO, transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(GitHubError, match="another host"):
            client.comments(1)


def test_a_next_page_host_quoting_the_token_is_redacted():
    # the host is the server's text, named in the error: a server echoing the token there is masked
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=[], headers={"Link": f'<https://{TOKEN[:20]}.evil.example/x>; rel="next"'})

    with GitHub(TOKEN, REPO, transport=httpx.MockTransport(answer)) as client:
        with pytest.raises(GitHubError, match="another host") as raised:
            client.comments(1)
    assert TOKEN[:8] not in str(raised.value) and "(https://***" in str(raised.value), raised.value


# --------------------------------------------------------------------------- errors


def test_403_names_the_missing_permission_and_never_the_token(emu, server):
    pr = emu.open_pull()
    with GitHub("ghs_readonly", REPO, api_url=server.url) as client:
        with pytest.raises(GitHubError) as caught:
            sticky_comment(client, pr, PLAN, plan_markdown())
    message = str(caught.value)
    assert caught.value.status == 403
    assert "Resource not accessible by integration" in message
    assert "the token cannot write pull request comments; add `permissions: pull-requests: write` to the job" in message
    assert "ghs_readonly" not in message


def test_403_on_issues_names_the_issues_permission(emu, server):
    with GitHub("ghs_readonly", REPO, api_url=server.url) as client:
        with pytest.raises(GitHubError, match=r"`permissions: issues: write`"):
            drift_issue(client, Marker("drift", "", "."), drifted=True, markdown="drift", title="t")


def test_401_says_the_token_is_wrong(server):
    with GitHub("ghs_wrong_token_value", REPO, api_url=server.url) as client:
        with pytest.raises(GitHubError) as caught:
            client.comments(1)
    assert caught.value.status == 401
    assert "GitHub rejected the token (401: Bad credentials)" in str(caught.value)
    assert "ghs_wrong_token_value" not in str(caught.value)


def test_404_names_the_repository(emu, server):
    with GitHub(TOKEN, "octo/other", api_url=server.url) as client:
        with pytest.raises(GitHubError, match=r"404.*check GITHUB_REPOSITORY \(octo/other\)"):
            client.comments(1)


def test_a_body_over_the_limit_is_a_clear_422(emu, gh):
    pr = emu.open_pull()
    with pytest.raises(GitHubError, match=r"422: Validation Failed: body is too long \(maximum is 65536"):
        gh.create_comment(pr, "x" * (COMMENT_LIMIT + 1))


@pytest.mark.parametrize("retry_after, status, waited", [(2, 403, 2.0), (None, 403, 60.0), (3, 429, 3.0)])
def test_secondary_rate_limits_are_waited_out(emu, gh, sleeps, retry_after, status, waited):
    pr = emu.open_pull()
    emu.secondary_rate_limit(1, retry_after=retry_after, status=status, match="^POST")
    sticky_comment(gh, pr, PLAN, plan_markdown())
    assert len(emu.comments(pr)) == 1 and sleeps == [waited]


def test_a_spent_hourly_limit_is_reported_at_once(emu, gh, sleeps):
    import time
    emu.faults.fail_next(1, 403, {"message": "API rate limit exceeded for installation ID 1."},
                         headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(time.time()) + 3000)})
    with pytest.raises(GitHubError, match="rate limit"):
        gh.comments(emu.open_pull())
    assert sleeps == []


@pytest.mark.parametrize("url, env, proxied", [
    ("https://api.github.com", {"HTTPS_PROXY": "http://proxy.example:3128"}, True),
    ("https://api.github.com", {"HTTPS_PROXY": "http://proxy.example:3128", "NO_PROXY": "api.github.com"}, False),
    ("http://127.0.0.1:8080", {"HTTP_PROXY": "http://proxy.example:3128"}, False),
    ("https://api.github.com", {}, False),
])
def test_the_environment_proxy_is_honoured(monkeypatch, url, env, proxied):
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy", "ALL_PROXY",
                "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    transport = _network(url)
    assert (type(transport._pool).__name__ == "HTTPProxy") is proxied


def test_the_api_url_must_be_https_except_for_loopback():
    with pytest.raises(Exception, match="https://"):
        GitHub(TOKEN, REPO, api_url="http://github.example.com/api/v3")


# --------------------------------------------------------------------------- job summary


def test_summary_is_written_then_appended(tmp_path):
    path = tmp_path / "summary.md"
    assert append_summary(path, "# one\n") == "wrote the job summary"
    append_summary(path, "# two\n")
    assert path.read_text() == "# one\n\n# two\n"


def test_summary_is_truncated_within_the_limit_with_blocks_closed(tmp_path):
    path = tmp_path / "summary.md"
    path.write_text("earlier step output\n")
    what = append_summary(path, plan_markdown(prompts=3, lines=40), limit=3000)
    text = path.read_text()
    assert "truncated" in what and len(text.encode()) <= 3000
    assert text.count("```") % 2 == 0 and text.count("<details>") == text.count("</details>")
    assert text.rstrip().endswith("The whole plan is in the job log.")
    assert append_summary(path, plan_markdown(), limit=3000).startswith("the job summary is full")
    assert len(path.read_bytes()) <= 3000


# --------------------------------------------------------------------------- drift issue


def test_drift_issue_is_opened_once_updated_then_closed(emu, gh):
    marker = Marker("drift", "prod", ".")
    emu.open_pull()  # pull requests are listed with issues and must be skipped
    said = drift_issue(gh, marker, drifted=True, markdown="drift A", title="promptops: drift on target prod",
                       run_url="https://github.com/octo/prompts/actions/runs/1")
    assert said.startswith("drift: opened issue #2")
    issue = emu.issues[2]
    assert issue.body.startswith(marker.line() + "\ndrift A") and issue.state == "open"

    said = drift_issue(gh, marker, drifted=True, markdown="drift A", title="t", run_url="https://x/runs/2")
    assert said == "drift: updated issue #2 (same drift as before)" and issue.comments == []
    assert "runs/2" in issue.body

    drift_issue(gh, marker, drifted=True, markdown="drift B", title="t", run_url="https://x/runs/3")
    assert "drift B" in issue.body and len(issue.comments) == 1 and "drift changed" in issue.comments[0]["body"]
    assert len([i for i in emu.issues.values() if not i.pull]) == 1

    assert drift_issue(gh, marker, drifted=False, markdown="", title="t") == "no drift; closed issue #2"
    assert issue.state == "closed" and issue.state_reason == "completed"
    assert "back in sync" in issue.comments[-1]["body"]
    assert drift_issue(gh, marker, drifted=False, markdown="", title="t") == "no drift"

    drift_issue(gh, marker, drifted=True, markdown="drift C", title="t")
    assert len([i for i in emu.issues.values() if not i.pull]) == 2  # a closed issue is history: a new one


def test_drift_issue_can_stay_open_when_back_in_sync(emu, gh):
    marker = Marker("drift", "", ".")
    drift_issue(gh, marker, drifted=True, markdown="drift", title="t")
    assert drift_issue(gh, marker, drifted=False, markdown="", title="t", close=False) == "no drift; issue #1 left open"


# --------------------------------------------------------------------------- annotations


def test_diagnostics_become_annotations_on_repository_paths():
    log = ("prompts/a.yaml:3:5: error: label production refers to an undeclared version (declare it)\n"
           "prompts/b, c.yaml: warning: odd: yes\nError: 1 error in 1 file\n")
    assert annotations(log, "app") == [
        "::error file=app/prompts/a.yaml,line=3,col=5::label production refers to an undeclared version (declare it)",
        "::warning file=app/prompts/b%2C c.yaml::odd: yes"]


def test_comment_bodies_fit_exactly_at_the_limit():
    marker = Marker("plan", "t", ".")
    text = "a" * (COMMENT_LIMIT - len(marker.line(1)) - 1)
    assert comment_bodies(marker, text) == [f"{marker.line(1)}\n{text}"]
    assert len(comment_bodies(marker, text + "\nb")) == 2


# --------------------------------------------------------------------------- command line


@pytest.fixture
def actions_env(monkeypatch, tmp_path, server):
    for var in ("GITHUB_TOKEN", "GH_TOKEN", "GITHUB_EVENT_PATH", "GITHUB_STEP_SUMMARY", "GITHUB_ACTIONS"):
        monkeypatch.delenv(var, raising=False)

    def setup(event: dict | None = None, **env: str) -> None:
        if event is not None:
            path = tmp_path / "event.json"
            path.write_text(json.dumps(event))
            monkeypatch.setenv("GITHUB_EVENT_PATH", str(path))
        defaults = {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": server.url,
                    "GITHUB_EVENT_NAME": "pull_request"}
        for key, value in {**defaults, **env}.items():
            monkeypatch.setenv(key, value)

    return setup


def pr_event(number: int, head: str = REPO) -> dict:
    return {"pull_request": {"number": number, "head": {"repo": {"full_name": head}},
                             "base": {"repo": {"full_name": REPO}}}}


def test_cli_comment_reads_the_pull_request_from_the_event(emu, actions_env, tmp_path, capsys):
    pr = emu.open_pull()
    actions_env(pr_event(pr))
    (tmp_path / "plan.md").write_text(plan_markdown())
    args = ["comment", "-t", "local", "--dir", "examples", "--file", str(tmp_path / "plan.md")]
    assert main(args) == 0 and main(args) == 0
    out = capsys.readouterr().out
    assert "created the promptops comment on pull request #1" in out
    assert "left unchanged" in out
    assert len(emu.comments(pr)) == 1 and "dir=examples" in emu.comments(pr)[0]["body"]


def test_cli_errors_are_one_line_without_the_token(emu, actions_env, tmp_path, capsys):
    pr = emu.open_pull()
    actions_env(pr_event(pr), GITHUB_TOKEN="ghs_readonly", GITHUB_ACTIONS="true")
    (tmp_path / "plan.md").write_text("plan")
    assert main(["comment", "--file", str(tmp_path / "plan.md")]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("::error::GitHub refused to comment on pull request #1 (403")
    assert "pull-requests: write" in captured.err and "Traceback" not in captured.err
    assert "ghs_readonly" not in captured.out + captured.err


def test_cli_a_fork_pull_request_only_warns(emu, actions_env, tmp_path, capsys):
    pr = emu.open_pull(head_repo="mallory/prompts")
    actions_env(pr_event(pr, head="mallory/prompts"), GITHUB_TOKEN="ghs_readonly")
    (tmp_path / "plan.md").write_text("plan")
    assert main(["comment", "--file", str(tmp_path / "plan.md")]) == 0
    assert "::warning::pull request #1 gets a read-only token" in capsys.readouterr().out


def test_cli_a_dependabot_pull_request_only_warns(emu, actions_env, tmp_path, capsys):
    # Dependabot's pull requests come from the repository itself but get a read-only token
    pr = emu.open_pull()
    actions_env(pr_event(pr), GITHUB_TOKEN="ghs_readonly", GITHUB_ACTOR="dependabot[bot]")
    (tmp_path / "plan.md").write_text("plan")
    assert main(["comment", "--file", str(tmp_path / "plan.md")]) == 0
    assert "::warning::pull request #1 gets a read-only token" in capsys.readouterr().out


@pytest.mark.parametrize("args, env, message", [
    (["comment", "--file", "-"], {}, "GITHUB_EVENT_PATH is not set"),
    (["comment", "--file", "-", "--pr", "1"], {"GITHUB_TOKEN": ""}, "no GitHub token: set GITHUB_TOKEN"),
    (["comment", "--file", "-", "--pr", "1"], {"GITHUB_REPOSITORY": ""}, "GITHUB_REPOSITORY is not set"),
    (["summary", "--file", "-"], {}, "GITHUB_STEP_SUMMARY is not set"),
    (["drift-issue", "--status", "sideways"], {}, "'sideways' is not one of 'drifted', 'in-sync'"),
])
def test_cli_usage_errors_outside_github_actions(actions_env, monkeypatch, capsys, args, env, message):
    actions_env(None, **env)
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO("plan"))
    assert main(args) == 1
    assert message in capsys.readouterr().err


def test_cli_comment_on_a_push_event_is_a_usage_error(actions_env, capsys):
    actions_env({"ref": "refs/heads/main", "commits": []}, GITHUB_EVENT_NAME="push")
    assert main(["comment", "--file", "-"]) == 1
    assert "the push event has no pull request" in capsys.readouterr().err


def test_cli_summary_and_error_report(actions_env, tmp_path, capsys):
    summary = tmp_path / "summary.md"
    actions_env(None, GITHUB_STEP_SUMMARY=str(summary))
    log = tmp_path / "err.log"
    log.write_text("prompts/x.yaml:2:1: error: unknown key 'lables' (did you mean 'labels'?)\n"
                   "Error: 1 error in 1 file\n")
    out = tmp_path / "report.md"
    assert main(["error-report", "--command", "plan", "-t", "prod", "--dir", "app", "--log", str(log),
                 "--out", str(out)]) == 0
    assert "::error file=app/prompts/x.yaml,line=2,col=1::unknown key" in capsys.readouterr().out
    report = out.read_text()
    assert report.startswith("### promptops plan failed: `prod`") and "```text\nprompts/x.yaml:2:1" in report
    assert main(["summary", "--file", str(out)]) == 0
    assert summary.read_text() == report


def test_module_runs_as_a_script(tmp_path):
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-m", "promptops.github", "--help"], capture_output=True, text=True)
    assert done.returncode == 0 and re.search(r"comment\s+Post the markdown", done.stdout)


# --------------------------------------------------------------------------- an echoed token

ECHO_TOKEN = "ghs_S0GPRVwjaWz4YHO9kjou4h2CzszQvKVmnKCG"  # 40 characters, as installation tokens are


@pytest.mark.parametrize("status, shape", [(400, "text"), (422, "json"), (403, "string"), (200, "text"),
                                           (200, "object")])
def test_an_echoed_token_never_reaches_the_output_at_any_offset(monkeypatch, tmp_path, capsys, caplog, status,
                                                                shape):
    # a server quoting the Authorization header it got, in an error or in an answer that is not
    # the expected list, with the token at every offset around the 200-character quote
    from tests.emulators.echo import EchoServer
    from tests.test_http import OFFSETS, leaked

    caplog.set_level(logging.DEBUG)
    (tmp_path / "plan.md").write_text("plan")
    with EchoServer() as echo:
        for var, value in {"GITHUB_TOKEN": ECHO_TOKEN, "GITHUB_REPOSITORY": REPO, "GITHUB_API_URL": echo.url,
                           "GITHUB_ACTIONS": "true"}.items():
            monkeypatch.setenv(var, value)
        echo.status, echo.shape = status, shape
        leaks = []
        for offset in OFFSETS:
            echo.offset = offset
            caplog.clear()
            assert main(["comment", "--pr", "1", "--file", str(tmp_path / "plan.md")]) == 1
            captured = capsys.readouterr()
            text = captured.out + captured.err + caplog.text
            assert captured.err.startswith("::error::GitHub"), captured.err
            if leaked(text, [ECHO_TOKEN]):
                leaks.append((offset, leaked(text, [ECHO_TOKEN]), captured.err))
        assert set(echo.seen) == {ECHO_TOKEN}
    assert not leaks, leaks[:3]
