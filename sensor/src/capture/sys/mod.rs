//! The only module of otsensor allowed `unsafe`: the AF_PACKET ring ([`afpacket`]) and
//! dropping privileges ([`privs`]). Capture files are not memory-mapped (see
//! [`crate::capture`]), so no `unsafe` reads them.

#![allow(unsafe_code)]

pub(crate) mod afpacket;
pub(crate) mod privs;
