"""Fixed train/val/test splits of the CMU ``bvh/`` clips, by subject (see docs/data_splits.md).

Subjects are never shared between splits, with one documented exception: subject 124, the only
one with baseball pitches, is split by clip so that every split holds a throwing clip
(124_01 pitch → train, 124_03 basketball shot → val, 124_02 pitch → test). H1 reports the
subject-disjoint test set and 124_02 (a subject seen in training) separately.
Subject 06 (throws: 06_14/06_15 dribble and shoot) is in train.
The Daz-layout folder (``bvh_daz/``) is another skeleton, retargeted with its own map; its clips
follow the same table (08 and 12, Daz-only, go to train; 13 to val).
"""
SUBJECT_SPLIT = {
    "train": ["01", "02", "03", "05", "06", "07", "08", "09", "10", "105", "11", "118", "12",
              "127", "131", "135", "14", "64"],
    "val": ["13", "29", "55"],
    "test": ["16", "17", "49", "93"],
}
CLIP_EXCEPTIONS = {"124_01": "train", "124_03": "val", "124_02": "test"}
SEEN_SUBJECT_TEST_CLIPS = ("124_02",)


def split_of(clip):
    """'train' | 'val' | 'test' for a clip id like '16_15'."""
    if clip in CLIP_EXCEPTIONS:
        return CLIP_EXCEPTIONS[clip]
    subject = clip.split("_")[0]
    for name, subjects in SUBJECT_SPLIT.items():
        if subject in subjects:
            return name
    raise KeyError(f"clip {clip}: subject {subject} is in no split")


def clips_in(split, clips):
    return [c for c in clips if split_of(c) == split]
