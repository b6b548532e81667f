"""``meta-robot``: bring the graph up, run the demo, move the arm.

meta-robot up sim [--scenario default] [--seed 0] [--real-time-factor 1.0]
meta-robot up robot --robot-ip 172.16.0.2 [--realtime-config enforce] [--network system]
meta-robot demo [--task fill_drawer] [--skills policy|scripted] [--perturb] [--bringup]
meta-robot move X Y Z [--gripper 0.08] [--speed 0.15]
meta-robot record --skill pick [--args red_cube] [--episodes 50] [--out data/episodes]
meta-robot dataset info|export ...
meta-robot replay EPISODE_DIR
meta-robot eval skill NAME | eval task NAME [--perturb] [--skills policy|scripted]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from meta_robot import __version__


def _cmd_up(args: argparse.Namespace) -> int:
    from meta_robot.ros.environment import loopback_environment
    from meta_robot.ros.graph import (
        data_collection_nodes,
        executive_node,
        learned_skill_nodes,
        robot_graph,
        sim_graph,
    )
    from meta_robot.ros.launcher import GraphProcesses

    if args.graph == "sim":
        specs = sim_graph(
            args.scenario,
            args.seed,
            args.real_time_factor,
            args.namespace,
            teleop_device=args.teleop,
            recorder_dir=args.record,
            live_view=args.live_view,
            policy=args.policy,
            classifier=args.classifier,
            executive=args.executive,
        )
    else:
        if not args.robot_ip:
            raise SystemExit("error: 'up robot' needs --robot-ip (the Franka controller's FCI address)")
        specs = robot_graph(args.robot_ip, args.realtime_config, args.camera_serial, args.namespace)
        specs += data_collection_nodes(args.teleop, args.record, args.live_view, args.namespace)
        specs += learned_skill_nodes(
            args.policy, args.classifier, args.namespace, behind_teleop=args.teleop is not None
        )
        if args.executive:
            specs.append(executive_node(args.executive, args.namespace))
    if args.network == "loopback":
        env = loopback_environment(args.domain_id)
        logging.info("DDS on loopback only, ROS_DOMAIN_ID=%s", env["ROS_DOMAIN_ID"])
    else:
        env = dict(os.environ)
        logging.info("DDS as configured by this machine's environment (--network system)")
    graph = GraphProcesses(specs, env, log_dir=args.log_dir)
    with graph:
        logging.info(
            "running %s; logs in %s; Ctrl-C stops every node", [s.full_name for s in specs], graph.log_dir
        )
        try:
            dead = graph.wait()
        except KeyboardInterrupt:
            return 0
        logging.error("node %s exited; stopping the graph:\n%s", dead, graph.log_of(dead)[-2000:])
        return 1


def _cmd_demo(args: argparse.Namespace) -> int:
    if args.bringup:
        from meta_robot.apps.demo import run_demo

        report = run_demo(Path(args.out), scenario=args.scenario or "default", seed=args.seed)
        return 0 if report.inside_targets_reached else 1
    from meta_robot.apps.task_evaluation import evaluate_task

    result = evaluate_task(
        args.task,
        args.episodes,
        Path(args.out),
        skills=args.skills,
        perturb=args.perturb,
        seed_start=args.seed,
        record=True,
    )
    print(f"timelines, the episode recording and node logs are in {args.out}/")
    return 0 if result.episodes else 1


def _cmd_move(args: argparse.Namespace) -> int:
    import numpy as np

    from meta_robot.ros.background import BackgroundNode
    from meta_robot.ros.commander import ArmCommander
    from meta_robot.ros.environment import apply_loopback_environment

    if args.network == "loopback":
        apply_loopback_environment(args.domain_id)
    with BackgroundNode("move_commander") as ros:
        commander = ArmCommander(ros.node, source="meta-robot move")
        result = commander.move_to(
            np.array(args.xyz), gripper_width=args.gripper, speed=args.speed, settle=args.hold
        )
    print(
        f"target {np.round(result.target, 4).tolist()} reached {np.round(result.reached, 4).tolist()} "
        f"error {result.error * 1e3:.1f} mm"
    )
    for refusal in result.refusals[:5]:
        print(f"  {refusal}")
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from meta_robot.apps.data_collection import record
    from meta_robot.skills.registry import load_registry

    if args.task:
        from meta_robot.apps.task_recording import record_tasks

        task_reports = record_tasks(
            args.task, args.episodes, Path(args.out), seed_start=args.seed_start, camera_rate=args.camera_rate
        )
        return 0 if all(r.episodes for r in task_reports) else 1
    if not args.skill:
        raise SystemExit("error: record needs --skill NAME... or --task NAME...")

    skills = list(load_registry().skills) if args.skill == ["all"] else args.skill
    reports = record(
        skills,
        args.episodes,
        Path(args.out),
        arguments=args.args,
        seed_start=args.seed_start,
        camera_rate=args.camera_rate,
        real_time_factor=args.real_time_factor,
        log_dir=args.log_dir,
    )
    return 0 if all(r.episodes for r in reports) else 1


def _cmd_eval(args: argparse.Namespace) -> int:
    from meta_robot.apps.evaluation import evaluate_skill
    from meta_robot.skills.registry import load_registry

    if args.what == "task":
        from meta_robot.apps.task_evaluation import evaluate_task

        for task in args.name:
            evaluate_task(
                task,
                args.episodes,
                Path(args.out),
                skills=args.skills,
                perturb=args.perturb,
                policy=args.policy,
                classifier=args.classifier or "success_classifier",
                seed_start=args.seed_start,
                record=args.record,
            )
        return 0

    skills = list(load_registry().skills) if args.name == ["all"] else args.name
    if args.in_process:
        return _eval_in_process(args, skills)
    for skill in skills:
        evaluate_skill(
            skill,
            args.episodes,
            Path(args.out),
            policy=args.policy,
            classifier=args.classifier,
            arguments=args.args,
            seed_start=args.seed_start,
            real_time_factor=args.real_time_factor,
        )
    return 0


def _eval_in_process(args: argparse.Namespace, skills: list[str]) -> int:
    from meta_robot.engine.learner import evaluate_in_process, write_learner_report
    from meta_robot.learning.checkpoint_registry import resolve_checkpoint

    policy = resolve_checkpoint(args.policy, "policy")
    out = Path(args.out)
    keep = out / "episodes" if args.videos else None
    report = evaluate_in_process(str(policy), skills, args.episodes, args.seed_start, args.workers, keep=keep)
    print(write_learner_report(report, out, f"{args.policy} (in-process)"))
    if keep is not None:
        from meta_robot.engine.store import episode_files, read_episode
        from meta_robot.engine.video import episode_video

        failed = {}
        for path in episode_files(keep):
            episode = read_episode(path)
            if not episode.success and len(failed.setdefault(episode.skill, [])) < args.videos:
                failed[episode.skill].append(path)
        for path in episode_video([p for paths in failed.values() for p in paths], out / "videos"):
            print(f"video: {path}")
    return 0


def _cmd_collect(args: argparse.Namespace) -> int:
    from meta_robot.engine.collect import collect

    report = collect(Path(args.out), args.skill, args.episodes, args.workers, args.seed_start)
    print(report.summary())
    for error in report.errors:
        print(f"lost: {error}", file=sys.stderr)
    return 0 if sum(report.episodes.values()) or report.skipped else 1


def _train_skills(args: argparse.Namespace, command: str) -> int:
    from meta_robot.engine.pipeline import PipelineSettings, train_skills
    from meta_robot.learning.nets import select_device

    device = select_device(args.device)
    # A GPU is fed larger batches; the CPU's default is what the shipped checkpoints were made with.
    batch_size = args.batch_size or (256 if device.type == "cuda" else 64)
    settings = PipelineSettings(
        skills=tuple(args.skills),
        demos=args.demos,
        epochs=8 if args.epochs is None else args.epochs,
        dagger_rounds=args.dagger_rounds,
        dagger_episodes=args.dagger_episodes,
        dagger_epochs=args.dagger_epochs,
        expert_share=args.expert_share,
        expert_decay=args.expert_decay,
        eval_episodes=args.eval_episodes,
        tasks=tuple(args.tasks),
        task_episodes=args.task_episodes,
        classifier_epochs=args.classifier_epochs,
        seed=args.seed,
        batch_size=batch_size,
        image_size=(args.image_size, args.image_size),
        pooling=args.pooling,
        aux_weight=args.aux_weight,
        goal_fraction=args.goal_fraction,
    )
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    result = train_skills(
        Path(args.out or "out/train_skills"), settings, args.workers, str(device), args.ship, command=command
    )
    for skill, v in result.report["evaluation"]["skills"].items():
        low, high = v["ci95"]
        print(f"{skill}: {v['successes']}/{v['episodes']} in-process (95 % CI {low:.0%}-{high:.0%})")
    print(f"policy: {result.policy}; report: {result.out_dir / 'report.yaml'}")
    return 0


def _cmd_checkpoint(args: argparse.Namespace) -> int:
    import yaml

    from meta_robot.learning.checkpoint_registry import ship_checkpoint

    scores = {}
    for item in args.score:
        key, _, value = item.partition("=")
        if not value:
            raise SystemExit(f"--score expects KEY=VALUE, got {item!r}")
        scores[key] = yaml.safe_load(value)
    entry = ship_checkpoint(args.name, args.kind, Path(args.run), scores)
    print(f"{entry.name}: {entry.path} (sha256 {entry.sha256[:12]}…) entered in the manifest")
    return 0


def _cmd_dataset(args: argparse.Namespace) -> int:
    from meta_robot.dataset import dataset_info, format_info, plot_info
    from meta_robot.dataset.lerobot import export_lerobot, validate_lerobot_dataset
    from meta_robot.engine.store import is_engine_dataset

    engine = is_engine_dataset(args.root)
    if args.action == "verify" and engine:
        from meta_robot.engine.store import EpisodeFileError, episode_files, read_episode

        files, bad = episode_files(args.root, args.skills), 0
        for path in files:
            try:
                read_episode(path)  # refuses a file whose arrays disagree, naming it
            except EpisodeFileError as exc:
                bad += 1
                print(exc)
        print(f"{len(files) - bad}/{len(files)} engine episodes read back whole")
        return 1 if bad else 0
    if args.action == "verify":
        from meta_robot.dataset import list_episodes
        from meta_robot.dataset.verify import check_episode

        checks = [check_episode(e) for e in list_episodes(Path(args.root), skills=args.skills)]
        for check in checks:
            if not check.ok or args.verbose:
                print(check)
        bad = sum(not c.ok for c in checks)
        print(f"{len(checks) - bad}/{len(checks)} episodes read back whole with rosbags and mcap")
        return 1 if bad else 0
    if args.action == "info":
        info = dataset_info(Path(args.root), fps=args.fps, skills=args.skills)
        print(format_info(info))
        if args.plot:
            plot_info(info, Path(args.plot))
            print(f"plot: {args.plot}")
        return 0
    if args.format == "rosbag2":
        if not engine:
            raise SystemExit(
                f"{args.root}: already rosbag2 recordings (rosbag2 export is for engine datasets)"
            )
        from meta_robot.engine.export_bag import export_rosbag

        out = Path(args.out if args.out != "data/lerobot" else "data/episodes")
        report = export_rosbag(args.root, out, args.skills, args.only_successful)
        print(f"{report.summary()} -> {out}")
        return 0
    result = export_lerobot(
        Path(args.root),
        Path(args.out),
        fps=args.fps,
        image_size=tuple(args.image_size) if args.image_size else None,
        skills=args.skills,
        only_successful=args.only_successful,
        overwrite=args.overwrite,
    )
    print(validate_lerobot_dataset(result.path))
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from meta_robot.apps.replay import replay_episode

    report = replay_episode(Path(args.episode), log_dir=args.log_dir)
    print(report)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    import shlex

    if args.model == "skills":
        return _train_skills(args, shlex.join(["meta-robot", *sys.argv[1:]]))
    common = {
        "epochs": 10 if args.epochs is None else args.epochs,
        "seed": args.seed,
        "resume": not args.fresh,
        "num_threads": args.threads,
        "device": args.device,
        "command": shlex.join(["meta-robot", *sys.argv[1:]]),
    }
    if args.model == "classifier":
        from meta_robot.learning.train_classifier import train_classifier

        if len(args.data) != 1:
            raise SystemExit("train classifier takes one --data folder")
        result = train_classifier(
            Path(args.data[0]), Path(args.out or "out/classifier"), init_from=args.init_from, **common
        )
    else:
        from meta_robot.learning.train_policy import train_policy

        result = train_policy(
            [Path(d) for d in args.data],
            Path(args.out or "out/policy"),
            image_size=(args.image_size, args.image_size),
            fps=args.fps,
            model_options={"pooling": args.pooling},
            **common,
        )
    print(f"weights: {result.weights}")
    return 0


def _cmd_teleop(args: argparse.Namespace) -> int:
    """Run the teleop node in the foreground, so a keyboard device gets this terminal."""
    from meta_robot.core.paths import config_path
    from meta_robot.nodes import teleop_node
    from meta_robot.ros.environment import apply_loopback_environment

    if args.network == "loopback":
        apply_loopback_environment(args.domain_id)
    teleop_node.main(
        [
            "--ros-args",
            "--params-file",
            str(config_path("safety.yaml")),
            "--params-file",
            str(config_path("teleop.yaml")),
            "-p",
            f"teleop.device:={args.device}",
        ]
    )
    return 0


def _cmd_recover(args: argparse.Namespace) -> int:
    from meta_robot.recording.recover import recover_open_episodes

    for result in recover_open_episodes(Path(args.root)):
        print(f"recovered {result.episode_id}: {result.messages} messages -> {result.path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(prog="meta-robot", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"meta_robot {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def network_options(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--network",
            choices=("loopback", "system"),
            default="loopback",
            help="loopback: DDS on this machine only, private domain (default); "
            "system: keep this machine's ROS_DOMAIN_ID / discovery settings",
        )
        p.add_argument("--domain-id", type=int, default=None, help="ROS_DOMAIN_ID (default: private)")

    up = sub.add_parser("up", help="start a node graph without ros2 launch")
    up.add_argument("graph", choices=("sim", "robot"))
    up.add_argument("--scenario", default="default")
    up.add_argument("--seed", type=int, default=0)
    up.add_argument("--real-time-factor", type=float, default=1.0, help="0 = as fast as possible")
    up.add_argument("--robot-ip", default="")
    up.add_argument("--realtime-config", choices=("enforce", "ignore"), default="enforce")
    up.add_argument("--camera-serial", default="")
    up.add_argument("--namespace", default="")
    up.add_argument("--log-dir", type=Path, default=None, help="where node logs go (default: a temp dir)")
    up.add_argument(
        "--teleop",
        choices=("spacemouse", "gamepad", "topic"),
        default=None,
        help="add a teleop node on this device",
    )
    up.add_argument("--record", default=None, metavar="DIR", help="add a recorder writing episodes to DIR")
    up.add_argument("--live-view", action="store_true", help="add the Foxglove live view (127.0.0.1:8765)")
    up.add_argument(
        "--policy", default=None, help="add the policy server with this checkpoint (name or path)"
    )
    up.add_argument("--classifier", default=None, help="add the success classifier (checkpoint name or path)")
    up.add_argument(
        "--executive",
        default=None,
        metavar="SKILL_ACTION",
        help="add the executive, running skills on this ExecuteSkill action (e.g. policy/execute_skill)",
    )
    network_options(up)
    up.set_defaults(func=_cmd_up)

    demo = sub.add_parser(
        "demo", help="a long-horizon task in sim with the shipped checkpoints, through every node"
    )
    demo.add_argument("--out", default="out/demo", help="folder for the timeline, recording and node logs")
    demo.add_argument("--task", default="fill_drawer", help="task name from config/tasks.yaml")
    demo.add_argument("--episodes", type=int, default=1, help="held-out seeds to run")
    demo.add_argument(
        "--skills",
        choices=("policy", "scripted"),
        default="policy",
        help="learned skills (policy server) or the privileged scripted operator's",
    )
    demo.add_argument("--perturb", action="store_true", help="move objects while the task runs")
    demo.add_argument("--seed", type=int, default=100_000, help="first seed is this + 1 (held out)")
    demo.add_argument(
        "--bringup",
        action="store_true",
        help="instead: the bring-up demo (targets, safety refusal, tracking)",
    )
    demo.add_argument("--scenario", default=None, help="--bringup: scenario (default: default)")
    demo.set_defaults(func=_cmd_demo)

    move = sub.add_parser("move", help="move the TCP to X Y Z (m, base frame) through the safety layer")
    move.add_argument("xyz", type=float, nargs=3)
    move.add_argument("--gripper", type=float, default=None, help="gripper width (m)")
    move.add_argument("--speed", type=float, default=0.15, help="m/s")
    move.add_argument("--hold", type=float, default=1.0, help="s to keep commanding the target")
    network_options(move)
    move.set_defaults(func=_cmd_move)

    rec = sub.add_parser("record", help="record scripted demonstrations of skills in sim through the graph")
    rec.add_argument("--skill", nargs="+", default=None, help="registry skill name(s), or 'all'")
    rec.add_argument(
        "--task", nargs="+", default=None, help="instead: whole tasks (config/tasks.yaml), one per episode"
    )
    rec.add_argument("--args", nargs="*", default=None, help="skill arguments (default: cycle through all)")
    rec.add_argument("--episodes", type=int, default=50, help="recorded episodes per skill")
    rec.add_argument("--out", default="data/episodes", help="episode folder")
    rec.add_argument("--seed-start", type=int, default=1000, help="first scenario seed")
    rec.add_argument("--camera-rate", type=float, default=15.0, help="Hz of the sim cameras")
    rec.add_argument("--real-time-factor", type=float, default=1.0, help="0 = as fast as possible (sim time)")
    rec.add_argument("--log-dir", type=Path, default=None, help="node logs (default: a temp dir)")
    rec.set_defaults(func=_cmd_record)

    ev = sub.add_parser(
        "eval", help="success rate of learned skills in sim on held-out seeds, through the graph"
    )
    ev.add_argument("what", choices=("skill", "task"))
    ev.add_argument(
        "name", nargs="+", help="registry skill name(s) or 'all'; or task name(s) (config/tasks.yaml)"
    )
    ev.add_argument("--episodes", type=int, default=50, help="evaluated executions per skill")
    ev.add_argument("--args", nargs="*", default=None, help="skill arguments (default: cycle through all)")
    ev.add_argument("--policy", default="goal_conditioned_bc", help="manifest name or .safetensors path")
    ev.add_argument("--classifier", default=None, help="also run the success classifier (name or path)")
    ev.add_argument("--seed-start", type=int, default=100_000, help="first held-out scenario seed")
    ev.add_argument("--real-time-factor", type=float, default=1.0, help="0 = as fast as possible (sim time)")
    ev.add_argument("--out", default="out/eval", help="results, plots and node logs")
    ev.add_argument("--perturb", action="store_true", help="task: move objects while the task runs")
    ev.add_argument(
        "--skills",
        choices=("policy", "scripted"),
        default="policy",
        help="task: learned skills (policy server) or the privileged scripted operator's",
    )
    ev.add_argument("--record", action="store_true", help="task: record every episode (rosbag2 MCAP)")
    ev.add_argument(
        "--in-process",
        action="store_true",
        help="skill: in the data engine's workers instead of through the graph (fast, for large N)",
    )
    ev.add_argument("--workers", type=int, default=None, help="--in-process: worker processes (all cores)")
    ev.add_argument(
        "--videos",
        type=int,
        default=0,
        help="--in-process: keep the rollouts; MP4s of this many failures per skill",
    )
    ev.set_defaults(func=_cmd_eval)

    ship = sub.add_parser(
        "checkpoint", help="ship a trained model: copy it under checkpoints/ with its manifest entry"
    )
    ship.add_argument("action", choices=("ship",))
    ship.add_argument("name", help="manifest name, e.g. goal_conditioned_bc")
    ship.add_argument("--kind", choices=("policy", "classifier"), required=True)
    ship.add_argument("--run", required=True, help="the training run's output folder")
    ship.add_argument("--score", action="append", default=[], help="KEY=VALUE measured score (repeatable)")
    ship.set_defaults(func=_cmd_checkpoint)

    data = sub.add_parser("dataset", help="inspect, verify or export recorded or engine episodes")
    data.add_argument("action", choices=("info", "verify", "export"))
    data.add_argument("root", help="episode folder (the recorder's, or a data engine dataset)")
    data.add_argument(
        "--out", default="data/lerobot", help="export: the folder to write (rosbag2: default data/episodes)"
    )
    data.add_argument(
        "--format",
        choices=("lerobot", "rosbag2"),
        default="lerobot",
        help="export format (rosbag2: engine episodes as recordings, images rendered from their states)",
    )
    data.add_argument("--fps", type=int, default=10)
    data.add_argument("--skills", nargs="*", default=None, help="only these skills")
    data.add_argument("--image-size", type=int, nargs=2, default=None, metavar=("H", "W"))
    data.add_argument("--only-successful", action="store_true")
    data.add_argument("--overwrite", action="store_true")
    data.add_argument("--plot", default=None, help="info: write a summary PNG here")
    data.set_defaults(func=_cmd_dataset)

    replay = sub.add_parser("replay", help="play an episode's recorded commands back into the sim")
    replay.add_argument("episode", help="a finished episode folder")
    replay.add_argument("--log-dir", type=Path, default=None)
    replay.set_defaults(func=_cmd_replay)

    col = sub.add_parser(
        "collect", help="scripted demonstrations in parallel headless workers (data engine, stored as states)"
    )
    col.add_argument("--skill", nargs="+", default=["all"], help="registry skill name(s), or 'all'")
    col.add_argument("--episodes", type=int, default=100, help="episodes per skill")
    col.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    col.add_argument("--out", default="data/engine", help="dataset folder")
    col.add_argument("--seed-start", type=int, default=1000, help="first scenario seed")
    col.set_defaults(func=_cmd_collect)

    train = sub.add_parser(
        "train", help="train a model from episodes; 'skills': the whole pipeline from nothing (data engine)"
    )
    train.add_argument("model", choices=("classifier", "policy", "skills"))
    train.add_argument(
        "--data",
        nargs="+",
        default=["data/episodes"],
        help="episode folder(s): recordings and/or engine datasets (policy: several train together)",
    )
    train.add_argument("--out", default=None, help="checkpoint folder (default out/<model>)")
    train.add_argument(
        "--epochs", type=int, default=None, help="default 10; skills: 8 (BC on the demonstrations)"
    )
    train.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: CUDA when present)")
    train.add_argument("--image-size", type=int, default=64, help="policy: square image side in pixels")
    train.add_argument(
        "--pooling",
        choices=("flatten", "spatial_softmax"),
        default="spatial_softmax",
        help="policy image features",
    )
    train.add_argument("--fps", type=float, default=10.0, help="policy: control rate of the data")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    train.add_argument("--fresh", action="store_true", help="do not resume from the folder's checkpoint")
    train.add_argument(
        "--init-from", default=None, help="classifier: fine-tune this one (manifest name or path)"
    )
    pipe = train.add_argument_group(
        "skills (the pipeline: collect, render, policy, DAgger, evaluate, report)"
    )
    pipe.add_argument("--skills", nargs="+", default=["all"], help="registry skills, or 'all'")
    pipe.add_argument("--demos", type=int, default=200, help="scripted demonstrations per skill")
    pipe.add_argument("--dagger-rounds", type=int, default=2)
    pipe.add_argument("--dagger-episodes", type=int, default=40, help="learner rollouts per skill and round")
    pipe.add_argument("--dagger-epochs", type=int, default=2, help="refit epochs per round")
    pipe.add_argument("--expert-share", type=float, default=0.5, help="steps the expert executes in round 1")
    pipe.add_argument(
        "--expert-decay", type=float, default=0.5, help="the expert's share shrinks by this factor each round"
    )
    pipe.add_argument("--eval-episodes", type=int, default=50, help="held-out seeds per skill")
    pipe.add_argument(
        "--tasks", nargs="+", default=["all"], help="tasks demonstrated whole, for the classifier"
    )
    pipe.add_argument("--task-episodes", type=int, default=10, help="whole-task demonstrations per task")
    pipe.add_argument("--classifier-epochs", type=int, default=4, help="0: no classifier stage")
    pipe.add_argument("--batch-size", type=int, default=None, help="default 64 on the CPU, 256 on CUDA")
    pipe.add_argument(
        "--aux-weight",
        type=float,
        default=1.0,
        help="weight of the auxiliary loss: image features predict the true object poses (0: off)",
    )
    pipe.add_argument("--goal-fraction", type=float, default=0.25, help="share of samples shown a goal image")
    pipe.add_argument("--workers", type=int, default=None, help="engine worker processes (all cores)")
    pipe.add_argument("--ship", action="store_true", help="enter the final policy in checkpoints/")
    train.set_defaults(func=_cmd_train)

    teleop = sub.add_parser("teleop", help="drive the arm from a device (keyboard in this terminal)")
    teleop.add_argument(
        "--device", choices=("keyboard", "spacemouse", "gamepad", "topic"), default="keyboard"
    )
    network_options(teleop)
    teleop.set_defaults(func=_cmd_teleop)

    recover = sub.add_parser("recover", help="make crashed (still open) episodes readable")
    recover.add_argument("root", nargs="?", default="data/episodes")
    recover.set_defaults(func=_cmd_recover)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``meta-robot`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        code = args.func(args)
    except KeyboardInterrupt:
        logging.warning("interrupted (Ctrl-C); the nodes this command started have been stopped")
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
