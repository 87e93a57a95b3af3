"""Models, one file per family: ``gan`` (MLP GAN, DCGAN), ``toy`` (2-D MLPs for the toy GANs),
``sr`` (SRCNN, ESPCN, a residual super-resolution net), ``cgan`` (class-conditional DCGAN), ``vae``
(convolutional VAE), ``ddpm`` (noise schedule, U-Net, DDPM and DDIM samplers)."""
