"""The QEMU virt driver: one qemu-system-x86_64 process per VM, driven over QMP."""
