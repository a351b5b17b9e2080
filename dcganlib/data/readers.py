"""One file → uint8 slices at the training size.

Formats (by suffix, :data:`SUPPORTED`):

* PNG / JPEG / TIFF / BMP (8- or 16-bit, gray, RGB, RGBA, palette; a multi-page TIFF is a stack);
* ``.npy``: one 2-D slice ``(H, W)``, a stack ``(N, H, W)``, ``(N, H, W, 1|3|4)`` or ``(N, 1|3|4, H, W)``
  (:func:`image_stack`); never unpickled;
* DICOM (``.dcm``, ``.dicom`` or any file with the ``DICM`` preamble): single- or multi-frame, read with
  pydicom; RescaleSlope/RescaleIntercept applied, then the first WindowCenter/WindowWidth when present
  (the DICOM linear window) else the percentile scaling below, per file; MONOCHROME1 inverted. A
  compressed transfer syntax whose decoder is not installed is refused naming the package. The slices
  of a series folder are ordered and grouped by subject from their headers (:func:`dicom_header`);
* NIfTI ``.nii`` / ``.nii.gz``: a 3-D volume, reoriented to RAS (``nibabel.as_closest_canonical``) and cut
  along ``config.nifti_axis`` (2 = axial); slices with under 2 % tissue (voxels above 5 % of the range)
  are dropped; non-square voxels are resampled to square pixels.

Values: 8-bit images keep their grey levels; anything else (16-bit, float, NIfTI) is scaled per file (per
volume) from its 0.5th percentile to the 99.5th percentile of the values above it, clipped, to uint8.
Colour becomes one grey channel (ITU-R 601 luma; alpha composited onto black) unless ``channels == 3``;
grey becomes RGB by repetition.

Size: every slice is resized so its longest side is ``image_size`` (Lanczos; aspect kept) and padded with
black to a square. A slice whose longest side is *smaller* than ``image_size`` is reported, never
upsampled. A header declaring more than :data:`MAX_IMAGE_PIXELS` pixels (or a NIfTI volume over
:data:`MAX_NIFTI_VOXELS` voxels) is refused as a possible decompression bomb.

Generated images (``evaluate --images``) are read by :mod:`dcganlib.data.generated` instead: with the
value range they were saved in (:data:`dcganlib.pixels.GENERATED_VALUES_RULE`), never scaled per file.

Failures: a file the decoder libraries cannot read (truncated, corrupt, empty, not an image) raises
:class:`UnreadableFile` with the reason, which :mod:`dcganlib.data.loading` turns into a skipped-file
count; only the decoders' documented error types are caught, so a bug in this module still surfaces.
"""

from __future__ import annotations

import math
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

from ..config import Config
from ..errors import DataError
from ..pixels import TISSUE_LEVEL

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NUMPY_SUFFIXES = (".npy",)
NIFTI_SUFFIXES = (".nii", ".nii.gz")
#: DICOM files are also recognised without a suffix (scanners often write none) by their preamble.
DICOM_SUFFIXES = (".dcm", ".dicom")
SUPPORTED = "PNG/JPEG/TIFF/BMP images, .npy arrays, NIfTI .nii/.nii.gz volumes or DICOM files/series"
#: Larger images are refused before decoding (Pillow's own default guard is 89 M pixels).
MAX_IMAGE_PIXELS = 8192 * 8192
#: Larger NIfTI volumes are refused from their header (a small .nii.gz can inflate to many GB).
MAX_NIFTI_VOXELS = 512**3
MIN_TISSUE_FRACTION = 0.02  # NIfTI slices with less tissue than this are dropped
PERCENTILES = (0.5, 99.5)
# What Pillow's decoders raise for malformed files (struct.error and IndexError from TIFF/BMP headers).
PIL_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, struct.error, IndexError)


class UnreadableFile(Exception):
    """A file the decoders cannot read; it is skipped (with this reason) rather than stopping the load."""


def suffix_of(path: Path) -> str:
    """The lower-case suffix, with ``.nii.gz`` as one suffix."""
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def is_dicom(path: Path) -> bool:
    """A DICOM Part 10 file: ``DICM`` at byte 128, after the preamble (whatever the file name)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def is_supported(path: Path) -> bool:
    suffix = suffix_of(path)
    return suffix in IMAGE_SUFFIXES + NUMPY_SUFFIXES + NIFTI_SUFFIXES + DICOM_SUFFIXES or is_dicom(path)


# ------------------------------------------------------------------------------------------------
# values
def robust_uint8(values: np.ndarray) -> np.ndarray:
    """Scale to uint8: low = 0.5th percentile; high = 99.5th percentile of the values above low."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise UnreadableFile("no finite values")
    low = float(np.percentile(finite, PERCENTILES[0]))
    above = finite[finite > low]
    high = float(np.percentile(above, PERCENTILES[1])) if above.size else low
    if high <= low:
        return np.zeros(values.shape, np.uint8)
    scaled = (np.nan_to_num(values.astype(np.float32), nan=low, posinf=high, neginf=low) - low) / (high - low)
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def to_channels(array: np.ndarray, channels: int) -> np.ndarray:
    """(H, W) or (H, W, 3|4) uint8 → (H, W, channels); alpha composites onto black, RGB→gray is luma."""
    if array.ndim == 2:
        return array[..., None] if channels == 1 else np.repeat(array[..., None], 3, axis=-1)
    rgb = array[..., :3].astype(np.float32)
    if array.shape[-1] == 4:
        rgb *= array[..., 3:4].astype(np.float32) / 255.0
    if channels == 3:
        return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    return np.clip(np.rint(gray), 0, 255).astype(np.uint8)[..., None]


def fit(array: np.ndarray, size: int) -> np.ndarray:
    """(H, W, C) uint8 with max(H, W) >= size → (size, size, C): Lanczos resize keeping aspect, black pad."""
    from PIL import Image

    height, width = array.shape[:2]
    scale = size / max(height, width)
    new_h, new_w = max(1, round(height * scale)), max(1, round(width * scale))
    if (new_h, new_w) != (height, width):
        source = Image.fromarray(np.ascontiguousarray(array if array.shape[-1] == 3 else array[..., 0]))
        array = np.asarray(source.resize((new_w, new_h), Image.Resampling.LANCZOS)).reshape(new_h, new_w, -1)
    out = np.zeros((size, size, array.shape[-1]), np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    out[top:top + new_h, left:left + new_w] = array
    return out


# ------------------------------------------------------------------------------------------------
# the three readers: file → list of uint8 planes (H, W) or (H, W, 3|4)
def _pil_frame_to_uint8(frame: Any) -> np.ndarray:
    """A Pillow frame → uint8 (H, W) or (H, W, 3|4)."""
    mode = frame.mode
    if mode in ("L", "RGB", "RGBA"):
        return np.asarray(frame)
    if mode == "1":
        return np.asarray(frame, dtype=np.uint8) * 255
    if mode == "LA":
        la = np.asarray(frame).astype(np.float32)
        return np.rint(la[..., 0] * la[..., 1] / 255.0).astype(np.uint8)
    if mode == "P":
        return np.asarray(frame.convert("RGBA" if "transparency" in frame.info else "RGB"))
    if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float grey
        return robust_uint8(np.asarray(frame).astype(np.float32))
    return np.asarray(frame.convert("RGB"))


def _check_pixels(path: Path, width: int, height: int) -> None:
    # Checked from the header, before any pixel is decompressed.
    if width * height > MAX_IMAGE_PIXELS:
        raise DataError(f"refusing {path}: it declares {width}x{height} = {width * height} pixels, more "
                        f"than the limit of {MAX_IMAGE_PIXELS} (a possible decompression bomb); "
                        "remove the file or downscale it")


def _pil_frames(path: Path) -> list[Any]:
    """Every frame of a Pillow-readable image, loaded, after the pixel-count guard."""
    from PIL import Image, ImageSequence, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            _check_pixels(path, *image.size)
            frames = []
            for frame in ImageSequence.Iterator(image):
                _check_pixels(path, *frame.size)  # TIFF pages may each declare their own size
                frame.load()
                frames.append(frame.copy())
    except Image.DecompressionBombError as exc:  # raised by Image.open before our own check
        raise DataError(f"refusing {path}: {exc} (Pillow's decompression bomb guard); remove the file or "
                        "downscale it") from None
    except UnidentifiedImageError:
        raise UnreadableFile("not a readable image") from None
    except PIL_ERRORS as exc:
        raise UnreadableFile(f"corrupt or truncated ({type(exc).__name__}: {exc})") from None
    return frames


def read_image(path: Path) -> list[np.ndarray]:
    """Every frame of a Pillow-readable image (one for PNG/JPEG/BMP, the pages of a TIFF)."""
    return [_pil_frame_to_uint8(frame) for frame in _pil_frames(path)]


def image_stack(array: np.ndarray) -> np.ndarray:
    """An array's images as ``(N, H, W)`` or ``(N, H, W, 3|4)``, from any of the layouts tools save:
    ``(H, W)``, ``(H, W, 1|3|4)``, ``(N, H, W)``, ``(N, H, W, 1|3|4)`` (Keras) and ``(N, 1|3|4, H, W)``
    (PyTorch). A last axis of 1, 3 or 4 after images wider than 4 px is channels; else a second axis of
    1, 3 or 4 is. Raises :class:`UnreadableFile` for other shapes."""
    channels = (1, 3, 4)
    if array.ndim == 3 and array.shape[-1] in channels and array.shape[-2] > 4:
        array = array[None]  # one image with channels
    elif array.ndim == 2:
        array = array[None, ..., None]
    elif array.ndim == 3:
        array = array[..., None]
    elif array.ndim == 4 and not (array.shape[-1] in channels and array.shape[-2] > 4) and array.shape[1] in channels:
        array = np.moveaxis(array, 1, -1)
    if array.ndim != 4 or array.shape[-1] not in channels:
        raise UnreadableFile(f"array of shape {array.shape}; expected (H, W), (N, H, W), (N, H, W, 1|3|4) or "
                             "(N, 1|3|4, H, W)")
    return array[..., 0] if array.shape[-1] == 1 else array


def _load_numpy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)  # never unpickle: .npy files may come from anywhere
    except (OSError, ValueError, EOFError) as exc:
        raise UnreadableFile(f"not a readable .npy array ({exc})") from None
    if not isinstance(array, np.ndarray) or array.size == 0 or array.dtype.kind not in "buif":
        raise UnreadableFile("empty or non-numeric array")
    return image_stack(array)


def read_numpy(path: Path) -> list[np.ndarray]:
    """The 2-D planes of a ``.npy`` array (read with ``allow_pickle=False``; layouts of :func:`image_stack`)."""
    array = _load_numpy(path)
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype != np.uint8:
        array = robust_uint8(array)
    return list(array)


def _load_nifti(path: Path) -> tuple[np.ndarray, tuple[float, float, float]]:
    """The RAS volume (float32) and voxel sizes of a 3-D NIfTI file, checked from the header first."""
    import nibabel as nib
    from nibabel.filebasedimages import ImageFileError
    from nibabel.spatialimages import HeaderDataError

    try:
        image = nib.load(str(path))
        shape = image.shape
        if len(shape) == 4 and shape[3] == 1:
            image = image.slicer[..., 0]
            shape = image.shape
        if len(shape) != 3:
            raise DataError(f"{path} is a {len(shape)}-D NIfTI image of shape {tuple(shape)}; pass 3-D volumes "
                            "(split a 4-D series into one volume per time point, e.g. with nibabel)")
        if math.prod(shape) > MAX_NIFTI_VOXELS:
            raise DataError(f"refusing {path}: its header declares {shape[0]}x{shape[1]}x{shape[2]} voxels, more "
                            f"than the limit of {MAX_NIFTI_VOXELS} (a possible decompression bomb); "
                            "remove the file or crop/downsample the volume")
        image = nib.as_closest_canonical(image)
        volume = np.asarray(image.get_fdata(dtype=np.float32))
        zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    except (ImageFileError, HeaderDataError, OSError, EOFError, ValueError, zlib.error) as exc:
        raise UnreadableFile(f"not a readable NIfTI volume ({type(exc).__name__}: {exc})") from None
    return volume, zooms


def read_nifti(path: Path, axis: int) -> tuple[list[np.ndarray], int]:
    """Slices (uint8, square pixels) with tissue along ``axis`` of the RAS volume, and the number dropped."""
    from PIL import Image

    volume, zooms = _load_nifti(path)
    volume = robust_uint8(volume)
    tissue = (volume > round(255 * TISSUE_LEVEL)).mean(axis=tuple(a for a in range(3) if a != axis))
    keep = np.nonzero(tissue >= MIN_TISSUE_FRACTION)[0]
    in_plane = [zooms[a] for a in range(3) if a != axis]
    slices = []
    for index in keep:
        # rot90: the second in-plane axis (A or S in RAS) points up, as radiologists view slices.
        plane = np.rot90(np.take(volume, index, axis=axis))
        row_mm, col_mm = in_plane[1], in_plane[0]
        if abs(row_mm - col_mm) > 0.01 * max(row_mm, col_mm):
            height = max(1, round(plane.shape[0] * row_mm / min(row_mm, col_mm)))
            width = max(1, round(plane.shape[1] * col_mm / min(row_mm, col_mm)))
            plane = np.asarray(Image.fromarray(np.ascontiguousarray(plane)).resize((width, height),
                                                                                   Image.Resampling.BILINEAR))
        slices.append(np.ascontiguousarray(plane))
    return slices, int(volume.shape[axis] - len(keep))


# ------------------------------------------------------------------------------------------------
# DICOM
#: What pydicom raises for a file it cannot parse or whose pixel data is short or inconsistent.
DICOM_ERRORS = (OSError, EOFError, ValueError, KeyError, AttributeError, struct.error, zlib.error)
#: Transfer-syntax UID prefix → the packages that decode it (pydicom decodes RLE and, through Pillow,
#: 8-bit JPEG and JPEG 2000 itself).
DICOM_DECODERS = {"1.2.840.10008.1.2.4.5": "pylibjpeg pylibjpeg-libjpeg",  # JPEG baseline / extended
                  "1.2.840.10008.1.2.4.7": "pylibjpeg pylibjpeg-libjpeg",  # JPEG lossless
                  "1.2.840.10008.1.2.4.8": "pylibjpeg pylibjpeg-libjpeg",  # JPEG-LS
                  "1.2.840.10008.1.2.4.9": "pylibjpeg pylibjpeg-openjpeg",  # JPEG 2000
                  "1.2.840.10008.1.2.4.20": "pylibjpeg pylibjpeg-openjpeg"}  # HTJ2K


@dataclass(frozen=True)
class DicomHeader:
    """What discovery and the split need from a DICOM file, read without its pixels."""

    subject: Optional[str]  # PatientID, else StudyInstanceUID, else None
    series: str  # SeriesInstanceUID ("" when absent)
    position: Optional[float]  # ImagePositionPatient along the slice normal (mm)
    instance: Optional[int]  # InstanceNumber


def dicom_header(path: Path) -> Optional[DicomHeader]:
    """The :class:`DicomHeader` of a DICOM file, or None when pydicom cannot parse it (then the file is
    skipped at decoding, with the reason)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        subject = str(ds.get("PatientID", "") or ds.get("StudyInstanceUID", "") or "").strip() or None
        position = None
        if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds:
            orientation = np.asarray([float(v) for v in ds.ImageOrientationPatient], np.float64)
            normal = np.cross(orientation[:3], orientation[3:])
            position = float(np.dot(normal, [float(v) for v in ds.ImagePositionPatient]))
        instance = ds.get("InstanceNumber")
        return DicomHeader(subject, str(ds.get("SeriesInstanceUID", "")), position,
                           int(instance) if instance not in (None, "") else None)
    except (InvalidDicomError, *DICOM_ERRORS, TypeError):
        return None


def _first(value: Any) -> float:
    """The first of a possibly multi-valued DICOM number (WindowCenter may hold several windows)."""
    from pydicom.multival import MultiValue

    return float(value[0]) if isinstance(value, MultiValue) else float(value)


def _window(values: np.ndarray, center: float, width: float) -> np.ndarray:
    """The DICOM linear VOI window (PS3.3 C.11.2.1.2): ``((x − (c − 0.5)) / (w − 1) + 0.5) · 255``, clipped."""
    scaled = ((values - (center - 0.5)) / max(width - 1.0, 1e-6) + 0.5) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def read_dicom(path: Path) -> list[np.ndarray]:
    """The frames of a DICOM file as uint8 planes (see the module docstring)."""
    import pydicom
    from pydicom.errors import InvalidDicomError
    from pydicom.pixels import apply_rescale

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, *DICOM_ERRORS) as exc:
        raise UnreadableFile(f"not a readable DICOM file ({type(exc).__name__}: {exc})") from None
    if "PixelData" not in ds:
        raise UnreadableFile("a DICOM file without pixel data (e.g. a report or a structure set)")
    rows, columns = int(ds.get("Rows", 0) or 0), int(ds.get("Columns", 0) or 0)
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    _check_pixels(path, columns, rows)
    if rows * columns * frames > MAX_NIFTI_VOXELS:
        raise DataError(f"refusing {path}: its header declares {frames} frames of {columns}x{rows} pixels, more "
                        f"than the limit of {MAX_NIFTI_VOXELS} (a possible decompression bomb); remove the file")
    syntax = getattr(ds, "file_meta", {}).get("TransferSyntaxUID")
    try:
        pixels = ds.pixel_array
    except (RuntimeError, NotImplementedError) as exc:  # pydicom: no installed plugin can decode the syntax
        if syntax is not None and syntax.is_compressed:
            package = next((p for prefix, p in DICOM_DECODERS.items() if syntax.startswith(prefix)), "python-gdcm")
            raise DataError(f"cannot decode {path}: its transfer syntax {syntax.name} needs a decoder that is not "
                            f"installed; install it with: pip install {package}") from None
        raise UnreadableFile(f"DICOM pixel data cannot be decoded ({type(exc).__name__}: {exc})") from None
    except DICOM_ERRORS as exc:
        raise UnreadableFile(f"DICOM pixel data is damaged ({type(exc).__name__}: {exc})") from None
    if frames == 1:
        pixels = pixels[None]
    colour = int(ds.get("SamplesPerPixel", 1) or 1) > 1
    if colour:  # pydicom returns RGB (it converts YBR); 8-bit keeps its levels
        planes = pixels if pixels.dtype == np.uint8 else robust_uint8(pixels)
        return list(np.asarray(planes))
    values = np.asarray(apply_rescale(pixels, ds), np.float32)  # RescaleSlope · stored + RescaleIntercept
    if ds.get("WindowCenter") is not None and ds.get("WindowWidth") is not None:
        planes = _window(values, _first(ds.WindowCenter), _first(ds.WindowWidth))
    else:
        planes = robust_uint8(values)
    if str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1":  # low values are white
        planes = 255 - planes
    return list(planes)


# ------------------------------------------------------------------------------------------------
# one file at the training size
@dataclass
class DecodedFile:
    slices: list[np.ndarray] = field(default_factory=list)  # (S, S, C) uint8
    empty_slices: int = 0  # NIfTI slices dropped for lack of tissue
    too_small: Optional[tuple[int, int]] = None  # (H, W) of the first slice smaller than the target


def decode(path: Path, size: int, channels: int, axis: int) -> DecodedFile:
    """``path`` → its slices at ``size``×``size``×``channels`` (see the module docstring)."""
    if path.stat().st_size == 0:
        raise UnreadableFile("empty file (0 bytes)")
    suffix = suffix_of(path)
    empty = 0
    if suffix in NIFTI_SUFFIXES:
        planes, empty = read_nifti(path, axis)
    elif suffix in NUMPY_SUFFIXES:
        planes = read_numpy(path)
    elif suffix in IMAGE_SUFFIXES:
        planes = read_image(path)
    else:  # .dcm, or a file recognised by its DICM preamble
        planes = read_dicom(path)
    result = DecodedFile(empty_slices=empty)
    for plane in planes:
        if max(plane.shape[:2]) < size:
            result.too_small = plane.shape[:2]
            return result
        result.slices.append(fit(to_channels(plane, channels), size))
    return result


def decode_file(path: str | os.PathLike, config: Config) -> np.ndarray:
    """One file decoded exactly as :func:`dcganlib.data.load_dataset` decodes it: uint8 ``(N, S, S, C)``.

    ``S = config.image_size``, ``C = config.channels``; N is 1 for a plain image, the number of kept
    slices for a stack or NIfTI volume. Raises :class:`DataError` for a missing, unreadable or too
    small file (what :func:`load_dataset` would skip or refuse).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path} is not a file; pass one of {SUPPORTED}")
    try:
        decoded = decode(path, config.image_size, config.channels, config.nifti_axis)
    except UnreadableFile as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if decoded.too_small is not None:
        height, width = decoded.too_small
        raise DataError(f"{path} is {width}x{height} px, smaller than image_size {config.image_size}; "
                        "lower image_size (images are never upsampled)")
    if not decoded.slices:
        raise DataError(f"{path} holds no slice with tissue")
    return np.stack(decoded.slices)


__all__ = ["SUPPORTED", "PIL_ERRORS", "IMAGE_SUFFIXES", "NUMPY_SUFFIXES", "NIFTI_SUFFIXES", "MAX_IMAGE_PIXELS",
           "UnreadableFile", "DecodedFile", "suffix_of", "is_supported", "decode", "decode_file",
           "DICOM_SUFFIXES", "DicomHeader", "is_dicom", "dicom_header", "read_dicom",
           "read_image", "read_numpy", "read_nifti", "image_stack"]
