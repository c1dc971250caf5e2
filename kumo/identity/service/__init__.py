"""Identity's domain logic: no HTTP types here."""
