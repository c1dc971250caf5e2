"""The compute agent and its virt drivers (``fake`` now; ``qemu`` comes later)."""
