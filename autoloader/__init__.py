"""Autoloader: incremental, exactly-once file ingestion into Apache Iceberg tables."""

__version__ = "0.1.0"
