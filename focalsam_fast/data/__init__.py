"""Long-tailed data sets, groups and samplers (docs/spec.md §7), with integrity checks of the data on disk."""

from focalsam_fast.data.alexnet_errors import ALEXNET_ERRORS, CORRUPTIONS
from focalsam_fast.data.arrays import ArrayDataset
from focalsam_fast.data.cifar import build_cifar_lt, load_cifar_torchvision
from focalsam_fast.data.cifar_jpeg import ImageArrays, read_jpeg_archive
from focalsam_fast.data.digits import build_digits_lt
from focalsam_fast.data.groups import (
    GROUP_PRESETS,
    GroupThresholds,
    group_accuracy,
    group_thresholds,
    per_class_accuracy,
    split_groups,
    thresholds_for,
)
from focalsam_fast.data.integrity import CIFAR_COUNTS, DataIntegrityError, ExpectedCounts, check_class_counts
from focalsam_fast.data.large_scale import STANDARD_COUNTS, build_list_dataset
from focalsam_fast.data.listfile import CorruptImageError, ListFileDataset, ListFileError, parse_list_file
from focalsam_fast.data.ood import OOD_COUNTS, ClassFolderDataset, corruption_errors, imagenet_c_sets
from focalsam_fast.data.profiles import imbalance_counts, select_long_tailed
from focalsam_fast.data.registry import DATASETS, LongTailedData, build_dataset
from focalsam_fast.data.sampling import sample_long_tailed_labels
from focalsam_fast.data.transforms import (
    CIFAR_MEAN,
    CIFAR_STD,
    INAT_MEAN,
    INAT_STD,
    TRANSFORM_SETS,
    build_transform,
    transform_for,
)

__all__ = [
    "ALEXNET_ERRORS",
    "CIFAR_COUNTS",
    "CIFAR_MEAN",
    "CIFAR_STD",
    "CORRUPTIONS",
    "DATASETS",
    "GROUP_PRESETS",
    "INAT_MEAN",
    "INAT_STD",
    "OOD_COUNTS",
    "STANDARD_COUNTS",
    "TRANSFORM_SETS",
    "ArrayDataset",
    "ClassFolderDataset",
    "CorruptImageError",
    "DataIntegrityError",
    "ExpectedCounts",
    "GroupThresholds",
    "ImageArrays",
    "ListFileDataset",
    "ListFileError",
    "LongTailedData",
    "build_cifar_lt",
    "build_dataset",
    "build_digits_lt",
    "build_list_dataset",
    "build_transform",
    "check_class_counts",
    "corruption_errors",
    "group_accuracy",
    "group_thresholds",
    "imagenet_c_sets",
    "imbalance_counts",
    "load_cifar_torchvision",
    "parse_list_file",
    "per_class_accuracy",
    "read_jpeg_archive",
    "sample_long_tailed_labels",
    "select_long_tailed",
    "split_groups",
    "thresholds_for",
    "transform_for",
]
