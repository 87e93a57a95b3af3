"""GANs on images: the MLP GAN and DCGAN (``models``), the conditional DCGAN (``conditional``), the
losses (``losses``), one training step (``step``), the training loop (``train``), the CUDA-graph step that
runs the same update faster on a GPU (``fast_step``, with its layer and layout changes in ``fast_layers``),
the one interface the loop calls either step through (``stepper``), and walks through the latent space
(``latent_walk``).
"""
