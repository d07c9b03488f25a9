pub mod claims;
pub mod integrator;
pub mod keys;
pub mod records;
pub mod table;
