"""Start an MLflow tracking server the project can trust: a sqlite store and artifacts
under ``--root`` by default, or a PostgreSQL store and artifacts in an S3-compatible
object store as teams run it; artifacts are served over HTTP (clients need no S3
credentials), optionally behind MLflow's basic-auth app.

Credentials come from the environment only, never from config or the command line (where
they would land in params, logs or shell history): the admin password from
``MLFLOW_AUTH_ADMIN_PASSWORD`` for the server, ``MLFLOW_TRACKING_USERNAME`` /
``MLFLOW_TRACKING_PASSWORD`` for clients (MLflow reads both itself); PostgreSQL's password
from ``PGPASSWORD`` (or ``~/.pgpass``; libpq reads both), the object store's keys from
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` and its address from
``MLFLOW_S3_ENDPOINT_URL`` (boto3 and MLflow read them). A store URI with a password in it
is refused, and so is a server while its admin password is missing, short, or MLflow's old
published default.

    bibcrop server [--auth] [--host 127.0.0.1] [--port 5000] [--root DIR]
                   [--backend-store-uri postgresql://USER@HOST:5432/DB]
                   [--artifacts-destination s3://BUCKET/PREFIX]
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PASSWORD_ENV = "MLFLOW_AUTH_ADMIN_PASSWORD"
USERNAME_ENV = "MLFLOW_AUTH_ADMIN_USERNAME"
SECRET_KEY_ENV = "MLFLOW_FLASK_SERVER_SECRET_KEY"
WELL_KNOWN_PASSWORDS = {"password1234", "password", "admin", "mlflow", "changeme"}
MIN_PASSWORD_LENGTH = 12


class InsecureServerError(RuntimeError):
    pass


def check_admin_password(env=os.environ) -> str:
    """The admin password from the environment, refused when it is weak or the default."""
    password = env.get(PASSWORD_ENV, "")
    if not password:
        raise InsecureServerError(
            f"{PASSWORD_ENV} is not set: the basic-auth server needs an admin password "
            "from the environment (never from a file or the command line)"
        )
    if password in WELL_KNOWN_PASSWORDS or len(password) < MIN_PASSWORD_LENGTH:
        raise InsecureServerError(
            f"{PASSWORD_ENV} is a default or weak password (MLflow's old default "
            f"'password1234' included; at least {MIN_PASSWORD_LENGTH} characters): "
            "choose a strong one before starting a server"
        )
    return password


def write_auth_config(folder: Path, admin_username: str) -> Path:
    """An auth ini without any password in it; users live in ``<folder>/basic_auth.db``."""
    from bibcrop import atomic

    text = (
        "[mlflow]\n"
        "default_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{folder / 'basic_auth.db'}\n"
        f"admin_username = {admin_username}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    return atomic.write_text(folder / "basic_auth.ini", text)


def check_no_inline_secret(key: str, uri: str) -> str:
    """``uri`` unchanged, or InsecureServerError when it carries a password
    (``scheme://user:password@host``): passwords belong in the environment."""
    from urllib.parse import urlsplit

    if urlsplit(uri).password:
        raise InsecureServerError(
            f"{key}: the URI holds a password, which would land in shell history and logs; "
            "drop it from the URI and export it (PGPASSWORD for PostgreSQL, "
            "AWS_SECRET_ACCESS_KEY for S3)"
        )
    return uri


def server_command(
    root: Path,
    host: str,
    port: int,
    auth: bool,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
) -> list[str]:
    """``mlflow server`` for a store (default ``sqlite:///<root>/mlflow.db``) and served
    artifacts (default ``<root>/mlartifacts``; ``s3://bucket/prefix`` for object storage)."""
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri or f"sqlite:///{root / 'mlflow.db'}",
        "--artifacts-destination",
        artifacts_destination or str(root / "mlartifacts"),
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    return [*command, "--app-name", "basic-auth"] if auth else command


def start(
    root: Path,
    host: str = "127.0.0.1",
    port: int = 5000,
    auth: bool = False,
    wait_s: float = 90.0,
    log: Path | None = None,
    backend_store_uri: str | None = None,
    artifacts_destination: str | None = None,
) -> subprocess.Popen:
    """Start the server in the background; returns once ``/health`` answers.

    ``backend_store_uri`` (e.g. ``postgresql://mlflow@db:5432/mlflow``) and
    ``artifacts_destination`` (e.g. ``s3://bucket/mlflow``) replace the sqlite store and
    the artifact folder under ``root``; credentials come from the environment (module
    docstring). Raises InsecureServerError for a URI with a password in it or a weak admin
    password, RuntimeError when the server exits or does not answer in ``wait_s`` seconds.
    """
    for key, uri in (("--backend-store-uri", backend_store_uri),
                     ("--artifacts-destination", artifacts_destination)):  # fmt: skip
        if uri:
            check_no_inline_secret(key, uri)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    if auth:
        check_admin_password(env)
        username = env.get(USERNAME_ENV, "admin")
        env["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(root, username))
        # CSRF key: one per server unless given (servers behind one name must share it)
        env.setdefault(SECRET_KEY_ENV, secrets.token_hex(32))
    out = open(log or root / "server.log", "ab")  # noqa: SIM115  (owned by the process)
    command = server_command(root, host, port, auth, backend_store_uri, artifacts_destination)
    proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited with {proc.returncode}: see {out.name}")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/health", timeout=2):
                return proc
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"mlflow server did not answer on {host}:{port} in {wait_s} s: {out.name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bibcrop server", description=__doc__.split("\n")[0])
    parser.add_argument("--auth", action="store_true", help="basic-auth app (users + passwords)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000)
    parser.add_argument("--root", default="mlflow-server", help="store, artifacts, auth db")
    parser.add_argument(
        "--backend-store-uri",
        help="postgresql://USER@HOST:PORT/DB (password from PGPASSWORD); default: sqlite in --root",
    )
    parser.add_argument(
        "--artifacts-destination",
        help="s3://BUCKET/PREFIX (keys from AWS_*, endpoint from MLFLOW_S3_ENDPOINT_URL); "
        "default: --root/mlartifacts",
    )
    args = parser.parse_args(argv)
    try:
        proc = start(
            Path(args.root).resolve(), args.host, args.port, args.auth,
            backend_store_uri=args.backend_store_uri,
            artifacts_destination=args.artifacts_destination,
        )  # fmt: skip
    except InsecureServerError as err:
        sys.stderr.write(f"bibcrop server: {err}\n")
        return 2
    store = args.backend_store_uri or f"sqlite under {args.root}"
    print(
        f"MLflow server on http://{args.host}:{args.port} (store: {store}); "
        f"export MLFLOW_TRACKING_URI=http://{args.host}:{args.port}"
    )
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait()


if __name__ == "__main__":
    raise SystemExit(main())
