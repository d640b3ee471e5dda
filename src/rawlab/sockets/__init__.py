"""Opening sockets of the four families, and turning their errors into advice."""
