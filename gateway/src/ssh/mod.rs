//! The SSH gateway (jump mode). Being built.
