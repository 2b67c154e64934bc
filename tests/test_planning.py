from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.errors import LocalFileError
from engine.planning import (
    DEFAULT_PART_SIZE,
    DEFAULT_SINGLE_UPLOAD_LIMIT,
    MAX_OBJECT_SIZE,
    MAX_PART_SIZE,
    MAX_PARTS,
    MAX_SINGLE_UPLOAD_SIZE,
    MIN_PART_SIZE,
    FileTooLarge,
    GiB,
    MiB,
    Part,
    TiB,
    UploadPlan,
    plan_resumed_upload,
    plan_upload,
)


def assert_valid(plan: UploadPlan) -> None:
    """The parts tile the file and respect S3's limits."""
    parts = list(plan.parts())
    assert len(parts) == plan.part_count
    assert [p.number for p in parts] == list(range(1, plan.part_count + 1))
    offset = 0
    for part in parts:
        assert part.offset == offset
        offset += part.size
    assert offset == plan.file_size
    if plan.multipart:
        assert plan.part_count <= MAX_PARTS
        assert all(MIN_PART_SIZE <= p.size <= MAX_PART_SIZE for p in parts[:-1])
        assert 0 < parts[-1].size <= MAX_PART_SIZE
    else:
        assert plan.part_count == 1
        assert plan.file_size <= MAX_SINGLE_UPLOAD_SIZE


def test_constants() -> None:
    assert MIN_PART_SIZE == 5 * 1024**2
    assert MAX_PART_SIZE == MAX_SINGLE_UPLOAD_SIZE == 5 * 1024**3
    assert MAX_OBJECT_SIZE == 5 * 1024**4
    assert DEFAULT_SINGLE_UPLOAD_LIMIT == DEFAULT_PART_SIZE == 20 * 1024**2


def test_empty_file_is_one_empty_single_upload() -> None:
    plan = plan_upload(0)
    assert plan == UploadPlan(file_size=0, multipart=False, part_size=0, part_count=1)
    assert list(plan.parts()) == [Part(number=1, offset=0, size=0)]


def test_empty_file_is_single_even_with_a_zero_limit() -> None:
    assert not plan_upload(0, single_upload_limit=0).multipart


def test_one_byte() -> None:
    plan = plan_upload(1)
    assert plan == UploadPlan(file_size=1, multipart=False, part_size=1, part_count=1)
    assert plan.part(1) == Part(number=1, offset=0, size=1)


def test_exactly_the_single_limit_is_single() -> None:
    plan = plan_upload(20 * MiB)
    assert not plan.multipart
    assert plan.part_size == 20 * MiB
    assert plan.part_count == 1


def test_one_byte_over_the_single_limit_is_multipart() -> None:
    plan = plan_upload(20 * MiB + 1)
    assert plan.multipart
    assert plan.part_size == 20 * MiB
    assert plan.part_count == 2
    assert plan.part(2) == Part(number=2, offset=20 * MiB, size=1)
    assert_valid(plan)


def test_five_mib_parts() -> None:
    plan = plan_upload(12 * MiB, single_upload_limit=10 * MiB, part_size=5 * MiB)
    assert [(p.offset, p.size) for p in plan.parts()] == [
        (0, 5 * MiB),
        (5 * MiB, 5 * MiB),
        (10 * MiB, 2 * MiB),
    ]


def test_exactly_max_parts_keeps_the_part_size() -> None:
    plan = plan_upload(MAX_PARTS * 5 * MiB, part_size=5 * MiB)
    assert plan.part_size == 5 * MiB
    assert plan.part_count == MAX_PARTS
    assert plan.last_part_size == 5 * MiB
    assert_valid(plan)


def test_one_byte_more_than_max_parts_grows_the_part_size_by_a_mib() -> None:
    plan = plan_upload(MAX_PARTS * 5 * MiB + 1, part_size=5 * MiB)
    assert plan.part_size == 6 * MiB
    assert plan.part_count <= MAX_PARTS
    assert_valid(plan)


def test_grown_part_size_is_the_smallest_whole_mib_that_fits() -> None:
    file_size = MAX_PARTS * 20 * MiB + 123
    plan = plan_upload(file_size)
    assert plan.part_size % MiB == 0
    assert plan.part_count <= MAX_PARTS
    assert -(-file_size // (plan.part_size - MiB)) > MAX_PARTS
    assert_valid(plan)


def test_five_tib_exactly_fits() -> None:
    plan = plan_upload(5 * TiB)
    assert plan.multipart
    assert plan.part_size == 525 * MiB
    assert plan.part_count == 9_987
    assert plan.part_size <= MAX_PART_SIZE
    assert_valid(plan)


def test_five_tib_plus_one_is_too_large() -> None:
    with pytest.raises(FileTooLarge) as caught:
        plan_upload(5 * TiB + 1)
    assert caught.value.size == 5 * TiB + 1
    assert caught.value.limit == MAX_OBJECT_SIZE
    message = str(caught.value)
    assert "5 TiB" in message
    assert "5,497,558,138,881 bytes" in message
    assert isinstance(caught.value, LocalFileError)  # one line on the CLI, never a traceback


def test_resumed_plan_rejects_too_large_files() -> None:
    with pytest.raises(FileTooLarge):
        plan_resumed_upload(5 * TiB + 1, part_size=GiB)


def test_negative_size() -> None:
    with pytest.raises(ValueError, match="negative"):
        plan_upload(-1)
    with pytest.raises(ValueError, match="negative"):
        plan_resumed_upload(-1, part_size=5 * MiB)


@pytest.mark.parametrize("limit", [-1, MAX_SINGLE_UPLOAD_SIZE + 1])
def test_single_upload_limit_out_of_range(limit: int) -> None:
    with pytest.raises(ValueError, match="single upload limit"):
        plan_upload(1, single_upload_limit=limit)


def test_single_upload_limit_at_the_put_object_maximum() -> None:
    plan = plan_upload(MAX_SINGLE_UPLOAD_SIZE, single_upload_limit=MAX_SINGLE_UPLOAD_SIZE)
    assert not plan.multipart


@pytest.mark.parametrize("part_size", [MIN_PART_SIZE - 1, MAX_PART_SIZE + 1, 0])
def test_part_size_out_of_range(part_size: int) -> None:
    with pytest.raises(ValueError, match="part size"):
        plan_upload(100 * MiB, part_size=part_size)
    with pytest.raises(ValueError, match="part size"):
        plan_resumed_upload(100 * MiB, part_size=part_size)


def test_part_size_is_checked_even_for_a_single_upload() -> None:
    with pytest.raises(ValueError, match="part size"):
        plan_upload(1, part_size=1)


def test_low_single_limit_with_min_part_size() -> None:
    plan = plan_upload(6 * MiB, single_upload_limit=MiB, part_size=5 * MiB)
    assert [p.size for p in plan.parts()] == [5 * MiB, MiB]


def test_small_file_over_a_low_limit_is_one_part_multipart() -> None:
    plan = plan_upload(3 * MiB, single_upload_limit=MiB, part_size=5 * MiB)
    assert plan.multipart
    assert plan.part_count == 1
    # The nominal part size is kept so that it can be recorded and validated on resume.
    assert plan.part_size == 5 * MiB
    assert list(plan.parts()) == [Part(number=1, offset=0, size=3 * MiB)]
    assert plan_resumed_upload(3 * MiB, part_size=plan.part_size) == plan


def test_one_byte_multipart() -> None:
    plan = plan_upload(1, single_upload_limit=0, part_size=MIN_PART_SIZE)
    assert plan.multipart
    assert list(plan.parts()) == [Part(number=1, offset=0, size=1)]


@pytest.mark.parametrize("number", [0, -1, 3])
def test_part_number_out_of_range(number: int) -> None:
    plan = plan_upload(40 * MiB)
    assert plan.part_count == 2
    with pytest.raises(ValueError, match="part number"):
        plan.part(number)


def test_single_upload_part_number_out_of_range() -> None:
    with pytest.raises(ValueError):
        plan_upload(10).part(2)


def test_resumed_plan_matches_the_original() -> None:
    for size in (20 * MiB + 1, 1 * GiB + 7, MAX_PARTS * 20 * MiB + 1, 5 * TiB):
        plan = plan_upload(size)
        assert plan_resumed_upload(size, part_size=plan.part_size) == plan


def test_resumed_plan_keeps_the_recorded_part_size() -> None:
    with pytest.raises(ValueError, match="more than"):
        plan_resumed_upload(MAX_PARTS * 5 * MiB + 1, part_size=5 * MiB)


def test_resumed_plan_of_an_empty_file() -> None:
    with pytest.raises(ValueError, match="empty"):
        plan_resumed_upload(0, part_size=5 * MiB)


@pytest.mark.parametrize(
    "fields",
    [
        dict(file_size=10, multipart=False, part_size=5, part_count=1),
        dict(file_size=10, multipart=False, part_size=10, part_count=2),
        dict(file_size=10 * MiB, multipart=True, part_size=5 * MiB, part_count=3),
        dict(file_size=0, multipart=True, part_size=5 * MiB, part_count=0),
        dict(file_size=-1, multipart=False, part_size=-1, part_count=1),
    ],
)
def test_inconsistent_plans_are_refused(fields: dict[str, int | bool]) -> None:
    with pytest.raises(ValueError):
        UploadPlan(**fields)  # type: ignore[arg-type]


def test_plans_are_frozen() -> None:
    plan = plan_upload(1)
    with pytest.raises(AttributeError):
        plan.part_size = 2  # type: ignore[misc]


def test_many_sizes_tile_the_file() -> None:
    # Sizes around every boundary that matters, under both the default and tight settings.
    boundaries = [0, 1, MIN_PART_SIZE, 20 * MiB, MAX_PARTS * 5 * MiB, MAX_PARTS * 20 * MiB, 5 * TiB]
    sizes = {max(0, b + d) for b in boundaries for d in (-MiB, -2, -1, 0, 1, 2, MiB)}
    settings = ((DEFAULT_SINGLE_UPLOAD_LIMIT, DEFAULT_PART_SIZE), (0, MIN_PART_SIZE))
    for size in sorted(s for s in sizes if s <= MAX_OBJECT_SIZE):
        for limit, part_size in settings:
            assert_valid(plan_upload(size, single_upload_limit=limit, part_size=part_size))


@given(
    file_size=st.integers(min_value=0, max_value=MAX_OBJECT_SIZE),
    single_upload_limit=st.integers(min_value=0, max_value=MAX_SINGLE_UPLOAD_SIZE),
    part_size=st.integers(min_value=MIN_PART_SIZE, max_value=MAX_PART_SIZE),
)
def test_any_plan_tiles_the_file(file_size: int, single_upload_limit: int, part_size: int) -> None:
    plan = plan_upload(file_size, single_upload_limit=single_upload_limit, part_size=part_size)
    assert plan.multipart == (file_size > single_upload_limit)
    if plan.multipart:
        assert plan.part_size >= part_size
        assert plan_resumed_upload(file_size, part_size=plan.part_size) == plan
    # Check the first, a middle and the last parts directly; walking 10,000 parts per example
    # would make the property test slow.
    numbers = {1, (plan.part_count + 1) // 2, plan.part_count}
    for number in numbers:
        part = plan.part(number)
        assert part.offset == (number - 1) * plan.part_size
        assert part.size > 0 or file_size == 0
        if number < plan.part_count:
            assert MIN_PART_SIZE <= part.size <= MAX_PART_SIZE
            assert plan.part(number + 1).offset == part.end
    assert plan.part(plan.part_count).end == file_size
    assert plan.part_count <= MAX_PARTS


@given(file_size=st.integers(min_value=0, max_value=2 * GiB))
def test_any_moderate_plan_tiles_the_file(file_size: int) -> None:
    assert_valid(plan_upload(file_size, single_upload_limit=0, part_size=MIN_PART_SIZE))
