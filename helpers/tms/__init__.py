"""The toy model of superposition world (chapter 3): the batched model, its data laws, k-gon
solutions and symmetries, and the local learning coefficient by SGLD.

Modules: model, llc, calibration (known-answer checks of the estimator), grid (the chapter's
experiment grid), analysis (loss-LLC correlations), basin (basin hopping under an L2 pull),
variants (power-law frequency and importance laws), stages (the chapter's cached stages),
readings (verdicts and the sentences that quote them), figures. Public names are re-exported
here."""

from helpers.tms import model, llc
from helpers.tms.model import (
    N_FEATURES,
    N_HIDDEN,
    LAWS,
    INITS,
    sparsities,
    make_data,
    forward,
    mse,
    loss_and_grad,
    kgon,
    init_params,
    log_steps,
    TrainResult,
    train,
    onehot_population_loss,
    fit_regular_kgon,
    hull_vertices,
    classify_kgon,
    _PERMS,
    apply_symmetry,
    align,
    interpolation_barrier,
    PruneResult,
    prune_and_retrain,
    draw_model,
    animate_run,
)
from helpers.tms.llc import (
    default_nbeta,
    LLCResult,
    estimate_llc,
)
from helpers.tms.model import (
    compress_binary,
    pattern_weights,
    powerlaw_sparsity,
    powerlaw_importance,
    hessian,
    hessian_rank,
    feature_dimensionality,
)
from helpers.tms import analysis, basin, calibration, figures, grid, readings, stages, variants
from helpers.tms.analysis import (
    barrier_summary,
    boot_corr,
    correlations_by_type,
    fmt_r,
    offby_table,
    pearson,
    polygon_table,
    prune_summary,
    puzzle_table,
    spearman,
    start_contrast,
)
from helpers.tms.calibration import (
    bias_interval,
    calibrate,
    calibration_reading,
    choose_closest,
    crossover_n,
    choose_on,
    count_rises,
    is_interior,
    known_critical_points,
    repeat_estimates,
    sweep,
    theory_free_choice,
)
from helpers.tms.grid import (
    annotate,
    check_final,
    check_parameters,
    llc_tables,
    resolve_device,
    checkpoint_steps,
    checkpoint_table,
    features_per_dimension,
    grid_data,
    init_grid,
    llc_at_checkpoints,
    llc_data,
    lmc_table,
    make_grid,
    minimum_check,
    prune_grid,
    prune_table,
    reference_protocol_llc,
    seed_pairs,
    train_grid,
)
from helpers.tms.basin import (
    critical_pull,
    gram_distance,
    pull_and_release,
    basin_table,
    switch_summary,
)
from helpers.tms.variants import (
    compare_laws,
    corner_share,
    polygon_shift,
    powerlaw_laws,
    run_variant,
    significant_cells,
    variant_frame,
)
from helpers.tms.readings import (
    band_verdict,
    basin_reading,
    calibration_texts,
    chain_noise_text,
    corner_text,
    critical_point_reading,
    features_per_dim_text,
    known_case,
    lmc_reading,
    minimum_texts,
    nonpositive_text,
    offset_text,
    prune_reading,
    rank_text,
    start_reading,
    variant_text,
    verdict_rows,
    zero_correlation_reading,
)
from helpers.tms.stages import (
    cached_basin_table,
    cached_pruning,
    cached_reference_llc,
    cached_training,
    llc_key,
    variant_key,
)
