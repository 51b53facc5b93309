//! New views of `crit x`: sk, tree, mounts, files.
