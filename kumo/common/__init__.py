"""The shared kernel every kumo service stands on. Imports no service."""
