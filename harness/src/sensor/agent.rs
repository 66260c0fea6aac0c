//! Placeholder for the running sensor.
