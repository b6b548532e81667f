"""One headless workcell of the data engine: sets a skill's episode up, then lets the scripted expert or
a learner run it, recording the simulator state of every control step.

Everything between the commander and the physics is what the graph runs: the teleop node's target
integrator (for the expert's twists) and the driver's safety layer at its 100 Hz tick
(:class:`~meta_robot.skills.rollout.InProcessRig`). The expert acts at the scripted operator node's
50 Hz and a learner at the schema's control rate, as the policy server does. While a learner drives,
the expert runs beside it in shadow: it watches the same world every tick, re-derives where the skill
stands when the learner has broken its plan (:meth:`ScriptedOperator.resync`), and its integrator's
target at the end of each step is that step's label (DAgger). Along the expert's own demonstration
this label is exactly the action it commanded.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import mujoco
import numpy as np

from meta_robot.core.arm import ArmState
from meta_robot.core.observation import CONTROL_RATE, Observation, action_vector, state_from_arm
from meta_robot.engine.store import EngineEpisode, EngineEpisodeMeta
from meta_robot.learning.policy import Action
from meta_robot.safety.layer import Command
from meta_robot.sim import snapshot
from meta_robot.sim.sim_arm import SimArm
from meta_robot.sim.workcell import Workcell
from meta_robot.skills.episode_plan import plan_episode
from meta_robot.skills.registry import GroundSkill, Registry, load_registry
from meta_robot.skills.rollout import InProcessRig, run_skill, world_state
from meta_robot.skills.scripted_operator import OperatorStyle, ScriptedOperator, to_sample
from meta_robot.skills.world import Grounding
from meta_robot.teleop import TeleopConfig
from meta_robot.teleop.integrator import TargetIntegrator

if TYPE_CHECKING:
    from meta_robot.planning.planner import Planner
    from meta_robot.planning.tasks import Task

logger = logging.getLogger(__name__)

EXPERT_RATE = 50.0  # Hz: the scripted operator node's rate (TeleopConfig.rate)
SUCCESS_HOLD = 0.5  # s the post-conditions must hold before a learner's episode counts (as the referee)


class SetupFailed(RuntimeError):
    """The scripted skills that bring about an episode's preconditions did not succeed for this seed."""


def task_skill(task: str) -> str:
    """The name a whole-task episode is filed under (beside the skills' folders)."""
    return f"task-{task}"


def episode_rng(seed: int) -> np.random.Generator:
    """The generator of one episode: the set-up skills and then the skill draw their styles from it."""
    return np.random.default_rng(seed)


@dataclass
class StepLog:
    """The per-step arrays of an episode as it runs."""

    physics: list[np.ndarray] = field(default_factory=list)
    state: list[np.ndarray] = field(default_factory=list)
    action: list[np.ndarray] = field(default_factory=list)
    expert_action: list[np.ndarray] = field(default_factory=list)
    learner_acting: list[bool] = field(default_factory=list)
    time: list[float] = field(default_factory=list)

    def begin(self, model: mujoco.MjModel, data: mujoco.MjData, state: ArmState) -> None:
        self.physics.append(snapshot.capture(model, data))
        self.state.append(state_from_arm(state))
        self.time.append(float(data.time))

    def arrays(self) -> dict[str, np.ndarray]:
        n = len(self.action)
        return {
            "physics": np.asarray(self.physics[:n], np.float64).reshape(n, -1),
            "state": np.asarray(self.state[:n], np.float32).reshape(n, -1),
            "action": np.asarray(self.action, np.float32).reshape(n, -1),
            "expert_action": np.asarray(self.expert_action, np.float32).reshape(n, -1),
            "learner_acting": np.asarray(self.learner_acting, bool).reshape(n),
            "time": np.asarray(self.time[:n], np.float64).reshape(n),
        }


def _command_vector(command: Command) -> np.ndarray:
    return action_vector(command.position, command.orientation, command.gripper_width)


class EngineSim:
    """A workcell, its simulated arm and (when images are wanted) a renderer, reused episode after
    episode by one worker process."""

    def __init__(
        self,
        registry: Registry | None = None,
        image_size: tuple[int, int] | None = None,
        control_rate: float = CONTROL_RATE,
    ) -> None:
        self.registry = registry or load_registry()
        self.grounding = Grounding(self.registry)
        self.workcell = Workcell()
        self.arm = SimArm(self.workcell)
        self.arm.connect()
        self.control_rate = control_rate
        self.ticks_per_step = max(1, round(EXPERT_RATE / control_rate))
        self.teleop = TeleopConfig(device="topic")
        self.fingerprint = snapshot.model_fingerprint(self.workcell.model)
        self.image_size = image_size
        self._cameras = None
        if image_size is not None:
            from meta_robot.engine.render import CameraRig

            self._cameras = CameraRig(self.workcell, image_size)

    # --- set-up ----------------------------------------------------------------------------------------
    def prepare(
        self, ground: GroundSkill, seed: int
    ) -> tuple[InProcessRig, float | None, np.random.Generator]:
        """Reset to ``seed`` in the scenario the skill needs and run the set-up skills with the expert;
        returns the rig (one safety layer for the episode), the gripper width the teleop integrator
        remembers, and the episode's generator. Raises :class:`SetupFailed`."""
        plan = plan_episode(self.registry, ground)
        self.workcell.reset(seed, plan.scenario)
        self.arm.reset_controller()
        rig = InProcessRig(self.workcell, self.arm)
        rng = episode_rng(seed)
        width: float | None = None
        for setup in plan.setup:
            result = run_skill(
                self.workcell, self.arm, setup, self.grounding, rng, EXPERT_RATE, width, rig=rig
            )
            width = result.gripper_width
            if not result.success:
                raise SetupFailed(f"set-up skill {setup} failed for seed {seed}")
        return rig, width, rng

    # --- the expert ------------------------------------------------------------------------------------
    def run_expert(self, ground: GroundSkill, seed: int) -> EngineEpisode:
        """A scripted demonstration of ``ground`` from ``seed`` (failed ones are kept, labelled)."""
        rig, width, rng = self.prepare(ground, seed)
        log = StepLog()
        on_tick = self._recorder(log)

        style = _style_dict(OperatorStyle.sample(copy.deepcopy(rng)))  # the operator's first draw, seen ahead
        result = run_skill(
            self.workcell, self.arm, ground, self.grounding, rng, EXPERT_RATE, width, rig=rig, on_tick=on_tick
        )
        return self._episode(log, ground, seed, "expert", result.success, result.duration, rig, style)

    def _recorder(self, log: StepLog) -> Callable[[int, ArmState, Command], None]:
        """The expert's tick observer: a step begins every ``ticks_per_step`` operator ticks (its
        state stored), and its action is the last command issued before the next step begins."""
        model, data, k = self.workcell.model, self.workcell.data, self.ticks_per_step

        def on_tick(tick: int, state: ArmState, command: Command) -> None:
            if tick % k == 0:
                log.begin(model, data, state)
                log.action.append(_command_vector(command))
                log.expert_action.append(log.action[-1])
                log.learner_acting.append(False)
            else:
                log.action[-1] = log.expert_action[-1] = _command_vector(command)

        return on_tick

    # --- whole tasks ------------------------------------------------------------------------------------
    def run_task(self, task: Task, seed: int, planner: Planner) -> EngineEpisode:
        """A whole long-horizon task demonstrated by the expert as one episode: the planner's first
        step from the privileged state, executed, and again (a failed step is replanned), until the
        goal holds or the task's skill budget is spent. Several objects end up in one container, in
        the spots the operator chose, which single-skill episodes never show the classifier."""
        from meta_robot.planning.symbolic import PlanningError, holds

        self.workcell.reset(seed, task.scenario)
        self.arm.reset_controller()
        rig = InProcessRig(self.workcell, self.arm)
        rng = episode_rng(seed)
        log = StepLog()
        on_tick = self._recorder(log)

        def atoms() -> frozenset:
            world = world_state(self.workcell, self.arm)
            return frozenset(a for a, v in self.grounding.atoms(world).items() if v)

        start, width, executed, notes = self.workcell.time, None, 0, []
        while not holds(atoms(), task.goal.literals) and executed < task.max_skills:
            try:
                step = planner.plan(atoms(), task.goal).steps[0]
            except PlanningError as exc:
                notes.append(f"planning stopped: {exc}")
                break
            result = run_skill(
                self.workcell,
                self.arm,
                step,
                self.grounding,
                rng,
                EXPERT_RATE,
                width,
                rig=rig,
                on_tick=on_tick,
            )
            width = result.gripper_width
            executed += 1
            notes.append(f"{step} {'ok' if result.success else 'failed'}")
        success = holds(atoms(), task.goal.literals)
        episode = self._episode(
            log, task_skill(task.name), seed, "task", success, self.workcell.time - start, rig, None
        )
        episode.meta = dataclasses.replace(episode.meta, scenario=task.scenario, notes="; ".join(notes))
        return episode

    # --- a learner, with the expert in shadow -------------------------------------------------------
    def start_learner(
        self,
        ground: GroundSkill,
        seed: int,
        expert_share: float = 0.0,
        round: int = 0,
        source: str = "dagger",
    ) -> LearnerRollout:
        rig, width, rng = self.prepare(ground, seed)
        return LearnerRollout(self, ground, seed, rig, width, rng, expert_share, round, source)

    def observe(self, state: ArmState) -> Observation:
        """What the policy server would hand the policy now: both cameras and the state vector."""
        if self._cameras is None:
            raise RuntimeError("this EngineSim renders no images (built with image_size=None)")
        return Observation(self._cameras.images(), state_from_arm(state), self.workcell.time)

    def _episode(
        self,
        log: StepLog,
        ground: GroundSkill | str,
        seed: int,
        source: str,
        success: bool,
        duration: float,
        rig: InProcessRig,
        style: dict | None,
        round: int = 0,
        expert_share: float = 1.0,
    ) -> EngineEpisode:
        arrays = log.arrays()
        skill, arguments = (ground, ()) if isinstance(ground, str) else (ground.name, tuple(ground.arguments))
        meta = EngineEpisodeMeta(
            skill=skill,
            arguments=arguments,
            scenario=self.workcell.scenario_name,
            seed=int(seed),
            source=source,
            outcome="success" if success else "failure",
            model_fingerprint=self.fingerprint,
            fps=self.control_rate,
            style=style or {},
            duration=float(duration),
            round=round,
            expert_share=float(expert_share),
            holds=dict(rig.safety.holds),
            refusals={str(k): int(v) for k, v in rig.safety.rejections.items()},
        )
        return EngineEpisode(meta, **arrays)


def _style_dict(style: OperatorStyle) -> dict:
    return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(style).items()}


class LearnerRollout:
    """One learner episode, stepped from outside so a worker can batch the policy over several.

    Each :meth:`step` takes the learner's action (or None when the expert acts this step, which a
    share ``expert_share`` of steps do: DAgger's mixing), runs one control period with the shadow
    expert labelling it, and says whether the episode is over: the post-conditions held for
    :data:`SUCCESS_HOLD` s (success), or the skill's timeout passed (failure)."""

    def __init__(
        self,
        sim: EngineSim,
        ground: GroundSkill,
        seed: int,
        rig: InProcessRig,
        gripper_width: float | None,
        rng: np.random.Generator,
        expert_share: float,
        round: int,
        source: str,
    ) -> None:
        self.sim, self.ground, self.seed, self.rig = sim, ground, seed, rig
        self.round, self.source = round, source
        teleop = sim.teleop
        self.expert = ScriptedOperator(
            ground, sim.grounding, rng, teleop.max_linear_speed, teleop.max_angular_speed
        )
        self.integrator = TargetIntegrator(teleop.integrator_config(rig.limits))
        self.integrator.reset(gripper_width)
        self.expert_share = float(expert_share)
        self._mix = np.random.default_rng([seed, round, 7])  # who acts, independent of the expert's draws
        self.log = StepLog()
        self.start = sim.workcell.time
        self.held_since: float | None = None
        self.done = False
        self.success = False
        self._expert_steps = 0
        self._state = sim.arm.read_state()
        self.policy_state: Any = None  # the learner's own per-episode state (Policy.start's)

    @property
    def state(self) -> ArmState:
        """The arm as read at the start of the coming step (what the policy observes)."""
        return self._state

    def observe(self) -> Observation:
        return self.sim.observe(self._state)

    def expert_acts_next(self) -> bool:
        """Draw whether the expert executes the coming step (always False with share 0)."""
        return self.expert_share > 0.0 and bool(self._mix.random() < self.expert_share)

    def step(self, action: Action | None) -> bool:
        """Run one control period; ``action`` None: the expert's commands are executed."""
        if self.done:
            raise RuntimeError("step() after the episode ended")
        sim, wc, arm = self.sim, self.sim.workcell, self.sim.arm
        teleop = sim.teleop
        dt = 1.0 / EXPERT_RATE
        self.log.begin(wc.model, wc.data, self._state)
        learner = action is not None
        if learner:
            if not action.is_finite():
                raise ValueError("the learner produced a non-finite action")
            executed = action_vector(action.position, action.orientation, action.gripper_width)
            self.rig.submit(action.position, action.orientation, action.gripper_width, "policy")
        state = self._state
        label = None
        for _ in range(sim.ticks_per_step):
            world = world_state(wc, arm, state)
            self.expert.resync(world, wc.time)
            expert_action = self.expert.act(world, state.tcp_pose.orientation, wc.time)
            sample = to_sample(expert_action, teleop.max_linear_speed, teleop.max_angular_speed)
            target = self.integrator.update(sample, dt, state.tcp_pose)
            label = action_vector(target.position, target.orientation, self.integrator.gripper_width)
            if not learner:
                self.rig.submit(target.position, target.orientation, self.integrator.gripper_width, "expert")
            self.rig.advance(dt)
            state = arm.read_state()
        self._state = state
        self.log.expert_action.append(label)
        self.log.action.append(executed if learner else label)
        self.log.learner_acting.append(learner)
        self._expert_steps += not learner
        self._judge()
        return self.done

    def _judge(self) -> None:
        wc = self.sim.workcell
        if self.sim.grounding.succeeded(world_state(wc, self.sim.arm, self._state), self.ground):
            self.held_since = wc.time if self.held_since is None else self.held_since
            if wc.time - self.held_since >= SUCCESS_HOLD - 1e-9:
                self.done = self.success = True
        else:
            self.held_since = None
        if wc.time - self.start >= self.ground.spec.timeout:
            self.done = True

    def episode(self) -> EngineEpisode:
        steps = max(len(self.log.action), 1)
        return self.sim._episode(
            self.log,
            self.ground,
            self.seed,
            self.source,
            self.success,
            self.sim.workcell.time - self.start,
            self.rig,
            _style_dict(self.expert.style),
            self.round,
            self._expert_steps / steps,
        )


PolicyStep = Callable[[list[LearnerRollout]], list[Action]]


def run_learners(rollouts: list[LearnerRollout], act: PolicyStep) -> list[EngineEpisode]:
    """Step every rollout until it ends, the learner's actions for all running ones computed in one
    batched call per control step (also on the steps the expert executes, so the learner's own
    per-episode state, e.g. its action chunks, runs on unbroken); returns their episodes in order."""
    running = list(rollouts)
    while running:
        actions = act(running)
        for rollout, action in zip(running, actions, strict=True):
            rollout.step(None if rollout.expert_acts_next() else action)
        running = [r for r in running if not r.done]
    return [r.episode() for r in rollouts]
