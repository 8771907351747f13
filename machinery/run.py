"""A training run's lifecycle: its agent, seeds, directory, TensorBoard writer, progress bar, clock
and signals.

`Agent` is what the two scripts tell the shared training loop about themselves. `Run` is made once
per training session (new or resumed) and closed whatever happens; SIGINT and SIGTERM become a
stop request that the training loop checks. For the tools that train many runs, `train_or_reuse`
starts a run in a process of its own unless an earlier one with the same flags can be reused or
resumed, `claimed` keeps two such tools from training the same run, and `side_by_side` runs several
at once and stops them together. It knows where a run's files go and how a run is told to stop, but
nothing of how the agent learns.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from machinery.checkpoints import earlier_run
from machinery.cli import UsageError, hyperparameters, make_folder
from machinery.presets import resolve


@dataclass
class Agent:
    """What differs between the spiking agent and its ANN twin; everything else is shared."""

    name: str  # TensorBoard tag prefix and checkpoint owner, e.g. "Spiking-PPO"
    script: str  # run directory component, e.g. "Spiking_PPO"
    args_cls: type  # its hyperparameter dataclass
    build: Callable[..., torch.nn.Module]  # (observation size, action count, args) -> network
    description: str  # what --help says the script is
    # Extra scalars for TensorBoard, computed on each rollout's observations after the update.
    diagnostics: Callable[[torch.nn.Module, torch.Tensor], dict[str, float]] | None = None


def side_by_side(fn: Callable, jobs: list, workers: int):
    """fn(job) for each job, `workers` at a time, yielded in order, for the tools that train several
    runs (compare.py, bench/). A Ctrl-C stops the runs under way (the signal reaches them too, and
    they keep their last.pt) and starts none of the others: the pool's pending jobs are cancelled,
    where its shutdown on leaving would otherwise start every one of them."""
    pool = ThreadPoolExecutor(workers)
    try:
        yield from pool.map(fn, jobs)
    finally:
        pool.shutdown(cancel_futures=True)


def train_or_reuse(
    agent: Agent, flags: list[str], say: Callable[[str], None], env: dict[str, str] | None = None
) -> tuple[Path | None, int | None, subprocess.CompletedProcess | None]:
    """A run of `agent`'s script with `flags`, in a process of its own, for the tools that train many
    runs: one under its --runs-dir made with the same flags (`find_run`) is reused if it finished, or
    resumed where it stopped, so that a Ctrl-C loses nothing and the same command again trains only what
    is missing; else a new run starts. `say` hears which of these. Returns the run directory (None if
    the script failed), the step an earlier run had reached (None for a new run) and the script's
    process (None for a reused run). A UsageError if `flags` are not the script's."""
    run_dir, earlier_step, resumed = earlier_run(agent, resolve(agent.args_cls, flags)) or (None, None, None)
    if run_dir is not None:
        if resumed is None:  # the script's own test of what is left to train
            say(f"finished before, in {run_dir}")
            return run_dir, earlier_step, None
        say(f"resuming {run_dir} from step {earlier_step}")
        flags = ["--resume", str(run_dir), "--quiet"]
    script = Path(__file__).resolve().parent.parent / f"{agent.script}.py"  # the scripts sit beside this package
    result = subprocess.run([sys.executable, str(script), *flags], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        return None, earlier_step, result
    if run_dir is None:  # a new run's directory, from the last line commands.py prints
        run_dir = Path(re.search(r"run directory (.+)$", result.stdout.strip()).group(1))
    return run_dir, earlier_step, result


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def last_step(args) -> int:
    """The step a run of `args` ends at: the training loop runs whole rollouts, so --max-steps rounded
    up to a multiple of --num-steps."""
    return -(-args.max_steps // args.num_steps) * args.num_steps


def last_evaluation(args) -> int:
    """The step of a run's last evaluation (the loop evaluates every --eval-interval steps)."""
    return last_step(args) // args.eval_interval * args.eval_interval


def check_it_evaluates(args, tool: str, how: str) -> None:
    """compare.py and sweep.py compare runs by their evaluations: one that ends before its first has none
    to show (a script trains it all the same: benchmarks of the loop alone ask for that)."""
    if last_evaluation(args) == 0:
        raise UsageError(
            f"--max-steps {args.max_steps} ends before the first evaluation, at step {args.eval_interval} "
            f"(--eval-interval, given or its --preset's): {tool} compares evaluations; give a larger --max-steps, "
            f"or {how}"
        )


def eval_seed(seed: int, step: int) -> int:
    """The seed of the evaluation at `step`: independent of how much randomness training used."""
    return int(np.random.SeedSequence([seed, step]).generate_state(1)[0])


def create_run_dir(runs_dir: str, env_id: str, script: str, seed: int) -> Path:
    """runs/<env-id>__<script>__<seed>__<unix-time>, made unique if another run took the name."""
    return new_folder(Path(runs_dir) / f"{env_id}__{script}__{seed}__{int(time.time())}", f"--runs-dir {runs_dir}")


def new_folder(base: Path, flag: str) -> Path:
    """`base` created, or base-1, base-2, ... where it exists: a folder no earlier run or sweep wrote,
    claimed by creating it (two processes never get the same one). `flag` names it in errors."""
    for i in range(1000):
        path = base if i == 0 else base.with_name(f"{base.name}-{i}")
        try:
            path.mkdir(parents=True)
            return path
        except FileExistsError:
            if not base.parent.is_dir():
                raise UsageError(f"{flag}: {base.parent} is not a directory") from None
        except OSError as e:
            raise UsageError(f"{flag}: cannot create {path} ({e.strerror})") from None
    raise UsageError(f"{flag}: could not create a folder next to {base}")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(name)


def markdown_table(values: dict) -> str:
    rows = "\n".join(f"|{k}|{v}|" for k, v in values.items())
    return "|param|value|\n|-|-|\n" + rows


class Stopped(Exception):
    """A signal arrived inside `StopSignals.abandonable()`: what was under way is dropped."""


class StopSignals:
    """Turns SIGINT and SIGTERM into a request to stop, installed before a run creates anything.

    The training loop checks `signum` after each env step, where the state can be saved exactly.
    Inside `abandonable()` (an evaluation, a PPO update: up to seconds or, for absurd sizes, much
    longer) a signal raises `Stopped` at once, and the run keeps its last consistent last.pt.
    Only the main thread can handle signals; elsewhere (a Ray Tune trial) they are left alone.
    """

    def __init__(self):
        self.signum: int | None = None
        self._abandon = False
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._request) for sig in (signal.SIGINT, signal.SIGTERM)}

    def _request(self, signum, frame):
        self.signum = signum
        if self._abandon:
            self._abandon = False
            raise Stopped

    @contextmanager
    def abandonable(self):
        if self.signum is not None:
            raise Stopped
        self._abandon = True
        try:
            yield
        except Exception as e:
            # Raised inside C code that calls back into Python (numba's dispatcher, say), the
            # handler's Stopped comes out as another error (SystemError); once a stop was asked
            # for, whatever comes out of the dropped work is that stop.
            if self.signum is not None and not isinstance(e, Stopped):
                raise Stopped from e
            raise
        finally:
            self._abandon = False

    def restore(self):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def hold_lock(path: Path, busy: str):
    """An exclusive lock on the file `path`, held until the file object returned is closed (or however
    the process exits), with this process's id written in it. Where another process holds it, a
    UsageError: f"{busy} by process <its id>; wait for it to end, or stop it"; and one where the file
    cannot be made (a read-only file system)."""
    try:
        lock = open(path, "a+")  # noqa: SIM115 (the caller holds it open as long as it needs the lock)
    except OSError as e:
        raise UsageError(f"{path.parent}: cannot write there ({e.strerror})") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "another process"
        lock.close()
        raise UsageError(f"{busy} by process {holder}; wait for it to end, or stop it") from None
    lock.seek(0)
    lock.truncate()
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


@contextmanager
def claimed(runs: list[tuple[Agent, Any]]):
    """Hold every run (agent, resolved args) that a tool is about to train or reuse, for as long as it
    runs: the same command started twice, or two whose seeds overlap, would each start the runs the
    other had not created yet (`find_run` sees a run once it has a last.pt) and record both. All are
    claimed before any starts, so that a second tool is refused whole, in one line, not part way."""
    with ExitStack() as held:
        for agent, args in runs:
            identity = [agent.script, {k: v for k, v in hyperparameters(args).items() if k != "runs_dir"}]
            digest = hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()
            folder = Path(args.runs_dir) / ".claims"
            make_folder(folder, f"--runs-dir {args.runs_dir}")
            busy = f"{agent.script}.py --seed {args.seed} on {args.env_id} in {args.runs_dir} is being trained"
            held.callback(hold_lock(folder / f"{digest[:16]}.lock", busy).close)
        yield


def lock_run_dir(run_dir: Path):
    """Hold run_dir for this session (released when it closes, or however the process exits): a
    second session that resumes it at the same time would purge the first one's TensorBoard steps
    and overwrite last.pt."""
    lock = hold_lock(run_dir / ".lock", f"{run_dir} is in use")
    for stale in run_dir.glob("*.tmp"):  # a checkpoint write that a kill interrupted
        stale.unlink()
    return lock


def event_writer(run_dir: Path, step: int) -> SummaryWriter:
    """The TensorBoard writer of a session that starts at `step`. On resume, TensorBoard drops what
    the interrupted session logged after its last.pt (`purge_step`), in the files that come before
    this session's: it reads a run's event files in name order, and a name is the second the file was
    made, then host, process id and a count of writers in the process. A session that starts in the
    second an earlier one did (a resume in the same process, as tests do; the count going from 9 to
    10 would put its file first) waits for the next second."""
    names = (re.match(r"events\.out\.tfevents\.(\d+)\.", path.name) for path in run_dir.iterdir())
    if int(time.time()) in {int(name.group(1)) for name in names if name}:
        time.sleep(1 - time.time() % 1)
    return SummaryWriter(str(run_dir), purge_step=step + 1 if step else None)


class Run:
    """One training session's files and clock. `elapsed` carries the training seconds of earlier
    sessions of a resumed run; `step` is where this session starts."""

    def __init__(self, run_dir: Path, stop: StopSignals, step: int, total_steps: int, elapsed: float, quiet: bool):
        self.dir, self.stop = run_dir, stop
        self._lock = lock_run_dir(run_dir)
        self.writer = event_writer(run_dir, step)
        self.bar = tqdm(total=total_steps, initial=step, unit="step", disable=quiet or None, dynamic_ncols=True)
        self.start, self.start_step, self.elapsed_before = time.perf_counter(), step, elapsed

    @property
    def stopping(self) -> bool:
        return self.stop.signum is not None

    def abandonable(self):
        return self.stop.abandonable()

    def training_seconds(self) -> float:
        """Across interruptions."""
        return self.elapsed_before + time.perf_counter() - self.start

    def steps_per_second(self, step: int) -> float:
        return (step - self.start_step) / (time.perf_counter() - self.start)

    def evaluated(self, step: int, reward_tag: str, returns, best: float) -> None:
        """Log an evaluation to TensorBoard and print its line (the tutorial's "Step: ..., Reward: ...").

        The return goes under the agent's own tag (the tutorial's) and under eval/mean_return, which
        both agents share, so that TensorBoard draws them in one chart.
        """
        mean = float(returns.mean())
        self.log({reward_tag: mean, "eval/mean_return": mean, "charts/elapsed_seconds": self.training_seconds()}, step)
        self.bar.set_postfix(eval=f"{mean:.1f}", best=f"{best:.1f}")
        self.bar.write(
            f"step {step:>7} | eval return {mean:7.2f} ± {returns.std():6.2f} | "
            f"best {best:7.2f} | {self.steps_per_second(step):6.0f} steps/s"
        )

    def describe(self, hyperparameters: dict) -> None:
        """The run's hyperparameters as a table in TensorBoard's text tab."""
        self.writer.add_text("hyperparameters", markdown_table(hyperparameters))

    def log(self, scalars: dict[str, float], step: int) -> None:
        for tag, value in scalars.items():
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.bar.close()
        self.stop.restore()
        self.writer.close()
        self._lock.close()  # the session is over: another one, in this process or not, may take the run


def logged_scalars(run_dir: Path) -> dict[str, np.ndarray]:
    """Every scalar a finished run logged, read back as TensorBoard reads it: tag -> rows (rollout
    step, value) in the order they were logged. compare.py and bench/scalars.py read runs with it."""
    from tensorboard.backend.event_processing import event_accumulator  # readers only

    # A resumed session's start drops what the interrupted one logged after its last.pt (event_writer's
    # purge_step), as designed; TensorBoard's reader warns of it as of "a TensorFlow restart".
    log = event_accumulator.logger
    designed_purge = lambda record: not record.getMessage().startswith("Detected out of order event.step")  # noqa: E731
    log.addFilter(designed_purge)
    try:
        acc = event_accumulator.EventAccumulator(str(run_dir), size_guidance={"scalars": 0})  # 0: every value
        acc.Reload()
    finally:
        log.removeFilter(designed_purge)
    return {tag: np.array([(e.step, e.value) for e in acc.Scalars(tag)]) for tag in acc.Tags()["scalars"]}


class TrainingDiverged(Exception):
    """A non-finite loss or parameter: reported in one line, exit status 1."""
