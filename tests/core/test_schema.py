import math

from mnist_lab.core.schema import NUMBER, all_of, is_finite, is_of, wrong_fields


def test_a_bool_is_no_number_and_a_huge_integer_is_refused():
    assert is_of(3, int) and is_of(2.5, NUMBER) and is_of(math.nan, NUMBER)
    assert not is_of(True, int) and not is_of(False, NUMBER)
    assert not is_of(2**63, int) and is_of(2**63 - 1, int) and not is_of(-2**63, NUMBER)


def test_finite_means_a_number_that_is_neither_nan_nor_infinite():
    assert is_finite(0.5) and is_finite(7)
    assert not any(is_finite(value) for value in (math.nan, math.inf, -math.inf, True, "1", None, 2**64))


def test_wrong_fields_names_each_missing_or_mistyped_field():
    kinds = {"loss": NUMBER, "name": str, "epochs": int}
    assert wrong_fields({"loss": 0.1, "name": "a", "epochs": 3}, kinds) == []
    assert wrong_fields({"loss": True, "name": "a"}, kinds) == ["loss", "epochs"]
    assert wrong_fields(["not", "a", "mapping"], kinds) == ["loss", "name", "epochs"]


def test_all_of_a_list_or_a_mapping():
    assert all_of(["a", "b"], str) and all_of({"x": "a"}, str) and all_of([], str)
    assert not all_of({"x": 1}, str) and not all_of("ab", str) and not all_of(None, str)
