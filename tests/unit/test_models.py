from __future__ import annotations

from services.control.models import Destination, Ingestion, Schedule, Source, apply_paths, updatable_paths


def test_updatable_paths_cover_nested_fields_but_not_output_only_ones() -> None:
    paths = updatable_paths()
    assert {"name", "source", "source.uri", "source.options", "schedule.cron", "destination.table"} <= paths
    assert not paths & {"ingestion_id", "owner", "create_time", "update_time"}


def test_nested_path_changes_only_that_field() -> None:
    current = Ingestion(name="a", source=Source(uri="s3://b/x/", format="csv", pattern="*.csv"))
    changes = Ingestion(source=Source(format="json"))
    updated = apply_paths(current, changes, ["source.format"])
    assert updated.source == Source(uri="s3://b/x/", format="json", pattern="*.csv")
    assert updated.name == "a"


def test_whole_message_path_replaces_it_and_optional_fields_clear() -> None:
    current = Ingestion(destination=Destination(table="a.b"), max_files_per_run=10, schedule=Schedule(cron="0 * * * *"))
    changes = Ingestion(destination=Destination(table="c.d"))
    updated = apply_paths(current, changes, ["destination", "max_files_per_run", "schedule"])
    assert updated.destination == Destination(table="c.d")
    assert updated.max_files_per_run is None
    assert updated.schedule is None


def test_nested_path_into_absent_message_takes_the_new_one() -> None:
    updated = apply_paths(Ingestion(), Ingestion(schedule=Schedule(cron="0 2 * * *")), ["schedule.cron"])
    assert updated.schedule == Schedule(cron="0 2 * * *")
