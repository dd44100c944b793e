"""The toy model of superposition world (chapter 3): the batched model, its data laws, k-gon solutions
and symmetries, and the local learning coefficient by SGLD.

Modules: model, llc. Public names are re-exported here."""

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
