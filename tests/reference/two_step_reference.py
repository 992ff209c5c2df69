"""Plain-Python reference of the two-step task (Daw et al. 2011; ``learn2rl.tasks.two_step``).

Written from the task's description, one step at a time with ordinary control flow, for tests
only. The caller supplies the uniform draws the environment compares with its probabilities.
"""

from __future__ import annotations


def good_schedule(first_good: int, swap_uniforms, swap_prob: float) -> list[int]:
    """The good second-stage state of each two-step trial: ``first_good`` at trial 0, then a swap
    before trial t >= 1 whenever ``swap_uniforms[t] < swap_prob``."""
    good = [int(first_good)]
    for u in list(swap_uniforms)[1:]:
        good.append(1 - good[-1] if u < swap_prob else good[-1])
    return good


def one_hot(location: int) -> list[float]:
    return [1.0 if i == location else 0.0 for i in range(3)]


def two_step_trial(
    good,
    uniforms,
    actions,
    num_episodes: int,
    p_common: float = 0.75,
    p_good: float = 0.9,
    p_bad: float = 0.1,
):
    """A learn2rl trial of ``num_episodes`` episodes of ``len(good)`` two-step trials each.

    ``uniforms[t]`` is the environment's draw at step t: the transition at stage 1 (common iff
    u < p_common), the reward at stage 2 (1 iff u < the state's reward probability). Returns per
    step the observation and step index the agent saw, then the reward and the done flags.
    Steps after the end of the trial are no-ops with reward 0.
    """
    num_trials = len(good)
    episode_length = 2 * num_trials
    location, time_in_episode, episode, trial_done = 0, 0, 0, False
    step_index = 0
    records = []
    for u, action in zip(uniforms, actions, strict=True):
        record = {"obs": one_hot(location), "step": step_index}
        if trial_done:
            record.update(reward=0.0, episode_done=False, trial_done=False)
            records.append(record)
            continue
        two_step_trial_index = time_in_episode // 2
        if location == 0:
            common = u < p_common
            second = action if common else 1 - action
            location = 1 + second
            reward = 0.0
        else:
            state = location - 1
            p = p_good if state == good[two_step_trial_index] else p_bad
            reward = 1.0 if u < p else 0.0
            location = 0
        time_in_episode += 1
        step_index += 1
        episode_done = time_in_episode == episode_length
        if episode_done:
            episode += 1
            location, time_in_episode = 0, 0
        trial_done = episode == num_episodes
        record.update(reward=reward, episode_done=episode_done, trial_done=trial_done)
        records.append(record)
    return records
