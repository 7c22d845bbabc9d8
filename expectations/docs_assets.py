"""GX Data Docs, offline: every stylesheet, script, font and image is a local file.

GX's Data Docs templates load their assets from CDNs. Each of those is a file of a
pinned npm package; `make install` fetches the packages from the npm registry once
(`python -m expectations.docs_assets`), and `localize` copies the files into a built site
and points its pages at them. Hyperlinks to GX's documentation stay links.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import tarfile
import tempfile
from pathlib import Path

ASSETS_DIR_ENV = "LAKEHOUSE_DOCS_ASSETS_DIR"
_FC = "dist/extensions/filter-control/bootstrap-table-filter-control"
# CDN URL (as in GX's templates) -> (npm package@version, file in the package)
ASSETS: dict[str, tuple[str, str]] = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css":
        ("bootstrap@4.3.1", "dist/css/bootstrap.min.css"),
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js":
        ("bootstrap@4.3.1", "dist/js/bootstrap.min.js"),
    "https://code.jquery.com/jquery-3.7.1.min.js": ("jquery@3.7.1", "dist/jquery.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js":
        ("popper.js@1.12.9", "dist/umd/popper.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        ("bootstrap-datepicker@1.9.0", "dist/css/bootstrap-datepicker.min.css"),
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        ("bootstrap-datepicker@1.9.0", "dist/js/bootstrap-datepicker.min.js"),
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css":
        ("@fortawesome/fontawesome-free@6.6.0", "css/all.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css":
        ("bootstrap-table@1.19.1", "dist/bootstrap-table.min.css"),
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js":
        ("bootstrap-table@1.19.1", "dist/bootstrap-table.min.js"),
    f"https://unpkg.com/bootstrap-table@1.19.1/{_FC}.min.js": ("bootstrap-table@1.19.1", f"{_FC}.min.js"),
    f"https://unpkg.com/bootstrap-table@1.19.0/{_FC}.css": ("bootstrap-table@1.19.1", f"{_FC}.css"),
    f"https://unpkg.com/bootstrap-table@1.19.0/{_FC}.min.css": ("bootstrap-table@1.19.1", f"{_FC}.min.css"),
    "https://cdn.jsdelivr.net/npm/vega@5": ("vega@5.33.1", "build/vega.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-lite@5": ("vega-lite@5.23.0", "build/vega-lite.min.js"),
    "https://cdn.jsdelivr.net/npm/vega-embed@6": ("vega-embed@6.29.0", "build/vega-embed.min.js"),
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        ("@forevolve/bootstrap-dark@1.1.0", "dist/css/bootstrap-prefers-dark.css"),
}  # fmt: skip
# folders a stylesheet refers to relatively (font-awesome's fonts)
EXTRA_DIRS = {"@fortawesome/fontawesome-free@6.6.0": "webfonts"}
# GX's logo from its web-assets bucket: the same image ships in the site's static/images
LOGO = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/"
                  r"logo-long\.png(\?[^\"']*)?")  # fmt: skip


INTEGRITY = re.compile(r"\s(?:integrity|crossorigin)=\"[^\"]*\"")
STATIC = re.compile(r"\b(src|href)=\"(?:\./|(?:\.\./)+)?static/")


def default_dir() -> Path:
    configured = os.environ.get(ASSETS_DIR_ENV)
    if configured:
        return Path(configured).resolve()
    return (Path(sys.prefix).parent / ".docs_assets").resolve()


def _local(package: str, path: str) -> str:
    return f"{package.replace('/', '__')}/{path}"


def _fetch(package: str, folder: Path) -> Path:
    """`name@version`'s tarball, straight from the npm registry (no npm needed: the
    container build and a machine without Node fetch it the same way)."""
    import requests
    from tenacity import retry, stop_after_attempt, wait_exponential

    name, version = package.rsplit("@", 1)
    registry = os.environ.get("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org").rstrip("/")
    url = f"{registry}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"

    @retry(stop=stop_after_attempt(4), wait=wait_exponential(0.5, max=8), reraise=True)
    def get() -> bytes:
        response = requests.get(url, timeout=60)
        response.raise_for_status()
        return response.content

    try:
        body = get()
    except requests.RequestException as exc:
        raise RuntimeError(f"Data Docs assets: could not fetch {package} ({url}): {exc}") from None
    path = folder / f"{name.replace('/', '__')}-{version}.tgz"
    path.write_bytes(body)
    return path


def install(target: Path | None = None) -> Path:
    """Fetch the pinned packages from the npm registry (once) and keep the needed files."""
    target = target or default_dir()
    wanted: dict[str, set[str]] = {}
    for package, path in ASSETS.values():
        wanted.setdefault(package, set()).add(path)
    missing = [p for p, files in wanted.items()
               if not all((target / _local(p, f)).exists() for f in files)]  # fmt: skip
    if not missing:
        return target
    with tempfile.TemporaryDirectory() as tmp:
        for package in missing:
            tgz = _fetch(package, Path(tmp))
            with tarfile.open(tgz) as archive:
                members = wanted[package] | {EXTRA_DIRS.get(package, "\0")}
                for member in archive.getmembers():
                    inner = member.name.split("/", 1)[-1]  # package/..., or the name's folder
                    if member.isfile() and any(inner == m or inner.startswith(m + "/")
                                               for m in members):  # fmt: skip
                        dest = target / _local(package, inner)
                        dest.parent.mkdir(parents=True, exist_ok=True)
                        source = archive.extractfile(member)
                        assert source is not None
                        dest.write_bytes(source.read())
    return target


def localize(site: Path, assets: Path | None = None) -> None:
    """Copy the assets into `site/static/vendor` and point every page at them."""
    assets = install(assets)
    vendor = site / "static" / "vendor"
    shutil.copytree(assets, vendor, dirs_exist_ok=True)
    for page in site.rglob("*.html"):
        up = os.path.relpath(site, page.parent)
        text = page.read_text()
        for url, (package, path) in ASSETS.items():
            text = text.replace(f'"{url}"', f'"{up}/static/vendor/{_local(package, path)}"')
        text = LOGO.sub(f"{up}/static/images/logo-long.png", text)
        # GX's own relative links to static/ are a level short on validation pages
        text = STATIC.sub(rf'\1="{up}/static/', text)
        # a CDN's subresource-integrity and CORS attributes on a file:// script make the
        # browser refuse it (the tabs then do nothing): local files need neither
        text = INTEGRITY.sub("", text)
        page.write_text(text)


def external_assets(site: Path) -> list[str]:
    """Stylesheets, scripts and images of the site that would need the network."""
    found = []
    pattern = re.compile(r"<(?:script|img|link)\b[^>]*?(?:src|href)=\"(https?://[^\"]+)\"")
    for page in site.rglob("*.html"):
        found += [f"{page.name}: {m}" for m in pattern.findall(page.read_text())]
    return found


if __name__ == "__main__":
    print(f"Data Docs assets in {install()}")
