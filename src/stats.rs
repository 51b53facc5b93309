//! `crit stats`: the numbers of a checkpoint at a glance.
