"""SRM: the super-resolution module that refines HOGS renders (StyleUNet + StyleGAN2 discriminator, paper §3.4)."""
