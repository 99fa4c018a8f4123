"""ZIP archives uploaded to POST /instances (a CD's content, a study exported elsewhere).

Read member by member within Limits.UploadBytes (what each member announces and what it
inflates to) and Limits.ArchiveMembers, so a small archive that inflates to terabytes
is refused instead of filling memory.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

from hounsfield.untrusted import InputRefused

ZIP_MAGIC = b"PK\x03\x04"


def is_zip(body: bytes) -> bool:
    return body.startswith(ZIP_MAGIC)


def members(body: bytes, *, max_members: int, max_bytes: int) -> Iterator[tuple[str, bytes]]:
    """(name, content) of each file in the archive, in order, folders left out."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(body))
        entries = [entry for entry in archive.infolist() if not entry.is_dir()]
    except (zipfile.BadZipFile, ValueError, EOFError) as error:
        raise InputRefused(f"malformed ZIP archive: {error}") from error
    if len(entries) > max_members:
        raise InputRefused(
            f"ZIP archive holds more than {max_members} files", limit="Limits.ArchiveMembers"
        )
    announced = sum(entry.file_size for entry in entries)
    if announced > max_bytes:
        raise InputRefused(
            f"ZIP archive inflates to {announced} bytes, over {max_bytes}",
            limit="Limits.UploadBytes",
            too_large=True,
        )
    for entry in entries:
        try:
            with archive.open(entry) as member:
                content = member.read(entry.file_size + 1)
        except (zipfile.BadZipFile, NotImplementedError, ValueError, EOFError) as error:
            raise InputRefused(f"ZIP archive member {entry.filename!r}: {error}") from error
        if len(content) > entry.file_size:  # inflates past what it announced
            raise InputRefused(f"ZIP archive member {entry.filename!r} is larger than announced")
        yield entry.filename, content
