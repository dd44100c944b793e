"""The PRH world (chapters 1 and 2): a procedural shapes world with known factors, a zoo of small
models trained on it, random-image families, metric agreement, and the full-scale PRH data sources.

Modules: shapes_world, zoo, noise_images, metric_agreement, sources. Public names are re-exported here."""

from helpers.prh import shapes_world, zoo, noise_images, metric_agreement, sources
from helpers.prh.shapes_world import (
    SHAPES,
    NOVEL_SHAPES,
    COLORS,
    BG_COLORS,
    SIZES,
    ROWS,
    COLS,
    TEXTURES,
    NOVEL_TEXTURES,
    FACTORS,
    FACTOR_CLASSES,
    SPLITS,
    OOD_KINDS,
    held_out,
    ShapesData,
    caption,
    sample_factors,
    render,
    make_dataset,
)
from helpers.prh.zoo import (
    ARCHS,
    OBJECTIVES,
    SCALES,
    ZooConfig,
    ZooNet,
    build_net,
    caption_embeddings,
    train_member,
    ZooMember,
    weights_key,
    get_zoo,
    member_features,
    factor_accuracy,
    probe_accuracy,
)
from helpers.prh.noise_images import (
    FAMILIES,
    GAUSSIAN_STD,
    uniform_noise,
    gaussian_noise,
    spectral_noise,
    shape_collage,
    make_noise,
    blend,
    radial_power_spectrum,
    spectral_slope,
    model_input_size,
    pooled_null,
    first_level_where,
    noise_for_model,
    images_from_folder,
)
from helpers.prh.metric_agreement import (
    KNN_LIKE,
    config_name,
    block_scores,
    score_pairs,
    agreement,
    parse_config,
    null_agreement,
    mean_off_diagonal,
)
from helpers.prh.sources import (
    PRH_VISION_MODELS,
    PRH_LANGUAGE_MODELS,
    IMAGE_SUFFIXES,
    DatasetUnavailableError,
    load_image_folder,
    load_wit,
    load_imagenet_o,
    vit_features,
    random_init_copy,
    param_count,
    language_features,
)
