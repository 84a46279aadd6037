//! modbus traffic model for the capture generator (placeholder).
