"""An executor whose Iceberg warehouse is on an S3 API server (s3a://): data and metadata land there."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from autoloader.executor.v1 import executor_pb2, executor_pb2_grpc
from tests.support.executors import executor_address, start_executor, stop
from tests.support.runs import create_ingestion, write_csv
from tests.support.s3 import S3Server, running_s3_server
from tests.support.stack import InProcessStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with running_s3_server() as server:
        yield server


async def test_tables_written_to_an_s3a_warehouse(stack: InProcessStack, s3: S3Server, tmp_path: Path) -> None:
    bucket = s3.create_bucket()
    home = tmp_path / "executor"
    process = start_executor(
        stack,
        home,
        f"s3a://{bucket}/warehouse",
        {
            "AUTOLOADER_WAREHOUSE_ENDPOINT_URL": s3.endpoint_url,
            "AUTOLOADER_WAREHOUSE_REGION": s3.region,
            "AUTOLOADER_WAREHOUSE_CREDENTIALS_REF": s3.credentials_ref,
        },
    )
    try:
        source = tmp_path / "source"
        write_csv(source, "a.csv", rows=7)
        write_csv(source, "b.csv", rows=5, start=7)
        table = f"s3wh.t_{uuid.uuid4().hex[:6]}"
        async with stack.http(stack.admin_token) as client:
            ingestion_id = await create_ingestion(client, source, table)
            run_id = (await client.post(f"/api/v1/ingestions/{ingestion_id}/run")).json()["run_id"]
        run = await stack.wait_for_run(run_id, timeout=300)
        assert run["status"] == "SUCCESS", (run, (home / "executor.log").read_text()[-3000:])
        assert run["rows_written"] == 12

        keys = s3.list_keys(bucket, "warehouse/")
        assert any(k.endswith(".parquet") and "/data/" in k for k in keys), keys
        assert any(k.endswith(".metadata.json") for k in keys), keys
        async with grpc.aio.insecure_channel(executor_address(home)) as channel:
            response = await executor_pb2_grpc.ExecutorServiceStub(channel).ExecuteSql(
                executor_pb2.ExecuteSqlRequest(statement=f"SELECT count(*) FROM {table}"),
                metadata=(("authorization", f"Bearer {stack.admin_token}"),),
                timeout=120,
            )
        assert response.rows[0].values == ["12"]
    finally:
        stop([process])
