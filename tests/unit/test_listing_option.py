"""source.listing: validation naming the field, defaults, the proto and stored forms, PATCH paths."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest

from autoloader.control.v1 import control_pb2 as pb
from services.control.convert import ingestion_from_pb, ingestion_to_pb
from services.control.models import Destination, Ingestion, Listing, Source, updatable_paths
from services.control.validation import validate
from services.shared.errors import InvalidArgument

VALID = Ingestion(
    ingestion_id="orders",
    name="Orders",
    source=Source(uri="s3://landing/orders/", format="json"),
    destination=Destination(table="raw.orders"),
)


def violations_of(listing: Listing) -> dict[str, str]:
    with pytest.raises(InvalidArgument) as caught:
        validate(replace(VALID, source=replace(VALID.source, listing=listing)))
    return {v.field: v.description for v in caught.value.violations}


def test_full_and_incremental_listings_are_valid() -> None:
    validate(VALID)
    validate(replace(VALID, source=replace(VALID.source, listing=Listing(mode="incremental"))))
    validate(
        replace(
            VALID,
            source=replace(
                VALID.source,
                listing=Listing(mode="incremental", full_listing_every_runs=1, full_listing_interval_seconds=3600),
            ),
        )
    )


@pytest.mark.parametrize(
    ("listing", "field"),
    [
        (Listing(mode="sometimes"), "source.listing.mode"),
        (Listing(mode="incremental", full_listing_every_runs=0), "source.listing.full_listing_every_runs"),
        (Listing(mode="incremental", full_listing_every_runs=10_001), "source.listing.full_listing_every_runs"),
        (Listing(mode="incremental", full_listing_interval_seconds=-1), "source.listing.full_listing_interval_seconds"),
        (
            Listing(mode="incremental", full_listing_interval_seconds=32 * 24 * 3600),
            "source.listing.full_listing_interval_seconds",
        ),
    ],
)
def test_each_listing_violation_names_its_field(listing: Listing, field: str) -> None:
    violations = violations_of(listing)
    assert list(violations) == [field]
    assert violations[field]


def test_an_unset_listing_is_a_full_one_with_the_default_backstop() -> None:
    ingestion = ingestion_from_pb(pb.Ingestion(source=pb.Source(uri="s3://b/p/")))
    assert ingestion.source.listing == Listing(mode="full", full_listing_every_runs=10, full_listing_interval_seconds=0)
    incremental = ingestion_from_pb(pb.Ingestion(source=pb.Source(listing=pb.Listing(mode="incremental"))))
    assert incremental.source.listing == Listing(mode="incremental", full_listing_every_runs=10)


def test_the_listing_round_trips_through_the_proto_and_the_stored_json() -> None:
    listing = Listing(mode="incremental", full_listing_every_runs=5, full_listing_interval_seconds=600)
    ingestion = replace(VALID, source=replace(VALID.source, listing=listing))
    assert ingestion_from_pb(ingestion_to_pb(ingestion)).source.listing == listing
    stored = json.loads(json.dumps(asdict(ingestion.source)))
    assert Source.from_dict(stored) == ingestion.source
    # Sources stored before the option existed read as full listings.
    del stored["listing"]
    assert Source.from_dict(stored).listing == Listing()


def test_a_patch_may_name_each_listing_field() -> None:
    paths = updatable_paths()
    assert {"source.listing", "source.listing.mode", "source.listing.full_listing_every_runs"} <= paths
    assert "source.listing.full_listing_interval_seconds" in paths
