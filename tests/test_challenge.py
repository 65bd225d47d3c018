"""The SPIDER challenge's instance scoring: its rules on hand-made and synthetic masks, its quirks, the `score`
command on real files, and the kit's numbering scored against the references it came from."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from helpers.evaluation.challenge import CHALLENGE_METRICS, numbering_cost, scan_metrics, score_files, score_instances
from helpers.evaluation.dice import predecessor_score
from helpers.evaluation.distances import surface
from helpers.inference.numbering import renumbered

from .conftest import kit


def run_score(reference, prediction, tmp_path, process: bool = False):
    """`python -m helpers score` in this process, or as a process of its own (`process`: the real entry point)."""
    out = tmp_path / "score.json"
    args = ["score", "--reference", str(reference), "--prediction", str(prediction), "--json", str(out), "--csv",
            str(tmp_path / "score.csv")]
    if process:
        run = subprocess.run([sys.executable, "-m", "helpers", *args], capture_output=True, text=True)
    else:
        run = kit(*args)
    return run, (json.loads(out.read_text()) if out.is_file() else None)


def write_like(array, like: sitk.Image, path):
    image = sitk.GetImageFromArray(array.astype(np.int16))
    image.CopyInformation(like)
    path.parent.mkdir(parents=True, exist_ok=True)
    sitk.WriteImage(image, str(path), True)
    return path


def masks(small_dataset):
    return sorted((small_dataset / "masks").glob("*.mha"))


def test_reference_scored_against_itself_is_perfect(small_dataset, tmp_path):
    run, doc = run_score(small_dataset / "masks", small_dataset / "masks", tmp_path, process=True)
    assert run.returncode == 0, run.stderr[-2000:]
    assert [s["scan"] for s in doc["scans"]] == [p.stem for p in masks(small_dataset)]
    for block in (doc, doc["corrected"]):
        for scan in block["scans"]:
            assert list(scan) == ["scan", *CHALLENGE_METRICS]
            assert all(scan[m] == 1 for m in CHALLENGE_METRICS if "ASD" not in m)
            assert all(scan[m] == 0 for m in CHALLENGE_METRICS if "ASD" in m)
        assert set(block["summary"]) == set(CHALLENGE_METRICS)
        assert block["summary"]["OveralDiceScore"] == {"mean": 1.0, "sd": 0.0, "n": len(doc["scans"]), "complete": True}
    assert (tmp_path / "score.csv").read_text().splitlines()[0].startswith("scan,DiceScoreVertebrae,")


def test_vertebrae_one_level_off_keep_the_challenge_dice_but_not_the_predecessor_score(small_dataset, tmp_path):
    reference = masks(small_dataset)[0]
    mask = sitk.ReadImage(str(reference))
    ref = sitk.GetArrayFromImage(mask)
    off = ref.copy()
    vertebra = (ref >= 1) & (ref <= 24)
    off[vertebra] += 1  # every vertebra called one level higher
    write_like(off, mask, tmp_path / "pred" / reference.name)
    run, doc = run_score(small_dataset / "masks", tmp_path / "pred", tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    scan = doc["scans"][0]
    assert scan["DiceScoreVertebrae"] == 1 and scan["DetectionRateVertebrae"] == 1 and scan["OveralDiceScore"] == 1
    assert predecessor_score(ref, off) < predecessor_score(ref, ref) - 0.1


def test_a_prediction_stored_as_float_with_label_values_is_scored(small_dataset, tmp_path):
    reference = masks(small_dataset)[0]
    mask = sitk.ReadImage(str(reference))
    as_float = sitk.Cast(mask, sitk.sitkFloat32)
    (tmp_path / "pred").mkdir()
    sitk.WriteImage(as_float, str(tmp_path / "pred" / reference.name))
    m = scan_metrics(score_files(reference, tmp_path / "pred" / reference.name))
    assert m["OveralDiceScore"] == 1 and m["OveralASD"] == 0


def test_a_missing_disc_costs_what_the_rule_says(small_dataset, tmp_path):
    reference = masks(small_dataset)[-1]
    mask = sitk.ReadImage(str(reference))
    ref = sitk.GetArrayFromImage(mask)
    discs = sorted(v for v in np.unique(ref) if v > 200)
    labels = [v for v in np.unique(ref) if v > 0]
    pred = ref.copy()
    pred[pred == discs[1]] = 0
    write_like(pred, mask, tmp_path / "pred" / reference.name)
    run, doc = run_score(small_dataset / "masks", tmp_path / "pred", tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    scan, corrected = doc["scans"][0], doc["corrected"]["scans"][0]
    assert scan["DetectionRateDiscs"] == pytest.approx((len(discs) - 1) / len(discs))
    assert scan["DiceScoreDiscs"] == 1  # the missed disc is left out of the mean Dice ...
    assert scan["OveralDiceScore"] == pytest.approx((len(labels) - 1) / len(labels))  # ... but not of the overall
    assert scan["ASDDiscs"] is None and scan["OveralASD"] is None  # challenge: a disc without a match -> NaN
    assert corrected["ASDDiscs"] == 0 and corrected["OveralASD"] == 0  # corrected: the matched discs only


def test_an_empty_prediction_scores_zero_without_a_crash(small_dataset, tmp_path):
    reference = masks(small_dataset)[0]
    mask = sitk.ReadImage(str(reference))
    write_like(np.zeros(mask.GetSize()[::-1]), mask, tmp_path / "pred" / reference.name)
    run, doc = run_score(small_dataset / "masks", tmp_path / "pred", tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    scan, corrected = doc["scans"][0], doc["corrected"]["scans"][0]
    for block in (scan, corrected):
        assert block["OveralDiceScore"] == 0 and block["DiceScoreSpinalCanal"] == 0
        assert block["DetectionRateVertebrae"] == 0 and block["DetectionRateDiscs"] == 0
        assert all(block[m] is None for m in CHALLENGE_METRICS if "ASD" in m)  # no distance to nothing
    assert scan["DiceScoreVertebrae"] is None and scan["DiceScoreDiscs"] is None  # challenge: mean of no detection
    assert corrected["DiceScoreVertebrae"] == 0 and corrected["DiceScoreDiscs"] == 0


def test_shifted_boxes_have_the_distance_computed_by_hand(tmp_path):
    # 2-voxel-thick boxes: every voxel is a border voxel. Shifted by one voxel, half of each box's voxels lie
    # on the other's border (distance 0) and half one voxel away, so ASD = spacing along the shift / 2.
    ref = np.zeros((10, 12, 14), np.int16)
    ref[2:4, 2:6, 2:6] = 1  # a vertebra, shifted along z (array axis 0) below
    ref[6:10, 6:10, 8:10] = 201  # a disc, shifted along x (array axis 2) below
    ref[1:3, 9:11, 1:3] = 100  # the canal, unchanged
    pred = np.zeros_like(ref)
    pred[3:5, 2:6, 2:6] = 1
    pred[6:10, 6:10, 9:11] = 201
    pred[ref == 100] = 100
    image = sitk.GetImageFromArray(ref)
    image.SetSpacing((0.5, 1.0, 2.0))  # x, y, z
    a = write_like(ref, image, tmp_path / "ref" / "1_t1.mha")
    instances = score_files(a, write_like(pred, image, tmp_path / "pred" / "1_t1.mha"))
    challenge, corrected = scan_metrics(instances, "challenge"), scan_metrics(instances, "corrected")
    assert challenge["DiceScoreVertebrae"] == challenge["DiceScoreDiscs"] == pytest.approx(0.5)
    assert corrected["ASDVertebrae"] == pytest.approx(2.0 / 2)  # z spacing 2 mm
    assert corrected["ASDDiscs"] == pytest.approx(0.5 / 2)  # x spacing 0.5 mm
    assert challenge["ASDVertebrae"] == pytest.approx(0.5 / 2)  # quirk: GetSpacing() (x, y, z) on (z, y, x) arrays
    assert challenge["ASDDiscs"] == pytest.approx(2.0 / 2)
    assert challenge["ASDSpinalCanal"] == 0 and corrected["OveralASD"] == pytest.approx((1.0 + 0.25 + 0) / 3)


def challenge_by_hand(ref, pred, sampling):
    """The challenge's rules, written out the slow way: whole-image erosion and distance transforms."""
    footprint = ndimage.generate_binary_structure(3, 3)
    out = {}
    for label in np.unique(ref[ref > 0]):
        overlap = pred[ref == label]
        overlap = overlap[overlap > 0]
        if not overlap.size:
            out[int(label)] = (0, 0.0, math.nan)
            continue
        match = int(np.bincount(overlap).argmax())
        a, b = ref == label, pred == match
        dice = 2 * (a & b).sum() / (a.sum() + b.sum())
        border_a, border_b = a ^ ndimage.binary_erosion(a, footprint), b ^ ndimage.binary_erosion(b, footprint)
        to_a = ndimage.distance_transform_edt(~border_a, sampling=sampling)[border_b]
        to_b = ndimage.distance_transform_edt(~border_b, sampling=sampling)[border_a]
        out[int(label)] = (match, dice, np.concatenate([to_a, to_b]).mean())
    return out


@pytest.mark.parametrize("near, far_method", [(2, None), (0, "tree"), (0, "map"), (0, "band")],
                         ids=["as configured", "KD-tree only", "distance maps only", "bands of rows only"])
def test_fast_scoring_equals_the_rules_written_out(small_dataset, monkeypatch, near, far_method):
    monkeypatch.setattr(surface, "NEAR_VOXELS", near)
    monkeypatch.setattr(surface, "FAR_METHOD", far_method)
    rng = np.random.default_rng(0)
    for path in masks(small_dataset)[::2]:
        mask = sitk.ReadImage(str(path))
        ref = sitk.GetArrayFromImage(mask)
        pred = np.roll(ref, 1, axis=1)
        pred[pred == 203] = 0  # a disc with no match at all
        pred[pred == 2] = 1  # two vertebrae merged into one predicted label
        noise = rng.random(ref.shape) < 0.02
        pred[noise] = rng.choice([0, 1, 3, 100, 201], noise.sum())  # fragments all over the volume
        instances = {i.label: i for i in score_instances(ref, pred, mask.GetSpacing())}
        for variant, sampling in (("challenge", mask.GetSpacing()), ("corrected", mask.GetSpacing()[::-1])):
            expected = challenge_by_hand(ref, pred, sampling)
            assert set(expected) == set(instances)
            for label, (match, dice, asd) in expected.items():
                got = instances[label]
                assert got.match == match and got.dice == pytest.approx(dice, abs=1e-12), (path.name, label)
                assert got.asd[variant] == pytest.approx(asd, rel=1e-5, nan_ok=True), (path.name, label, variant)


def test_partial_vertebrae_count_only_in_the_overall_figures():
    ref = np.zeros((8, 20, 20), np.int16)
    ref[1:3, 2:8, 2:8], ref[4:6, 2:8, 2:8], ref[1:6, 12:16, 12:16] = 1, 201, 101
    pred = ref.copy()
    pred[ref == 101] = 0  # the partly visible vertebra is missed
    m = scan_metrics(score_instances(ref, pred, (1.0, 1.0, 1.0)))
    assert m["DiceScoreVertebrae"] == 1 and m["DetectionRateVertebrae"] == 1
    assert m["OveralDiceScore"] == pytest.approx(2 / 3)
    assert m["DiceScoreSpinalCanal"] == 999  # quirk: no canal in the reference
    assert math.isnan(scan_metrics(score_instances(ref, pred, (1.0, 1.0, 1.0)), "corrected")["DiceScoreSpinalCanal"])


def test_a_reference_without_vertebrae_or_anything_does_not_crash():
    ref = np.zeros((6, 10, 10), np.int16)
    ref[1:3, 2:6, 2:6] = 201
    for variant in ("challenge", "corrected"):
        m = scan_metrics(score_instances(ref, ref, (1.0, 1.0, 1.0)), variant)  # the challenge's code divides by 0
        assert math.isnan(m["DetectionRateVertebrae"]) and m["DetectionRateDiscs"] == 1 and m["OveralDiceScore"] == 1
        empty = scan_metrics(score_instances(ref * 0, ref, (1.0, 1.0, 1.0)), variant)  # the challenge's crashes
        assert all(math.isnan(v) for v in empty.values())


def test_bad_input_is_named(small_dataset, tmp_path):
    reference = masks(small_dataset)[0]
    mask = sitk.ReadImage(str(reference))
    ref = sitk.GetArrayFromImage(mask)
    write_like(ref, mask, tmp_path / "pred" / "99_t1.mha")
    run, _ = run_score(small_dataset / "masks", tmp_path / "pred", tmp_path)
    assert run.returncode == 2 and "99_t1.mha: not found: no reference mask for" in run.stderr

    other = sitk.GetImageFromArray(ref)
    other.CopyInformation(mask)
    other.SetSpacing([s * 2 for s in mask.GetSpacing()])
    (tmp_path / "grid").mkdir()
    sitk.WriteImage(other, str(tmp_path / "grid" / reference.name))
    run, _ = run_score(small_dataset / "masks", tmp_path / "grid", tmp_path)
    assert run.returncode == 2 and f"grid/{reference.name}: is on another grid than the reference" in run.stderr
    assert "spacing" in run.stderr

    bad = ref.copy()
    bad[bad == 201] = 150
    write_like(bad, mask, tmp_path / "labels" / reference.name)
    run, _ = run_score(small_dataset / "masks", tmp_path / "labels", tmp_path)
    assert run.returncode == 2 and f"labels/{reference.name}: unknown label values 150" in run.stderr


def test_numbering_alone_costs_little_on_synthetic_masks(small_dataset):
    doc = numbering_cost(masks(small_dataset))
    for name in ("DiceScoreVertebrae", "DiceScoreDiscs", "DetectionRateVertebrae", "DetectionRateDiscs"):
        assert doc["summary"][name]["mean"] > 0.95, (name, doc["summary"][name])
    mask = sitk.ReadImage(str(masks(small_dataset)[0]))
    assert renumbered(mask).GetSize() == mask.GetSize()


def test_numbering_alone_costs_little_on_real_samples(real_samples):
    doc = numbering_cost(sorted((real_samples / "masks").glob("*.mha")))
    for name in ("DiceScoreVertebrae", "DiceScoreDiscs", "DetectionRateVertebrae", "DetectionRateDiscs"):
        assert doc["summary"][name]["mean"] > 0.95, (name, doc["summary"][name])


def bridged_past_a_disc(mask: sitk.Image, disc: int, share: float = 0.35) -> sitk.Image:
    """The mask's structures with the two vertebrae around `disc` grown together in front of it: the disc's
    anterior `share` (of its front-to-back extent) painted vertebra, as a network that draws a disc too short
    (or an osteophyte) does."""
    from helpers.data.axes import orientation, reorient, to_canonical
    from helpers.data.labels import VERTEBRA
    from helpers.data.spider import structure_mask

    canon = to_canonical(mask)
    spider, structures = sitk.GetArrayFromImage(canon), sitk.GetArrayFromImage(to_canonical(structure_mask(mask)))
    ap = np.nonzero(spider == disc)[2]  # canonical axis 2 runs anterior -> posterior
    front = (spider == disc) & (np.arange(spider.shape[2]) < ap.min() + share * (ap.max() - ap.min() + 1))
    structures[front] = VERTEBRA
    out = sitk.GetImageFromArray(structures)
    out.CopyInformation(canon)
    return reorient(out, orientation(mask))


@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_two_vertebrae_bridged_past_a_disc_are_numbered_apart(small_dataset, source):
    from helpers.inference.numbering import to_spider_values

    if source == "real":
        from .conftest import REAL_SAMPLES
        paths = sorted((REAL_SAMPLES / "masks").glob("*.mha"))
        if not paths:
            pytest.skip("../shared/real-samples not present")
    else:
        paths = masks(small_dataset)
    mask = sitk.ReadImage(str(paths[0]))
    bridged = bridged_past_a_disc(mask, 203)
    ref, structures = sitk.GetArrayFromImage(mask), sitk.GetArrayFromImage(bridged)
    # the bridge is real: the bodies of vertebrae 2 and 3 are one face-connected component of the structure map
    comps, _ = ndimage.label(structures == 1)
    assert np.bincount(comps[ref == 2]).argmax() == np.bincount(comps[ref == 3]).argmax()

    numbered = sitk.GetArrayFromImage(to_spider_values(bridged))
    for level in (2, 3):  # each keeps a number of its own: its voxels away from the bridge carry one value
        values, counts = np.unique(numbered[ref == level], return_counts=True)
        assert counts.max() > 0.95 * counts.sum(), (level, values, counts)
    assert np.bincount(numbered[ref == 2]).argmax() != np.bincount(numbered[ref == 3]).argmax()
    scores = scan_metrics(score_instances(ref, numbered, mask.GetSpacing(), ()))
    assert scores["DiceScoreVertebrae"] > 0.95 and scores["DetectionRateVertebrae"] == 1.0


def _canonical_structures(mask: sitk.Image):
    from helpers.data.axes import to_canonical
    from helpers.data.spider import structure_mask

    canon = to_canonical(mask)
    return canon, sitk.GetArrayFromImage(canon), sitk.GetArrayFromImage(to_canonical(structure_mask(mask)))


def _numbered_like(canon: sitk.Image, structures: np.ndarray, mask: sitk.Image) -> np.ndarray:
    """A canonical structure map put back in the mask's own orientation, numbered there; canonical again."""
    from helpers.data.axes import orientation, reorient, to_canonical
    from helpers.inference.numbering import to_spider_values

    out = sitk.GetImageFromArray(structures)
    out.CopyInformation(canon)
    return sitk.GetArrayFromImage(to_canonical(to_spider_values(reorient(out, orientation(mask)))))


def _mask_paths(small_dataset, source):
    if source == "synthetic":
        return masks(small_dataset)
    from .conftest import REAL_SAMPLES

    paths = sorted((REAL_SAMPLES / "masks").glob("*.mha"))
    if not paths:
        pytest.skip("../shared/real-samples not present")
    return paths


@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_a_vertebra_cracked_in_two_keeps_one_number_and_the_ones_above_keep_theirs(small_dataset, source):
    """A prediction whose vertebra 3 has a crack through it (two rows of background across its middle) gives two
    big pieces with no disc between them: they are one level, and every vertebra above keeps its number."""
    from helpers.data.labels import VERTEBRA

    for path in _mask_paths(small_dataset, source)[:2]:
        mask = sitk.ReadImage(str(path))
        canon, spider, structures = _canonical_structures(mask)
        rows = np.nonzero(spider == 3)[1]  # canonical axis 1 runs superior -> inferior
        middle = int(round(rows.mean()))
        crack = (spider == 3) & np.isin(np.arange(spider.shape[1]), [middle, middle + 1])[None, :, None]
        structures[crack] = 0
        pieces, _ = ndimage.label(structures == VERTEBRA)
        assert len(set(np.unique(pieces[spider == 3])) - {0}) >= 2, path.name  # the crack is real
        numbered = _numbered_like(canon, structures, mask)
        for level in range(1, int(spider[spider < 100].max()) + 1):
            assert np.bincount(numbered[spider == level]).argmax() == level, (path.name, level)


@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_a_missed_disc_does_not_join_the_vertebrae_around_it(small_dataset, source):
    for path in _mask_paths(small_dataset, source)[:2]:
        mask = sitk.ReadImage(str(path))
        canon, spider, structures = _canonical_structures(mask)
        structures[spider == 203] = 0  # the network missed disc 203 entirely
        numbered = _numbered_like(canon, structures, mask)
        for level in range(1, int(spider[spider < 100].max()) + 1):
            assert np.bincount(numbered[spider == level]).argmax() == level, (path.name, level)


@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_a_chain_drawn_behind_several_vertebrae_is_shared_out_not_counted(small_dataset, source):
    """A prediction with one big piece of vertebra running behind the second to the second-highest level (posterior
    elements drawn as a chain): no level is added, every vertebra keeps its number, and the chain's voxels go to
    the levels beside them."""
    from helpers.data.labels import VERTEBRA

    tried = 0
    for path in _mask_paths(small_dataset, source):
        mask = sitk.ReadImage(str(path))
        canon, spider, structures = _canonical_structures(mask)
        present = sorted(int(v) for v in np.unique(spider) if 1 <= v <= 25)
        if len(present) < 5 or tried == 2:
            continue  # a chain behind three levels or more needs five
        tried += 1
        rows = [np.nonzero(spider == k)[1].mean() for k in (present[1], present[-2])]
        top, bottom = int(min(rows)), int(max(rows)) + 1
        sizes = [(spider == k).sum() for k in range(1, 8)]
        behind = int(np.nonzero(structures == VERTEBRA)[2].max()) + 2  # canonical axis 2: anterior -> posterior
        side = int(np.ceil(np.sqrt(0.5 * max(sizes) / (bottom - top))))
        lr = int(np.nonzero(spider == 100)[0].mean())
        if behind + side > spider.shape[2]:
            pytest.skip(f"{path.name}: no room behind the spine")
        structures[lr - side // 2:lr - side // 2 + side, top:bottom, behind:behind + side] = VERTEBRA
        numbered = _numbered_like(canon, structures, mask)
        for level in range(1, int(spider[spider < 100].max()) + 1):
            assert np.bincount(numbered[spider == level]).argmax() == level, (path.name, level)
        chain = np.zeros(spider.shape, bool)
        chain[lr - side // 2:lr - side // 2 + side, top:bottom, behind:behind + side] = True
        assert len(np.unique(numbered[chain])) >= 3, path.name  # shared out between the levels it runs behind
    assert tried, "no mask with five vertebrae"


@pytest.mark.xfail(strict=True, reason="known limitation: the numbering parts vertebrae bridged in front of a disc, "
                   "not ones joined behind the canal; cutting along the discs' whole planes or between eroded bodies "
                   "also split a tilted real vertebra (sample 209), so neither was kept (docs/scoring.md)")
@pytest.mark.parametrize("source", ["synthetic", "real"])
def test_vertebrae_joined_behind_the_canal_are_cut_apart_at_the_discs(tmp_path, source):
    """A prediction that joins every vertebra behind the canal (spinous processes grown into one band behind them,
    as a course model drew the laminae): every vertebra is one component with all the others,
    out of reach of a cut along a disc's rim; the discs' whole mid-planes cut it into levels, each keeps its number,
    and the challenge's instance view scores it as the same mask without the band would be scored."""
    from helpers.data.labels import VERTEBRA
    from helpers.data.synth import write_dataset

    if source == "synthetic":  # the course's size: posterior elements behind the canal, as on real scans
        paths = masks(write_dataset(tmp_path / "data", cases=1, seed=3, scale=0.5, progress=False))
    else:
        paths = _mask_paths(None, source)
    for path in paths[:2]:
        mask = sitk.ReadImage(str(path))
        canon, spider, structures = _canonical_structures(mask)
        levels = [int(v) for v in np.unique(spider) if 1 <= v <= 25]
        tips = [np.argwhere(spider == level) for level in levels]  # canonical axes: left-right, rows, front-back
        tips = [t[t[:, 2].argmax()] for t in tips]  # each vertebra's most posterior voxel: its spinous process
        bar = max(int(t[2]) for t in tips) + 3
        lr = slice(min(int(t[0]) for t in tips), max(int(t[0]) for t in tips) + 1)
        structures[lr, min(int(t[1]) for t in tips):max(int(t[1]) for t in tips) + 1, bar - 1:bar + 2] = VERTEBRA
        for _, row, ap in tips:  # each joined to the band behind it
            structures[lr, row - 1:row + 2, ap:bar] = VERTEBRA
        comps, _ = ndimage.label(structures == VERTEBRA)
        joined = {comps[tuple(tip)] for tip in tips}
        assert len(joined) == 1, path.name  # the band is real: one component holds every vertebra's spinous process
        numbered = _numbered_like(canon, structures, mask)
        for level in levels:
            assert np.bincount(numbered[spider == level]).argmax() == level, (path.name, level)
        scores = scan_metrics(score_instances(spider, numbered, canon.GetSpacing(), ()))
        assert scores["DiceScoreVertebrae"] > 0.8 and scores["DetectionRateVertebrae"] == 1.0, (path.name, scores)
