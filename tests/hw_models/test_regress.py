from __future__ import annotations

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor

from paretone.hw_models._regress import _predict


def test_the_fast_tree_path_predicts_exactly_what_the_forest_does():
    rng = np.random.default_rng(0)
    x = rng.random((200, 4)) * 5
    forest = ExtraTreesRegressor(n_estimators=30, random_state=0).fit(x, np.sin(x).sum(axis=1))
    rows = rng.random((7, 4)) * 5
    np.testing.assert_allclose(_predict(forest, rows), forest.predict(rows), rtol=1e-12)
    assert _predict(forest, rows).shape == (7,)
