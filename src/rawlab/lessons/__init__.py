"""Live lessons: small demonstrations of what the kernel answers.

One module per lesson (sigpipe, flags, families, pipe_vs_socket). Each runs
real system calls and returns dataclasses of ints, errno names and signal
numbers; nothing here formats (``rawlab.present.lesson`` does). TCP lessons use
127.0.0.1 only. Importing this package opens nothing.
"""
