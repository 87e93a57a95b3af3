"""imagegen_lib — the library behind *Image Generation — an executable interview-prep book*.

One package per topic; each imports only the packages below it (``MAY_IMPORT`` in ``tests/test_import_graph.py``):

- ``core``        paths, device and run record, data files, checkpoints, manifest, shared training helpers
- ``gan``         MLP GAN, DCGAN, conditional GAN: models, losses, the training step and loop
- ``toy``         2-D GANs on mixtures of Gaussians, where every mode is known
- ``vae``         the variational autoencoder and its training
- ``diffusion``   DDPM: noise schedules, U-Net, samplers, training
- ``sr``          super-resolution: data, bicubic, networks, training, Y-PSNR/SSIM, published numbers
- ``metrics``     evaluating generators: the classifier features, FID/KID/IS/precision-recall, ``imagegen eval``
- ``generators``  every shipped generator behind one sampling interface, and their comparison table
- ``practice``    quizzes, spot-the-bug drills and the buggy reference answers they run
- ``book``        what the notebooks call: chapter files outside a clone, tolerance checks
- ``cli``         the ``imagegen`` command, one module per command
"""

__version__ = "0.1.0"
