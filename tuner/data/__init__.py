"""Reading data sets and turning rows into features (the first stage of the flow).

Loads no torch: the loaders and the feature pipeline are NumPy, SciPy, pandas and scikit-learn.
"""

from __future__ import annotations

from tuner.data._features import TFIDF_OPTIONS, FeaturePipeline, check_finite_matrix, numeric_block
from tuner.data._formats import FORMAT_CHOICES, FORMATS, TABLE_FORMATS, DataFormat, formats_help, sniff
from tuner.data._loaders import (
    BUILTIN_DATASETS,
    DATA_ROOT_ENV,
    HEAD_ROWS,
    KEEP_RAW_BYTES,
    Dataset,
    RawData,
    encode_labels,
    file_fingerprint,
    load_data,
    load_rows,
    load_test_file,
    locate,
    portable_path,
    prepare,
)
from tuner.data._readers import table_columns, take_group_column

__all__ = [
    "RawData", "Dataset", "load_data", "load_test_file", "load_rows", "prepare", "encode_labels", "file_fingerprint",
    "portable_path", "locate", "BUILTIN_DATASETS", "DATA_ROOT_ENV", "HEAD_ROWS", "KEEP_RAW_BYTES",
    "FeaturePipeline", "TFIDF_OPTIONS", "check_finite_matrix", "numeric_block", "table_columns", "take_group_column",
    "FORMATS", "FORMAT_CHOICES", "TABLE_FORMATS", "DataFormat", "formats_help", "sniff",
]
