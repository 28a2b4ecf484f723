"""GitHub glue for the promptops Action (``.github/actions/promptops``): the plan as one sticky
pull request comment, the job summary, and one issue for drift. Run as
``python -m promptops.github comment|summary|drift-issue|error-report``; see ``--help``.

The REST calls go through :class:`promptops.http.HttpClient` (retries, ``Retry-After``, redaction).
The token comes from the environment only (``GITHUB_TOKEN``, else ``GH_TOKEN``) and is never
printed; the API base from ``GITHUB_API_URL`` (GitHub Enterprise Server, or a fake on 127.0.0.1).

Sticky comments carry a hidden marker on their first line,
``<!-- promptops:plan target=<target> dir=<working-directory> part=<n> -->``, so each project and
target of a repository has its own comment, found again and edited in place on the next run. A
body over GitHub's 65,536 characters is split at line boundaries into numbered parts (a code fence
or ``<details>`` block cut in two is closed and reopened); a later, shorter plan deletes the parts
it no longer needs. Only comments written by the token's own account (or by a GitHub App) are
touched: a reviewer who pastes the marker does not get their comment overwritten.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence
from urllib.parse import quote, urlsplit

import click
import httpx

from .config import unsendable
from .errors import PromptOpsError, ProviderError
from .http import HttpClient, HttpSettings, Redactor, RemoteError

API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
COMMENT_LIMIT = 65536  # characters, comments and issue bodies alike
SUMMARY_LIMIT = 1024 * 1024  # bytes of $GITHUB_STEP_SUMMARY per step
TOKEN_VARS = ("GITHUB_TOKEN", "GH_TOKEN")
MAX_PAGES = 100  # 10,000 comments: a server whose Link never ends does not loop forever
RATE_LIMIT_WAIT = 60.0  # GitHub: "wait at least one minute" when it does not say how long

# Permission advice per kind of call: what the token could not touch, and the line that fixes it.
PERMISSIONS = {
    "pull-requests": ("pull request comments", "permissions: pull-requests: write"),
    "issues": ("issues", "permissions: issues: write"),
}


class GitHubError(PromptOpsError):
    """A GitHub API call failed; ``status`` is the HTTP status (0 when there was no answer)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------- the REST client


class _Transport(httpx.BaseTransport):
    """GitHub's answers in the shape :class:`HttpClient` reads: a secondary rate limit (403, or a
    429 without ``Retry-After``) becomes a 429 with the wait GitHub asks for (a 422's ``errors``
    list is read by the shared error parsing, ``http._detail``). Keeps the last ``Link`` header:
    HttpClient returns bodies only, and GitHub paginates by headers (one request at a time per
    client, so this is safe)."""

    def __init__(self, inner: httpx.BaseTransport, clock: Callable[[], float] = time.time):
        self.inner = inner
        self.clock = clock
        self.link = ""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if response.status_code < 300:
            self.link = response.headers.get("Link", "")
            return response
        if response.status_code not in (403, 429):
            return response
        response.read()
        try:
            body = response.json()
        except ValueError:
            return response
        if not isinstance(body, dict):
            return response
        wait = self._rate_limit_wait(response, str(body.get("message", "")))
        if wait is None:
            return response
        headers = {k: v for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "content-encoding", "retry-after")}
        headers["Retry-After"] = str(math.ceil(wait))
        return _replaced(response, request, 429, body, headers)

    def _rate_limit_wait(self, response: httpx.Response, message: str) -> float | None:
        """Seconds to wait for a rate-limit answer; None when it is not one, or when the wait is
        so long (a spent hourly limit) that the error should be reported at once."""
        headers = response.headers
        limited = (response.status_code == 429 or "rate limit" in message.lower()
                   or headers.get("x-ratelimit-remaining") == "0")
        if not limited:
            return None
        retry_after = headers.get("Retry-After", "").strip()
        if retry_after.isdigit():
            return float(retry_after)
        reset = headers.get("x-ratelimit-reset", "").strip()
        if headers.get("x-ratelimit-remaining") == "0" and reset.isdigit():
            wait = float(reset) - self.clock()
            return max(wait, 1.0) if wait <= 300 else None
        return RATE_LIMIT_WAIT

    def close(self) -> None:
        self.inner.close()


def _replaced(response: httpx.Response, request: httpx.Request, status: int, body: Any,
              headers: Mapping[str, str]) -> httpx.Response:
    response.close()
    return httpx.Response(status, headers=headers, content=json.dumps(body).encode(), request=request)


class _Http(HttpClient):
    def _who(self) -> str:  # messages read "GitHub: ...", not "target 'github': ..."
        return "GitHub"


class GitHub:
    """The few GitHub REST calls the Action makes, for one repository ``owner/name``."""

    def __init__(self, token: str, repository: str, *, api_url: str = API_URL,
                 transport: httpx.BaseTransport | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time):
        self.repository = _repository(repository)
        self.api_url = _api_url(api_url)
        self._transport = _Transport(transport or _network(self.api_url), clock)
        self._http = _Http(HttpSettings(
            base_url=self.api_url, target="github", platform="GitHub",
            headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": API_VERSION},
            secrets=[token], timeout=30.0, max_wait=RATE_LIMIT_WAIT, transport=self._transport, sleep=sleep))
        self._login: str | None | bool = False  # False: not asked yet

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **options: Any) -> "GitHub":
        env = os.environ if env is None else env
        repository = env.get("GITHUB_REPOSITORY", "")
        if not repository:
            raise click.UsageError("GITHUB_REPOSITORY is not set (owner/name); this runs inside GitHub Actions, "
                                   "or export it yourself")
        return cls(token_from_env(env), repository, api_url=env.get("GITHUB_API_URL") or API_URL, **options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "GitHub":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ comments

    def comments(self, number: int) -> list[dict[str, Any]]:
        """Every comment of issue or pull request ``number``, oldest first (all pages)."""
        return list(self._pages(f"{self._repo}/issues/{number}/comments",
                                f"list the comments of pull request #{number}", "pull-requests"))

    def create_comment(self, number: int, body: str) -> dict[str, Any]:
        return self._call("POST", f"{self._repo}/issues/{number}/comments", f"comment on pull request #{number}",
                          "pull-requests", json_body={"body": body})

    def update_comment(self, comment_id: int, body: str) -> dict[str, Any]:
        return self._call("PATCH", f"{self._repo}/issues/comments/{comment_id}", f"update comment {comment_id}",
                          "pull-requests", json_body={"body": body}, idempotent=True)

    def delete_comment(self, comment_id: int) -> None:
        try:
            self._call("DELETE", f"{self._repo}/issues/comments/{comment_id}", f"delete comment {comment_id}",
                       "pull-requests")
        except GitHubError as exc:
            if exc.status != 404:  # already gone: that is what was asked
                raise

    # ------------------------------------------------------------------ issues

    def open_issues(self) -> Iterator[dict[str, Any]]:
        """Open issues (not pull requests), newest first."""
        for issue in self._pages(f"{self._repo}/issues", "list the open issues", "issues", {"state": "open"}):
            if "pull_request" not in issue:
                yield issue

    def create_issue(self, title: str, body: str) -> dict[str, Any]:
        return self._call("POST", f"{self._repo}/issues", "open an issue", "issues",
                          json_body={"title": title, "body": body})

    def update_issue(self, number: int, **fields: Any) -> dict[str, Any]:
        return self._call("PATCH", f"{self._repo}/issues/{number}", f"update issue #{number}", "issues",
                          json_body=fields, idempotent=True)

    def comment_issue(self, number: int, body: str) -> dict[str, Any]:
        return self._call("POST", f"{self._repo}/issues/{number}/comments", f"comment on issue #{number}", "issues",
                          json_body={"body": body})

    # ------------------------------------------------------------------ who we are

    def is_ours(self, item: Mapping[str, Any]) -> bool:
        """Whether a comment or issue was written by this token's account, or by a GitHub App
        (``GITHUB_TOKEN`` writes as ``github-actions[bot]``, and cannot read ``/user``)."""
        user = item.get("user") or {}
        if user.get("type") == "Bot":
            return True
        login = self.login()
        return login is not None and user.get("login") == login

    def login(self) -> str | None:
        """The token's user login; None for installation tokens (GITHUB_TOKEN, GitHub Apps)."""
        if self._login is False:
            try:
                self._login = str(self._http.get("/user", what="read the token's user")["login"])
            except (ProviderError, KeyError, TypeError):
                self._login = None
        return self._login  # type: ignore[return-value]

    # ------------------------------------------------------------------ internals

    @property
    def _repo(self) -> str:
        return f"/repos/{self.repository}"

    def _call(self, method: str, path: str, what: str, scope: str, *, params: Mapping[str, Any] | None = None,
              json_body: Any = None, idempotent: bool | None = None) -> Any:
        try:
            return self._http.request(method, path, params=params, json_body=json_body, idempotent=idempotent,
                                      what=what)
        except RemoteError as exc:
            raise GitHubError(self._message(exc, method, what, scope), exc.status) from None
        except ProviderError as exc:
            raise GitHubError(str(exc)) from None

    def _pages(self, path: str, what: str, scope: str, params: Mapping[str, Any] | None = None
               ) -> Iterator[dict[str, Any]]:
        """Every item of a list endpoint: ``per_page=100``, then each ``Link: rel="next"``."""
        url: str | None = path
        query: Mapping[str, Any] | None = {**(params or {}), "per_page": 100}
        for _ in range(MAX_PAGES):
            if url is None:
                return
            self._transport.link = ""
            page = self._call("GET", url, what, scope, params=query)
            if not isinstance(page, list):
                raise GitHubError(self._http.redact(f"GitHub: unexpected answer to {what}: "
                                                    f"{self._http.excerpt(str(page))}"))
            yield from (item for item in page if isinstance(item, dict))
            url, query = self._next(self._transport.link, what), None
        raise GitHubError(f"GitHub: {what}: more than {MAX_PAGES} pages; stopped")

    def _next(self, link: str, what: str) -> str | None:
        """The ``rel="next"`` URL of a Link header; only on the API's own origin (the token goes with it)."""
        for part in link.split(","):
            match = re.match(r'\s*<([^>]+)>\s*;(.*)', part)
            if match and re.search(r'\brel="?next"?', match.group(2)):
                url = match.group(1)
                if _origin(url) != _origin(self.api_url):
                    # the host is the server's text: redacted like any other
                    raise GitHubError(self._http.redact(f"GitHub: {what}: the next page is on another host "
                                                        f"({_origin(url)}); not following it with the token"))
                return url
        return None

    def _message(self, exc: RemoteError, method: str, what: str, scope: str) -> str:
        detail = f": {exc.detail}" if exc.detail else ""
        things, fix = PERMISSIONS[scope]
        can = f"{'read' if method == 'GET' else 'write'} {things}"
        if exc.status == 401:
            return (f"GitHub rejected the token (401{detail}) trying to {what}: check the github-token input "
                    "(GITHUB_TOKEN); it may be mistyped, expired or revoked")
        if exc.status == 403 and "rate limit" in exc.detail.lower():
            return f"GitHub's rate limit stopped the attempt to {what} (403{detail}); run the job again later"
        if exc.status == 403:
            return (f"GitHub refused to {what} (403{detail}): the token cannot {can}; add `{fix}` to the job "
                    "(a pull request from a fork only gets a read-only token)")
        if exc.status == 404:
            return (f"GitHub found nothing to {what} (404{detail}): check GITHUB_REPOSITORY ({self.repository}) and "
                    f"the number; a token that cannot see a private repository gets 404 too (`{fix}`)")
        if exc.status == 429:
            return (f"GitHub's rate limit stopped the attempt to {what} (429), even after waiting; run the job "
                    "again later")
        return f"GitHub: could not {what} ({exc.status}{detail})"


def token_from_env(env: Mapping[str, str]) -> str:
    """The API token from ``GITHUB_TOKEN`` (else ``GH_TOKEN``): a usage error when unset, a
    ConfigError (without the value) when it cannot be sent in a header."""
    for var in TOKEN_VARS:
        value = env.get(var, "").strip()
        if value:
            odd = unsendable(value)
            if odd is not None:
                raise GitHubError(f"{var} holds a character that cannot be sent (U+{ord(odd):04X}); set it again")
            return value
    raise click.UsageError("no GitHub token: set GITHUB_TOKEN (the Action passes its github-token input as it)")


def _repository(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+", value):
        raise click.UsageError(f"GITHUB_REPOSITORY must be owner/name, not {value!r}")
    return value


def _api_url(url: str) -> str:
    parts = urlsplit(url)
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme not in ("http", "https") or not parts.hostname or (parts.scheme == "http" and not loopback):
        raise click.UsageError(f"GITHUB_API_URL must be an https:// URL (http:// only for localhost), not {url!r}")
    return url.rstrip("/")


def _network(api_url: str) -> httpx.BaseTransport:
    """The real transport, through the proxy the environment names (HTTPS_PROXY, NO_PROXY): httpx
    reads those only when it makes its own transport, and this one wraps it."""
    parts = urlsplit(api_url)
    host = parts.hostname or ""
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and host not in ("localhost", "127.0.0.1", "::1") and not urllib.request.proxy_bypass(host):
        return httpx.HTTPTransport(proxy=proxy)
    return httpx.HTTPTransport()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


# --------------------------------------------------------------------------- markdown splitting

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})(.*)$")


@dataclass
class _Block:
    """Open blocks at a point of a markdown text: ``<details>`` lines and a code fence."""

    details: tuple[str, ...] = ()
    fence: str = ""  # the fence characters ("```") while inside one
    opening: str = ""  # its opening line ("```diff")

    def after(self, line: str) -> "_Block":
        match = _FENCE.match(line)
        if self.fence:
            closing = match is not None and match.group(1)[0] == self.fence[0] and \
                len(match.group(1)) >= len(self.fence) and not match.group(2).strip()
            return _Block(self.details) if closing else self
        if match and not (match.group(1)[0] == "`" and "`" in match.group(2)):
            return _Block(self.details, match.group(1), line)
        stripped = line.strip().lower()
        if stripped.startswith("<details"):
            return _Block(self.details + (line,))
        if stripped.startswith("</details>") and self.details:
            return _Block(self.details[:-1])
        return self

    def close(self) -> list[str]:
        return ([self.fence] if self.fence else []) + ["", "</details>"] * len(self.details)

    def reopen(self) -> list[str]:
        out = [line for d in self.details for line in (d, "")]
        return out + ([self.opening] if self.fence else [])


def split_markdown(text: str, budget: int, measure: Callable[[str], int] = len) -> list[str]:
    """``text`` cut at line boundaries into parts of at most ``budget`` (as ``measure`` counts:
    characters, or UTF-8 bytes). A code fence or ``<details>`` block open at a cut is closed at the
    end of its part and reopened at the start of the next, so each part renders on its own. A line
    longer than a part is cut inside (the only case that breaks a line)."""
    if measure(text) <= budget:
        return [text]
    parts: list[str] = []
    lines: list[str] = []
    size = 0
    block = _Block()

    def size_of(items: Sequence[str]) -> int:
        return sum(measure(item) + 1 for item in items)

    def flush() -> None:
        nonlocal lines, size
        parts.append("\n".join(lines + block.close()))
        lines = block.reopen()
        size = size_of(lines)

    pending = text.split("\n")
    pending.reverse()
    while pending:
        line = pending.pop()
        after = block.after(line)
        if size + measure(line) + 1 + size_of(after.close()) <= budget:
            lines.append(line)
            size += measure(line) + 1
            block = after
            continue
        if lines != block.reopen():  # something of this part's own: cut before the line
            flush()
            pending.append(line)
            continue
        room = budget - size - size_of(block.close()) - 1  # not even the line alone fits: cut it
        if room < 1:
            raise ValueError(f"a part of {budget} cannot hold the blocks open around this line")
        head, tail = _cut(line, room, measure)
        lines.append(head)
        size += measure(head) + 1
        flush()
        pending.append(tail)
    if lines:
        parts.append("\n".join(lines))
    return parts


def _cut(line: str, room: int, measure: Callable[[str], int]) -> tuple[str, str]:
    """The longest head of ``line`` that measures at most ``room`` (at least one character), and the rest."""
    used, end = 0, 0
    while end < len(line) and used + measure(line[end]) <= room:
        used += measure(line[end])
        end += 1
    end = max(end, 1)
    return line[:end], line[end:]


# --------------------------------------------------------------------------- sticky comments


@dataclass(frozen=True)
class Marker:
    """The hidden first line that finds a comment again: ``kind`` (plan, drift) and the project
    (target and working directory), each value URL-quoted so it cannot end the HTML comment."""

    kind: str
    target: str
    directory: str

    @property
    def key(self) -> str:
        target = self.target or "default"
        directory = os.path.normpath(self.directory or ".").replace(os.sep, "/")
        return f"target={quote(target, safe='')} dir={quote(directory, safe='/')}"

    def line(self, part: int | None = None) -> str:
        return f"<!-- promptops:{self.kind} {self.key}{f' part={part}' if part else ''} -->"

    def part_of(self, body: str) -> int | None:
        """The part number of a body that starts with this marker (1 when unnumbered); else None."""
        first = body.split("\n", 1)[0].rstrip("\r")
        match = re.fullmatch(r"<!-- promptops:(\w+) (.*?)(?: part=(\d+))? -->", first)
        if not match or match.group(1) != self.kind or match.group(2) != self.key:
            return None
        return int(match.group(3) or 1)


@dataclass
class StickyResult:
    created: list[dict[str, Any]]
    updated: list[dict[str, Any]]
    unchanged: list[dict[str, Any]]
    deleted: list[int]

    @property
    def first_url(self) -> str:
        kept = self.updated + self.unchanged + self.created
        return str(min(kept, key=lambda c: c["id"]).get("html_url", "")) if kept else ""

    def describe(self, number: int) -> str:
        parts = len(self.created) + len(self.updated) + len(self.unchanged)
        if not (self.updated or self.unchanged):
            verb = "created"
        elif self.updated or self.created or self.deleted:
            verb = "updated"
        else:
            verb = "left unchanged (already up to date)"
        text = f"{verb} the promptops comment on pull request #{number}"
        if parts > 1:
            text += f" ({parts} parts: the plan is longer than one comment)"
        if self.deleted:
            text += f"; deleted {len(self.deleted)} leftover part{'s' if len(self.deleted) > 1 else ''}"
        return text + (f": {self.first_url}" if self.first_url else "")


def comment_bodies(marker: Marker, markdown: str, limit: int = COMMENT_LIMIT) -> list[str]:
    """The comment bodies for ``markdown``: one, or numbered parts each within ``limit``."""
    if len(marker.line(1)) + 1 + len(markdown) <= limit:
        return [f"{marker.line(1)}\n{markdown}"]
    # room for the marker with a large part number and both "continued" notes, each with its line breaks
    big = 99999
    budget = limit - (len(marker.line(big)) + 1) - sum(len(_continued(big, big, ahead)) + 2 for ahead in (False, True))
    parts = split_markdown(markdown, budget)
    n = len(parts)
    bodies = []
    for i, part in enumerate(parts, 1):
        head = [marker.line(i)] + ([_continued(i, n, False), ""] if i > 1 else [])
        tail = ["", _continued(i, n, True)] if i < n else []
        bodies.append("\n".join(head + [part] + tail))
    return bodies


def _continued(i: int, n: int, ahead: bool) -> str:
    if ahead:
        return f"_Continued in the next comment (part {i + 1} of {n})._"
    return f"_Part {i} of {n}, continued from the previous comment._"


def sticky_comment(github: GitHub, number: int, marker: Marker, markdown: str, *,
                   limit: int = COMMENT_LIMIT) -> StickyResult:
    """Make pull request ``number`` carry ``markdown`` in the comment(s) marked ``marker``: edit
    the existing parts in place, create the missing ones, delete parts (and duplicates) left over
    from an earlier, longer run. Comments whose text is already right are not touched."""
    bodies = comment_bodies(marker, markdown, limit)
    found: dict[int, list[dict[str, Any]]] = {}
    for comment in github.comments(number):
        part = marker.part_of(str(comment.get("body") or ""))
        if part is not None and github.is_ours(comment):
            found.setdefault(part, []).append(comment)
    result = StickyResult([], [], [], [])
    for i, body in enumerate(bodies, 1):
        existing = found.pop(i, [])
        for extra in existing[1:]:  # two runs raced: keep the oldest
            github.delete_comment(int(extra["id"]))
            result.deleted.append(int(extra["id"]))
        if not existing:
            result.created.append(github.create_comment(number, body))
        elif existing[0].get("body") == body:
            result.unchanged.append(existing[0])
        else:
            result.updated.append(github.update_comment(int(existing[0]["id"]), body))
    for leftovers in found.values():
        for comment in leftovers:
            github.delete_comment(int(comment["id"]))
            result.deleted.append(int(comment["id"]))
    return result


# --------------------------------------------------------------------------- step summary

TRUNCATED = ("\n\n> [!NOTE]\n> Truncated here: GitHub keeps at most 1 MiB of job summary per step. The whole plan "
             "is in the job log.\n")


def append_summary(path: Path, markdown: str, limit: int = SUMMARY_LIMIT) -> str:
    """Append ``markdown`` to the step summary file, truncated (at a line, blocks closed, with a
    note) so the file stays within GitHub's ``limit``; says what it did."""
    used = path.stat().st_size if path.exists() else 0
    room = limit - used

    def size(text: str) -> int:
        return len(text.encode("utf-8"))

    sep = "\n" if used else ""
    if size(sep + markdown) <= room:
        text, what = sep + markdown, "wrote the job summary"
    elif room - size(sep + TRUNCATED) > 200:
        head = split_markdown(markdown, room - size(sep + TRUNCATED), size)[0]
        text, what = sep + head + TRUNCATED, "wrote the job summary, truncated at GitHub's 1 MiB limit"
    else:
        return "the job summary is full (GitHub keeps 1 MiB per step); nothing added"
    with path.open("a", encoding="utf-8") as f:
        f.write(text)
    return what


# --------------------------------------------------------------------------- drift issue


def drift_issue(github: GitHub, marker: Marker, *, drifted: bool, markdown: str, title: str, run_url: str = "",
                close: bool = True) -> str:
    """Keep one open issue for drift of ``marker``'s project: open it on drift, edit its body to
    the current report on later runs (commenting when the drift itself changed), and close it
    with a comment once back in sync (unless ``close`` is False). Says what it did."""
    issue = next((i for i in github.open_issues()
                  if marker.part_of(str(i.get("body") or "")) is not None and github.is_ours(i)), None)
    seen = f"\n\n<sub>Last checked by [this run]({run_url}).</sub>" if run_url else ""
    if not drifted:
        if issue is None or not close:
            return "no drift" + (f"; issue #{issue['number']} left open" if issue else "")
        note = "The target is back in sync with the committed files" + (f" ([run]({run_url}))" if run_url else "")
        github.comment_issue(int(issue["number"]), note + ". Closing.")
        github.update_issue(int(issue["number"]), state="closed", state_reason="completed")
        return f"no drift; closed issue #{issue['number']}"
    report = _fit(f"{marker.line()}\n{markdown}", COMMENT_LIMIT - len(seen))
    if issue is None:
        created = github.create_issue(title, report + seen)
        return f"drift: opened issue #{created['number']}: {created.get('html_url', '')}"
    number = int(issue["number"])
    changed = _without_footer(str(issue.get("body") or "")) != report
    github.update_issue(number, body=report + seen, title=title)
    if changed:
        github.comment_issue(number, "The drift changed; the description shows it as of "
                             + (f"[this run]({run_url})." if run_url else "now."))
    return f"drift: updated issue #{number}" + ("" if changed else " (same drift as before)")


def _fit(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    note = "\n\n_Truncated: the report is longer than an issue can hold; the whole of it is in the run's log._"
    return split_markdown(text, limit - len(note))[0] + note


def _without_footer(body: str) -> str:
    return re.sub(r"\n\n<sub>Last checked by \[this run\]\([^)]*\)\.</sub>\Z", "", body)


# --------------------------------------------------------------------------- errors as markdown


_DIAGNOSTIC = re.compile(r"^(?P<file>[^:\n]+?)(?::(?P<line>\d+):(?P<col>\d+))?: (?P<sev>error|warning): (?P<msg>.+)$")


def error_markdown(command: str, target: str, log: str, max_chars: int = 20000) -> str:
    """A failed command as markdown: heading and the end of its error output in a fence."""
    if len(log) > max_chars:
        log = "…\n" + log[-max_chars:]
    fence = "`" * max(3, 1 + max((len(r) for r in re.findall(r"`+", log)), default=0))
    where = f": `{target}`" if target else ""
    return (f"### promptops {command} failed{where}\n\n**The {command} did not finish; nothing below is a plan.**\n\n"
            f"{fence}text\n{log.rstrip()}\n{fence}\n")


def annotations(log: str, directory: str) -> list[str]:
    """``::error file=…,line=…,col=…::message`` workflow commands for the located diagnostics in
    ``log`` (promptops' ``file:line:col: error: message``), with paths from the repository root."""
    out = []
    for raw in log.splitlines():
        match = _DIAGNOSTIC.match(raw.strip())
        if not match or match.group("file").startswith(("Error", "http")):
            continue
        path = os.path.normpath(os.path.join(directory or ".", match.group("file"))).replace(os.sep, "/")
        props = [f"file={_escape(path, True)}"]
        if match.group("line"):
            props += [f"line={match.group('line')}", f"col={match.group('col')}"]
        out.append(f"::{match.group('sev')} {','.join(props)}::{_escape(match.group('msg'), False)}")
    return out


def _escape(value: str, prop: bool) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


# --------------------------------------------------------------------------- the event


def pull_request(env: Mapping[str, str]) -> tuple[int, bool]:
    """The pull request number of the triggering event, and whether its token is read-only (a
    fork's, a deleted fork's, or Dependabot's pull request)."""
    path = env.get("GITHUB_EVENT_PATH", "")
    if not path:
        raise click.UsageError("GITHUB_EVENT_PATH is not set: run this in a GitHub Actions job triggered by "
                               "pull_request, or pass --pr NUMBER")
    try:
        event = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"cannot read the event payload {path}: {exc}") from None
    pr = event.get("pull_request") if isinstance(event, dict) else None
    if not isinstance(pr, dict):
        issue = event.get("issue") if isinstance(event, dict) else None
        if isinstance(issue, dict) and issue.get("pull_request") and isinstance(issue.get("number"), int):
            return issue["number"], False
        raise click.UsageError(f"the {env.get('GITHUB_EVENT_NAME') or 'triggering'} event has no pull request; "
                               "comment only on pull_request events, or pass --pr NUMBER")
    head = ((pr.get("head") or {}).get("repo") or {}).get("full_name")
    base = ((pr.get("base") or {}).get("repo") or {}).get("full_name")
    # read-only tokens: a fork's pull request, one whose fork was deleted (no head repo), and
    # Dependabot's pull requests
    read_only = (head != base if base else False) or env.get("GITHUB_ACTOR") == "dependabot[bot]"
    return int(pr["number"]), bool(read_only)


def run_url(env: Mapping[str, str]) -> str:
    server, repo, run = env.get("GITHUB_SERVER_URL"), env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
    return f"{server.rstrip('/')}/{repo}/actions/runs/{run}" if server and repo and run else ""


# --------------------------------------------------------------------------- command line


def _read(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    try:
        return Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise click.UsageError(f"cannot read {file}: {exc.strerror}") from None


_project = [
    click.option("-t", "--target", default="", metavar="TARGET", help="The promptops target (empty: the default one)."),
    click.option("--dir", "directory", default=".", metavar="DIR", help="The project's directory in the repository."),
]


def _project_options(f: Callable[..., Any]) -> Callable[..., Any]:
    for option in reversed(_project):
        f = option(f)
    return f


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main_group() -> None:
    """GitHub glue for the promptops Action: sticky plan comment, job summary, drift issue.
    Reads GITHUB_TOKEN, GITHUB_REPOSITORY, GITHUB_API_URL and GITHUB_EVENT_PATH as Actions sets them."""


@main_group.command("comment")
@_project_options
@click.option("--file", "file", default="-", metavar="FILE", help="The markdown to post (default: stdin).")
@click.option("--pr", "number", type=int, default=None, help="Pull request number (default: from the event).")
def comment_cmd(target: str, directory: str, file: str, number: int | None) -> int:
    """Post the markdown as the one sticky comment of this project and target on the pull request."""
    env = os.environ
    fork = False
    if number is None:
        number, fork = pull_request(env)
    markdown = _read(file)
    link = run_url(env)
    if link:
        markdown = markdown.rstrip("\n") + f"\n\n<sub>Posted by promptops from [this workflow run]({link}).</sub>\n"
    with GitHub.from_env(env) as github:
        try:
            result = sticky_comment(github, number, Marker("plan", target, directory), markdown)
        except GitHubError as exc:
            if exc.status == 403 and fork:
                click.echo(f"::warning::pull request #{number} gets a read-only token (a fork's or Dependabot's): "
                           "the plan is in the job summary, not in a comment")
                return 0
            raise
    click.echo(f"promptops: {result.describe(number)}")
    return 0


@main_group.command("summary")
@click.option("--file", "file", default="-", metavar="FILE", help="The markdown to add (default: stdin).")
def summary_cmd(file: str) -> int:
    """Append the markdown to the job summary ($GITHUB_STEP_SUMMARY), within GitHub's 1 MiB."""
    path = os.environ.get("GITHUB_STEP_SUMMARY", "")
    if not path:
        raise click.UsageError("GITHUB_STEP_SUMMARY is not set: this runs inside a GitHub Actions step")
    click.echo(f"promptops: {append_summary(Path(path), _read(file))}")
    return 0


@main_group.command("drift-issue")
@_project_options
@click.option("--status", type=click.Choice(["drifted", "in-sync"]), required=True,
              help="What promptops drift found (exit 2: drifted, 0: in-sync).")
@click.option("--file", "file", default="-", metavar="FILE", help="The drift report in markdown (default: stdin).")
@click.option("--close/--no-close", default=True, show_default=True,
              help="Close the open drift issue once back in sync.")
def drift_issue_cmd(target: str, directory: str, status: str, file: str, close: bool) -> int:
    """Open (once) or update the drift issue of this project and target; close it when in sync."""
    markdown = _read(file) if status == "drifted" else ""
    title = f"promptops: drift on target {target or 'default'}"
    if os.path.normpath(directory) != ".":
        title += f" ({directory})"
    with GitHub.from_env() as github:
        what = drift_issue(github, Marker("drift", target, directory), drifted=status == "drifted",
                           markdown=markdown, title=title, run_url=run_url(os.environ), close=close)
    click.echo(f"promptops: {what}")
    return 0


@main_group.command("error-report")
@_project_options
@click.option("--command", "command", required=True, help="The promptops command that failed.")
@click.option("--log", "log_file", required=True, metavar="FILE", help="Its error output.")
@click.option("--out", "out", required=True, metavar="FILE", help="Where to write the markdown.")
def error_report_cmd(target: str, directory: str, command: str, log_file: str, out: str) -> int:
    """Write a failed command's error output as markdown, and print its located diagnostics as
    workflow annotations (so they show on the pull request's files)."""
    log = _read(log_file)
    Path(out).write_text(error_markdown(command, target, log), encoding="utf-8")
    for line in annotations(log, directory):
        click.echo(line)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success, 1 on usage or GitHub errors (the message says what to do), 3 on a bug."""
    try:
        code = main_group.main(args=list(sys.argv[1:] if argv is None else argv),
                               prog_name="python -m promptops.github", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return 1
    except PromptOpsError as exc:
        message = _redact_env(str(exc))
        click.echo(f"::error::{_escape(message, False)}" if os.environ.get("GITHUB_ACTIONS") == "true"
                   else f"Error: {message}", err=True)
        return 1
    except KeyboardInterrupt:
        click.echo("Interrupted.", err=True)
        return 130
    except Exception as exc:  # noqa: BLE001 - the boundary: anything else is a bug
        click.echo(_redact_env(f"promptops: internal error: {type(exc).__name__}: {exc}"), err=True)
        click.echo("This is a bug in promptops; please report it.", err=True)
        return 3


def _redact_env(text: str) -> str:
    """``text`` without the token, whole or in part (the client redacts its own messages; this is
    the last guard, for errors raised elsewhere that quote a server's answer)."""
    values = [os.environ.get(var, "").strip() for var in TOKEN_VARS]
    return Redactor(value for value in values if len(value) >= 4).redact(text)


if __name__ == "__main__":
    sys.exit(main())
