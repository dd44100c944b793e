"""The LIBERO world (chapter 5): demonstration files in LIBERO's HDF5 layout, offline simulation with a
scripted controller, behaviour-cloned policies, vision-action alignment, and the OpenVLA feature path.

Modules: demos, sim, policy, action_alignment, openvla. Public names are re-exported here."""

from helpers.libero import demos, sim, policy, action_alignment, openvla
from helpers.libero.demos import (
    Demos,
    write_demos,
    read_demos,
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
    render_cameras,
    ScriptedPickPlace,
    Episode,
    robot_state,
    run_episode,
    record_demos,
)
from helpers.libero.policy import (
    PolicyConfig,
    make_encoder,
    BCPolicy,
    to_input,
    train_bc,
    load_policy,
    config_dict,
    rollout_success,
)
from helpers.libero.action_alignment import (
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
