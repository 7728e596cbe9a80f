"""Data loading (every format), splitting, preprocessing, and clear errors for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tuner.data import (
    BUILTIN_DATASETS,
    FORMAT_CHOICES,
    FORMATS,
    TABLE_FORMATS,
    file_fingerprint,
    load_data,
    load_rows,
    prepare,
    sniff,
)
from tuner.errors import ConfigError, DataError, TunerError

# ---------------------------------------------------------------------------------------------
# small synthetic files


def numeric_frame(n: int = 100, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    a = rng.normal(5.0, 2.0, n)
    b = rng.normal(-1.0, 0.5, n)
    label = np.where(a + 4 * b + rng.normal(0, 1, n) > 1.5, "dog", "cat")
    label[:3] = ["cat", "dog", "cat"]  # both classes present whatever the draw
    return pd.DataFrame({"a": a, "b": b, "label": label})


def write_csv(tmp_path: Path, frame: pd.DataFrame, name: str = "data.csv", **kw) -> Path:
    path = tmp_path / name
    frame.to_csv(path, index=False, **kw)
    return path


SVM_TEXT = """\
+1 1:0.5 3:1.25
-1 2:2 4:-1
+1 1:1 2:0.5 # a comment
-1 3:3
+1 1:0.25 4:2
-1 2:1.5 3:0.5
"""

REVIEWS = [
    ("pos", 'a "wonderful" film, warm and funny'),
    ("neg", "a dull, tedious mess"),
    ("pos", "wonderful acting and a moving story"),
    ("neg", 'tedious plot, "awful" dialogue'),
    ("pos", "funny, warm, wonderful"),
    ("neg", "an awful, dull film"),
]


# ---------------------------------------------------------------------------------------------
# formats


def test_csv_numeric_split_is_stratified_and_scaling_uses_training_rows(tmp_path: Path) -> None:
    frame = numeric_frame(200)
    raw = load_data(write_csv(tmp_path, frame), target="label")
    assert raw.kind == "table" and raw.fmt == "csv" and raw.numeric_columns == ["a", "b"]
    ds = prepare(raw, val_size=0.2, test_size=0.25, seed=3)
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (110, 40, 50)
    assert ds.classes == ["cat", "dog"] and ds.n_classes == 2
    share = np.mean(frame["label"] == "dog")
    for part in (ds.y_train, ds.y_val, ds.y_test):  # stratified: each split has the overall share
        assert abs(part.mean() - share) < 0.03
    # standardization fitted on the training rows only: exactly centred there, not elsewhere
    np.testing.assert_allclose(ds.X_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(ds.X_train.std(axis=0), 1.0, atol=1e-12)
    assert np.abs(ds.X_test.mean(axis=0)).max() > 1e-6
    assert not np.allclose(ds.pipeline.center, frame[["a", "b"]].mean().to_numpy(), rtol=0, atol=1e-9)


def test_same_seed_same_split_and_different_seed_different_split(tmp_path: Path) -> None:
    raw = load_data(write_csv(tmp_path, numeric_frame(120)), target="label")
    a, b, c = (prepare(raw, seed=s) for s in (1, 1, 2))
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert a.X_train.shape == c.X_train.shape and not np.array_equal(a.X_train, c.X_train)


def test_no_validation_and_no_test_rows(tmp_path: Path) -> None:
    raw = load_data(write_csv(tmp_path, numeric_frame(50)), target="label")
    ds = prepare(raw, val_size=0, test_size=0)
    assert len(ds.y_train) == 50 and len(ds.y_val) == 0 and len(ds.y_test) == 0
    assert ds.X_val.shape == (0, 2) and ds.X_test.shape == (0, 2)


def test_tsv_with_quote_marks_and_a_text_column(tmp_path: Path) -> None:
    path = tmp_path / "reviews.tsv"
    path.write_text("label\tsentence\n" + "".join(f"{lab}\t{text}\n" for lab, text in REVIEWS), encoding="utf-8")
    raw = load_data(path, target="label", text_column="sentence")
    assert raw.fmt == "tsv" and len(raw) == len(REVIEWS)
    assert raw.X["sentence"].iloc[0] == 'a "wonderful" film, warm and funny'  # quotes kept verbatim
    ds = prepare(raw, val_size=0, test_size=0)
    assert sp.issparse(ds.X_train) and ds.X_train.shape[0] == len(REVIEWS)
    vocab = ds.pipeline.vocabulary
    assert "wonderful" in vocab and "warm and" in vocab  # 1-2 grams
    # TF-IDF rows are L2-normalized
    np.testing.assert_allclose(sp.linalg.norm(ds.X_train, axis=1), 1.0)


def test_tsv_written_with_a_quoted_value_across_lines_is_refused(tmp_path: Path) -> None:
    """pandas quotes a TSV value that holds a line break; read with plain quotes, that value became
    a row (and a class) of its own and every later row shifted by one."""
    frame = pd.DataFrame({"label": [lab for lab, _ in REVIEWS] * 2,
                          "sentence": [t for _, t in REVIEWS] + ['two lines,\nthen "more"'] + [t for _, t in REVIEWS][1:]})
    path = tmp_path / "reviews.tsv"
    frame.to_csv(path, sep="\t", index=False)
    with pytest.raises(DataError, match=r"reviews.tsv cannot be read without a guess.* it holds 13 rows; .* 12\. Save it "
                                        r"as CSV"):
        load_data(path, target="label", text_column="sentence")
    frame[["sentence"]].to_csv(tmp_path / "new.tsv", sep="\t", index=False)
    with pytest.raises(DataError, match="holds 13 rows"):
        load_data(tmp_path / "new.tsv", text_column="sentence", require_target=False)
    frame.to_csv(tmp_path / "reviews.csv", index=False)  # the same rows as CSV: quotes followed
    assert len(load_data(tmp_path / "reviews.csv", target="label", text_column="sentence")) == 12
    # quotes that open a cell and pair up on its line stay plain characters, as GLUE's files need
    path.write_text("label\tsentence\n1\t\"the film\" is good\n0\t\"bad\n", encoding="utf-8")
    raw = load_data(path, target="label", text_column="sentence")
    assert raw.X["sentence"].tolist() == ['"the film" is good', '"bad']


def test_csv_with_text_and_numeric_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"label": [lab for lab, _ in REVIEWS], "review": [t for _, t in REVIEWS],
                          "stars": [5.0, 1.0, 4.0, 2.0, 5.0, 1.0]})
    raw = load_data(write_csv(tmp_path, frame), target="label", text_column="review")
    ds = prepare(raw, val_size=0, test_size=0)
    assert ds.pipeline.numeric_columns == ["stars"]
    assert ds.pipeline.n_features == len(ds.pipeline.vocabulary) + 1 == ds.X_train.shape[1]
    assert ds.pipeline.feature_names[-1] == "stars"
    np.testing.assert_allclose(ds.X_train[:, -1].toarray().ravel().mean(), 0.0, atol=1e-12)


@pytest.mark.parametrize("name", ["ranked.svm", "ranked"])
def test_svmlight_with_query_ids_is_refused(tmp_path: Path, name: str) -> None:
    """qid fields were dropped without a word, so one query's rows landed on both sides of the split."""
    path = tmp_path / name
    path.write_text("".join(f"{i % 2} qid:{i // 4} 1:{i / 10} 2:{(i % 3) / 2}\n" for i in range(24)))
    with pytest.raises(DataError, match=r"has query ids \(qid:0\), the groups of a ranking data set; .* Remove the "
                                        r"qid fields"):
        load_data(path)


def test_integers_wider_than_64_bits_are_not_called_text(tmp_path: Path) -> None:
    """A column of 10**20 + i was 'not numeric ... pass it as the text column'."""
    rows = ["id,a,label"] + [f"{10**20 + i},{i % 7 / 3:.3f},{i % 2}" for i in range(40)]
    (tmp_path / "b.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"^Feature column 'id' holds numbers too large for 64-bit integers "
                                        r"\(100000000000000000000 at data row 1 \(line 2\)\).* An id\? Leave"):
        prepare(load_data(tmp_path / "b.csv", target="label"), val_size=0, test_size=0)


def test_svmlight_is_sniffed_and_matches_scikit_learn(tmp_path: Path) -> None:
    from sklearn.datasets import load_svmlight_file

    path = tmp_path / "train"  # no suffix: the format is recognised from the lines
    path.write_text(SVM_TEXT)
    raw = load_data(path)
    assert raw.fmt == "svmlight" and raw.kind == "matrix" and sp.issparse(raw.X)
    X_ref, y_ref = load_svmlight_file(str(path))
    np.testing.assert_array_equal(raw.X.toarray(), X_ref.toarray())
    np.testing.assert_array_equal(raw.y, y_ref.astype(int))
    assert raw.feature_names == ["f1", "f2", "f3", "f4"]  # LIBSVM indices are 1-based
    wide = load_data(path, n_features=7)
    assert wide.X.shape == (6, 7)
    ds = prepare(raw, val_size=0, test_size=0)
    assert ds.classes == [-1, 1]
    # max-abs scaling keeps the matrix sparse and maps every column into [-1, 1]
    assert sp.issparse(ds.X_train) and ds.X_train.nnz == raw.X.nnz
    np.testing.assert_allclose(abs(ds.X_train).max(axis=0).toarray().ravel(), 1.0)


def test_npz_dense_and_sparse_hold_the_same_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 5)) * (rng.random((30, 5)) < 0.4)
    y = rng.integers(0, 3, 30)
    np.savez(tmp_path / "dense.npz", X=X, y=y)
    S = sp.csr_matrix(X)
    np.savez(tmp_path / "sparse.npz", X_data=S.data, X_indices=S.indices, X_indptr=S.indptr, X_shape=S.shape, y=y)
    dense, sparse = load_data(tmp_path / "dense.npz"), load_data(tmp_path / "sparse.npz")
    assert dense.fmt == sparse.fmt == "npz"
    assert not sp.issparse(dense.X) and sp.issparse(sparse.X)
    np.testing.assert_array_equal(dense.X, sparse.X.toarray())
    np.testing.assert_array_equal(dense.y, sparse.y)
    assert prepare(dense).classes == [0, 1, 2]


def test_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")  # a test extra: installed wherever the suite runs
    frame = numeric_frame(40)
    frame.to_parquet(tmp_path / "data.parquet")
    raw = load_data(tmp_path / "data.parquet", target="label")
    assert raw.fmt == "parquet" and raw.numeric_columns == ["a", "b"]
    np.testing.assert_array_equal(raw.X.to_numpy(), frame[["a", "b"]].to_numpy())
    np.testing.assert_array_equal(raw.y, frame["label"].to_numpy())


def write_classfiles(folder: Path, encoding: str = "latin-1") -> Path:
    folder.mkdir()
    # "\x85" is U+0085 in Latin-1 (an ellipsis in cp1252): text, not a line break
    (folder / "reviews.pos").write_bytes("un café délicieux\nwonderful and warm\n\nfunny\nhmm\x85might\n".encode(encoding))
    (folder / "reviews.neg").write_bytes("dull\nawful mess\n".encode(encoding))
    (folder / "README.txt").write_text("not data")
    return folder


@pytest.mark.parametrize("backup", ["reviews.pos~", "reviews.bak"])
def test_a_backup_copy_in_a_class_files_folder_is_refused(tmp_path: Path, backup: str) -> None:
    """An editor's 'reviews.pos~' beside reviews.pos and reviews.neg became a third class, 'pos~'."""
    folder = write_classfiles(tmp_path / "reviews")
    (folder / backup).write_bytes((folder / "reviews.pos").read_bytes())
    with pytest.raises(DataError, match=rf"{backup} in .* looks like an editor's or a tool's backup copy; .* class "
                                        rf"'{backup.split('.')[1]}' of their own beside \['neg', 'pos'\]\. Move it out"):
        load_data(folder, encoding="latin-1")
    (folder / backup).unlink()
    assert sorted(set(load_data(folder, encoding="latin-1").y)) == ["neg", "pos"]


def test_an_unknown_encoding_is_one_clear_error(tmp_path: Path) -> None:
    """It was a LookupError traceback ('unknown encoding: bogus') from wherever the file was opened."""
    path = write_csv(tmp_path, numeric_frame(20))
    pipe = prepare(load_data(path, target="label"), val_size=0, test_size=0).pipeline
    message = r"^Unknown encoding 'bogus' \(the 'encoding' parameter\): give a name Python knows, e\.g\. utf-8"
    for read in (lambda: load_data(path, target="label", encoding="bogus"),
                 lambda: load_data(write_classfiles(tmp_path / "reviews"), encoding="bogus"),
                 lambda: load_rows(path, pipe, encoding="bogus"),
                 lambda: file_fingerprint(path, encoding="bogus")):
        with pytest.raises(ConfigError, match=message):
            read()


def test_class_files_folder_in_latin_1(tmp_path: Path) -> None:
    folder = write_classfiles(tmp_path / "reviews")
    with pytest.raises(DataError, match="'encoding' parameter"):
        load_data(folder)  # UTF-8 by default: the Latin-1 bytes do not decode
    raw = load_data(folder, encoding="latin-1")
    assert raw.fmt == "classfiles" and raw.text_column == "text"
    assert len(raw) == 6  # blank lines skipped, README.txt ignored
    assert "un café délicieux" in list(raw.X["text"]) and "hmm\x85might" in list(raw.X["text"])
    ds = prepare(raw, val_size=0, test_size=0)
    assert ds.classes == ["neg", "pos"]


def test_labeltext_lines(tmp_path: Path) -> None:
    path = tmp_path / "stsa.fine.mini"
    path.write_text("3 a fine , moving film\n0 a disaster\n\n4 simply wonderful\n1 weak and dull\n2 it is a film\n")
    raw = load_data(path)
    assert raw.fmt == "labeltext" and len(raw) == 5
    assert list(raw.y) == [3, 0, 4, 1, 2] and raw.X["text"].iloc[0] == "a fine , moving film"
    assert prepare(raw, val_size=0, test_size=0).classes == [0, 1, 2, 3, 4]


def test_labeltext_after_a_byte_order_mark(tmp_path: Path) -> None:
    """A UTF-8 byte-order mark joined the first label: '\\ufeff1' was a third class beside 0 and 1."""
    path = tmp_path / "stsa.binary.mini"
    path.write_bytes(b"\xef\xbb\xbf1 a fine , moving film\n0 a disaster\n1 simply wonderful\n0 weak and dull\n")
    raw = load_data(path)
    assert raw.fmt == "labeltext" and list(raw.y) == [1, 0, 1, 0]


def test_a_tab_separated_file_with_a_header_is_a_tsv_whatever_its_name(tmp_path: Path, data_dir: Path) -> None:
    """SST-2's first lines saved as .txt were read as '<label> <text>' lines: the header's 'label'
    became a class of one row beside 0 and 1."""
    path = tmp_path / "sst2_head.txt"
    with open(data_dir / "sst2-glue" / "train.tsv", encoding="utf-8") as fh:
        path.write_text("".join(next(fh) for _ in range(41)), encoding="utf-8")
    raw = load_data(path, target="label", text_column="sentence")
    assert raw.fmt == "tsv" and len(raw) == 40 and set(raw.y) == {0, 1}
    # the same lines without the header stay '<label> <text>' lines
    (tmp_path / "no_header.txt").write_text("".join(path.read_text(encoding="utf-8").splitlines(True)[1:]))
    plain = load_data(tmp_path / "no_header.txt")
    assert plain.fmt == "labeltext" and list(plain.y) == list(raw.y)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "labeltext"])
def test_labels_with_a_leading_zero_are_kept_as_written(tmp_path: Path, fmt: str) -> None:
    """``007`` is a code, not the number 7: as numbers the classes would print as 7 and 10, and a
    ``7`` beside ``007`` would join its class. Numbers written plainly stay numbers."""
    def read(labels: list[str]) -> list:
        rows = [(lab, f"{i % 3}.5", f"word{i % 4} film") for i, lab in enumerate(labels)]
        path = tmp_path / f"labels.{'txt' if fmt == 'labeltext' else fmt}"
        if fmt == "labeltext":
            path.write_text("".join(f"{lab} {text}\n" for lab, _, text in rows))
            return prepare(load_data(path, fmt=fmt), val_size=0, test_size=0).classes
        sep = "," if fmt == "csv" else "\t"
        path.write_text(f"label{sep}x\n" + "".join(f"{lab}{sep}{x}\n" for lab, x, _ in rows))
        return prepare(load_data(path, target="label"), val_size=0, test_size=0).classes

    assert read(["007", "010", "007", "010"]) == ["007", "010"]
    assert read(["7", "007", "7", "007"]) == ["007", "7"]
    assert read(["+1", "-1", "1", "-1"]) == [-1, 1]
    assert read(["1.0", "0", "1", "0.0"]) == [0, 1]
    assert read(["yes", "no", "yes", "no"]) == ["no", "yes"]


def test_real_text_sets(data_dir: Path) -> None:
    rt = load_data(data_dir / "rt-polarity", encoding="latin-1")
    assert len(rt) == 10662 and sorted(set(rt.y)) == ["neg", "pos"]
    assert (rt.y == "pos").sum() == 5331
    sst = load_data(data_dir / "sst" / "stsa.fine.train")
    assert sst.fmt == "labeltext" and len(sst) == 8544 and sorted(set(sst.y)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name, shape, n_classes", [
    ("breast_cancer", (569, 30), 2), ("digits", (1797, 64), 10), ("wine", (178, 13), 3), ("iris", (150, 4), 3),
])
def test_bundled_datasets(name: str, shape: tuple[int, int], n_classes: int) -> None:
    assert name in BUILTIN_DATASETS
    raw = load_data(dataset=name)
    assert raw.X.shape == shape and raw.fmt == "builtin"
    ds = prepare(raw)
    assert ds.n_classes == n_classes
    assert len(ds.y_train) + len(ds.y_val) + len(ds.y_test) == shape[0]


def test_separate_test_file(tmp_path: Path) -> None:
    raw = load_data(write_csv(tmp_path, numeric_frame(80)), target="label")
    test_raw = load_data(write_csv(tmp_path, numeric_frame(30, seed=5), "test.csv"), target="label")
    ds = prepare(raw, val_size=0.25, test_size=0.4, test_raw=test_raw)  # test_size is ignored
    assert (len(ds.y_train), len(ds.y_val), len(ds.y_test)) == (60, 20, 30)
    np.testing.assert_array_equal(ds.y_test, (numeric_frame(30, seed=5)["label"] == "dog").astype(int))
    # the test rows are scaled with the training rows' statistics
    expected = (numeric_frame(30, seed=5)[["a", "b"]].to_numpy() - ds.pipeline.center) / ds.pipeline.scale
    np.testing.assert_allclose(ds.X_test, expected)

    bad = numeric_frame(30, seed=5)
    bad.loc[0, "label"] = "bird"
    bad_raw = load_data(write_csv(tmp_path, bad, "bad_test.csv"), target="label")
    with pytest.raises(DataError, match="bird"):
        prepare(raw, test_raw=bad_raw)
    # labels 0.0/1.0 are the classes 0 and 1 in the test file as in training (they were refused)
    floats = {name: numeric_frame(n, seed=seed).assign(label=lambda f: (f["label"] == "dog").astype(float))
              for name, n, seed in (("train_f.csv", 80, 0), ("test_f.csv", 30, 5))}
    raw_f, test_f = (load_data(write_csv(tmp_path, f, name), target="label") for name, f in floats.items())
    ds = prepare(raw_f, test_raw=test_f)
    assert ds.classes == [0, 1]
    np.testing.assert_array_equal(ds.y_test, floats["test_f.csv"]["label"].to_numpy().astype(int))


def test_load_rows_for_prediction(tmp_path: Path) -> None:
    folder = write_classfiles(tmp_path / "reviews", encoding="utf-8")
    ds = prepare(load_data(folder), val_size=0, test_size=0)
    lines = tmp_path / "new.txt"
    lines.write_text("wonderful\n\nawful film\n\n\n")
    rows = load_rows(lines, ds.pipeline)
    assert list(rows["text"]) == ["wonderful", "", "awful film"]  # one a line, blank ones between texts too
    # A file named as rt-polarity's holds one text per line: its first words are not labels
    # (they were dropped as such); lines that all start with a class of the model are labelled.
    reviews = tmp_path / "more.neg"
    reviews.write_text("simplistic , silly and tedious .\nawful film\n", encoding="utf-8")
    rows = load_rows(reviews, ds.pipeline, classes=ds.classes)
    assert list(rows["text"]) == ["simplistic , silly and tedious .", "awful film"]
    labelled = tmp_path / "more.test"
    labelled.write_text("".join(f"{c} a {c} film\n" for c in ds.classes), encoding="utf-8")
    rows = load_rows(labelled, ds.pipeline, classes=ds.classes)
    assert list(rows["text"]) == [f"a {c} film" for c in ds.classes]
    # a blank line between labelled lines is an empty text (skipped, it shifted later predictions by a line)
    gapped = tmp_path / "gapped.test"
    gapped.write_text(f"{ds.classes[0]} good\n\n{ds.classes[1]} bad\n\n", encoding="utf-8")
    for fmt in ("auto", "labeltext"):
        assert list(load_rows(gapped, ds.pipeline, classes=ds.classes, fmt=fmt)["text"]) == ["good", "", "bad"]
    # --format labeltext on lines of text alone dropped every first word as a label ("wonderful film"
    # and "dull film" were both predicted as "film", exit 0)
    with pytest.raises(DataError, match=r"Line 1 of .*more.neg does not start with one of the model's classes"):
        load_rows(reviews, ds.pipeline, classes=ds.classes, fmt="labeltext")
    # '<label> <text>' lines for a model trained on a table's text column keep that column's name
    table = pd.DataFrame({"sentence": [f"a {c} film" for c in ds.classes] * 5, "label": list(ds.classes) * 5})
    table_pipe = prepare(load_data(write_csv(tmp_path, table, "texts.csv"), target="label", text_column="sentence"),
                         val_size=0, test_size=0).pipeline
    rows = load_rows(labelled, table_pipe, classes=ds.classes)
    assert list(rows.columns) == ["sentence"] and list(rows["sentence"]) == [f"a {c} film" for c in ds.classes]
    frame = numeric_frame(20)
    raw = load_data(write_csv(tmp_path, frame), target="label")
    pipe = prepare(raw, val_size=0, test_size=0).pipeline
    unlabeled = write_csv(tmp_path, frame.drop(columns=["label"]), "new.csv")
    X = load_rows(unlabeled, pipe)
    assert pipe.transform(X).shape == (20, 2)
    # Rows of a model trained on an array, written by pandas with its 0, 1, ..., n-1 header: that
    # header is not a row (it was predicted as one, shifting every prediction by a row).
    A = np.random.default_rng(0).normal(size=(6, 3))
    np.savez(tmp_path / "m.npz", X=A, y=np.array([0, 1] * 3))
    pipe = prepare(load_data(tmp_path / "m.npz"), val_size=0, test_size=0).pipeline
    pd.DataFrame(A[:4]).to_csv(tmp_path / "rows.csv", index=False)
    np.testing.assert_allclose(pipe.transform(load_rows(tmp_path / "rows.csv", pipe)), pipe.transform(A[:4]))
    np.savetxt(tmp_path / "bare.csv", A[:4], delimiter=",")  # no header: every row is data
    np.testing.assert_allclose(pipe.transform(load_rows(tmp_path / "bare.csv", pipe)), pipe.transform(A[:4]))


# ---------------------------------------------------------------------------------------------
# bad input: a clear error, naming what is wrong


# rows are named as in the file, header counted (they were counted from 0 after the header)
BAD_TABLES = {
    "nan": (lambda: numeric_frame(20).assign(b=[1.0] * 7 + [np.nan] + [1.0] * 12), "label", ["'b'", "holds nan at data row 8 (line 9)"]),
    "inf": (lambda: numeric_frame(20).assign(a=[1.0] * 4 + [np.inf] + [1.0] * 15), "label", ["'a'", "holds inf at data row 5 (line 6)"]),
    "misspelled target": (numeric_frame, "lable", ["'lable'", "Did you mean 'label'", "['a', 'b', 'label']"]),
    "single class": (lambda: numeric_frame(20).assign(label="cat"), "label", ["single class", "'cat'"]),
    "non-numeric feature": (lambda: numeric_frame(20).assign(b=["x", "y"] * 10), "label", ["'b'", "not numeric", "'text_column' parameter"]),
    "continuous target": (lambda: numeric_frame(20).assign(label=np.linspace(0.1, 3.3, 20)), "label", ["continuous"]),
    "missing label": (lambda: numeric_frame(20).assign(label=["cat", None] * 10), "label", ["missing at data row 2 (line 3)"]),
    # ' dog' and 'dog' were two classes (a 4-class model of a 2-class target, no word said)
    "labels differing in spaces": (lambda: numeric_frame(20).assign(label=["cat", "dog", " dog"] * 6 + ["cat"] * 2),
                                   "label", ["labels ' dog' and 'dog' differ only in spaces", "clean the target"]),
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_bad_tables_raise_a_data_error_that_names_the_problem(tmp_path: Path, case: str) -> None:
    make, target, fragments = BAD_TABLES[case]
    path = write_csv(tmp_path, make())
    with pytest.raises(DataError) as info:
        prepare(load_data(path, target=target))
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert "\n" not in message


def test_a_training_table_whose_header_line_is_data_is_refused(tmp_path: Path) -> None:
    """A CSV without a header lost its first row to the column names ('17.99', '10.38', ...)."""
    A = np.round(np.random.default_rng(0).normal(size=(12, 3)), 3)
    bare = pd.DataFrame(A).assign(label=[0, 1] * 6)
    for name, frame in (("fractions.csv", bare), ("repeats.csv", pd.DataFrame({"a": [3] * 12, "b": [3] * 12, "label": [0, 1] * 6}))):
        path = write_csv(tmp_path, frame, name, header=False)
        with pytest.raises(DataError, match=rf"{name}'s first line holds numbers \(.+, \.\.\.\), not column "
                                            "names: add a header line naming the columns"):
            load_data(path, target="0")  # the first row's label: it was read as 11 rows, labelled "0"
    # pandas' header for unnamed columns (0, 1, ..., n-1), or other distinct integers, name columns
    assert len(load_data(write_csv(tmp_path, bare, "pandas.csv"), target="label")) == 12
    numbered = write_csv(tmp_path, pd.DataFrame(A, columns=["10", "20", "30"]).assign(label=[0, 1] * 6), "ints.csv")
    assert load_data(numbered, target="label").feature_names == ["10", "20", "30"]
    # rows to predict without a header are still read whole, for a model trained with one
    pipe = prepare(load_data(tmp_path / "pandas.csv", target="label"), val_size=0, test_size=0).pipeline
    pd.DataFrame(A).to_csv(tmp_path / "rows.csv", index=False, header=False)
    assert len(load_rows(tmp_path / "rows.csv", pipe)) == 12


@pytest.mark.parametrize("suffix", [".gz", ".bz2", ".xz"])
def test_compressed_files_are_read_as_what_they_hold(tmp_path: Path, suffix: str) -> None:
    """``data.csv.gz`` is a CSV: pandas alone decompressed it by its suffix while the header check
    read the compressed bytes, so a headerless kddcup99.gz lost its first row, renamed columns."""
    import bz2
    import gzip
    import lzma

    opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}[suffix]
    plain = write_csv(tmp_path, numeric_frame())
    packed = tmp_path / f"data.csv{suffix}"
    with opener(packed, "wb") as fh:
        fh.write(plain.read_bytes())
    a, b = load_data(plain, target="label"), load_data(packed, target="label")
    assert b.fmt == "csv" and sniff(packed, "utf-8") == "csv"
    pd.testing.assert_frame_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    svm = tmp_path / f"rows{suffix}"  # no format suffix under the compression's: sniffed from the content
    with opener(svm, "wb") as fh:
        fh.write(SVM_TEXT.encode())
    raw = load_data(svm)
    assert raw.fmt == "svmlight" and raw.X.shape == (6, 4) and raw.y.tolist() == [1, -1, 1, -1, 1, -1]
    # the checks see what the parser sees: a compressed table without a header is refused
    headerless = tmp_path / f"bare.csv{suffix}"
    with opener(headerless, "wb") as fh:
        fh.write(numeric_frame().assign(label=[0, 1] * 50).to_csv(index=False, header=False).encode())
    with pytest.raises(DataError, match="first line holds numbers"):
        load_data(headerless, target="label")
    rows = tmp_path / f"rows.csv{suffix}"  # rows to predict on, without a header
    with opener(rows, "wb") as fh:
        fh.write(numeric_frame().drop(columns="label").to_csv(index=False, header=False).encode())
    pipe = prepare(a, val_size=0, test_size=0).pipeline
    assert len(load_rows(rows, pipe)) == 100


def test_damaged_or_unreadable_compressed_files_are_one_line(tmp_path: Path) -> None:
    import gzip

    whole = gzip.compress(numeric_frame().to_csv(index=False).encode())
    (tmp_path / "cut.csv.gz").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "fake.csv.gz").write_bytes(b"a,b,label\n1,2,cat\n")
    write_csv(tmp_path, numeric_frame(), "data.zip")
    with pytest.raises(DataError, match="Cannot read .*cut.csv.gz: Compressed file ended"):
        load_data(tmp_path / "cut.csv.gz", target="label")
    with pytest.raises(DataError, match="Cannot read .*fake.csv.gz: Not a gzipped file"):
        load_data(tmp_path / "fake.csv.gz", target="label")
    with pytest.raises(DataError, match=r"data.zip is a zip archive; unpack it first \(compressed files read as "
                                        r"they are: .gz, .bz2, .xz\)"):
        load_data(tmp_path / "data.zip", target="label", fmt="csv")


def test_a_header_of_repeated_numbers_says_it_may_be_data(tmp_path: Path) -> None:
    """kddcup99's first row ('0,tcp,http,SF,181,5450,0,0,...') has text cells, so it is not
    refused as data; its repeated names now say what is likely wrong."""
    path = tmp_path / "kdd.csv"
    path.write_text("0,tcp,0,1.5\n0,udp,0,2.5\n")
    with pytest.raises(DataError, match=r"names the column\(s\) \['0'\] more than once; give every column its own "
                                        r"name. Names such as '0' look like data: if the file has no header line"):
        load_data(path, target="tcp")


def test_rows_to_predict_from_a_folder_are_refused_for_a_numeric_model(tmp_path: Path) -> None:
    """A folder was read as class files: 'Cannot decode .../optuna.db-shm as utf-8'."""
    pipe = prepare(load_data(write_csv(tmp_path, numeric_frame()), target="label"), val_size=0, test_size=0).pipeline
    folder = tmp_path / "stores"
    folder.mkdir()
    (folder / "s.db").write_bytes(b"\x00\xff" * 10)
    (folder / "s.db-shm").write_bytes(b"\x00\xff" * 10)
    with pytest.raises(DataError, match=r"stores is a folder; this model reads rows of numbers: give the file of rows"):
        load_rows(folder, pipe)


def test_a_bad_value_is_named_by_its_real_file_line_past_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    """pandas skips blank lines and a quoted field may span lines: data row r was named line r + 2,
    a line that held other data (or nothing)."""
    path = tmp_path / "gaps.csv"
    path.write_text('a,note,label\n1.0,"two\nlines",cat\n\n2.0,x,dog\n\n\nnan,y,cat\n3.0,z,dog\n')
    with pytest.raises(DataError, match=r"'a' holds nan at data row 3 \(line 8\)"):
        load_data(path, target="label", text_column="note")
    gz = tmp_path / "gaps.csv.gz"
    import gzip

    gz.write_bytes(gzip.compress(path.read_bytes().replace(b"nan", b"4.0").replace(b"dog\n\n\n", b"\n\n\n")))
    with pytest.raises(DataError, match=r"target is missing at data row 2 \(line 5\)"):
        prepare(load_data(gz, target="label", text_column="note"))


@pytest.mark.parametrize("labels", [["NA", "yes", "NA", "yes"], ["1", "0", "", "1"], ["cat", "None", "dog", "cat"]])
def test_a_missing_label_says_which_cells_read_as_missing(tmp_path: Path, labels: list[str]) -> None:
    """pandas reads NA, None, null, NaN and empty cells as missing, so a class named NA was
    refused as "the target is missing" (and an empty cell among numbers as "holds nan"): the
    error now names those spellings and what to do."""
    path = tmp_path / "labels.csv"
    path.write_text("x,label\n" + "".join(f"{i}.5,{label}\n" for i, label in enumerate(labels)))
    row = next(i for i, label in enumerate(labels) if label in ("NA", "", "None")) + 1
    with pytest.raises(DataError, match=rf"^The target is missing at data row {row} \(line {row + 1}\); .*NA, N/A, "
                                        r"None, null or NaN.*needs another name\.$"):
        prepare(load_data(path, target="label"))


def test_a_table_without_target_lists_its_columns(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"'target' parameter.*\['a', 'b', 'label'\]"):
        load_data(write_csv(tmp_path, numeric_frame(10)))


def test_non_finite_values_in_matrices_name_row_and_column(tmp_path: Path) -> None:
    X = np.ones((6, 3))
    X[4, 2] = np.nan
    S = sp.csr_matrix(X)
    np.savez(tmp_path / "sparse.npz", X_data=S.data, X_indices=S.indices, X_indptr=S.indptr, X_shape=S.shape,
             y=np.array([0, 1] * 3))
    with pytest.raises(DataError, match="row 4 column 2 holds nan"):
        load_data(tmp_path / "sparse.npz")
    svm = tmp_path / "data.svm"
    svm.write_text("1 1:1 2:1\n-1 1:inf\n")
    with pytest.raises(DataError, match=r"as written\); row 1 column 1 holds inf"):  # index 1 as in the file
        load_data(svm)


def test_unreadable_or_wrong_inputs(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        load_data(tmp_path / "missing.csv", target="y")
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(DataError, match="Cannot read"):
        load_data(folder, fmt="csv", target="y")  # a directory read as a file
    with pytest.raises(DataError, match="one text file per class"):
        load_data(folder)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("a,label\n1,café\n2,thé\n".encode("latin-1"))
    with pytest.raises(DataError, match="latin-1"):
        load_data(latin, target="label")
    assert load_data(latin, target="label", encoding="latin-1").y.tolist() == ["café", "thé"]
    (tmp_path / "garbage.npz").write_bytes(b"not a zip archive")
    with pytest.raises(DataError, match="npz"):
        load_data(tmp_path / "garbage.npz")
    np.savez(tmp_path / "objects.npz", X=np.array([[1, "a"]], dtype=object), y=np.array([0]))
    with pytest.raises(DataError, match="objects.npz"):
        load_data(tmp_path / "objects.npz")
    np.savez(tmp_path / "no_y.npz", X=np.ones((3, 2)))
    with pytest.raises(DataError, match="'y'"):
        load_data(tmp_path / "no_y.npz")
    for n_labels in (2, 4):  # fewer labels than rows dropped the last rows; more raised an IndexError
        np.savez(tmp_path / "short_y.npz", X=np.ones((3, 2)), y=np.arange(n_labels) % 2)
        with pytest.raises(DataError, match=r"one label per row of 'X' \(3 rows\); got shape \(" + str(n_labels)):
            load_data(tmp_path / "short_y.npz")
    (tmp_path / "garbage.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(DataError, match="Parquet"):
        load_data(tmp_path / "garbage.parquet", target="y")
    (tmp_path / "bad.svm").write_text("1 1:2 3:4\n-1 2:x\n")
    with pytest.raises(DataError, match="LIBSVM"):
        load_data(tmp_path / "bad.svm")
    (tmp_path / "unlabelled.svm").write_text("1:0.5 3:1\n")
    with pytest.raises(DataError, match="each line starts with a label"):
        load_data(tmp_path / "unlabelled.svm")
    (tmp_path / "ragged.csv").write_text("a,label\n1,x\n2,3,4,y\n")
    with pytest.raises(DataError, match="ragged.csv"):
        load_data(tmp_path / "ragged.csv", target="label")


def test_bad_options_raise_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="breast_cancer, digits, wine, iris"):
        load_data(dataset="mnist")
    with pytest.raises(ConfigError, match="not both"):
        load_data(tmp_path, dataset="iris")
    raw = load_data(dataset="iris")
    with pytest.raises(ConfigError, match="val_size"):
        prepare(raw, val_size=1.2)
    with pytest.raises(ConfigError, match="leave no rows for training"):
        prepare(raw, val_size=0.5, test_size=0.5)


def test_every_data_error_is_a_tuner_error() -> None:
    assert issubclass(DataError, TunerError) and issubclass(ConfigError, TunerError)


def test_the_formats_registry_is_the_one_list(tmp_path: Path) -> None:
    """Every format's suffixes are recognised as it, and the errors list the registry's names."""
    assert FORMAT_CHOICES == ("auto", *FORMATS) and set(TABLE_FORMATS) == {"csv", "tsv", "parquet"}
    for name, fmt in FORMATS.items():
        assert fmt.name == name and callable(fmt.reader) and fmt.summary
        for suffix in fmt.suffixes:
            path = tmp_path / f"data{suffix}"
            path.write_text("x\n")
            assert sniff(path, "utf-8") == name
    frame = numeric_frame()
    with pytest.raises(ConfigError) as info:
        load_data(write_csv(tmp_path, frame), target="label", fmt="xlsx")
    assert all(name in str(info.value) for name in FORMAT_CHOICES)
    unknown = tmp_path / "notes.bin"
    unknown.write_text("oneword\n")
    with pytest.raises(DataError) as info:
        load_data(unknown)
    assert all(name in str(info.value) for name in FORMATS)


def test_a_missing_study_data_file_lists_each_path_tried_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the folder the study was created in, the absolute path and the relative one are one
    file: the message listed it twice."""
    from tuner.data import locate

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TUNER_DATA_ROOT", raising=False)
    with pytest.raises(DataError) as err:
        locate(str(tmp_path / "gone.csv"), "gone.csv")
    assert str(err.value).count(str(tmp_path / "gone.csv")) == 1, err.value
    assert "(the path given when the study was created)" in str(err.value)


def test_prepare_counts_the_training_texts_once(data_dir: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Counting a text column's terms is most of ``prepare``'s work on text (SST-2: 1.3 of its
    2.8 s). The vectorizer's fit counts the training texts; ``prepare`` keeps what it counted
    instead of counting them again: only the validation and test rows are transformed."""
    from sklearn.feature_extraction.text import CountVectorizer

    lines = (data_dir / "sst" / "stsa.binary.train").read_text().splitlines()[:3000]
    path = tmp_path / "sst.tsv"
    pd.DataFrame({"label": [int(s[0]) for s in lines], "sentence": [s[2:] for s in lines]}).to_csv(
        path, sep="\t", index=False)
    raw = load_data(path, target="label", text_column="sentence")
    counted: list[int] = []
    transform = CountVectorizer.transform

    def counting(self: CountVectorizer, docs: list[str]) -> sp.csr_matrix:
        counted.append(len(docs))
        return transform(self, docs)

    monkeypatch.setattr(CountVectorizer, "transform", counting)
    ds = prepare(raw, val_size=0.2, test_size=0.1)
    assert sorted(counted) == sorted([ds.X_val.shape[0], ds.X_test.shape[0]])  # not the training rows again
    assert ds.X_train.shape[0] == 2100 and ds.X_train.has_canonical_format
