"""imagegen_lib — the helper library behind *Image Generation — an executable interview-prep book*.

Modules by idea: ``data`` (MNIST & friends), ``models`` (one readable file per model family),
``train`` (the shared GAN loop), ``checkpoint`` (safetensors + JSON, atomic), ``viz`` (grids,
curves), ``cli`` (the ``imagegen`` command).
"""

__version__ = "0.1.0"
