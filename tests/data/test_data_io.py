import numpy as np
import pytest

from gradwise.data import read_csv, read_npz
from gradwise.errors import ConfigError, DataError


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- read_csv: the good path ---------------------------------------------------------


def test_read_csv_basic(tmp_path):
    p = write(tmp_path, "a,label,b\n1.5,0,-2\n3,1,4e-1\n0,1,7\n")
    t = read_csv(p, "label")
    assert t.feature_names == ["a", "b"] and t.target_name == "label" and t.name == "data"
    assert t.X.dtype == np.float32
    np.testing.assert_array_equal(t.X, np.array([[1.5, -2], [3, 0.4], [0, 7]], np.float32))
    assert (t.task, t.n_classes, t.classes) == ("binary", 2, [0, 1])
    assert t.y.dtype == np.int64 and t.y.tolist() == [0, 1, 1]


def _csv_with_target(tmp_path, values):
    rows = "".join(f"{i},{v}\n" for i, v in enumerate(values))
    return write(tmp_path, "x,y\n" + rows)


@pytest.mark.parametrize(
    ("values", "task", "k", "y", "classes"),
    [
        (["0", "2", "1", "2"], "multiclass", 3, [0, 2, 1, 2], [0, 1, 2]),
        (["1", "3", "2", "3"], "multiclass", 3, [0, 2, 1, 2], [1, 2, 3]),  # mapped to 0..K-1
        (["0", "5", "9", "5"], "multiclass", 3, [0, 1, 2, 1], [0, 5, 9]),
        (["-1", "1", "1"], "binary", 2, [0, 1, 1], [-1, 1]),
        (["1.0", "0.0", "1"], "binary", 2, [1, 0, 1], [0, 1]),
        (["cat", "dog", "cat"], "binary", 2, [0, 1, 0], ["cat", "dog"]),
        (["b", "a", "c"], "multiclass", 3, [1, 0, 2], ["a", "b", "c"]),
        (["0.5", "1.5", "1"], "regression", None, [0.5, 1.5, 1.0], None),
    ],
)
def test_task_inference(tmp_path, values, task, k, y, classes):
    t = read_csv(_csv_with_target(tmp_path, values), "y")
    assert (t.task, t.n_classes, t.classes) == (task, k, classes)
    assert t.y.tolist() == y
    assert t.y.dtype == (np.float32 if task == "regression" else np.int64)


def test_twenty_classes_is_the_limit(tmp_path):
    t20 = read_csv(_csv_with_target(tmp_path, [str(i % 20) for i in range(40)]), "y")
    assert (t20.task, t20.n_classes) == ("multiclass", 20)
    t21 = read_csv(_csv_with_target(tmp_path, [str(i % 21) for i in range(42)]), "y")
    assert t21.task == "regression"


def test_explicit_task_overrides_inference(tmp_path):
    p = _csv_with_target(tmp_path, ["0", "1", "1"])
    t = read_csv(p, "y", task="regression")
    assert t.task == "regression" and t.y.dtype == np.float32
    t = read_csv(p, "y", task="multiclass")
    assert (t.task, t.n_classes, t.out_features) == ("multiclass", 2, 2)
    t = read_csv(_csv_with_target(tmp_path, ["1", "1"]), "y", task="binary")
    assert t.y.tolist() == [1, 1] and t.n_classes == 2


def test_several_target_columns(tmp_path):
    p = write(tmp_path, "x,l1,l2\n0.1,1,0\n0.2,0,0\n0.3,1,1\n")
    t = read_csv(p, ["l1", "l2"])
    assert (t.task, t.n_classes, t.out_features) == ("multilabel", 2, 2)
    assert t.y.tolist() == [[1, 0], [0, 0], [1, 1]] and t.feature_names == ["x"]
    p = write(tmp_path, "x,u,v\n0.1,1.5,0\n0.2,0,2\n")
    t = read_csv(p, ["u", "v"])
    assert (t.task, t.out_features, t.y.shape) == ("regression", 2, (2, 2))


def test_blank_lines_bom_and_whitespace(tmp_path):
    p = tmp_path / "bom.csv"
    p.write_bytes("\ufeff x , y \n1, 0\n\n2 ,1\n".encode())
    t = read_csv(p, "y", task="binary")
    assert t.feature_names == ["x"] and t.X[:, 0].tolist() == [1.0, 2.0]
    assert t.y.tolist() == [0, 1]


def test_delimiter(tmp_path):
    t = read_csv(write(tmp_path, "x;y\n1;0\n2;1\n"), "y", delimiter=";")
    assert t.X[:, 0].tolist() == [1.0, 2.0]


# -- read_csv: errors name the thing -----------------------------------------------


def test_missing_target_column(tmp_path):
    p = write(tmp_path, "sepal,petal,species\n1,2,0\n")
    with pytest.raises(DataError) as e:
        read_csv(p, "specie")
    msg = str(e.value)
    assert "target column 'specie' not found (did you mean 'species'?)" in msg
    assert "available columns: sepal, petal, species" in msg


def test_non_numeric_feature(tmp_path):
    p = write(tmp_path, "a,b,y\n1,2,0\n3,4,1\n5,abc,0\n")
    with pytest.raises(
        DataError, match=r"column 'b', line 4: non-numeric feature, the value 'abc'"
    ):
        read_csv(p, "y")


def test_empty_feature_cell(tmp_path):
    p = write(tmp_path, "a,b,y\n1,2,0\n,4,1\n")
    with pytest.raises(DataError, match=r"column 'a', line 3: non-numeric feature, an empty value"):
        read_csv(p, "y")


def test_line_numbers_count_blank_lines(tmp_path):
    p = write(tmp_path, "a,y\n1,0\n\n2,1\nx,0\n")
    with pytest.raises(DataError, match=r"column 'a', line 5: .*'x'"):
        read_csv(p, "y")


@pytest.mark.parametrize("bad", ["nan", "inf", "-Infinity", "NaN"])
def test_nan_inf_feature(tmp_path, bad):
    p = write(tmp_path, f"a,b,y\n1,2,0\n3,{bad},1\n")
    with pytest.raises(DataError, match=rf"column 'b', line 3: value '{bad}' is NaN/inf"):
        read_csv(p, "y")


def test_nan_target(tmp_path):
    p = write(tmp_path, "a,y\n1,0.5\n2,nan\n")
    with pytest.raises(DataError, match=r"column 'y', line 3: value 'nan' is NaN/inf"):
        read_csv(p, "y")
    p = write(tmp_path, "a,y\n1,0\n2,\n")
    with pytest.raises(DataError, match=r"target 'y', line 3: the value is empty"):
        read_csv(p, "y")


def test_numbers_mixed_with_text_in_the_target(tmp_path):
    values = [str(v / 10) for v in range(30)]
    values[7] = "1.5x"
    p = _csv_with_target(tmp_path, values)
    with pytest.raises(DataError, match=r"target 'y' mixes numbers and text: line 9 has '1.5x'"):
        read_csv(p, "y")
    assert read_csv(p, "y", task="multiclass").n_classes == 30  # explicit: all text labels


def test_empty_file_and_header_only(tmp_path):
    with pytest.raises(DataError, match=r"empty\.csv: the file is empty; expected a header row"):
        read_csv(write(tmp_path, "", "empty.csv"), "y")
    with pytest.raises(DataError, match=r"header but no data rows"):
        read_csv(write(tmp_path, "a,y\n\n"), "y")


def test_ragged_rows(tmp_path):
    p = write(tmp_path, "a,b,y\n1,2,0\n3,1\n")
    with pytest.raises(DataError, match=r"line 3 has 2 fields, but the header has 3 \(a, b, y\)"):
        read_csv(p, "y")
    p = write(tmp_path, "a,b,y\n1,2,0,9\n")
    with pytest.raises(DataError, match=r"line 2 has 4 fields"):
        read_csv(p, "y")


def test_bad_header(tmp_path):
    with pytest.raises(DataError, match=r"column name 'a' appears twice"):
        read_csv(write(tmp_path, "a,a,y\n1,2,0\n"), "y")
    with pytest.raises(DataError, match=r"header column 2 has no name"):
        read_csv(write(tmp_path, "a,,y\n1,2,0\n"), "y")


def test_target_errors(tmp_path):
    with pytest.raises(DataError, match=r"single value \(3\).*pass task= explicitly"):
        read_csv(_csv_with_target(tmp_path, ["3", "3"]), "y")
    p = _csv_with_target(tmp_path, ["0", "1", "2"])
    with pytest.raises(DataError, match=r"binary target 'y' has 3 distinct labels \(0, 1, 2\)"):
        read_csv(p, "y", task="binary")
    p = _csv_with_target(tmp_path, ["0", "1", "0.5"])
    with pytest.raises(
        DataError, match=r"float targets for a classifier: target 'y', line 4 has 0.5"
    ):
        read_csv(p, "y", task="multiclass")
    p = _csv_with_target(tmp_path, ["1.5", "high"])
    with pytest.raises(DataError, match=r"target 'y', line 3: non-numeric value 'high'"):
        read_csv(p, "y", task="regression")
    p = write(tmp_path, "x,l1,l2\n0.1,1,0\n0.2,2,0\n")
    with pytest.raises(DataError, match=r"multilabel target 'l1', line 3 has 2"):
        read_csv(p, ["l1", "l2"], task="multilabel")
    with pytest.raises(ConfigError, match=r"unknown task 'binar' \(did you mean 'binary'\?\)"):
        read_csv(_csv_with_target(tmp_path, ["0", "1"]), "y", task="binar")


# -- read_npz ----------------------------------------------------------------------


def test_read_npz(tmp_path):
    p = tmp_path / "arrays.npz"
    X = np.arange(12, dtype=np.float64).reshape(4, 3)
    np.savez(p, X=X, y=np.array([0, 1, 1, 0]), feature_names=np.array(["a", "b", "c"]))
    t = read_npz(p)
    np.testing.assert_array_equal(t.X, X.astype(np.float32))
    assert (t.task, t.feature_names, t.name) == ("binary", ["a", "b", "c"], "arrays")

    np.savez(p, feats=X, labels=np.array(["x", "y", "z", "x"]))
    t = read_npz(p, x_key="feats", y_key="labels")
    assert (t.task, t.classes, t.y.tolist()) == ("multiclass", ["x", "y", "z"], [0, 1, 2, 0])
    assert t.feature_names == ["x0", "x1", "x2"]

    np.savez(p, X=X, y=np.array([[0, 1], [1, 1], [0, 0], [1, 0]]))
    assert read_npz(p).task == "multilabel"
    np.savez(p, X=X, y=np.array([0.1, 2.0, 3.5, 4.0]))
    t = read_npz(p)
    assert t.task == "regression" and t.y.dtype == np.float32


def test_read_npz_errors(tmp_path):
    p = tmp_path / "bad.npz"
    X = np.zeros((3, 2))
    np.savez(p, x=X, y=np.zeros(3))
    with pytest.raises(
        DataError, match=r"x_key 'X' not found \(did you mean 'x'\?\); keys in the file: x, y"
    ):
        read_npz(p)

    X_nan = X.copy()
    X_nan[2, 1] = np.nan
    np.savez(p, X=X_nan, y=np.array([0, 1, 0]))
    with pytest.raises(DataError, match=r"'X' row 2, column 1 is nan \(NaN/inf\)"):
        read_npz(p)

    np.savez(p, X=X, y=np.array([0.5, np.inf, 1.0]))
    with pytest.raises(DataError, match=r"'y' row 1 is inf \(NaN/inf\)"):
        read_npz(p)

    np.savez(p, X=np.zeros(3), y=np.zeros(3))
    with pytest.raises(DataError, match=r"must be 2-D \(n, p\), got shape \(3,\).*reshape"):
        read_npz(p)

    np.savez(p, X=X, y=np.zeros(4))
    with pytest.raises(DataError, match=r"'y' has shape \(4,\), but 'X' has 3 rows"):
        read_npz(p)

    np.savez(p, X=X, y=np.array([0.0, 1.0, 0.25]))
    with pytest.raises(
        DataError, match=r"float targets for a classifier: target 'y', row 2 has 0.25"
    ):
        read_npz(p, task="binary")

    single = tmp_path / "single.npy"
    np.save(single, X)
    with pytest.raises(DataError, match=r"expected an \.npz archive"):
        read_npz(single)
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(DataError, match=r"not a readable \.npz archive"):
        read_npz(text)


def test_missing_or_directory_path_names_the_path(tmp_path):
    with pytest.raises(DataError, match=r"nope\.csv: no such CSV file"):
        read_csv(tmp_path / "nope.csv", "y")
    with pytest.raises(DataError, match=r"no such \.npz file"):
        read_npz(tmp_path / "nope.npz")
    with pytest.raises(DataError, match="is a directory; expected a CSV file"):
        read_csv(tmp_path, "y")
