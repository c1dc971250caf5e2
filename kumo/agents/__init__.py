"""Data-plane agents (compute, network, block storage): they reach the control plane only over HTTP."""
