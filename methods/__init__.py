"""The registry of methods: id -> "module:Class". Each module reads like its paper; modules are
imported on first use so that one method's run does not import the others."""

METHODS = {
    "short_run": "ebmbench.methods.short_run:ShortRun",  # Nijkamp et al. 2019
    "coop_vae_ebm": "ebmbench.methods.coop_vae_ebm:CoopVAEBM",  # Xie, Zheng, Li 2021
    "dual_mcmc": "ebmbench.methods.dual_mcmc:DualMCMC",  # Cui & Han 2023
    "latent_ebm": "ebmbench.methods.latent_ebm:LatentEBM",  # Pang et al. 2020
    "latent_ebm_conv": "ebmbench.methods.latent_ebm:LatentEBMConv",  # Xu 2021 thesis
    # baselines, each the ablation of a method above (its ABLATES)
    "vae": "ebmbench.methods.vae:VAE",  # Kingma & Welling 2014
    "abp": "ebmbench.methods.abp:ABP",  # Han et al. 2017
    "coopnets": "ebmbench.methods.coopnets:CoopNets",  # Xie et al. 2018
}
