"""The toy model of superposition world (chapter 3): the batched model, its data laws, k-gon
solutions and symmetries, and the local learning coefficient by SGLD.

Modules: model, llc, calibration (known-answer checks of the estimator), grid (the chapter's
experiment grid), analysis (loss-LLC correlations), figures. Public names are re-exported here."""

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
    hessian,
    hessian_rank,
    feature_dimensionality,
)
from helpers.tms import analysis, calibration, figures, grid
from helpers.tms.analysis import (
    barrier_summary,
    boot_corr,
    correlations_by_type,
    fmt_r,
    offby_table,
    pearson,
    prune_summary,
    puzzle_table,
    spearman,
    start_contrast,
)
from helpers.tms.calibration import (
    bias_interval,
    choose_closest,
    choose_on,
    count_rises,
    is_interior,
    repeat_estimates,
    sweep,
    theory_free_choice,
)
from helpers.tms.grid import (
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
