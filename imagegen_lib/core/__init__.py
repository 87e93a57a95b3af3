"""What every topic stands on; imports no topic package.

Where files are (``paths``), the device and run record (``runtime``), data files found, fetched and
sha256-checked (``download``, ``data_files``, ``file_hashes`` with its ``data_hashes/``), images as tensors
(``data``), safetensors + JSON checkpoints written atomically (``checkpoint``), the shipped-checkpoint
manifest (``manifest``), what every trainer shares (``training``: autocast, EMA, resume check, parameter
count), the VAE/DDPM training loop (``loop``), ``torchrun`` support (``distributed``), pictures (``viz``).
"""
