"""The `chainfeat` command line (main.py lists every command)."""
