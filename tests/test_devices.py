"""The device rule shared by every learner, and the CPU device setup."""

import pytest

from learn2rl.errors import Learn2RLError
from learn2rl.learners.base import usable_device_count


@pytest.mark.parametrize(
    "batch,available,multiple,expected",
    [
        (256, 2, 1, 2),
        (256, 6, 1, 4),  # a 6-core machine: 256 tasks split over 4 devices
        (256, 3, 1, 2),
        (256, 10, 1, 8),
        (1024, 12, 1, 8),
        (12, 2, 4, 1),  # 6 tasks per device would not split into 4 PPO minibatches
        (16, 2, 4, 2),
        (7, 4, 1, 1),
        (20, 1, 1, 1),
    ],
)
def test_largest_divisor_of_the_batch(batch, available, multiple, expected):
    count = usable_device_count(batch, available, multiple)
    assert count == expected
    assert batch % count == 0 and (batch // count) % multiple == 0


def test_a_batch_that_no_split_fits_is_an_error():
    with pytest.raises(Learn2RLError, match="cannot be split"):
        usable_device_count(10, 2, 4)
