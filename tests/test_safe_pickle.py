import pickle

import numpy as np
import pytest
import scipy.sparse

from hogsa import safe_pickle


class _Exploit:
    def __reduce__(self):
        return (eval, ("1 + 1",))


def test_numpy_dict_in_npy_round_trips(tmp_path):
    path = tmp_path / "x.npy"
    value = {"right": {"rot": np.arange(6.0).reshape(2, 3), "n": np.int64(3)}, "names": ["a", "b"]}
    np.save(path, value, allow_pickle=True)
    loaded = safe_pickle.load(path)
    np.testing.assert_array_equal(loaded["right"]["rot"], value["right"]["rot"])  # a pickled copy: exact
    assert loaded["right"]["n"] == 3 and loaded["names"] == ["a", "b"]


def test_code_execution_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"x": _Exploit()}))
    with pytest.raises(pickle.UnpicklingError, match=r"evil.pkl: refused to load class builtins.eval"):
        safe_pickle.load(path)


def test_sparse_only_when_admitted(tmp_path):
    path = tmp_path / "s.pkl"
    matrix = scipy.sparse.random(5, 7, density=0.3, format="csc", random_state=0)
    path.write_bytes(pickle.dumps({"J": matrix}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="csc_matrix"):
        safe_pickle.load(path)
    loaded = safe_pickle.load(path, allow_sparse=True)["J"]
    np.testing.assert_array_equal(loaded.toarray(), matrix.toarray())  # a pickled copy: exact
