"""The LIBERO world (chapter 5): demonstration files in LIBERO's HDF5 layout, offline simulation
with a scripted controller, behaviour-cloned policies, vision-action alignment, and the OpenVLA
feature path.

Modules: demos, sim, policy, action_alignment, openvla, pipeline (the chapter's multi-task steps),
evaluation (the rollout harness, its positive controls, intervals), report (the chapter's
glued sentences and tables), figures. Public names are re-exported here."""

from helpers.libero import (demos, sim, policy, action_alignment, openvla, pipeline, figures,
                           evaluation, report)
from helpers.libero.demos import (
    Demos,
    DemoFileError,
    write_demos,
    read_demos,
    demo_file,
    demo_init_states,
    load_or_record,
)
from helpers.libero.sim import (
    CAMERAS,
    SUITES,
    setup_offline,
    TaskInfo,
    get_task,
    make_env,
    reset_to,
    scene_seed,
    render_cameras,
    ScriptedPickPlace,
    Episode,
    robot_state,
    run_episode,
    record_demos,
    sample_init_states,
    with_init_states,
)
from helpers.libero.policy import (
    PolicyConfig,
    make_encoder,
    BCPolicy,
    to_input,
    train_bc,
    load_policy,
    config_dict,
    MobileNetEncoder,
    encoder_width,
    chunk_rows,
)
from helpers.libero.action_alignment import (
    ACTION_NAMES,
    action_quantiles,
    normalize_actions,
    action_windows,
    moving_mask,
    feature_knn,
    masked_mutual_knn,
    episode_permutation,
    AlignmentResult,
    alignment_null,
    neighbour_label_agreement,
    mean_result,
    encoder_alignment,
)
from helpers.libero.openvla import (
    USED_BLOCK,
    ACTION_DIM,
    N_ACTION_BINS,
    preprocess,
    tower_features,
    prompt,
    action_token_ids,
    action_positions,
    action_hidden_states,
    load_openvla,
    libero_folder_features,
)
from helpers.libero.pipeline import (
    TaskSet,
    load_task_set,
    demo_table,
    action_summary,
    rollout_checkpoints,
    policy_features,
    task_alignment,
    task_alignments,
    variant_config,
    train_variant,
    harness_controls,
    variant_table,
    offline_error,
    encoder_features,
    checkpoint_features,
    train_variants,
    rollout_checkpoint,
    task_env,
)
from helpers.libero.evaluation import (
    wilson_interval,
    ReplayPolicy,
    ScriptedPolicy,
    ChunkedPolicy,
    run_rollouts,
    success_row,
    spearman_over_rollouts,
    correlation_table,
    rate_difference,
    select_checkpoint,
    alignment_tracks_success,
    rho_sentence,
)
from helpers.libero.figures import (
    plot_demo_frames,
    plot_action_histograms,
    null_band,
    plot_layer_profiles,
)
from helpers.libero.report import (
    plain_sentence,
    training_gain,
    masked_sentence,
    filter_window_sweep,
    validation_table,
    best_task_sentence,
    budget_sentence,
)
