"""edgeplane: install, run and manage Kubernetes clusters on small machines at remote sites."""

__version__ = "0.1.0"
