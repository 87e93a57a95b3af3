"""GANs on images: the MLP GAN and DCGAN (``models``), the conditional DCGAN (``conditional``), the
losses (``losses``), one training step (``step``), the training loop (``train``), the CUDA-graph step that
runs the same update faster on a GPU (``fast_step``), and walks through the latent space (``latent_walk``).
"""
