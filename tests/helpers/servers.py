"""Real servers on 127.0.0.1 for the tracking tests, from packages the dev extras install:
PostgreSQL from the ``pgserver`` wheel's binaries (TCP, password auth, as a team's
database) and an S3-compatible object store from ``moto[server]``."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import SimpleNamespace

from tests.helpers.tinydata import free_port


def _postgres_owner(path: Path) -> str | None:
    """The system user PostgreSQL runs as (it refuses root): pgserver's own ``pgserver``
    user, owning ``path``, when we are root; None otherwise."""
    if os.geteuid() != 0:
        return None
    from pgserver.utils import ensure_user_exists

    ensure_user_exists("pgserver")
    os.chown(path, *_ids("pgserver"))
    return "pgserver"


@contextlib.contextmanager
def postgres(user: str = "mlflow", database: str = "mlflow"):
    """A PostgreSQL server on 127.0.0.1:<free port> with ``user`` (password auth) owning
    ``database``; yields ``uri`` (no password in it), ``password``, ``port``, ``data``.

    Its data lives in a fresh folder directly under the system's temp folder (not under
    pytest's, which is private to root and re-locked by every pytest that starts), removed
    afterwards."""
    import shutil
    import tempfile

    from pgserver._commands import initdb, pg_ctl, psql

    data = Path(tempfile.mkdtemp(prefix="bibcrop-pg-"))
    system_user = _postgres_owner(data)
    password = secrets.token_hex(16)
    pwfile = data / "pw"  # initdb reads it; removed right after
    pwfile.write_text(password)
    if system_user:
        os.chown(pwfile, *_ids(system_user))
    port = free_port()
    try:
        initdb(["--auth=scram-sha-256", "-U", user, f"--pwfile={pwfile}", "--encoding=utf8"],
               pgdata=data / "db", user=system_user)  # fmt: skip
        pwfile.unlink()
        pg_ctl(["-w", "-o", f"-h 127.0.0.1 -p {port} -k {data}", "-l", str(data / "log"),
                "start"], pgdata=data / "db", user=system_user, timeout=60)  # fmt: skip
        try:
            login = ["-h", "127.0.0.1", "-p", str(port), "-U", user, "-d", "postgres"]
            create = ["-c", f"CREATE DATABASE {database}"]
            psql([*login, *create], env={**os.environ, "PGPASSWORD": password})
            yield SimpleNamespace(
                uri=f"postgresql://{user}@127.0.0.1:{port}/{database}",
                password=password, port=port, data=data,
            )  # fmt: skip
        finally:
            pg_ctl(["-w", "-m", "fast", "stop"], pgdata=data / "db", user=system_user,
                   timeout=60)  # fmt: skip
    finally:
        shutil.rmtree(data, ignore_errors=True)


def _ids(name: str) -> tuple[int, int]:
    import pwd

    entry = pwd.getpwnam(name)
    return entry.pw_uid, entry.pw_gid


@contextlib.contextmanager
def s3(root: Path, bucket: str = "mlflow"):
    """moto's S3-compatible server on 127.0.0.1:<free port> with ``bucket``; yields
    ``endpoint``, ``bucket`` and ``env`` (the variables a client and the MLflow server
    read: endpoint, keys, region)."""
    import boto3

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "test-key",
        "AWS_SECRET_ACCESS_KEY": secrets.token_hex(16),
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    log = open(root / "moto.log", "ab")  # noqa: SIM115  (owned by the process)
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto server did not start: {root / 'moto.log'}") from None
                time.sleep(0.3)
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            region_name=env["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=bucket)
        yield SimpleNamespace(endpoint=endpoint, bucket=bucket, env=env, client=client)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
