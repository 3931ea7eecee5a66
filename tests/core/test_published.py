"""Published figures, asserted exactly."""

import pytest

from app.core.calculator import builtin_table
from app.core.table import Table


def volume(table: Table, name: str) -> tuple[int, int, int]:
    row = next(row for row in table.layers if row.name == name)
    return (row.output.width, row.output.height, row.output.channels)


def last_pool(table: Table) -> tuple[int, int, int]:
    row = [row for row in table.layers if row.kind == "maxpool"][-1]
    return (row.output.width, row.output.height, row.output.channels)


def test_alexnet_2012_has_60_965_224_params() -> None:
    assert builtin_table("alexnet-2012").totals.params == 60_965_224


def test_alexnet_torchvision_params_and_macs() -> None:
    totals = builtin_table("alexnet-torchvision").totals
    assert totals.params == 61_100_840
    assert totals.macs == 714_188_480
    assert totals.flops == 2 * 714_188_480


def test_vgg16_params_split_and_macs() -> None:
    totals = builtin_table("vgg16").totals
    assert totals.params == 138_357_544
    assert totals.conv_params == 14_714_688
    assert totals.fc_params == 123_642_856
    assert totals.macs == 15_470_264_320


@pytest.mark.parametrize(("spec_id", "params"), [("vgg16-bn", 138_365_992), ("vgg19", 143_667_240)])
def test_vgg_variant_totals(spec_id: str, params: int) -> None:
    assert builtin_table(spec_id).totals.params == params


def test_zfnet_2013_volumes_of_fig_3() -> None:
    table = builtin_table("zfnet-2013")
    assert volume(table, "conv1") == (110, 110, 96)
    assert volume(table, "pool1") == (55, 55, 96)
    assert volume(table, "conv2") == (26, 26, 256)
    assert volume(table, "pool2") == (13, 13, 256)
    assert last_pool(table) == (6, 6, 256)


def test_alexnet_lecture_conv1_and_last_pool() -> None:
    table = builtin_table("alexnet-lecture")
    conv1 = table.layers[0]
    assert volume(table, "conv1") == (55, 55, 96)
    assert conv1.weights == 34_848
    assert conv1.biases == 96
    assert last_pool(table) == (2, 2, 256)


def test_zfnet_lecture_conv1_is_56_exactly() -> None:
    assert volume(builtin_table("zfnet-lecture"), "conv1") == (56, 56, 96)


def test_formulas_carry_the_numbers() -> None:
    conv1 = builtin_table("alexnet-lecture").layers[0]
    assert conv1.formula.output == "(227 - 11 + 2*0) / 4 + 1 = 55"
    assert conv1.formula.params == "11*11*3*96 weights + 96 biases = 34,848 + 96 = 34,944 params"
    assert conv1.formula.macs == "55*55*96 outputs * 11*11*3 MACs each = 105,415,200 MACs"


def test_depth_counts_layers_with_weights_as_the_lecture_does() -> None:
    assert builtin_table("alexnet-lecture").totals.depth == 8
    assert builtin_table("vgg19-bn").totals.depth == 19


def test_most_parameters_sit_in_the_fc_layers() -> None:
    totals = builtin_table("alexnet-lecture").totals
    assert totals.fc_params == 25_076_712
    assert totals.fc_share == round(25_076_712 / 28_823_912, 6)
    assert totals.conv_macs == 589_242_912
    assert totals.fc_macs == 25_067_520


def test_receptive_field_and_jump_of_alexnet_lecture() -> None:
    rows = {row.name: row for row in builtin_table("alexnet-lecture").layers}
    assert (rows["conv1"].receptive_field, rows["conv1"].jump) == (11, 4)
    assert (rows["pool1"].receptive_field, rows["pool1"].jump) == (19, 8)
    assert (rows["conv2"].receptive_field, rows["conv2"].jump) == (51, 8)
    assert (rows["pool3"].receptive_field, rows["pool3"].jump) == (195, 32)
    assert (rows["fc6"].receptive_field, rows["fc6"].jump) == (227, None)


def test_vgg16_receptive_field_before_the_classifier() -> None:
    rows = {row.name: row for row in builtin_table("vgg16").layers}
    assert (rows["conv5_3"].receptive_field, rows["conv5_3"].jump) == (196, 16)
    assert (rows["pool5"].receptive_field, rows["pool5"].jump) == (212, 32)


def test_activations_count_and_fp32_bytes() -> None:
    conv1 = builtin_table("alexnet-lecture").layers[0]
    assert conv1.activations == 55 * 55 * 96
    assert conv1.activation_bytes == 4 * 55 * 55 * 96
