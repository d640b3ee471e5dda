"""`python -m rawlab` is `rawlab`."""

from rawlab.cli import run

if __name__ == "__main__":
    run()
