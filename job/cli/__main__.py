"""`python -m job.cli`: the same as the installed `chainfeat` command."""

from job.cli.main import main

main()
