"""``meta-robot train skills``: every learned skill from nothing, in one resumable command.

Stages, each caching its output under ``--out`` and resuming after an interruption:

1. **collect**: scripted demonstrations of every skill in the engine's workers (failures kept);
2. **render**: both cameras at the policy's resolution into the render cache;
3. **policy**: goal-conditioned BC on the successful demonstrations (resumes per epoch);
4. **dagger rounds**: the last policy rolled out on fresh seeds (a decaying share of steps executed by
   the expert), every visited state labelled by the shadow expert, the data aggregated and the
   policy refit from the previous weights;
5. **evaluate**: the final policy on held-out seeds in the engine's workers (95 % Wilson intervals);
6. **report**: ``report.yaml`` and ``report.png`` (success per DAgger round and per skill);
7. **ship** (``--ship``): the policy into ``checkpoints/`` with a manifest entry naming this command,
   the git revision, the data and the measured scores, and no machine paths.

Seeds: demonstrations from 1000, DAgger round r from 20 000 + 1000 r, evaluation from 100 000 (the
graph evaluation's held-out range), so no evaluation seed was ever trained on.
"""

from __future__ import annotations

import json
import logging
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from meta_robot.core.observation import IMAGE_SIZE
from meta_robot.engine.collect import TRAIN_SEED_START, collect, skill_jobs
from meta_robot.engine.dataset import EngineDataset, render_dataset
from meta_robot.engine.learner import (
    HELD_OUT_SEED_START,
    LearnerReport,
    LearnerSettings,
    run_policy,
)
from meta_robot.learning.metrics import wilson_interval
from meta_robot.skills.registry import load_registry

logger = logging.getLogger(__name__)

DAGGER_SEED_START = 20_000
REPORT_FILE = "report.yaml"
PLOT_FILE = "report.png"
STAGES_FILE = "stages.yaml"


@dataclass(frozen=True)
class PipelineSettings:
    """Everything that decides what the pipeline produces. The defaults are the shipped policy's
    settings (89 min on 2 cores without the classifier stage, which adds about 10)."""

    skills: tuple[str, ...] = ("all",)
    demos: int = 200  # scripted demonstrations per skill
    epochs: int = 8  # policy epochs on the demonstrations
    dagger_rounds: int = 2
    dagger_episodes: int = 40  # learner rollouts per skill and round
    dagger_epochs: int = 2  # refit epochs per round, from the previous weights
    expert_share: float = 0.5  # share of steps the expert executes in round 1 ...
    expert_decay: float = 0.5  # ... times this each later round
    eval_episodes: int = 50  # held-out seeds per skill
    seed: int = 0
    batch_size: int = 64
    lr: float = 3e-4
    image_size: tuple[int, int] = IMAGE_SIZE
    pooling: str = "spatial_softmax"
    aux_weight: float = 1.0  # the image features also predict the true scene (engine.privileged)
    goal_fraction: float = 0.25  # samples shown their episode's goal image (the executive sends none)
    group: int = 4  # episodes batched per worker in learner rollouts
    tasks: tuple[str, ...] = ("all",)  # config/tasks.yaml tasks demonstrated whole for the classifier
    task_episodes: int = 10  # whole-task demonstrations per task
    classifier_epochs: int = 4  # 0: no classifier stage

    def __post_init__(self) -> None:
        object.__setattr__(self, "skills", tuple(self.skills))
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "image_size", tuple(int(v) for v in self.image_size))
        if self.demos < 3 or self.epochs < 1 or self.dagger_rounds < 0 or self.eval_episodes < 0:
            raise ValueError("need demos >= 3, epochs >= 1, dagger_rounds >= 0 and eval_episodes >= 0")
        if not 0.0 <= self.expert_share <= 1.0 or not 0.0 <= self.expert_decay <= 1.0:
            raise ValueError("expert_share and expert_decay must be in [0, 1]")

    def round_share(self, r: int) -> float:
        """The expert's share of executed steps in DAgger round ``r`` (1-based)."""
        return self.expert_share * self.expert_decay ** (r - 1)


@dataclass
class PipelineResult:
    out_dir: Path
    policy: Path
    report: dict[str, Any]
    stages: dict[str, float] = field(default_factory=dict)  # wall seconds per stage


class StageLog:
    """Which stages finished, with their wall time, so a rerun skips them (``stages.yaml``)."""

    def __init__(self, out_dir: Path, settings: PipelineSettings) -> None:
        self.path = out_dir / STAGES_FILE
        self.key = json.dumps(asdict(settings), sort_keys=True, default=list)
        data = yaml.safe_load(self.path.read_text(encoding="utf-8")) if self.path.is_file() else None
        if data:
            # A run written before a setting existed ran with its default: only common keys must agree.
            stored, current = json.loads(data["settings"]), json.loads(self.key)
            differ = sorted(k for k in stored.keys() & current.keys() if stored[k] != current[k])
            if differ:
                raise ValueError(
                    f"{out_dir} holds a run with other settings ({', '.join(differ)}); use another --out "
                    "(or delete it to start over)"
                )
        self.done: dict[str, dict[str, Any]] = (data or {}).get("stages", {})

    def finished(self, name: str) -> dict[str, Any] | None:
        return self.done.get(name)

    def finish(self, name: str, seconds: float, **info: Any) -> None:
        self.done[name] = {"seconds": round(seconds, 1), **info}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump({"settings": self.key, "stages": self.done}, sort_keys=False), "utf-8")
        tmp.replace(self.path)


def _git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _rates(report: LearnerReport) -> dict[str, dict[str, Any]]:
    out = {}
    for skill, (ok, n) in report.by_skill().items():
        low, high = wilson_interval(ok, n)
        out[skill] = {"successes": ok, "episodes": n, "rate": ok / n if n else 0.0, "ci95": [low, high]}
    return out


def train_skills(
    out_dir: str | Path,
    settings: PipelineSettings | None = None,
    workers: int | None = None,
    device: str | None = None,
    ship: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> PipelineResult:
    """Run (or resume) the pipeline into ``out_dir``; see the module docstring."""
    from meta_robot.learning.train_policy import PolicyTrainSettings, fit_policy

    settings = settings or PipelineSettings()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    command = command or shlex.join(["meta-robot", *sys.argv[1:]])
    registry = load_registry()
    skill_jobs(registry, settings.skills, 0)  # unknown skills fail before any work
    stages = StageLog(out_dir, settings)
    data = out_dir / "data"
    t_all = time.perf_counter()

    def stage(name: str, run, **info_of) -> dict[str, Any]:
        done = stages.finished(name)
        if done is not None:
            logger.info("stage %s: done earlier (%.0f s)", name, done["seconds"])
            return done
        logger.info("stage %s ...", name)
        t0 = time.perf_counter()
        info = run() or {}
        stages.finish(name, time.perf_counter() - t0, **info)
        logger.info("stage %s: %.0f s", name, time.perf_counter() - t0)
        return stages.done[name]

    def do_collect() -> dict[str, Any]:
        report = collect(data, settings.skills, settings.demos, workers, TRAIN_SEED_START, progress, registry)
        if report.errors:
            logger.warning("%d demonstrations lost: %s", len(report.errors), report.errors[:3])
        return {
            "episodes": dict(report.episodes),
            "successes": dict(report.successes),
            "setup_failures": dict(report.setup_failures),
            "lost": len(report.errors),
            "episodes_per_hour": round(report.episodes_per_hour),
        }

    def do_render() -> dict[str, Any]:
        report = render_dataset(data, settings.image_size, workers, progress)
        if report.errors:
            raise RuntimeError(f"rendering failed: {report.errors[0]}")
        return {"steps": report.frames, "steps_per_second": round(report.frames_per_second)}

    def fit(run: str, epochs: int, init_from: Path | None) -> Path:
        dataset = EngineDataset(
            data,
            settings.skills if settings.skills != ("all",) else None,
            settings.image_size,
            render_workers=workers,
            progress=progress,
        )
        train = PolicyTrainSettings(
            epochs=epochs,
            seed=settings.seed,
            batch_size=settings.batch_size,
            lr=settings.lr,
            goal_fraction=settings.goal_fraction,
            aux_weight=settings.aux_weight,
        )
        result = fit_policy(
            dataset,
            out_dir / run,
            train,
            {"pooling": settings.pooling},
            resume=True,
            device=device,
            progress=progress,
            command=command,
            init_from=init_from,
            data_summary=dataset.summary(),
        )
        return result.weights

    stage("collect", do_collect)
    stage("render", do_render)
    policy = out_dir / "policy_round0" / "policy.safetensors"
    stage("policy_round0", lambda: {"weights": str(fit("policy_round0", settings.epochs, None).name)})
    rounds: dict[int, dict[str, Any]] = {}
    for r in range(1, settings.dagger_rounds + 1):
        previous = policy
        share = settings.round_share(r)

        def do_rollouts(r: int = r, previous: Path = previous, share: float = share) -> dict[str, Any]:
            jobs = skill_jobs(
                registry, settings.skills, settings.dagger_episodes, DAGGER_SEED_START + 1000 * r
            )
            learner = LearnerSettings(str(previous), str(data), "dagger", r, share, settings.image_size)
            report = run_policy(learner, jobs, workers, settings.group, progress, desc=f"dagger round {r}")
            return {"expert_share": share, "on_policy": _rates(report), "lost": len(report.problems)}

        rounds[r] = stage(f"dagger{r}_rollouts", do_rollouts)
        policy = out_dir / f"policy_round{r}" / "policy.safetensors"
        stage(
            f"policy_round{r}",
            lambda r=r, previous=previous: {
                "weights": str(fit(f"policy_round{r}", settings.dagger_epochs, previous).name)
            },
        )

    def do_eval() -> dict[str, Any]:
        jobs = skill_jobs(registry, settings.skills, settings.eval_episodes, HELD_OUT_SEED_START)
        report = run_policy(
            LearnerSettings(str(policy)), jobs, workers, settings.group, progress, desc="evaluate"
        )
        return {
            "policy": policy.parent.name,
            "skills": _rates(report),
            "by_grounding": report.counts(),
            "lost": len(report.problems),
        }

    evaluation = stage("evaluate", do_eval)
    classifier = None
    if settings.classifier_epochs > 0:
        stage("collect_tasks", lambda: _collect_tasks(data, settings, workers, progress))
        classifier_dir = out_dir / "classifier"
        classifier = stage(
            "classifier",
            lambda: _fit_classifier(data, classifier_dir, settings, workers, device, progress, command),
        )
    wall = time.perf_counter() - t_all
    total = sum(v["seconds"] for v in stages.done.values())
    report = {
        "format": "meta_robot.train_skills/1",
        "command": command,
        "git_revision": _git_revision(),
        "settings": json.loads(stages.key),
        "wall_seconds_total": round(total, 1),
        "stages": stages.done,
        "evaluation": evaluation,
        "classifier": classifier,
    }
    (out_dir / REPORT_FILE).write_text(yaml.safe_dump(report, sort_keys=False), encoding="utf-8")
    plot_report(report, out_dir / PLOT_FILE)
    if ship:
        ship_policy(report, policy.parent, settings)
        if classifier is not None:
            ship_classifier(report, out_dir / "classifier", settings)
    logger.info("pipeline finished in %.0f s of stages (%.0f s this call)", total, wall)
    return PipelineResult(out_dir, policy, report, {k: v["seconds"] for k, v in stages.done.items()})


def ship_policy(report: dict[str, Any], run_dir: Path, settings: PipelineSettings) -> None:
    """Enter the final policy in ``checkpoints/`` as ``goal_conditioned_bc``, with what made it."""
    from meta_robot.learning.checkpoint_registry import ship_checkpoint

    stages = report["stages"]
    demos = sum(stages["collect"]["episodes"].values())
    dagger = sum(
        v["on_policy"][s]["episodes"]
        for k, v in stages.items()
        if k.endswith("_rollouts")
        for s in v["on_policy"]
    )
    h, w = settings.image_size
    data = (
        f"data engine, regenerated by the command: {demos} scripted demonstrations ({settings.demos} per "
        f"skill, seeds from {TRAIN_SEED_START}) + {dagger} DAgger rollouts over {settings.dagger_rounds} "
        f"rounds (seeds from {DAGGER_SEED_START + 1000}); rendered at {h}x{w}"
    )
    scores = {}
    for skill, v in report["evaluation"]["skills"].items():
        low, high = v["ci95"]
        scores[f"in_process_{skill}"] = f"{v['successes']}/{v['episodes']} (95 % CI {low:.2f}-{high:.2f})"
    scores["pipeline_wall_seconds_2_cores"] = report["wall_seconds_total"]
    scores["git_revision"] = report["git_revision"]
    ship_checkpoint("goal_conditioned_bc", "policy", run_dir, scores, data=data, command=report["command"])


def _collect_tasks(data: Path, settings: PipelineSettings, workers: int | None, progress: bool) -> dict:
    from meta_robot.engine.collect import collect_tasks

    report = collect_tasks(data, settings.tasks, settings.task_episodes, workers, progress=progress)
    return {
        "episodes": dict(report.episodes),
        "successes": dict(report.successes),
        "lost": len(report.errors),
    }


def _fit_classifier(
    data: Path,
    out: Path,
    settings: PipelineSettings,
    workers: int | None,
    device: str | None,
    progress: bool,
    command: str,
) -> dict[str, Any]:
    """The success classifier on every engine episode (demonstrations and their failures, whole
    tasks, DAgger rollouts), thresholds calibrated on held-out episodes for FPR <= 2 %; scored per
    atom on the held-out test episodes, and separately on the held-out whole-task ones."""
    from meta_robot.engine.predicates import engine_predicate_dataset
    from meta_robot.learning.train_classifier import TrainSettings, fit

    dataset = engine_predicate_dataset(data, settings.image_size, workers=workers, progress=progress)
    result = fit(
        dataset,
        out,
        TrainSettings(epochs=settings.classifier_epochs, seed=settings.seed),
        resume=True,
        device=device,
        progress=progress,
        command=command,
    )
    record = yaml.safe_load((out / "classifier.yaml").read_text(encoding="utf-8"))
    test_ids = set(record["data"]["episodes"]["test"])
    tasks = [e for e in dataset.episodes if e.episode_id in test_ids and e.skill.startswith("task-")]
    per_atom = {atom: v["test"] for atom, v in result.metrics["atoms"].items()}
    return {
        "episodes": len(dataset.episodes),
        "samples": result.metrics["samples"],
        "test": per_atom,
        "test_tasks": _atom_scores(result.weights, tasks, dataset.atoms, result.thresholds),
        "weights": result.weights.name,
    }


def _atom_scores(weights: Path, episodes: list, atoms: tuple[str, ...], thresholds: dict) -> dict[str, Any]:
    """AUC and the calibrated threshold's FPR / TPR per atom on ``episodes``."""
    import math

    from meta_robot.learning.classifier import load_classifier, predict_probabilities
    from meta_robot.learning.metrics import rates_at_threshold, roc_auc
    from meta_robot.learning.predicate_data import concatenate

    if not episodes:
        return {}
    model = load_classifier(weights).model
    arrays = concatenate(episodes, atoms)
    probs = predict_probabilities(model, {c: getattr(arrays, c) for c in model.config.cameras}, arrays.state)
    out = {}
    for j, atom in enumerate(atoms):
        known = arrays.known[:, j]
        y, p = arrays.labels[known, j], probs[known, j]
        if y.all() or not y.any():
            out[atom] = {"positives": int(y.sum()), "negatives": int((~y).sum())}
            continue
        threshold = thresholds.get(atom)
        fpr, tpr = rates_at_threshold(y, p, math.inf if threshold is None else threshold)
        out[atom] = {
            "auc": round(float(roc_auc(y, p)), 4),
            "fpr": round(float(fpr), 4),
            "tpr": round(float(tpr), 4),
            "positives": int(y.sum()),
            "negatives": int((~y).sum()),
        }
    return out


def ship_classifier(report: dict[str, Any], run_dir: Path, settings: PipelineSettings) -> None:
    """Enter the classifier in ``checkpoints/`` as ``success_classifier``, with its worst atoms."""
    from meta_robot.learning.checkpoint_registry import ship_checkpoint

    result = report["classifier"]
    scores: dict[str, Any] = {}
    for part in ("test", "test_tasks"):
        aucs = {a: v["auc"] for a, v in result[part].items() if v.get("auc") is not None}
        if aucs:
            worst = min(aucs, key=aucs.get)
            scores[f"{part}_min_auc"] = f"{aucs[worst]:.3f} {worst}"
            fprs = {a: v["fpr"] for a, v in result[part].items() if v.get("fpr") is not None}
            scores[f"{part}_max_fpr"] = f"{max(fprs.values()):.3f}"
    data = (
        f"data engine, regenerated by the command: {result['episodes']} episodes (demonstrations with their "
        f"failures, {settings.task_episodes} whole-task episodes per task, DAgger rollouts), sampled at 5 Hz"
    )
    ship_checkpoint("success_classifier", "classifier", run_dir, scores, data=data, command=report["command"])


def plot_report(report: dict[str, Any], path: Path) -> None:
    """Success per DAgger round (on-policy, with the expert's share) and the final evaluation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = report["stages"]
    rounds = sorted(int(k[len("dagger") : -len("_rollouts")]) for k in stages if k.endswith("_rollouts"))
    final = report["evaluation"]["skills"]
    skills = sorted(final)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    for skill in skills:
        xs, ys = [], []
        for r in rounds:
            entry = stages[f"dagger{r}_rollouts"]["on_policy"].get(skill)
            if entry:
                xs.append(r)
                ys.append(entry["rate"])
        xs.append((rounds[-1] if rounds else 0) + 1)
        ys.append(final[skill]["rate"])
        left.plot(xs, ys, marker="o", label=skill)
    ticks = [*rounds, (rounds[-1] if rounds else 0) + 1]
    shares = [f"round {r}\nexpert {stages[f'dagger{r}_rollouts']['expert_share']:.0%}" for r in rounds]
    left.set_xticks(ticks, [*shares, "final\nheld-out"])
    left.set_xlabel("DAgger rollouts (a share of steps executed by the expert), then the final policy alone")
    left.set_ylabel("success rate")
    left.set_ylim(0, 1.05)
    left.set_title("success per round")
    left.legend(fontsize=8)
    rates = [final[s]["rate"] for s in skills]
    low = [max(0.0, final[s]["rate"] - final[s]["ci95"][0]) for s in skills]
    high = [max(0.0, final[s]["ci95"][1] - final[s]["rate"]) for s in skills]
    right.bar(skills, rates, color="tab:blue")
    right.errorbar(skills, rates, yerr=[low, high], fmt="none", ecolor="black", capsize=4)
    right.axhline(0.9, color="tab:red", linestyle="--", linewidth=1)
    right.set_ylim(0, 1.05)
    right.set_title(
        f"final policy, in-process, {report['settings']['eval_episodes']} held-out seeds per skill"
    )
    plt.setp(right.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
