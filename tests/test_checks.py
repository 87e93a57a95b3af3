"""The tolerance checks that notebooks use for results of CPU training runs."""

import math

import pytest

from imagegen_lib.book.checks import expect, expect_between


def test_a_value_inside_its_band_prints_only_the_claim(capsys):
    expect_between("Set5 PSNR gain", 1.46, 1.2, 1.8, " dB")
    assert capsys.readouterr().out == "✓ Set5 PSNR gain in [1.2, 1.8] dB\n"  # no digits of the value


@pytest.mark.parametrize("value", [1.19, 1.81, math.nan, -math.inf])
def test_a_value_outside_its_band_fails_and_names_the_value(value):
    with pytest.raises(AssertionError, match="Set5 PSNR gain = .* outside its measured band"):
        expect_between("Set5 PSNR gain", value, 1.2, 1.8, " dB")


def test_an_empty_band_is_a_mistake_not_a_failure():
    with pytest.raises(ValueError, match="empty band"):
        expect_between("x", 1.0, 2.0, 1.0)


def test_expect(capsys):
    expect("10/10 digits present", True)
    assert capsys.readouterr().out == "✓ 10/10 digits present\n"
    with pytest.raises(AssertionError, match="claim failed on this machine: 10/10 digits present"):
        expect("10/10 digits present", False)
