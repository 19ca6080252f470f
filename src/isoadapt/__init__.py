"""isoadapt: isotropy-regularized projection heads over frozen sentence encoders."""

__version__ = "0.1.0"
