"""What runs inside a backup Job: dump, archive, restore, checksum (filled by the runner work)."""
