//! Scenario 11: a listener down for an hour of simulated time while the journal rotates.
