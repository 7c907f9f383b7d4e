"""What is particular to the cnn family: filter groups and their consumers."""

from __future__ import annotations

import pytest

from paretone.errors import ConfigError
from paretone.models import CONV_FILTERS, CNNConfig, build_model

SMALL_CNN = CNNConfig.uniform(num_classes=10, channels=(8, 8, 16, 16))


def test_cnn_structure_links_each_filter_group_to_its_consumer():
    structure = build_model(SMALL_CNN).structure()
    assert [u.kind for u in structure.prunable] == [CONV_FILTERS] * 4
    assert structure.prunable[0].modules == ("blocks.0.conv", "blocks.0.bn", "blocks.1.conv")
    assert structure.prunable[-1].modules[-1] == "head"
    assert [u.size for u in structure.prunable] == [8, 8, 16, 16]
    assert [(q.in_features, q.out_features) for q in structure.quantizable] == [
        (1, 8),
        (8, 8),
        (8, 16),
        (16, 16),
    ]


def test_a_cnn_needs_blocks():
    with pytest.raises(ConfigError, match="at least one block"):
        CNNConfig.uniform(num_classes=10, channels=())
