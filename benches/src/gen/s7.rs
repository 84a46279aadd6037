//! S7comm traffic model for the capture generator (added with the S7 dissector).

use super::{Model, Rng};

/// The model of one HMI-PLC conversation.
pub(crate) fn model(device: u32, rng: &mut Rng) -> Box<dyn Model> {
    // Placeholder: the S7 model is added with the S7 dissector.
    Box::new(super::modbus::Polling::new(device, rng))
}
