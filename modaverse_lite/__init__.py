"""modaverse_lite."""
