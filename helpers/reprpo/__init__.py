"""The preference-optimisation world (chapter 4): DPO and the ReprPO family in one training loop,
preference pairs from checkable tasks with GENIES-style shifts, training only the top blocks on
cached outputs of the frozen lower ones, the toy GENIES language, the full-scale GENIES loaders,
and the chapter's experiment plumbing.

Modules: methods, checkable_tasks, stem, toy_genies, genies, experiment, figures. Public names
are re-exported here."""

from helpers.reprpo import methods, checkable_tasks, stem, toy_genies, genies, experiment, figures
from helpers.reprpo.methods import (
    LOSSES,
    TRANSFORMS,
    COLLECT,
    KINDS,
    tokenize_pairs,
    collection_blocks,
    forward_pairs,
    dpo_loss,
    reduce_tokens,
    mse_loss,
    rank_loss,
    prefvec_loss,
    HS_LOSSES,
    HRA,
    ETHER,
    make_transform,
    project_grad,
    projbp_rewrite,
    Method,
    TrainSettings,
    add_lora,
    train_method,
    reference_outputs,
    preference_correct,
    select_lr,
    evaluate_splits,
)
from helpers.reprpo.toy_genies import (
    SPECIALS,
    TASKS,
    PUNCT,
    DIGITS,
    LETTERS,
    VOCAB,
    SPLITS,
    SHIFT_CATEGORY,
    ToyTokenizer,
    make_documents,
    make_preference_split,
    toy_llama_config,
    PretrainSettings,
    pretrain_toy_model,
    load_or_pretrain,
    make_all_splits,
)
from helpers.reprpo.genies import (
    GENIES_DATASET,
    TABLE_ERA_SPLITS,
    COLUMNS,
    load_preference_records,
    load_causal_lm,
    hf_encoders,
    load_table_era_splits,
)
from helpers.reprpo.experiment import (
    eval_view,
    train_and_evaluate,
    shuffle_labels,
    isometry_gradients,
    bootstrap_splits,
    interval_excludes_zero,
    search_lr,
    adapter_state,
    restore_adapter,
    normalised_score,
    load_base_model,
    train_run,
    collect_kind,
    reference_for,
    seed_search,
    evaluate_states,
    reference_claims,
)
from helpers.reprpo.checkable_tasks import (
    TASK_SPLITS,
    make_task_split,
    make_task_splits,
    chat_encoders,
)
from helpers.reprpo.stem import split_top, stem_embeddings
from helpers.reprpo.figures import plot_intervals, seed_frames
