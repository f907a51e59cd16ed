"""Dataset archives for the upload tests: class folders of PNGs, save_to_disk folders and parquet files, built
in memory (good ones, and each kind of bad one)."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile


def png(size: tuple[int, int] = (8, 8), value: int = 0, mode: str = "RGB") -> bytes:
    from PIL import Image

    pixels = np.full((size[1], size[0], 3) if mode == "RGB" else (size[1], size[0]), value, dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def class_folder_files(classes: tuple[str, ...] = ("cat", "dog", "frog"), per_class: int = 5,
                       size: tuple[int, int] = (8, 8), prefix: str = "") -> dict[str, bytes]:
    return {f"{prefix}{name}/{i}.png": png(size, value=40 * k + i) for k, name in enumerate(classes)
            for i in range(per_class)}


def zip_bytes(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def tar_bytes(files: dict[str, bytes], *, links: dict[str, str] | None = None) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            archive.addfile(info)
    return out.getvalue()


def zip_with_symlink() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in class_folder_files().items():
            archive.writestr(name, data)
        info = zipfile.ZipInfo("cat/secret.png")
        info.external_attr = (0o120777 << 16)  # a symbolic link, as Info-ZIP stores it
        archive.writestr(info, "/etc/passwd")
    return out.getvalue()


def saved_dataset_zip(folder: Path, n_classes: int = 3) -> bytes:
    """A ``save_to_disk`` DatasetDict (train/validation) zipped, as a user would archive the folder."""
    import datasets

    features = datasets.Features(image=datasets.Image(),
                                 label=datasets.ClassLabel(names=[f"c{k}" for k in range(n_classes)]))
    parts = {}
    for split, n in (("train", 12), ("validation", 6)):
        labels = [i % n_classes for i in range(n)]
        parts[split] = datasets.Dataset.from_dict(
            {"image": [{"bytes": png(value=10 * i), "path": None} for i in range(n)], "label": labels},
            features=features)
    saved = folder / "my-dataset"
    datasets.DatasetDict(parts).save_to_disk(str(saved))
    return zip_bytes({str(path.relative_to(folder)): path.read_bytes() for path in saved.rglob("*") if path.is_file()})


def parquet_bytes(n: int = 12, n_classes: int = 2) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"image": [{"bytes": png(value=20 * i), "path": None} for i in range(n)],
                      "label": [i % n_classes for i in range(n)]})
    out = io.BytesIO()
    pq.write_table(table, out)
    return out.getvalue()


def upload(data: bytes, name: str = "data.zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/octet-stream")
