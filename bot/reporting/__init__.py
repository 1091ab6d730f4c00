"""Read models and publishing: figures, demand, archive, public disclosure, notices."""
