from __future__ import annotations

from dataclasses import replace

import pytest

from services.control.models import Destination, Ingestion, MetadataColumns, Schedule, Source, Webhook
from services.control.validation import validate
from services.shared.errors import InvalidArgument

SECRET = "sixteen-chars-ok"
VALID = Ingestion(
    ingestion_id="users-snapshot-ingestion",
    name="Users snapshot",
    source=Source(uri="s3://bucket-1/users/", format="csv", options={"header": "true"}),
    destination=Destination(table="analytics.dim_users"),
)


def violated_fields(ingestion: Ingestion) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        validate(ingestion)
    return {v.field: v.description for v in caught.value.violations}


def test_valid_configuration_passes() -> None:
    validate(VALID)
    validate(replace(VALID, source=Source(uri="file:///data/in/", format="parquet")))
    validate(replace(VALID, destination=Destination(table="cat.db.t_1")))
    validate(replace(VALID, schedule=Schedule(cron="0 2 * * *", timezone="Europe/Berlin")))
    validate(replace(VALID, webhook=Webhook(url="https://hooks.example.com/autoloader", secret=SECRET)))


def test_overwrite_is_refused_with_both_manual_alternatives() -> None:
    reason = violated_fields(replace(VALID, destination=Destination(table="a.b", write_mode="overwrite")))[
        "destination.write_mode"
    ]
    assert "not supported" in reason
    assert "drop the destination table and trigger a run" in reason
    assert "processed-files" in reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ingestion_id": "Bad_Id"}, "ingestion_id"),
        ({"ingestion_id": "-lead"}, "ingestion_id"),
        ({"ingestion_id": "x" * 64}, "ingestion_id"),
        ({"name": "  "}, "name"),
        ({"source": Source(uri="ftp://host/x", format="csv")}, "source.uri"),
        ({"source": Source(uri="s3:///prefix", format="csv")}, "source.uri"),
        ({"source": Source(uri="s3://Upper/x", format="csv")}, "source.uri"),
        ({"source": Source(uri="file://relative/dir", format="csv")}, "source.uri"),
        ({"source": Source(uri="file:///data/../etc", format="csv")}, "source.uri"),
        ({"source": Source(uri="", format="csv")}, "source.uri"),
        ({"source": Source(uri="s3://bucket/x/", format="xls")}, "source.format"),
        ({"source": Source(uri="s3://bucket/x/", format="")}, "source.format"),
        ({"source": Source(uri="s3://bucket/x/", format="csv", pattern="../*.csv")}, "source.pattern"),
        ({"source": Source(uri="s3://bucket/x/", format="csv", options={"bad key": "1"})}, "source.options.bad key"),
        ({"source": Source(uri="file:///d/", format="csv", endpoint_url="http://minio:9000")}, "source.endpoint_url"),
        ({"source": Source(uri="s3://bucket/x/", format="csv", endpoint_url="minio:9000")}, "source.endpoint_url"),
        ({"source": Source(uri="s3://bucket/x/", format="csv", region="US EAST")}, "source.region"),
        ({"source": Source(uri="s3://bucket/x/", format="csv", credentials_ref="secret")}, "source.credentials_ref"),
        ({"destination": Destination(table="")}, "destination.table"),
        ({"destination": Destination(table="justone")}, "destination.table"),
        ({"destination": Destination(table="a.b.c.d")}, "destination.table"),
        ({"destination": Destination(table="db.1abc")}, "destination.table"),
        ({"destination": Destination(table="db.t;drop")}, "destination.table"),
        ({"destination": Destination(table="db.t", write_mode="upsert")}, "destination.write_mode"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 101}, "max_retries"),
        ({"max_files_per_run": 0}, "max_files_per_run"),
        ({"max_bytes_per_run": -5}, "max_bytes_per_run"),
        ({"schedule": Schedule(cron="every day")}, "schedule.cron"),
        ({"schedule": Schedule(cron="0 2 * * * *")}, "schedule.cron"),
        ({"schedule": Schedule(cron="61 2 * * *")}, "schedule.cron"),
        ({"schedule": Schedule(cron="0 2 * * *", timezone="Mars/Base")}, "schedule.timezone"),
        ({"webhook": Webhook(url="ftp://hooks.example.com/x", secret=SECRET)}, "webhook.url"),
        ({"webhook": Webhook(url="https:///no-host", secret=SECRET)}, "webhook.url"),
        ({"webhook": Webhook(url="https://u:p@hooks.example.com/", secret=SECRET)}, "webhook.url"),
        ({"webhook": Webhook(url="https://hooks.example.com/" + "x" * 2048, secret=SECRET)}, "webhook.url"),
        ({"webhook": Webhook(url="https://hooks.example.com/", secret="short")}, "webhook.secret"),
        ({"webhook": Webhook(url="https://hooks.example.com/", secret=SECRET, max_attempts=0)}, "webhook.max_attempts"),
        (
            {"webhook": Webhook(url="https://hooks.example.com/", secret=SECRET, max_attempts=21)},
            "webhook.max_attempts",
        ),
    ],
)
def test_each_violation_names_its_field(change: dict[str, object], field: str) -> None:
    violations = violated_fields(replace(VALID, **change))  # type: ignore[arg-type]
    assert field in violations, violations
    assert violations[field]


def test_all_violations_are_reported_together() -> None:
    broken = replace(VALID, name="", source=Source(uri="ftp://x", format="xls"), max_retries=-1)
    with pytest.raises(InvalidArgument) as caught:
        validate(broken)
    assert {v.field for v in caught.value.violations} == {"name", "source.uri", "source.format", "max_retries"}
    assert "source.format" in caught.value.message


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ingestion_id": "users\n"}, "ingestion_id"),
        ({"destination": Destination(table="db.t\n")}, "destination.table"),
        ({"source": Source(uri="s3://bucket-1\n/x/", format="csv")}, "source.uri"),
        ({"source": Source(uri="file:///data/\tin/", format="csv")}, "source.uri"),
        ({"source": Source(uri="s3://bucket-1/x/", format="csv", region="us-east-1\n")}, "source.region"),
        (
            {"source": Source(uri="s3://bucket-1/x/", format="csv", options={"header\n": "1"})},
            "source.options.header\n",
        ),
        ({"source": Source(uri="s3://b-1/x/", format="csv", credentials_ref="env:KEYS\n")}, "source.credentials_ref"),
        ({"metadata_columns": MetadataColumns(prefix="src_\n")}, "metadata_columns.prefix"),
    ],
)
def test_a_trailing_newline_does_not_pass_a_name_grammar(change: dict[str, object], field: str) -> None:
    assert field in violated_fields(replace(VALID, **change))  # type: ignore[arg-type]


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "15 3 31 4,6,9,11 *"])
def test_a_cron_expression_that_never_fires_is_refused(cron: str) -> None:
    # Valid syntax, but no date matches: computing the next fire time used to fail with an internal error.
    assert "never fires" in violated_fields(replace(VALID, schedule=Schedule(cron=cron)))["schedule.cron"]
    validate(replace(VALID, schedule=Schedule(cron="0 0 29 2 *")))  # leap years only, but it fires
