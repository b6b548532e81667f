"""Policy inference: per-step latency at batch 1 and throughput at batches 1-64, per device.

    .venv/bin/python benchmarks/bench_policy_inference.py [--policy goal_conditioned_bc]
        [--devices cpu cuda] [--steps 200] [--batches 1 2 4 8 16 32 64] [--threads N]
        [--plot out/inference.png]

A step is what the policy server does per control tick: resize the 640x480 camera images to the
model's size, run the network, turn the chunk into a target and blend it (``Policy.act``). "network"
is the forward pass alone on already-sized inputs. Devices default to the CPU, plus CUDA if present.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from meta_robot.learning.checkpoint_registry import resolve_checkpoint
from meta_robot.learning.policy import Observation, load_policy

CAMERA_SHAPE = (480, 640, 3)


def _observation(rng: np.random.Generator, cameras) -> Observation:
    images = {cam: rng.integers(0, 255, CAMERA_SHAPE, dtype=np.uint8) for cam in cameras}
    state = np.array(
        [0.0, -0.3, 0.0, -2.2, 0.0, 2.0, 0.8, 0.08, 0.45, 0.0, 0.25, 1.0, 0.0, 0.0, 0.0], np.float32
    )
    return Observation(images, state)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(policy_name: str, device: str, steps: int, batches: list[int]) -> dict:
    policy = load_policy(resolve_checkpoint(policy_name, "policy"), device=device)
    policy.warm_up()
    rng = np.random.default_rng(0)
    request = policy.example_request()
    observation = _observation(rng, policy.cameras)
    episode = policy.start(request)
    latencies = []
    for _ in range(steps):
        t0 = time.perf_counter()
        policy.act([episode], [observation])
        _sync(policy.device)
        latencies.append(time.perf_counter() - t0)
    out = {"device": str(policy.device), "latency_ms": 1e3 * np.array(latencies), "throughput": {}}
    for batch in batches:
        episodes = [policy.start(request) for _ in range(batch)]
        observations = [observation] * batch
        inputs = policy.network_inputs(episodes, observations)
        with torch.no_grad():
            for what, call in (
                ("step", lambda e=episodes, o=observations: policy.act(e, o)),
                ("network", lambda i=inputs: policy.network(*i)),
            ):
                call()
                _sync(policy.device)
                repeats = max(3, 64 // batch)
                t0 = time.perf_counter()
                for _ in range(repeats):
                    call()
                _sync(policy.device)
                out["throughput"].setdefault(batch, {})[what] = batch * repeats / (time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policy", default="goal_conditioned_bc", help="manifest name or .safetensors path")
    parser.add_argument("--devices", nargs="+", default=None)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32, 64])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--plot", type=Path, default=None, help="latency histogram PNG")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.devices or ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
    results = [measure(args.policy, d, args.steps, args.batches) for d in devices]
    for r in results:
        name = r["device"] + (f" ({torch.cuda.get_device_name(0)})" if r["device"].startswith("cuda") else "")
        lat = r["latency_ms"]
        print(
            f"{name}, {torch.get_num_threads()} CPU threads: step latency at batch 1 over {len(lat)} steps: "
            f"p50 {np.percentile(lat, 50):.2f} ms, p99 {np.percentile(lat, 99):.2f} ms"
        )
        print("  batch | steps/s (incl. 640x480 resize) | network forwards/s")
        for batch, t in r["throughput"].items():
            print(f"  {batch:5d} | {t['step']:29.0f} | {t['network']:18.0f}")
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3.5))
        for r in results:
            ax.hist(r["latency_ms"], bins=40, alpha=0.7, label=r["device"])
        ax.set_xlabel("policy step latency at batch 1 (ms)")
        ax.set_ylabel("steps")
        ax.legend()
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=100)
        print(f"histogram: {args.plot}")


if __name__ == "__main__":
    main()
