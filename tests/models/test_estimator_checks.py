"""scikit-learn's estimator checks over pmed's PyTorch estimators (GRU-D and the image CNN).

Each check that cannot apply is listed with its reason; every other check must pass.
"""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from pmed.imaging.train import ImageClassifier  # noqa: E402
from pmed.timeseries.grud import GRUDClassifier  # noqa: E402

# scikit-learn's checks feed 2-D tabular arrays; an image classifier trains on (N, C, H, W)
# images and refuses them, so every check that fits (or validates 2-D input) cannot apply
_TABULAR = "feeds 2-D tabular X; ImageClassifier trains on (N, C, H, W) or (N, H, W) images"
_IMAGE_FAILS = {name: _TABULAR for name in (
    "check_fit_score_takes_y", "check_estimators_overwrite_params", "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self", "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_complex_data", "check_dtype_object",
    "check_estimators_empty_data_messages", "check_pipeline_consistency", "check_estimators_nan_inf",
    "check_estimator_sparse_tag", "check_estimator_sparse_array", "check_estimator_sparse_matrix",
    "check_estimators_pickle", "check_f_contiguous_array_estimator", "check_classifier_data_not_an_array",
    "check_classifiers_one_label", "check_classifiers_classes", "check_classifiers_train",
    "check_classifiers_regression_target", "check_supervised_y_2d", "check_class_weight_classifiers",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance", "check_fit2d_1sample",
    "check_fit2d_1feature", "check_dict_unchanged", "check_fit_idempotent", "check_fit_check_is_fitted",
    "check_n_features_in", "check_fit2d_predict1d", "check_requires_y_none")}


def _expected_failed_checks(estimator) -> dict[str, str]:
    if isinstance(estimator, ImageClassifier):
        return _IMAGE_FAILS
    return {}


@pytest.fixture(autouse=True)
def _one_thread():
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@parametrize_with_checks(
    [GRUDClassifier(hidden_size=8, max_epochs=8, lr=0.05, batch_size=32, device="cpu", n_jobs=1),
     ImageClassifier(arch="cnn", width=0.25, max_epochs=1, batch_size=8, device="cpu", n_jobs=1)],
    expected_failed_checks=_expected_failed_checks,
)
def test_sklearn_compatible(estimator, check):
    check(estimator)
