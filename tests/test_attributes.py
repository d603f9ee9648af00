"""Challenge attributes in the datasets' released layouts, and the per-attribute scores built on them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from unitrack.data.formats import attributes as A
from unitrack.data.formats import load_dataset
from unitrack.errors import DatasetError
from unitrack.eval.results import write_results
from unitrack.eval.score import score

# LasHeR's AttriSeqsTxt/10crosswhite.txt as released (one line, no newline): PO MB LR SA CM TC
LASHER_10CROSSWHITE = "0,1,0,0,1,0,0,0,1,0,0,1,1,1,0,0,0,0,0"


def _lasher_root(tmp_path: Path, names: list[str], n: int = 6) -> Path:
    root = tmp_path / "LasHeR"
    for name in names:
        d = root / "train" / name
        for sub, prefix in (("visible", "v"), ("infrared", "i")):
            (d / sub).mkdir(parents=True)
            for i in range(n):
                cv2.imwrite(str(d / sub / f"{prefix}{i:06d}.jpg"), np.full((24, 32, 3), 90, np.uint8))
        (d / "visible.txt").write_text("".join("4,4,10,10\r\n" for _ in range(n)))
    (root / "trainingsetList.txt").write_text("\n".join(names) + "\n")
    return root


def test_lasher_attribute_file_as_released(tmp_path):
    p = tmp_path / "10crosswhite.txt"
    p.write_text(LASHER_10CROSSWHITE)
    a = A.read_lasher(p)
    assert {k for k, v in a.items() if v} == {"partial_occlusion", "motion_blur", "low_resolution",
                                              "similar_object", "camera_motion", "thermal_crossover"}
    p.write_text("0,1,0")
    with pytest.raises(DatasetError, match="3 attribute flags, expected 19"):
        A.read_lasher(p)
    p.write_text(LASHER_10CROSSWHITE.replace("0,1", "0,2", 1))
    with pytest.raises(DatasetError, match="must be 0 or 1"):
        A.read_lasher(p)


def test_visevent_attribute_file_as_in_the_kit(tmp_path):
    p = tmp_path / "00141_tank_outdoor2.txt"
    # the kit's file: 17 lines, CM ROT DEF FOC LI OV POC VC SV BC MB ARC FM NMO IV OE BOM
    p.write_text("0\n1\n0\n0\n0\n0\n0\n1\n0\n0\n0\n0\n0\n0\n0\n0\n0\n")
    assert {k for k, v in A.read_visevent(p).items() if v} == {"rotation", "viewpoint_change"}


def test_attributes_are_found_next_to_a_dataset_read_by_its_reader(tmp_path):
    root = _lasher_root(tmp_path, ["seqA", "seqB"])
    (root / "AttriSeqsTxt").mkdir()
    (root / "AttriSeqsTxt" / "seqA.txt").write_text(LASHER_10CROSSWHITE)
    seqs = A.attach(load_dataset("lasher", root, "train"))
    assert seqs[0].attributes["thermal_crossover"] and seqs[1].attributes is None


def test_vot_tags_of_a_depthtrack_sequence(tmp_path):
    d = tmp_path / "seq"
    d.mkdir()
    (d / "full-occlusion.tag").write_text("0\n1\n0\n")
    (d / "dark-scene.tag").write_text("0\n0\n0\n")
    (d / "unassigned.tag").write_text("1\n0\n1\n")
    assert A.read_vot_tags(d, 3) == {"full_occlusion": True, "low_illumination": False}
    with pytest.raises(DatasetError, match="4 tag lines but 3 frames"):
        (d / "x.tag").write_text("0\n0\n0\n0\n")
        A.read_vot_tags(d, 3)


def test_per_attribute_scores_pool_the_sequences_that_have_the_attribute(tmp_path):
    root = _lasher_root(tmp_path, ["good", "bad"])
    seqs = load_dataset("lasher", root, "train")
    seqs[0].attributes = {"camera_motion": True, "thermal_crossover": False}
    seqs[1].attributes = {"camera_motion": True, "thermal_crossover": True}
    res = tmp_path / "res"
    write_results(res, "good", seqs[0].boxes, np.ones(len(seqs[0])))
    far = seqs[1].boxes.copy()
    far[1:, :2] += 40  # misses every frame after the first
    write_results(res, "bad", far, np.ones(len(seqs[1])))
    m = score(seqs, res)
    att = m["per_attribute"]
    assert set(att) == {"camera_motion", "thermal_crossover"}  # an attribute no sequence has is not listed
    assert att["thermal_crossover"]["sequences"] == 1 and att["thermal_crossover"]["tasks"] == {"rgbt": 1}
    assert att["thermal_crossover"]["SR"] == pytest.approx(m["per_sequence"]["lasher/bad"]["SR"])
    assert att["camera_motion"]["SR"] == pytest.approx(m["overall"]["SR"])
    for s in seqs:
        s.attributes = None
    assert "per_attribute" not in score(seqs, res)
