//! dnp3 traffic model for the capture generator (placeholder).
