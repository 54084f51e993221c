"""Data: readers of the real on-disk formats, annotations, the shared record, TFDS
loading, the grain input pipeline, device-resident data and the built-in demo data."""
