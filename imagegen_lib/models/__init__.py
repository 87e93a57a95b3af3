"""Models, one file per family: ``gan`` (MLP GAN, DCGAN)."""
