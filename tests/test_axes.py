"""Axis order in one place (helpers/data/axes.py): sizes, spacings, arrays and axis indices, compared per axis."""

import numpy as np
import pytest
import SimpleITK as sitk

from helpers.data.axes import (
    AP,
    ARRAY_AXES,
    AXES,
    CANONICAL_ORIENTATION,
    LR,
    SI,
    array_to_network,
    axis_index,
    axis_names,
    by_axis,
    canonical_grid,
    canonical_values,
    network_to_array,
    numpy_order,
    orientation,
    reorder,
    sitk_order,
    stored_values,
    to_canonical,
)
from helpers.data.inspection import inspect_series
from helpers.data.spider import (
    canonical_array,
    canonical_spacing,
    file_orientation,
    header_spacing,
    read_image,
    scan_dataset,
)

# one anatomy, every axis different: size and spacing per anatomical axis
SIZE = {LR: 5, SI: 13, AP: 9}
SPACING = {LR: 3.3, SI: 0.5, AP: 0.7}
ORIENTATIONS = ("LPS", "PIR", "ASL")  # SPIDER's two, and an oblique-free third that permutes every axis


def test_one_order_for_values_and_numpy_s_for_arrays():
    assert CANONICAL_ORIENTATION == "PIR"
    assert AXES == (AP, SI, LR) == axis_names(CANONICAL_ORIENTATION) and ARRAY_AXES == (LR, SI, AP)
    assert axis_names("LPS") == (LR, AP, SI) and axis_names("ASL") == (AP, SI, LR) and axis_names("rai") == (LR, AP, SI)
    assert axis_index(LR) == 2 and axis_index(SI) == 1 and axis_index(AP) == 0
    assert by_axis({LR: 0.2, SI: 0.05, AP: 0.01}) == (0.01, 0.05, 0.2)
    assert numpy_order((1, 2, 3)) == (3, 2, 1) and sitk_order(numpy_order((1, 2, 3))) == (1, 2, 3)
    assert reorder((1, 2, 3), (LR, SI, AP), (SI, AP, LR)) == (2, 3, 1)
    for bad in ("LPX", "LLS", "LP"):
        with pytest.raises(ValueError):
            axis_names(bad)
    with pytest.raises(ValueError):
        reorder((1, 2), (LR, SI, AP), AXES)


def test_arrays_between_numpy_and_the_network():
    array = np.arange(5 * 13 * 9).reshape(5, 13, 9)  # a canonical array: (LR, SI, AP)
    network = array_to_network(array)
    assert network.shape == sitk_order(array.shape) == (9, 13, 5) and network.flags["C_CONTIGUOUS"]
    assert network[2, 7, 3] == array[3, 7, 2]
    assert np.array_equal(network_to_array(network), array)


def _written(tmp_path, orient: str) -> sitk.Image:
    """An LPS image with the anatomy above, reoriented to `orient`, written to disk and read back."""
    lps = sitk.GetImageFromArray(np.random.default_rng(0).random(numpy_order(stored_values(
        [SIZE[a] for a in AXES], "LPS"))).astype(np.float32))
    lps.SetSpacing(stored_values([SPACING[a] for a in AXES], "LPS"))
    lps.SetOrigin((10.0, -20.0, 30.0))
    image = sitk.DICOMOrient(lps, orient)
    path = tmp_path / "images" / f"1_{'t1' if orient == 'LPS' else 't2' if orient == 'PIR' else 't2_SPACE'}.mha"
    path.parent.mkdir(exist_ok=True)
    sitk.WriteImage(image, str(path))
    return path


@pytest.mark.parametrize("orient", ORIENTATIONS)
def test_sizes_and_spacings_in_order_per_axis(tmp_path, orient):
    path = _written(tmp_path, orient)
    image = read_image(path)
    assert orientation(image) == file_orientation(path) == orient
    expected_size = tuple(SIZE[a] for a in AXES)
    expected_spacing = tuple(SPACING[a] for a in AXES)
    # stored order differs per orientation; the kit's order (AP, SI, LR) is the same for all of them
    assert canonical_values(image.GetSize(), orient) == expected_size
    assert stored_values(expected_size, orient) == image.GetSize()
    assert header_spacing(path) == pytest.approx(expected_spacing)
    canon = canonical_array(image)  # numpy's order: (LR, SI, AP)
    assert canon.shape == tuple(SIZE[a] for a in ARRAY_AXES) == numpy_order(expected_size)
    assert canonical_spacing(image) == pytest.approx(tuple(SPACING[a] for a in ARRAY_AXES))
    assert array_to_network(canon).shape == expected_size
    row = inspect_series(scan_dataset(tmp_path).series[0])
    assert row["shape (AP, SI, LR)"] == "x".join(map(str, expected_size))
    assert (row["spacing AP mm"], row["spacing SI mm"], row["spacing LR mm"]) == pytest.approx(expected_spacing)


def test_same_voxel_in_every_orientation(tmp_path):
    """The canonical array holds the same voxel at the same index whatever the stored orientation."""
    arrays = []
    for orient in ORIENTATIONS:
        (tmp_path / orient).mkdir()
        arrays.append(canonical_array(read_image(_written(tmp_path / orient, orient))))
    for other in arrays[1:]:
        assert np.array_equal(arrays[0], other)


def test_canonical_grid_is_the_reoriented_images_grid():
    """resample.preprocess resamples onto canonical_grid(image) instead of reorienting first: same grid, every
    one of the 48 orientations, oblique or not."""
    import itertools

    base = sitk.GetImageFromArray(np.zeros((7, 11, 13), np.float32))
    base.SetSpacing((0.5, 0.7, 3.3))
    base.SetOrigin((10.0, -5.0, 3.0))
    opposite = {"L": "R", "P": "A", "S": "I"}
    tilt = np.array([[np.cos(0.1), -np.sin(0.1), 0], [np.sin(0.1), np.cos(0.1), 0], [0, 0, 1]])
    for letters in itertools.permutations("LPS"):
        for flips in itertools.product((False, True), repeat=3):
            image = sitk.DICOMOrient(base, "".join(opposite[c] if f else c for c, f in zip(letters, flips)))
            oblique = sitk.Image(image)
            oblique.SetDirection((tilt @ np.array(image.GetDirection()).reshape(3, 3)).ravel().tolist())
            for img in (image, oblique):
                grid, canon = canonical_grid(img), to_canonical(img)
                assert grid["size"] == list(canon.GetSize()) and np.allclose(grid["spacing"], canon.GetSpacing())
                assert np.allclose(grid["origin"], canon.GetOrigin(), atol=1e-9)
                assert np.allclose(grid["direction"], canon.GetDirection())
