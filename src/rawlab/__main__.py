"""`python -m rawlab` is `rawlab`."""

from rawlab.cli import main

if __name__ == "__main__":
    main()
