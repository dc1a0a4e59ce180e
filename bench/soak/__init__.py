"""``make soak``: tensorgate with two workers under mixed traffic from several callers for
minutes, while its repository changes, its workers are killed and a remote model's
upstream goes away and comes back; then what was lost, what failed and whether memory
and file descriptors stayed flat."""
