"""The volume agent and its storage back ends (file, LVM) and backup engine."""
