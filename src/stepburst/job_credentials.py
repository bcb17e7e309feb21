"""The job's own credentials for the code a worker runs for it.

The worker's role writes the ledger and reads the manifests; a job's command must not. So the
worker serves the job role's credentials to the command on a loopback port, speaking the ECS
container credentials protocol that every AWS SDK and the AWS CLI read
(``AWS_CONTAINER_CREDENTIALS_FULL_URI`` with ``AWS_CONTAINER_AUTHORIZATION_TOKEN``), and takes
the container's own credential variables out of the command's environment. The SDKs refresh
before expiry, and the server assumes the role again when asked after its credentials have
less than :data:`REFRESH_MARGIN_SECONDS` left, so commands longer than the one-hour limit of a
role-chained session keep working.
https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html

On Lambda (the item and combine functions) the same server runs inside the function: binding
127.0.0.1 is allowed there, and the function's own credential variables are taken out of the
command's environment the same way. The job's role is derived there from the job and stack
names, in the partition and account of the function's own ARN (:func:`job_role_for`).

This keeps a job's code to its own grants by default; it is not a boundary against code that
sets out to read the worker's process environment in the same container (see README,
"Per-job roles").
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stepburst.adapters import sts
from stepburst.layout import job_role_name, job_role_path

# Set on every per-job container (stepburst.job_compute): the role the job's code runs with.
JOB_ROLE_VARIABLE = "STEPBURST_JOB_ROLE_ARN"
# Variables through which a process finds the container's (the worker's) credentials.
CONTAINER_CREDENTIAL_VARIABLES = (
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)
# A role-chained session lasts at most an hour.
# https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_terms-and-concepts.html#iam-term-role-chaining
SESSION_SECONDS = 3600
REFRESH_MARGIN_SECONDS = 900


def job_role_arn(partition: str, account: str, stack: str, job: str) -> str:
    """The ARN of the role stepburst.job_compute keeps for ``job`` in ``stack``."""
    return f"arn:{partition}:iam::{account}:role{job_role_path(stack)}{job_role_name(stack, job)}"


def job_role_for(stack: str, job: str, function_arn: str | None = None) -> str | None:
    """The role a job's commands run with, where this code runs.

    On Lambda (``function_arn``, the invoked function's ARN) it is derived from the job and
    stack names, in that ARN's partition and account, so a payload cannot name another role.
    In a job's container it is the one its definitions set; elsewhere (a local worker without
    one, tests) there is none and commands run with the process's own credentials.
    """
    if function_arn:
        # arn:partition:lambda:region:account:function:name
        parts = function_arn.split(":")
        if len(parts) < 7 or parts[2] != "lambda":
            raise ValueError(f"{function_arn!r} is not a Lambda function's ARN")
        return job_role_arn(parts[1], parts[4], stack, job)
    return os.environ.get(JOB_ROLE_VARIABLE) or None


class _Credentials:
    def __init__(self, role_arn: str, session_name: str) -> None:
        self.role_arn = role_arn
        self.session_name = session_name
        self._lock = threading.Lock()
        self._current: dict[str, str] | None = None
        self._expires = datetime.min.replace(tzinfo=UTC)

    def document(self) -> dict[str, str]:
        with self._lock:
            now = datetime.now(UTC)
            if self._current is None or self._expires - now < timedelta(
                seconds=REFRESH_MARGIN_SECONDS
            ):
                self._current = sts.job_credentials(
                    self.role_arn, self.session_name, SESSION_SECONDS
                )
                self._expires = now + timedelta(seconds=SESSION_SECONDS)
            return {
                "AccessKeyId": self._current["AWS_ACCESS_KEY_ID"],
                "SecretAccessKey": self._current["AWS_SECRET_ACCESS_KEY"],
                "Token": self._current["AWS_SESSION_TOKEN"],
                "Expiration": self._expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }


@contextmanager
def job_environment(
    environment: Mapping[str, str], role_arn: str | None, session_name: str
) -> Iterator[dict[str, str]]:
    """``environment`` for a job's command: with the job role's credentials served to it, or
    unchanged when the worker has no job role (the local engine without one, tests)."""
    if not role_arn:
        yield dict(environment)
        return
    credentials = _Credentials(role_arn, session_name)
    credentials.document()  # fail here, naming the role, rather than inside the command
    token = secrets.token_urlsafe(32)

    class Serve(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if not secrets.compare_digest(self.headers.get("Authorization", ""), token):
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps(credentials.document()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Serve)
    thread = threading.Thread(target=server.serve_forever, name="job-credentials", daemon=True)
    thread.start()
    try:
        served = {
            key: value
            for key, value in environment.items()
            if key not in CONTAINER_CREDENTIAL_VARIABLES
        }
        served["AWS_CONTAINER_CREDENTIALS_FULL_URI"] = (
            f"http://127.0.0.1:{server.server_address[1]}/credentials"
        )
        served["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = token
        yield served
    finally:
        server.shutdown()
        server.server_close()
