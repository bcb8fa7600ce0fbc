"""galsr.training: the training loop, datasets as tensors, metrics and evaluation of super-resolution emulators;
BOHB tuning in galsr.training.tuning. Architectures and the emulator file live in galsr.emulator (the runtime),
which never imports this package."""
