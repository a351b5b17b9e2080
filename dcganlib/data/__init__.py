"""Medical image slices from disk to ``tf.data``: read, find, cache, split, batch — and the embedded demo set.

Inputs (``config.data``; ``None`` = the embedded MNI152 demo set, :mod:`.demo`): a folder (searched
recursively) or a single file of PNG / JPEG / TIFF / BMP images, ``.npy`` arrays or NIfTI volumes.
One module per step:

* :mod:`.readers`   — one file → uint8 slices at the training size (formats, scaling, resize + pad);
* :mod:`.discovery` — finding the files: folder walks, the OASIS course layout, header-only surveys;
* :mod:`.cache`     — decoding many files once (thread pool) into an on-disk cache;
* :mod:`.splits`    — subject ids and the seeded, subject-disjoint train/validate/test split;
* :mod:`.loading`   — :func:`load_dataset`, which runs the steps above and writes the audit report;
* :mod:`.pipeline`  — :func:`make_tf_dataset`: uint8 arrays → shuffled float32 ``[-1, 1]`` batches;
* :mod:`.demo`      — the MNI152 demo dataset inside nilearn's wheel (nothing is downloaded).

In the library images are float32 NHWC in ``[-1, 1]``; the conversion lives in :mod:`dcganlib.pixels`.
"""

from .discovery import OASIS_SPLITS, middle_slice, survey_files
from .loading import DatasetSplits, SkippedFilesWarning, load_dataset
from .pipeline import epoch_stream, make_tf_dataset
from .readers import SUPPORTED, decode_file
from .splits import shared_subjects

__all__ = ["OASIS_SPLITS", "SUPPORTED", "DatasetSplits", "SkippedFilesWarning", "load_dataset", "make_tf_dataset",
           "epoch_stream", "decode_file", "survey_files", "middle_slice", "shared_subjects"]
