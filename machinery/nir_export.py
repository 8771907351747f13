"""The spiking actor as a NIR graph (Neuromorphic Intermediate Representation), for neuromorphic
platforms and simulators that read NIR.

The actor (observation to action mean) is Affine -> IF -> Affine -> LI. SpikingJelly's exporter
(`nir_exchange.export_to_nir`) maps the Linear layers and the IF neurons; it does not map the
non-spiking LIF readout, which becomes NIR's leaky integrator (LI) here. The correspondence, for a
time step dt (stored in the graph's metadata with T, the steps the observation is presented):

- IF: SpikingJelly's `v <- v + x` is NIR's `dv/dt = r I` integrated by Euler over dt with
  r = 1/dt (what the exporter writes); threshold 1, hard reset to 0. NIR's IF has no soft reset,
  so an actor trained with --soft-reset is refused.
- LI: SpikingJelly's `v <- v + (x - v) / tau` is NIR's `tau_nir dv/dt = (v_leak - v) + r I`
  integrated by Euler over dt with tau_nir = tau * dt, v_leak = 0 and r = 1.

So integrating NIR's equations by Euler with that dt for T steps, the input held constant and all
states starting at 0, ends with the LI potentials equal to the action mean. The input is the
observation as the network saw it in training: for an actor trained with --norm-obs, normalized by
the statistics its checkpoint holds and clipped, which NIR has no node for (no clip), so the graph's
metadata holds them (`obs_mean`, `obs_var`, `obs_epsilon`, `obs_clip`) and says, in `input`, what to
present. A network changed in `branch()` is exported as far as SpikingJelly's exporter maps its
modules (LIF neurons, for one, become NIR's LIF); an actor with a module it does not map, or a soft
reset anywhere, is refused in one line. Of the checkpoint it reads the actor and the observation
statistics, nothing else of how the actor was trained.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from machinery import files
from machinery.envs import OBS_EPSILON

DT = 1e-4  # seconds; the exporter's default, "consistent with other frameworks that support NIR"


def actor_graph(model, observations: dict, dt: float = DT):
    """The NIR graph of `model.actor` (a spiking ActorCritic), with dt, T and `observations`
    (`observation_metadata`: what its input is) in its metadata."""
    import nir
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    encoder = model.actor[:-1]  # Linear -> IF (-> Linear -> IF ...) -> Linear, which SpikingJelly maps
    example = torch.zeros(1, encoder[0].in_features)
    front = export_to_nir(encoder.cpu(), example, dt=dt)
    readout = model.actor[-1]
    n_out = encoder[-1].out_features
    nodes = dict(front.nodes)
    last = next(name for name, node in nodes.items() if isinstance(node, nir.Output))
    into_last = [(src, dst) for src, dst in front.edges if dst == last]
    nodes["readout"] = nir.LI(tau=np.full(n_out, readout.tau * dt), r=np.ones(n_out), v_leak=np.zeros(n_out))
    edges = [edge for edge in front.edges if edge[1] != last]
    edges += [(src, "readout") for src, _ in into_last] + [("readout", last)]
    metadata = {"dt": dt, "T": int(model.T), "source": "Spiking PPO actor: observation -> action mean"}
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata | observations)


def observation_metadata(statistics: dict | None, clip: float | None) -> dict:
    """What the graph's input is, for its metadata: the observation as it comes or, with the running
    `statistics` (mean, var) of an actor trained with --norm-obs, the observation normalized and
    clipped to [-clip, clip] as training's wrappers did (machinery/envs.py: gymnasium's NormalizeObservation)."""
    if statistics is None:
        return {"input": "the observation"}
    formula = "clip((obs - obs_mean) / sqrt(obs_var + obs_epsilon), -obs_clip, obs_clip)"
    return {
        "input": f"the observation normalized as in training, {formula}, by the values in the graph's metadata",
        "obs_mean": np.asarray(statistics["mean"], dtype=np.float64),
        "obs_var": np.asarray(statistics["var"], dtype=np.float64),
        "obs_epsilon": OBS_EPSILON,
        "obs_clip": float(clip),
    }


def export_checkpoint(path: str | Path, agent, dt: float = DT) -> tuple[Path, str]:
    """--export-nir CHECKPOINT: its actor's graph, written beside it as <name>.nir; and what its input is."""
    import nir

    from machinery.checkpoints import from_data, load_agent
    from machinery.cli import UsageError

    model, ckpt = load_agent(path, agent)
    out = Path(path).with_suffix(".nir")
    if why := files.why_not_replace(out):  # a checkpoint named <name>.nir, say: its export would replace it
        raise UsageError(f"--export-nir {path}: {out} exists and {why}; rename the checkpoint, or move that file away")
    statistics = from_data(ckpt["obs_statistics"]) if ckpt["args"].get("norm_obs") else None
    observations = observation_metadata(statistics, ckpt["args"].get("obs_clip"))
    # SpikingJelly's exporter refuses a soft reset too ("NIR does not distinguish soft reset."), but
    # does not name the flag that made it; a changed network may have no neuron at actor[1]
    if getattr(model.actor[1], "v_reset", 0.0) is None:
        raise UsageError(f"{path}: trained with --soft-reset, which NIR's IF neuron (reset to v_reset) cannot express")
    try:
        graph = actor_graph(model, observations, dt)
    except KeyError as e:  # nirtorch looks each module's class up in SpikingJelly's mappings
        name = getattr(e.args[0], "__name__", e.args[0])
        raise UsageError(f"{path}: SpikingJelly's NIR exporter has no mapping for the actor's {name}") from None
    except NotImplementedError as e:  # what NIR cannot express: a soft reset in a changed network, ...
        raise UsageError(f"{path}: SpikingJelly's NIR exporter refused the actor: {e}") from None
    hdf5 = io.BytesIO()  # h5py writes a file object only if it can also read and seek it
    nir.write(hdf5, graph)
    files.write_atomically(out, lambda f: f.write(hdf5.getvalue()))
    return out, observations["input"]
