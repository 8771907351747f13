"""Speed settings, each kept because a benchmark (bench/benchmark.py, README "Speed") showed it pays.

- `Adam`: torch's fused Adam update without the torch.optim wrapper. Creating any torch.optim
  optimizer imports torch._dynamo, torch's compiler: 1.3 s of start-up on a 2-core machine, for a
  compiler these scripts never use. This calls `torch._fused_adam_`, the private op that
  `torch.optim.Adam(fused=True)` runs; tests/test_speed.py holds the two to bit-identical steps and
  interchangeable state dicts, so a torch that renames the op fails loudly rather than silently.
- `clip_grad_norm_`: `torch.nn.utils.clip_grad_norm_`'s foreach arithmetic, op for op, without its
  argument handling (grouping by device and dtype, support checks), which on networks of 64 units
  costs more than the arithmetic: the eager ANN's update at the cleanrl preset took 5 to 10% less
  time (docs/results.md, "The compiled mini-batch step"); tests/test_speed.py holds the two to
  bit-identical gradients.
- `one_thread_is_fastest` (via --threads, default 1): the tutorial's networks are too small to
  split an op across threads; with 2 threads every agent trained slower (README, Speed).
- `keep_freed_memory_for_reuse`: glibc otherwise returns the spiking network's 1 MB temporaries
  to the kernel after each mini-batch and page-faults them back in for the next.
- `exit_now`: skip the interpreter's teardown, 0.5 to 0.9 s once torch is loaded.
- `hot_path` (compiles with --compile, off by default): the rollout's policy step under
  torch.compile, and each mini-batch's whole step (loss, gradient, clipping, Adam) as one compiled
  function (`FusedGradientStep`). At 64 units an eager torch op costs more in dispatch than in
  arithmetic, and so did autograd's engine around a compiled loss (README, Throughput). The spiking
  network's numba kernels enter the compiled graphs as custom ops (machinery/fast_if.py); each
  agent's policy step is one numba kernel instead (`fast_if.decisions`, `fast_ann.decisions`),
  faster than the compiled one.

Nothing here changes what is computed, only how fast; compiling (`hot_path` with --compile) alone
changes float rounding (its fused kernels sum in another order), which is why it is a flag and not
the default.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import os
import sys
import types
from typing import NoReturn

import torch

from machinery import fast_ann, fast_if


class Adam:
    """`torch.optim.Adam(params, lr, fused=True)`: the same fused kernel and state dict, without the wrapper."""

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.lr, self.betas, self.eps = lr, betas, eps
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.zeros((), device=p.device) for p in self.params]  # float32, as fused Adam keeps it

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        i = [k for k, p in enumerate(self.params) if p.grad is not None]  # unused parameters stay put
        steps = [self.steps[k] for k in i]
        torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            [self.params[k] for k in i],
            [self.params[k].grad for k in i],
            [self.exp_avgs[k] for k in i],
            [self.exp_avg_sqs[k] for k in i],
            [],
            steps,
            lr=self.lr,
            beta1=self.betas[0],
            beta2=self.betas[1],
            weight_decay=0.0,
            eps=self.eps,
            amsgrad=False,
            maximize=False,
        )

    def state_dict(self) -> dict:
        group = {"lr": self.lr, "betas": self.betas, "eps": self.eps, "weight_decay": 0.0, "amsgrad": False}
        group |= {"maximize": False, "fused": True, "params": list(range(len(self.params)))}
        state = {
            k: {"step": step.clone(), "exp_avg": m.clone(), "exp_avg_sq": v.clone()}
            for k, (step, m, v) in enumerate(zip(self.steps, self.exp_avgs, self.exp_avg_sqs, strict=True))
            if step > 0
        }
        return {"state": state, "param_groups": [group]}

    def load_state_dict(self, state_dict: dict) -> None:
        (group,) = state_dict["param_groups"]
        self.lr, self.betas, self.eps = group["lr"], tuple(group["betas"]), group["eps"]
        for k, s in state_dict["state"].items():
            self.steps[k].copy_(s["step"])
            self.exp_avgs[k].copy_(s["exp_avg"])
            self.exp_avg_sqs[k].copy_(s["exp_avg_sq"])


def clip_grad_norm_(params: list[torch.Tensor], max_norm: float) -> torch.Tensor:
    """`torch.nn.utils.clip_grad_norm_(params, max_norm)` on CPU or CUDA parameters of one dtype: scale
    the gradients so that their global 2-norm is at most `max_norm`; returns the norm before."""
    grads = [p.grad for p in params if p.grad is not None]
    total_norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, torch.clamp(max_norm / (total_norm + 1e-6), max=1.0))
    return total_norm


def hot_path(act, gradient_step, loss, model: torch.nn.Module, optimizer: Adam, args, spec):
    """`act` and `gradient_step` as they are, or, where the arguments ask for it (--compile), `act`
    as one kernel where there is one for the model (`fast_if.decisions`, `fast_ann.decisions`; else
    under torch.compile) and `gradient_step` as `FusedGradientStep` of `loss`, both compiled now, at
    start-up (seconds), on inputs of the shapes the training loop gives them, so that the loop runs
    them compiled from its first step (`spec`, the env's, gives the shapes). Nothing of the model or
    the optimizer changes: the warm-up steps copies of them."""
    if not args.compile:
        return act, gradient_step
    decide = fast_if.decisions(model) or fast_ann.decisions(model)
    act, step = decide or torch.compile(act), FusedGradientStep(loss, model, optimizer, args)
    device, envs, batch = next(model.parameters()).device, args.num_envs, args.mini_batch_size
    obs_dim, num_actions = spec.obs_dim, spec.num_actions
    obs = torch.zeros(envs, obs_dim, device=device)
    with torch.inference_mode():
        noise = torch.zeros(envs, num_actions, device=device)
        for observation in (obs, obs.clone()):  # the reset's, made outside inference mode; the steps', inside
            act(model, observation, noise)
    mini_batch = [torch.zeros(batch, n, device=device) for n in (obs_dim, num_actions, num_actions, 1, 1, 1)]
    step.warm_up(args, mini_batch)
    return act, step


class FusedGradientStep:
    """`gradient_step` (the loss of a mini-batch, its gradient, clipping, Adam's update) as one function
    that torch.compile fuses, for --compile. Compiling the loss alone left most of a mini-batch's
    time to the framework around the kernels: autograd's engine, the compiled backward's wrappers, the
    clipping's and Adam's own calls. Here torch.func computes the gradient inside the compiled graph,
    and the clipping and Adam's update follow in it, in place, on the model's parameters and the
    optimizer's own state: its state dict, and so the checkpoints, are those of `Adam`. At the
    cleanrl preset this took 41% and 55% off the compiled update on CartPole-v1 and HalfCheetah-v5
    (docs/results.md, "The compiled mini-batch step").

    Made for one model, optimizer and args, as they are when it is made, and called as
    `gradient_step` is, for those. What is not a tensor goes into the compiled graph as a constant:
    the args, Adam's betas and eps, and the model's structure and neurons (T, thresholds, time
    constants). torch.compile's guards would check all of that at every call, 80 of a 1,150 us step
    of the spiking agent at the cleanrl preset on HalfCheetah-v5, 40 of the ANN's 240; only its
    guards on tensors are kept (`torch.compiler.keep_tensor_guards_unsafe`). In their place, each
    step compiles its own copy of `step` (torch.compile keeps compiled graphs per code object, so no
    other step, for another model, can run this one's graph), and refuses to run with args, betas
    or eps other than those it was made with, and another model or optimizer; a model changed after
    it is made is not noticed. On
    the CPU the compiled graph is called from C++ (inductor's `cpp_wrapper`), not from Python.

    The same function as `gradient_step` with our `Adam` to float rounding (tests/test_ppo_update.py), for a
    model all of whose parameters take part in the loss, as both agents' do (Adam skips a parameter
    that has no gradient; here it would get a zero one)."""

    def __init__(self, loss, model: torch.nn.Module, optimizer: Adam, args):
        names = {p: name for name, p in model.named_parameters()}
        self.names = [names[p] for p in optimizer.params]
        self.loss, self.model, self.optimizer = loss, model, optimizer
        # detached aliases: the same memory, updated in place without autograd's leaf checks
        self.params = [p.detach() for p in optimizer.params]
        self.lr = torch.zeros((), dtype=torch.float64, device=self.params[0].device)  # a tensor: no recompile per rate
        options = {"guard_filter_fn": torch.compiler.keep_tensor_guards_unsafe}
        if self.params[0].device.type == "cpu":
            options["cpp_wrapper"] = True
        self.fused = torch.compile(with_own_code(self.step), options=options)
        self.made_for = copy.copy(args), optimizer.betas, optimizer.eps  # constants of the compiled graph

    def __call__(self, model, optimizer, args, *mini_batch):
        opt = self.optimizer
        self.check_made_for(model, optimizer, args)
        self.lr.fill_(opt.lr)
        state = (self.params, opt.exp_avgs, opt.exp_avg_sqs, opt.steps, self.lr, opt.betas, opt.eps)
        return self.fused(args, *state, *mini_batch)

    def check_made_for(self, model, optimizer, args) -> None:
        """ValueError unless the model, the optimizer, args, and the optimizer's betas and eps are those
        it was made with: it steps its own model's parameters whatever model it is given."""
        if model is not self.model or optimizer is not self.optimizer:
            raise ValueError("this compiled step was made for another model or optimizer: make another (hot_path)")
        if (args, optimizer.betas, optimizer.eps) != self.made_for:
            raise ValueError("this compiled step was made for other args, betas or eps: make another (hot_path)")

    def warm_up(self, args, mini_batch: list[torch.Tensor]) -> None:
        """Compile on copies of the parameters and the optimizer state, which the step changes."""
        opt, copies = self.optimizer, lambda ts: [t.clone() for t in ts]
        self.check_made_for(self.model, opt, args)
        state = (copies(self.params), copies(opt.exp_avgs), copies(opt.exp_avg_sqs), copies(opt.steps))
        self.fused(args, *state, self.lr.clone(), opt.betas, opt.eps, *mini_batch)

    def step(self, args, params, exp_avgs, exp_avg_sqs, steps, lr, betas, eps, *mini_batch):
        def loss_of(params):
            named = dict(zip(self.names, params, strict=True))
            loss, terms = self.loss(functools.partial(torch.func.functional_call, self.model, named), args, *mini_batch)
            return loss, (loss, terms)

        grads, (loss, terms) = torch.func.grad(loss_of, has_aux=True)(params)
        if args.max_grad_norm is not None:
            # clip_grad_norm_'s arithmetic, with a norm per gradient: its foreach norm, compiled, was
            # slower (back-to-back bench/breakdown.py runs, HalfCheetah-v5: the update 72 to 79
            # microseconds per rollout step against 65 to 68)
            total_norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
            coef = torch.clamp(args.max_grad_norm / (total_norm + 1e-6), max=1.0)
            grads = [g * coef for g in grads]
        # Adam's update written out, as torch.optim.Adam's single-tensor path computes it: the fused
        # kernel that `Adam` calls (torch._fused_adam_) has no fake kernel, so torch.compile cannot trace it.
        beta1, beta2 = betas
        for p, g, m, v, step in zip(params, grads, exp_avgs, exp_avg_sqs, steps, strict=True):
            step.add_(1)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            bias_correction1, bias_correction2 = 1 - beta1**step, 1 - beta2**step
            denom = v.sqrt() / bias_correction2.sqrt() + eps
            p.sub_((lr / bias_correction1) * m / denom)
        return loss, terms


def with_own_code(method: types.MethodType) -> types.MethodType:
    """`method` with a code object of its own, the same code: torch.compile keeps what it compiled, and
    the guards that choose among it, per code object."""
    function = method.__func__
    code = function.__code__.replace()  # a copy
    own = types.FunctionType(code, function.__globals__, function.__name__, function.__defaults__, function.__closure__)
    return types.MethodType(own, method.__self__)


def tune_for_speed(threads: int) -> None:
    """The process-wide settings training runs under."""
    torch.set_num_threads(threads)
    keep_freed_memory_for_reuse()


def keep_freed_memory_for_reuse() -> None:
    """Ask glibc to keep freed memory in the process instead of returning it to the kernel.

    The spiking network's [T, batch, hidden] temporaries are about 1 MB at mini-batch 256. By
    default glibc gives blocks that size back to the kernel when freed, and the next mini-batch
    page-faults them in again, which costs more than the arithmetic done on them. A no-op where
    the C library is not glibc.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 32 * 2**20)  # serve blocks up to 32 MB from the heap...
    mallopt(m_trim_threshold, 512 * 2**20)  # ...and keep up to 512 MB of it free for reuse


def exit_now(status: int) -> NoReturn:
    """End the process with `status`, skipping the interpreter's teardown.

    By the time a script's `main` returns, everything it writes (log, checkpoints, videos) is
    closed and its env processes are stopped, so the teardown has nothing left to do but cost time.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
