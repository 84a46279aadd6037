//! s7 traffic model for the capture generator (placeholder).
