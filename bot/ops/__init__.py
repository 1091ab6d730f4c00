"""Running the system: the managed Rasa process, metrics, the scheduler, demo data and the command-line entry points."""
