"""GitHub REST API emulator: the part promptops' GitHub Action uses (issue comments on pull
requests, issues), written from GitHub's REST reference (API version 2022-11-28). What it
implements:

* ``GET    /user``                                        the token's user (403 for installation tokens)
* ``GET    /repos/{owner}/{repo}/issues``                 ``state``, ``creator``, ``per_page``, ``page``;
                                                          pull requests included (with a ``pull_request`` key)
* ``POST   /repos/{owner}/{repo}/issues``                 201
* ``GET    /repos/{owner}/{repo}/issues/{number}``        an issue or a pull request
* ``PATCH  /repos/{owner}/{repo}/issues/{number}``        title, body, state, state_reason
* ``GET    /repos/{owner}/{repo}/issues/{number}/comments``  oldest first, ``per_page`` (30, max 100), ``page``
* ``POST   /repos/{owner}/{repo}/issues/{number}/comments``  201
* ``PATCH  /repos/{owner}/{repo}/issues/comments/{id}``   200
* ``DELETE /repos/{owner}/{repo}/issues/comments/{id}``   204

Lists paginate with a ``Link`` header (``next``, ``last``, ``first``, ``prev``) built from the
request's ``Host``, as GitHub does. Errors have GitHub's shape ``{"message", "documentation_url",
"status"}``; validation errors are 422 ``{"message": "Validation Failed", "errors": [...]}``.

Tokens (``tokens``: token -> :class:`Token`) carry a login, an account type and fine-grained
permissions (``pull_requests``, ``issues``, ``contents``: ``none`` | ``read`` | ``write``), the
way ``permissions:`` in a workflow scopes ``GITHUB_TOKEN``. A write the token may not make is
403 "Resource not accessible by integration"; an unknown token 401 "Bad credentials". Secondary
rate limits are faults: :meth:`GitHubEmulator.secondary_rate_limit`. Decisions where the
reference is silent are in :data:`CHOICES`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Mapping

from .base import Emulator, HttpError, Request, Response, int_arg, paginate

API_VERSIONS = ("2022-11-28",)
BODY_MAX = 65536
DOCS = "https://docs.github.com/rest"
ACCESS = {"none": 0, "read": 1, "write": 2}
NOT_ACCESSIBLE = "Resource not accessible by integration"
SECONDARY = ("You have exceeded a secondary rate limit. Please wait a few minutes before you try again. If you "
             "reach out to GitHub Support for help, please include the request ID 0000:0000:0000000:0000000:00000000.")

CHOICES = {
    "auth": "Authorization 'Bearer <t>' or 'token <t>'; missing or unknown -> 401 Bad credentials (GitHub answers "
            "anonymous reads of public repositories; this emulator wants a token for everything)",
    "api_version": "X-GitHub-Api-Version absent -> 2022-11-28; any other value -> 400 'Unsupported API version'",
    "permissions": "comment on a pull request: pull_requests or issues write; on an issue: issues write; create/"
                   "edit issues: issues write; reads: pull_requests/issues read (private repositories only, "
                   "public ones are readable by every token); otherwise 403 Resource not accessible by integration",
    "edit_others": "a token with write access may edit and delete any comment (as GITHUB_TOKEN can)",
    "pagination": "per_page default 30, max 100 (larger clamped); page from 1; Link carries next/last (and prev/"
                  "first when page > 1); a page past the end is []",
    "order": "comments oldest first; issues newest first (GitHub's default sort=created direction=desc)",
    "body_limit": f"a body over {BODY_MAX} characters (code points) -> 422 'body is too long (maximum is {BODY_MAX} "
                  "characters)', resource IssueComment or Issue",
    "user_endpoint": "GET /user: 403 Resource not accessible by integration for installation tokens (GITHUB_TOKEN)",
    "secondary_rate_limit": "a fault: 403 (or 429) with GitHub's message, Retry-After only when asked",
}


@dataclass
class Token:
    """What a token may do. ``installation`` tokens (GITHUB_TOKEN, GitHub Apps) cannot read /user."""

    login: str = "github-actions[bot]"
    type: str = "Bot"
    permissions: Mapping[str, str] = field(default_factory=lambda: {
        "contents": "read", "pull_requests": "write", "issues": "write"})
    installation: bool = True

    def can(self, scope: str, level: str) -> bool:
        return ACCESS[self.permissions.get(scope, "none")] >= ACCESS[level]


@dataclass
class Issue:
    number: int
    title: str
    body: str
    user: dict[str, Any]
    pull: bool = False
    head_repo: str | None = None  # pull requests: the full name of the head repository
    state: str = "open"
    state_reason: str | None = None
    created_at: str = ""
    updated_at: str = ""
    comments: list[dict[str, Any]] = field(default_factory=list)


class GitHubEmulator(Emulator):
    name = "github"

    def __init__(self, repo: str = "octo/prompts", tokens: Mapping[str, Token | Mapping[str, Any]] | None = None,
                 private: bool = False) -> None:
        super().__init__()
        self.repo = repo
        self.private = private
        self.tokens = {k: v if isinstance(v, Token) else Token(**v)
                       for k, v in (tokens or {"ghs_test_token": Token()}).items()}
        self.issues: dict[int, Issue] = {}
        self._next_comment = 1000
        self._users: dict[str, int] = {}

    # ------------------------------------------------------------------ test helpers

    def open_pull(self, title: str = "Change prompts", *, head_repo: str | None = None) -> int:
        """A new open pull request (``head_repo`` another full name: from a fork); its number."""
        return self._new_issue(title, "", self._user(Token(login="ada", type="User")), pull=True,
                               head_repo=head_repo or self.repo).number

    def add_comment(self, number: int, body: str, login: str = "ada", type: str = "User") -> dict[str, Any]:
        """A comment written by someone else (a reviewer, a spoofer)."""
        return self._new_comment(self.issues[number], body, self._user(Token(login=login, type=type)))

    def comments(self, number: int) -> list[dict[str, Any]]:
        return list(self.issues[number].comments)

    def secondary_rate_limit(self, n: int = 1, *, retry_after: float | None = None, status: int = 403,
                             match: str | None = None) -> None:
        """Answer the next ``n`` requests as GitHub's secondary rate limit does."""
        headers = {"Retry-After": str(int(retry_after))} if retry_after is not None else {}
        self.faults.fail_next(n, status, {"message": SECONDARY, "documentation_url":
                                          "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
                                          "#about-secondary-rate-limits"}, headers=headers, match=match)

    def too_many(self, retry_after: float) -> Response:
        return Response(429, {"message": SECONDARY, "documentation_url": DOCS},
                        {"Retry-After": str(max(1, int(-(-retry_after // 1))))})

    # ------------------------------------------------------------------ routing

    def route(self, request: Request) -> Response:
        token = self._auth(request)
        version = request.header("X-GitHub-Api-Version")
        if version is not None and version not in API_VERSIONS:
            raise _error(400, f"Unsupported API version: {version}")
        path = request.path
        if path == "/user" and request.method == "GET":
            if token.installation:
                raise _error(403, NOT_ACCESSIBLE)
            return Response(200, self._user(token))
        prefix = f"/repos/{self.repo}"
        if not (path == prefix or path.startswith(prefix + "/")):
            raise _error(404, "Not Found")
        rest = path[len(prefix):]
        for pattern, methods in _ROUTES:
            match = re.fullmatch(pattern, rest)
            if match:
                handler = methods.get(request.method)
                if handler is None:
                    raise _error(404, "Not Found")
                return getattr(self, handler)(request, token, *match.groups())
        raise _error(404, "Not Found")

    # issues

    def list_issues(self, request: Request, token: Token) -> Response:
        self._need_read(token, "issues")
        state = request.arg("state", "open")
        if state not in ("open", "closed", "all"):
            raise _validation("Issue", "state", "invalid", "state must be one of open, closed, all")
        creator = request.arg("creator")
        items = [i for i in sorted(self.issues.values(), key=lambda i: -i.number)
                 if (state == "all" or i.state == state) and (creator is None or i.user["login"] == creator)]
        return self._page(request, [self._issue_json(i) for i in items])

    def create_issue(self, request: Request, token: Token) -> Response:
        self._need(token, "issues")
        body = request.json() or {}
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise _validation("Issue", "title", "missing_field")
        text = _body(body.get("body", ""), "Issue", required=False)
        return Response(201, self._issue_json(self._new_issue(title, text, self._user(token))))

    def get_issue(self, request: Request, token: Token, number: str) -> Response:
        issue = self._issue(number)
        self._need_read(token, "pull_requests" if issue.pull else "issues")
        return Response(200, self._issue_json(issue))

    def update_issue(self, request: Request, token: Token, number: str) -> Response:
        issue = self._issue(number)
        self._need(token, "pull_requests" if issue.pull else "issues")
        body = request.json() or {}
        if "title" in body:
            issue.title = str(body["title"])
        if "body" in body:
            issue.body = _body(body["body"], "Issue", required=False)
        if "state" in body:
            if body["state"] not in ("open", "closed"):
                raise _validation("Issue", "state", "invalid")
            issue.state = body["state"]
            issue.state_reason = body.get("state_reason") or ("completed" if issue.state == "closed" else "reopened")
        issue.updated_at = _now()
        return Response(200, self._issue_json(issue))

    # comments

    def list_comments(self, request: Request, token: Token, number: str) -> Response:
        issue = self._issue(number)
        if self.private and not (token.can("issues", "read") or (issue.pull and token.can("pull_requests", "read"))):
            raise _error(403, NOT_ACCESSIBLE)
        return self._page(request, list(issue.comments))

    def create_comment(self, request: Request, token: Token, number: str) -> Response:
        issue = self._issue(number)
        self._need_comment(token, issue)
        text = _body((request.json() or {}).get("body"), "IssueComment")
        return Response(201, self._new_comment(issue, text, self._user(token)))

    def update_comment(self, request: Request, token: Token, cid: str) -> Response:
        issue, comment = self._comment(cid)
        self._need_comment(token, issue)
        comment["body"] = _body((request.json() or {}).get("body"), "IssueComment")
        comment["updated_at"] = _now()
        return Response(200, comment)

    def delete_comment(self, request: Request, token: Token, cid: str) -> Response:
        issue, comment = self._comment(cid)
        self._need_comment(token, issue)
        issue.comments.remove(comment)
        return Response(204)

    # ------------------------------------------------------------------ internals

    def _auth(self, request: Request) -> Token:
        header = request.header("Authorization") or ""
        scheme, _, value = header.partition(" ")
        token = self.tokens.get(value.strip()) if scheme.lower() in ("bearer", "token") else None
        if token is None:
            raise _error(401, "Bad credentials")
        return token

    def _need(self, token: Token, scope: str) -> None:
        if not token.can(scope, "write"):
            raise _error(403, NOT_ACCESSIBLE)

    def _need_read(self, token: Token, scope: str) -> None:
        if self.private and not token.can(scope, "read"):
            raise _error(403, NOT_ACCESSIBLE)

    def _need_comment(self, token: Token, issue: Issue) -> None:
        if not (token.can("issues", "write") or (issue.pull and token.can("pull_requests", "write"))):
            raise _error(403, NOT_ACCESSIBLE)

    def _issue(self, number: str) -> Issue:
        issue = self.issues.get(int(number))
        if issue is None:
            raise _error(404, "Not Found")
        return issue

    def _comment(self, cid: str) -> tuple[Issue, dict[str, Any]]:
        for issue in self.issues.values():
            for comment in issue.comments:
                if comment["id"] == int(cid):
                    return issue, comment
        raise _error(404, "Not Found")

    def _user(self, token: Token) -> dict[str, Any]:
        uid = self._users.setdefault(token.login, 41898282 + len(self._users))
        return {"login": token.login, "id": uid, "type": token.type}

    def _new_issue(self, title: str, body: str, user: dict[str, Any], *, pull: bool = False,
                   head_repo: str | None = None) -> Issue:
        number = max(self.issues, default=0) + 1
        now = _now()
        issue = Issue(number, title, body, user, pull=pull, head_repo=head_repo, created_at=now, updated_at=now)
        self.issues[number] = issue
        return issue

    def _new_comment(self, issue: Issue, body: str, user: dict[str, Any]) -> dict[str, Any]:
        self._next_comment += 1
        cid, now = self._next_comment, _now()
        comment = {"id": cid, "node_id": f"IC_{cid}", "body": body, "user": dict(user),
                   "url": f"https://api.github.com/repos/{self.repo}/issues/comments/{cid}",
                   "html_url": f"https://github.com/{self.repo}/{'pull' if issue.pull else 'issues'}/"
                               f"{issue.number}#issuecomment-{cid}",
                   "issue_url": f"https://api.github.com/repos/{self.repo}/issues/{issue.number}",
                   "created_at": now, "updated_at": now, "author_association": "NONE"}
        issue.comments.append(comment)
        return comment

    def _issue_json(self, issue: Issue) -> dict[str, Any]:
        kind = "pull" if issue.pull else "issues"
        out = {"number": issue.number, "title": issue.title, "body": issue.body, "user": dict(issue.user),
               "state": issue.state, "state_reason": issue.state_reason, "comments": len(issue.comments),
               "html_url": f"https://github.com/{self.repo}/{kind}/{issue.number}",
               "created_at": issue.created_at, "updated_at": issue.updated_at}
        if issue.pull:
            out["pull_request"] = {"url": f"https://api.github.com/repos/{self.repo}/pulls/{issue.number}"}
        return out

    def _page(self, request: Request, items: list[Any]) -> Response:
        per_page = min(int_arg(request, "per_page", 30, error=_bad_arg), 100)
        page = int_arg(request, "page", 1, error=_bad_arg)
        chunk, pages = paginate(items, page, per_page)
        base = f"http://{request.header('Host') or '127.0.0.1'}{request.path}"
        others = "".join(f"&{k}={v[-1]}" for k, v in sorted(request.query.items()) if k not in ("page", "per_page"))
        links = []
        if page < pages:
            links += [f'<{base}?per_page={per_page}&page={page + 1}{others}>; rel="next"',
                      f'<{base}?per_page={per_page}&page={pages}{others}>; rel="last"']
        if page > 1:
            links += [f'<{base}?per_page={per_page}&page={page - 1}{others}>; rel="prev"',
                      f'<{base}?per_page={per_page}&page=1{others}>; rel="first"']
        return Response(200, chunk, {"Link": ", ".join(links)} if links else {})


_ROUTES: list[tuple[str, dict[str, str]]] = [
    (r"/issues", {"GET": "list_issues", "POST": "create_issue"}),
    (r"/issues/(\d+)", {"GET": "get_issue", "PATCH": "update_issue"}),
    (r"/issues/(\d+)/comments", {"GET": "list_comments", "POST": "create_comment"}),
    (r"/issues/comments/(\d+)", {"PATCH": "update_comment", "DELETE": "delete_comment"}),
]


def _error(status: int, message: str) -> HttpError:
    return HttpError(status, {"message": message, "documentation_url": DOCS, "status": str(status)})


def _validation(resource: str, field_name: str, code: str, message: str | None = None) -> HttpError:
    error: dict[str, Any] = {"resource": resource, "code": code, "field": field_name}
    if message:
        error["message"] = message
    return HttpError(422, {"message": "Validation Failed", "errors": [error], "documentation_url": DOCS,
                           "status": "422"})


def _bad_arg(problem: str) -> HttpError:
    return _error(422, problem)


def _body(value: Any, resource: str, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _validation(resource, "body", "missing_field")
    if len(value) > BODY_MAX:
        raise _validation(resource, "body", "custom", f"body is too long (maximum is {BODY_MAX} characters)")
    return value


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
