"""The main job: train S-GMM-QF on CartPole-v1, evaluate it, print score and parameter count.

    python -m sgmmq.quickstart [--steps 50000] [--seed 0] [--save cartpole.zip]
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch

from sgmmq import SGMMQ
from sgmmq.baselines.run import evaluate
from sgmmq.envs import get_task
from sgmmq.envs.factory import make_vec_env


def main() -> None:
    parser = argparse.ArgumentParser(description="Train and evaluate S-GMM-QF on CartPole-v1.")
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", default=None, help="where to save the trained model (.zip); refuses to overwrite")
    args = parser.parse_args()
    if args.save and os.path.exists(args.save if args.save.endswith(".zip") else args.save + ".zip"):
        parser.error(f"{args.save} already exists; choose another path")
    os.environ.setdefault("SB3_LOGDIR", tempfile.mkdtemp(prefix="sb3_"))
    torch.set_num_threads(1)  # small models: one thread is faster and immune to a busy neighbour
    task = get_task("CartPole-v1")
    model = SGMMQ("GMMPolicy", make_vec_env(task, n_envs=1, seed=args.seed), seed=args.seed)
    model.learn(args.steps, progress_bar=True)
    returns = evaluate(model, task, args.seed)
    print(f"CartPole-v1, {args.steps:,} steps, seed {args.seed}")
    print(f"score: {returns.mean():.1f} +- {returns.std():.1f} over {len(returns)} deterministic episodes")
    print(f"live components: {model.live_components}, parameters: {model.num_parameters():,}")
    if args.save:
        model.save(args.save)
        print(f"saved to {args.save}")


if __name__ == "__main__":
    main()
