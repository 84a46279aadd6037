//! DNP3 traffic model for the capture generator (added with the DNP3 dissector).

use super::{Model, Rng};

/// The model of one master-outstation conversation, when there is one.
pub(crate) fn model(device: u32, rng: &mut Rng) -> Box<dyn Model> {
    // Placeholder: the DNP3 model is added with the DNP3 dissector.
    Box::new(super::modbus::Polling::new(device, rng))
}
