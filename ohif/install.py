"""Unpack OHIF's published build (npm package ``@ohif/app``) to be served under ``/ohif/``.

The package ships a finished web app built to live at ``/``; Orthanc serves it at
``/ohif/`` (the plugin's viewer route), so its base path is rewritten in the few places
the build hard-codes it, and our ``app-config.js`` (Orthanc's DICOMweb, same origin)
replaces the package's. The version is pinned in the Makefile: each rewrite must match,
or this fails instead of installing a half-working viewer.

Usage: python3 ohif/install.py ohif-app-<version>.tgz ohif/dist
"""

from __future__ import annotations

import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

BASE = "/ohif/"
HERE = Path(__file__).resolve().parent
# onnxruntime-web (136 MB) serves only the AI segmentation tools, which are not offered.
LEFT_OUT = ("ort",)


def _rewrite(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    if old not in text:
        raise SystemExit(f"{path.name}: {old!r} not found; is this the pinned OHIF version?")
    path.write_text(text.replace(old, new), encoding="utf-8")


def rebase(dist: Path) -> None:
    """Every place the build says "/" for its own files now says BASE."""
    index = dist / "index.html"
    _rewrite(index, 'window.PUBLIC_URL="/"', f'window.PUBLIC_URL="{BASE}"')
    _rewrite(index, 'href="/', f'href="{BASE}')
    _rewrite(index, 'src="/', f'src="{BASE}')
    chunks = [p for p in dist.glob("*.js") if '__webpack_require__.p = "/"' in p.read_text()]
    if not chunks:
        raise SystemExit("no webpack public path found; is this the pinned OHIF version?")
    for chunk in chunks:
        _rewrite(chunk, '__webpack_require__.p = "/"', f'__webpack_require__.p = "{BASE}"')
    for sheet in dist.glob("*.css"):
        if "url(/" in sheet.read_text(encoding="utf-8"):
            _rewrite(sheet, "url(/", f"url({BASE}")
    _rewrite(dist / "manifest.json", '"/assets/', f'"{BASE}assets/')
    (bundle,) = dist.glob("app.bundle.*.js")
    _rewrite(bundle, "'/dicom-microscopy-viewer/", f"'{BASE}dicom-microscopy-viewer/")


def _plain_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    """Files and folders under package/ only (Debian's Python 3.11.2 has no extract filter)."""
    members = archive.getmembers()
    for member in members:
        parts = Path(member.name).parts
        if not (member.isfile() or member.isdir()) or parts[:1] != ("package",) or ".." in parts:
            raise SystemExit(f"unexpected entry in the OHIF package: {member.name}")
    return members


def keep_signed_in(dist: Path) -> None:
    """Load our session keeper (html/session.js, served at /login/) before OHIF starts."""
    keeper = '<script src="/login/session.js"></script>'
    keeper += "<script>window.hounsfieldSession.start()</script>"
    _rewrite(dist / "index.html", "</head>", keeper + "</head>")


def brand(dist: Path) -> None:
    """The tab carries the product's name (the header's logo is app-config's whiteLabeling)."""
    _rewrite(dist / "index.html", "<title>OHIF Viewer</title>", "<title>Hounsfield</title>")


def install(tarball: Path, target: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        with tarfile.open(tarball) as archive:
            archive.extractall(scratch, members=_plain_members(archive))
        dist = Path(scratch) / "package" / "dist"
        for name in LEFT_OUT:
            shutil.rmtree(dist / name, ignore_errors=True)
        for source_map in dist.rglob("*.map"):
            source_map.unlink()
        rebase(dist)
        keep_signed_in(dist)
        brand(dist)
        shutil.copyfile(HERE / "app-config.js", dist / "app-config.js")
        shutil.rmtree(target, ignore_errors=True)
        shutil.move(dist, target)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    install(Path(sys.argv[1]), Path(sys.argv[2]))
