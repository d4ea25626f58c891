"""Model snapshots: a zip of the VW model, the Q-table and the feature settings, with a SHA-256 manifest.

Written to a temporary file, fsynced and renamed, so a reader never sees half a snapshot;
the checksum is verified before the model is handed to Vowpal Wabbit. No pickle anywhere.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "feedloop-model/1"


class SnapshotError(ValueError):
    pass


@dataclass
class Snapshot:
    version: str
    model: bytes
    settings: dict  # PolicyConfig fields and anything else needed to rebuild the features
    qvalues: list = field(default_factory=list)  # [item_id, segment, q, n]
    meta: dict = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        files = {
            "model.vw": self.model,
            "qvalues.json": json.dumps(self.qvalues).encode(),
            "settings.json": json.dumps(self.settings, sort_keys=True).encode(),
        }
        manifest = {
            "format": FORMAT,
            "version": self.version,
            "meta": self.meta,
            "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()},
        }
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", json.dumps(manifest, sort_keys=True))
            for name, data in files.items():
                z.writestr(name, data)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> Snapshot:
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                manifest = json.loads(z.read("manifest.json"))
                if manifest.get("format") != FORMAT:
                    raise SnapshotError(f"not a feedloop model archive (format {manifest.get('format')!r})")
                files = {name: z.read(name) for name in manifest["sha256"]}
        except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
            raise SnapshotError(f"not a feedloop model archive: {exc}") from None
        for name, digest in manifest["sha256"].items():
            if hashlib.sha256(files[name]).hexdigest() != digest:
                raise SnapshotError(f"checksum mismatch in {name}: the archive is damaged")
        return cls(
            version=manifest["version"],
            model=files["model.vw"],
            settings=json.loads(files["settings.json"]),
            qvalues=json.loads(files["qvalues.json"]),
            meta=manifest.get("meta", {}),
        )


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_stamp(path: Path) -> tuple[int, int] | None:
    """(mtime, size): a cheap way to notice that a snapshot file was replaced."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size
