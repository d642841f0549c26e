"""Pictures of what a network does, written as PNG files with matplotlib (headless)."""
