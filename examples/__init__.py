"""Example projects' own code (data generators, demo services): not part of lakehouse."""
