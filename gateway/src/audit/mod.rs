//! Audit sinks: shipping the journal to CloudWatch Logs and stdout. Being built.
