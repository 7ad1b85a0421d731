"""aspdigest: conference records to digests, threads and cards."""

__version__ = "0.1.0"
