"""The machinery behind Spiking_PPO.py and PPO.py: everything that is not the algorithm.

The two scripts hold spiking PPO as the tutorial teaches it; this package holds what a real tool
needs around it, one concern per module:

- `cli`: hyperparameter dataclasses to command-line flags, range checks, one-line usage errors;
- `presets`: what `--preset` resolves to (the tutorial's, CleanRL's and our settings);
- `fast_if`: the closed-form IF layer of the spiking network's fast path, and its kernels;
- `fast_ann`: the ANN twin's policy step in one kernel, for --compile;
- `envs`: what an env must offer, vector envs with the tutorial's autoreset, time-limit targets,
  and an env's state as plain data;
- `checkpoints`: the checkpoint format, atomic writes, safe reading and validation;
- `run`: the `Agent` record, a run's seeds, directory, TensorBoard writer, progress bar and signals;
- `session`: a training session's start (new or resumed) and its end, whatever ends it;
- `commands`: the scripts' `main`: train, resume, replay or export, and the exit statuses;
- `replay`: `--eval-only`, `--render` and `--capture-video`: a checkpoint played again;
- `resources`: what a run will allocate, checked before anything is;
- `stats`: results over seeds (standard deviation, how many seeds, when an interval means something);
- `cost`: operations, spikes and energy per decision (SpikingJelly's op_counter), and the firing
  rates logged at each update;
- `nir_export`: the spiking actor as a NIR graph;
- `speed`: measured speed settings (Adam without torch.optim's import cost, the allocator).

Nothing here imports the scripts: they pass in what the machinery needs to know of them.
"""
