"""Validated import files that nobody confirmed do not pile up."""
import os
import time
from pathlib import Path

from django.core.files.uploadedfile import SimpleUploadedFile


def test_abandoned_validated_files_are_removed_at_the_next_upload(client_for, east_rep, settings):
    folder = Path(settings.MEDIA_ROOT) / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    old, fresh = folder / "old.csv", folder / "fresh.csv"
    old.write_text("x")
    fresh.write_text("x")
    os.utime(old, (time.time() - 2 * 86400, time.time() - 2 * 86400))

    data = b"ID,Name,Owner,Business Unit,Description\n,Fresh Co,east_rep,East,\n"
    client_for(east_rep).post("/accounts/import/", {"file": SimpleUploadedFile("a.csv", data, "text/csv")})
    assert not old.exists() and fresh.exists()
